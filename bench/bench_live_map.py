"""The live latent map on the Train page: how soon after the trainer writes a frame the browser shows it, in PCA
and in UMAP, and what watching it costs the training.

    python -m bench live_map [--quick]

A Fashion-MNIST training (the default MLP, ``python -m vae train``, 15 epochs, on the threads the app's form gives
it here; ``--quick``: digits) runs into a fresh runs folder served by ``streamlit run app.py``; headless Chromium
opens its Train page (``/train?run=NAME``) while it trains and, every 50 ms, notes when the live latent map
(``ui/livemap``) gains a frame and when the live panel's ELBO curve (``ui/livepanel``) gains an epoch
(``performance.timeOrigin + performance.now()``: the same wall clock as the trainer's ``time.time()`` on this
machine). Latency of a frame: from the ``time`` the trainer wrote into it to the first check that sees it (up to
50 ms pessimistic). Baseline, in the
same run: the ELBO curve's new point, from the ``time`` of the epoch's line in ``metrics.jsonl``; the browser asks
the run's feed for both every ``EVERY_S`` seconds, so the difference is what the map itself costs. Frames recorded
before the page was open are left out. Then the same with the page's map in UMAP (each frame fitted by the map
worker, started from the frame before): from a frame written to the page saying it is fitted. The training's pace
(its epochs' examples per second, after the page opened) with each page open, against the same training with no
page open, and the CPU each part used meanwhile (/proc); where the form leaves a core to the page, the same
training on every core too, alone and watched in UMAP.
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

ROUNDS = 2  # each arm on the form's threads, one after the other, this many times: the machine's pace drifts
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


def latencies(events: list, written: list[float], column: int, since: float) -> list[float]:
    """ms from each ``written[k]`` (s) after ``since`` to the first event whose count ``column`` exceeds k."""
    out = []
    for k, t in enumerate(written):
        if t * 1000 < since:
            continue
        seen = next((e[0] for e in events if e[column] > k), None)
        if seen is not None:
            out.append(seen - t * 1000)
    return out


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


def train_watched(runs: Path, url: str, data: str, epochs: int, method: str | None, server: int = 0,
                  threads: int = 1, round_: int = 0) -> dict:  # fmt: skip
    """One training of ``data`` into ``runs`` on ``threads`` torch threads; with ``method`` ("PCA" or "UMAP") its
    Train page open in Chromium, watched until it ends. Returns the page's events, when watching began, the
    frames' and epoch lines' times and the training's examples per second over the epochs that ended after the
    page opened."""
    name = f"{RUN}-{(method or 'alone').lower()}-{threads}-{round_}"
    cmd = [sys.executable, "-m", "vae", "--runs-dir", str(runs), "train", "--data", data, "--epochs", str(epochs),
           "--name", name, "--threads", str(threads), "--json"]  # fmt: skip
    training = subprocess.Popen(cmd, cwd=common.ROOT, env=common.child_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
    events, since, cpu = [], time.time() * 1000, {}
    try:
        while not history.frame_paths(runs / name):  # the run exists and has its first frame
            if training.poll() is not None:
                raise RuntimeError("the benchmark's training ended before it started")
            time.sleep(0.2)
        if method is None:
            since = time.time() * 1000
            training.wait(timeout=900)
        else:
            with chromium() as browser:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{url}/train?run={name}")
                page.get_by_role("heading", name="Latent map as it trains").wait_for(timeout=120_000)
                if method == "UMAP":
                    page.get_by_text("UMAP", exact=True).first.click()
                wait_idle(page, 120_000)
                page.evaluate(WATCH)
                since = page.evaluate("() => performance.timeOrigin + performance.now()")
                common.log(f"live map: watching {data} train for {epochs} epochs, the map in {method}…")
                cpu0, t0 = cpu_by_part(training.pid, server), time.time()
                while training.poll() is None and time.time() < t0 + 900:
                    cpu1, t1 = cpu_by_part(training.pid, server), time.time()  # the last reading before it ends
                    time.sleep(0.5)
                cpu = {k: (cpu1[k] - cpu0[k]) / max(t1 - t0, 1e-9) for k in cpu0}  # cores busy, on average
                page.wait_for_timeout(3000 if method == "PCA" else 15_000)  # the last frame reaches the page
                events = page.evaluate("() => window.__live")
    finally:
        if training.poll() is None:
            training.kill()
            training.wait()
    epochs_after = [m for m in rf.read_metrics(runs / name) if m.get("type") == "epoch" and m["time"] * 1000 > since]
    pace = sum(m["examples_per_s"] for m in epochs_after) / max(1, len(epochs_after))
    return {
        "events": events,
        "since": since,
        "frames": [f.time for f in history.frames(runs / name)],
        "epochs": [m["time"] for m in rf.read_metrics(runs / name) if m.get("type") == "epoch"],
        "pace": pace,
        "cpu": cpu,
    }


def run(quick: bool = False) -> str:
    missing = missing_browser()
    if missing:
        return f"{TITLE}\n\nSkipped: missing {' and '.join(missing)}.\n"
    data = "digits" if quick or not common.fashion_available() else "fashion-mnist"
    epochs = 40 if data == "digits" else 15
    cores = os.cpu_count() or 1
    threads = watched_threads(preset(data).train.threads)  # as the Train page's form starts it here
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        runs = Path(tmp)
        with common.environment(LATENT_EXPLORER_WARM_UMAP="0", LATENT_EXPLORER_RUNS=str(runs)):
            url, proc = start_app(runs)
            try:
                wait_healthy(url, proc)
                rounds = []  # the baseline (no page open) and the page open in PCA and in UMAP, one after the other
                for r in range(1 if quick else ROUNDS):
                    rounds.append({(method or "alone"): train_watched(runs, url, data, epochs, method, proc.pid,
                                                                      threads, r)
                                   for method in (None, "PCA", "UMAP")})  # fmt: skip
                every = {}  # the same with every core on the training, as before the app left one to the page
                if threads != cores:
                    every["alone"] = train_watched(runs, url, data, epochs, None, threads=cores)
                    every["UMAP"] = train_watched(runs, url, data, epochs, "UMAP", proc.pid, cores)
            finally:
                stop_server(proc)
    pooled = lambda arm, key, column: [x for r in rounds for x in latencies(r[arm]["events"], r[arm][key], column,  # noqa: E731
                                                                           r[arm]["since"])]  # fmt: skip
    rows = [
        ["latent map in PCA: frame written → frame on screen", *stats(pooled("PCA", "frames", 1))],
        ["latent map in UMAP: frame written → its UMAP fitted, on screen", *stats(pooled("UMAP", "frames", 3))],
        ["ELBO curve: epoch line written → point on screen (baseline)", *stats(pooled("PCA", "epochs", 2))],
    ]
    on = f"{threads} thread{'s' * (threads > 1)}"  # the threads the form gives the training here
    mean = lambda arm, key="pace": sum(r[arm][key] for r in rounds) / len(rounds)  # noqa: E731
    alone = {"pace": mean("alone")}
    pace = [[f"{on}: no page open (baseline)", f"{alone['pace']:,.0f}", "1.00", "–"]]
    for name in ("PCA", "UMAP"):
        kept = [r[name]["pace"] / r["alone"]["pace"] for r in rounds]  # each round against its own baseline
        each = f" ({', '.join(f'{k:.2f}' for k in kept)})" if len(kept) > 1 else ""
        pace.append([f"{on}: the Train page open, map in {name}", f"{mean(name):,.0f}",
                     f"**{sum(kept) / len(kept):.2f}**{each}",
                     f"{mean(name) / every['alone']['pace']:.2f}" if every else "–"])  # fmt: skip
    if every:
        pace += [[f"{cores} threads (every core): no page open", f"{every['alone']['pace']:,.0f}", "–", "1.00"],
                 [f"{cores} threads (every core): the Train page open, map in UMAP", f"{every['UMAP']['pace']:,.0f}",
                  "–", f"{every['UMAP']['pace'] / every['alone']['pace']:.2f}"]]  # fmt: skip
    parts = ["training", "server", "map worker", "browser"]
    cpu_of = lambda arm: {k: sum(r[arm]["cpu"].get(k, 0) for r in rounds) / len(rounds) for k in parts}  # noqa: E731
    arms = [(f"{on}, map in PCA", {"cpu": cpu_of("PCA")}), (f"{on}, map in UMAP", {"cpu": cpu_of("UMAP")})]
    arms += [(f"{cores} threads, map in UMAP", every["UMAP"])] if every else []
    cpu = [[name, *(f"{arm['cpu'].get(k, 0):.2f}" for k in parts)] for name, arm in arms]
    return (
        f"{TITLE}\n\n"
        f"A {data} training ({epochs} epochs, the default MLP, 2,000 probe items a frame) watched on its Train "
        f"page in headless Chromium; the browser asks the run's feed for new rows and frames every {LIVE_EVERY_S:g} s. "
        "In UMAP, the map "
        "worker fits each new frame from the one before, in the background, while the training runs beside it.\n\n"
        + common.table(["what", "n", "p50 ms", "p95 ms", "max ms"], rows)
        + "\n\nBaseline: the ELBO curve's new point, polled as often, in the same run. "
        "Frames and epochs written before the page was open are left out.\n\n"
        + common.table(
            [
                "the same training",
                "examples per second",
                f"vs {on}, no page",
                f"vs {cores} threads, no page",
            ],
            pace,
        )
        + f"\n\nThe training's pace: the mean of its epochs' examples per second after the page opened, each "
        f"training one after the other in the same run; on {on}, {len(rounds)} round{'s' * (len(rounds) > 1)} of the "
        "three, each page open against the baseline of its own round (in brackets: each round's). The app starts a "
        f"training on {threads} thread"
        f"{'s' * (threads > 1)} here (``vae.config.watched_threads``: a core left to the page and its browser); "
        "the rows on every core are the baseline from before that.\n\n"
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
