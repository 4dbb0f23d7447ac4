"""Who draws a large map's points: Plotly's scattergl, npm's regl-scatterplot, or the map's own WebGL layer.

    python -m bench renderers [--quick]

The decision behind ui/mapview/points.js, measured: each renderer alone on a page of its own, 1100×700 px, in
headless Chromium (software WebGL here: SwiftShader, a pessimistic figure for a machine with a GPU), on the 2-D PCA
of Fashion-MNIST's pixels (10,000 and 70,000 items; 737,280: those 70,000 places repeated with a seeded jitter of 1 %
of their spread, as many points as the sprites' full grid), each point its label's colour, 2 px, opacity 0.6.
A pan is an in-page drag, one pointer move per animation frame for 3 s, every renderer redrawing all its points for
each; counted: its draws per second. Also: the first draw and the JS heap. regl-scatterplot (MIT) is installed from
npm into a cache folder and bundled with esbuild when `npm` is here (the app ships none of it); without npm its
column says so. The layer is the app's own points.js driven through a stand-in for Plotly's axes. Asserts nothing.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np
import plotly

from bench import common
from harness.serving import chromium, missing_browser

TITLE = "## Who draws a large map's points: Plotly, regl-scatterplot or the map's own layer"
COMMAND = "python -m bench renderers [--quick]"
POINTS_JS = Path(__file__).resolve().parents[1] / "ui" / "mapview" / "points.js"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
NPM_CACHE = Path.home() / ".cache" / "latent-explorer" / "bench-npm"
REGL_VERSION = "1.16.0"
PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000", "#999999", "#882255"]
W, H, PAN_S = 1100, 700, 3.0

LOAD = """async function points() {
  const q = new URLSearchParams(location.search), n = Number(q.get('n'));
  const get = async (f, T) => new T(await (await fetch(f)).arrayBuffer()).subarray(0, n);
  const [x, y] = [await get('x.f32', Float32Array), await get('y.f32', Float32Array)];
  return {n, x, y, c: await get('c.u8', Uint8Array)};
}
const PALETTE = %s;""" % json.dumps(PALETTE)  # noqa: UP031 - a JS template, not Python formatting
PAGES = {
    "plotly": """<div id="gd" style="width:%dpx;height:%dpx"></div><script src="plotly.min.js"></script><script>%s
points().then(({n, x, y, c}) => { const t0 = performance.now();
  Plotly.newPlot('gd', [{type: 'scattergl', mode: 'markers', x, y, hoverinfo: 'none',
    marker: {size: 2, opacity: 0.6, color: Array.from(c), cmin: 0, cmax: 9,
             colorscale: PALETTE.map((p, i) => [i / 9, p])}}],
    {margin: {l: 0, r: 0, t: 0, b: 0}, dragmode: 'pan', showlegend: false, xaxis: {visible: false},
     yaxis: {visible: false}}).then(() => { window.firstMs = performance.now() - t0; });
  window.countDraws = () => { const sc = document.getElementById('gd')._fullLayout._plots.xy._scene, d = sc.draw;
    window.draws = 0; sc.draw = function () { window.draws++; return d.apply(this, arguments); }; };
  window.target = '.nsewdrag'; });</script>""",
    "regl": """<canvas id="c" style="width:%dpx;height:%dpx;display:block"></canvas><script src="regl.min.js"></script>
<script>%s
points().then(({n, x, y, c}) => { const canvas = document.getElementById('c'), t0 = performance.now();
  const sp = LEScatter.createScatterplot({canvas, width: canvas.clientWidth, height: canvas.clientHeight,
    pointSize: 2, opacity: 0.6, pointColor: PALETTE, colorBy: 'valueA'});
  let lo = Infinity, hi = -Infinity; for (const v of [...x, ...y]) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const norm = (v) => (2 * (v - lo)) / (hi - lo) - 1;
  sp.draw({x: Array.from(x, norm), y: Array.from(y, norm), valueA: Array.from(c)}).then(() => {
    window.firstMs = performance.now() - t0; });
  window.countDraws = () => { window.draws = 0; sp.subscribe('draw', () => window.draws++); };
  window.target = '#c'; });</script>""",
    "layer": """<div id="plot" style="position:relative;width:%dpx;height:%dpx"><div class="gl-container"></div></div>
<style>.lem-layer{position:absolute;overflow:hidden;pointer-events:none}</style>
<script src="points.js"></script><script>%s
points().then(({n, x, y, c}) => { const t0 = performance.now(), plot = document.getElementById('plot');
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let k = 0; k < n; k++) {
    [x0, x1, y0, y1] = [Math.min(x0, x[k]), Math.max(x1, x[k]), Math.min(y0, y[k]), Math.max(y1, y[k])];
  }
  const [w, h] = [plot.clientWidth, plot.clientHeight];
  plot._fullLayout = {xaxis: {range: [x0, x1], _offset: 0, _length: w},
                      yaxis: {range: [y0, y1], _offset: 0, _length: h}};
  const s = {plot};  // what points.js reads of the map's state: its plot, with Plotly's axes stood in for
  layerSet(s, {x, y, values: Float32Array.from(c), colours: PALETTE, size: 2, opacity: 0.6});
  layerDraw(s); s.layer.gl.finish(); window.firstMs = performance.now() - t0;
  let down = null, queued = false;  // a pan: the ranges follow the pointer, every point drawn afresh per frame
  plot.addEventListener('mousedown', (e) => { down = [e.clientX, e.clientY, plot._fullLayout.xaxis.range.slice(),
                                                      plot._fullLayout.yaxis.range.slice()]; });
  window.addEventListener('mousemove', (e) => { if (!down) return;
    const [xa, ya] = [plot._fullLayout.xaxis, plot._fullLayout.yaxis];
    const dx = ((e.clientX - down[0]) / w) * (down[2][1] - down[2][0]);
    const dy = ((e.clientY - down[1]) / h) * (down[3][1] - down[3][0]);
    xa.range = [down[2][0] - dx, down[2][1] - dx]; ya.range = [down[3][0] + dy, down[3][1] + dy];
    if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; layerDraw(s); window.draws++; }); } });
  window.addEventListener('mouseup', () => { down = null; });
  window.countDraws = () => { window.draws = 0; };
  window.target = '#plot'; });</script>""",
}
PAN = """(seconds) => new Promise((done) => {
  window.countDraws();
  const r = document.querySelector(window.target).getBoundingClientRect();
  let x = r.left + r.width / 2, y = r.top + r.height / 2, i = 0;
  const at = (type, buttons) => document.elementFromPoint(x, y).dispatchEvent(new MouseEvent(type,
    {bubbles: true, cancelable: true, clientX: x, clientY: y, button: 0, buttons, view: window}));
  at('mousedown', 1);
  const t0 = performance.now();
  const step = () => {
    if (performance.now() - t0 > seconds * 1000) {
      at('mouseup', 0);
      return done(window.draws / ((performance.now() - t0) / 1000));
    }
    i += 1; x += Math.floor(i / 40) % 2 ? -3 : 3; y += Math.floor(i / 25) % 2 ? -2 : 2;
    at('mousemove', 1); requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
})"""


def places(n_most: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST's items on the 2-D PCA of their pixels, and their labels; repeated with a seeded jitter of 1 % of
    the spread up to ``n_most`` points (digits where Fashion-MNIST is missing)."""
    from sklearn.decomposition import PCA

    from vae.config import DataConfig
    from vae.data import load_dataset

    name = common.FASHION if common.fashion_available() else "digits"
    ds = load_dataset(DataConfig(name=name))
    pixels = np.concatenate([ds.x_train.flatten(1).numpy(), ds.x_test.flatten(1).numpy()])
    labels = np.concatenate([ds.y_train.numpy(), ds.y_test.numpy()]).astype(np.uint8)
    xy = PCA(2, random_state=0).fit_transform(pixels).astype(np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(xy))  # a shuffled drawing order, as the app's
    xy, labels = xy[order], labels[order]
    reps = -(-n_most // len(xy))
    jitter = rng.normal(0, 0.01 * xy.std(axis=0), size=(reps * len(xy), 2)).astype(np.float32)
    jitter[: len(xy)] = 0
    return np.tile(xy, (reps, 1)) + jitter, np.tile(labels, reps), name


def regl_bundle(folder: Path) -> str | None:
    """regl-scatterplot bundled for a browser page into ``folder``; None, or why not."""
    npm = shutil.which("npm")
    if not npm:
        return "npm is not installed here"
    build = NPM_CACHE / f"regl-scatterplot-{REGL_VERSION}"
    out = build / "regl.min.js"
    if not out.is_file():
        build.mkdir(parents=True, exist_ok=True)
        entry = "import createScatterplot from 'regl-scatterplot';\nexport { createScatterplot };\n"
        (build / "entry.js").write_text(entry)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "cwd": build, "check": True}
        subprocess.run([npm, "init", "-y"], **quiet)
        subprocess.run([npm, "install", f"regl-scatterplot@{REGL_VERSION}", "esbuild@0.28"], **quiet)
        subprocess.run([str(build / "node_modules" / ".bin" / "esbuild"), "entry.js", "--bundle", "--format=iife",
                        "--global-name=LEScatter", "--minify", f"--outfile={out}"], **quiet)  # fmt: skip
    shutil.copy(out, folder / "regl.min.js")
    return None


def run(quick: bool = False) -> str:
    if missing := missing_browser():
        return f"{TITLE}\n\nNot measured: this machine lacks {', '.join(missing)}.\n"
    sizes = (2_000, 20_000) if quick else (10_000, 70_000, 737_280)
    xy, labels, data = places(max(sizes))
    results: dict[str, dict[int, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-renderers-") as tmp:
        site = Path(tmp)
        for name, body in PAGES.items():
            (site / f"{name}.html").write_text(f"<!doctype html><body style='margin:0'>{body % (W, H, LOAD)}</body>")
        (site / "x.f32").write_bytes(xy[:, 0].tobytes())
        (site / "y.f32").write_bytes(xy[:, 1].tobytes())
        (site / "c.u8").write_bytes(labels.tobytes())
        shutil.copy(PLOTLY_JS, site / "plotly.min.js")
        shutil.copy(POINTS_JS, site / "points.js")
        try:
            regl_missing = regl_bundle(site)
        except (OSError, subprocess.CalledProcessError) as e:
            regl_missing = f"its install failed ({e})"
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
        handler.log_message = lambda *a: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with chromium() as browser:
                for name in PAGES:
                    if name == "regl" and regl_missing:
                        continue
                    for n in sizes:
                        common.log(f"renderers: {name}, {n:,} points")
                        page = browser.new_page(viewport={"width": W + 100, "height": H + 100})
                        page.goto(f"http://127.0.0.1:{server.server_port}/{name}.html?n={n}")
                        page.wait_for_function("() => window.firstMs !== undefined", timeout=300_000)
                        page.wait_for_timeout(500)
                        fps = page.evaluate(PAN, PAN_S)
                        page.evaluate("() => window.gc && window.gc()")
                        heap = page.evaluate("() => performance.memory.usedJSHeapSize / 1e6")
                        results.setdefault(name, {})[n] = {"first": page.evaluate("() => window.firstMs"), "fps": fps,
                                                           "heap": heap}  # fmt: skip
                        page.close()
        finally:
            server.shutdown()
    return report(results, sizes, data, regl_missing, quick)


def report(results: dict, sizes: tuple, data: str, regl_missing: str | None, quick: bool) -> str:
    f = common.fmt
    names = {
        "plotly": "Plotly's scattergl (the app's maps up to 5,000 points)",
        "regl": f"regl-scatterplot {REGL_VERSION}",
        "layer": "the map's own layer (ui/mapview/points.js)",
    }
    header = ["renderer", *(f"{n:,} points" for n in sizes)]
    rows = []
    for key, label in (("fps", "pan: draws/s"), ("first", "first draw, ms"), ("heap", "JS heap, MB")):
        for name, title in names.items():
            if name not in results:
                rows.append([f"{title}: {label}", *(["not measured"] * len(sizes))])
                continue
            digits = 1 if key == "fps" else 0
            rows.append([f"{title}: {label}", *(f(results[name][n][key], digits) for n in sizes)])
    return "\n".join([
        TITLE, "",
        f"Measured with `{COMMAND}`{' (quick)' if quick else ''}: each renderer alone on a page, {W}×{H} px, in "
        f"headless Chromium with software WebGL (SwiftShader), the points the 2-D PCA of {data}'s pixels (past their "
        "number: the same places again with a 1 % jitter), 2 px, opacity 0.6; a pan redraws every point once per "
        "animation frame for 3 s. Baseline: Plotly's scattergl, which drew every map before the layer.", "",
        common.table(header, rows), "",
        *([f"regl-scatterplot: not measured, {regl_missing}.", ""] if regl_missing else []),
        "In software WebGL, redrawing 737,280 points costs either WebGL renderer about a quarter of a second: no "
        "renderer pans that map at 10 frames a second by redrawing. The app therefore keeps Plotly for the axes, "
        "legend, tools and overlays, draws a large map's points with its own layer (the same draw as regl-"
        "scatterplot's at that size, about 250 lines, nothing to bundle or build with Node), and during a pan moves "
        "the layer's last picture with the axes, drawing afresh when the pointer rests (`python -m bench large_map` "
        "measures that in the app).", "",
        f"Reproduce alone: `{COMMAND}`.",
    ]) + "\n"  # fmt: skip


if __name__ == "__main__":
    common.main(run, __doc__)
