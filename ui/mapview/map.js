// The Explore map, drawn by Plotly's own JavaScript in the browser, decoding whatever lies under the pointer.
// core.js (the shared decoder, prepended by Python: ui/decoder/__init__.py, ``module``) supplies decode,
// toRGBA, register, whenLoaded and element.
//
// ui/mapview/__init__.py mounts this component four times: three mounts carry bytes that never change for
// a map, so Streamlit sends each once — Plotly itself ("LEPLOTJS" + plotly.min.js from the installed plotly
// package), the decoder ("LEDECOD1", vae/web/decoder.py) and the map ("LEMAP001", vae/web/mapgrid.py: points by
// label, the inverse grid, the items' pixels) — and the panel mount gets JSON (which map and decoder, the
// pinned star, the ringed item, the backdrop). On every pointer move over the plot, the map position goes
// through the inverse grid (bilinear, like LatentProjector.inverse_lookup) and the decoder, and the picture
// beside the map is redrawn; hovering a point also shows that item. A click (pointer down and up without a
// pan between; Plotly's own click event misses clicks on the star) sends the state value "pick":
// {kind: "item", map, row, n} or {kind: "point", map, xy, z, n}; every mount keeps its key from map to map.

const MAP_MAGIC = "LEMAP001";
const PLOTLY_MAGIC = "LEPLOTJS";
const KEEP_MAPS = 3;
const PREVIEW_PX = 150;

function deferred() {
  let resolve, reject;
  const promise = new Promise((a, b) => ((resolve = a), (reject = b)));
  return { promise, resolve, reject, started: false };
}

const MAPS = (globalThis.__latentExplorerMaps ??= {
  maps: new Map(), // id -> parsed map
  waiting: new Map(), // id -> [callback(map)]
  plotly: deferred(), // resolves to window.Plotly once the bytes have run
});

function magic(u8) {
  return String.fromCharCode(...u8.subarray(0, 8));
}

// ------------------------------------------------------------------ Plotly, from the installed package's bytes

function loadPlotly(u8) {
  if (MAPS.plotly.started) return;
  MAPS.plotly.started = true;
  if (globalThis.Plotly) return MAPS.plotly.resolve(globalThis.Plotly);
  const url = URL.createObjectURL(new Blob([u8.subarray(8)], { type: "text/javascript" }));
  const script = document.createElement("script");
  script.src = url;
  script.onload = () => (globalThis.Plotly ? MAPS.plotly.resolve(globalThis.Plotly) : MAPS.plotly.reject(new Error("Plotly did not load")));
  script.onerror = () => MAPS.plotly.reject(new Error("Plotly did not load"));
  document.head.appendChild(script);
}

// ------------------------------------------------------------------ the map blob

export function parseMap(bytes) {
  const u8 = bytes.slice(); // an aligned copy: typed views below need 4-byte alignment
  const n = new DataView(u8.buffer).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(u8.subarray(12, 12 + n)));
  if (header.format !== 1) throw new Error(`map format ${header.format} is not supported`);
  const start = 12 + n;
  const view = (name) => {
    const spec = header.arrays[name];
    if (!spec) return null;
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const Kind = { f4: Float32Array, i4: Int32Array, u1: Uint8Array }[spec.dtype];
    return new Kind(u8.buffer, start + spec.offset, count);
  };
  const xy = view("xy");
  const groups = header.groups.map((g) => {
    const x = new Float32Array(g.count);
    const y = new Float32Array(g.count);
    for (let k = 0; k < g.count; k++) {
      x[k] = xy[2 * (g.start + k)];
      y[k] = xy[2 * (g.start + k) + 1];
    }
    return { ...g, x, y };
  });
  return {
    id: header.id,
    n: header.n,
    latentDim: header.latent_dim,
    itemShape: header.item_shape,
    groups,
    rows: view("rows"),
    index: view("index"),
    gridX: view("grid_x"),
    gridY: view("grid_y"),
    grid: view("grid_codes"),
    pixels: view("pixels"),
  };
}

function registerMap(bytes) {
  const id = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true)))).id;
  if (MAPS.maps.has(id)) return;
  const map = parseMap(bytes);
  MAPS.maps.set(id, map);
  while (MAPS.maps.size > KEEP_MAPS) MAPS.maps.delete(MAPS.maps.keys().next().value);
  (MAPS.waiting.get(id) || []).forEach((f) => f(map));
  MAPS.waiting.delete(id);
}

function whenMap(id, callback) {
  const map = MAPS.maps.get(id);
  if (map) return callback(map);
  if (!MAPS.waiting.has(id)) MAPS.waiting.set(id, []);
  MAPS.waiting.get(id).push(callback);
}

/** The latent code at map position (x, y): bilinear in the inverse grid, positions clipped to it. */
export function lookup(map, x, y, out) {
  const gx = map.gridX;
  const gy = map.gridY;
  const nx = gx.length;
  const ny = gy.length;
  const L = map.latentDim;
  const fx = Math.min(Math.max(((x - gx[0]) / (gx[nx - 1] - gx[0])) * (nx - 1), 0), nx - 1);
  const fy = Math.min(Math.max(((y - gy[0]) / (gy[ny - 1] - gy[0])) * (ny - 1), 0), ny - 1);
  const j = Math.min(Math.floor(fx), nx - 2);
  const i = Math.min(Math.floor(fy), ny - 2);
  const tx = fx - j;
  const ty = fy - i;
  const g = map.grid;
  const a = (i * nx + j) * L;
  const b = a + L; // (i, j + 1)
  const c = a + nx * L; // (i + 1, j)
  const d = c + L; // (i + 1, j + 1)
  for (let k = 0; k < L; k++) {
    const top = g[a + k] * (1 - tx) + g[b + k] * tx;
    const bottom = g[c + k] * (1 - tx) + g[d + k] * tx;
    out[k] = top * (1 - ty) + bottom * ty;
  }
  return out;
}

// ------------------------------------------------------------------ the panel

function build(root) {
  const s = { draws: 0, clicks: 0 };
  s.root = element("div", "lem", root);
  s.plot = element("div", "lem-plot", s.root);
  const side = element("div", "lem-side", s.root);
  element("div", "lem-head", side).textContent = "Under the cursor";
  s.canvas = element("canvas", "lem-image lem-decoded lem-empty", side); // an empty frame until the first draw
  s.canvas.setAttribute("role", "img");
  s.canvas.setAttribute("aria-label", "decoded under the cursor");
  s.where = element("div", "lem-caption", side);
  s.where.textContent = "Point anywhere on the map.";
  s.itemHead = element("div", "lem-head", side);
  s.itemCanvas = element("canvas", "lem-image lem-item", side);
  s.itemCanvas.setAttribute("role", "img");
  s.itemCanvas.setAttribute("aria-label", "item under the cursor");
  s.itemCaption = element("div", "lem-caption", side);
  s.status = element("div", "lem-status", side);
  s.status.textContent = "Loading the map…";
  for (const c of [s.canvas, s.itemCanvas]) c.style.width = c.style.height = `${PREVIEW_PX}px`;
  s.itemCanvas.hidden = true;
  s.plot.addEventListener("pointermove", (e) => pointer(s, e));
  clicks(s);
  return s;
}

function fail(s, message) {
  s.status.textContent = `The browser could not draw this map: ${message}.`;
  s.status.classList.add("lem-error");
  s.setTriggerValue("failed", message);
}

/** Where on the map (data coordinates) a pointer event is, or null outside the plot area. */
function mapPosition(s, e) {
  const layout = s.plot._fullLayout;
  if (!layout) return null;
  const xa = layout.xaxis;
  const ya = layout.yaxis;
  const r = s.plot.getBoundingClientRect();
  const px = e.clientX - r.left - xa._offset;
  const py = e.clientY - r.top - ya._offset;
  if (px < 0 || py < 0 || px > xa._length || py > ya._length) return null;
  return [xa.p2d(px), ya.p2d(py)];
}

function pointer(s, e) {
  const at = mapPosition(s, e);
  if (!at || !s.map || !s.model) return;
  s.pending = at;
  if (!s.frame) {
    s.frame = requestAnimationFrame(() => {
      s.frame = 0;
      drawAt(s, s.pending[0], s.pending[1]);
    });
  }
}

function paint(model, canvas, values) {
  const [, h, w] = model.shape;
  const ctx = canvas.getContext("2d");
  if (canvas.width !== w || canvas.height !== h || !canvas.__image) {
    [canvas.width, canvas.height] = [w, h];
    canvas.__image = ctx.createImageData(w, h); // reused: a pointer move draws without allocating
  }
  toRGBA(model, values, canvas.__image.data);
  ctx.putImageData(canvas.__image, 0, 0);
}

function drawAt(s, x, y) {
  const t0 = performance.now();
  lookup(s.map, x, y, s.z);
  paint(s.model, s.canvas, decode(s.model, s.z));
  s.canvas.classList.remove("lem-empty");
  s.draws += 1;
  Object.assign(s.root.dataset, { draws: String(s.draws), x: String(x), y: String(y) });
  s.where.textContent = `decoded at (${x.toFixed(2)}, ${y.toFixed(2)})`;
  recordDraw(t0);
}

function showItem(s, k) {
  s.root.dataset.item = k === null ? "" : String(s.map.rows[k]);
  if (k === null) {
    s.itemHead.textContent = "";
    s.itemCanvas.hidden = true;
    s.itemCaption.textContent = "";
    return;
  }
  const g = s.map.groups.find((gr) => k >= gr.start && k < gr.start + gr.count);
  s.itemHead.textContent = s.labelled ? `Item: ${g.name}` : "Item";
  const i = s.map.index[k];
  const [part, index] = s.split !== "all" ? [s.split, i] : i < s.nTrain ? ["train", i] : ["test", i - s.nTrain];
  s.itemCaption.textContent = `${part} item #${index}`;
  if (!s.map.pixels || !s.map.itemShape) {
    s.itemCanvas.hidden = true;
    s.itemCaption.textContent += " — click it to see it";
    return;
  }
  const size = s.map.itemShape.reduce((a, b) => a * b, 1);
  const raw = s.map.pixels.subarray(k * size, (k + 1) * size);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = raw[i] / 255;
  paint({ shape: s.map.itemShape }, s.itemCanvas, values);
  s.itemCanvas.hidden = false;
}

function traces(s, data) {
  const map = s.map;
  const out = map.groups.map((g) => {
    const colours = data.kept && map.rows ? Float32Array.from({ length: g.count }, (_, k) => data.kept[map.rows[g.start + k]]) : null;
    return {
      type: "scattergl",
      mode: "markers",
      x: g.x,
      y: g.y,
      name: g.name,
      hovertemplate: `${g.name}<extra></extra>`,
      marker: colours
        ? { size: 6, color: colours, colorscale: "RdYlGn", cmin: 0, cmax: 1, opacity: 0.9, showscale: g === map.groups[0], colorbar: { title: { text: "kept" }, len: 0.5 } }
        : { size: 6, color: g.colour, opacity: 0.8 },
    };
  });
  const marker = (xy, symbol, size, colour) => ({
    type: "scattergl",
    mode: "markers",
    x: xy ? [xy[0]] : [],
    y: xy ? [xy[1]] : [],
    showlegend: false,
    hoverinfo: "skip",
    marker: { symbol, size, color: colour, line: { width: 2, color: "black" } },
  });
  for (const o of data.overlays || []) {
    out.push({
      type: "scattergl",
      mode: o.line ? "lines" : "markers",
      x: o.xy.map((p) => p[0]),
      y: o.xy.map((p) => p[1]),
      name: o.name,
      legendgroup: "overlay",
      showlegend: false, // a legend entry would widen the legend and shift the plot under the pointer
      hoverinfo: "skip",
      line: { color: o.colour, width: 1.5 },
      marker: { size: o.size || 5, color: o.colour },
    });
  }
  out.push(marker(data.ring, "circle-open", 18, "black"), marker(data.pin, "star", 20, "gold"));
  return out;
}

// The map's height: "auto" fills most of the window (at least 420 px), so the plot starts on the first screen and
// ends above the fold; a number is taken as it is.
function plotHeight(data) {
  return data.height === "auto" ? Math.max(420, Math.round(window.innerHeight * 0.8)) : data.height;
}

// Under 900 px the map takes the column's whole width: tick labels inside the plot, no axis titles.
const narrow = () => window.innerWidth < 900;

function layout(data) {
  const [x0, x1, y0, y1] = data.box;
  const out = {
    height: plotHeight(data),
    margin: narrow() ? { l: 6, r: 6, t: 40, b: 24 } : { l: 50, r: 10, t: 40, b: 40 },
    hovermode: "closest",
    hoveranywhere: true,
    clickanywhere: true,
    dragmode: "pan",
    uirevision: data.map,
    showlegend: !data.kept,
    // inside the plot's top-left corner (the preview floats at the bottom right): the plot keeps the whole width
    legend: { title: { text: "label" }, x: 0.005, y: 0.995, xanchor: "left", yanchor: "top",
              bgcolor: "rgba(255,255,255,0.75)", borderwidth: 0 },
    xaxis: { range: [x0, x1], autorange: false, title: { text: narrow() ? "" : `${data.axis} 1` }, zeroline: false,
             ticklabelposition: narrow() ? "inside" : "outside" },
    yaxis: { range: [y0, y1], autorange: false, title: { text: narrow() ? "" : `${data.axis} 2` }, zeroline: false,
             ticklabelposition: narrow() ? "inside" : "outside" },
    paper_bgcolor: "rgba(0,0,0,0)",
    images: [],
  };
  if (data.backdrop) {
    out.xaxis.showgrid = out.yaxis.showgrid = false;
    out.images.push({ source: data.backdrop, xref: "x", yref: "y", x: x0, y: y1, sizex: x1 - x0, sizey: y1 - y0, sizing: "stretch", opacity: 0.6, layer: "below" });
  }
  return out;
}

function events(s, Plotly) {
  const gd = s.plot;
  gd.on("plotly_hover", (e) => {
    const p = e.points && e.points[0];
    showItem(s, p && p.curveNumber < s.map.groups.length ? s.map.groups[p.curveNumber].start + p.pointNumber : null);
  });
  gd.on("plotly_unhover", () => showItem(s, null));
  // box or lasso (the mode bar's select tools): the selected items go to Python as one group
  gd.on("plotly_selected", (e) => {
    if (!e || !e.points || !s.map) return;
    const rows = e.points.filter((p) => p.curveNumber < s.map.groups.length)
      .map((p) => s.map.rows[s.map.groups[p.curveNumber].start + p.pointNumber]);
    if (!rows.length) return;
    s.clicks += 1;
    s.setStateValue("pick", { kind: "selection", map: s.map.id, rows, n: s.clicks });
  });
}

/** The shown point nearest the pointer within 8 px (k, in the map's order), or null: found here rather than
 * from Plotly's hover event, which trails a fast pointer by up to 50 ms. Legend-hidden labels are skipped. */
function pointAt(s, e) {
  const layout = s.plot._fullLayout;
  const r = s.plot.getBoundingClientRect();
  const xa = layout.xaxis;
  const ya = layout.yaxis;
  const ex = e.clientX - r.left - xa._offset;
  const ey = e.clientY - r.top - ya._offset;
  let best = null;
  let bestD = 8 * 8;
  s.map.groups.forEach((g, i) => {
    if (s.plot._fullData[i] && s.plot._fullData[i].visible !== true) return;
    for (let j = 0; j < g.count; j++) {
      const dx = xa.l2p(g.x[j]) - ex;
      const dy = ya.l2p(g.y[j]) - ey;
      const d = dx * dx + dy * dy;
      if (d <= bestD) [best, bestD] = [g.start + j, d];
    }
  });
  return best;
}

/** A click (not a drag) on the plot area: the item under the pointer, else that spot, goes to Python. */
function clicks(s) {
  let down = null;
  s.plot.addEventListener("pointerdown", (e) => (down = [e.clientX, e.clientY]), true);
  // Plotly covers the page with a drag layer on pointer down, so the pointer comes up over that, not the plot
  document.addEventListener("pointerup", (e) => {
    const at = mapPosition(s, e);
    const still = down && Math.hypot(e.clientX - down[0], e.clientY - down[1]) < 5; // a pan moves further
    down = null;
    if (!still || !at || !s.map || !globalThis.Plotly) return;
    s.clicks += 1;
    const k = pointAt(s, e);
    if (k !== null) return s.setStateValue("pick", { kind: "item", map: s.map.id, row: s.map.rows[k], n: s.clicks });
    const z = lookup(s.map, at[0], at[1], new Float32Array(s.map.latentDim));
    globalThis.Plotly.restyle(s.plot, { x: [[at[0]]], y: [[at[1]]] }, [s.plot.data.length - 1]); // the star, at once
    s.setStateValue("pick", { kind: "point", map: s.map.id, xy: at, z: Array.from(z), n: s.clicks });
  }, true);
}

function render(s, data, Plotly) {
  const config = { displaylogo: false, showSendToCloud: false, scrollZoom: true, responsive: true }; // no "Share chart…" upload
  if (s.drawn === data.map) {
    Plotly.react(s.plot, traces(s, data), layout(data), config); // the same map: keep the user's zoom
  } else {
    Plotly.purge(s.plot); // another map: start afresh (react kept the old map's axis ranges)
    Plotly.newPlot(s.plot, traces(s, data), layout(data), config);
    events(s, Plotly);
    s.drawn = data.map;
  }
  s.root.dataset.map = data.map;
}

function panel({ data, parentElement, setStateValue, setTriggerValue }) {
  let s = parentElement.__latentMap;
  if (!s) s = parentElement.__latentMap = build(parentElement);
  Object.assign(s, { setStateValue, setTriggerValue, split: data.split, nTrain: data.n_train, labelled: data.labelled });
  s.plot.style.height = `${plotHeight(data)}px`;
  whenLoaded(data.model, (model, error) => {
    if (error) return fail(s, error.message);
    if (data.model !== model.id) return;
    s.model = model;
  });
  whenMap(data.map, (map) => {
    if (data.map !== map.id) return;
    s.map = map;
    s.z = new Float32Array(map.latentDim);
    MAPS.plotly.promise.then(
      (Plotly) => {
        try {
          render(s, data, Plotly);
          s.status.textContent = "Decoded in your browser as you point; click to pin a spot or an item.";
        } catch (e) {
          fail(s, e.message);
        }
      },
      (e) => fail(s, e.message),
    );
  });
}

export default function (component) {
  const data = component.data;
  if (data instanceof Uint8Array) {
    const kind = magic(data);
    if (kind === PLOTLY_MAGIC) return loadPlotly(data);
    if (kind === MAP_MAGIC) return registerMap(data);
    return register(data); // the decoder (core.js), or an error it reports
  }
  return panel(component);
}
