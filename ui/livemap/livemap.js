// The Train page's latent map while the run trains, drawn by the browser on a canvas.
//
// Mounted once with the run's feed (data: feed URL, follow); it asks the feed every 2 s with the stamp of the
// frames it holds, and the server answers nothing (204) until a frame lands or a UMAP frame is fitted, so between
// frames neither side works. Then it gets every frame so far and glides the items from where they are to the new
// frame's places in 600 ms. A Plotly figure of every frame, rebuilt and re-rendered per frame (and the page rerun
// at every poll that carried it), cost the browser about a second of CPU each time, taken from the training.
//
// The bytes: "LELIVEMP", a uint32 (little-endian) JSON length, the JSON (ids, labels, groups, captions, pictures,
// axis, method, note), zero padding to 4 bytes, then float32 layouts (frames × items × 2). The slider and Play
// replay the frames; a click follows an item (a ring where it is, a trail of where it was) and tells the page
// (state ``follow``), so the replay after training follows it too.

const MAGIC = "LELIVEMP";
const GLIDE_MS = 600; // a new frame, or a step of Play
const STEP_MS = 250; // the slider dragged to a frame
const PLAY_EVERY_MS = 800;
const HOVER_PX = 8;
const PAD = { l: 44, r: 12, t: 10, b: 34 };
const EVERY_MS = 2000; // how often it asks the feed for new frames
const FRAME_MS = 33; // a glide redraws the canvas at most 30 times a second: each redraw is a repaint of the page

function parse(bytes) {
  const text = new TextDecoder();
  if (text.decode(bytes.subarray(0, 8)) !== MAGIC) throw new Error("not a live map");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(8, true);
  const meta = JSON.parse(text.decode(bytes.subarray(12, 12 + length)));
  const start = 12 + length + ((4 - ((12 + length) % 4)) % 4);
  const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + bytes.byteLength));
  const n = meta.ids.length;
  const frames = floats.length / (2 * n);
  meta.layouts = Array.from({ length: frames }, (_, k) => floats.subarray(2 * n * k, 2 * n * (k + 1)));
  meta.boxes = meta.layouts.map(bounds); // each frame fills the view; the view glides with the items
  return meta;
}

/** A frame's box, padded by 5 % of its larger side. */
function bounds(xy) {
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < xy.length; i += 2) {
    x0 = Math.min(x0, xy[i]); x1 = Math.max(x1, xy[i]);
    y0 = Math.min(y0, xy[i + 1]); y1 = Math.max(y1, xy[i + 1]);
  }
  const pad = 0.05 * Math.max(x1 - x0, y1 - y0, 1e-9);
  return [x0 - pad, x1 + pad, y0 - pad, y1 + pad];
}

function build(root) {
  const s = { root, data: null, pos: null, box: null, shown: 0, target: 0, anim: null, playing: null, follow: null };
  const box = (s.el = element("div", "llm", root));
  box.dataset.liveMap = "";
  s.note = element("div", "llm-banner", box);
  s.note.hidden = true;
  const row = element("div", "llm-row", box);
  const stage = element("div", "llm-stage", row);
  s.canvas = element("canvas", "llm-canvas", stage);
  s.canvas.setAttribute("role", "img");
  s.canvas.setAttribute("aria-label", "the latent map as it trains: each point an item, coloured by its label");
  s.tip = element("div", "llm-tip", stage);
  s.tip.hidden = true;
  const side = element("figure", "llm-side", row);
  s.picture = element("img", "llm-picture", side);
  s.picture.alt = "decoded prior samples at this frame";
  element("figcaption", "llm-note", side, "decoded prior samples (the same points each frame)");
  s.side = side;
  const controls = element("div", "llm-controls", box);
  s.play = element("button", "llm-play", controls, "▶ Play");
  s.play.type = "button";
  s.slider = element("input", "llm-slider", controls);
  Object.assign(s.slider, { type: "range", min: 0, max: 0, step: 1, value: 0 });
  s.slider.setAttribute("aria-label", "frame");
  s.caption = element("span", "llm-caption", controls);
  s.legend = element("div", "llm-legend", box);
  s.play.addEventListener("click", () => (s.playing ? stop(s) : play(s)));
  s.slider.addEventListener("input", () => {
    stop(s);
    glide(s, Number(s.slider.value), STEP_MS);
  });
  s.canvas.addEventListener("pointermove", (e) => hover(s, e));
  s.canvas.addEventListener("pointerleave", () => (s.tip.hidden = true));
  s.canvas.addEventListener("click", (e) => {
    const row = nearest(s, e);
    s.follow = row === null ? null : s.data.ids[row];
    s.setStateValue?.("follow", s.follow);
    draw(s);
  });
  new ResizeObserver(() => draw(s)).observe(stage);
  return s;
}

/** Canvas pixels of data point (x, y) in the box drawn now. */
function scale(s) {
  const w = s.canvas.clientWidth, h = s.canvas.clientHeight;
  const [x0, x1, y0, y1] = s.box;
  const sx = (w - PAD.l - PAD.r) / (x1 - x0), sy = (h - PAD.t - PAD.b) / (y1 - y0);
  return [(x) => PAD.l + (x - x0) * sx, (y) => h - PAD.b - (y - y0) * sy];
}

function draw(s) {
  if (!s.data || !s.pos) return;
  const w = s.canvas.clientWidth, h = s.canvas.clientHeight;
  const ctx = sizedCanvas(s.canvas, w, h);
  const [px, py] = scale(s);
  ctx.strokeStyle = "rgba(128,128,128,0.45)";
  ctx.strokeRect(PAD.l, PAD.t, w - PAD.l - PAD.r, h - PAD.t - PAD.b);
  ctx.fillStyle = getComputedStyle(s.el).color || "#31333f";
  ctx.font = "12px sans-serif";
  ctx.textAlign = "center";
  ctx.fillText(`${s.data.axis} 1`, PAD.l + (w - PAD.l - PAD.r) / 2, h - 10);
  ctx.save();
  ctx.translate(14, PAD.t + (h - PAD.t - PAD.b) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(`${s.data.axis} 2`, 0, 0);
  ctx.restore();
  ctx.globalAlpha = 0.8;
  const { pos, data } = s;
  for (const [g, group] of data.groups.entries()) {
    ctx.fillStyle = group.colour;
    ctx.beginPath();
    for (const i of s.members[g]) {
      const x = px(pos[2 * i]), y = py(pos[2 * i + 1]);
      ctx.moveTo(x + 2.5, y);
      ctx.arc(x, y, 2.5, 0, 2 * Math.PI);
    }
    ctx.fill();
  }
  ctx.globalAlpha = 1;
  const row = s.follow === null ? -1 : s.rowOf.get(s.follow) ?? -1;
  if (row >= 0) { // the followed item: its trail through the frames up to the one shown, and a ring
    ctx.strokeStyle = "black";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    const last = Math.round(s.shown);
    for (let k = 0; k <= last; k++) {
      const l = data.layouts[k];
      (k ? ctx.lineTo : ctx.moveTo).call(ctx, px(l[2 * row]), py(l[2 * row + 1]));
    }
    ctx.lineTo(px(pos[2 * row]), py(pos[2 * row + 1]));
    ctx.stroke();
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(px(pos[2 * row]), py(pos[2 * row + 1]), 8, 0, 2 * Math.PI);
    ctx.stroke();
  }
}

/** Show frame ``k``: the items and the box move there from where they are, over ``ms``. */
function glide(s, k, ms, then) {
  const data = s.data;
  k = Math.max(0, Math.min(data.layouts.length - 1, k));
  if (s.anim) cancelAnimationFrame(s.anim);
  const from = Float32Array.from(s.pos), to = data.layouts[k];
  const fromBox = s.box.slice(), toBox = data.boxes[k];
  s.target = k;
  s.el.dataset.target = String(k); // the frame it glides to (data-shown: the one it reached)
  s.slider.value = String(k);
  showFrame(s, k);
  const t0 = performance.now();
  let drawn = -Infinity;
  const step = (now) => {
    const t = Math.min(1, (now - t0) / Math.max(ms, 1));
    if (t < 1 && now - drawn < FRAME_MS) {
      s.anim = requestAnimationFrame(step);
      return;
    }
    drawn = now;
    const e = t < 0.5 ? 4 * t * t * t : 1 - (-2 * t + 2) ** 3 / 2; // ease in and out
    for (let i = 0; i < to.length; i++) s.pos[i] = from[i] + (to[i] - from[i]) * e;
    s.box = fromBox.map((v, j) => v + (toBox[j] - v) * e);
    s.shown = t < 1 ? Math.max(0, k - 1 + t) : k;
    draw(s);
    if (t < 1) {
      s.anim = requestAnimationFrame(step);
    } else {
      s.anim = null;
      s.el.dataset.shown = String(k);
      if (then) then();
    }
  };
  s.anim = requestAnimationFrame(step);
}

function showFrame(s, k) {
  const data = s.data;
  s.caption.textContent = data.captions[k] || "";
  if (data.pictures && data.pictures[k]) s.picture.src = data.pictures[k];
}

function play(s) {
  const last = s.data.layouts.length - 1;
  let k = s.target >= last ? 0 : s.target;
  s.play.textContent = "❚❚ Pause";
  const next = () => {
    if (!s.playing) return;
    if (k >= s.data.layouts.length - 1) return stop(s);
    k += 1;
    glide(s, k, GLIDE_MS * 0.7);
    s.playing = setTimeout(next, PLAY_EVERY_MS);
  };
  if (k === 0) glide(s, 0, STEP_MS);
  s.playing = setTimeout(next, PLAY_EVERY_MS);
}

function stop(s) {
  if (s.playing) clearTimeout(s.playing);
  s.playing = null;
  s.play.textContent = "▶ Play";
}

function nearest(s, e) {
  if (!s.data) return null;
  const r = s.canvas.getBoundingClientRect();
  const mx = e.clientX - r.left, my = e.clientY - r.top;
  const [px, py] = scale(s);
  let best = null, bestD = HOVER_PX * HOVER_PX;
  for (let i = 0; i < s.data.ids.length; i++) {
    const dx = px(s.pos[2 * i]) - mx, dy = py(s.pos[2 * i + 1]) - my;
    const d = dx * dx + dy * dy;
    if (d <= bestD) [best, bestD] = [i, d];
  }
  return best;
}

function hover(s, e) {
  const row = nearest(s, e);
  if (row === null) {
    s.tip.hidden = true;
    return;
  }
  const group = s.data.groups[s.data.labels ? s.groupOf[row] : 0];
  s.tip.textContent = `${group.name} · #${s.data.ids[row]}`;
  const r = s.canvas.getBoundingClientRect();
  s.tip.style.left = `${e.clientX - r.left + 12}px`;
  s.tip.style.top = `${e.clientY - r.top + 12}px`;
  s.tip.hidden = false;
}

function legend(s) {
  s.legend.replaceChildren();
  for (const group of s.data.groups) {
    const item = element("span", "llm-key", s.legend);
    element("i", "", item).style.background = group.colour;
    element("span", "", item, group.name);
  }
}

/** New bytes from the page: the frames so far. Glide to the newest unless the person is looking at another. */
function update(s, bytes) {
  const data = parse(bytes);
  const old = s.data;
  const atLast = !old || s.target >= old.layouts.length - 1;
  const sameItems = old && old.ids.length === data.ids.length && old.ids.every((v, i) => v === data.ids[i]);
  s.data = data;
  s.rowOf = new Map(data.ids.map((id, i) => [id, i]));
  s.groupOf = data.labels ? Int32Array.from(data.labels) : new Int32Array(data.ids.length);
  s.members = data.groups.map(() => []);
  s.groupOf.forEach((g, i) => s.members[g].push(i));
  s.note.textContent = data.note || "";
  s.note.hidden = !data.note;
  s.side.hidden = !data.pictures;
  s.el.dataset.frames = String(data.layouts.length);
  s.el.dataset.method = data.method;
  s.slider.max = String(data.layouts.length - 1);
  legend(s);
  const last = data.layouts.length - 1;
  if (!sameItems || !s.pos) { // the first draw: the newest frame, at once
    s.pos = Float32Array.from(data.layouts[last]);
    s.box = data.boxes[last].slice();
    s.target = s.shown = last;
    s.slider.value = String(last);
    s.el.dataset.shown = String(last);
    showFrame(s, last);
    draw(s);
  } else if (s.playing) {
    // Play goes on into the new frames
  } else if (atLast || old.method !== data.method) {
    glide(s, last, GLIDE_MS);
  } else {
    glide(s, s.target, 0); // the same frame (its places may be UMAP's now), in the new box
  }
}

export default function ({ data, parentElement, setStateValue }) {
  const s = (parentElement.__liveMap ??= build(parentElement));
  s.setStateValue = setStateValue;
  if (!data || typeof data.feed !== "string" || data.feed === s.feed) return;
  if (!s.feed) {
    s.follow = data.follow ?? null;
    s.every = EVERY_MS;
    s.ask = () => `${s.feed}&have=${encodeURIComponent(s.stamp || "")}`;
    s.take = async (reply) => { // 204: nothing new
      if (reply.status === 200) {
        const bytes = new Uint8Array(await reply.arrayBuffer());
        s.stamp = reply.headers.get("X-Stamp") || "";
        update(s, bytes);
      } else if (reply.status !== 204) {
        s.caption.textContent = `The live map could not be fetched: ${(await reply.text()).slice(0, 200)}`;
      }
    };
    s.failed = (e) => (s.caption.textContent = `The live map could not be drawn: ${e.message}`);
    pollOnShow(s);
  }
  s.feed = data.feed; // a new method: its frames, from scratch
  s.stamp = "";
  pollFeed(s);
}
