"""The latent history in UMAP: each frame's UMAP started from the previous frame's layout, kept with the run, on a
real digits run (5 frames of its 360 test items)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes

from vae.analysis import history
from vae.config import DataConfig, TrainConfig
from vae.data import load_dataset
from vae.projection import sequence
from vae.runs import folder as rf
from vae.runs.folder import new_run
from vae.train import train

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # UMAP fits (and compiles, the first time in a process)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    cfg = DataConfig(name="digits")
    ds = load_dataset(cfg)
    out = new_run(tmp_path_factory.mktemp("runs"), "digits-history", ds, cfg, latent_dim=4, hidden=(64,),
                  train_cfg=TrainConfig(epochs=4, batch_size=64, lr=3e-3, threads=1))  # fmt: skip
    assert train(out, dataset=ds)["state"] == "finished"
    assert len(history.frames(out)) == 5  # before training, then after each epoch
    return out


@pytest.fixture(scope="module")
def layouts(run) -> list[np.ndarray]:
    return history.umap_layouts(run)


def test_frames_are_fitted_from_the_previous_layout_and_kept_with_the_run(run, layouts):
    frames = history.frames(run)
    assert len(layouts) == len(frames) and all(lay.shape == (360, 2) for lay in layouts)
    assert (rf.history_dir(run) / history.UMAP_FILE).is_file()
    # frame 3 is umap's own fit of its codes (its exact neighbours from scikit-learn, as umap finds them itself, but
    # without its loop over pairs) from frame 2's layout with the seed, turned onto frame 2's layout
    from vae.projection.umap_runtime import exact_neighbours, import_umap

    k = 3
    codes = np.asarray(frames[k].codes(), dtype=np.float32)
    neighbours = exact_neighbours(codes, 15, "euclidean")
    start = np.asarray(layouts[k - 1], dtype=np.float64)
    direct = import_umap().UMAP(n_components=2, init=start, random_state=0, n_epochs=sequence.EPOCHS, n_jobs=1,
                                precomputed_knn=neighbours).fit_transform(codes)  # fmt: skip
    direct = direct.astype(np.float64)
    direct -= direct.mean(0)
    rotation, _ = orthogonal_procrustes(direct, layouts[k - 1] - layouts[k - 1].mean(0))
    np.testing.assert_allclose(direct @ rotation + layouts[k - 1].mean(0), layouts[k], atol=1e-6)


def test_the_same_seed_gives_the_same_frames_and_a_killed_fit_resumes_where_it_stopped(run, layouts, monkeypatch):
    fitted = history.cached_umap_layouts(run)
    last = history.frames(run)[-1].step
    del fitted[last]  # as if the fit had been killed before its last frame
    history._save_umap_layouts(run, 0, fitted)
    partial = history.umap_layouts(run, fit_missing=False)
    assert all(lay is not None for lay in partial[:-1]) and partial[-1] is None  # what is missing says so
    fits, fit = [], sequence.umap_layout
    monkeypatch.setattr(sequence, "umap_layout", lambda *a, **k: fits.append(1) or fit(*a, **k))
    again = history.umap_layouts(run)  # fits the last frame only, from the kept ones
    assert len(fits) == 1
    for a, b in zip(layouts, again, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    (rf.history_dir(run) / history.UMAP_FILE).unlink()
    fresh = history.umap_layouts(run)  # from nothing, with the same seed
    for a, b in zip(layouts, fresh, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_started_from_the_previous_layout_the_frames_move_less_than_independent_fits(run, layouts):
    codes = [f.codes() for f in history.frames(run)]
    independent = [sequence.umap_layout(c, sequence.pca2(c), seed=0) for c in codes]
    assert history.mean_displacement(layouts) < history.mean_displacement(independent)
    disparities = history.stability(layouts)
    assert disparities[0] is None and all(0 <= d < 1 for d in disparities[1:])


def test_the_command_line_lists_umap_frames_with_their_stability_and_writes_the_gif(run, layouts, tmp_path):
    gif = tmp_path / "umap.gif"
    done = subprocess.run(
        [sys.executable, "-m", "vae", "history", run.name, "--method", "umap", "--gif", str(gif), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "LATENT_EXPLORER_RUNS": str(run.parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["method"] == "umap" and len(out["frames"]) == 5
    assert out["frames"][0]["disparity"] is None
    assert [f["disparity"] for f in out["frames"][1:]] == pytest.approx(history.stability(layouts)[1:], abs=1e-6)
    assert gif.read_bytes()[:6] == b"GIF89a"


def test_a_map_started_from_the_one_shown_is_umap_from_that_layout_turned_onto_it(run):
    """Explore following a training: the next checkpoint's map starts from the map shown (the last two frames'
    codes stand in for two checkpoints' codes of the same items)."""
    from vae.projection import LatentProjector
    from vae.projection.estimator import exact_neighbours
    from vae.projection.umap_runtime import import_umap

    before, after = (f.codes() for f in history.frames(run)[-2:])
    quick = {"method": "umap"}  # as Explore fits a map
    shown = LatentProjector(**quick).fit(before).embedding_.astype(np.float64)
    followed = LatentProjector(**quick).fit(after, start=shown)
    umap = import_umap()
    codes = np.ascontiguousarray(after, dtype=np.float32)
    direct = umap.UMAP(precomputed_knn=exact_neighbours(codes, 15, "euclidean"), n_neighbors=15, min_dist=0.1,
                       random_state=0, n_jobs=1, init=shown).fit_transform(codes)  # fmt: skip
    np.testing.assert_allclose(followed.embedding_, sequence.turned_onto(direct, shown), atol=1e-3)  # umap's own
    # fit from that layout (with the map's exact neighbours), turned onto it
    fresh = LatentProjector(**quick).fit(after).embedding_.astype(np.float64)
    moved = np.linalg.norm(followed.embedding_ - shown, axis=1).mean()
    independent = np.linalg.norm(sequence.turned_onto(fresh, shown) - shown, axis=1).mean()
    assert moved < independent, (moved, independent)  # measured here: 0.92 against 1.37

    pca = LatentProjector(method="pca").fit(after, start=LatentProjector(method="pca").fit(before).embedding_)
    np.testing.assert_allclose(pca.transform(after), pca.embedding_, atol=1e-4)  # still the map of its codes
    np.testing.assert_allclose(pca.inverse_transform(pca.embedding_[:3]) @ pca.components_.T,
                               pca.embedding_[:3] + pca.mean_ @ pca.components_.T, atol=1e-4)  # fmt: skip
