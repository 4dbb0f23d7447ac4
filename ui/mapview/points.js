// Large maps: the points drawn by a WebGL layer of the map's own, under Plotly's axes, instead of Plotly's scattergl.
// Measured in headless Chromium with software WebGL (bench/bench_renderers.py): panning 737,280 points, Plotly
// redraws 1.1 times a second; this layer alone 4, and during a pan it only moves its last picture with the axes (a
// CSS transform), so a pan runs at Plotly's own pace for its axes and small traces. Plotly keeps everything else:
// axes, legend and colour bar (from its points trace, left empty), overlays, the star, the tools, the events.
// Appended by Python after map.js (ui/mapview/__init__.py); the panel's "layer_at" sets the size it takes over at.

const LAYER_VS = `
attribute vec2 xy;
attribute float value;
attribute float chosen; // 1: in the box or lasso drawn (or no selection), 0: not
uniform vec4 view;   // x0, y0, 1 / (x1 - x0), 1 / (y1 - y0): the axes' ranges
uniform vec3 colour; // lo, 1 / span, entries - 1: a value's place in the colour table
uniform float size;
uniform float dim;   // 1 while a selection stands: the points outside it fade, as Plotly fades a trace's
varying float place;
varying float fade;
void main() {
  gl_Position = vec4(2.0 * (xy - view.xy) * view.zw - 1.0, 0.0, 1.0);
  gl_PointSize = size;
  place = (clamp((value - colour.x) * colour.y, 0.0, 1.0) * colour.z + 0.5) / (colour.z + 1.0);
  fade = 1.0 - 0.8 * dim * (1.0 - chosen);
}`;
const LAYER_FS = `
precision mediump float;
varying float place;
varying float fade;
uniform sampler2D table;
uniform float opacity;
void main() {
  vec2 d = gl_PointCoord - 0.5;
  if (dot(d, d) > 0.25) discard; // round points, as Plotly draws them
  vec4 c = texture2D(table, vec2(place, 0.5));
  float a = c.a * opacity * fade;
  gl_FragColor = vec4(c.rgb * a, a); // premultiplied, as the page composites the canvas
}`;

/** Whether this map's points go to the layer (its size, and a browser that gave the layer a WebGL context). */
function layerOn(s, data) {
  return Boolean(s.map && data.layer_at && s.map.n > data.layer_at && !s.layerFailed);
}

/** CSS colours as RGBA bytes (any form Plotly takes: names, #hex, rgb(), rgba()). */
function rgbaBytes(colours) {
  const c = document.createElement("canvas");
  c.width = c.height = 1;
  const ctx = c.getContext("2d", { willReadFrequently: true });
  const out = new Uint8Array(4 * colours.length);
  colours.forEach((colour, i) => {
    ctx.clearRect(0, 0, 1, 1);
    ctx.fillStyle = colour;
    ctx.fillRect(0, 0, 1, 1);
    out.set(ctx.getImageData(0, 0, 1, 1).data, 4 * i);
  });
  return out;
}

/** A colour table of 256 entries sampled from a Plotly colour scale ([[t, colour], ...], t from 0 to 1). */
function scaleTable(scale) {
  const stops = rgbaBytes(scale.map((p) => p[1]));
  const out = new Uint8Array(4 * 256);
  for (let e = 0; e < 256; e++) {
    const t = e / 255;
    let j = 0;
    while (j < scale.length - 2 && scale[j + 1][0] < t) j++;
    const [t0, t1] = [scale[j][0], scale[j + 1][0]];
    const f = t1 > t0 ? Math.min(1, Math.max(0, (t - t0) / (t1 - t0))) : 0;
    for (let ch = 0; ch < 4; ch++) out[4 * e + ch] = Math.round(stops[4 * j + ch] * (1 - f) + stops[4 * (j + 1) + ch] * f);
  }
  return out;
}

function layerProgram(gl) {
  const shader = (type, source) => {
    const sh = gl.createShader(type);
    gl.shaderSource(sh, source);
    gl.compileShader(sh);
    if (!gl.getShaderParameter(sh, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(sh));
    return sh;
  };
  const program = gl.createProgram();
  gl.attachShader(program, shader(gl.VERTEX_SHADER, LAYER_VS));
  gl.attachShader(program, shader(gl.FRAGMENT_SHADER, LAYER_FS));
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
  return program;
}

/** The layer's canvas in a clipping box over the plot area, just under Plotly's WebGL traces and top SVG. */
function layerMake(s) {
  const box = document.createElement("div");
  box.className = "lem-layer";
  const canvas = document.createElement("canvas");
  box.appendChild(canvas);
  const gl = canvas.getContext("webgl", { antialias: false, premultipliedAlpha: true, preserveDrawingBuffer: true });
  if (!gl) throw new Error("this browser gave no WebGL context");
  const program = layerProgram(gl);
  const at = (name) => gl.getUniformLocation(program, name);
  const layer = { box, canvas, gl, program, xy: gl.createBuffer(), value: gl.createBuffer(), chosen: gl.createBuffer(),
                  table: gl.createTexture(), dim: 0,
                  u: { view: at("view"), colour: at("colour"), size: at("size"), opacity: at("opacity"), table: at("table"),
                       dim: at("dim") },
                  a: { xy: gl.getAttribLocation(program, "xy"), value: gl.getAttribLocation(program, "value"),
                       chosen: gl.getAttribLocation(program, "chosen") } };
  gl.bindTexture(gl.TEXTURE_2D, layer.table);
  for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(gl.TEXTURE_2D, p, gl.NEAREST);
  for (const p of [gl.TEXTURE_WRAP_S, gl.TEXTURE_WRAP_T]) gl.texParameteri(gl.TEXTURE_2D, p, gl.CLAMP_TO_EDGE);
  return layer;
}

/** Give the layer this map's points: x, y and colour value per drawn point (in the drawing order), and how a value
 * finds its colour: a category's index in ``colours`` (categories), or a place on ``scale`` from lo to hi. */
function layerSet(s, { x, y, values, colours, scale, lo, hi, size, opacity }) {
  if (!s.layer) s.layer = layerMake(s);
  const L = s.layer;
  const { gl } = L;
  const n = x.length;
  const xy = new Float32Array(2 * n);
  for (let p = 0; p < n; p++) [xy[2 * p], xy[2 * p + 1]] = [x[p], y[p]];
  gl.bindBuffer(gl.ARRAY_BUFFER, L.xy);
  gl.bufferData(gl.ARRAY_BUFFER, xy, gl.STATIC_DRAW);
  gl.bindBuffer(gl.ARRAY_BUFFER, L.value);
  gl.bufferData(gl.ARRAY_BUFFER, values, gl.STATIC_DRAW);
  const table = colours ? rgbaBytes(colours) : scaleTable(scale);
  const entries = table.length / 4;
  gl.bindTexture(gl.TEXTURE_2D, L.table);
  gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, entries, 1, 0, gl.RGBA, gl.UNSIGNED_BYTE, table);
  Object.assign(L, { n, size, opacity, colour: colours ? [0, 1 / Math.max(1, entries - 1), entries - 1] : [lo, 1 / (hi > lo ? hi - lo : 1), entries - 1] });
  s.plot.dataset.layer = String(n);
  layerChoose(s, s.layerPicked && s.layerPicked.map === s.map.id ? s.layerPicked.ks : null); // kept across redraws
}

/** A box's or lasso's points (k, in the map's order) at full strength and the others faded; null: every point full. */
function layerChoose(s, ks) {
  const L = s.layer;
  const chosen = new Float32Array(L.n).fill(1);
  if (ks && ks.length) {
    const inside = new Uint8Array(s.map.n);
    for (const k of ks) inside[k] = 1;
    for (let p = 0; p < L.n; p++) chosen[p] = inside[s.order[p]];
  }
  L.dim = ks && ks.length ? 1 : 0;
  s.layerPicked = L.dim ? { map: s.map.id, ks } : null;
  s.plot.dataset.layerChosen = L.dim ? String(ks.length) : "";
  L.gl.bindBuffer(L.gl.ARRAY_BUFFER, L.chosen);
  L.gl.bufferData(L.gl.ARRAY_BUFFER, chosen, L.gl.STATIC_DRAW);
}

/** The plot area's ranges and place now (Plotly's axes). */
function layerView(s) {
  const { xaxis: xa, yaxis: ya } = s.plot._fullLayout;
  return { x: xa.range.slice(), y: ya.range.slice(), left: xa._offset, top: ya._offset, w: xa._length, h: ya._length };
}

/** Draw every point for the axes as they are now; the picture then sits untransformed over the plot area. */
function layerDraw(s) {
  const L = s.layer;
  if (!L || !s.plot._fullLayout || !s.plot._fullLayout.xaxis) return;
  clearTimeout(L.rest); // drawn now: the pan's pending redraw at rest would draw the same again
  const host = s.plot.querySelector(".gl-container");
  if (host && L.box.nextSibling !== host) host.parentNode.insertBefore(L.box, host); // Plotly rebuilt its layers
  const v = layerView(s);
  const ratio = window.devicePixelRatio || 1;
  Object.assign(L.box.style, { left: `${v.left}px`, top: `${v.top}px`, width: `${v.w}px`, height: `${v.h}px` });
  const [w, h] = [Math.max(1, Math.round(v.w * ratio)), Math.max(1, Math.round(v.h * ratio))];
  if (L.canvas.width !== w || L.canvas.height !== h) [L.canvas.width, L.canvas.height] = [w, h];
  Object.assign(L.canvas.style, { width: `${v.w}px`, height: `${v.h}px`, transform: "" });
  const { gl } = L;
  gl.viewport(0, 0, w, h);
  gl.clearColor(0, 0, 0, 0);
  gl.clear(gl.COLOR_BUFFER_BIT);
  gl.useProgram(L.program);
  gl.enable(gl.BLEND);
  gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
  gl.bindBuffer(gl.ARRAY_BUFFER, L.xy);
  gl.enableVertexAttribArray(L.a.xy);
  gl.vertexAttribPointer(L.a.xy, 2, gl.FLOAT, false, 0, 0);
  gl.bindBuffer(gl.ARRAY_BUFFER, L.value);
  gl.enableVertexAttribArray(L.a.value);
  gl.vertexAttribPointer(L.a.value, 1, gl.FLOAT, false, 0, 0);
  gl.bindBuffer(gl.ARRAY_BUFFER, L.chosen);
  gl.enableVertexAttribArray(L.a.chosen);
  gl.vertexAttribPointer(L.a.chosen, 1, gl.FLOAT, false, 0, 0);
  gl.uniform1f(L.u.dim, L.dim);
  gl.activeTexture(gl.TEXTURE0);
  gl.bindTexture(gl.TEXTURE_2D, L.table);
  gl.uniform1i(L.u.table, 0);
  gl.uniform4f(L.u.view, v.x[0], v.y[0], 1 / (v.x[1] - v.x[0]), 1 / (v.y[1] - v.y[0]));
  gl.uniform3f(L.u.colour, ...L.colour);
  gl.uniform1f(L.u.size, L.size * ratio);
  gl.uniform1f(L.u.opacity, L.opacity);
  gl.drawArrays(gl.POINTS, 0, L.n);
  L.drawn = v;
  L.draws = (L.draws || 0) + 1;
  s.plot.dataset.layerDraws = String(L.draws);
}

/** During a pan or zoom: move the last picture as the axes move (no redraw), and draw afresh once they rest. */
function layerFollow(s) {
  const L = s.layer;
  if (!L || !L.drawn || !s.plot._fullLayout) return;
  const [d, v] = [L.drawn, layerView(s)];
  const ax = (d.x[1] - d.x[0]) / (v.x[1] - v.x[0]);
  const ay = (d.y[1] - d.y[0]) / (v.y[1] - v.y[0]);
  const bx = ((d.x[0] - v.x[0]) / (v.x[1] - v.x[0])) * v.w;
  const by = ((v.y[1] - d.y[1]) / (v.y[1] - v.y[0])) * v.h;
  L.canvas.style.transform = `translate(${bx}px, ${by}px) scale(${ax}, ${ay})`;
  clearTimeout(L.rest);
  L.rest = setTimeout(() => layerDraw(s), 150);
}

/** The map point (k, in the map's order) nearest the pointer within 8 px, from a grid of the points' places
 * (built once per map): the layer's points are not Plotly's, so Plotly's hover does not find them. */
function layerPointAt(s, e) {
  const map = s.map;
  if (!s.grid || s.grid.map !== map) s.grid = pointGrid(map);
  const g = s.grid;
  const { xaxis: xa, yaxis: ya } = s.plot._fullLayout;
  const r = s.plot.getBoundingClientRect();
  const ex = e.clientX - r.left - xa._offset;
  const ey = e.clientY - r.top - ya._offset;
  const [x0, x1] = [xa.p2d(ex - 8), xa.p2d(ex + 8)];
  const [y0, y1] = [ya.p2d(ey + 8), ya.p2d(ey - 8)];
  const cell = (v, lo, span) => Math.min(g.side - 1, Math.max(0, Math.floor(((v - lo) / span) * g.side)));
  const [c0, c1] = [cell(x0, g.x0, g.w), cell(x1, g.x0, g.w)];
  const [r0, r1] = [cell(y0, g.y0, g.h), cell(y1, g.y0, g.h)];
  if ((c1 - c0 + 1) * (r1 - r0 + 1) > 4096) return pointAt(s, e); // zoomed far out: every point, once
  let best = null;
  let bestD = 8 * 8;
  for (let row = r0; row <= r1; row++) {
    for (let col = c0; col <= c1; col++) {
      const c = row * g.side + col;
      for (let j = g.start[c]; j < g.start[c + 1]; j++) {
        const k = g.items[j];
        const dx = xa.l2p(map.x[k]) - ex;
        const dy = ya.l2p(map.y[k]) - ey;
        const dd = dx * dx + dy * dy;
        if (dd <= bestD) [best, bestD] = [k, dd];
      }
    }
  }
  return best;
}

/** The map's points sorted into a side × side grid over their box: cell c holds items[start[c] .. start[c + 1]). */
function pointGrid(map) {
  const side = 256;
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let k = 0; k < map.n; k++) {
    [x0, x1] = [Math.min(x0, map.x[k]), Math.max(x1, map.x[k])];
    [y0, y1] = [Math.min(y0, map.y[k]), Math.max(y1, map.y[k])];
  }
  const [w, h] = [x1 - x0 || 1, y1 - y0 || 1];
  const cellOf = new Int32Array(map.n);
  const start = new Int32Array(side * side + 1);
  for (let k = 0; k < map.n; k++) {
    const col = Math.min(side - 1, Math.floor(((map.x[k] - x0) / w) * side));
    const row = Math.min(side - 1, Math.floor(((map.y[k] - y0) / h) * side));
    cellOf[k] = row * side + col;
    start[cellOf[k] + 1] += 1;
  }
  for (let c = 0; c < side * side; c++) start[c + 1] += start[c];
  const fill = start.slice(0, side * side);
  const items = new Int32Array(map.n);
  for (let k = 0; k < map.n; k++) items[fill[cellOf[k]]++] = k;
  return { map, side, x0, y0, w, h, start, items };
}

/** A box or lasso drawn with Plotly's select tools, as the map's points inside it (k, in the map's order). */
function layerSelected(s, e) {
  const map = s.map;
  const out = [];
  if (e.range && e.range.x && e.range.y) {
    const [[a, b], [c, d]] = [e.range.x, e.range.y].map((r) => [Math.min(...r), Math.max(...r)]);
    for (let k = 0; k < map.n; k++) if (map.x[k] >= a && map.x[k] <= b && map.y[k] >= c && map.y[k] <= d) out.push(k);
  } else if (e.lassoPoints && e.lassoPoints.x) {
    const [px, py] = [e.lassoPoints.x, e.lassoPoints.y];
    for (let k = 0; k < map.n; k++) {
      let inside = false; // even-odd rule
      for (let i = 0, j = px.length - 1; i < px.length; j = i++) {
        if (py[i] > map.y[k] !== py[j] > map.y[k] && map.x[k] < ((px[j] - px[i]) * (map.y[k] - py[i])) / (py[j] - py[i]) + px[i]) {
          inside = !inside;
        }
      }
      if (inside) out.push(k);
    }
  }
  return out;
}
