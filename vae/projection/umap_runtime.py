"""umap at run time: numba's on-disk cache, importing umap once, quieting it, and warming it up.

umap is imported lazily (it costs seconds), after ``configure_numba_cache`` has pointed numba's
on-disk cache at a persistent folder; this module itself imports only the standard library and numpy.

FENCE: ``import_umap`` replaces pieces of umap-learn's internals (two graph kernels compiled serially, the
inverse transform's graph walk and layout), and ``lazy_signatures`` patches numba's ``jit``; each falls back to
the library's own code where an internal moved. They were verified against ``VERIFIED_WITH`` (also written in
requirements.txt). ``plain_umap()`` runs a block with umap's own code; tests/lib/test_projection.py fits a
map with its inverse grid both ways and compares them bit for bit, and checks every patch is installed, so an
upgrade that moves an internal fails the suite instead of silently losing the speed (or changing a map).
"""

from __future__ import annotations

import collections
import contextlib
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from ..progress import Progress, part, report
from .lazy_signatures import deferred_signatures

DEFAULT_NUMBA_CACHE = Path("~/.cache/latent-explorer/numba")
VERIFIED_WITH = {"umap-learn": "0.5.12", "pynndescent": "0.7.0", "numba": "0.68.1"}  # the patches' fence


def configure_numba_cache(path: str | Path | None = None) -> Path:
    """Point numba's on-disk cache (``NUMBA_CACHE_DIR``) at a persistent folder and return it.

    An existing ``NUMBA_CACHE_DIR`` is left alone. Otherwise the folder is ``path``, else the
    ``LATENT_EXPLORER_NUMBA_CACHE`` environment variable, else ``~/.cache/latent-explorer/numba``.
    Call it before umap is imported (``import_umap`` does); if numba is already imported its
    configuration is reloaded so functions compiled from now on are cached there.
    """
    current = os.environ.get("NUMBA_CACHE_DIR")
    if current:
        return Path(current)
    chosen = path or os.environ.get("LATENT_EXPLORER_NUMBA_CACHE") or DEFAULT_NUMBA_CACHE
    folder = Path(chosen).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    if "numba" in sys.modules:
        from numba.core import config

        config.reload_config()
    return folder


_UMAP_READY = False
_UMAP_LOCK = threading.Lock()


def import_umap():
    """Import umap once, with numba's disk cache configured and extended to umap's own kernels."""
    global _UMAP_READY
    with _UMAP_LOCK:  # warm_up may run in a background thread while a page fits
        if not _UMAP_READY:
            configure_numba_cache()
            with warnings.catch_warnings(), deferred_signatures():  # pynndescent compiles at first use, not here
                warnings.simplefilter("ignore", ImportWarning)  # "Tensorflow not installed; ParametricUMAP ..."
                import pynndescent
                import umap

            _compile_serially(sys.modules["umap.umap_"])
            _enable_disk_cache(umap, pynndescent)
            _speed_up_inverse(sys.modules["umap.umap_"])
            _UMAP_READY = True
    import umap

    return umap


def _enable_disk_cache(*packages) -> int:
    """Turn on numba's disk cache for the jitted functions of ``packages`` that were compiled without it.

    umap-learn decorates almost none of its kernels with ``cache=True``, so every new process compiles
    them again; caching them cut the first 10k fit of a new process from ~28-34 s to ~15-17 s here,
    with bit-identical embeddings. What remains is mostly pynndescent's ``nn_descent``, which numba
    refuses to cache ("uses dynamic globals"). Best effort: numba internals that differ are skipped.
    """
    try:
        from numba.core.caching import NullCache
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover - numba internals moved
        return 0
    enabled = 0
    for package in packages:
        prefix = package.__name__ + "."
        for name, module in list(sys.modules.items()):
            if not name.startswith(prefix) or module is None:
                continue
            for obj in list(vars(module).values()):
                if isinstance(obj, Dispatcher) and obj.__module__ == name and isinstance(obj._cache, NullCache):
                    with contextlib.suppress(Exception):
                        cache_dispatcher(obj)
                        enabled += 1
    return enabled


SERIAL_KERNELS = ("smooth_knn_dist", "compute_membership_strengths")  # umap's parallel=True graph kernels


def _compile_serially(umap_module) -> None:
    """Compile umap's two ``parallel=True`` graph kernels (each point's kernel width, then its edge weights)
    as plain loops: numba's parallel lowering took 4-5 s of a new machine's ~9 s small-map compile, for loops
    that run milliseconds on maps of this app's size. The rows are independent, so the answers do not change
    (a test fits real data both ways and compares the embeddings bit for bit); nor do they with the thread
    count any more. ``fuzzy_simplicial_set`` and ``transform`` call them as module globals."""
    import numba
    from numba.core.dispatcher import Dispatcher

    keep = ("locals", "fastmath", "boundscheck", "error_model", "nogil")
    for name in SERIAL_KERNELS:
        kernel = getattr(umap_module, name, None)
        if isinstance(kernel, Dispatcher) and kernel.targetoptions.get("parallel"):
            options = {k: v for k, v in kernel.targetoptions.items() if k in keep}
            _UMAP_PARALLEL[name] = kernel
            setattr(umap_module, name, numba.njit(**options)(kernel.py_func))


_UMAP_PARALLEL: dict = {}  # umap's own kernels, by name


def _speed_up_inverse(umap_module) -> None:
    """Give umap's ``inverse_transform`` our ``breadth_first_search`` and ``optimize_layout_inverse`` (the same
    answers, a fraction of the time)."""
    global _UMAP_BFS, _UMAP_INVERSE_LAYOUT, _INVERSE_EPOCH
    if _UMAP_BFS is None and callable(getattr(umap_module, "breadth_first_search", None)):
        _UMAP_BFS = umap_module.breadth_first_search
        umap_module.breadth_first_search = breadth_first_search
    layouts = sys.modules.get("umap.layouts")
    epoch = getattr(layouts, "_optimize_layout_inverse_single_epoch", None)
    if _UMAP_INVERSE_LAYOUT is None and callable(getattr(umap_module, "optimize_layout_inverse", None)) and epoch:
        import numba

        _UMAP_INVERSE_LAYOUT = umap_module.optimize_layout_inverse
        # As umap jits it, once per process instead of once per call. Not cached on disk: its signature holds the
        # distance function's dispatcher, whose type differs in every process (numba would add a file each time).
        _INVERSE_EPOCH = numba.njit(epoch, fastmath=True)
        umap_module.optimize_layout_inverse = optimize_layout_inverse


_UMAP_BFS = _UMAP_INVERSE_LAYOUT = _INVERSE_EPOCH = None  # umap's own two; the one epoch function


def patches_installed() -> dict[str, bool]:
    """Which of this module's replacements of umap's internals are in place (after ``import_umap``)."""
    umap_module = sys.modules.get("umap.umap_")
    out = {name: name in _UMAP_PARALLEL and getattr(umap_module, name, None) is not _UMAP_PARALLEL[name]
           for name in SERIAL_KERNELS}  # fmt: skip
    out["breadth_first_search"] = getattr(umap_module, "breadth_first_search", None) is breadth_first_search
    out["optimize_layout_inverse"] = getattr(umap_module, "optimize_layout_inverse", None) is optimize_layout_inverse
    return out


@contextlib.contextmanager
def plain_umap():
    """Within the block, umap uses its own kernels, graph walk and inverse layout (for comparisons)."""
    umap_module = import_umap().umap_
    mine = {name: getattr(umap_module, name) for name in (*_UMAP_PARALLEL, "breadth_first_search",
                                                           "optimize_layout_inverse")}  # fmt: skip
    theirs = {**_UMAP_PARALLEL, "breadth_first_search": _UMAP_BFS, "optimize_layout_inverse": _UMAP_INVERSE_LAYOUT}
    try:
        for name, original in theirs.items():
            if original is not None:
                setattr(umap_module, name, original)
        yield
    finally:
        for name, patched in mine.items():
            setattr(umap_module, name, patched)


_WARMING_FOR_DISK = threading.local()  # .on: this thread's warm-up compiles for another process (``for_disk``)


def optimize_layout_inverse(head_embedding, tail_embedding, head, tail, weight, sigmas, rhos, n_epochs, n_vertices,
                            epochs_per_sample, a, b, rng_state, gamma=1.0, initial_alpha=1.0,
                            negative_sample_rate=5.0, output_metric=None, output_metric_kwds=(), verbose=False,
                            tqdm_kwds=None, move_other=False):  # fmt: skip
    """umap-learn's ``optimize_layout_inverse`` (the SGD that places inverse-transformed codes) with its epoch
    function jitted once per process: umap's wraps it in a new ``numba.njit`` on every call, which compiled
    again for 0.5-0.9 s of every map's inverse grid, holding the GIL. Same arguments, same steps, same result
    (``a``, ``b``, ``verbose`` and ``tqdm_kwds`` are unused, as in umap's)."""
    if output_metric is None:
        output_metric = sys.modules["umap.distances"].euclidean
    dim = head_embedding.shape[1]
    alpha = initial_alpha
    epochs_per_negative_sample = epochs_per_sample / negative_sample_rate
    epoch_of_next_negative_sample = epochs_per_negative_sample.copy()
    epoch_of_next_sample = epochs_per_sample.copy()
    for n in range(0 if getattr(_WARMING_FOR_DISK, "on", False) else n_epochs):
        _INVERSE_EPOCH(epochs_per_sample, epoch_of_next_sample, head, tail, head_embedding, tail_embedding,
                       output_metric, output_metric_kwds, weight, sigmas, dim, alpha, move_other, n,
                       epoch_of_next_negative_sample, epochs_per_negative_sample, rng_state, n_vertices, rhos,
                       gamma)  # fmt: skip
        alpha = initial_alpha * (1.0 - (float(n) / float(n_epochs)))
    return head_embedding


def breadth_first_search(adjmat, start, min_vertices: int) -> np.ndarray:
    """umap-learn's ``breadth_first_search`` (each inverse-transformed point's neighbourhood on the map): the
    same vertices in the same order, reading the CSR matrix's arrays where umap's slices a row per visited
    vertex (a new sparse matrix each time: 78 % of a 48x48 inverse grid's time) and checks a list."""
    if getattr(adjmat, "format", None) != "csr":  # installed by import_umap, so umap's own is there
        return _UMAP_BFS(adjmat, start, min_vertices)
    indptr, indices = adjmat.indptr, adjmat.indices
    explored, queue = [], collections.deque([start])
    levels = {start: 0}  # also the visited set
    max_level = np.inf
    while queue:
        node = queue.popleft()
        explored.append(node)
        if max_level == np.inf and len(explored) > min_vertices:
            max_level = max(levels.values())
        if levels[node] + 1 < max_level:
            for neighbour in indices[indptr[node] : indptr[node + 1]]:
                if neighbour not in levels:
                    queue.append(neighbour)
                    levels[neighbour] = levels[node] + 1
    return np.array(explored)


def cache_dispatcher(dispatcher) -> None:
    """Turn on numba's disk cache for one jitted function, best effort: a save or load that fails leaves
    the function compiled in memory (a cache numba was not asked for must never fail a fit).

    Saving pickles the compiled function's type information; for a function umap did not write for caching,
    that pickle can meet a dead weak reference ("underlying object has vanished") now and then.
    """
    dispatcher.enable_caching()
    cache = dispatcher._cache
    save, load = cache.save_overload, cache.load_overload

    def save_overload(sig, data):
        with contextlib.suppress(Exception):
            save(sig, data)

    def load_overload(sig, target_context):
        try:
            return load(sig, target_context)
        except Exception:
            return None  # compiled afresh

    cache.save_overload, cache.load_overload = save_overload, load_overload


def exact_neighbours(Z: np.ndarray, k: int, metric: str) -> tuple:
    """umap's ``precomputed_knn`` for a small map (under SMALL_MAP codes): each code's ``k`` nearest codes,
    itself first at distance 0, by scikit-learn's brute force, and a search index for umap's ``transform``.

    Below 4,096 codes umap computes all distances itself through a Python-level loop over pairs: a warm fit of
    4,000 codes took 21.8 s that way and 3.9 s with these neighbours (trustworthiness 0.992 and 0.991); on a
    fresh machine it also skips compiling umap's exact-neighbour kernel. Returns (indices int32 (N, k),
    distances float32 (N, k), index).
    """
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(Z, dtype=np.float64)
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric).fit(X)
    dist, idx = nn.kneighbors(X)  # (N, k) each
    dist[idx == np.arange(len(idx))[:, None]] = 0.0  # a code's distance to itself, exactly (umap reads it)
    return idx.astype(np.int32), dist.astype(np.float32), _ExactIndex(nn)


class _ExactIndex:
    """What umap's ``transform`` asks of a neighbour search index (pynndescent's ``query``), answered exactly."""

    _angular_trees = False

    def __init__(self, nn) -> None:
        self.nn = nn

    def query(self, X: np.ndarray, k: int, epsilon: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        dist, idx = self.nn.kneighbors(np.asarray(X, dtype=np.float64), n_neighbors=k)
        return idx.astype(np.int32), dist.astype(np.float32)


BACKGROUND_NICE = 10
AUTOGROUP = Path("/proc/self/autogroup")


def background_process(nice: int = BACKGROUND_NICE) -> None:
    """Lower a child process's CPU priority, before it runs (``Popen(preexec_fn=..., start_new_session=True)``).

    Where Linux groups processes by session for scheduling (autogroup, the default on most desktops), a nice value
    counts only against processes of the same session: the training (a session of its own) and the browser would
    share the cores evenly with the server's session, the map worker's UMAP fits included, whatever its nice. So the
    child, in a session of its own, also gives its session's group the lowest priority; elsewhere the nice value
    does it alone."""
    with contextlib.suppress(OSError):
        os.nice(nice)
    with contextlib.suppress(OSError):  # no autogroup here (not Linux, or switched off): nothing more to do
        AUTOGROUP.write_text("19")


def background_thread() -> None:
    """Lower the calling thread's CPU priority, for UMAP work beside a training (a thread pool's initializer).

    Linux schedules threads one by one, so only this thread (and threads it starts later) yields to the
    training; elsewhere this does nothing. umap with a ``random_state`` (the default) runs on one thread.
    """
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


@contextlib.contextmanager
def quiet_umap():
    """Silence umap's user warnings and numba's "cannot cache nn_descent" notes (expected; harmless)."""
    from numba.core.errors import NumbaWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", NumbaWarning)
        yield


def child_env() -> dict[str, str]:
    """The environment of a child process doing UMAP work: one thread, numba's disk cache, this project importable."""
    return {**os.environ, "NUMBA_CACHE_DIR": str(configure_numba_cache()), "OMP_NUM_THREADS": "1",
            "NUMBA_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # fmt: skip


def warm_up_elsewhere(points: int) -> subprocess.Popen | None:
    """Start ``warm_up(points=...)`` in a child process at the lowest priority, compiling into numba's disk cache;
    returns the child (None if it could not start). The map worker (``vae.projection.worker``) starts one for
    the large-map path after its own warm-up, so that its first large map loads that code instead of compiling it.
    """
    code = f"from vae.projection.umap_runtime import warm_up; warm_up(points={int(points)}, for_disk=True)"
    try:
        return subprocess.Popen([sys.executable, "-c", code], env=child_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=lambda: background_process(19))  # fmt: skip
    except OSError:
        return None


def _large_path_marker() -> Path:
    """The file a warm-up child leaves in numba's disk cache once it has compiled the large-map path there, named for
    Python's and the compiled packages' versions (after an upgrade the path is compiled afresh)."""
    from importlib.metadata import version

    names = [f"py{sys.version_info.major}.{sys.version_info.minor}", *(f"{p}-{version(p)}" for p in VERIFIED_WITH)]
    return configure_numba_cache() / f"large-path-{'_'.join(names)}.done"


def large_path_cached() -> bool:
    """Whether numba's disk cache already holds the large-map path, compiled by a warm-up child for these versions.
    Another child would then load that code, compile again only what numba cannot keep (pynndescent's
    ``nn_descent``: 17 s of CPU on a 2-core Xeon) and throw it away. (A cache numba itself invalidates, a package
    reinstalled in place, costs the first large map that compile, once.)"""
    try:
        return _large_path_marker().is_file()
    except Exception:  # noqa: BLE001 - a package without metadata, a folder that cannot be made: not known, so no
        return False


SMALL_MAP = 4096  # below this many codes umap finds exact neighbours; from it on, approximate ones (pynndescent)
FIRST_WARM_UP = 600  # synthetic codes of the map worker's warm-up: the small path (vae.projection.worker)


def warm_up(progress: Progress | None = None, points: int = SMALL_MAP, for_disk: bool = False) -> float:
    """Compile umap's numba code once per process (default parameters); returns the seconds taken.

    Fits ``points`` synthetic 16-d codes and inverts a small grid: what a map needs (the app places new codes
    by their nearest fitted codes, never with umap's own transform, which compiles ~4 s more). umap takes another
    path below ``SMALL_MAP`` codes (exact neighbours) than from it on (pynndescent): warm the one the next map
    needs (the map worker warms the small path first: first maps are small, and that takes a third of the
    time). With an empty numba cache here: import ~2 s (pynndescent's declared signatures compile at their
    first use: ``lazy_signatures``), small path ~6 s (``_compile_serially``), large path ~40 s more; with a
    warm one, a few seconds (pynndescent's ``nn_descent`` is compiled again in every process). It compiles
    the seeded, single-threaded code the default ``random_state=0`` uses. ``for_disk`` (a child compiling
    for another process): skip the inverse layout's epochs, which numba cannot keep on disk (about 1 s).
    """
    from .estimator import LatentProjector  # here, not at the top: the estimator imports this module

    start = time.perf_counter()
    report(progress, 0.0, "importing umap")
    import_umap()
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(8, 16))
    Z = (centres[rng.integers(0, 8, points)] + rng.normal(size=(points, 16))).astype(np.float32)  # (points, 16)
    proj = LatentProjector(method="umap", n_epochs=20).fit(Z, progress=part(progress, 0.1, 0.8))
    report(progress, 0.8, "compiling UMAP's inverse")
    _WARMING_FOR_DISK.on = for_disk  # the rest of the inverse still compiles, into the disk cache
    try:
        proj.fit_inverse_grid(resolution=4)
    finally:
        _WARMING_FOR_DISK.on = False
    if for_disk and points >= SMALL_MAP:
        with contextlib.suppress(Exception):  # no marker: the next idle worker compiles the path again, no worse
            _large_path_marker().touch()
    seconds = time.perf_counter() - start
    report(progress, 1.0, f"UMAP ready ({seconds:.0f} s)")
    return seconds
