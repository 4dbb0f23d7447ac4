"""Shared helpers for the benchmark sections: data, latent codes, markdown tables, the command line.

Every section module exposes ``run(quick: bool = False) -> str`` (a markdown section) and can be run
alone (``python -m bench X [--quick]`` prints it). Progress goes to stderr, markdown to stdout.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

FASHION = "fashion-mnist"


def log(message: str) -> None:
    """A progress line on stderr (stdout carries the markdown)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0 <= q <= 1) of the finite values; NaN when there are none.

    The one definition every section uses: linear interpolation between the two nearest ranks (numpy's
    default, Hyndman & Fan type 7), so ``quantile(v, 0.5)`` is the median and a p95 of a few samples lies
    between the two largest rather than jumping to one of them.
    """
    finite = sorted(v for v in values if v is not None and math.isfinite(v))
    if not finite:
        return float("nan")
    pos = q * (len(finite) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(finite) - 1)
    return finite[lo] + (finite[hi] - finite[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    """The median of the finite values (``quantile(values, 0.5)``); NaN when there are none."""
    return quantile(values, 0.5)


def timed(f: Callable[[], object]) -> tuple[float, object]:
    """Call ``f()`` once: (seconds it took, what it returned)."""
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


def median_time(f: Callable[[], object], repeats: int = 5) -> float:
    """The median seconds of ``repeats`` calls of ``f()``."""
    return median([timed(f)[0] for _ in range(repeats)])


def fmt(value: float | None, digits: int = 2, unit: str = "") -> str:
    """A number for a table cell; "n/a" for None or NaN."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def duration(seconds: float | None) -> str:
    """``2.8 s``, ``45 ms``, ``12 µs`` (three significant figures at most)."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            v = seconds / scale
            return f"{v:.{0 if v >= 100 else 1 if v >= 10 else 2}f} {unit}"
    return "n/a"


def plural(n: int, word: str) -> str:
    """``3 epochs``, ``1 epoch``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A markdown table; ``align`` is one letter per column, l or r (default: first left, rest right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def table_rows(markdown: str) -> list[list[str]]:
    """The body rows (not headers) of every markdown table in ``markdown``, as lists of cells."""
    import re

    rows, in_body = [], False
    for line in markdown.splitlines():
        if re.fullmatch(r"\|(\s*-+:?\s*\|)+", line):
            in_body = True
        elif line.startswith("|") and in_body:
            rows.append([c.strip() for c in line.strip("|").split("|")])
        else:
            in_body = False
    return rows


def numbers(cell: str) -> list[float]:
    """Every number in a table cell ("1,234.5 ms / 7" -> [1234.5, 7.0])."""
    import re

    return [float(m.replace(",", "")) for m in re.findall(r"-?\d[\d,]*(?:\.\d+)?", cell)]


def no_fashion(title: str) -> str:
    """The section a benchmark returns where Fashion-MNIST is missing."""
    return f"{title}\n\nSkipped: Fashion-MNIST is not available here (`apt-get install dataset-fashion-mnist`).\n"


def fashion_available() -> bool:
    """Whether Fashion-MNIST can be loaded without a download (Debian's package, $FASHION_MNIST_DIR, cache)."""
    from vae.data import available_datasets

    return any(d.get("name") == FASHION and d.get("available") for d in available_datasets())


@functools.lru_cache(maxsize=4)
def load_fashion(max_train: int | None = None, max_test: int | None = None):
    """Fashion-MNIST through ``vae.data`` (a fixed-seed subset when limits are given); cached per process."""
    return fashion(max_train, max_test)[0]


def fashion(max_train: int | None = None, max_test: int | None = None):
    """(the dataset, its ``DataConfig``) of Fashion-MNIST, as ``load_fashion``: what a benchmark's runs train on."""
    from vae.config import DataConfig
    from vae.data import load_dataset

    cfg = DataConfig(name=FASHION, max_train=max_train, max_test=max_test)
    return load_dataset(cfg), cfg


@functools.lru_cache(maxsize=2)
def latent_codes(n_train: int | None = None, epochs: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Real latent codes for the projection benchmarks: (codes (N, 20) float32, labels (N,)).

    Trains the MLP VAE (784-400-20, Bernoulli, batch 128, Adam 1e-3 with torch's default betas) with
    ``vae.train`` for ``epochs`` epochs on the training images (``n_train`` of them, all 60,000 by default),
    then encodes the training images followed by the 10,000 test images: 70,000 posterior means in all.
    """
    import tempfile

    import torch

    from vae.config import LEGACY_ADAM_BETA2, DataConfig, TrainConfig
    from vae.runs.folder import new_run
    from vae.train import Trainer

    ds = load_fashion(n_train, None)
    with tempfile.TemporaryDirectory(prefix="bench-codes-") as root:
        cfg = TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, adam_beta2=LEGACY_ADAM_BETA2, log_every=10_000)
        run = new_run(root, "codes", ds, DataConfig(name=FASHION, max_train=n_train), train_cfg=cfg)
        trainer = Trainer(run, dataset=ds)
        status = trainer.run()
        if status["state"] != "finished":
            raise RuntimeError(f"Training the model for latent codes failed: {status.get('message')}")
        model = trainer.model.eval()
        with torch.inference_mode():
            mu_train, _ = model.embed(ds.x_train)
            mu_test, _ = model.embed(ds.x_test)
    codes = np.concatenate([mu_train, mu_test]).astype(np.float32)  # (N, 20)
    labels = np.concatenate([ds.y_train.numpy(), ds.y_test.numpy()])
    return codes, labels


def save_codes(folder: str | Path, n_train: int | None = None, epochs: int = 3) -> Path:
    """Write ``latent_codes`` to ``folder/codes.npy`` for child processes; returns the path."""
    path = Path(folder) / "codes.npy"
    np.save(path, latent_codes(n_train, epochs)[0])
    return path


def vae_cli(runs: str | Path, *args: str) -> str:
    """Run ``python -m vae --runs-dir RUNS ARGS...`` in a child process; returns its stdout.

    Raises RuntimeError with the end of its output when it fails.
    """
    cmd = [sys.executable, "-m", "vae", "--runs-dir", str(runs), *args]
    done = subprocess.run(cmd, cwd=ROOT, env=child_env(LATENT_EXPLORER_RUNS=str(runs)), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`python -m vae {' '.join(args)}` failed: {done.stdout[-500:]} {done.stderr[-1500:]}")
    return done.stdout


@contextlib.contextmanager
def environment(**values: str):
    """``os.environ`` with ``values`` for the block (the served app inherits it)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child benchmark process: this one's, plus ``extra``, with ROOT importable."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def spawn_child(script: str, spec: dict, **env: str) -> dict:
    """Run ``script``'s ``child(spec)`` in a fresh interpreter (see ``main``) and return its JSON result.

    ``env`` is added to the child's environment; ``process_s`` in the result is the whole process's time.
    The child's stderr (its progress lines) is captured: return what the parent should report.
    """
    module = "bench." + Path(script).stem  # bench/ is a package: its modules run with -m, never by path
    cmd = [sys.executable, "-m", module, "--child", json.dumps(spec)]
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=child_env(**env), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(script).stem} child failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t
    return result


def main(run: Callable[..., str], doc: str | None, child: Callable[[dict], dict] | None = None) -> None:
    """``python -m bench.bench_X --child JSON``: print ``child(spec)`` as JSON (the fresh process ``spawn_child``
    starts). Any other command line is ``python -m bench``'s for this module's benchmark."""
    if child is not None and len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return
    from bench.__main__ import main as bench_main
    from bench.registry import BENCHMARKS

    module = getattr(run, "__module__", "")
    names = [b.name for b in BENCHMARKS if b.module == module]
    sys.exit(bench_main([*names, *sys.argv[1:]]))


def mean_spread(values: list[float], digits: int = 2) -> str:
    """One measure over seeds as mean ± spread (half the range); the value alone for one seed."""
    if len(values) == 1:
        return fmt(values[0], digits)
    return f"{fmt(float(np.mean(values)), digits)} ± {fmt((max(values) - min(values)) / 2, digits)}"
