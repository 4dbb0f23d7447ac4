// The Compare page's two maps, linked in the browser: hovering an item on one run's map rings the same item on the
// other, and pointing anywhere on either map decodes that spot through both runs' decoders.
// core.js (the shared decoder, prepended by Python: ui/decoder/__init__.py, ``module``) supplies decode, toRGBA,
// register, whenLoaded, recordDraw and element.
//
// The two maps are Streamlit's own Plotly charts (keys compare_chart_A and compare_chart_B); this component draws
// nothing but a ring over the other chart and a small panel of two pictures over the chart pointed at. Each chart's
// first trace holds the items, with each item's row in customdata, so the same row is found on the other map and
// its place computed from that chart's axes. A PCA map's inverse is exact: the spot (x, y) is the code
// origin + x basis[0] + y basis[1] of its run; that code carried across (z W + bias: a linear map, a rotation or
// the same raw z, as the page chose) is the other run's. Two more mounts of this component carry the decoders'
// bytes (Uint8Array data: registered, nothing drawn). The panel records what it drew last for the tests:
// data-side, data-x, data-y (map position) and data-draws.

const LINK = (globalThis.__latentExplorerCompareLink ??= { charts: [], timer: null, both: null });
const PICTURE_PX = 96;

function chartsNow() {
  return LINK.charts.map((key) => document.querySelector(`.st-key-${key} .js-plotly-plot`));
}

function rows(gd) { // item row -> index into the first trace, rebuilt when the trace changes
  const trace = gd._fullData?.[0];
  if (!trace) return null;
  if (gd.__leRowsOf !== trace.customdata) {
    gd.__leRowsOf = trace.customdata;
    gd.__leRows = new Map();
    Array.from(trace.customdata || [], (row, i) => gd.__leRows.set(Number(row), i));
  }
  return gd.__leRows;
}

function overlay(gd, className) {
  let el = gd.querySelector(`:scope > .${className}`);
  if (!el) {
    el = document.createElement("div");
    el.className = className;
    if (getComputedStyle(gd).position === "static") gd.style.position = "relative";
    gd.appendChild(el);
  }
  return el;
}

function mark(gd, row) {
  const ring = overlay(gd, "le-link-ring");
  const i = row === null ? undefined : rows(gd)?.get(row);
  const trace = gd._fullData?.[0];
  const layout = gd._fullLayout;
  if (i === undefined || !trace || !layout) {
    ring.style.display = "none";
    ring.dataset.row = "";
    return;
  }
  const xa = layout.xaxis, ya = layout.yaxis;
  const x = xa._offset + xa.l2p(trace.x[i]);
  const y = ya._offset + ya.l2p(trace.y[i]);
  const inside = x >= xa._offset && x <= xa._offset + xa._length && y >= ya._offset && y <= ya._offset + ya._length;
  ring.style.display = inside ? "block" : "none";
  ring.style.left = `${x}px`;
  ring.style.top = `${y}px`;
  ring.dataset.row = String(row);
}

// ------------------------------------------------------------------ decoding through both runs

/** The map position (data coordinates) of a pointer event on chart ``gd``, or null outside its plot area. */
function mapPosition(gd, e) {
  const layout = gd._fullLayout;
  if (!layout) return null;
  const xa = layout.xaxis, ya = layout.yaxis;
  const r = gd.getBoundingClientRect();
  const px = e.clientX - r.left - xa._offset;
  const py = e.clientY - r.top - ya._offset;
  if (px < 0 || py < 0 || px > xa._length || py > ya._length) return null;
  return [xa.p2d(px), ya.p2d(py)];
}

/** The code of ``side`` at map position (x, y): its PCA map's exact inverse. */
function codeAt(side, x, y) {
  return side.origin.map((o, d) => o + x * side.basis[0][d] + y * side.basis[1][d]);
}

/** Code ``z`` carried into the other run's space: z W + bias (W rows: this space's dimensions). */
function carried(across, z) {
  return across.bias.map((b, j) => z.reduce((s, v, i) => s + v * across.weight[i][j], b));
}

function panelOf(gd) {
  const panel = overlay(gd, "le-both");
  if (!panel.__le) {
    const names = LINK.both.sides.map((s) => s.name);
    panel.__le = names.map((name, k) => {
      const figure = element("figure", "le-both-picture", panel);
      const canvas = element("canvas", `le-both-canvas le-both-${"AB"[k]}`, figure);
      canvas.style.width = canvas.style.height = `${PICTURE_PX}px`;
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `${name}'s decode here`);
      return { canvas, caption: element("figcaption", "", figure) };
    });
  }
  return panel;
}

function draw(gd, k, at) {
  const both = LINK.both;
  const t0 = performance.now();
  const here = codeAt(both.sides[k], at[0], at[1]);
  const codes = k === 0 ? [here, carried(both.sides[0].across, here)] : [carried(both.sides[1].across, here), here];
  const models = both.sides.map((s) => s.model);
  if (models.some((m) => !m)) return;
  const panel = panelOf(gd);
  panel.__le.forEach(({ canvas, caption }, j) => {
    const model = models[j];
    const [, h, w] = model.shape;
    if (canvas.width !== w || canvas.height !== h || !canvas.__image) {
      [canvas.width, canvas.height] = [w, h];
      canvas.__image = new ImageData(w, h); // reused: a pointer move draws without allocating
    }
    toRGBA(model, decode(model, codes[j]), canvas.__image.data);
    canvas.getContext("2d").putImageData(canvas.__image, 0, 0);
    caption.textContent = j === k ? `${both.sides[j].name} · here` : `${both.sides[j].name} · carried: ${both.carried}`;
  });
  panel.style.display = "flex";
  Object.assign(panel.dataset, { side: "AB"[k], x: String(at[0]), y: String(at[1]) });
  panel.dataset.draws = String(Number(panel.dataset.draws || 0) + 1);
  recordDraw(t0);
}

function pointer(gd, k, e) {
  if (!LINK.both) return;
  const at = mapPosition(gd, e);
  if (!at) return hide(gd);
  gd.__lePending = at;
  if (!gd.__leFrame) {
    gd.__leFrame = requestAnimationFrame(() => {
      gd.__leFrame = 0;
      draw(gd, k, gd.__lePending);
    });
  }
}

function hide(gd) {
  const panel = gd.querySelector(":scope > .le-both");
  if (panel) panel.style.display = "none";
}

function loadModels(both) {
  both.sides.forEach((side) =>
    whenLoaded(side.id, (model) => {
      if (LINK.both === both) side.model = model;
    }),
  );
}

// ------------------------------------------------------------------ wiring

function attach() {
  const gds = chartsNow();
  gds.forEach((gd, side) => {
    if (!gd || gd.__leLinked || typeof gd.on !== "function") return;
    gd.__leLinked = true;
    gd.on("plotly_hover", (ev) => {
      const point = (ev.points || []).find((p) => p.curveNumber === 0 && p.customdata !== undefined);
      const other = chartsNow()[1 - side];
      if (point && other) mark(other, Number(point.customdata));
    });
    gd.on("plotly_unhover", () => {
      const other = chartsNow()[1 - side];
      if (other) mark(other, null);
    });
    gd.addEventListener("pointermove", (e) => pointer(gd, side, e));
    gd.addEventListener("pointerleave", () => hide(gd));
  });
}

export default function (component) {
  if (component.data instanceof Uint8Array) return register(component.data);
  LINK.charts = component.data?.charts || [];
  const both = component.data?.both || null;
  if (JSON.stringify(both) !== JSON.stringify(LINK.both && LINK.both.spec)) {
    LINK.both = both && { ...both, spec: both, sides: both.sides.map((s) => ({ ...s })) };
    if (LINK.both) loadModels(LINK.both);
    for (const gd of chartsNow()) if (gd) gd.querySelector(":scope > .le-both")?.remove(); // new names, new panel
  }
  attach();
  clearInterval(LINK.timer);
  LINK.timer = setInterval(attach, 400); // charts drawn (or drawn again) after this component
  return () => clearInterval(LINK.timer);
}
