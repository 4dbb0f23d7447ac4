// Linked hover on the Compare page: hovering an item on one run's map rings the same item on the other.
//
// The two maps are Streamlit's own Plotly charts (keys compare_chart_A and compare_chart_B); this component draws
// nothing of its own but a ring over the other chart. Each chart's first trace holds the items, with each item's
// row in customdata, so the same row is found on the other map and its place computed from that chart's axes.

const LINK = (globalThis.__latentExplorerCompareLink ??= { charts: [], timer: null });

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

function ringOf(gd) {
  let ring = gd.querySelector(":scope > .le-link-ring");
  if (!ring) {
    ring = document.createElement("div");
    ring.className = "le-link-ring";
    if (getComputedStyle(gd).position === "static") gd.style.position = "relative";
    gd.appendChild(ring);
  }
  return ring;
}

function mark(gd, row) {
  const ring = ringOf(gd);
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
  });
}

export default function (component) {
  LINK.charts = component.data?.charts || [];
  attach();
  clearInterval(LINK.timer);
  LINK.timer = setInterval(attach, 400); // charts drawn (or drawn again) after this component
  return () => clearInterval(LINK.timer);
}
