"""What bench/bench_interaction.py prepares before it times anything: the plan, the run, its maps, a training.

``train_run`` trains the benchmark's run with the command line; ``cache_maps`` and ``gc_probe`` run in child
processes (``bench_interaction.child``) with the app's own modules; ``Training`` is the training that runs
beside the concurrent sessions.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import common
from harness.browser_steps import View
from vae.runs import folder as rf

RUN = "bench-interaction"
BATCH = 128  # the command line's default batch size (both trainings use it)
# Below 4,096 points umap-learn finds neighbours exactly, skipping pynndescent, whose numba code takes ~25 s to
# compile in every new process: caching the page's default UMAP map of the test split then takes seconds.
MAX_TEST = 4000
# The two servers compared: name -> (how the report names it, extra `streamlit run` options).
SERVERS = {
    "default": ("Streamlit defaults", []),
    "gc_off": ("`--runner.postScriptGC false`", ["--runner.postScriptGC", "false"]),
}


# ---------------------------------------------------------------- the plan


@dataclass
class Plan:
    """What one run of the benchmark measures, and on which data."""

    data: str
    epochs: int
    default_view: View  # what the page opens with (UMAP, test split, at most 5,000 points)
    views: tuple[View, View]  # two maps reached from the default view by widgets; the second by one click
    loads: int  # page loads (each followed by both views)
    clicks: int  # per view and server
    steps: int  # slider steps per server
    contexts: int  # concurrent sessions under load
    load_steps: int  # slider steps per concurrent session
    maps: tuple[tuple[str, str, int | None], ...]  # (method, split, size) the pages show on the way
    max_test: int | None = None  # test images kept (the default map's size)
    rounds: int = 3  # A/B blocks per server
    solo_s: float = 10.0  # seconds the background training runs beside idle sessions before they start stepping
    notes: list[str] = field(default_factory=list)


def make_plan(quick: bool, interactions: int | None, contexts: int | None) -> Plan:
    """Fashion-MNIST and 30 interactions each; digits where ``quick`` or without Fashion-MNIST."""
    n = interactions or (5 if quick else 30)
    rounds = 1 if n < 6 else 3  # A/B blocks per server
    n = math.ceil(n / rounds) * rounds
    k = contexts or 8
    counts = dict(loads=n, clicks=n, steps=n, contexts=k, load_steps=math.ceil(max(n, 32 if n >= 30 else n) / k))
    counts["rounds"] = rounds
    if quick or not common.fashion_available():
        plan = Plan(
            data="digits",
            epochs=(1 if n < 3 else 3) if quick else 10,  # a smoke run (an interaction or two): one epoch
            default_view=View("test", "all (360)", 360, None, "UMAP"),
            views=(View("test", "all (360)", 360, None), View("train", "all (1,437)", 1437, None)),
            maps=(("UMAP", "test", None), ("PCA", "test", None), ("PCA", "train", None)),
            solo_s=(1.0 if n < 3 else 4.0) if quick else 10.0,
            **counts,
        )
        if not quick:
            plan.notes.append("Fashion-MNIST was not available here: scikit-learn's digits were used.")
        return plan
    return Plan(
        data=common.FASHION,
        epochs=1,
        max_test=MAX_TEST,
        default_view=View("test", "all (4,000)", 4000, None, "UMAP"),
        views=(View("train", "10,000", 10_000, 10_000), View("train", "all (60,000)", 60_000, None)),
        maps=(
            ("UMAP", "test", None),  # the page's default view: without it the page would fit UMAP
            ("PCA", "test", None),  # on the way from the default view to the timed ones
            ("PCA", "train", 5000),
            ("PCA", "train", 10_000),
            ("PCA", "train", None),
        ),
        **counts,
    )


# ---------------------------------------------------------------- the run and its maps


def train_run(runs: Path, plan: Plan) -> dict:
    """Train the benchmark's run with the command line; its JSON summary plus its last epoch's examples/s."""
    args = ["train", "--data", plan.data, "--epochs", str(plan.epochs), "--name", RUN, "--json"]
    if plan.max_test:
        args += ["--max-test", str(plan.max_test)]
    summary = json.loads(common.vae_cli(runs, *args))
    epochs = [r for r in rf.read_metrics(runs / RUN) if r.get("type") == "epoch"]
    if epochs:
        summary["examples_per_s"] = epochs[-1].get("examples_per_s")
    return summary


def cache_maps(run_dir: str, maps: list) -> list[str]:
    """(Child process.) Cache each (method, split, size) map with the Explore page's own code.

    ``ui.cache.latent_means`` and ``ui.cache.fitted_projector``, as the page calls them, so the file each
    writes is the one the page then loads. Returns a line per map saying how long it took.
    """
    import logging

    logging.disable(logging.WARNING)  # "No runtime found": the cached loaders work without a server
    from ui import cache
    from vae.projection import projection_key

    run = Path(run_dir)
    checkpoint = rf.checkpoint_id(run)
    done = []
    for method, split, size in maps:
        t = time.perf_counter()
        codes, _ = cache.latent_means(str(run), checkpoint, split, size)  # (N, latent_dim)
        m = method.lower()  # the page's radio label -> the vae.projection method ("UMAP" -> "umap")
        key = projection_key(checkpoint, {"method": m}, len(codes), split)
        cache.fitted_projector(run, checkpoint, key, codes, m, split)
        done.append(f"{method} {split} {len(codes):,} points: {time.perf_counter() - t:.1f} s")
    return done


def gc_probe() -> dict:
    """(Child process.) One full collection with the app's modules loaded, without and with its freeze."""
    import logging

    logging.disable(logging.WARNING)

    def collect_ms() -> float:
        return common.median_time(gc.collect) * 1e3

    from ui import cache, runtime, sidebar  # noqa: F401 - what app.py imports before it freezes the collector

    out = {"objects_before_freeze": len(gc.get_objects()), "no_freeze_ms": collect_ms()}
    runtime.configure_process()
    out["frozen"] = gc.get_freeze_count()
    from ui import figures, maps, pictures  # noqa: F401 - what the Explore page imports (plotly, pandas)

    out.update(after_freeze_ms=collect_ms(), objects_after_freeze=len(gc.get_objects()))
    return out


# ---------------------------------------------------------------- the training beside the sessions


class Training:
    """A training (default MLP, the command line's defaults; Fashion-MNIST where present) beside the sessions."""

    def __init__(self, tmp: Path, data: str):
        self.data = data
        self.runs = tmp / "background-runs"  # its own folder: new sessions keep picking the benchmark run
        cmd = [sys.executable, "-m", "vae", "--runs-dir", str(self.runs), "train", "--data", data]
        epochs = "200" if data == common.FASHION else "3000"  # outlasts the sessions; stopped afterwards
        cmd += ["--epochs", epochs, "--name", "background", "--json"]
        cmd += os.environ.get("BENCH_TRAIN_ARGS", "").split()  # e.g. "--threads 1", to compare thread budgets
        self.run_dir = self.runs / "background"
        nice = int(os.environ.get("BENCH_TRAIN_NICE", "0"))  # the training's niceness, to compare priorities
        self.proc = subprocess.Popen(
            cmd,
            cwd=common.ROOT,
            env=common.child_env(LATENT_EXPLORER_RUNS=str(self.runs)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )

    def steps(self) -> list[dict]:
        """The step records of its metrics so far."""
        return [r for r in rf.read_metrics(self.run_dir) if r.get("type") == "step"]

    async def wait_stepping(self, timeout: float = 120.0) -> None:
        """Wait until it has logged two steps (it is past its start-up)."""
        deadline = time.time() + timeout
        while len(self.steps()) < 2:
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the background training did not start")
            await asyncio.sleep(0.2)

    def examples_per_s(self, since: float, until: float | None = None) -> float | None:
        """Training throughput from its last step line before ``since`` (wall clock) to its last one before
        ``until`` (its latest one by default)."""
        rows = self.steps()
        before = [r for r in rows if r["time"] <= since]
        upto = [r for r in rows if until is None or r["time"] <= until]
        first, last = (before[-1] if before else rows[0]), upto[-1]
        if last["time"] <= first["time"]:
            return None
        return (last["step"] - first["step"]) * BATCH / (last["time"] - first["time"])

    def stop(self) -> None:
        """SIGTERM (it saves a checkpoint and exits), SIGKILL after 30 s; this process only, by its pid."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
