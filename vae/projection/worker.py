"""UMAP maps fitted in a process of their own: the server never imports umap, never compiles its code and never
holds Python's GIL for a fit.

``MapWorker`` (the server's side) starts ``python -m vae.projection.worker`` at low priority on one thread. The
worker imports umap; unless a map is already asked for, it warms the small-map path up on synthetic codes
(compiling into numba's disk cache, ``umap_runtime.warm_up``); then it fits the maps it is sent, one at a time,
and once no map has been asked for ``IDLE_BEFORE_LARGE`` seconds it starts a one-shot child compiling the
large-map path into the disk cache (beside a fit, that child slowed the demo's first map), unless a child did
so before for these versions (``umap_runtime.large_path_cached``). Each map is a JSON
line on its stdin naming a ``.npy`` file of codes and where the map goes (``cache.cached_projection``'s
arguments); it answers with JSON lines on its stdout: ``{"progress": f, "message": m}`` while it works, then
``{"done": true}`` or ``{"error": sentence}``. The server reads the finished map from the run's map cache.
A ``sequence`` job (``MapWorker.sequence``) fits frames that glide (``sequence.umap_sequence``: a run's latent
history in UMAP), writing the layouts finished so far into the file the job names after each frame.
The worker runs in a session of its own, its session's scheduling group at the lowest priority
(``umap_runtime.background_process``): below the training and the browser, whatever their sessions. It ends when
its stdin closes or its parent is gone (the server went away: Ctrl+C in its terminal or a kill of its process
group no longer reach it), and takes its compiling child with it.

On a new machine the demo's first UMAP map needed the compile twice over before: a child compiled into the disk
cache, then the server imported umap, loaded the compiled code and compiled the one kernel numba cannot keep on
disk (the inverse's epoch), about 3 s more of the server's CPU on the way to the first map.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

import numpy as np

from ..progress import Progress, report
from .umap_runtime import FIRST_WARM_UP, SMALL_MAP, background_process, child_env

IDLE_BEFORE_LARGE = 20.0  # seconds without a map asked before the large path's compile starts (beside no fit)


class WorkerGone(RuntimeError):
    """The worker process could not start or be written to (the caller may fit in its own process instead)."""


ENDED = ("The process fitting UMAP maps ended before this map was done (out of memory?). Try fewer points, "
         "or PCA.")  # fmt: skip


class MapWorker:
    """The server's handle on one worker process (started on first use; again after it ended). Thread-safe:
    maps are fitted one at a time."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.fitted = False  # whether a map was fitted yet (the first one may wait for umap's compile)

    def start(self) -> subprocess.Popen:
        """The running worker, started now if none runs (``WorkerGone`` if it cannot start). A running worker is
        returned at once, without the lock a fit holds for its whole length: app.py asks on every page run, and
        waited for a UMAP fit to end (a 737,280-item map: minutes) before drawing anything."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            return proc
        with self._lock:
            return self._started()

    def _started(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "vae.projection.worker"], env=child_env(), stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, text=True, bufsize=1, start_new_session=True,
                    preexec_fn=background_process,  # below the training and the browser, whatever their session
                )  # fmt: skip
            except OSError as e:
                raise WorkerGone(f"the map worker could not start: {e}") from e
        return self._proc

    def fit(
        self, cache_dir: str | Path, key: str, codes: np.ndarray, params: dict, progress: Progress | None = None,
        grid_resolution: int | None = None, checkpoint: str | None = None, split: str | None = None,
        start: np.ndarray | None = None,
    ) -> None:  # fmt: skip
        """Have the worker fit map ``key`` of ``codes`` into ``cache_dir`` (as ``cached_projection`` would).

        ``ValueError`` with a sentence if the fit failed there or the worker ended meanwhile; ``WorkerGone`` if no
        worker could be started or sent the map.
        """
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        with self._lock, tempfile.NamedTemporaryFile(suffix=".npz", dir=cache_dir) as f:
            np.savez(f, codes=np.asarray(codes), **({} if start is None else {"start": np.asarray(start)}))
            f.flush()
            job = {"codes": f.name, "cache_dir": str(cache_dir), "key": key, "params": params,
                   "grid_resolution": grid_resolution, "checkpoint": checkpoint, "split": split}  # fmt: skip
            self._run(job, progress)

    def sequence(
        self, codes: list[np.ndarray], start: np.ndarray | None = None, seed: int = 0,
        progress: Progress | None = None, on_layout=None,
    ) -> list[np.ndarray]:  # fmt: skip
        """``sequence.umap_sequence`` fitted by the worker: each layout reaches ``on_layout`` (in this process) as
        soon as the worker has written it (it rewrites its file after each frame and then says how far it got), so
        a run's history gains its UMAP frames one by one; the ones it finished are kept if it ends. Errors as for
        ``fit``."""
        with self._lock, tempfile.TemporaryDirectory(prefix="umap-sequence-") as tmp:
            job_file, out_file = Path(tmp) / "codes.npz", Path(tmp) / "layouts.npy"
            extra = {} if start is None else {"start": np.asarray(start)}
            np.savez(job_file, codes=np.stack([np.asarray(c) for c in codes]), **extra)
            done: list[np.ndarray] = []

            def relay(fraction: float, message: str) -> None:  # the frames written so far, then the news
                _deliver(out_file, done, on_layout)
                report(progress, fraction, message)

            try:
                self._run({"sequence": str(job_file), "out": str(out_file), "seed": seed}, relay)
            finally:
                _deliver(out_file, done, on_layout)
            return done

    def _run(self, job: dict, progress: Progress | None) -> None:
        """Send ``job`` to the worker and relay its progress until it is done (the caller holds the lock)."""
        proc = self._started()
        try:
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
        except (OSError, ValueError) as e:
            raise WorkerGone(f"the map worker ended: {e}") from e
        for line in proc.stdout:
            said = _parse(line)
            if "progress" in said:
                report(progress, float(said["progress"]), str(said["message"]))
            elif "error" in said:
                raise ValueError(str(said["error"]))
            elif said.get("done"):
                self.fitted = True
                return
        raise ValueError(ENDED)  # not fitted here instead: what ended it could end the server too

    def stop(self) -> None:
        """End the worker (it ends by itself when this process does)."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.stdin.close()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()


def _deliver(out_file: Path, done: list, on_layout) -> None:
    """Append the layouts ``out_file`` holds past ``done`` to it, each handed to ``on_layout(i, layout)``. The
    worker replaces the file whole (``os.replace``), so it is read either before or after a frame, never during."""
    if not out_file.is_file():
        return
    layouts = np.load(out_file, allow_pickle=False)
    for i in range(len(done), len(layouts)):
        done.append(layouts[i])
        if on_layout is not None:
            on_layout(i, layouts[i])


def _parse(line: str) -> dict:
    """One answer of the worker; {} for anything else."""
    try:
        said = json.loads(line)
    except ValueError:
        return {}
    return said if isinstance(said, dict) else {}


# ---------------------------------------------------------------- the worker process


def _asked(stream: IO, within: float = 0.0) -> bool:
    """Whether a line waits on ``stream`` (a pipe) now or comes ``within`` seconds; False where that cannot be told."""
    try:
        return bool(select.select([stream], [], [], within)[0])
    except (OSError, ValueError):
        return False


def serve(stdin: IO[str], out: IO[str]) -> None:
    """The worker's loop: import umap, warm it up unless a map is already asked for, then fit maps until stdin
    closes (see the module's docstring)."""
    from .cache import cached_projection
    from .umap_runtime import import_umap, large_path_cached, warm_up, warm_up_elsewhere

    def say(**message) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    import_umap()
    global _compiling
    _compiling = None  # the large-map path, compiled into the disk cache by a child once no map was asked for a while
    if not _asked(stdin):  # a map already waiting compiles the same code on its own codes, sooner
        warm_up(points=FIRST_WARM_UP)
    try:
        while True:
            if _compiling is None and not large_path_cached() and not _asked(stdin, IDLE_BEFORE_LARGE):
                _compiling = warm_up_elsewhere(SMALL_MAP)  # None if it could not start: tried after the next idle spell
            line = stdin.readline()
            if not line:  # the server went away
                break
            try:
                job = json.loads(line)
                if "sequence" in job:  # frames that glide (a run's latent history in UMAP)
                    _fit_sequence(job, lambda f, m: say(progress=f, message=m))
                    say(done=True)
                    continue
                loaded = np.load(job["codes"], allow_pickle=False)  # the codes (.npy), or with a start (.npz)
                npz = not isinstance(loaded, np.ndarray)
                codes, start = (loaded["codes"], loaded.get("start")) if npz else (loaded, None)
                cached_projection(
                    job["cache_dir"], job["key"], codes, job["params"], lambda f, m: say(progress=f, message=m),
                    job["grid_resolution"], checkpoint=job["checkpoint"], split=job["split"], start=start,
                )  # fmt: skip
            except Exception as e:  # noqa: BLE001 - any failure is the map's, said to the server as a sentence
                say(error=str(e) or type(e).__name__)
            else:
                say(done=True)
    finally:
        if _compiling is not None and _compiling.poll() is None:
            _compiling.kill()


def _fit_sequence(job: dict, progress: Progress) -> None:
    """A ``sequence`` job: the frames' layouts into ``job["out"]`` (an .npy of (F, P, 2)), rewritten whole after
    each frame, so the server keeps every frame finished before an end."""
    from .sequence import umap_sequence

    data = np.load(job["sequence"], allow_pickle=False)
    done: list[np.ndarray] = []

    def keep(_: int, layout: np.ndarray) -> None:
        done.append(layout)
        tmp = job["out"] + ".tmp.npy"
        np.save(tmp, np.stack(done))
        os.replace(tmp, job["out"])

    umap_sequence(list(data["codes"]), data["start"] if "start" in data else None, int(job.get("seed", 0)),
                  progress, keep)  # fmt: skip


_compiling: subprocess.Popen | None = None  # the child compiling the large-map path, while it does


def _end_with(parent: int, every: float = 0.5) -> None:
    """(A thread.) End this process, and its compiling child, once the server that started it is gone. In a
    session of its own (``umap_runtime.background_process``), neither Ctrl+C in the server's terminal nor a kill of
    the server's process group reaches it, and in a fit it reads no stdin to find the server gone."""
    while os.getppid() == parent:
        time.sleep(every)
    if _compiling is not None and _compiling.poll() is None:
        _compiling.kill()
    os._exit(0)


def main() -> None:
    threading.Thread(target=_end_with, args=(os.getppid(),), daemon=True, name="end-with-server").start()
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")  # the answers; anything printed by libraries goes to stderr
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        serve(sys.stdin, out)
    except KeyboardInterrupt:  # Ctrl+C in the server's terminal reaches this process too: end quietly
        pass
    except Exception as e:  # noqa: BLE001 - re-raised unless it is a Ctrl+C in disguise
        if not interrupted(e):
            raise


def interrupted(error: BaseException) -> bool:
    """True when ``error`` is a Ctrl+C wrapped by Python: one landing while a class is created (importing umap's
    numba, say) reaches us as ``RuntimeError("Error calling __set_name__ ...")`` caused by the KeyboardInterrupt."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


if __name__ == "__main__":
    main()
