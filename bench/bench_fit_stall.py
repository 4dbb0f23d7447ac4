"""How the server answers while a UMAP map is fitted: its health endpoint, polled while Explore's first UMAP map
of 10,000 Fashion-MNIST codes (quick: 360 digits) is computed in the background.

    python -m bench fit_stall [--quick] [--baseline REV] [--trials N]

A Fashion-MNIST MLP VAE is trained for one epoch; numba's disk cache is warmed once (both paths), so what is
timed is a map in a server that has not fitted one yet, as after a restart. Each trial starts `streamlit run
app.py`, opens Home in headless Chromium, waits until the UMAP warm-up that starts is over (its processes idle
for 3 s), opens Explore on the test split's 10,000 points and, from the PCA stand-in on screen until the UMAP
map replaces it, asks ``/_stcore/health`` every 50 ms: the time each answer took is how long anything else the
server does (every page's rerun) waits behind the fit.
``--baseline REV`` runs the same trials on the app at git revision REV, in the same run, alternating. Not part of
``bench/run_all.py``: it starts a server per trial and waits for UMAP maps.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlparse

from bench import common
from bench.bench_first_map import TITLE, alternating, app_server, worktree
from harness.serving import chromium, stop_server, wait_healthy
from vae.projection.umap_runtime import SMALL_MAP
from vae.runs.places import projections_dir

COMMAND = "python -m bench fit_stall"
POLL_S = 0.05
TIMEOUT_MS = 300_000


def log(message: str) -> None:
    common.log(f"fit stall: {message}")


def server(app_root: Path, runs: Path, numba: Path, log_file: Path) -> tuple[str, subprocess.Popen]:
    """`streamlit run` of ``app_root``/app.py on ``runs``, numba's cache in ``numba`` (its UMAP warm-up on)."""
    env = common.child_env(LATENT_EXPLORER_RUNS=str(runs), NUMBA_CACHE_DIR=str(numba), LATENT_EXPLORER_STANDBY="0")
    return app_server(app_root, env, log_file)


def session_cpu(sid: int) -> float:
    """CPU seconds used so far by the live processes of session ``sid`` (a server and the processes it started)."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == sid:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def settle(proc: subprocess.Popen, quiet_s: float = 3.0, timeout: float = 180.0) -> float:
    """Wait until the server and its processes (its UMAP warm-up) have used under 5 % of a core for ``quiet_s``
    seconds in a row; returns the seconds waited."""
    t, quiet, last = time.perf_counter(), 0.0, session_cpu(proc.pid)
    while quiet < quiet_s and time.perf_counter() - t < timeout:
        time.sleep(0.5)
        now = session_cpu(proc.pid)
        quiet = quiet + 0.5 if now - last < 0.025 else 0.0
        last = now
    return time.perf_counter() - t


def poll_health(url: str, stop: threading.Event, answers: list[float]) -> None:
    """Ask ``/_stcore/health`` every ``POLL_S`` until ``stop``; append each answer's seconds to ``answers``."""
    where = urlparse(url)
    while not stop.is_set():
        t = time.perf_counter()
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
            conn.request("GET", "/_stcore/health")
            conn.getresponse().read()
            conn.close()
            answers.append(time.perf_counter() - t)
        stop.wait(max(0.0, POLL_S - (time.perf_counter() - t)))


def trial(browser, app_root: Path, runs: Path, run_dir: Path, numba: Path, points: str) -> dict:
    """One server's first UMAP map: seconds from the PCA stand-in to the UMAP map, and the health answers meanwhile."""
    shutil.rmtree(projections_dir(run_dir), ignore_errors=True)  # the server has fitted no map yet
    with tempfile.TemporaryDirectory(prefix="le-stall-") as tmp:
        url, proc = server(app_root, runs, numba, Path(tmp) / "streamlit.log")
        try:
            wait_healthy(url, proc, timeout=120)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)  # Home: the app's first run starts its UMAP warm-up
            page.get_by_role("link", name="Explore").first.wait_for()
            settled = settle(proc)  # a server visited a while ago: its warm-up over
            page.goto(f"{url}/explore?explore_points_test={quote(points)}")
            page.wait_for_function(f"() => ({TITLE})() === 'PCA 1'", polling=100, timeout=TIMEOUT_MS)
            answers: list[float] = []
            stop = threading.Event()
            poller = threading.Thread(target=poll_health, args=(url, stop, answers), daemon=True)
            start = time.perf_counter()
            poller.start()
            page.wait_for_function(f"() => ({TITLE})() === 'UMAP 1'", polling=100, timeout=TIMEOUT_MS)
            umap_s = time.perf_counter() - start
            stop.set()
            poller.join(timeout=70)
            page.context.close()
        finally:
            stop_server(proc)
    return {"umap_s": umap_s, "answers": answers, "settled_s": settled}


def run(quick: bool = False, baseline: str | None = None, trials: int | None = None) -> str:
    os.environ.setdefault("LATENT_EXPLORER_STANDBY", "0")  # no standby training beside the servers measured
    trials = trials or (1 if quick else 2)
    data = ["--data", "digits", "--latent", "8"] if quick else ["--data", "fashion-mnist", "--latent", "20"]
    points = "all (360)" if quick else "all (10,000)"
    apps = {"today": common.ROOT}
    results: dict[str, list[dict]] = {"today": []}
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stall-")))
        runs, numba = tmp / "runs", tmp / "numba"
        log("training one epoch; warming numba's disk cache (both map paths)")
        common.vae_cli(runs, "train", *data, "--epochs", "1", "--threads", "2", "--name", "stall")
        warm = f"from vae.projection.umap_runtime import warm_up; warm_up(points={SMALL_MAP}); warm_up(points=600)"
        subprocess.run([sys.executable, "-c", warm], env=common.child_env(NUMBA_CACHE_DIR=str(numba)), check=True,
                       capture_output=True)  # fmt: skip
        if baseline:
            apps[f"at {baseline}"] = stack.enter_context(worktree(baseline))
            results[f"at {baseline}"] = []
        browser = stack.enter_context(chromium())
        for t, name in alternating(list(apps), trials):
            r = trial(browser, apps[name], runs, runs / "stall", numba, points)
            results[name].append(r)
            a = r["answers"]
            log(f"trial {t + 1}/{trials}, {name}: settled after {r['settled_s']:.0f} s; UMAP after "
                f"{r['umap_s']:.1f} s; health p50 {1e3 * common.median(a):.0f} ms, "
                f"p95 {1e3 * common.quantile(a, 0.95):.0f} ms, max {1e3 * max(a):.0f} ms "
                f"({len(a)} answers)")  # fmt: skip
    rows = []
    for name, rs in results.items():
        a = [x for r in rs for x in r["answers"]]
        rows.append([
            name, str(len(rs)), common.fmt(common.median([r["umap_s"] for r in rs]), 1, " s"),
            common.fmt(1e3 * common.median(a), 0, " ms"), common.fmt(1e3 * common.quantile(a, 0.95), 0, " ms"),
            common.fmt(1e3 * max(a), 0, " ms"), str(len(a)),
        ])  # fmt: skip
    head = ["app", "trials", "PCA stand-in → UMAP map", "health p50", "health p95", "health max", "answers"]
    command = COMMAND + (" --quick" if quick else "") + (f" --baseline {baseline}" if baseline else "")
    command += f" --trials {trials}" if trials != (1 if quick else 2) else ""
    what = "the test split's 360 digits" if quick else "the test split's 10,000 Fashion-MNIST codes"
    return (
        "## The server while a UMAP map is fitted\n\n"
        f"`{command}` · Explore's first UMAP map in a server whose warm-up is over ({what}, numba's disk cache "
        "warm), headless "
        f"Chromium, 2 cores; the server's health endpoint asked every {POLL_S * 1e3:.0f} ms meanwhile, all trials' "
        "answers together.\n\n" + common.table(head, rows) + "\n"
    )


if __name__ == "__main__":
    common.main(run, __doc__)
