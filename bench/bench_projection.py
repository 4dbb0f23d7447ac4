"""Projection: UMAP fit cold and warm, transform, inverse maps and trustworthiness, against PCA.

    python -m bench projection [--quick]

The codes are real: posterior means of the default MLP VAE (784-400-20, trained 3 epochs with
``vae.train``) for the 60,000 training and 10,000 test images of Fashion-MNIST. Every measured setup
is a fresh Python process running ``vae.projection.LatentProjector`` as the app does (seeded UMAP,
default parameters; numba's disk cache extended to umap's kernels). "cold" starts from an empty
``NUMBA_CACHE_DIR`` (a first install); "cached" is a new process reusing the cache the cold one filled
(a server restart); "warm" is a second fit in the same process (a running server). Peak memory is
the process's ``VmHWM`` (its ``ru_maxrss`` would include the parent's peak). umap's own
``inverse_transform`` re-triangulates the whole map on every call, so it is measured on the smaller
map only. Asserts nothing.
"""

from __future__ import annotations

import os
import resource
import tempfile
from dataclasses import dataclass

import numpy as np

from bench import common

TITLE = "## Projection: UMAP vs PCA (fit, transform, inverse, memory, trustworthiness)"


@dataclass(frozen=True)
class Settings:
    """What the section runs; ``QUICK`` and the smoke test use smaller ones."""

    sizes: tuple[int, ...] = (10_000, 70_000)  # the first also gets transform and the inverses; 1 or 2 sizes
    cold: bool = True  # False: the persistent numba cache, no "cold" or "cached" distinction
    n_transform: int = 1_000
    trust_n: int = 5_000
    grid: int = 48  # ui/cache.py INVERSE_GRID, the grid the app saves with each map
    clicks: int = 2_000
    codes_n_train: int | None = None  # training images for the codes' model (None: 60,000)
    codes_epochs: int = 3


FULL = Settings()
QUICK = Settings(sizes=(2_000, 5_000), cold=False, trust_n=1_000, grid=16, clicks=200, codes_n_train=10_000)


# ----------------------------------------------------------------------------- the child process


def _status_mb(field: str) -> float | None:
    """A memory figure of this process from ``/proc/self/status`` (Linux), in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rss_mb() -> float:
    """Resident memory now."""
    now = _status_mb("VmRSS")
    return now if now is not None else _peak_mb()


def _peak_mb() -> float:
    """Peak resident memory of this process.

    ``VmHWM`` where available: Linux's ``ru_maxrss`` carries the parent's peak over fork and exec, so in a
    child of run_all.py (which holds torch and the dataset, ~2.5 GB) it would report the parent's size.
    """
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _median_us(f, points: np.ndarray) -> float:
    """Median microseconds of ``f(point)`` over ``points`` (one call each), after an uncounted first call."""
    f(points[0])  # builds the k-d tree once
    return common.median([common.timed(lambda p=p: f(p))[0] for p in points]) * 1e6


def with_umaps_own_inverse(f):
    """``f()`` with umap-learn's own graph search and inverse layout in its inverse transform (ours' baseline)."""
    import umap.umap_ as umap_module

    from vae.projection import umap_runtime

    umap_module.breadth_first_search = umap_runtime._UMAP_BFS
    umap_module.optimize_layout_inverse = umap_runtime._UMAP_INVERSE_LAYOUT
    try:
        return f()
    finally:
        umap_module.breadth_first_search = umap_runtime.breadth_first_search
        umap_module.optimize_layout_inverse = umap_runtime.optimize_layout_inverse


def child(spec: dict) -> dict:
    """Run the measurements ``spec`` asks for in this (fresh) process; returns numbers."""
    from vae import projection
    from vae.projection import LatentProjector

    timed = common.timed
    Z = np.load(spec["codes"])  # (N, latent_dim): training codes, then test codes
    n = spec["n"]
    X, new = Z[:n], Z[-spec["n_transform"] :]  # the new points are test codes (not fitted when n < N - 1000)
    out = {"n": n}
    out["import_s"], _ = timed(projection.import_umap)
    out["rss_import_mb"] = _rss_mb()
    out["fit_s"], proj = timed(lambda: LatentProjector(method="umap", random_state=0).fit(X))
    out["rss_fit_mb"] = _rss_mb()
    if spec.get("transform"):
        out["transform_first_s"], _ = timed(lambda: proj.transform(new))
        out["transform_s"], _ = timed(lambda: proj.transform(new))
    if spec.get("warm_fit"):
        out["fit_warm_s"], proj = timed(lambda: LatentProjector(method="umap", random_state=0).fit(X))
    out["rss_peak_mb"] = _peak_mb()  # UMAP only: PCA, lookups and trustworthiness come after
    points = proj.embedding_[np.random.default_rng(1).integers(0, n, spec["clicks"])] + 0.05  # (clicks, 2)
    if spec.get("inverse"):
        out["umap_inverse_first_s"], _ = timed(lambda: proj.inverse_transform(points[1:2]))  # any JIT included
        out["umap_inverse_1_s"], _ = timed(lambda: proj.inverse_transform(points[:1]))
        out["umap_inverse_100_s"], _ = timed(lambda: proj.inverse_transform(points[:100]))
        out["grid_build_s"], _ = timed(lambda: proj.fit_inverse_grid(spec["grid"]))
        grid = lambda: proj.fit_inverse_grid(spec["grid"])  # noqa: E731
        out["grid_build_umap_own_s"], _ = timed(lambda: with_umaps_own_inverse(grid))
        out["lookup_grid_us"] = _median_us(lambda p: proj.inverse_lookup(p, method="grid"), points)
    out["lookup_knn_us"] = _median_us(lambda p: proj.inverse_lookup(p, method="knn"), points)
    fits = [timed(lambda: LatentProjector(method="pca").fit(X)) for _ in range(5)]
    out["pca_fit_s"], pca = common.median([dt for dt, _ in fits]), fits[-1][1]
    out["pca_transform_s"], _ = timed(lambda: pca.transform(new))
    out["pca_inverse_us"] = _median_us(lambda p: pca.inverse_transform(p[None, :]), points)
    if spec.get("trust_n"):
        from sklearn.manifold import trustworthiness

        sub = np.sort(np.random.default_rng(0).choice(n, min(spec["trust_n"], n), replace=False))
        for name, emb in (("umap", proj.embedding_), ("pca", pca.embedding_)):
            out[f"trust_{name}"] = float(trustworthiness(X[sub], emb[sub], n_neighbors=10))
        out["trust_n"] = len(sub)
    return out


# ----------------------------------------------------------------------------- the parent


def _spawn(spec: dict, cache_dir: str | None) -> dict:
    """Run ``child(spec)`` in a fresh interpreter; ``cache_dir`` becomes its NUMBA_CACHE_DIR."""
    return common.spawn_child(__file__, spec, **({"NUMBA_CACHE_DIR": cache_dir} if cache_dir else {}))


def run(quick: bool = False, settings: Settings | None = None) -> str:
    """The projection section as markdown."""
    s = settings or (QUICK if quick else FULL)
    if not common.fashion_available():
        return common.no_fashion(TITLE)
    small, large = s.sizes[0], s.sizes[-1]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-projection-") as tmp:
        common.log("projection: training the model that gives the latent codes")
        codes = str(common.save_codes(tmp, s.codes_n_train, s.codes_epochs))
        n_codes = len(np.load(codes, mmap_mode="r"))
        base = {"codes": codes, "n_transform": s.n_transform, "grid": s.grid, "clicks": s.clicks}
        small_spec = {**base, "n": small, "transform": True, "warm_fit": True, "inverse": True, "trust_n": s.trust_n}
        large_spec = {**base, "n": min(large, n_codes), "warm_fit": True, "trust_n": s.trust_n}
        first = "cold" if s.cold else "cached"
        plan = [(first, small_spec, "a")] + ([(first, large_spec, "b")] if len(s.sizes) > 1 else [])
        if s.cold:
            plan.insert(1, ("cached (restart)", {**base, "n": small, "transform": True}, "a"))
        for label, spec, cache in plan:
            common.log(f"projection: {label} process, UMAP on {spec['n']:,} codes")
            cache_dir = None
            if s.cold:
                cache_dir = os.path.join(tmp, f"numba-{cache}")
                os.makedirs(cache_dir, exist_ok=True)
            results.append((label, _spawn(spec, cache_dir)))
    return _markdown(s, results, n_codes)


def _markdown(s: Settings, results: list, n_codes: int) -> str:
    f = common.fmt

    def d(seconds: float | None) -> str:
        return "—" if seconds is None else common.duration(seconds)  # —: not measured in this process

    fit_rows = []
    for label, r in results:
        fit_rows.append(
            [
                f"UMAP, {label}, {r['n']:,} codes",
                d(r["import_s"]),
                d(r["fit_s"]),
                d(r["import_s"] + r["fit_s"]),
                d(r.get("fit_warm_s")),
                d(r.get("transform_first_s")),
                d(r.get("transform_s")),
                f"{f(r['rss_import_mb'], 0)} / {f(r['rss_fit_mb'], 0)} / {f(r['rss_peak_mb'], 0)}",
                d(r["process_s"]),
            ]
        )
    for label, r in results:
        if "pca_fit_s" in r and not label.startswith("cached (restart)"):
            row = [f"PCA, same process, {r['n']:,} codes", "—", d(r["pca_fit_s"]), "—", d(r["pca_fit_s"])]
            fit_rows.append(row + ["—", d(r["pca_transform_s"]), "—", "—"])
    fit_headers = [
        "setup",
        "import umap",
        "first fit",
        "to first map",
        "warm fit (same process)",
        f"first transform of {s.n_transform:,}",
        f"warm transform of {s.n_transform:,}",
        "memory MB: after import / after first fit / peak (VmHWM)",
        "whole process",
    ]
    small = next(r for _, r in results if "umap_inverse_1_s" in r)
    inv_rows = [
        ["umap-learn `inverse_transform`, 1 point, first call in the process", d(small["umap_inverse_first_s"])],
        ["umap-learn `inverse_transform`, 1 point", d(small["umap_inverse_1_s"])],
        ["umap-learn `inverse_transform`, 100 points (one call)", d(small["umap_inverse_100_s"])],
        [f"our inverse grid: build {s.grid}×{s.grid} once (one umap call)", d(small["grid_build_s"])],
        ["the same grid, umap's own graph search and inverse layout (baseline)", d(small["grid_build_umap_own_s"])],
        ["our grid lookup, per click (bilinear)", d(small["lookup_grid_us"] * 1e-6)],
        ["our k-NN lookup, per click (mean code of the 10 nearest map points)", d(small["lookup_knn_us"] * 1e-6)],
        ["PCA exact inverse, per click", d(small["pca_inverse_us"] * 1e-6)],
    ]
    trust_rows = [
        [f"{r['n']:,}", f"{r['trust_n']:,}", f(r["trust_umap"], 3), f(r["trust_pca"], 3)]
        for _, r in results
        if "trust_umap" in r
    ]
    cache_note = (
        "cold = empty `NUMBA_CACHE_DIR` (import and JIT compilation included); cached (restart) = a new process "
        f"reusing the cache the cold {results[0][1]['n']:,}-code process filled"
        if s.cold
        else "quick mode: every process uses the persistent numba cache (no cold start measured)"
    )
    return "\n".join(
        [
            TITLE,
            "",
            f"{n_codes:,} latent means (20-d) of the default MLP VAE after {common.plural(s.codes_epochs, 'epoch')}; "
            f"UMAP fits the "
            f"first n (training images), transform places {s.n_transform:,} test-image codes. Each row is a fresh "
            f"process; {cache_note}; warm = a second fit in the same process. 2 cores, seeded UMAP "
            f"(single-threaded, as the app runs it). Memory is the child's own (`/proc/self/status` VmRSS, VmHWM; "
            f"`ru_maxrss` would carry the parent's peak over fork and exec).",
            "",
            common.table(fit_headers, fit_rows),
            "",
            f"Inverse map (map position → latent code) on the {small['n']:,}-point map only (umap-learn's inverse "
            f"re-triangulates the whole map per call: ≈ 16 s at 60k per FIELD-NOTES, too slow to run here):",
            "",
            common.table(["operation", "time"], inv_rows),
            "",
            "Trustworthiness (scikit-learn, n_neighbors = 10; 1 is perfect) of the 2-D maps, on a random subsample "
            "of the fitted codes:",
            "",
            common.table(["codes fitted", "subsample", "UMAP", "PCA"], trust_rows),
            "",
            "Baselines: PCA in the same process (fit time, transform, inverse, trustworthiness); umap-learn's own "
            "`inverse_transform` for our per-click lookups; the first fit of each process for its warm fit"
            + ("; the cold process for the cached (restart) row." if s.cold else "."),
            "",
            "Reproduce alone: `python -m bench projection`",
            "",
        ]
    )


if __name__ == "__main__":
    common.main(run, __doc__, child)
