"""The map worker: UMAP maps fitted in a process of their own (``vae.projection.worker``), and the server's use
of it (``ui.cache``). The first tests start real worker processes on real codes (digits); the loop's order of
work (warm-up, maps, the large path's compile) is tested in this process with its heavy steps stood in for."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from vae.projection import LatentProjector, cached_projection, umap_runtime
from vae.projection import cache as projection_cache
from vae.projection import worker as map_worker
from vae.projection.worker import ENDED, MapWorker, WorkerGone

ROOT = Path(__file__).resolve().parents[2]
GRID = 16


@pytest.fixture(scope="module")
def codes() -> np.ndarray:
    """400 digits' PCA-12 codes, (400, 12) float32."""
    X = load_digits().data[:400] / 16.0
    return PCA(12, random_state=0).fit_transform(X).astype(np.float32)


@pytest.fixture
def worker():
    w = MapWorker()
    yield w
    w.stop()


# ---------------------------------------------------------------- real worker processes


@pytest.mark.slow
def test_the_worker_fits_the_map_this_process_would_and_reports_progress(tmp_path, codes, worker):
    seen = []
    worker.fit(tmp_path / "a", "umap-digits", codes, {"method": "umap"}, lambda f, m: seen.append((f, m)), GRID,
               checkpoint="epoch-1", split="test")  # fmt: skip
    assert worker.fitted
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    theirs = cached_projection(tmp_path / "a", "umap-digits", codes, {"method": "umap"}, grid_resolution=GRID,
                               checkpoint="epoch-1", split="test", fit=False)  # fmt: skip
    assert theirs is not None, "the worker's map is not in the map cache under the key asked for"
    ours = cached_projection(tmp_path / "b", "umap-digits", codes, {"method": "umap"}, grid_resolution=GRID)
    np.testing.assert_array_equal(theirs.embedding_, ours.embedding_)  # one seed, one thread: the same map
    np.testing.assert_allclose(theirs.grid_codes_, ours.grid_codes_, atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["umap-digits.npz"]  # the codes' file is gone
    # a run's history in UMAP: each frame comes back as soon as it is fitted, not all of them at the end
    frames = [codes[:150] * (1.0 + 0.1 * k) for k in range(3)]  # three frames of the same 150 items
    events = []
    got = worker.sequence(frames, seed=0, progress=lambda f, m: events.append(("said", m)),
                          on_layout=lambda i, layout: events.append(("layout", i)))  # fmt: skip
    assert [e for e in events if e[0] == "layout"] == [("layout", 0), ("layout", 1), ("layout", 2)]
    last_frame = events.index(("said", "UMAP of frame 3 of 3"))
    assert ("layout", 0) in events[:last_frame] and ("layout", 1) in events[:last_frame], events
    assert len(got) == 3 and all(layout.shape == (150, 2) and np.isfinite(layout).all() for layout in got)


@pytest.mark.slow
def test_a_server_using_the_worker_never_loads_umap(tmp_path, codes):
    """The point of the worker: the server's process compiles nothing and holds no GIL for a fit."""
    np.save(tmp_path / "codes.npy", codes)
    script = (
        "import sys, numpy as np\n"
        "from vae.projection.worker import MapWorker\n"
        "from vae.projection import cached_projection\n"
        f"codes = np.load({str(tmp_path / 'codes.npy')!r})\n"
        "w = MapWorker()\n"
        f"w.fit({str(tmp_path / 'maps')!r}, 'umap-k', codes, {{'method': 'umap'}}, None, 8)\n"
        f"p = cached_projection({str(tmp_path / 'maps')!r}, 'umap-k', codes, {{'method': 'umap'}}, grid_resolution=8,"
        " fit=False)\n"
        "print(p.method, p.embedding_.shape, 'umap' in sys.modules, 'numba' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-5:] == ["umap", "(400,", "2)", "False", "False"], done.stdout


def test_fitting_and_keeping_a_map_never_loads_torch(tmp_path):
    """What the map worker does, a map fitted and written to the map cache, needs no torch (1.7 s of CPU and a few
    hundred MB for every worker that loaded it)."""
    script = (
        "import sys, numpy as np\n"
        "from vae.projection import cached_projection\n"
        "codes = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)\n"
        f"cached_projection({str(tmp_path)!r}, 'pca-k', codes, {{'method': 'pca'}}, None, 8)\n"
        "print('torch' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "False" and (tmp_path / "pca-k.npz").is_file()


@pytest.mark.slow
def test_a_map_the_worker_cannot_fit_comes_back_as_its_sentence(tmp_path, codes, worker):
    with pytest.raises(ValueError, match="at least 5 rows"):
        worker.fit(tmp_path, "umap-tiny", codes[:3], {"method": "umap"}, None, GRID)
    worker.fit(tmp_path, "umap-next", codes[:50], {"method": "umap"}, None, None)  # the worker goes on
    assert (tmp_path / "umap-next.npz").is_file()


@pytest.mark.slow
def test_a_worker_that_ended_is_started_again(tmp_path, codes, worker):
    first = worker.start()
    first.kill()
    first.wait(timeout=30)
    worker.fit(tmp_path, "umap-again", codes[:60], {"method": "umap"}, None, None)
    assert worker.start().pid != first.pid and (tmp_path / "umap-again.npz").is_file()


def test_asking_for_the_running_worker_never_waits_for_the_fit_under_way(worker):
    """app.py asks for the worker on every page run: a fit holds the worker's lock for its whole length (minutes
    for a large map), and the page must not wait for it."""
    import threading

    first = worker.start()
    fitting, done = threading.Event(), threading.Event()

    def long_fit():
        with worker._lock:  # as fit() and sequence() hold it while the worker fits
            fitting.set()
            done.wait(30)

    threading.Thread(target=long_fit, daemon=True).start()
    assert fitting.wait(10)
    try:
        got = []
        asker = threading.Thread(target=lambda: got.append(worker.start()), daemon=True)
        asker.start()
        asker.join(5)
        assert got == [first]  # answered while the fit still holds the lock
    finally:
        done.set()


def test_a_worker_that_ends_during_a_map_says_so_in_a_sentence(tmp_path, codes, worker, monkeypatch):
    """Not fitted in the server instead: whatever ended the worker (memory) could end the server too."""
    dying = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline()"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    monkeypatch.setattr(worker, "_started", lambda: dying)
    with pytest.raises(ValueError, match="ended before this map was done"):
        worker.fit(tmp_path, "umap-lost", codes, {"method": "umap"}, None, GRID)
    assert ENDED.endswith("or PCA.")
    dying.wait(timeout=30)


def test_a_worker_that_cannot_start_raises_worker_gone(tmp_path, codes, worker, monkeypatch):
    def no_process(*args, **kwargs):
        raise OSError("no more processes")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    with pytest.raises(WorkerGone):
        worker.fit(tmp_path, "umap-none", codes, {"method": "umap"}, None, GRID)


def test_a_background_child_runs_at_low_priority_in_a_scheduling_group_of_its_own():
    """The map worker's start (``background_process``): nice 10, a session of its own, and where Linux groups
    processes by session (autogroup), that group at the lowest priority, so the training and the browser, in
    other sessions, go first."""
    probe = ("import os, pathlib; g = pathlib.Path('/proc/self/autogroup'); "
             "print(os.getpriority(os.PRIO_PROCESS, 0), os.getsid(0) == os.getpid(), "
             "g.read_text().strip() if g.exists() else 'none')")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True,
                         start_new_session=True, preexec_fn=umap_runtime.background_process).stdout  # fmt: skip
    nice, own_session, group = out.strip().split(maxsplit=2)
    assert int(nice) >= umap_runtime.BACKGROUND_NICE and own_session == "True"
    if group != "none" and Path("/proc/sys/kernel/sched_autogroup_enabled").exists():
        assert group.endswith("nice 19"), group


@pytest.mark.slow
def test_the_worker_ends_once_the_server_that_started_it_is_gone():
    """Killed with its process group, the server takes no worker with it any more (the worker has a session of its
    own): the worker sees its parent gone and ends, within seconds, even before it reads its stdin."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-c", "import time; from vae.projection.worker import MapWorker; "
                               "print(MapWorker().start().pid, flush=True); time.sleep(120)"],
        env=env, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        worker = int(server.stdout.readline())
        assert Path(f"/proc/{worker}").exists()
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the server and its process group, as a closed terminal does
        server.wait(timeout=10)
    deadline = time.time() + 30
    while time.time() < deadline and _alive(worker):
        time.sleep(0.1)
    assert not _alive(worker), "the map worker outlived its server"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


@pytest.mark.slow
def test_ctrl_c_in_the_servers_terminal_ends_the_worker_without_a_traceback(tmp_path):
    """Ctrl+C reaches the whole foreground process group: the worker must end, and quietly."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "vae.projection.worker"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 60  # until it is importing umap (numba's compiled parts loaded), not a fixed second:
    while time.time() < deadline and "numba" not in Path(f"/proc/{proc.pid}/maps").read_text():  # on a busy machine
        time.sleep(0.05)  # a fixed 1 s could land before Python itself had started, killing it outright
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # ended, and quietly: on its own (0) or, once in the suite's five runs, by the signal's default action before
    # Python could turn it into KeyboardInterrupt (-2, nothing printed); never with a traceback
    assert proc.returncode in (0, -signal.SIGINT) and "Traceback" not in err and "Error" not in err, err[-2000:]


# ---------------------------------------------------------------- the worker's loop, its heavy steps stood in for


class FakeChild:
    def __init__(self) -> None:
        self.killed = False

    def poll(self):
        return None

    def kill(self) -> None:
        self.killed = True


@pytest.fixture
def loop(monkeypatch):
    """``serve`` in a thread on a real pipe, with umap's import, warm-up, large-path child and fit recorded."""
    calls: list = []
    large = FakeChild()
    monkeypatch.setattr(umap_runtime, "import_umap", lambda: calls.append("import"))
    monkeypatch.setattr(umap_runtime, "warm_up", lambda points: calls.append(("warm", points)))
    monkeypatch.setattr(umap_runtime, "warm_up_elsewhere", lambda points: calls.append(("large", points)) or large)
    monkeypatch.setattr(map_worker, "IDLE_BEFORE_LARGE", 0.3)
    cached = {"large": False}  # whether numba's disk cache holds the large path already (a child compiled it)
    monkeypatch.setattr(umap_runtime, "large_path_cached", lambda: cached["large"])

    def fit(cache_dir, key, codes, params, progress, grid, checkpoint=None, split=None, start=None):
        calls.append(("fit", key) if start is None else ("fit", key, start.tolist()))
        if key == "bad":
            raise ValueError("Codes hold NaN.")
        progress(1.0, "done")

    monkeypatch.setattr(projection_cache, "cached_projection", fit)
    read, write = os.pipe()
    stdin, to_worker, out = os.fdopen(read), os.fdopen(write, "w"), io.StringIO()

    class Loop:
        def __init__(self) -> None:
            self.calls, self.large, self.out, self.cached = calls, large, out, cached
            self.thread = threading.Thread(target=map_worker.serve, args=(stdin, out), daemon=True)

        def ask(self, key: str, codes_file: Path) -> None:
            job = {"codes": str(codes_file), "cache_dir": "x", "key": key, "params": {}, "grid_resolution": None,
                   "checkpoint": None, "split": None}  # fmt: skip
            to_worker.write(json.dumps(job) + "\n")
            to_worker.flush()

        def close(self) -> list[dict]:
            to_worker.close()
            self.thread.join(timeout=30)
            assert not self.thread.is_alive()
            return [json.loads(line) for line in out.getvalue().splitlines()]

    yield Loop()
    stdin.close()


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_map_asked_for_at_once_skips_the_warm_up_and_the_large_compile_waits_for_idleness(loop, tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((6, 2), np.float32))
    loop.ask("first", tmp_path / "c.npy")
    loop.thread.start()
    wait_for(lambda: ("large", umap_runtime.SMALL_MAP) in loop.calls)
    answers = loop.close()
    assert loop.calls == ["import", ("fit", "first"), ("large", umap_runtime.SMALL_MAP)]
    assert answers == [{"progress": 1.0, "message": "done"}, {"done": True}]
    assert loop.large.killed  # ended with the worker


def test_an_idle_worker_warms_up_then_compiles_the_large_path_then_fits_maps(loop, tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((6, 2), np.float32))
    loop.thread.start()
    wait_for(lambda: ("large", umap_runtime.SMALL_MAP) in loop.calls)
    loop.ask("bad", tmp_path / "c.npy")
    loop.ask("good", tmp_path / "c.npy")
    answers = loop.close()
    assert loop.calls == ["import", ("warm", umap_runtime.FIRST_WARM_UP), ("large", umap_runtime.SMALL_MAP),
                          ("fit", "bad"), ("fit", "good")]  # fmt: skip
    assert answers == [{"error": "Codes hold NaN."}, {"progress": 1.0, "message": "done"}, {"done": True}]


def test_an_idle_worker_starts_no_compile_where_a_child_already_left_the_large_path_in_the_cache(loop, tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((6, 2), np.float32))
    loop.cached["large"] = True
    loop.thread.start()
    wait_for(lambda: ("warm", umap_runtime.FIRST_WARM_UP) in loop.calls)
    time.sleep(1.0)  # idle for more than IDLE_BEFORE_LARGE (0.3 s here)
    loop.ask("good", tmp_path / "c.npy")
    answers = loop.close()
    assert loop.calls == ["import", ("warm", umap_runtime.FIRST_WARM_UP), ("fit", "good")]
    assert answers == [{"progress": 1.0, "message": "done"}, {"done": True}]


def test_only_a_childs_warm_up_of_the_large_path_marks_it_compiled_in_the_cache(tmp_path, monkeypatch):
    """The mark is left by a warm-up for the disk cache of at least SMALL_MAP codes (the child's), in the numba cache
    folder in use, and is named for the versions: another cache folder has no mark."""
    from vae.projection import estimator

    class Fit:  # umap itself is not what is checked here: a fit that does nothing
        def __init__(self, **kwargs) -> None:
            pass

        def fit(self, codes, progress=None):
            return self

        def fit_inverse_grid(self, resolution):
            return self

    monkeypatch.setattr(estimator, "LatentProjector", Fit)
    monkeypatch.setattr(umap_runtime, "import_umap", lambda: None)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    for points, for_disk in ((umap_runtime.FIRST_WARM_UP, True), (umap_runtime.SMALL_MAP, False)):
        umap_runtime.warm_up(points=points, for_disk=for_disk)
        assert not umap_runtime.large_path_cached(), (points, for_disk)
    umap_runtime.warm_up(points=umap_runtime.SMALL_MAP, for_disk=True)
    assert umap_runtime.large_path_cached()
    (mark,) = (tmp_path / "cache").iterdir()
    assert "umap-learn-" in mark.name and "numba-" in mark.name
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "other"))
    (tmp_path / "other").mkdir()
    assert not umap_runtime.large_path_cached()


# ---------------------------------------------------------------- the server's side (ui.cache)


class FakeWorker:
    def __init__(self, gone: bool = False) -> None:
        self.gone, self.started, self.fits = gone, 0, []

    def start(self):
        self.started += 1
        if self.gone:
            raise WorkerGone("no")

    def fit(self, *args):
        self.fits.append(args[1])
        if self.gone:
            raise WorkerGone("no")


@pytest.mark.parametrize("setting", ["1", "0"])
def test_the_server_starts_its_worker_when_it_starts_unless_told_not_to(monkeypatch, setting):
    from ui import cache

    fake = FakeWorker()
    monkeypatch.setattr(cache, "map_worker", lambda: fake)
    monkeypatch.setenv("LATENT_EXPLORER_WARM_UMAP", setting)
    cache.start_umap_warm_up()
    assert fake.started == (1 if setting == "1" else 0)
    monkeypatch.setattr(cache, "map_worker", lambda: FakeWorker(gone=True))
    cache.start_umap_warm_up()  # a worker that cannot start is no error here: the first map tries again


def test_a_map_is_fitted_in_the_server_when_no_worker_can_start(tmp_path, codes):
    from ui import cache

    gone = FakeWorker(gone=True)
    proj = cache._fit(tmp_path, "epoch-1", "test", "pca-k", codes, "pca", worker=gone)
    assert gone.fits == ["pca-k"] and isinstance(proj, LatentProjector) and proj.method == "pca"
    assert (tmp_path / "projections" / "pca-k.npz").is_file()


def test_a_ctrl_c_wrapped_by_python_during_an_import_counts_as_ctrl_c():
    """Ctrl+C landing while a class is created (numba's, as umap imports) reaches the worker as a RuntimeError
    caused by the KeyboardInterrupt: still a Ctrl+C, ended quietly; any other error is not."""
    from vae.projection.worker import interrupted

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise RuntimeError("Error calling __set_name__ on 'cached_property' instance") from e
    except RuntimeError as wrapped:
        assert interrupted(wrapped)
    assert not interrupted(RuntimeError("a real failure"))
    assert not interrupted(ValueError("bad codes"))


def test_a_map_started_from_an_earlier_layout_reaches_the_fit_with_it(loop, tmp_path):
    """Explore following a training asks for a map started from the one shown: codes and start in one .npz."""
    np.savez(tmp_path / "j.npz", codes=np.zeros((6, 2), np.float32), start=np.arange(12.0).reshape(6, 2))
    loop.ask("followed", tmp_path / "j.npz")
    loop.thread.start()
    wait_for(lambda: any(c[:2] == ("fit", "followed") for c in loop.calls if isinstance(c, tuple)))
    loop.close()
    assert ("fit", "followed", np.arange(12.0).reshape(6, 2).tolist()) in loop.calls
