// The Explore map, drawn by Plotly's own JavaScript in the browser, decoding whatever lies under the pointer.
// core.js (the shared decoder, prepended by Python: ui/decoder/__init__.py, ``module``) supplies decode,
// toRGBA, register, whenLoaded and element.
//
// ui/mapview/__init__.py mounts this component four times: three mounts carry bytes that never change for
// a map, so Streamlit sends each once — Plotly itself ("LEPLOTJS" + plotly.min.js from the installed plotly
// package), the decoder ("LEDECOD1", vae/web/decoder.py) and the map ("LEMAP002", vae/web/mapgrid.py: the points
// in a shuffled drawing order with their labels, the inverse grid, the items' pixels); a fifth carries the column
// the points are coloured by ("LECOLS01", when it is not the label) — and the panel mount gets JSON (which map,
// decoder and column, the point size and opacity, the pinned star, the ringed item, the backdrop). The points are
// one trace (past "layer_at" points, drawn by the map's own WebGL layer instead: points.js), in a shuffled order so that no class paints over another; clicking a label in the legend
// shows only that label (the others turn grey and go underneath), clicking it again shows all. On every pointer move over the plot, the map position goes
// through the inverse grid (bilinear, like LatentProjector.inverse_lookup) and the decoder, and the picture
// beside the map is redrawn; hovering a point also shows that item. A click (pointer down and up without a
// pan between; Plotly's own click event misses clicks on the star) sends the state value "pick":
// {kind: "item", map, row, n} or {kind: "point", map, xy, z, n}; every mount keeps its key from map to map.

const MAP_MAGIC = "LEMAP002";
const COLUMN_MAGIC = "LECOLS01";
const GREY = "rgba(160, 160, 160, 0.35)";
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
  columns: new Map(), // column id -> parsed column
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

function parseBlob(bytes) {
  const u8 = bytes.slice(); // an aligned copy: typed views below need 4-byte alignment
  const n = new DataView(u8.buffer).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(u8.subarray(12, 12 + n)));
  const start = 12 + n;
  const view = (name) => {
    const spec = header.arrays[name];
    if (!spec) return null;
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const Kind = { f4: Float32Array, i4: Int32Array, u1: Uint8Array }[spec.dtype];
    return new Kind(u8.buffer, start + spec.offset, count);
  };
  return { header, view };
}

export function parseMap(bytes) {
  const { header, view } = parseBlob(bytes);
  if (header.format !== 2) throw new Error(`map format ${header.format} is not supported`);
  const xy = view("xy");
  const x = new Float32Array(header.n);
  const y = new Float32Array(header.n);
  for (let k = 0; k < header.n; k++) [x[k], y[k]] = [xy[2 * k], xy[2 * k + 1]];
  return {
    id: header.id,
    n: header.n,
    latentDim: header.latent_dim,
    itemShape: header.item_shape,
    pixelScale: header.pixel_scale || 1, // 2: the items travel as thumbnails half their side
    categories: header.categories,
    x,
    y,
    category: view("category"),
    rows: view("rows"),
    index: view("index"),
    gridX: view("grid_x"),
    gridY: view("grid_y"),
    grid: view("grid_codes"),
    pixels: view("pixels"),
  };
}

function registerColumn(bytes) {
  const { header, view } = parseBlob(bytes);
  MAPS.columns.set(header.id, { ...header, values: view("values") });
  while (MAPS.columns.size > KEEP_MAPS) MAPS.columns.delete(MAPS.columns.keys().next().value);
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
  s.pendingEvent = { clientX: e.clientX, clientY: e.clientY };
  if (!s.frame) {
    s.frame = requestAnimationFrame(() => {
      s.frame = 0;
      drawAt(s, s.pending[0], s.pending[1]);
      if (s.layerActive) showItem(s, layerPointAt(s, s.pendingEvent)); // Plotly's hover does not see them
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
  s.root.dataset.itemWhole = ""; // "1" once the item's whole picture is drawn
  if (k === null) {
    s.itemHead.textContent = "";
    s.itemCanvas.hidden = true;
    s.itemCaption.textContent = "";
    return;
  }
  s.itemHead.textContent = s.labelled ? `Item: ${s.map.categories[s.map.category[k]].name}` : "Item";
  const i = s.map.index[k];
  const [part, index] = s.split !== "all" ? [s.split, i] : i < s.nTrain ? ["train", i] : ["test", i - s.nTrain];
  s.itemCaption.textContent = `${part} item #${index}`;
  const whole = wholePicture(s, k); // items.js: the map's own pixels, or fetched from the server
  if (!whole && fetchesItems(s)) askItems(s, [k], () => s.root.dataset.item === String(s.map.rows[k]) && showItem(s, k));
  const shape = whole ? whole.shape : s.map.itemShape;
  if (!whole && !s.map.pixels) {
    s.itemCanvas.hidden = true;
    s.itemCaption.textContent += fetchesItems(s) ? " — its picture is on its way" : " — click it to see it";
    return;
  }
  const size = shape.reduce((a, b) => a * b, 1);
  const raw = whole ? whole.pixels : s.map.pixels.subarray(k * size, (k + 1) * size);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = raw[i] / 255;
  paint({ shape }, s.itemCanvas, values);
  s.itemCanvas.hidden = false;
  s.root.dataset.itemWhole = whole ? "1" : "";
  if (!whole) s.itemCaption.textContent += ` (a thumbnail, 1/${s.map.pixelScale} of its side)`;
}

// ------------------------------------------------------------------ colours

/** A label as Plotly shows it literally: it renders a subset of HTML in trace names (ui/text.py's chart_text). */
const chartText = (t) => String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The categories the points are coloured by (the map's labels, or a category column), or null for numbers. */
function categoriesOf(s) {
  if (!s.column) return s.map.categories;
  return s.column.kind === "category" ? s.column.categories : null;
}

/** Drawn point k's category (its label, or its value in a category column). */
function categoryOf(s, k) {
  return s.column ? s.column.values[s.map.rows[k]] : s.map.category[k];
}

/** A step colour scale: value c (0 .. K-1) is category c's colour, value K the grey of the points not shown. */
function stepScale(colours) {
  const all = [...colours, GREY];
  const out = [];
  all.forEach((c, i) => out.push([i / all.length, c], [(i + 1) / all.length, c]));
  return out;
}

/** The drawing order (drawn point p is map point order[p]) and the marker of the points trace. With one category
 * shown only, the others come first (underneath) in grey. */
function pointsMarker(s, data) {
  const map = s.map;
  const n = map.n;
  const cats = categoriesOf(s);
  const only = cats && s.only !== null && s.only < cats.length ? s.only : null;
  let order = s.identity && s.identity.length === n ? s.identity : (s.identity = Int32Array.from({ length: n }, (_, k) => k));
  if (only !== null) {
    const rest = [];
    const shown = [];
    for (let k = 0; k < n; k++) (categoryOf(s, k) === only ? shown : rest).push(k);
    order = Int32Array.from([...rest, ...shown]);
  }
  const colour = new Float32Array(n);
  const marker = { size: data.size, opacity: data.opacity, color: colour };
  if (cats) {
    for (let p = 0; p < n; p++) {
      const c = categoryOf(s, order[p]);
      colour[p] = only !== null && c !== only ? cats.length : c;
    }
    Object.assign(marker, { colorscale: stepScale(cats.map((c) => c.colour)), cmin: -0.5, cmax: cats.length + 0.5, showscale: false });
  } else {
    const [lo, hi] = s.column.range;
    for (let p = 0; p < n; p++) {
      const v = s.column.values[map.rows[order[p]]];
      colour[p] = Number.isFinite(v) ? v : lo;
    }
    Object.assign(marker, {
      colorscale: s.column.scale, cmin: lo, cmax: hi > lo ? hi : lo + 1, showscale: true,
      colorbar: { title: { text: s.column.name, side: "right" }, len: 0.45, thickness: 12, x: 1.0, xpad: 4, y: 0.98, yanchor: "top" },
    });
  }
  return { order, marker, only };
}

/** Hand a large map's points to the layer (points.js); false, and Plotly draws them, where it cannot take them. */
function layerTake(s, data, x, y, marker) {
  try {
    if ((data.clears || 0) !== s.clears) s.layerPicked = null; // "Clear selection" in the page: every point full
    const cats = categoriesOf(s);
    layerSet(s, {
      x, y, values: marker.color, size: data.size, opacity: data.opacity, lo: marker.cmin, hi: marker.cmax,
      colours: cats ? [...cats.map((c) => c.colour), GREY] : null, scale: cats ? null : marker.colorscale,
    });
    return true;
  } catch (e) {
    s.layerFailed = true;
    s.status.dataset.layerError = e.message;
    return false;
  }
}

function traces(s, data) {
  const map = s.map;
  const { order, marker, only } = pointsMarker(s, data);
  s.order = order;
  const x = new Float32Array(map.n);
  const y = new Float32Array(map.n);
  for (let p = 0; p < map.n; p++) [x[p], y[p]] = [map.x[order[p]], map.y[order[p]]];
  s.plot.__lem = { // for tests and benchmarks: each drawn point's category and row
    names: (categoriesOf(s) || []).map((c) => c.name),
    category: Int32Array.from(order, (k) => categoryOf(s, k)),
    rows: Int32Array.from(order, (k) => map.rows[k]),
  };
  s.layerActive = layerOn(s, data) && layerTake(s, data, x, y, marker); // a large map: points.js draws them
  // Plotly's trace then keeps only the colour bar: two colours at no place (an empty trace would draw no bar)
  const [px, py] = s.layerActive ? [[null, null], [null, null]] : [x, y];
  if (s.layerActive) marker.color = [marker.cmin, marker.cmax];
  // With the layer, Plotly's traces are SVG where they draw nothing over the plot (the colour bar's, the legend's,
  // an empty mark): a pan with no WebGL trace redraws no WebGL scene (60 frames/s against 25 at 70,000 points in
  // software WebGL). What is drawn over the points stays WebGL, which lies over the layer (SVG lies under it).
  const kind = s.layerActive ? "scatter" : "scattergl";
  const over = (xy) => (s.layerActive && !(xy && xy.length) ? "scatter" : "scattergl");
  const out = [{ type: kind, mode: "markers", x: px, y: py, name: "points", showlegend: false, hoverinfo: "none", marker }];
  const bins = Math.min(80, Math.max(10, Math.round(Math.sqrt(map.n) / 2))); // coarser for fewer points
  if (data.density === "label" && categoriesOf(s)) out.push(...labelDensities(s, only)); // a contour per label
  else if (data.density) { // where the points lie thickest, as contours (SVG, under the WebGL points; Plotly bins)
    out.push({
      type: "histogram2dcontour", x: map.x, y: map.y, name: "density", showlegend: false, hoverinfo: "skip",
      ncontours: 10, nbinsx: bins, nbinsy: bins, showscale: false, contours: { coloring: "fill", showlines: false },
      colorscale: [[0, "rgba(128,128,128,0)"], [1, "rgba(90,90,90,0.55)"]],
    });
  }
  const cats = categoriesOf(s);
  s.legendStart = out.length; // the legend entries' first trace
  (cats || []).forEach((c, i) => {
    out.push({ // a legend entry only: clicking it shows only this category
      type: kind, mode: "markers", x: [null], y: [null], name: chartText(c.name), legendgroup: "category",
      hoverinfo: "skip",
      marker: { size: 9, color: only === null || only === i ? c.colour : GREY },
    });
  });
  const mark = (xy, symbol, size, colour) => ({
    type: over(xy),
    mode: "markers",
    x: xy ? [xy[0]] : [],
    y: xy ? [xy[1]] : [],
    showlegend: false,
    hoverinfo: "skip",
    marker: { symbol, size, color: colour, line: { width: 2, color: "black" } },
  });
  for (const o of data.overlays || []) {
    out.push({
      type: over(o.xy),
      mode: o.line ? "lines" : "markers",
      x: o.xy.map((p) => p[0]),
      y: o.xy.map((p) => p[1]),
      name: o.name,
      legendgroup: "overlay",
      showlegend: false, // a legend entry would widen the legend and shift the plot under the pointer
      hoverinfo: "skip",
      line: { color: o.colour, width: 1.5 },
      marker: { size: o.size || 5, color: o.colour, symbol: o.symbol || "circle" },
    });
  }
  out.push(mark(data.ring, "circle-open", 18, "black"), mark(data.pin, "star", 20, "gold"));
  return out;
}

/** One density per category, its contour lines in its colour (only the category shown alone, when one is). */
function labelDensities(s, only) {
  const map = s.map;
  const cats = categoriesOf(s);
  const xs = cats.map(() => []);
  const ys = cats.map(() => []);
  for (let k = 0; k < map.n; k++) {
    const c = categoryOf(s, k);
    if (c >= 0 && c < cats.length) [xs[c].push(map.x[k]), ys[c].push(map.y[k])];
  }
  const bins = Math.min(60, Math.max(10, Math.round(Math.sqrt(map.n / cats.length) / 2)));
  return cats.flatMap((c, i) => (only !== null && only !== i) || xs[i].length < 10 ? [] : [{
    type: "histogram2dcontour", x: xs[i], y: ys[i], name: `density ${chartText(c.name)}`, showlegend: false,
    hoverinfo: "skip", ncontours: 4, nbinsx: bins, nbinsy: bins, showscale: false,
    contours: { coloring: "lines", showlines: true }, line: { width: 1.5 },
    colorscale: [[0, c.colour], [1, c.colour]], opacity: 0.9,
  }]);
}

// The map's height: "auto" fills most of the window (at least 420 px), so the plot starts on the first screen and
// ends above the fold; a number is taken as it is.
function plotHeight(data) {
  return data.height === "auto" ? Math.max(420, Math.round(window.innerHeight * 0.8)) : data.height;
}

// Under 900 px the map takes the column's whole width: tick labels inside the plot, no axis titles.
const narrow = () => window.innerWidth < 900;

function layout(s, data) {
  const [x0, x1, y0, y1] = data.box;
  const style = getComputedStyle(s.root); // Streamlit's theme (light or dark) reaches the map
  const ink = style.color || "#31333f";
  const paper = getComputedStyle(document.body).backgroundColor || "#ffffff";
  const numbers = !categoriesOf(s);
  const axis = (title) => ({
    title: { text: narrow() ? "" : title }, zeroline: false, gridcolor: "rgba(128,128,128,0.2)",
    ticklabelposition: narrow() ? "inside" : "outside", autorange: false,
  });
  const out = {
    height: plotHeight(data),
    margin: narrow() ? { l: 6, r: numbers ? 60 : 6, t: 40, b: 24 } : { l: 50, r: numbers ? 80 : 10, t: 40, b: 40 },
    hovermode: "closest",
    hoveranywhere: true,
    clickanywhere: true,
    dragmode: "pan",
    uirevision: data.map,
    selectionrevision: `${data.map}:${data.clears || 0}`, // "Clear selection" in the page drops the box or lasso
    font: { color: ink },
    showlegend: !numbers,
    // inside the plot's top-left corner (the preview floats at the bottom right): the plot keeps the whole width
    legend: { title: { text: s.column ? s.column.name : "label" }, x: 0.005, y: 0.995, xanchor: "left", yanchor: "top",
              bgcolor: paper.replace(/^rgb\((.*)\)$/, "rgba($1, 0.75)"), borderwidth: 0 },
    xaxis: { ...axis(`${data.axis} 1`), range: [x0, x1] },
    yaxis: { ...axis(`${data.axis} 2`), range: [y0, y1] },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    images: [],
    newshape: { line: { color: ink, width: 3 }, opacity: 0.7 }, // a path drawn for a film
    shapes: filmShapes(s, data),
  };
  out.images.push(...spriteImages(s, data)); // the items in view, when few enough are (sprites.js)
  if (s.clears !== (data.clears || 0)) {
    s.clears = data.clears || 0;
    out.selections = []; // the drawn box or lasso goes with the selection
  }
  if (data.backdrop) {
    out.xaxis.showgrid = out.yaxis.showgrid = false;
    out.images.unshift({ source: data.backdrop, xref: "x", yref: "y", x: x0, y: y1, sizex: x1 - x0, sizey: y1 - y0, sizing: "stretch", opacity: 0.6, layer: "below" });
  }
  return out;
}

function events(s, Plotly) {
  const gd = s.plot;
  gd.on("plotly_hover", (e) => {
    if (s.layerActive) return; // the layer's points are found by the pointer's handler
    const p = e.points && e.points[0];
    showItem(s, p && p.curveNumber === 0 ? s.order[p.pointNumber] : null);
  });
  gd.on("plotly_unhover", () => s.layerActive || showItem(s, null));
  gd.on("plotly_relayouting", () => s.layerActive && layerFollow(s)); // a pan or zoom under way
  gd.on("plotly_afterplot", () => s.layerActive && layerDraw(s));
  // box or lasso (the mode bar's select tools): the selected items go to Python as one group
  gd.on("plotly_selected", (e) => {
    if (!e || !s.map) return;
    const picked = s.layerActive ? layerSelected(s, e) : null;
    if (picked) {
      layerChoose(s, picked); // the points outside the box or lasso fade
      layerDraw(s);
    }
    const rows = picked
      ? picked.map((k) => s.map.rows[k])
      : (e.points || []).filter((p) => p.curveNumber === 0).map((p) => s.map.rows[s.order[p.pointNumber]]);
    if (!rows.length) return;
    s.clicks += 1;
    s.setStateValue("pick", { kind: "selection", map: s.map.id, rows, n: s.clicks });
  });
  // a legend entry: show only that category (the rest grey, underneath); again: show all
  gd.on("plotly_legendclick", (e) => {
    const c = e.curveNumber - s.legendStart;
    if (c < 0 || !s.data) return false;
    s.only = s.only === c ? null : c;
    s.root.dataset.only = s.only === null ? "" : String(c);
    Plotly.react(gd, traces(s, s.data), layout(s, s.data), CONFIG);
    return false;
  });
  gd.on("plotly_legenddoubleclick", () => false);
  gd.on("plotly_deselect", () => { // a double click with a select tool: every point full again
    if (!s.layerActive) return;
    layerChoose(s, null);
    layerDraw(s);
  });
  gd.on("plotly_relayout", (e) => {
    if (s.layerActive) layerDraw(s);
    onShapes(s, e); // a path drawn: its film (film.js)
    onView(s, e); // zoomed in far enough: the items' pictures on the map (sprites.js)
  });
}

/** The drawn point nearest the pointer within 8 px (k, in the map's order), or null: found here rather than
 * from Plotly's hover event, which trails a fast pointer by up to 50 ms. */
function pointAt(s, e) {
  const layout = s.plot._fullLayout;
  const r = s.plot.getBoundingClientRect();
  const xa = layout.xaxis;
  const ya = layout.yaxis;
  const ex = e.clientX - r.left - xa._offset;
  const ey = e.clientY - r.top - ya._offset;
  let best = null;
  let bestD = 8 * 8;
  const { x, y } = s.map;
  for (let k = 0; k < s.map.n; k++) {
    const dx = xa.l2p(x[k]) - ex;
    const dy = ya.l2p(y[k]) - ey;
    const d = dx * dx + dy * dy;
    if (d <= bestD) [best, bestD] = [k, d];
  }
  return best;
}

/** A click (not a drag) on the plot area: the item under the pointer, else that spot, goes to Python. */
function clicks(s) {
  let down = null;
  // the legend, the colour bar and the mode bar lie over the plot area: a press on them is not a click on the map
  const onMap = (e) => !(e.target instanceof Element && e.target.closest(".legend, .colorbar, .modebar"));
  s.plot.addEventListener("pointerdown", (e) => (down = onMap(e) ? { x: e.clientX, y: e.clientY, far: 0 } : null), true);
  // how far the press has gone: a lasso closed where it began comes up at its start, and is no click
  document.addEventListener("pointermove", (e) => {
    if (down) down.far = Math.max(down.far, Math.hypot(e.clientX - down.x, e.clientY - down.y));
  }, true);
  // Plotly covers the page with a drag layer on pointer down, so the pointer comes up over that, not the plot
  document.addEventListener("pointerup", (e) => {
    const at = mapPosition(s, e);
    const still = down && Math.max(down.far, Math.hypot(e.clientX - down.x, e.clientY - down.y)) < 5; // a drag goes further
    down = null;
    if (!still || !at || !s.map || !globalThis.Plotly) return;
    s.clicks += 1;
    const k = s.layerActive ? layerPointAt(s, e) : pointAt(s, e);
    if (k !== null) return s.setStateValue("pick", { kind: "item", map: s.map.id, row: s.map.rows[k], n: s.clicks });
    const z = lookup(s.map, at[0], at[1], new Float32Array(s.map.latentDim));
    const star = { x: [[at[0]]], y: [[at[1]]], type: "scattergl" }; // at once, over the points (WebGL)
    globalThis.Plotly.restyle(s.plot, star, [s.plot.data.length - 1]);
    s.setStateValue("pick", { kind: "point", map: s.map.id, xy: at, z: Array.from(z), n: s.clicks });
  }, true);
}

const CONFIG = {
  displaylogo: false, showSendToCloud: false, scrollZoom: true, responsive: true, // no "Share chart…" upload
  modeBarButtonsToAdd: ["drawopenpath"], // draw a path, get a film (film.js)
};

function render(s, data, Plotly) {
  s.data = data;
  if (s.drawn === data.map) {
    Plotly.react(s.plot, traces(s, data), layout(s, data), CONFIG); // the same map: keep the user's zoom
  } else {
    s.only = null;
    stopFilm(s); // another map: the film of the old one goes
    Plotly.purge(s.plot); // another map: start afresh (react kept the old map's axis ranges)
    Plotly.newPlot(s.plot, traces(s, data), layout(s, data), CONFIG);
    events(s, Plotly);
    s.drawn = data.map;
  }
  if (s.layerActive) layerDraw(s);
  else if (s.layer) {
    s.layer.box.remove(); // a smaller map: Plotly draws its points
    delete s.plot.dataset.layer;
  }
  s.root.dataset.map = data.map;
  s.root.dataset.only = s.only === null || s.only === undefined ? "" : String(s.only);
  s.root.dataset.column = s.column ? s.column.name : "";
}

function whenColumn(id, callback) {
  if (!id) return callback(null);
  const column = MAPS.columns.get(id);
  if (column) return callback(column);
  if (!MAPS.waiting.has(id)) MAPS.waiting.set(id, []);
  MAPS.waiting.get(id).push(callback);
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
    whenColumn(data.column, (column) => {
      if (column && column.map !== map.id) return;
      if ((s.column ? s.column.id : null) !== (column ? column.id : null)) s.only = null;
      if ((data.only ?? null) !== (s.onlyAsked ?? null)) s.only = s.onlyAsked = data.only ?? null; // the Find box
      s.map = map;
      s.column = column;
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
  });
}

export default function (component) {
  const data = component.data;
  if (data instanceof Uint8Array) {
    const kind = magic(data);
    if (kind === PLOTLY_MAGIC) return loadPlotly(data);
    if (kind === MAP_MAGIC) return registerMap(data);
    if (kind === COLUMN_MAGIC) {
      registerColumn(data);
      const id = parseBlob(data).header.id;
      (MAPS.waiting.get(id) || []).forEach((f) => f(MAPS.columns.get(id)));
      return MAPS.waiting.delete(id);
    }
    return register(data); // the decoder (core.js), or an error it reports
  }
  return panel(component);
}
