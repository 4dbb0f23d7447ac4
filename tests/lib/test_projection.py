"""Tests for vae.projection on real data: PCA-20 of scikit-learn's digits stands in for VAE codes.

UMAP tests share one fitted projector (module fixture): numba compiles umap's kernels on first use
(tens of seconds with an empty cache, a few with the disk cache). They run everywhere; the slowest
are marked ``slow``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import vae.projection
from vae.projection import (
    FORMAT_VERSION,
    LatentProjector,
    cached_projection,
    find_map,
    map_path,
    projection_key,
    store,
    warm_up,
)
from vae.projection.params import DEFAULTS
from vae.runs import folder as rf

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits():
    """(train codes (1500, 20), train labels, test codes (297, 20), test labels)."""
    X, y = load_digits(return_X_y=True)
    Z = PCA(20, random_state=0).fit_transform(X / 16.0).astype(np.float32)
    perm = np.random.default_rng(0).permutation(len(Z))
    tr, te = perm[:1500], perm[1500:]
    return Z[tr], y[tr], Z[te], y[te]


@pytest.fixture(scope="module")
def umap_proj(digits):
    """One UMAP projector with its inverse grid, shared by the UMAP tests."""
    Z, *_ = digits
    return LatentProjector(method="umap", n_epochs=200, random_state=0).fit(Z).fit_inverse_grid(32)


def one_nn_accuracy(embedding, labels, placed, true_labels) -> float:
    _, nn = cKDTree(embedding).query(placed, k=1)
    return float((labels[nn] == true_labels).mean())


# ----------------------------------------------------------------------------- import hygiene, numba cache


def test_import_is_light_and_configure_numba_cache_respects_env(tmp_path):
    code = (
        "import os, sys\n"
        "import vae.projection as p\n"
        "heavy = [m for m in ('umap', 'numba', 'sklearn', 'streamlit', 'plotly', 'torch') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "path = p.configure_numba_cache()\n"
        "assert os.environ['NUMBA_CACHE_DIR'] == str(path), path\n"
        "print(path)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["LATENT_EXPLORER_NUMBA_CACHE"] = str(tmp_path / "nc")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == (tmp_path / "nc").resolve()
    assert (tmp_path / "nc").is_dir()

    env["NUMBA_CACHE_DIR"] = str(tmp_path / "already")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == tmp_path / "already"


def test_every_public_name_comes_from_its_home_module():
    import importlib

    for name, home in vae.projection._HOMES.items():
        module = importlib.import_module(f"vae.projection.{home}")
        assert getattr(vae.projection, name) is getattr(module, name), name
    assert sorted(vae.projection.__all__) == sorted(vae.projection._HOMES)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vae.projection.nope  # noqa: B018


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("Z", "params", "match"),
    [
        (np.zeros(50), {}, "2-D array"),
        (np.full((50, 4), np.nan), {}, "NaN or infinite"),
        (np.ones((3, 4)), {}, "at least 5 rows"),
        (np.array([["a", "b"]] * 10), {}, "must hold numbers"),
        (np.ones((50, 4)), {"method": "isomap"}, "method must be one of"),
        (np.ones((50, 4)), {"n_components": 1}, "n_components must be an integer from 2 to 3"),
        (np.ones((50, 4)), {"n_components": 2.5}, "n_components must be an integer"),
        (np.ones((50, 4)), {"n_components": True}, "n_components must be an integer"),
        (np.ones((50, 4)), {"n_neighbors": 1}, "n_neighbors must be an integer from 2"),
        (np.ones((50, 4)), {"min_dist": -0.1}, "min_dist must be a number from 0"),
        (np.ones((50, 4)), {"n_epochs": 5}, "n_epochs must be an integer from 10"),
        (np.ones((50, 4)), {"random_state": -1}, "random_state must be an integer"),
        (np.ones((50, 4)), {"perplexity": 0}, "perplexity must be a number from 1"),
        (np.ones((50, 4)), {"metric": "hamming"}, "metric must be one of"),
        (np.ones((10, 4)), {"method": "umap"}, "n_neighbors=15 needs more codes"),
        (np.ones((20, 4)), {"method": "tsne"}, "perplexity=30.0 needs more codes"),
        (np.ones((50, 1)), {"method": "pca"}, "PCA to 2 components needs"),
    ],
)
def test_bad_input_raises_a_sentence(Z, params, match):
    with pytest.raises(ValueError, match=match):
        LatentProjector(**params).fit(Z)


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.transform(np.zeros((2, 4))),
        lambda p: p.inverse_transform(np.zeros((2, 2))),
        lambda p: p.fit_inverse_grid(),
        lambda p: p.inverse_lookup(np.zeros(2)),
        lambda p, tmp="x.npz": p.save(tmp),
    ],
)
def test_unfitted_use_raises(call):
    with pytest.raises(NotFittedError, match="call fit first"):
        call(LatentProjector())
    assert issubclass(NotFittedError, ValueError)


def test_init_stores_arguments_only():
    p = LatentProjector(method="nonsense", n_components=99)
    assert p.get_params()["method"] == "nonsense"
    assert not hasattr(p, "embedding_")


def test_defaults_are_the_constructors():
    assert LatentProjector().get_params() == DEFAULTS


def test_clone_gives_an_unfitted_copy_with_equal_params(digits):
    fitted = LatentProjector(method="pca", n_components=3, metric="cosine").fit(digits[0])
    copy = clone(fitted)
    assert copy is not fitted and copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "embedding_") and not hasattr(copy, "codes_")
    with pytest.raises(NotFittedError, match=r"^This LatentProjector is not fitted yet; call fit first\.$"):
        copy.transform(digits[2])
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)  # scikit-learn's own check agrees
    check_is_fitted(fitted)  # the original keeps its map
    np.testing.assert_array_equal(copy.fit(digits[0]).embedding_, fitted.embedding_)


def test_set_params_then_fit_uses_the_new_params(digits):
    Z = digits[0]
    p = LatentProjector(method="pca").fit(Z).fit_inverse_grid(8)
    assert p.set_params(n_components=3) is p and p.n_components == 3
    p.fit(Z)
    assert p.embedding_.shape == (len(Z), 3) and p.components_.shape == (3, 20)
    assert not hasattr(p, "grid_codes_")  # nothing of the earlier fit survives
    p.set_params(n_components=9)  # stored as given; checked by fit
    with pytest.raises(ValueError, match="n_components must be an integer from 2 to 3; got 9"):
        p.fit(Z)
    with pytest.raises(ValueError, match="Invalid parameter 'n_neighbours'"):
        p.set_params(n_neighbours=30)


def test_repr_shows_the_non_default_params():
    assert repr(LatentProjector()) == "LatentProjector()"
    assert repr(LatentProjector(method="pca", n_neighbors=30)) == "LatentProjector(method='pca', n_neighbors=30)"
    assert repr(LatentProjector(random_state=None)) == "LatentProjector(random_state=None)"


def test_fit_ignores_y_like_scikit_learn(digits):
    Z, y, *_ = digits
    a = LatentProjector(method="pca").fit(Z, y).embedding_
    np.testing.assert_array_equal(a, LatentProjector(method="pca").fit_transform(Z, y))
    np.testing.assert_array_equal(a, LatentProjector(method="pca").fit(Z).embedding_)


def test_wrong_column_count_is_refused(digits):
    p = LatentProjector(method="pca").fit(digits[0])
    with pytest.raises(ValueError, match="must have 20 columns"):
        p.transform(np.zeros((3, 19)))
    with pytest.raises(ValueError, match="must have 2 columns"):
        p.inverse_transform(np.zeros((3, 3)))


# ----------------------------------------------------------------------------- PCA


def test_pca_round_trip_is_exact_on_the_principal_subspace(digits):
    Z, _, Z_test, _ = digits
    p = LatentProjector(method="pca").fit(Z)
    assert p.embedding_.shape == (len(Z), 2) and p.embedding_.dtype == np.float32
    Y = p.transform(Z_test)
    on_plane = p.inverse_transform(Y)  # (M, 20), the projections onto the principal plane
    np.testing.assert_allclose(p.transform(on_plane), Y, atol=1e-4)
    np.testing.assert_allclose(p.inverse_transform(p.transform(on_plane)), on_plane, atol=1e-4)
    ref = PCA(2).fit(Z)
    np.testing.assert_allclose(np.abs(p.components_), np.abs(ref.components_), atol=1e-4)
    np.testing.assert_allclose(p.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-4)


def test_pca_inverse_lookup_defaults_to_the_exact_inverse_and_3d_has_no_grid(digits):
    p = LatentProjector(method="pca", n_components=3).fit(digits[0])
    Y = p.embedding_[:5]
    np.testing.assert_allclose(p.inverse_lookup(Y), p.inverse_transform(Y))
    assert p.inverse_lookup(Y, method="knn").shape == (5, 20)
    with pytest.raises(ValueError, match="needs a 2-D map"):
        p.fit_inverse_grid()
    with pytest.raises(ValueError, match="no inverse grid"):
        p.inverse_lookup(Y, method="grid")


def test_progress_is_reported_from_0_to_1(digits):
    seen = []
    LatentProjector(method="pca").fit(digits[0], progress=lambda f, m: seen.append((f, m)))
    assert seen[0][0] == 0.0 and seen[-1][0] == 1.0 and "PCA" in seen[0][1]


# ----------------------------------------------------------------------------- t-SNE


def test_tsne_fits_but_cannot_transform_or_invert(digits):
    Z = digits[0][:300]
    p = LatentProjector(method="tsne", perplexity=20.0).fit(Z)
    assert p.embedding_.shape == (300, 2) and np.isfinite(p.embedding_).all()
    with pytest.raises(ValueError, match="t-SNE cannot place new points"):
        p.transform(Z[:3])
    with pytest.raises(ValueError, match="t-SNE has no inverse; use UMAP or PCA"):
        p.inverse_transform(p.embedding_[:3])
    with pytest.raises(ValueError, match="t-SNE has no inverse"):
        p.fit_inverse_grid()
    assert p.inverse_lookup(p.embedding_[:3]).shape == (3, 20)  # k-NN average still works


# ----------------------------------------------------------------------------- UMAP


@pytest.mark.slow
def test_umap_embedding_is_finite_and_places_held_out_digits_near_their_class(umap_proj, digits):
    Z, y, Z_test, y_test = digits
    assert umap_proj.embedding_.shape == (len(Z), 2) and umap_proj.embedding_.dtype == np.float32
    assert np.isfinite(umap_proj.embedding_).all()
    assert not umap_proj.transform_is_approximate_
    placed = umap_proj.transform(Z_test)
    assert placed.shape == (len(Z_test), 2)
    assert one_nn_accuracy(umap_proj.embedding_, y, placed, y_test) > 0.8  # ~0.98 measured; chance is 0.1


@pytest.mark.slow
def test_umap_is_deterministic_for_a_seed(digits):
    Z = digits[0][:500]
    a = LatentProjector(n_epochs=50, random_state=3).fit_transform(Z)
    b = LatentProjector(n_epochs=50, random_state=3).fit_transform(Z)
    np.testing.assert_array_equal(a, b)


def test_inverse_grid_is_finite_and_covers_the_map(umap_proj, digits):
    g = umap_proj.grid_codes_
    assert g.shape == (32, 32, 20) and g.dtype == np.float32 and np.isfinite(g).all()
    lo, hi = umap_proj.embedding_.min(axis=0), umap_proj.embedding_.max(axis=0)
    assert umap_proj.grid_x_[0] < lo[0] and umap_proj.grid_x_[-1] > hi[0]
    assert umap_proj.grid_y_[0] < lo[1] and umap_proj.grid_y_[-1] > hi[1]


@pytest.mark.slow
def test_small_maps_get_exact_neighbours_from_scikit_learn(umap_proj, digits):
    """Under SMALL_MAP codes umap computes all distances in a Python loop over pairs; we hand it each code's
    exact neighbours (itself first, at distance 0) and a search index for its transform."""
    from vae.projection.umap_runtime import exact_neighbours

    Z = digits[0]
    idx, dist, index = exact_neighbours(Z, 15, "euclidean")
    full = np.linalg.norm(Z[:, None, :].astype(np.float64) - Z[None, :, :], axis=-1)  # (N, N)
    assert idx.dtype == np.int32 and dist.dtype == np.float32 and idx.shape == dist.shape == (len(Z), 15)
    assert (idx[:, 0] == np.arange(len(Z))).all() and (dist[:, 0] == 0).all()
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :15], atol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(full, idx.astype(np.int64), 1), dist, atol=1e-5)
    assert umap_proj.umap_._knn_search_index.__class__ is index.__class__  # the fitted map was given them
    q_idx, q_dist = index.query(Z[:3] + 0.01, 5)
    np.testing.assert_array_equal(q_idx[:, 0], [0, 1, 2])


@pytest.mark.slow
def test_our_breadth_first_search_answers_as_umaps_and_leaves_the_inverse_unchanged(umap_proj):
    """umap's inverse transform walks the map's Delaunay graph from each point; ours walks it faster and must
    give the same vertices in the same order, so the inverted codes are the very same."""
    import scipy.sparse
    import umap.umap_ as umap_module
    from scipy.spatial import Delaunay

    from vae.projection import umap_runtime

    assert umap_module.breadth_first_search is umap_runtime.breadth_first_search  # installed by import_umap
    original = umap_runtime._UMAP_BFS
    emb = umap_proj.embedding_
    n = len(emb)
    adjacency = scipy.sparse.lil_matrix((n, n), dtype=int)
    for simplex in Delaunay(emb, qhull_options="QJ").simplices:
        for j in simplex:
            adjacency[j, simplex] = 1
    adjacency = scipy.sparse.csr_matrix(adjacency)
    min_vertices = umap_proj.codes_.shape[1]
    for start in np.random.default_rng(0).choice(n, 100, replace=False).astype(np.int32):
        ours = umap_runtime.breadth_first_search(adjacency, start, min_vertices)
        theirs = original(adjacency, start, min_vertices)
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)

    spots = np.random.default_rng(1).uniform(emb.min(0), emb.max(0), size=(40, 2)).astype(np.float32)
    fast = umap_proj.inverse_transform(spots)
    umap_module.breadth_first_search = original
    try:
        slow = umap_proj.inverse_transform(spots)
    finally:
        umap_module.breadth_first_search = umap_runtime.breadth_first_search
    assert np.array_equal(fast, slow)


@pytest.mark.slow
def test_our_inverse_layout_answers_as_umaps_and_compiles_once(umap_proj):
    """umap's ``optimize_layout_inverse`` jits its epoch function anew on every call (0.5-0.9 s of each map's
    inverse grid); ours jits it once per process: the inverted codes must be the very same."""
    import umap.umap_ as umap_module

    from vae.projection import umap_runtime

    assert umap_module.optimize_layout_inverse is umap_runtime.optimize_layout_inverse  # installed by import_umap
    emb = umap_proj.embedding_
    spots = np.random.default_rng(2).uniform(emb.min(0), emb.max(0), size=(30, 2)).astype(np.float32)
    ours = umap_proj.inverse_transform(spots)
    again = umap_proj.inverse_transform(spots[::-1].copy())
    assert len(umap_runtime._INVERSE_EPOCH.overloads) == 1  # one compile for both calls
    umap_module.optimize_layout_inverse = umap_runtime._UMAP_INVERSE_LAYOUT
    try:
        theirs = umap_proj.inverse_transform(spots)
    finally:
        umap_module.optimize_layout_inverse = umap_runtime.optimize_layout_inverse
    assert np.array_equal(ours, theirs) and not np.array_equal(ours, again)


@pytest.mark.slow
def test_every_patch_of_umaps_internals_is_installed_and_a_map_is_the_same_through_umaps_own_code(digits):
    """The fence around our patches of umap-learn (vae/projection/umap_runtime.py): each is in place with the
    installed versions, and a map with its inverse grid fitted through them equals the one fitted through
    umap's own code, bit for bit. An upgrade that moves an internal fails here, not in front of a user."""
    from vae.projection import umap_runtime

    Z = digits[0][:500]
    ours = LatentProjector(method="umap", n_epochs=60, random_state=0).fit(Z).fit_inverse_grid(12)
    installed = umap_runtime.patches_installed()
    assert installed and all(installed.values()), (installed, umap_runtime.VERIFIED_WITH)
    with umap_runtime.plain_umap():
        assert not any(umap_runtime.patches_installed().values())
        theirs = LatentProjector(method="umap", n_epochs=60, random_state=0).fit(Z).fit_inverse_grid(12)
    assert all(umap_runtime.patches_installed().values())  # put back after the block
    assert np.array_equal(ours.embedding_, theirs.embedding_)
    assert np.array_equal(ours.grid_codes_, theirs.grid_codes_)


def test_umaps_graph_kernels_compiled_serially_give_the_same_map(digits, monkeypatch):
    """umap's two parallel=True kernels are compiled as plain loops (seconds less to compile on a new machine):
    fitting real codes with umap's own parallel kernels on two threads gives the very same embedding."""
    import numba
    import umap.umap_ as umap_module

    from vae.projection import umap_runtime

    Z = digits[0][:600]
    serial = LatentProjector(method="umap", n_epochs=50, random_state=0).fit(Z).embedding_
    assert set(umap_runtime._UMAP_PARALLEL) == set(umap_runtime.SERIAL_KERNELS)
    for name, kernel in umap_runtime._UMAP_PARALLEL.items():
        assert kernel.targetoptions["parallel"] and not getattr(umap_module, name).targetoptions.get("parallel")
        monkeypatch.setattr(umap_module, name, kernel)
    threads = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        parallel = LatentProjector(method="umap", n_epochs=50, random_state=0).fit(Z).embedding_
    finally:
        numba.set_num_threads(threads)
    assert np.array_equal(serial, parallel)


@pytest.mark.parametrize("method", ["grid", "knn"])
def test_inverse_lookup_lands_in_the_points_neighbourhood(umap_proj, digits, method):
    Z = digits[0]
    rng = np.random.default_rng(1)
    idx = rng.choice(len(Z), 100, replace=False)
    codes = umap_proj.inverse_lookup(umap_proj.embedding_[idx], method=method)
    near = np.linalg.norm(codes - Z[idx], axis=1).mean()
    random = np.linalg.norm(Z[rng.integers(0, len(Z), 100)] - Z[idx], axis=1).mean()
    assert near < 0.6 * random  # ~0.3-0.37 measured


def test_inverse_lookup_of_one_point_and_clipping_outside_the_grid(umap_proj):
    one = umap_proj.inverse_lookup(umap_proj.embedding_[0])
    assert one.shape == (20,)
    far = umap_proj.inverse_lookup([1e6, -1e6])
    corner = umap_proj.grid_codes_[0, -1]  # (x = max, y = min)
    np.testing.assert_allclose(far, corner, rtol=1e-6)


@pytest.mark.slow
def test_points_outside_the_hull_get_codes_from_the_nearby_edge(umap_proj):
    # umap-learn sends such points to an arbitrary triangle; ours move onto the hull first.
    E = umap_proj.embedding_
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    far = E.mean(axis=0) + 1.5 * np.ptp(E, axis=0).max() * np.column_stack([np.cos(angles), np.sin(angles)])
    ours = umap_proj.inverse_transform(far)
    raw = umap_proj.umap_.inverse_transform(far.astype(np.float32))
    edge = umap_proj.inverse_lookup(umap_proj._into_hull(far), method="knn")
    assert np.isfinite(ours).all()
    assert np.linalg.norm(ours - edge, axis=1).mean() < np.linalg.norm(raw - edge, axis=1).mean()


# ----------------------------------------------------------------------------- save / load


def test_pca_save_load_round_trip_is_exact(tmp_path, digits):
    Z, _, Z_test, _ = digits
    p = LatentProjector(method="pca").fit(Z).fit_inverse_grid(8)
    q = LatentProjector.load(p.save(tmp_path / "pca.npz"))
    assert q.get_params() == p.get_params() and not q.transform_is_approximate_
    for name in ("embedding_", "codes_", "components_", "mean_", "grid_x_", "grid_y_", "grid_codes_"):
        np.testing.assert_array_equal(getattr(q, name), getattr(p, name))
    np.testing.assert_array_equal(q.transform(Z_test), p.transform(Z_test))
    np.testing.assert_array_equal(q.inverse_transform(p.embedding_[:9]), p.inverse_transform(p.embedding_[:9]))


def test_umap_save_load_keeps_map_and_grid_and_approximates_transform(tmp_path, umap_proj, digits):
    Z, y, Z_test, y_test = digits
    q = LatentProjector.load(umap_proj.save(tmp_path / "umap.npz"))
    for name in ("embedding_", "codes_", "grid_x_", "grid_y_", "grid_codes_"):
        np.testing.assert_array_equal(getattr(q, name), getattr(umap_proj, name))
    Y = np.random.default_rng(2).uniform(umap_proj.grid_x_[0], umap_proj.grid_x_[-1], size=(50, 2))
    np.testing.assert_array_equal(q.inverse_lookup(Y), umap_proj.inverse_lookup(Y))
    assert q.transform_is_approximate_
    assert one_nn_accuracy(q.embedding_, y, q.transform(Z_test), y_test) > 0.75  # k-NN placement, ~0.95
    with pytest.raises(ValueError, match="without its umap model"):
        q.fit_inverse_grid()


def test_saved_files_hold_no_pickles_and_object_arrays_are_refused(tmp_path, digits):
    path = LatentProjector(method="pca").fit(digits[0]).save(tmp_path / "p.npz")
    with np.load(path, allow_pickle=False) as data:  # would raise on any object array
        assert all(data[name].dtype != object for name in data.files)

    evil = tmp_path / "evil.npz"
    arrays = dict(np.load(path, allow_pickle=False))
    arrays["params"] = np.array([{"method": "pca"}], dtype=object)
    np.savez(evil, **arrays)
    with pytest.raises(ValueError, match="not a valid projection file.*allow_pickle"):
        LatentProjector.load(evil)

    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(pickle.dumps({"embedding_": np.zeros((5, 2))}))
    with pytest.raises(ValueError, match="not a valid projection file"):
        LatentProjector.load(pickled)


def test_load_refuses_missing_and_inconsistent_files(tmp_path, digits):
    with pytest.raises(FileNotFoundError, match="No projection file"):
        LatentProjector.load(tmp_path / "absent.npz")
    path = LatentProjector(method="pca").fit(digits[0]).save(tmp_path / "p.npz")
    arrays = dict(np.load(path, allow_pickle=False))
    arrays["codes_"] = arrays["codes_"][:-1]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="do not match"):
        LatentProjector.load(tmp_path / "bad.npz")


def test_metadata_is_saved_and_its_header_read_without_the_arrays(tmp_path, digits):
    p = LatentProjector(method="pca").fit(digits[0])
    path = p.save(tmp_path / "m.npz", metadata={"checkpoint": "epoch-3", "split": None})
    assert store.read_header(path) == (p.get_params(), {"checkpoint": "epoch-3", "split": None})
    assert store.read(path)[2] == {"checkpoint": "epoch-3", "split": None}
    assert store.read_header(p.save(tmp_path / "plain.npz"))[1] == {}
    arrays = dict(np.load(path, allow_pickle=False))
    np.savez(tmp_path / "header-only.npz", **{k: arrays[k] for k in store.HEADER})
    assert store.read_header(tmp_path / "header-only.npz")[1]["checkpoint"] == "epoch-3"
    with pytest.raises(ValueError, match="not a valid projection file"):
        LatentProjector.load(tmp_path / "header-only.npz")
    with pytest.raises(ValueError, match="metadata must map names to strings or None"):
        p.save(tmp_path / "bad.npz", metadata={"checkpoint": 3})
    assert not (tmp_path / "bad.npz").exists()


def write_version_1(path: Path, p: LatentProjector) -> Path:
    """The file an earlier version wrote: format_version 1 and no metadata."""
    arrays = dict(np.load(p.save(path), allow_pickle=False))
    del arrays["metadata"]
    arrays["format_version"] = np.array(1)
    np.savez(path, **arrays)
    return path


def test_a_file_of_the_old_format_is_refused_with_its_version(tmp_path, digits):
    assert FORMAT_VERSION == 2
    old = write_version_1(tmp_path / "old.npz", LatentProjector(method="pca").fit(digits[0]))
    with pytest.raises(ValueError, match="format version 1, expected 2"):
        LatentProjector.load(old)
    with pytest.raises(ValueError, match="format version 1, expected 2"):
        store.read_header(old)


# ----------------------------------------------------------------------------- cache


def test_projection_key_is_stable_and_fills_defaults():
    key = projection_key("run-1", {"method": "umap"}, 1000, "test")
    assert key == projection_key("run-1", dict(DEFAULTS), 1000, "test")
    assert key.startswith("umap-") and len(key) == len("umap-") + 16
    others = [
        projection_key("run-2", {}, 1000, "test"),
        projection_key("run-1", {"n_neighbors": 30}, 1000, "test"),
        projection_key("run-1", {}, 999, "test"),
        projection_key("run-1", {}, 1000, "train"),
    ]
    assert len({key, *others}) == 5
    with pytest.raises(ValueError, match="Unknown projection parameter"):
        projection_key("run-1", {"n_neighbours": 30}, 1000, "test")


@pytest.fixture
def fit_counter(monkeypatch):
    calls = []
    original = LatentProjector.fit

    def counting_fit(self, *args, **kwargs):
        calls.append(self.method)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LatentProjector, "fit", counting_fit)
    return calls


def test_cached_projection_fits_once_then_loads(tmp_path, digits, fit_counter):
    Z = digits[0]
    params = {"method": "pca"}
    seen = []
    first = cached_projection(tmp_path, "k1", Z, params, progress=lambda f, m: seen.append(f), grid_resolution=16)
    assert fit_counter == ["pca"] and (tmp_path / "k1.npz").is_file()
    assert seen[-1] == 1.0 and first.grid_codes_.shape == (16, 16, 20)
    second = cached_projection(tmp_path, "k1", Z, params, grid_resolution=16)
    assert fit_counter == ["pca"]
    np.testing.assert_array_equal(second.embedding_, first.embedding_)
    np.testing.assert_array_equal(second.grid_codes_, first.grid_codes_)
    cached_projection(tmp_path, "k1", Z[:-1], params, grid_resolution=16)  # other codes: refit
    cached_projection(tmp_path, "k1", Z[:-1], params, grid_resolution=8)  # other grid: refit
    assert fit_counter == ["pca"] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k1.npz"]  # no temp files left behind


def test_cached_projection_rebuilds_a_corrupt_file(tmp_path, digits, fit_counter, caplog):
    (tmp_path / "k2.npz").write_bytes(b"PK\x03\x04 truncated")
    proj = cached_projection(tmp_path, "k2", digits[0], {"method": "pca"})
    assert fit_counter == ["pca"] and proj.embedding_.shape == (1500, 2)
    assert "Ignoring unreadable projection cache" in caplog.text
    LatentProjector.load(tmp_path / "k2.npz")  # now valid


def test_cached_projection_refuses_path_like_keys(tmp_path, digits):
    with pytest.raises(ValueError, match="cache key"):
        cached_projection(tmp_path, "../escape", digits[0], {"method": "pca"})


@pytest.mark.slow
def test_cached_umap_projection_loads_with_its_grid(tmp_path, digits, fit_counter):
    Z = digits[0][:600]
    params = {"method": "umap", "n_epochs": 50}
    first = cached_projection(tmp_path, "u", Z, params, grid_resolution=8)
    second = cached_projection(tmp_path, "u", Z, params, grid_resolution=8)
    assert fit_counter == ["umap"] and second.transform_is_approximate_
    np.testing.assert_array_equal(second.grid_codes_, first.grid_codes_)


def test_cached_projection_refits_a_file_of_the_old_format(tmp_path, digits, fit_counter):
    Z = digits[0]
    write_version_1(tmp_path / "k3.npz", LatentProjector(method="pca").fit(Z))
    fit_counter.clear()
    proj = cached_projection(tmp_path, "k3", Z, {"method": "pca"}, grid_resolution=8, checkpoint="c", split="test")
    assert fit_counter == ["pca"] and proj.grid_codes_.shape == (8, 8, 20)
    assert store.read_header(tmp_path / "k3.npz")[1] == {"checkpoint": "c", "split": "test"}


def test_cached_projection_stores_checkpoint_and_split_and_refits_for_others(tmp_path, digits, fit_counter):
    Z, params = digits[0], {"method": "pca"}
    cached_projection(tmp_path, "k4", Z, params, None, 8, checkpoint="epoch-1", split="test")  # old positionals
    assert store.read_header(tmp_path / "k4.npz") == (DEFAULTS | params, {"checkpoint": "epoch-1", "split": "test"})
    cached_projection(tmp_path, "k4", Z, params, grid_resolution=8, checkpoint="epoch-1", split="test")
    assert fit_counter == ["pca"]
    cached_projection(tmp_path, "k4", Z, params, grid_resolution=8, checkpoint="epoch-2", split="test")
    cached_projection(tmp_path, "k4", Z, params, grid_resolution=8, checkpoint="epoch-2", split="train")
    assert fit_counter == ["pca"] * 3
    assert store.read_header(tmp_path / "k4.npz")[1] == {"checkpoint": "epoch-2", "split": "train"}
    with pytest.raises(ValueError, match="checkpoint and split must be strings"):
        cached_projection(tmp_path, "k4", Z, params, checkpoint=2)


def test_cached_projection_compares_params(tmp_path, digits, fit_counter):
    Z = digits[0]
    cached_projection(tmp_path, "k5", Z, {"method": "pca"}, grid_resolution=None)
    cached_projection(tmp_path, "k5", Z, {"method": "pca", "n_components": 3}, grid_resolution=None)
    assert fit_counter == ["pca", "pca"]
    assert LatentProjector.load(tmp_path / "k5.npz").n_components == 3


@pytest.fixture
def run_codes(run_data):
    """(run folder, its checkpoint id, the test items' posterior means (N, 4)) of a small trained model."""
    import torch

    run, model, ds = run_data
    with torch.inference_mode():
        mu = model.encode(ds.x_test[:400].float())[0].numpy()  # (400, 4)
    return run, rf.checkpoint_id(run), mu


def test_map_path_is_in_the_runs_projections_folder(tmp_path):
    key = projection_key("ckpt", {"method": "pca"}, 400, "test")
    assert map_path(tmp_path, key) == rf.projections_dir(tmp_path) / f"{key}.npz"
    with pytest.raises(ValueError, match="cache key"):
        map_path(tmp_path, "../escape")


def test_find_map_returns_the_newest_map_of_the_checkpoint(run_codes, monkeypatch):
    run, checkpoint, codes = run_codes
    assert find_map(run, checkpoint) is None  # no projections folder yet

    def write(method: str, n: int, split: str, when: int, ckpt: str | None = checkpoint) -> Path:
        key = projection_key(ckpt or "none", {"method": method}, n, split)
        path = map_path(run, key)
        cached_projection(path.parent, key, codes[:n], {"method": method}, checkpoint=ckpt, split=split)
        os.utime(path, ns=(when, when))
        return path

    pca_test = write("pca", 400, "test", when=10**18)
    assert find_map(run, checkpoint) == pca_test
    pca_small = write("pca", 200, "train", when=2 * 10**18)
    write("pca", 300, "test", when=3 * 10**18, ckpt="another-checkpoint")
    write("pca", 100, "test", when=4 * 10**18, ckpt=None)  # saved without a checkpoint
    (rf.projections_dir(run) / "broken.npz").write_bytes(b"PK\x03\x04 truncated")
    old = write_version_1(rf.projections_dir(run) / "old.npz", LatentProjector(method="pca").fit(codes))
    os.utime(old, ns=(5 * 10**18, 5 * 10**18))

    def no_full_reads(*args, **kwargs):
        raise AssertionError("find_map read a whole projection file")

    monkeypatch.setattr(store, "read", no_full_reads)
    assert find_map(run, checkpoint) == pca_small
    assert find_map(run, "another-checkpoint").name.startswith("pca-")
    assert find_map(run, "never-trained") is None
    monkeypatch.undo()
    proj = LatentProjector.load(find_map(run, checkpoint))
    np.testing.assert_array_equal(proj.codes_, codes[:200])
    with pytest.raises(ValueError, match="needs a checkpoint id"):
        find_map(run, None)


# ----------------------------------------------------------------------------- warm-up


def test_a_cache_that_cannot_save_or_load_never_fails_a_compile():
    """umap's kernels are cached although umap did not write them for it: a pickle that meets a dead weak
    reference while saving (seen in CI) or an unreadable index must leave the function compiled in memory."""
    import numba

    from vae.projection.umap_runtime import cache_dispatcher

    @numba.njit
    def double(x):
        return 2 * x

    cache_dispatcher(double)
    cache = double._cache

    def vanished(*args):
        raise ReferenceError("underlying object has vanished")

    cache._save_overload = vanished
    cache._load_overload = vanished
    assert double(21) == 42 and double(1.5) == 3.0
    assert len(double.overloads) == 2


@pytest.mark.slow
def test_warm_up_compiles_and_reports_progress():
    """The small maps' path, as the map worker warms it first (the large path compiles pynndescent's ``nn_descent``
    again in every process: 20 s of the suite for the same progress)."""
    from vae.projection.umap_runtime import FIRST_WARM_UP

    seen = []
    seconds = warm_up(progress=lambda f, m: seen.append(f), points=FIRST_WARM_UP)
    assert seconds > 0
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


@pytest.mark.slow
def test_warm_up_in_a_child_process_leaves_umaps_code_in_the_disk_cache():
    """The map worker has a child compile the large-map path for it: the child must succeed and leave umap's
    compiled functions in numba's cache folder."""
    from vae.projection.umap_runtime import configure_numba_cache, warm_up_elsewhere

    folder = configure_numba_cache()
    child = warm_up_elsewhere(points=600)
    assert child is not None and child.wait(timeout=600) == 0
    indexes = [p.name for p in folder.rglob("*.nbi")]
    assert any(name.startswith(("layouts.", "umap_.")) for name in indexes), indexes[:10]


def test_a_warm_up_for_the_disk_cache_skips_only_the_inverse_layouts_epochs(monkeypatch):
    """A child warming numba's disk cache for the server skips the inverse layout's epochs (numba cannot keep
    them on disk: the server would compile them again); a warm-up in the process that will use them runs them."""
    from vae.projection import umap_runtime

    umap_runtime.import_umap()
    calls = []
    monkeypatch.setattr(umap_runtime, "_INVERSE_EPOCH", lambda *args: calls.append(args[13]))  # the epoch number
    warm_up(points=200, for_disk=True)
    assert calls == [] and not umap_runtime._WARMING_FOR_DISK.on
    warm_up(points=200)
    assert calls and calls == list(range(len(calls)))


def test_a_watched_training_leaves_the_maps_of_its_latest_two_checkpoints_only(tmp_path, digits):
    """Explore following a training fits a map per checkpoint: the folder keeps the latest two checkpoints'."""
    import os
    import time

    from vae.projection.cache import MAX_MAPS, cached_projection

    Z = digits[0][:300]
    for epoch in range(5):
        for method in ("pca", "pca-again"):
            key = f"{method}-{epoch}"
            cached_projection(tmp_path, key, Z + epoch, {"method": "pca"}, checkpoint=f"ck{epoch}", split="test")
            t = time.time() + epoch * 10 + (method == "pca-again")  # distinct mtimes, in order
            os.utime(tmp_path / f"{key}.npz", (t, t))
    cached_projection(tmp_path, "pca-5", Z, {"method": "pca"}, checkpoint="ck4", split="test")
    left = sorted(p.stem for p in tmp_path.glob("*.npz"))
    assert left == ["pca-3", "pca-4", "pca-5", "pca-again-3", "pca-again-4"] and len(left) <= MAX_MAPS
