"""Background training processes: start, pause, resume, stop, and read their state.

A job is ``python -m vae worker RUN_DIR`` in its own session, so it outlives the page (and the
Streamlit server) that started it. UI and worker talk only through files in the run folder.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import folder as rf
from . import standby
from .places import PROJECT_ROOT

ACTIVE_STATES = ("starting", "running", "paused")
ADMISSION_LOCK = ".admission.lock"  # in the runs folder: hidden, never listed as a run
STARTUP_GRACE = 30.0  # seconds a launched worker has to write its own pid
_CHILDREN: dict[int, subprocess.Popen] = {}  # keeps our children's handles so they are reaped


def max_jobs() -> int:
    """How many trainings may run at once: ``$LATENT_EXPLORER_MAX_JOBS`` (default 1 on this 2-core target)."""
    try:
        return max(1, int(os.environ.get("LATENT_EXPLORER_MAX_JOBS", "1")))
    except ValueError:
        return 1


def pid_alive(pid: int | None) -> bool:
    """True while ``pid`` is a live (non-zombie) process; reaps it if it is our finished child."""
    if not pid or pid <= 0:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: fall through to the signal probe
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] != "Z"
    except (OSError, IndexError):
        return True


def is_training_process(pid: int) -> bool:
    """Whether ``pid`` runs this package's command line (a worker, ``train``, or a torchrun rank of one).

    A status file's pid outlives its process: once the process ends the number may be given to any other.
    """
    if not Path("/proc/self/cmdline").exists():
        return True  # no /proc here (macOS): the state check before this one has to do
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    module = b"-m" in argv and any(a in (b"vae", b"vae.launch") for a in argv)  # python -m vae ..., or its launcher
    return module or any(a.rsplit(b"/", 1)[-1] == b"vae" for a in argv[:2])  # the `vae` command pip installs


def process_started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since 1970, from /proc), or None where that cannot be read."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))  # fmt: skip
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def is_writer(status: dict) -> bool:
    """Whether the process ``status`` names is alive and can be the one that wrote it: a training of this package
    (its command line; or this very process, training in it) that started before the status was last written. A
    pid is given to another process once its own ended (after a crash or a reboot). Where start times cannot be
    read, a live training's pid is taken at its word."""
    pid = status.get("pid")
    if not pid_alive(pid) or (pid != os.getpid() and not is_training_process(pid)):  # pid 1 is alive, and not ours
        return False
    started, written = process_started(pid), status.get("updated")
    return started is None or written is None or started <= written + 2.0  # the boot time is whole seconds


def reap() -> int:
    """Collect the exit status of every training process this one started that has ended (else each stays a
    zombie in the process table for as long as the server runs); returns how many."""
    done = [pid for pid, proc in list(_CHILDREN.items()) if proc.poll() is not None]
    for pid in done:
        _CHILDREN.pop(pid, None)
    return len(done)


def refresh_status(run_dir: str | Path) -> dict:
    """The run's status, marking it ``interrupted`` if it claims to run but its process is gone."""
    reap()
    run_dir = Path(run_dir)
    status = rf.read_status(run_dir)
    launching = status.get("state") == "starting" and not status.get("pid")
    if launching and time.time() - status.get("updated", 0) < STARTUP_GRACE:
        return status
    if status.get("state") in ACTIVE_STATES and not is_writer(status):
        recorded = [m.get("epoch", 0) for m in rf.read_metrics(run_dir) if m.get("type") == "epoch"]
        epoch = max([status.get("epoch", 0), *recorded])  # a resume killed as it started had not said its epoch yet
        has_ckpt = rf.has_state(run_dir)
        status.update(
            state="interrupted",
            message=(
                "The training process ended without finishing (killed, or the machine restarted). "
                + (f"Resume continues from the last checkpoint (epoch {epoch})." if has_ckpt else "Start it again.")
            ),
            updated=time.time(),
        )
        try:
            rf.write_status(run_dir, status)
        except OSError:  # a read-only folder: the listing says so all the same, and never needs to write
            pass
    return status


def active_runs(root: str | Path | None = None) -> list[Path]:
    """Run folders whose training process is alive."""
    root = Path(root) if root is not None else rf.default_root()
    if not root.is_dir():
        return []
    return [
        p
        for p in sorted(root.iterdir())
        if p.is_dir() and rf.is_run(p) and refresh_status(p).get("state") in ACTIVE_STATES
    ]


def start(
    run_dir: str | Path, *, resume: bool = False, root: str | Path | None = None, procs: int | None = None
) -> int:
    """Launch the training process for ``run_dir``; returns its pid.

    ``procs`` > 1: that many processes under torchrun on this machine (127.0.0.1), one model trained with
    DistributedDataParallel; rank 0 writes the run folder and its pid, so pause, stop and the status work as
    for one process. None: one for a fresh start, the run's own number for a resume. Refuses (``ValueError``)
    if this run is already training or the machine's job limit is reached.
    """
    if procs is None:
        recorded = rf.read_status(run_dir).get("processes") if resume else 1
        procs = recorded if isinstance(recorded, int) and recorded >= 1 else 1
    if not 1 <= procs <= (os.cpu_count() or 1):
        raise ValueError(f"processes must be from 1 to this machine's {os.cpu_count() or 1} cores; got {procs}.")
    run_dir = Path(run_dir).resolve()
    rf.load_config(run_dir)  # a clear error now rather than in the log later
    if resume:
        rf.check_state(run_dir)
    root = Path(root) if root is not None else run_dir.parent
    with _admission(root):  # check and launch as one step, across processes (several app sessions, the CLI)
        return _launch(run_dir, resume, root, procs)


@contextmanager
def _admission(root: Path) -> Iterator[None]:
    """An exclusive lock on the runs folder's admission file while a start is checked and launched."""
    path = root / ADMISSION_LOCK
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as e:  # a link (ELOOP) or a pipe with no reader (ENXIO) planted there; a read-only folder
        fix = (
            "the runs folder is read-only: nothing can start in it"
            if e.errno in (errno.EROFS, errno.EACCES)
            else "remove it"
        )
        raise ValueError(f"The runs folder's {ADMISSION_LOCK} cannot be opened ({e.strerror}); {fix}.") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"The runs folder's {ADMISSION_LOCK} is not a regular file; remove it.")
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _refuse_if_busy(run_dir: Path, root: Path) -> None:
    """A sentence (``ValueError``) if this run already has a writer or the machine's job limit is reached."""
    if refresh_status(run_dir).get("state") in ACTIVE_STATES:
        raise ValueError(f"{run_dir.name} is already training (one run has one writer); stop it first.")
    running = active_runs(root)
    if len(running) >= max_jobs():
        names = ", ".join(p.name for p in running)
        raise ValueError(
            f"{len(running)} training(s) already running ({names}); this machine allows {max_jobs()} at once. "
            "Wait for it to finish or stop it (or raise LATENT_EXPLORER_MAX_JOBS)."
        )


def admit_here(run_dir: str | Path) -> None:
    """Admit a training in this very process (``vae train`` in the foreground) as ``start`` admits a background
    one: refused if the run already trains or the job limit is reached; else its status names this process."""
    run_dir = Path(run_dir).resolve()
    with _admission(run_dir.parent):
        _refuse_if_busy(run_dir, run_dir.parent)
        status = rf.read_status(run_dir)
        status.update(state="starting", message="starting", pid=os.getpid(), updated=time.time())
        rf.write_status(run_dir, status)


def _launch(run_dir: Path, resume: bool, root: Path, procs: int = 1) -> int:
    _refuse_if_busy(run_dir, root)
    rf.clear_control(run_dir)
    cmd = [sys.executable, "-m", "vae", "worker", str(run_dir)] + (["--resume"] if resume else [])
    if procs > 1:  # vae.launch starts the ranks on 127.0.0.1; rank 0 writes its own pid into the status
        cmd[1:3] = ["-m", "vae.launch", str(procs)]
    # "starting" without a pid counts as alive for STARTUP_GRACE seconds; the worker then writes its own pid.
    status = rf.read_status(run_dir)
    status.update(state="starting", message="starting the training process", pid=None, updated=time.time())
    rf.write_status(run_dir, status)
    if procs == 1 and (proc := standby.hand_over(run_dir, resume)):  # a process started ahead, torch loaded
        _CHILDREN[proc.pid] = proc
        return proc.pid
    with open(rf.log_path(run_dir), "ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env=standby.worker_env(procs),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def pause(run_dir: str | Path) -> None:
    rf.write_control(run_dir, "pause")


def resume(run_dir: str | Path) -> None:
    """Un-pause a paused process; a stopped or interrupted run is restarted from its checkpoint."""
    status = refresh_status(run_dir)
    if status.get("state") in ACTIVE_STATES:
        rf.write_control(run_dir, "resume")
    else:  # no checkpoint yet (killed during its first epoch): start again from scratch
        start(run_dir, resume=rf.has_state(run_dir))


def stop(run_dir: str | Path, wait: float = 0.0) -> dict:
    """Ask the process to stop (it saves a checkpoint first); optionally wait up to ``wait`` seconds."""
    rf.write_control(run_dir, "stop")
    status = refresh_status(run_dir)
    pid = status.get("pid") if status.get("state") in ACTIVE_STATES else None
    if pid and is_writer(status) and is_training_process(pid):  # an old pid may be anyone's by now
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + wait
    while wait and time.time() < deadline and pid_alive(pid):
        time.sleep(0.05)
    return refresh_status(run_dir)


def wait(run_dir: str | Path, timeout: float = 600.0, poll: float = 0.1) -> dict:
    """Block until the run's process has ended (or ``timeout``); returns the final status."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = refresh_status(run_dir)
        if status.get("state") not in ACTIVE_STATES:
            return status
        time.sleep(poll)
    return refresh_status(run_dir)
