"""The markdown section of bench/bench_interaction.py: three tables of interaction latency, and how to read them.

Percentiles are ``common.quantile``'s (linear interpolation between ranks; p50 is the median).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from bench import common
from bench.interaction_setup import SERVERS, Plan
from harness.browser_steps import View

TITLE = "## Interaction in headless Chromium"
COMMAND = "python -m bench interaction [--quick]"


@dataclass
class Results:
    """What the measurements collected (milliseconds unless said otherwise)."""

    loads: list[float] = field(default_factory=list)
    switches: dict = field(default_factory=dict)  # view.n -> [ms]
    clicks: dict = field(default_factory=dict)  # (server, view.n) -> [ms] to image
    rings: dict = field(default_factory=dict)  # (server, view.n) -> [ms] to ring
    steps: dict = field(default_factory=dict)  # server -> [ms]
    load_steps: list[float] = field(default_factory=list)
    load_browser_steps: list[float] = field(default_factory=list)  # the same sessions, decoding in the browser
    lost: dict = field(default_factory=dict)  # what -> count
    seconds: dict = field(default_factory=dict)  # part -> wall seconds
    training: dict = field(default_factory=dict)
    browser: str = ""


def cells(xs: list[float]) -> str:
    """Three table cells: n, p50 and p95 in whole milliseconds ("0 | – | –" when nothing was measured)."""
    if not xs:
        return "0 | – | –"
    return f"{len(xs)} | {common.fmt(common.quantile(xs, 0.5), 0)} | {common.fmt(common.quantile(xs, 0.95), 0)}"


def lost_note(res: Results) -> str:
    """A sentence counting the interactions after which no new picture came ("" when there were none)."""
    lost = {k: len(v) for k, v in res.lost.items() if v}
    if not lost:
        return ""
    items = ", ".join(f"{k}: {v}" for k, v in lost.items())
    return f"\nInteractions after which no new picture came (not timed; a click on the item already shown): {items}.\n"


def clicks(res: Results, server: str, view: View) -> list[float]:
    """Milliseconds from a click on ``server``'s map of ``view`` to the decoded picture loaded."""
    return res.clicks.get((server, view.n), [])


def rings(res: Results, server: str, view: View) -> list[float]:
    """Milliseconds from a click on ``server``'s map of ``view`` to the map redrawn with the point ringed."""
    return res.rings.get((server, view.n), [])


def intro(plan: Plan, res: Results, prep: dict) -> list[str]:
    """The heading and what was measured, how."""
    data = "Fashion-MNIST" if plan.data == common.FASHION else "scikit-learn's digits"
    return [
        TITLE,
        "",
        f"Debian's Chromium {res.browser} (headless, software WebGL) driven by Playwright against "
        f"`streamlit run app.py` on 127.0.0.1; {os.cpu_count()} CPU cores shared with other work, so read the "
        "numbers as rough. Model: the default MLP (784-400-20-400-784) trained "
        f"{common.plural(plan.epochs, 'epoch')} on {data} with `python -m vae train` (test −ELBO "
        f"{-prep['test_elbo']:.1f} nats). Every map the pages show was "
        "cached on disk beforehand with the page's own code (`ui.cache.latent_means` + "
        "`ui.cache.fitted_projector`), so no projection is fitted while timing. Times are taken inside "
        "the page with `performance.now()`: from navigation start, or from the `mousedown` / `keydown` of the "
        "input, to the animation frame in which the map shows the expected points, or to the moment the new "
        "picture has loaded. Milliseconds.",
        *[f"\n{note}" for note in plan.notes],
    ]


def explore_table(plan: Plan, res: Results) -> list[str]:
    """Page loads, map switches and map clicks on the default server."""
    small, large = plan.views
    d = plan.default_view
    lines = [
        "### Explore: map drawn, map clicks (Streamlit defaults)",
        "",
        "| interaction | points | n | p50 ms | p95 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| open Explore in a new tab → map drawn (its default view: UMAP of the {d.split} split) | {d.n:,} | "
        f"{cells(res.loads)} |",
    ]
    for v in plan.views:
        lines.append(
            f"| then, in that tab, choose *{v.method} · {v.split} · {v.option}* → map drawn | {v.n:,} | "
            f"{cells(res.switches.get(v.n, []))} |"
        )
    for v in plan.views:
        lines.append(
            f"| click a point → its decoded reconstruction loaded | {v.n:,} | {cells(clicks(res, 'default', v))} |"
        )
        lines.append(
            f"| click a point → map redrawn with the point ringed | {v.n:,} | {cells(rings(res, 'default', v))} |"
        )
    cut = (
        f" The test split was cut to {plan.max_test:,} images (`--max-test`): below 4,096 points umap-learn skips "
        "pynndescent, whose numba code takes about 25 s to compile in every new process, so caching the default "
        "UMAP map beforehand stays cheap."
        if plan.max_test
        else ""
    )
    whole = (
        f" The page shows one split at a time: its largest map is the {large.n:,}-image train split, not the "
        "70,000 images of train and test together."
        if plan.data == common.FASHION
        else ""
    )
    return lines + [
        "",
        "Baseline: the first row, a page load at the page's default view. The split and the number of points "
        "are widgets without URL parameters and a new tab starts at the default view, so the "
        f"{small.n:,}- and {large.n:,}-point maps are timed in each of those tabs right after its page load, "
        "from the `mousedown` on the widget that completes the choice to the frame that shows the new map: a "
        "whole-page rerun, the figure sent and drawn for the first time in that tab (Streamlit's browser keeps "
        "large messages it has seen by hash, so going back to a map already drawn in the tab is faster and is "
        "not what a page load pays). A page load straight into such a map would add the new session's start, "
        f"which the first row includes.{whole}{cut} Page loads reuse one "
        "browser context (a warm HTTP cache) after an uncounted first round. Clicks land on data points placed "
        "with Plotly's own axes (`getBoundingClientRect` + `_fullLayout.xaxis._offset` + `l2p`), in a tab kept "
        f"open at the {small.n:,}-point map, later switched to the {large.n:,}-point one.",
    ]


def gc_table(plan: Plan, res: Results, gcinfo: dict) -> list[str]:
    """Slider steps and clicks on both servers: Streamlit's post-run garbage collection on and off."""
    small = plan.views[0]
    on, off = SERVERS["default"][0], SERVERS["gc_off"][0]
    return [
        "### Streamlit's garbage collection after each run: on (default) and off",
        "",
        f"| interaction | n | {on}: p50 ms | p95 ms | n | {off}: p50 ms | p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| Decode: slider step (arrow key) → new decoded image | {cells(res.steps.get('default', []))} | "
        f"{cells(res.steps.get('gc_off', []))} |",
        f"| Explore, {small.n:,} points: click a point → decoded reconstruction loaded | "
        f"{cells(clicks(res, 'default', small))} | {cells(clicks(res, 'gc_off', small))} |",
        f"| Explore, {small.n:,} points: click a point → map redrawn with the point ringed | "
        f"{cells(rings(res, 'default', small))} | {cells(rings(res, 'gc_off', small))} |",
        "",
        f"Baseline: {on}, where `runner.postScriptGC` is on and Streamlit runs a full "
        "`gc.collect()` after every script and fragment run. Both servers run the same app, which always freezes "
        "the collector once per process (`app.py` calls `ui.runtime.configure_process()` after importing "
        "`ui.cache` and `ui.sidebar`, which bring in torch, numpy and `vae`; nothing turns that off), so the one "
        "difference between the columns is that post-run collection; automatic generational collections happen "
        "in both. What the collection still walks is what came after the freeze (pandas and the pages' "
        "modules, the session's objects): in a separate process holding the app's modules, a full collection took "
        f"{gcinfo['no_freeze_ms']:.0f} ms before the freeze ({gcinfo['objects_before_freeze']:,} tracked objects) "
        f"and {gcinfo['after_freeze_ms']:.1f} ms after it plus the Explore page's imports "
        f"({gcinfo['objects_after_freeze']:,} unfrozen objects). The two servers ran side by side, measured in "
        f"alternating blocks ({plan.rounds} per server and interaction). The Decode page was used with its "
        "in-browser decoding switched off where it has that toggle: each step is decoded on the server.",
    ]


def load_table(plan: Plan, res: Results, prep: dict) -> list[str]:
    """One session alone against ``plan.contexts`` sessions at once beside a training."""
    bg = "Fashion-MNIST" if res.training.get("data") == common.FASHION else "digits"
    load_steps = "once" if plan.load_steps == 1 else common.plural(plan.load_steps, "time")
    lines = [
        f"### {plan.contexts} sessions at once while a model trains",
        "",
        "| sessions | beside them | n | p50 ms | p95 ms |",
        "| --- | --- | ---: | ---: | ---: |",
        f"| 1 | nothing | {cells(res.steps.get('default', []))} |",
        f"| {plan.contexts}, each in its own browser context | a {bg} training (default MLP, 2 threads) | "
        f"{cells(res.load_steps)} |",
        f"| the same {plan.contexts}, decoding in the browser (the page's default) | the same training | "
        f"{cells(res.load_browser_steps)} |",
    ]
    during, alone = res.training.get("during"), res.training.get("alone")
    lines += [
        "",
        "| the training | examples/s alone | beside the sessions | kept |",
        "| --- | ---: | ---: | ---: |",
        f"| {bg}, default MLP | {common.fmt(alone, 0)} | {common.fmt(during, 0)} | "
        f"{f'{during / alone:.0%}' if during and alone else 'n/a'} |",
    ]
    browser = res.training.get("during_browser")
    if browser is not None:
        kept = f"{browser / alone:.0%}" if browser and alone else "n/a"
        lines.append(f"| the same, beside the sessions decoding in the browser | {common.fmt(alone, 0)} | "
                     f"{common.fmt(browser, 0)} | {kept} |")  # fmt: skip
    speed = (
        " The training's pace alone is measured over the seconds before the sessions start (their pages open "
        "and idle); beside them, over the seconds they step."
    )
    return lines + [
        "",
        "Baseline: the single-session Decode step of the previous table (same server, Streamlit defaults, "
        f"nothing beside it). Each of the {plan.contexts} sessions presses an arrow key on its own Decode page "
        f"and waits for its own new image, {load_steps}, all at once (first with the page's server-side "
        "sliders, then with its default in-browser decoder, where the time runs to the redrawn canvas), while "
        "`python -m vae train` runs in another process (its own runs folder, so new sessions still open the "
        "benchmark's run; stopped afterwards)." + speed,
    ]


def report(plan: Plan, res: Results, prep: dict, gcinfo: dict) -> str:
    """The whole markdown section."""
    lines = [
        *intro(plan, res, prep),
        "",
        *explore_table(plan, res),
        "",
        *gc_table(plan, res, gcinfo),
        "",
        *load_table(plan, res, prep),
        lost_note(res),
        f"Reproduce alone: `{COMMAND}` (prints this section; `--quick`: digits, about 5 interactions each). "
        "Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in res.seconds.items()) + ".",
    ]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"
