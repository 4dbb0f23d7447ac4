"""A training process started ahead of need: it loads torch while the user reads the page.

``prepare()`` starts ``python -m vae worker --standby``, which imports torch, the optimiser's machinery and
the data split's library (about 3 s of a new training process's 5-7 s before its first step, on 2 cores),
then waits on its stdin. The next one-process start (``vae.jobs``) hands it the run (``hand_over``): it
then trains exactly as a worker launched for that run would (status, pid, stop and log alike). A standby
nobody used ends by itself when the app does (its stdin closes). Importing this module loads nothing heavy,
so the app starts one before it loads torch itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from .places import PROJECT_ROOT

_WAITING: list[subprocess.Popen] = []  # at most one
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
        if _WAITING and _WAITING[0].poll() is None:
            return
        _WAITING.clear()
        _WAITING.append(
            subprocess.Popen(
                [sys.executable, "-m", "vae", "worker", "--standby"],
                cwd=PROJECT_ROOT,
                env=worker_env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )


def hand_over(run_dir: Path, resume: bool) -> subprocess.Popen | None:
    """The waiting standby, told to train ``run_dir``; None when none is waiting (or it ended meanwhile)."""
    with _LOCK:
        proc = _WAITING.pop() if _WAITING else None
    if proc is None or proc.poll() is not None or proc.stdin is None:
        return None
    try:
        proc.stdin.write(f"{run_dir}\t{int(resume)}\n".encode())
        proc.stdin.close()
    except OSError:  # it ended meanwhile: the caller launches a fresh process
        return None
    return proc


def await_run() -> tuple[Path, bool] | None:
    """In the standby process: import what training needs, then wait for ``RUN_DIR<TAB>RESUME`` on stdin and
    send this process's output to that run's log. None when stdin closes first (the app ended)."""
    import sklearn.model_selection  # noqa: F401  (the data's split)
    import torch._dynamo  # noqa: F401  (every torch optimiser imports it when made: about 1 s)

    from . import run as rf
    from . import train  # noqa: F401

    run, sep, resume = sys.stdin.readline().rstrip("\n").partition("\t")
    if not sep:
        return None
    log = os.open(rf.log_path(run), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    return Path(run), resume == "1"
