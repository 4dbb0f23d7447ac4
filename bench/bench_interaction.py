"""Interaction latency of the app in headless Chromium: map drawn, slider step, map click, many sessions.

    python -m bench interaction [--quick]

Prints one markdown section (progress goes to stderr); ``run(quick)`` returns the same text for
bench/run_all.py. What it does:

1. trains a run in a temporary runs folder with the command line: the default MLP, one epoch of Fashion-MNIST
   (Debian's ``/usr/share/datasets/fashion-mnist``; test split cut to 4,000 images) or, with ``--quick`` or
   without Fashion-MNIST, ten epochs of scikit-learn's digits; then caches every map the pages will show, in a
   child process running the page's own ``ui.cache.latent_means`` and ``ui.cache.fitted_projector``, so page
   loads time the page, not UMAP;
2. starts two ``streamlit run app.py`` servers on 127.0.0.1: Streamlit's defaults, and the same with
   ``--runner.postScriptGC false`` (the app freezes the garbage collector once at start-up in both);
3. drives Debian's Chromium with Playwright (async API) and times each interaction inside the page with
   ``performance.now()``: from navigation start or from the input's ``mousedown`` / ``keydown`` to the animation
   frame in which the map shows the expected points, or to the moment the new picture has loaded:
   a) Explore: page load in a new tab to the default map, then in that tab the 10,000- and 60,000-point maps;
   b) Decode: slider step (arrow key) to the new decoded image (server-side decoding);
   c) Explore: click on a data point to its decoded reconstruction, and to the map redrawn with the point ringed;
   d) b and c on both servers, alternating in blocks;
   e) eight browser contexts stepping sliders at once while a training runs in another process
      (``BENCH_TRAIN_ARGS`` adds options to its command line, ``BENCH_TRAIN_NICE`` lowers its priority).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path

from bench import common
from bench.interaction_report import TITLE, Results, report
from bench.interaction_setup import RUN, SERVERS, Plan, Training, cache_maps, gc_probe, make_plan, train_run
from harness import browser_steps as steps
from harness.serving import (
    CHROMIUM,  # noqa: F401 - where the smoke test looks for the browser
    async_chromium,
    missing_browser,
    start_app,
    stop_server,
    wait_healthy,
)


def log(message: str) -> None:
    common.log(f"interaction: {message}")


# ---------------------------------------------------------------- the measurements


def ab_blocks(names: list[str], rounds: int):
    """(block, server name) for ``rounds`` blocks per server, alternating A B, B A, A B, ..."""
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            yield r, name


async def measure_maps(browser, url: str, plan: Plan, res: Results) -> None:
    """Fresh tabs: page load to the default map, then the two timed views, each the first time this tab draws it.

    (Streamlit's browser keeps large messages it has seen by hash, so a map drawn again in the same tab
    arrives without its data: switching back and forth would time that cache, not what a page load sends.)
    """
    context = await steps.new_context(browser)
    for i in range(plan.loads + 1):  # the first round (browser cache, server caches) is not counted
        page = await steps.open_page(context, f"{url}{steps.SERVER_MAP}")
        drawn = await steps.wait_map(page, plan.default_view)  # ms since navigation start (performance.timeOrigin)
        await steps.settle(page)
        current, times = plan.default_view, [drawn]
        for view in plan.views:
            times.append(await steps.switch_view(page, view, current))
            current = view
        if i:
            res.loads.append(times[0])
            for view, ms in zip(plan.views, times[1:], strict=True):
                res.switches.setdefault(view.n, []).append(ms)
        await page.close()
    await context.close()


async def measure_explore(browser, urls: dict, plan: Plan, res: Results) -> None:
    """Clicks on the smaller map on both servers, alternating in blocks; then on the larger map, default server."""
    small, large = plan.views
    pages = {}
    for name, url in urls.items():
        pages[name] = await steps.open_explore(await steps.new_context(browser), url, small, plan.default_view)
    per_block = plan.clicks // plan.rounds
    for r, name in ab_blocks(list(urls), plan.rounds):
        lost = res.lost.setdefault(f"click {name} {small.n:,}", [])
        img, mark = await steps.map_clicks(pages[name], per_block, r * per_block, lost)
        res.clicks.setdefault((name, small.n), []).extend(img)
        res.rings.setdefault((name, small.n), []).extend(mark)
    await pages.pop("gc_off").context.close()
    page = pages["default"]
    await steps.choose_view(page, large, small)
    await steps.wait_map(page, large)
    await steps.settle(page)
    img, mark = await steps.map_clicks(page, plan.clicks, 0, res.lost.setdefault(f"click default {large.n:,}", []))
    res.clicks[("default", large.n)], res.rings[("default", large.n)] = img, mark
    await page.context.close()


async def measure_decode(browser, urls: dict, plan: Plan, res: Results) -> None:
    """Slider steps on the Decode page of both servers, alternating in blocks."""
    pages = {name: await steps.open_decode(await steps.new_context(browser), url) for name, url in urls.items()}
    per_block = plan.steps // plan.rounds
    for _, name in ab_blocks(list(urls), plan.rounds):
        lost = res.lost.setdefault(f"step {name}", [])
        res.steps.setdefault(name, []).extend(await steps.slider_steps(pages[name], per_block, lost))
    for page in pages.values():
        await page.context.close()


async def measure_load(browser, url: str, plan: Plan, tmp: Path, res: Results) -> None:
    """``plan.contexts`` sessions step a slider at once while a training runs in another process."""
    training = Training(tmp, common.FASHION if common.fashion_available() else "digits")  # starts meanwhile
    contexts = []
    try:
        for _ in range(plan.contexts):
            contexts.append(await steps.new_context(browser))
        pages = await asyncio.gather(*(steps.open_decode(c, url) for c in contexts))
        log(f"{len(pages)} Decode pages open")
        await training.wait_stepping()
        log("training is stepping")
        solo = time.time()
        await asyncio.sleep(plan.solo_s)  # the sessions are open and idle: the training's own pace on this machine
        res.training["alone"] = training.examples_per_s(solo, time.time())
        start = time.time()
        lost = res.lost.setdefault("step under load", [])
        results = await asyncio.gather(*(steps.slider_steps(p, plan.load_steps, lost) for p in pages))
        end = time.time()
        while training.steps()[-1]["time"] < end and training.proc.poll() is None and time.time() < end + 10:
            await asyncio.sleep(0.2)  # a step line after the last step: the window covers the sessions
        res.load_steps = [ms for r in results for ms in r]
        res.training.update(during=training.examples_per_s(start), data=training.data)
        log(f"{len(res.load_steps)} steps under load in {end - start:.0f} s")
        # the same sessions on the Decode page as it opens by default: decoding in the browser
        pages = await asyncio.gather(*(steps.open_decode_in_browser(c, url) for c in contexts))
        start = time.time()
        lost = res.lost.setdefault("browser step under load", [])
        results = await asyncio.gather(*(steps.browser_slider_steps(p, plan.load_steps, lost) for p in pages))
        end = time.time()
        while training.steps()[-1]["time"] < end and training.proc.poll() is None and time.time() < end + 10:
            await asyncio.sleep(0.2)
        res.load_browser_steps = [ms for r in results for ms in r]
        res.training["during_browser"] = training.examples_per_s(start)
        log(f"{len(res.load_browser_steps)} in-browser steps under load in {end - start:.0f} s")
    finally:
        training.stop()
        for c in contexts:
            await c.close()


async def failure_shots(browser, part: str) -> None:
    """Screenshots of every open page into $BENCH_INTERACTION_SHOTS (when set), to see why a part failed."""
    folder = os.environ.get("BENCH_INTERACTION_SHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    for i, context in enumerate(browser.contexts):
        for j, page in enumerate(context.pages):
            with contextlib.suppress(Exception):
                await page.screenshot(path=str(Path(folder) / f"{part}-{i}-{j}.png"), full_page=True)
                log(f"failure screenshot: {folder}/{part}-{i}-{j}.png ({page.url})")


async def measure(plan: Plan, tmp: Path, urls: dict, res: Results) -> None:
    """Every part, one after the other, in one Chromium."""
    async with async_chromium() as browser:
        res.browser = browser.version
        parts = [
            ("page loads", lambda: measure_maps(browser, urls["default"], plan, res)),
            ("explore", lambda: measure_explore(browser, urls, plan, res)),
            ("decode", lambda: measure_decode(browser, urls, plan, res)),
            ("load", lambda: measure_load(browser, urls["default"], plan, tmp, res)),
        ]
        only = [p.strip() for p in os.environ.get("BENCH_INTERACTION_PARTS", "").split(",") if p.strip()]
        for part, job in parts:
            if only and part not in only:
                continue
            t = time.perf_counter()
            log(f"{part}…")
            try:
                await job()
            except Exception:
                await failure_shots(browser, part)
                raise
            res.seconds[part] = time.perf_counter() - t


# ---------------------------------------------------------------- running it


def run(quick: bool = False, *, interactions: int | None = None, contexts: int | None = None) -> str:
    """Run the benchmark and return its markdown section.

    ``quick``: digits instead of Fashion-MNIST and about 5 interactions each (the smoke test passes
    smaller ``interactions`` and ``contexts``). Needs Debian's Chromium at /usr/bin/chromium.
    """
    missing = missing_browser()
    if missing:
        return f"{TITLE}\n\nSkipped: missing {' and '.join(missing)}.\n"
    plan = make_plan(quick, interactions, contexts)
    res = Results()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-interaction-") as tmp_name:
        tmp = Path(tmp_name)
        runs = tmp / "runs"
        log(f"training the benchmark run ({plan.data}, {plan.epochs} epochs)…")
        res.seconds["training"], prep = common.timed(lambda: train_run(runs, plan))
        env = {"LATENT_EXPLORER_RUNS": str(runs)}  # the children import the app's modules
        res.seconds["gc probe"], gcinfo = common.timed(lambda: common.spawn_child(__file__, {"job": "gc"}, **env))
        # The maps are cached before anything is timed, so the servers skip UMAP's warm-up at start (it compiles
        # for a minute on a fresh process, beside whatever is being timed).
        os.environ.setdefault("LATENT_EXPLORER_WARM_UMAP", "0")
        servers = {name: start_app(runs, extra) for name, (_, extra) in SERVERS.items()}  # they boot meanwhile
        try:
            log("caching the maps…")
            spec = {"job": "maps", "run": str(runs / RUN), "maps": plan.maps}
            res.seconds["maps"], cached = common.timed(lambda: common.spawn_child(__file__, spec, **env))
            for line in cached["lines"]:
                log(f"  {line}")
            for url, proc in servers.values():
                wait_healthy(url, proc, timeout=90.0)
            asyncio.run(measure(plan, tmp, {name: url for name, (url, _) in servers.items()}, res))
        finally:
            for _, proc in servers.values():
                stop_server(proc)
    res.seconds["total"] = time.perf_counter() - start
    log(f"done in {res.seconds['total']:.0f} s")
    return report(plan, res, prep, gcinfo)


def child(spec: dict) -> dict:
    """(Child process, see ``common.spawn_child``.) Cache the pages' maps, or probe the garbage collector."""
    if spec["job"] == "maps":
        return {"lines": cache_maps(spec["run"], spec["maps"])}
    return gc_probe()


if __name__ == "__main__":
    common.main(run, __doc__, child)
