"""A training process started ahead of need: it loads torch while the user reads the page.

``prepare()`` starts ``python -m vae worker --standby``, which imports torch, the optimiser's machinery and
the data split's library (about 3 s of a new training process's 5-7 s before its first step, on 2 cores),
then waits on its stdin. The next one-process start (``vae.runs.jobs``) hands it the run (``hand_over``): it
then trains exactly as a worker launched for that run would (status, pid, stop and log alike). A standby
nobody used ends by itself when the app does (its stdin closes). Importing this module loads nothing heavy,
so the app starts one before it loads torch itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from .places import PROJECT_ROOT

_WAITING: list[tuple[subprocess.Popen, dict[str, str]]] = []  # at most one: the process and its environment
# Read as libraries load (thread pools, paths): a standby started under other values of these is not used. The
# rest of the environment is sent with the run and replaces the standby's own before it trains.
# (numba's are not among them: training never loads it, and the server sets NUMBA_CACHE_DIR after the standby starts.)
READ_AT_LOAD = ("OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_", "TORCH", "CUDA", "PYTHON", "LD_", "HOME",
                "LATENT_EXPLORER_DATA")  # fmt: skip
SET_BY_IMPORTS = ("KMP_INIT_AT_FORK", "KMP_DUPLICATE_LIB_OK")  # loading torch sets these (here and in the standby)
_LOCK = threading.Lock()


def worker_env(procs: int = 1) -> dict[str, str]:
    """The environment of a training process started by the app (this project on its path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    if procs > 1:
        env["MASTER_ADDR"] = "127.0.0.1"  # the processes talk over this machine's loopback only
    return env


def prepare() -> None:
    """Start a standby training process unless one is waiting (``$LATENT_EXPLORER_STANDBY=0``: never)."""
    if os.environ.get("LATENT_EXPLORER_STANDBY", "1") == "0":
        return
    with _LOCK:
        if _WAITING and _WAITING[0][0].poll() is None:
            return
        _WAITING.clear()
        env = worker_env()
        proc = subprocess.Popen(
            [sys.executable, "-m", "vae", "worker", "--standby"],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _WAITING.append((proc, env))


def hand_over(run_dir: Path, resume: bool) -> subprocess.Popen | None:
    """The waiting standby, told to train ``run_dir``; None when none is waiting, it ended meanwhile, or this
    process's environment changed since it started (a fresh worker must see the new one; the standby ends)."""
    with _LOCK:
        proc, env = _WAITING.pop() if _WAITING else (None, None)
    if proc is None or proc.poll() is not None or proc.stdin is None:
        return None
    now = worker_env()
    if _read_at_load(env) != _read_at_load(now):
        proc.stdin.close()  # it ends by itself
        return None
    try:
        proc.stdin.write(json.dumps({"run": str(run_dir), "resume": resume, "env": now}).encode() + b"\n")
        proc.stdin.close()
    except OSError:  # it ended meanwhile: the caller launches a fresh process
        return None
    return proc


def _read_at_load(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(READ_AT_LOAD) and k not in SET_BY_IMPORTS}


def await_run() -> tuple[Path, bool] | None:
    """In the standby process: import what training needs, then wait for the run on stdin (one JSON line: the
    run folder, whether to resume, the app's environment at the start, which replaces this process's), and send
    this process's output to that run's log. None when stdin closes first (the app ended)."""
    import sklearn.model_selection  # noqa: F401  (the data's split)
    import torch._dynamo  # noqa: F401  (every torch optimiser imports it when made: about 1 s)

    from .. import train  # noqa: F401
    from . import folder as rf

    line = sys.stdin.readline()
    if not line.strip():
        return None
    order = json.loads(line)
    os.environ.clear()
    os.environ.update(order["env"])
    log = os.open(rf.log_path(order["run"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    return Path(order["run"]), bool(order["resume"])
