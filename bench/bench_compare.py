"""The Compare page: two runs' maps of the same items, and the numbers of how alike they are, at 10,000 and 60,000.

    python -m bench compare [--quick]

Two Fashion-MNIST MLP VAEs (seeds 0 and 1, one epoch each; ``--quick``: digits) are compared on the test split
(10,000 items) and the train split (60,000; the page compares one split at a time, so 70,000 is not offered). In
this process: ``vae.analysis.compare.compare_runs`` (both runs' codes, linear CKA, the 10 neighbours shared, the
Procrustes disparity, the linear map), and its parts on codes already computed. In the app (`streamlit run app.py`,
headless Chromium): Compare opened by its link (``/compare?run=A&compare_b=B``), the split and the points chosen,
to both maps drawn with every item, the first time (the server computes the comparison) and again in a new tab
(cached). Baseline, in the same run: Explore's PCA map of the same items, opened by its link. Then the pointer
jumped to spots of both Compare maps, one at a time: from the pointer event to both runs' pictures drawn in the
browser, against Explore's pointer → picture on the same items (``bench_mapview.hover_latencies``). Asserts
nothing.
"""

from __future__ import annotations

import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np

from bench import common
from bench.bench_mapview import hover_latencies
from bench.report import cpu_pressure_total
from harness.serving import chromium, missing_browser, serving, wait_idle
from vae.runs import folder as rf

TITLE = "## Compare: two runs' maps of the same items, and how alike they are"
COMMAND = "python -m bench compare [--quick]"
VIEWPORT = {"width": 1440, "height": 900}
WAIT_MS = 300_000
HOVERS = 40  # pointer jumps measured on each page
# the points both Compare maps draw (their "items" traces; 0 while a map is missing)
COMPARE_SHOWN = """() => ['compare_chart_A', 'compare_chart_B'].map((key) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  if (!gd || !gd._fullData) return 0;
  return gd._fullData.filter((t) => t.name === 'items').reduce((k, t) => k + t.x.length, 0); })"""
COMPARE_DRAWN = "(n) => (" + COMPARE_SHOWN + ")().every((k) => k === n)"
EXPLORE_DRAWN = """(n) => { const gd = document.querySelector('.lem-plot');
  const p = gd && gd._fullData && gd._fullData.find((t) => t.name === 'points');
  return !!p && (Number(gd.dataset.layer || 0) || p.x.length) === n  // a large map's points: its layer's
    && String(gd._fullLayout.xaxis.title.text).startsWith('PCA'); }"""


def open_compare(page, url: str, a: str, b: str, split: str, option: str, n: int) -> float:
    """Compare by its link, then the split and the points chosen: seconds from navigation to both maps drawn."""
    t = time.perf_counter()
    page.goto(f"{url}/compare?{urllib.parse.urlencode({'run': a, 'compare_b': b})}")
    page.get_by_role("radiogroup", name="Split").wait_for(timeout=WAIT_MS)
    wait_idle(page, WAIT_MS)
    group = page.get_by_role("radiogroup", name="Split")
    if not group.get_by_role("radio", name=split, exact=True).is_checked():
        group.get_by_text(split, exact=True).click()
        wait_idle(page, WAIT_MS)
    box = page.get_by_role("combobox", name="Points")
    if box.input_value() != option:
        box.click()
        page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_function(COMPARE_DRAWN, arg=n, timeout=WAIT_MS)
    return time.perf_counter() - t


def open_explore(page, url: str, run: str, split: str, option: str, n: int) -> float:
    query = {"run": run, "explore_method": "PCA", "explore_split": split, f"explore_points_{split}": option}
    t = time.perf_counter()
    page.goto(f"{url}/explore?{urllib.parse.urlencode(query)}")
    page.wait_for_function(EXPLORE_DRAWN, arg=n, timeout=WAIT_MS)
    return time.perf_counter() - t


# Pointer events over either Compare map (their timestamps, and when they were handled), and the decoders' draws.
POINTER_PROBE = """() => { const P = (window.__cmp = []);
  document.addEventListener('pointermove', (e) => {
    if (e.target.closest && e.target.closest('.js-plotly-plot')) P.push({now: performance.now(), ts: e.timeStamp});
  }, true); }"""
BOTH_DRAWS = """() => ['compare_chart_A', 'compare_chart_B'].reduce((k, key) =>
  k + Number(document.querySelector(`.st-key-${key} .le-both`)?.dataset.draws || 0), 0)"""
SPOT = """([key, fx, fy]) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  gd.scrollIntoView({block: 'center', behavior: 'instant'});
  const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return {x: r.left + xa._offset + fx * xa._length, y: r.top + ya._offset + fy * ya._length};
}"""


def pointer_both(page, n: int, rng: np.random.Generator) -> list[float]:
    """Jump the pointer to ``n`` spots, alternately on A's and B's map: ms from each pointer event to the end of the
    draw of both pictures it caused (``recordDraw`` times both pictures as one draw)."""
    page.evaluate(POINTER_PROBE)
    for i in range(n):
        at = page.evaluate(SPOT, [f"compare_chart_{'AB'[i % 2]}", *rng.uniform(0.1, 0.9, 2).tolist()])
        before = page.evaluate(BOTH_DRAWS)
        page.mouse.move(at["x"], at["y"])
        page.wait_for_function(f"() => ({BOTH_DRAWS})() > {before}")
    events = page.evaluate("() => window.__cmp")
    times = np.array(page.evaluate("() => globalThis.__latentExplorerDecoders.drawTimes.slice()"))
    return [float(after[0] - ev["ts"]) for ev in events if len(after := times[times > ev["now"]])]


def library(run_a: Path, run_b: Path, split: str) -> dict:
    """compare_runs end to end, then its parts on the codes (the page caches the codes per run)."""
    from vae.analysis.compare import compare_runs, fit_linear_map, knn_jaccard, linear_cka, procrustes_disparity
    from vae.data import load_dataset

    out = {"compare_s": common.timed(lambda: compare_runs(run_a, run_b, split))[0]}
    ds = load_dataset(rf.load_data_config(run_a))
    a, b = (rf.load_model(r).embed_split(ds, split)[0] for r in (run_a, run_b))
    out["encode_s"] = common.timed(lambda: rf.load_model(run_a).embed_split(ds, split))[0]
    out["cka_s"] = common.timed(lambda: linear_cka(a, b))[0]
    out["knn_s"] = common.timed(lambda: knn_jaccard(a, b))[0]
    out["procrustes_s"] = common.timed(lambda: procrustes_disparity(a, b))[0]
    rows = np.arange(min(len(a), 10_000))
    out["map_s"] = common.timed(lambda: fit_linear_map(a[rows], b[rows]))[0]
    return out


def run(quick: bool = False) -> str:
    if missing := missing_browser():
        return f"{TITLE}\n\nNot measured: this machine lacks {', '.join(missing)}.\n"
    fashion = common.fashion_available() and not quick
    data = ["--data", "fashion-mnist"] if fashion else ["--data", "digits", "--latent", "8", "--hidden", "64"]
    sizes = (("test", 10_000), ("train", 60_000)) if fashion else (("test", 360), ("train", 1_437))
    t0, p0 = time.perf_counter(), cpu_pressure_total()
    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        runs = Path(tmp)
        for seed in (0, 1):
            common.log(f"compare: training seed {seed}")
            common.vae_cli(runs, "train", *data, "--epochs", "1", "--seed", str(seed), "--name", f"seed{seed}")
        a, b = runs / "seed0", runs / "seed1"
        for split, n in sizes:
            common.log(f"compare: {n:,} {split} items in this process")
            res[n] = {"lib": library(a, b, split)}
        with common.environment(LATENT_EXPLORER_WARM_UMAP="0"), serving(runs) as url, chromium() as browser:
            for split, n in sizes:
                option = f"all ({n:,})"
                common.log(f"compare: {n:,} {split} items in the app")
                first = browser.new_context(viewport=VIEWPORT).new_page()
                res[n]["explore_s"] = open_explore(first, url, "seed0", split, option, n)
                res[n]["first_s"] = open_compare(first, url, "seed0", "seed1", split, option, n)
                first.context.close()
                again = browser.new_context(viewport=VIEWPORT).new_page()
                res[n]["again_s"] = open_compare(again, url, "seed0", "seed1", split, option, n)
                again.wait_for_timeout(500)
                res[n]["both_ms"] = pointer_both(again, HOVERS, np.random.default_rng(0))
                res[n]["explore_again_s"] = open_explore(again, url, "seed0", split, option, n)
                again.wait_for_timeout(500)
                seen = hover_latencies(again, HOVERS, np.random.default_rng(0))
                res[n]["explore_ms"] = seen["point"] + seen["empty"]
                again.context.close()
    p1, wall = cpu_pressure_total(), time.perf_counter() - t0
    pressure = None if p0 is None or p1 is None else (p1 - p0) / 1e6 / wall
    return report(res, "Fashion-MNIST" if fashion else "digits", quick, wall, pressure)


def pct(ms: list[float]) -> str:
    if not ms:
        return "–"
    p50, p95 = np.percentile(ms, [50, 95])
    return f"{p50:.0f} / {p95:.0f}"


def report(res: dict, data: str, quick: bool, wall: float, pressure: float | None) -> str:
    f = common.fmt
    cols = [f"{n:,} items" for n in res]
    rows = [
        ["Compare by its link → both maps drawn, first time (the server computes), s",
         *(f"**{f(r['first_s'], 1)}**" for r in res.values())],
        ["… again in a new tab (cached), s", *(f(r["again_s"], 1) for r in res.values())],
        ["Baseline: Explore's PCA map of the same items by its link, first time / again, s",
         *(f"{f(r['explore_s'], 1)} / {f(r['explore_again_s'], 1)}" for r in res.values())],
        ["pointer → both runs' pictures drawn in the browser, p50 / p95 ms",
         *(f"**{pct(r['both_ms'])}**" for r in res.values())],
        ["Baseline: Explore's pointer → picture on the same items, p50 / p95 ms",
         *(pct(r["explore_ms"]) for r in res.values())],
        ["`compare_runs` end to end (load, encode both runs, the numbers), s",
         *(f(r["lib"]["compare_s"], 2) for r in res.values())],
        ["… encoding one run's items, s", *(f(r["lib"]["encode_s"], 2) for r in res.values())],
        ["… linear CKA / 10 neighbours shared / Procrustes disparity, s",
         *(f"{f(r['lib']['cka_s'], 3)} / {f(r['lib']['knn_s'], 2)} / {f(r['lib']['procrustes_s'], 3)}"
           for r in res.values())],
        ["… the linear map (least squares, up to 10,000 items), s", *(f(r["lib"]["map_s"], 3) for r in res.values())],
    ]  # fmt: skip
    lines = [
        TITLE, "",
        f"Measured with `{COMMAND}`{' (quick)' if quick else ''}: two {data} MLP VAEs (seeds 0 and 1, one epoch), "
        "the whole test and train splits, headless Chromium and the server on the same 2 cores.", "",
        common.table(["measurement", *cols], rows), "",
        f"Took {common.duration(wall)}" + (f"; some task waited for a CPU {pressure:.0%} of that time (Linux PSI)."
                                          if pressure is not None else "."),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    common.main(run, __doc__)
