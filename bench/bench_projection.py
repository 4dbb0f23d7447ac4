"""Benchmark vae.projection: UMAP cold vs warm start (numba disk cache), the inverse grid, per-click lookups.

    python bench/bench_projection.py [--n 10000] [--runs cold,warm,warm]

Each run is a fresh Python process. "cold" starts from an empty numba cache folder, "warm" reuses the
folder the previous run filled. The baseline rows repeat this with only the caching umap-learn and
pynndescent do themselves (no ``_enable_disk_cache``). Codes: PCA-20 of Fashion-MNIST training images
(Debian's dataset-fashion-mnist), else a 20-d Gaussian mixture. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def load_codes(n: int) -> np.ndarray:
    """(n + 1000, 20) float32 stand-in latent codes; the last 1000 are held out for transform."""
    rng = np.random.default_rng(0)
    if FASHION.is_file():
        with gzip.open(FASHION) as f:
            X = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[: n + 1000] / 255.0
        X = X - X.mean(axis=0)
        _, _, vt = np.linalg.svd(X[:5000], full_matrices=False)
        return (X @ vt[:20].T).astype(np.float32)
    centres = rng.normal(scale=4.0, size=(10, 20))
    return (centres[rng.integers(0, 10, n + 1000)] + rng.normal(size=(n + 1000, 20))).astype(np.float32)


def child(n: int, extra_cache: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    Z = load_codes(n)
    from vae import projection

    if not extra_cache:
        projection._enable_disk_cache = lambda *packages: 0
    out = {}
    t = time.perf_counter()
    projection._import_umap()
    out["import_s"] = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    proj = projection.LatentProjector(method="umap", random_state=0).fit(Z[:n])
    out["first_fit_s"] = time.perf_counter() - t
    out["first_fit_cpu_s"] = time.process_time() - cpu  # differs from wall time when the machine is busy
    t = time.perf_counter()
    proj.transform(Z[n:])
    out["first_transform_1k_s"] = time.perf_counter() - t
    t = time.perf_counter()
    proj.fit_inverse_grid(32)
    out["grid32_s"] = time.perf_counter() - t
    t = time.perf_counter()
    proj.inverse_transform(proj.embedding_[:1] + 0.01)
    out["umap_inverse_1pt_s"] = time.perf_counter() - t
    points = proj.embedding_[np.random.default_rng(1).integers(0, n, 2000)] + 0.05
    for method in ("grid", "knn"):
        proj.inverse_lookup(points[0], method=method)  # builds the k-d tree once
        times = []
        for p in points:
            t = time.perf_counter()
            proj.inverse_lookup(p, method=method)
            times.append(time.perf_counter() - t)
        out[f"lookup_{method}_us"] = statistics.median(times) * 1e6
    return out


def run(n: int, cache: Path, extra_cache: bool) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    cmd = [sys.executable, __file__, "--child", "--n", str(n)] + ([] if extra_cache else ["--baseline"])
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--runs", default="cold,warm,warm")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.n, extra_cache=not args.baseline)))
        return
    cols = ["import_s", "first_fit_s", "first_fit_cpu_s", "first_transform_1k_s", "grid32_s", "umap_inverse_1pt_s"]
    cols += ["lookup_grid_us", "lookup_knn_us", "process_s"]
    print(f"UMAP on {args.n:,} x 20 codes ({'Fashion-MNIST PCA-20' if FASHION.is_file() else 'synthetic'})")
    print(f"{'setup':<28}" + "".join(f"{c:>22}" for c in cols))
    for extra in (True, False):
        with tempfile.TemporaryDirectory(prefix="numba-bench-") as cache:
            for label in args.runs.split(","):
                r = run(args.n, Path(cache), extra)
                name = f"{label} ({'all kernels cached' if extra else 'umap own caching'})"
                print(f"{name:<28}" + "".join(f"{r[c]:>22.2f}" for c in cols), flush=True)


if __name__ == "__main__":
    main()
