"""What one server round trip costs the browser: Chromium's CPU per Streamlit rerun, the least a page can ask.

    python -m bench rerun_floor [--quick]

Two pages, one session each, in headless Chromium on this machine: a minimal Streamlit script (a fragment
holding one slider and one 224-px picture that changes with it) and the Decode page with its server sliders
(in-browser decoding switched off; a small digits model). Each step presses an arrow key on the slider and
waits for the new picture; the CPU time of all Chromium processes (from /proc) is read before and after the
steps, and the same span idle is subtracted. This is the floor under issue #9's eight-sessions target: eight
pages stepping at once on the server's own two cores cost eight times this before the server or a training
runs. Baseline: the Decode page (the server path the target measures), in the same run. Asserts nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common
from harness.serving import chromium, free_port, serving, stop_server, wait_healthy

TITLE = "## One server round trip: the browser's CPU per Streamlit rerun"
MINIMAL = """import numpy as np
import streamlit as st

@st.fragment
def panel():
    v = st.slider("z", -3.0, 3.0, 0.0, 0.1)
    rng = np.random.default_rng(int(round(v * 10)) + 30)
    st.image(np.kron((rng.random((28, 28)) * 255).astype("uint8"), np.ones((8, 8), "uint8")), output_format="PNG")

panel()
"""
PICTURE = '[data-testid="stMain"] [data-testid="stImage"] img'
NEW_PICTURE = """(old) => { const i = document.querySelector('[data-testid="stMain"] [data-testid="stImage"] img');
  return i && i.src !== old && i.complete; }"""
SLIDERS = '[data-testid="stMain"] [class*="st-key-decode_dim_"] input[type="range"]'
TOGGLE = "Decode in the browser while dragging"


def chromium_cpu() -> float:
    """CPU seconds used so far by every Chromium process on this machine."""
    total = 0
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if b"chromium" not in (p / "cmdline").read_bytes()[:300]:
                continue
            fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def steps(page, slider, n: int, pause: float = 0.3) -> tuple[float, list[float]]:
    """``n`` arrow-key steps on ``slider``: Chromium's CPU ms per step (idle subtracted) and each step's ms."""
    slider.focus()
    times = []
    cpu0, t0 = chromium_cpu(), time.perf_counter()
    for i in range(n):
        old = page.locator(PICTURE).first.get_attribute("src")
        start = time.perf_counter()
        page.keyboard.press("ArrowRight" if i % 20 < 10 else "ArrowLeft")
        page.wait_for_function(NEW_PICTURE, arg=old, timeout=30_000)
        times.append(1000 * (time.perf_counter() - start))
        time.sleep(pause)
    busy, span = chromium_cpu() - cpu0, time.perf_counter() - t0
    idle0 = chromium_cpu()
    time.sleep(span)
    idle = chromium_cpu() - idle0
    return 1000 * max(0.0, busy - idle) / n, times


def minimal_page(browser, n: int) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        script = Path(tmp) / "minimal.py"
        script.write_text(MINIMAL)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, proc)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.locator(PICTURE).first.wait_for(timeout=60_000)
            time.sleep(1.0)
            out = steps(page, page.get_by_role("slider").first, n)
            page.close()
            return out
        finally:
            stop_server(proc)


def decode_page(browser, n: int) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory(prefix="bench-floor-runs-") as tmp:
        subprocess.run([sys.executable, "-m", "vae", "--runs-dir", tmp, "train", "--data", "digits", "--epochs", "15",
                        "--latent", "4", "--hidden", "64", "--name", "digits-small", "--json"],
                       cwd=common.ROOT, check=True, capture_output=True)  # fmt: skip
        with serving(Path(tmp)) as url:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/decode")
            toggle = page.get_by_role("switch", name=TOGGLE)
            toggle.wait_for(timeout=60_000)
            if toggle.is_checked():
                page.get_by_text(TOGGLE, exact=True).click()
            page.locator(SLIDERS).first.wait_for(timeout=60_000)
            page.locator(PICTURE).first.wait_for(timeout=60_000)
            time.sleep(1.0)
            out = steps(page, page.locator(SLIDERS).first, n)
            page.close()
            return out


def run(quick: bool = False) -> str:
    n = 10 if quick else 40
    rows = []
    with chromium() as browser:
        for name, f in (
            ("a minimal page: one slider and one picture in a fragment", minimal_page),
            ("the Decode page, server sliders (baseline)", decode_page),
        ):
            common.log(f"rerun floor: {name}, {n} steps…")
            cpu, times = f(browser, n)
            rows.append([name, str(n), f"{cpu:.0f}", common.fmt(common.median(times), 0, ""),
                         common.fmt(sorted(times)[int(0.95 * (len(times) - 1))], 0, "")])  # fmt: skip
    return (
        f"{TITLE}\n\nOne session, headless Chromium, 2 cores; each step waits for its new picture, then 0.3 s.\n\n"
        + common.table(["page", "steps", "Chromium CPU per step, ms", "step p50 ms", "step p95 ms"], rows)
        + "\n\nBaseline: the Decode page's server sliders, in the same run.\n\n"
        "Reproduce alone: `python -m bench rerun_floor [--quick]`.\n"
    )


if __name__ == "__main__":
    common.main(run, __doc__)
