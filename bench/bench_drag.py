"""Decode while dragging: redraws per second of the Decode page's in-browser decoder in headless Chromium.

    python -m bench drag [--quick]

For each decoder (MLP and conv on Fashion-MNIST, conv on 64x64 sprites; quick: digits and 32x32 sprites)
a model is trained for one epoch, `streamlit run app.py` serves it on 127.0.0.1, and Playwright drags
the first latent slider across for 2 s, moving the mouse as often as it can. Counted: pointer moves
sent, canvas redraws during the drag (the component's draw counter), the interval between redraws and
the time each redraw took in the page. Baseline: the same drag with in-browser decoding switched off,
where Streamlit's slider sends its value on release only, counting decoded-image changes before release.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench import common
from harness.serving import chromium, pick_run, serving, wait_idle

COMMAND = "python -m bench drag [--quick]"
DRAG_S = 2.0
DRAGS = 3
SLIDERS = "input.le-range"
PANEL = "div.le"
SERVER_IMAGE = 'img[alt="decoded image"]'
TOGGLE = "Decode in the browser while dragging"
STATS = """() => {
  const r = globalThis.__latentExplorerDecoders;
  return { times: r.drawTimes.slice(), ms: r.drawMs.slice() };
}"""
COUNT_SRC_CHANGES = """(sel) => {
  const w = (window.__srcChanges = { n: 0, last: document.querySelector(sel)?.src });
  new MutationObserver(() => {
    const s = document.querySelector(sel)?.src;
    if (s && s !== w.last) { w.last = s; w.n += 1; }
  }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["src"] });
}"""


def models(quick: bool) -> list[tuple[str, list[str]]]:
    """(run name, `python -m vae train` arguments) for each decoder measured."""
    if quick:
        return [
            ("drag-mlp-digits", ["--data", "digits", "--latent", "8", "--hidden", "64"]),
            ("drag-conv-sprites32", ["--data", "sprites", "--size", "32", "--count", "1000"]),
        ]
    fm = ["--data", "fashion-mnist", "--max-train", "10000", "--max-test", "1000"]
    return [
        ("drag-mlp-fashion", [*fm, "--latent", "20", "--hidden", "400"]),
        ("drag-conv-fashion", [*fm, "--latent", "16"]),
        ("drag-conv-sprites64", ["--data", "sprites", "--size", "64", "--count", "3000", "--latent", "10"]),
    ]


def describe(run_dir: Path) -> tuple[str, int]:
    """ "conv, latent 16, 1×28×28, fashion-mnist" and the decoder's parameter count."""
    from vae.runs import folder as rf

    model = rf.load_model(run_dir)
    cfg, data = model.cfg, rf.load_config(run_dir)[2].name
    shape = "×".join(str(s) for s in cfg.input_shape)
    hidden = "-".join(str(h) for h in reversed(cfg.hidden))
    arch = f"MLP {hidden}" if cfg.arch == "mlp" else f"conv {list(cfg.channels)}"
    return f"{arch}, latent {cfg.latent_dim}, {shape}, {data}", sum(p.numel() for p in model.decoder.parameters())


def train(runs: Path, name: str, args: list[str]) -> None:
    """One epoch of ``python -m vae train`` into ``runs/name`` (conv where the name says so)."""
    conv = ["--arch", "conv"] if "conv" in name else []
    common.vae_cli(runs, "train", *args, *conv, "--epochs", "1", "--threads", "2", "--name", name)


def open_decode(page, url: str, run: str) -> None:
    page.goto(url)
    wait_idle(page)
    pick_run(page, run)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Decode", exact=True).click()
    page.get_by_role("switch", name=TOGGLE).wait_for(state="attached")
    wait_idle(page)


def drag(page, start, width: float, rightwards: bool) -> int:
    """Press at ``start`` (x, y) and sweep ``width`` px sideways for DRAG_S seconds; returns the pointer moves sent."""
    x, y = start
    page.mouse.move(x, y)
    page.mouse.down()
    moves, t0 = 0, time.perf_counter()
    while (t := time.perf_counter() - t0) < DRAG_S:
        page.mouse.move(x + (width if rightwards else -width) * t / DRAG_S, y)
        moves += 1
    return moves


def centre(box: dict) -> tuple[float, float]:
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def browser_drags(page) -> dict:
    """DRAGS drags on the in-browser decoder: moves, redraws, redraw intervals and durations."""
    page.locator(f"{PANEL}[data-draws]").wait_for(timeout=60_000)
    fps, moves, intervals, took = [], [], [], []
    for i in range(DRAGS):
        before = page.evaluate(STATS)
        n0 = len(before["times"])
        t0 = time.perf_counter()
        box = page.locator(SLIDERS).first.bounding_box()
        moves.append(drag(page, centre(box), box["width"] / 2 - 4, rightwards=i % 2 == 0))
        elapsed = time.perf_counter() - t0
        after = page.evaluate(STATS)
        page.mouse.up()
        wait_idle(page)
        times, ms = after["times"][n0:], after["ms"][n0:]
        fps.append(len(times) / elapsed)
        intervals += [b - a for a, b in zip(times, times[1:], strict=False)]
        took += ms
    return {"fps": fps, "moves": moves, "intervals": intervals, "ms": took}


def server_drag(page) -> tuple[int, int]:
    """The baseline: the same drag on a Streamlit slider; decoded images shown (during the drag, after release)."""
    page.get_by_text(TOGGLE).click()
    page.locator(SERVER_IMAGE).wait_for()
    wait_idle(page)
    page.evaluate(COUNT_SRC_CHANGES, SERVER_IMAGE)
    slider = page.locator('[data-testid="stMain"] [data-testid="stSlider"]').first
    track = slider.locator('[data-rac][style*="position: relative"]')  # Streamlit 1.67's react-aria slider
    thumb = track.locator('[data-rac][style*="position: absolute"]')
    away = float(slider.locator('input[type="range"]').input_value()) <= 0  # sweep away from where it is
    drag(page, centre(thumb.bounding_box()), track.bounding_box()["width"] / 3, rightwards=away)
    during = page.evaluate("window.__srcChanges.n")
    page.mouse.up()
    page.wait_for_function("window.__srcChanges.n > 0", timeout=30_000)
    wait_idle(page)
    return during, page.evaluate("window.__srcChanges.n")


def run(quick: bool = False) -> str:
    """The drag section as markdown."""
    q = common.quantile
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-drag-") as tmp:
        runs = Path(tmp)
        for name, args in models(quick):
            common.log(f"drag: training {name} for one epoch")
            train(runs, name, args)
        with serving(runs) as url, chromium() as browser:
            for name, _ in models(quick):
                common.log(f"drag: {name}")
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.set_default_timeout(60_000)
                open_decode(page, url, name)
                res = browser_drags(page)
                during, after = server_drag(page)
                page.context.close()
                description, params = describe(runs / name)
                rows.append(
                    [
                        description,
                        f"{params:,}",
                        f"{common.median(res['moves']) / DRAG_S:.0f}",
                        f"**{common.median(res['fps']):.1f}**",
                        f"{q(res['intervals'], 0.5):.1f} / {q(res['intervals'], 0.95):.1f}",
                        f"{q(res['ms'], 0.5):.2f} / {q(res['ms'], 0.95):.2f}",
                        f"{during} during, {after - during} on release",
                    ]
                )
    headers = [
        "decoder",
        "parameters",
        "pointer moves/s sent",
        "redraws/s while dragging",
        "redraw interval p50 / p95 (ms)",
        "one redraw p50 / p95 (ms)",
        "server sliders (baseline): images in a 2 s drag",
    ]
    return "\n".join(
        [
            "## Decode while dragging (in-browser decoder, headless Chromium)",
            "",
            f"A {DRAG_S:g} s drag of the first latent slider, {DRAGS} drags per decoder (median redraws/s); the mouse "
            "moves as often as Playwright can send it, so redraws/s is capped by the moves/s column. A redraw is "
            "decode + pixels + canvas, timed in the page. Baseline: the same drag on the server-side Streamlit "
            "slider (in-browser decoding off), which sends its value only on release.",
            "",
            common.table(headers, rows, "lrrrrrl"),
            "",
            f"Reproduce: `{COMMAND}`. Target (issue #6): ≥ 30 redraws/s, aim 60.",
        ]
    )


if __name__ == "__main__":
    common.main(run, __doc__)
