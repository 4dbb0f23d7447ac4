// The Train page's live panel while the run trains, drawn by the browser: the progress bar, the curves, the KL
// heat strip, the collapse alarm and the training's pictures.
//
// Mounted once with the run's feed and what it draws now (data: feed, state, every_ms, first). It then asks the
// feed every every_ms for the metrics' rows it has not drawn (part=panel&steps=k&epochs=j), adds them to its
// curves and redraws them on canvases: a few milliseconds, where a Streamlit rerun per poll cost the browser a
// React pass, Plotly's redraw of every curve and a repaint of the page. A hidden tab asks nothing. When the run's
// state is no longer the one it was mounted with, it tells the page (trigger "state"): the page's fragment reruns.

const COLOURS = ["#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1"];
const PAD = { l: 58, r: 58, t: 34, b: 40 };
const HEIGHT = 320;
const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];

/** About n round ticks between lo and hi. */
function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const fmt = (v) => (v === null || v === undefined ? "–" : Math.abs(v) >= 1000 ? v.toFixed(0) : Number(v.toPrecision(4)).toString());

/** The canvas sized to its box's width and ``height``, cleared; its 2-D context in CSS pixels, and the width. */
function fitted(canvas, height) {
  const w = canvas.clientWidth;
  return [sizedCanvas(canvas, w, height), w];
}

function range(series, right) {
  let lo = Infinity, hi = -Infinity;
  for (const sr of series) {
    if (Boolean(sr.right) !== right) continue;
    for (const v of sr.ys) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  if (lo === Infinity) return null;
  if (hi === lo) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

/** A line chart: chart = {el, canvas, tip, title, xs, series: [{name, ys, right, markers}], left, right, zero,
 * integer, hover}. */
function drawChart(c) {
  const [ctx, w] = fitted(c.canvas, HEIGHT);
  const text = getComputedStyle(c.el).color || "#31333f";
  ctx.font = "600 14px sans-serif";
  ctx.fillStyle = text;
  ctx.textAlign = "left";
  ctx.fillText(c.title, 4, 18);
  const xs = c.xs;
  if (!xs.length) return;
  const x0 = Math.min(...(c.integer ? [1] : [xs[0]]), xs[0]), x1 = Math.max(xs[xs.length - 1], x0 + 1e-9);
  const left = range(c.series, false), right = range(c.series, true);
  if (right && c.zero) right[0] = Math.min(0, right[0]);
  const px = (x) => PAD.l + ((x - x0) / (x1 - x0 || 1)) * (w - PAD.l - PAD.r);
  const py = (y, r) => PAD.t + (1 - (y - r[0]) / (r[1] - r[0])) * (HEIGHT - PAD.t - PAD.b);
  ctx.font = "11px sans-serif";
  ctx.lineWidth = 1;
  ctx.strokeStyle = "rgba(128,128,128,0.2)";
  ctx.textAlign = "right";
  if (left) for (const v of ticks(...left)) {
    const y = py(v, left);
    ctx.beginPath(); ctx.moveTo(PAD.l, y); ctx.lineTo(w - PAD.r, y); ctx.stroke();
    ctx.fillText(fmt(v), PAD.l - 6, y + 4);
  }
  ctx.textAlign = "left";
  if (right) for (const v of ticks(...right)) ctx.fillText(fmt(v), w - PAD.r + 6, py(v, right) + 4);
  ctx.textAlign = "center";
  const xt = ticks(x0, x1, 8).filter((v) => !c.integer || Number.isInteger(v));
  for (const v of xt) ctx.fillText(fmt(v), px(v), HEIGHT - PAD.b + 16);
  ctx.fillText(c.xTitle || "epoch", PAD.l + (w - PAD.l - PAD.r) / 2, HEIGHT - 6);
  ctx.save();
  ctx.translate(14, PAD.t + (HEIGHT - PAD.t - PAD.b) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(c.left, 0, 0);
  ctx.restore();
  if (right && c.right) {
    ctx.save();
    ctx.translate(w - 10, PAD.t + (HEIGHT - PAD.t - PAD.b) / 2);
    ctx.rotate(Math.PI / 2);
    ctx.fillText(c.right, 0, 0);
    ctx.restore();
  }
  ctx.lineWidth = 2;
  for (const [k, sr] of c.series.entries()) {
    const r = sr.right ? right : left;
    if (!r) continue;
    ctx.strokeStyle = ctx.fillStyle = COLOURS[k % COLOURS.length];
    ctx.beginPath();
    let open = false;
    sr.ys.forEach((v, i) => {
      if (v === null) { open = false; return; }
      open ? ctx.lineTo(px(xs[i]), py(v, r)) : ctx.moveTo(px(xs[i]), py(v, r));
      open = true;
    });
    ctx.stroke();
    if (sr.markers) sr.ys.forEach((v, i) => {
      if (v === null) return;
      ctx.beginPath(); ctx.arc(px(xs[i]), py(v, r), 3, 0, 2 * Math.PI); ctx.fill();
    });
  }
  if (c.hover !== null && c.hover < xs.length) { // the values at the x under the pointer
    const x = px(xs[c.hover]);
    ctx.strokeStyle = "rgba(128,128,128,0.6)";
    ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(x, PAD.t); ctx.lineTo(x, HEIGHT - PAD.b); ctx.stroke();
    c.tip.textContent = `epoch ${fmt(xs[c.hover])} · ` + c.series.map((sr) => `${sr.name} ${fmt(sr.ys[c.hover])}`).join(" · ");
    c.tip.hidden = false;
  } else c.tip.hidden = true;
}

function chart(parent, title, series, opts = {}) {
  const el = element("div", "llp-chart", parent);
  const c = { el, title, xs: [], series: series.map((sr) => ({ ...sr, ys: [] })), hover: null, ...opts };
  c.canvas = element("canvas", "llp-canvas", el);
  c.canvas.setAttribute("role", "img");
  c.canvas.setAttribute("aria-label", title);
  const legend = element("div", "llp-legend", el);
  c.series.forEach((sr, k) => {
    const key = element("span", "llp-key", legend);
    element("i", null, key).style.background = COLOURS[k % COLOURS.length];
    element("span", null, key, sr.name);
  });
  c.tip = element("div", "llp-tip", el);
  c.tip.hidden = true;
  c.canvas.addEventListener("pointermove", (e) => {
    if (!c.xs.length) return;
    const w = c.canvas.clientWidth, x = e.offsetX;
    const x0 = Math.min(c.integer ? 1 : c.xs[0], c.xs[0]), x1 = c.xs[c.xs.length - 1];
    const at = x0 + ((x - PAD.l) / (w - PAD.l - PAD.r)) * (x1 - x0);
    let lo = 0, hi = c.xs.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; c.xs[mid] < at ? (lo = mid + 1) : (hi = mid); }
    c.hover = lo > 0 && Math.abs(c.xs[lo - 1] - at) < Math.abs(c.xs[lo] - at) ? lo - 1 : lo;
    drawChart(c);
  });
  c.canvas.addEventListener("pointerleave", () => { c.hover = null; drawChart(c); });
  return c;
}

function drawHeat(s) {
  const h = s.heat, rows = s.kl.filter((r) => r), dims = rows.length ? rows[rows.length - 1].length : 0;
  h.el.hidden = !dims;
  if (!dims) return;
  const height = Math.max(140, 70 + 14 * dims);
  const [ctx, w] = fitted(h.canvas, height);
  h.canvas.style.height = `${height}px`;
  ctx.font = "600 14px sans-serif";
  ctx.fillStyle = getComputedStyle(h.el).color || "#31333f";
  ctx.textAlign = "left";
  ctx.fillText("KL per latent dimension and epoch", 4, 18);
  let hi = 0;
  for (const r of rows) for (const v of r) if (v !== null) hi = Math.max(hi, v);
  const cols = s.kl.length, cw = (w - PAD.l - 90) / cols, ch = (height - PAD.t - 30) / dims;
  s.kl.forEach((r, j) => r && r.forEach((v, d) => {
    const t = v === null || hi === 0 ? 0 : v / hi;
    ctx.fillStyle = VIRIDIS[Math.min(VIRIDIS.length - 1, Math.floor(t * VIRIDIS.length))];
    ctx.fillRect(PAD.l + j * cw, PAD.t + d * ch, Math.ceil(cw), Math.ceil(ch));
  }));
  ctx.font = "11px sans-serif";
  ctx.fillStyle = getComputedStyle(h.el).color || "#31333f";
  ctx.textAlign = "right";
  const every = Math.ceil(dims / Math.max(1, Math.floor((height - PAD.t - 30) / 13)));
  for (let d = 0; d < dims; d += every) ctx.fillText(`z${d}`, PAD.l - 6, PAD.t + (d + 0.7) * ch);
  ctx.textAlign = "center";
  for (const v of ticks(1, cols, 8).filter(Number.isInteger)) ctx.fillText(fmt(s.klEpochs[v - 1] ?? v), PAD.l + (v - 0.5) * cw, height - 12);
  const bx = w - 70; // the colour bar: 0 at the bottom, the largest KL at the top
  VIRIDIS.forEach((colour, k) => {
    ctx.fillStyle = colour;
    ctx.fillRect(bx, PAD.t + (1 - (k + 1) / VIRIDIS.length) * (height - PAD.t - 30), 12, (height - PAD.t - 30) / VIRIDIS.length + 1);
  });
  ctx.fillStyle = getComputedStyle(h.el).color || "#31333f";
  ctx.textAlign = "left";
  ctx.fillText(`${fmt(hi)} nats`, bx + 16, PAD.t + 8);
  ctx.fillText("0", bx + 16, height - 30);
}

function build(root) {
  const s = { root, feed: null, timer: null, triggered: null, kl: [], klEpochs: [], stamps: {}, steps: 0, epochs: 0 };
  const box = (s.el = element("div", "llp", root));
  box.dataset.livePanel = "";
  const bar = element("div", "llp-progress", box);
  s.barText = element("div", "llp-progress-text", bar);
  s.bar = element("div", "llp-bar", element("div", "llp-track", bar));
  s.bar.setAttribute("role", "progressbar");
  const row = element("div", "llp-row", box);
  s.loss = chart(row, "Training objective", [{ name: "loss (−ELBO with β)" }, { name: "reconstruction" },
    { name: "KL (right axis)", right: true }], { left: "nats per item", right: "KL, nats", zero: true });
  s.elbo = chart(row, "ELBO per epoch", [{ name: "train ELBO", markers: true }, { name: "test ELBO", markers: true }],
    { left: "nats per item (higher is better)", integer: true });
  s.parts = chart(box, "The KL's three parts (β weighs the total correlation)", [{ name: "index-code mutual information" },
    { name: "total correlation" }, { name: "dimension-wise KL" }], { left: "nats per item", zero: true });
  s.parts.el.hidden = true;
  const pictures = element("div", "llp-row", box);
  s.pictures = {};
  for (const which of ["recon", "samples"]) {
    const fig = element("figure", "llp-figure", pictures);
    fig.hidden = true;
    s.pictures[which] = { fig, img: element("img", "llp-picture", fig), caption: element("figcaption", "llp-caption", fig) };
  }
  s.warning = element("div", "llp-warning", box);
  s.warning.hidden = true;
  s.heat = { el: element("div", "llp-chart", box) };
  s.heat.canvas = element("canvas", "llp-canvas", s.heat.el);
  s.heat.canvas.setAttribute("role", "img");
  s.heat.canvas.setAttribute("aria-label", "KL per latent dimension and epoch");
  s.heat.el.hidden = true;
  new ResizeObserver(() => redraw(s)).observe(box);
  s.ask = () => `${s.feed}&part=panel&steps=${s.steps}&epochs=${s.epochs}`;
  s.take = async (reply) => {
    if (reply.ok) apply(s, await reply.json());
    else s.barText.textContent = `The run could not be read: ${(await reply.text()).slice(0, 200)}`;
  };
  s.failed = (e) => (s.barText.textContent = `The server did not answer (${e.message}); trying again.`);
  pollOnShow(s);
  return s;
}

function redraw(s) {
  drawChart(s.loss);
  drawChart(s.elbo);
  if (!s.parts.el.hidden) drawChart(s.parts);
  drawHeat(s);
}

/** Rows ``rows`` from row ``from`` on, into chart ``c``: column 0 the x, then each series' column. */
function add(c, from, rows, columns) {
  c.xs.length = Math.min(c.xs.length, from);
  c.series.forEach((sr) => (sr.ys.length = Math.min(sr.ys.length, from)));
  for (const r of rows) {
    c.xs.push(r[0]);
    c.series.forEach((sr, k) => sr.ys.push(r[columns[k]]));
  }
}

function apply(s, p) {
  s.el.dataset.state = p.state || "";
  s.barText.textContent = p.progress[1];
  s.bar.style.width = `${(100 * p.progress[0]).toFixed(2)}%`;
  s.bar.setAttribute("aria-valuenow", String(Math.round(100 * p.progress[0])));
  const { steps, epochs } = p;
  if (steps.rows.length || steps.from < s.steps) {
    add(s.loss, steps.from, steps.rows, [1, 2, 3]);
    add(s.parts, steps.from, steps.rows, [4, 5, 6]);
  }
  if (epochs.rows.length || epochs.from < s.epochs) {
    add(s.elbo, epochs.from, epochs.rows, [1, 2]);
    s.kl.length = Math.min(s.kl.length, epochs.from);
    s.klEpochs.length = Math.min(s.klEpochs.length, epochs.from);
    s.kl.push(...epochs.kl);
    s.klEpochs.push(...epochs.rows.map((r) => r[0]));
  }
  s.steps = s.loss.xs.length;
  s.epochs = s.elbo.xs.length;
  s.el.dataset.steps = String(s.steps);
  s.el.dataset.epochs = String(s.epochs);
  s.parts.el.hidden = !p.parts;
  for (const [which, pic] of Object.entries(s.pictures)) {
    const stamp = p.pictures[which];
    pic.fig.hidden = !stamp;
    pic.caption.textContent = p.captions[which];
    if (stamp && stamp !== s.stamps[which]) pic.img.src = `${s.feed}&part=picture&file=${which}&v=${stamp}`;
    s.stamps[which] = stamp;
  }
  s.warning.textContent = p.warning ? `⚠ ${p.warning}` : "";
  s.warning.hidden = !p.warning;
  if ((steps.rows.length || epochs.rows.length || steps.from < s.steps) && !document.hidden) redraw(s);
  if (p.state !== s.state && p.state !== s.triggered && s.trigger) { // paused, resumed or ended: the page follows
    s.triggered = p.state;
    s.trigger("state", p.state);
  }
}

export default function ({ data, parentElement, setTriggerValue }) {
  const s = (parentElement.__livePanel ??= build(parentElement));
  s.trigger = setTriggerValue;
  if (!data || typeof data.feed !== "string" || data === s.data) return;
  s.data = data;
  s.feed = data.feed;
  s.state = data.state;
  s.every = data.every_ms || 2000;
  s.steps = s.epochs = 0; // what the page sent now, drawn from scratch
  apply(s, data.first);
  redraw(s);
  clearTimeout(s.timer);
  s.timer = setTimeout(() => pollFeed(s), s.every);
}
