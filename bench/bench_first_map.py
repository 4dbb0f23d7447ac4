"""A new user's first map: on a fresh machine, Home's "Train a demo model" click to the Explore map on screen.

    python -m bench first_map [--quick] [--baseline REV] [--trials N]

Each trial starts `streamlit run app.py` with a new, empty home folder (so numba's on-disk cache of UMAP's
compiled code is empty, as on a machine that never ran the app) and an empty runs folder, opens Home in
headless Chromium and clicks "Train a demo model" as soon as the button shows. Timed from the click: the
first map drawn on Explore (the PCA stand-in, or UMAP where the page waits for it), and the UMAP map drawn.
``--baseline REV`` runs the same trials on the app at git revision REV (a temporary worktree), in the same
run, alternating with today's app. Not part of ``bench/run_all.py``: each trial compiles UMAP from scratch.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench import common
from harness.serving import chromium, free_port, stop_server, wait_healthy

COMMAND = "python -m bench first_map"
TIMEOUT_MS = 240_000
# The map's x-axis title on screen, whichever chart draws it (the browser component or st.plotly_chart).
TITLE = """() => { const gd = document.querySelector('.js-plotly-plot');
  return gd && gd._fullLayout && gd._fullData && gd._fullData.length ? gd._fullLayout.xaxis.title.text : null; }"""
FORGET = ("NUMBA_CACHE_DIR", "LATENT_EXPLORER_NUMBA_CACHE", "LATENT_EXPLORER_RUNS")


def log(message: str) -> None:
    common.log(f"first map: {message}")


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """The repository at ``rev`` in a temporary folder (a git worktree, removed after)."""
    folder = Path(tempfile.mkdtemp(prefix="le-baseline-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), rev], cwd=common.ROOT, check=True,
                   capture_output=True)  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=common.ROOT, capture_output=True)


def app_server(app_root: Path, env: dict[str, str], log_file: Path) -> tuple[str, subprocess.Popen]:
    """`streamlit run` of ``app_root``/app.py (importing ``app_root``'s code) with ``env``, in a session of its own
    on a free port; its output goes to ``log_file``. Returns (its URL, its process): end it with ``stop_server``."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_root / "app.py"), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]  # fmt: skip
    out = open(log_file, "wb")  # noqa: SIM115 - closed with the process
    env = {**env, "PYTHONPATH": str(app_root)}
    proc = subprocess.Popen(cmd, cwd=app_root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return f"http://127.0.0.1:{port}", proc


def fresh_server(app_root: Path, home: Path, runs: Path) -> tuple[str, subprocess.Popen]:
    """`streamlit run` of ``app_root``/app.py with ``home`` as the home folder and ``runs`` as the runs folder."""
    env = {k: v for k, v in os.environ.items() if k not in FORGET}
    env |= {"HOME": str(home), "LATENT_EXPLORER_RUNS": str(runs)}
    return app_server(app_root, env, home / "streamlit.log")


def alternating(apps: list[str], trials: int) -> Iterator[tuple[int, str]]:
    """(trial, app) in the order the A/B benchmarks run them: the apps in turn, reversed every other trial."""
    for t in range(trials):
        for name in apps if t % 2 == 0 else reversed(apps):
            yield t, name


def trial(browser, app_root: Path) -> dict:
    """One new user: seconds from the demo click to the first map and to the UMAP map."""
    with tempfile.TemporaryDirectory(prefix="le-home-") as tmp:
        home, runs = Path(tmp) / "home", Path(tmp) / "runs"
        home.mkdir()
        runs.mkdir()
        url, proc = fresh_server(app_root, home, runs)
        try:
            wait_healthy(url, proc, timeout=120)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            page.get_by_role("button", name="Train a demo model").click()
            start = time.perf_counter()
            page.wait_for_url("**/explore*", timeout=TIMEOUT_MS)
            explore = time.perf_counter() - start
            page.wait_for_function(TITLE, polling="raf", timeout=TIMEOUT_MS)
            first = time.perf_counter() - start
            kind = page.evaluate(TITLE)
            page.wait_for_function(f"() => ({TITLE})() === 'UMAP 1'", polling=100, timeout=TIMEOUT_MS)
            umap = time.perf_counter() - start
            page.context.close()
        finally:
            stop_server(proc)
    return {"explore": explore, "first": first, "kind": kind.split()[0], "umap": umap}


def run(quick: bool = False, baseline: str | None = None, trials: int | None = None) -> str:
    trials = trials or (1 if quick else 2)
    apps = {"today": common.ROOT}
    results: dict[str, list[dict]] = {"today": []}
    with contextlib.ExitStack() as stack, chromium() as browser:
        if baseline:
            apps[f"at {baseline}"] = stack.enter_context(worktree(baseline))
            results[f"at {baseline}"] = []
        for t, name in alternating(list(apps), trials):
            log(f"trial {t + 1}/{trials}: {name}")
            results[name].append(r := trial(browser, apps[name]))
            log(f"  Explore after {r['explore']:.1f} s, first map ({r['kind']}) {r['first']:.1f} s, "
                f"UMAP {r['umap']:.1f} s")  # fmt: skip
    rows = []
    for name, rs in results.items():
        kinds = "/".join(sorted({r["kind"] for r in rs}))
        rows.append([
            name, str(len(rs)), common.fmt(common.median([r["explore"] for r in rs]), 1, " s"),
            f"{common.fmt(common.median([r['first'] for r in rs]), 1, ' s')} ({kinds})",
            common.fmt(common.median([r["umap"] for r in rs]), 1, " s"),
        ])  # fmt: skip
    head = ["app", "trials", "click → Explore", "click → first map", "click → UMAP map"]
    command = COMMAND + (f" --baseline {baseline}" if baseline else "") + (f" --trials {trials}" if trials != 2 else "")
    return (
        "## A new user's first map (fresh machine: empty numba cache)\n\n"
        f'`{command}` · Home → "Train a demo model" (digits, in the background) → Explore, headless Chromium, '
        "2 cores; medians. Target: ≤ 12 s to a map.\n\n" + common.table(head, rows) + "\n"
    )


if __name__ == "__main__":
    common.main(run, __doc__)
