"""The live latent map on the Train page: how soon after the trainer writes a frame the browser shows it, in PCA
and in UMAP, and what watching it costs the training.

    python -m bench live_map [--quick]

A Fashion-MNIST training (the default MLP, ``python -m vae train``, 50 epochs, on the threads the app's form gives
it here; ``--quick``: 12 epochs, no arm on every core; digits where Fashion-MNIST is missing) runs into a fresh runs
folder served by ``streamlit run app.py``, and headless Chromium opens its Train page (``/train?run=NAME``) and
closes it again (``about:blank``), in turns of ``TURN_S`` seconds (in UMAP, the page stays open until the turn's
frames are fitted), until the training ends: the same training, watched and not, in alternation, so the machine's
drift (two trainings one after the other here differed by up to 10 %) falls on both alike. The training's pace
watched against its pace unwatched: the mean examples per second of its epochs that ran wholly inside a turn, after
the turn settled (``SETTLE_S``: the page loaded, or the map worker's last fit ended). Once with the map in PCA, once
in UMAP (each frame fitted by the map worker, started from the frame before); where the form leaves a core to the
page, once more in UMAP on every core (as before the app left one).

While the page is open it notes, every 50 ms, when the live latent map (``ui/livemap``) gains a frame and when the
live panel's ELBO curve (``ui/livepanel``) gains an epoch (``performance.timeOrigin + performance.now()``: the same
wall clock as the trainer's ``time.time()`` on this machine). Latency of a frame: from the ``time`` the trainer
wrote into it to the first check that sees it (up to 50 ms pessimistic), for the frames written while the page was
open and seen before it closed. Baseline, in the same run: the ELBO curve's new point, from the ``time`` of the
epoch's line in ``metrics.jsonl``; the browser asks the run's feed for both every ``EVERY_S`` seconds, so the
difference is what the map itself costs. In UMAP: from a frame written to the page drawing its UMAP. And the CPU
each part used while the page was open (/proc).
Asserts nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common
from harness.serving import chromium, missing_browser, start_app, stop_server, wait_healthy, wait_idle
from ui.livepanel import EVERY_S as LIVE_EVERY_S
from vae.analysis import history
from vae.config import preset, watched_threads
from vae.runs import folder as rf

WATCHED_EPOCHS = 20  # the UMAP frames' latency: a training watched from start to end (no backlog from closed turns)
TURN_S = 15.0  # the page open, then closed, for this long each (2 epochs at least), in turns
SETTLE_S = 3.0  # a turn counts from this long after it began: the page loaded, or the map worker's last fit ended
TITLE = "## The live latent map: from a frame written to a frame on screen"
RUN = "live"
WATCH = r"""() => {
    window.__live = [];
    const found = {}; // the live panel and the live map (ui/livepanel, ui/livemap): in their components' shadow roots
    const inShadow = (selector) => {
        if (found[selector] && found[selector].isConnected) return found[selector];
        found[selector] = document.querySelector(selector);
        for (const host of document.querySelectorAll('.stBidiComponent *, [data-testid] *')) {
            if (found[selector]) break;
            if (host.shadowRoot) found[selector] = host.shadowRoot.querySelector(selector);
        }
        return found[selector];
    };
    const count = () => {
        const live = inShadow('[data-live-map]'), panel = inShadow('[data-live-panel]');
        const frames = live ? Number(live.dataset.frames || 0) : 0;
        const fitted = live && live.dataset.method === 'umap' ? frames : 0; // in UMAP: the frames fitted so far
        return [frames, panel ? Number(panel.dataset.epochs || 0) : 0, fitted];
    };
    let last = [-1, -1, -1];
    const tick = () => {
        const now = count();
        if (now.some((v, i) => v !== last[i])) {
            window.__live.push([performance.timeOrigin + performance.now(), ...now]);
            last = now;
        }
    };
    setInterval(tick, 50); // every 50 ms, not every animation frame: the probe itself must not load the page
}"""


def _processes() -> dict[int, tuple[int, float, str]]:
    """Every process: pid -> (parent pid, CPU seconds used, its command line's first words)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
        except (OSError, ValueError):
            continue
        out[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, cmd)
    return out


def cpu_by_part(training: int, server: int) -> dict[str, float]:
    """CPU seconds used so far by the training, the app server, its map worker and the browser (every other
    process under this one: Playwright's driver and Chromium), each with its descendants still alive."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)

    def tree(root: int) -> set[int]:
        out, todo = set(), [root]
        while todo:
            pid = todo.pop()
            if pid in procs and pid not in out:
                out.add(pid)
                todo += children.get(pid, [])
        return out

    worker = {p for p in tree(server) if "worker" in procs[p][2] or "multiprocessing" in procs[p][2]}
    parts = {"training": tree(training), "server": tree(server) - worker, "map worker": worker}
    parts["browser"] = tree(os.getpid()) - set().union(*parts.values()) - {os.getpid()}
    return {name: sum(procs[p][1] for p in pids) for name, pids in parts.items()}


def train_watched(runs: Path, url: str, data: str, epochs: int, method: str, server: int, threads: int,
                  turns_on: bool = True) -> dict:  # fmt: skip
    """One training of ``data`` into ``runs`` on ``threads`` torch threads, its Train page open (the map in
    ``method``, "PCA" or "UMAP") and closed in turns of ``TURN_S`` seconds until it ends (``turns_on`` False:
    open from its first frame to its end, one turn). Returns each turn
    (watched or not, when it counted from and to, the page's events), the frames' and epoch lines' times, the
    epochs' examples per second and the CPU each part used while watched (cores)."""
    name = f"{RUN}-{method.lower()}-{threads}{'' if turns_on else '-watched'}"
    cmd = [sys.executable, "-m", "vae", "--runs-dir", str(runs), "train", "--data", data, "--epochs", str(epochs),
           "--name", name, "--threads", str(threads), "--json"]  # fmt: skip
    training = subprocess.Popen(cmd, cwd=common.ROOT, env=common.child_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
    done = lambda: [m for m in rf.read_metrics(runs / name) if m.get("type") == "epoch"]  # noqa: E731
    turns, busy, watched_s = [], {}, 0.0
    try:
        while not history.frame_paths(runs / name):  # the run exists and has its first frame
            if training.poll() is not None:
                raise RuntimeError("the benchmark's training ended before it started")
            time.sleep(0.2)
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            watching = False
            while training.poll() is None:
                watching = not watching
                if watching:
                    page.goto(f"{url}/train?run={name}")
                    page.get_by_role("heading", name="Latent map as it trains").wait_for(timeout=120_000)
                    if method == "UMAP":
                        page.get_by_text("UMAP", exact=True).first.click()
                    wait_idle(page, 120_000)
                    page.evaluate(WATCH)
                else:
                    page.goto("about:blank")
                time.sleep(SETTLE_S)
                if not watching:  # the map worker's fits the page asked for end first, or they count as unwatched
                    quiet_worker(training.pid, server)
                since, start = time.time(), len(done())
                cpu0 = cpu1 = cpu_by_part(training.pid, server)
                until = since
                while training.poll() is None and (
                    not turns_on or time.time() < since + TURN_S or len(done()) < start + 2
                ):
                    cpu1, until = cpu_by_part(training.pid, server), time.time()  # the last reading in the turn
                    time.sleep(0.3)
                until = time.time() if training.poll() is None else until
                events = []
                if watching:
                    page.wait_for_timeout(2500 if turns_on else 30_000)  # the last frame (its UMAP) reaches the page
                    events = page.evaluate("() => window.__live")
                    for k in cpu0:
                        busy[k] = busy.get(k, 0.0) + cpu1[k] - cpu0[k]
                    watched_s += max(0.0, until - since)
                turns.append({"watched": watching, "since": since, "until": until, "events": events})
    finally:
        if training.poll() is None:
            training.kill()
            training.wait()
    return {
        "turns": turns,
        "frames": [f.time for f in history.frames(runs / name)],
        "epochs": [(m["time"], m["examples_per_s"]) for m in done()],
        "cpu": {k: v / max(watched_s, 1e-9) for k, v in busy.items()},
    }


def quiet_worker(training: int, server: int, timeout: float = 90.0) -> None:
    """Wait until the map worker has used under 0.05 s of CPU over half a second (its fits over)."""
    deadline = time.time() + timeout
    before = cpu_by_part(training, server)["map worker"]
    while time.time() < deadline:
        time.sleep(0.5)
        now = cpu_by_part(training, server)["map worker"]
        if now - before < 0.05:
            return
        before = now


def pace_kept(arm: dict) -> tuple[float, float, int, int]:
    """(examples/s watched, unwatched, how many epochs each): the epochs that ran wholly inside a turn."""
    paces = {True: [], False: []}
    epochs = arm["epochs"]
    for (start, _), (end, pace) in zip(epochs, epochs[1:], strict=False):  # the first epoch's start is unknown
        turn = next((t for t in arm["turns"] if t["since"] <= start and end <= t["until"]), None)
        if turn is not None:
            paces[turn["watched"]].append(pace)
    mean = lambda v: sum(v) / len(v) if v else float("nan")  # noqa: E731
    return mean(paces[True]), mean(paces[False]), len(paces[True]), len(paces[False])


def seen(arm: dict, key: str, column: int) -> list[float]:
    """ms from each frame (``key`` "frames") or epoch line ("epochs") written while the page was open to the
    page's first check that shows it (``column``: 1 frames, 2 ELBO points, 3 UMAP frames), in the same turn."""
    written = arm[key] if key == "frames" else [t for t, _ in arm[key]]
    out = []
    for turn in (t for t in arm["turns"] if t["watched"] and t["events"]):
        first = turn["events"][0][0]
        inside = [(k, t) for k, t in enumerate(written) if first <= t * 1000 <= turn["until"] * 1000]
        for k, t in inside:
            shown = next((e[0] for e in turn["events"] if e[column] > k), None)
            if shown is not None:
                out.append(shown - t * 1000)
    return out


def run(quick: bool = False) -> str:
    missing = missing_browser()
    if missing:
        return f"{TITLE}\n\nSkipped: missing {' and '.join(missing)}.\n"
    data = "fashion-mnist" if common.fashion_available() else "digits"
    epochs = (12 if quick else 50) if data == "fashion-mnist" else (400 if quick else 1000)  # digits: 0.1 s an epoch
    cores = os.cpu_count() or 1
    threads = watched_threads(preset(data).train.threads)  # as the Train page's form starts it here
    arms = [("PCA", threads, True), ("UMAP", threads, True), ("UMAP", threads, False)]  # the last: UMAP's latency
    arms += [("UMAP", cores, True)] if threads != cores and not quick else []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        runs = Path(tmp)
        with common.environment(LATENT_EXPLORER_WARM_UMAP="0", LATENT_EXPLORER_RUNS=str(runs)):
            url, proc = start_app(runs)
            try:
                wait_healthy(url, proc)
                out = {}
                for method, on, turns_on in arms:
                    common.log(f"live map: {data}, {epochs if turns_on else WATCHED_EPOCHS} epochs on {on} thread(s), "
                               f"{'its page open and closed in turns' if turns_on else 'watched'}, the map in "
                               f"{method}…")  # fmt: skip
                    out[method, on, turns_on] = train_watched(runs, url, data, epochs if turns_on else WATCHED_EPOCHS,
                                                              method, proc.pid, on, turns_on)  # fmt: skip
            finally:
                stop_server(proc)
    pca, umap = out["PCA", threads, True], out["UMAP", threads, False]
    rows = [
        ["latent map in PCA: frame written → frame on screen", *stats(seen(pca, "frames", 1))],
        ["ELBO curve: epoch line written → point on screen (baseline)", *stats(seen(pca, "epochs", 2))],
        ["latent map in UMAP (the page open throughout): frame written → its UMAP fitted, on screen",
         *stats(seen(umap, "frames", 3))],
        ["ELBO curve, same run (baseline)", *stats(seen(umap, "epochs", 2))],
    ]  # fmt: skip
    label = lambda n: f"{n} thread{'s' * (n > 1)}" + (" (every core)" if n == cores and n != threads else "")  # noqa: E731
    pace, cpu = [], []
    parts = ["training", "server", "map worker", "browser"]
    for (method, on, turns_on), arm in out.items():
        if not turns_on:
            continue
        watched, alone, n_watched, n_alone = pace_kept(arm)
        pace.append([f"{label(on)}, map in {method}", f"{alone:,.0f} ({n_alone})", f"{watched:,.0f} ({n_watched})",
                     f"**{watched / alone:.2f}**"])  # fmt: skip
        cpu.append([f"{label(on)}, map in {method}", *(f"{arm['cpu'].get(k, 0):.2f}" for k in parts)])
    return (
        f"{TITLE}\n\n"
        f"A {data} training ({epochs} epochs, the default MLP, 2,000 probe items a frame), its Train page open "
        f"in headless Chromium and closed again in turns of {TURN_S:g} s (2 epochs at least); while open, the "
        f"browser asks the run's feed for new rows and frames every {LIVE_EVERY_S:g} s. In UMAP, the map worker "
        "fits each new frame from the one before, in the background, while the training runs beside it.\n\n"
        + common.table(["what", "n", "p50 ms", "p95 ms", "max ms"], rows)
        + "\n\nBaseline: the ELBO curve's new point, polled as often, in the same run. Frames and epochs written "
        f"while the page was closed are left out. UMAP: a training of {WATCHED_EPOCHS} epochs watched from its first "
        "frame to its end (where the page was closed, the frames written meanwhile wait to be fitted when it opens "
        "again).\n\n"
        + common.table(
            ["the training, on", "examples/s, page closed (epochs)", "examples/s, page open (epochs)", "pace kept"],
            pace,
        )  # fmt: skip
        + f"\n\nThe same training, watched and not in turns: the mean examples per second of the epochs that ran "
        f"wholly inside a turn, {SETTLE_S:g} s after it began (the page loaded; the map worker's last fit over). The "
        f"app starts a training on {label(threads)} here (``vae.config.watched_threads``: a core left to the page "
        "and its browser); the row on every core is the baseline from before that.\n\n"
        + common.table(["while watched: CPU cores busy, on average", *parts], cpu)
        + "\n\nFrom /proc while the page was open: each part with its processes (the server's map worker apart; "
        "the browser: Playwright's driver and Chromium); 2 cores in all.\n\n"
        "Reproduce alone: `python -m bench live_map [--quick]`.\n"
    )


def stats(values: list[float]) -> list[str]:
    if not values:
        return ["0", "–", "–", "–"]
    return [str(len(values)), f"{common.quantile(values, 0.5):,.0f}", f"{common.quantile(values, 0.95):,.0f}",
            f"{max(values):,.0f}"]  # fmt: skip


if __name__ == "__main__":
    common.main(run, __doc__)
