"""Maps of many items (the sprites' full grid is 737,280): UMAP fitted on a fixed sample and the rest placed by it,
a split encoded in chunks with progress, and a large map's codes kept on disk beside the run's maps.

Real data: PCA-20 of scikit-learn's digits stands in for codes (the sample size is lowered so that 1,797 items are
"many"); the encoding tests use a trained digits model.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from scipy.spatial import cKDTree
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from vae.projection import LatentProjector, estimator
from vae.projection.cache import CODES_KEPT, codes_path, read_codes, write_codes


@pytest.fixture(scope="module")
def codes() -> np.ndarray:
    X = load_digits().data / 16.0
    return PCA(20, random_state=0).fit_transform(X).astype(np.float32)  # (1797, 20)


@pytest.fixture
def sampled(monkeypatch):
    """Maps past 1,000 codes fitted on a sample of 1,000, the rest placed 300 at a time."""
    monkeypatch.setattr(estimator, "FIT_MOST", 1000)
    monkeypatch.setattr(estimator, "PLACE_CHUNK", 300)


def test_a_map_past_the_sample_size_is_fitted_on_a_sample_and_places_the_rest_near_their_neighbours(codes, sampled):
    said = []
    proj = LatentProjector(method="umap", n_epochs=100, random_state=0)
    proj.fit(codes, progress=lambda f, m: said.append((f, m)))
    n = len(codes)
    emb = proj.embedding_
    assert emb.shape == (n, 2) and np.isfinite(emb).all()
    assert len(proj.umap_.embedding_) == 1000  # umap itself saw the sample only

    fitted = np.sort(np.random.default_rng(0).choice(n, 1000, replace=False))  # the seed's sample
    np.testing.assert_array_equal(emb[fitted], proj.umap_.embedding_)
    # the sample's layout is the map a direct fit of those codes gives (same parameters, same seed)
    alone = LatentProjector(method="umap", n_epochs=100, random_state=0).fit(codes[fitted]).embedding_
    np.testing.assert_allclose(emb[fitted], alone, atol=1e-5)

    # each placed code sits where its nearest fitted codes sit: far closer than two random items
    rest = np.setdiff1d(np.arange(n), fitted)
    _, nn = cKDTree(codes[fitted]).query(codes[rest], k=10)
    off = np.linalg.norm(emb[rest] - emb[fitted][nn].mean(axis=1), axis=1)
    pairs = np.random.default_rng(1).integers(0, n, (2000, 2))
    typical = np.median(np.linalg.norm(emb[pairs[:, 0]] - emb[pairs[:, 1]], axis=1))
    assert np.median(off) < 0.15 * typical, (np.median(off), typical)

    fractions = [f for f, _ in said]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    messages = [m for _, m in said]
    assert "fitting UMAP on 1,000 of the 1,797 codes (a fixed sample)" in messages
    placed = [m for m in messages if m.startswith("placed")]
    assert [re.sub(r" \(about \d+ s left\)$", "", m) for m in placed] == [
        f"placed {k} of the other 797 codes" for k in (300, 600, 797)
    ]
    assert all(re.search(r"\(about \d+ s left\)$", m) for m in placed[:-1])  # the time left, but at the end
    assert messages[-2] == "placed 797 of the other 797 codes"

    again = LatentProjector(method="umap", n_epochs=100, random_state=0).fit(codes).embedding_
    np.testing.assert_array_equal(again, emb)  # a seed gives the same map


@pytest.mark.parametrize("sample", [False, True], ids=["whole", "sampled"])
def test_a_map_started_from_a_layout_turns_onto_it_and_its_inverse_answers_in_the_turned_frame(
    codes, sample, monkeypatch
):
    if sample:
        monkeypatch.setattr(estimator, "FIT_MOST", 1000)
    start = -PCA(2, random_state=0).fit_transform(codes)[:, ::-1]  # a layout turned away from UMAP's own
    proj = LatentProjector(method="umap", n_epochs=50, random_state=0).fit(codes, start=start)
    emb = proj.embedding_
    assert emb.shape == (len(codes), 2) and np.isfinite(emb).all()
    for k in range(2):  # started from that layout and turned onto it, the map keeps its orientation
        assert np.corrcoef(emb[:, k], start[:, k])[0, 1] > 0.5
    # the inverse at an item's place on the (turned) map gives a code near that item's own
    items = np.random.default_rng(0).choice(len(codes), 60, replace=False)
    back = proj.inverse_transform(emb[items])
    near = np.linalg.norm(back - codes[items], axis=1)
    far = np.linalg.norm(back - codes[np.roll(items, 1)], axis=1)
    assert np.median(near) < 0.5 * np.median(far), (np.median(near), np.median(far))
    placed = proj.transform(codes[items])  # and the transform places codes in that frame too
    assert np.median(np.linalg.norm(placed - emb[items], axis=1)) < 0.1 * np.ptp(emb, axis=0).max()


# ---------------------------------------------------------------- a split encoded in chunks


def test_a_split_is_encoded_in_chunks_as_in_one_batch_with_progress(run_data):
    _, model, ds = run_data
    said = []
    mu, logvar = model.embed_split(ds, "all", progress=lambda f, m: said.append((f, m)), chunk=500)
    whole_mu, whole_logvar = model.embed(ds.split_items("all").float())
    np.testing.assert_allclose(mu, whole_mu, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logvar, whole_logvar, rtol=1e-5, atol=1e-5)
    n = ds.split_size("all")
    assert [round(f, 6) for f, _ in said] == [round(min(k, n) / n, 6) for k in range(500, n + 500, 500)]
    assert said[-1][1] == f"encoded {n:,} of {n:,} items"
    rows = np.array([5, 1, 1700])  # rows of "all" on both sides of the train/test seam, in any order
    part_mu, _ = model.embed_split(ds, "all", rows, chunk=2)
    np.testing.assert_allclose(part_mu, whole_mu[rows], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- a large map's codes kept on disk


def test_codes_are_kept_and_read_back_and_anything_else_is_ignored(tmp_path, codes):
    mu, logvar = codes[:, :4], codes[:, 4:8] - 1
    path = codes_path(tmp_path, "ckpt-1", "all", len(mu))
    assert path.parent == tmp_path and path.name.startswith("codes-") and path.suffix == ".npy"
    assert codes_path(tmp_path, "ckpt-2", "all", len(mu)) != path != codes_path(tmp_path, "ckpt-1", "test", len(mu))
    assert read_codes(path, len(mu), 4) is None  # none kept yet
    write_codes(path, mu, logvar)
    got = read_codes(path, len(mu), 4)
    np.testing.assert_array_equal(got[0], mu)
    np.testing.assert_array_equal(got[1], logvar)
    assert read_codes(path, len(mu) - 1, 4) is None  # another count or size: not these codes
    assert read_codes(path, len(mu), 5) is None

    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((2, 3, 4), np.nan, dtype=np.float32))
    assert read_codes(bad, 3, 4) is None  # non-finite
    bad.write_bytes(b"not an array")
    assert read_codes(bad, 3, 4) is None
    link = tmp_path / "link.npy"
    link.symlink_to(path)
    assert read_codes(link, len(mu), 4) is None  # a link is never followed
    os.mkfifo(tmp_path / "pipe.npy")
    assert read_codes(tmp_path / "pipe.npy", 3, 4) is None  # a pipe never blocks the page


def test_only_the_newest_codes_files_are_kept(tmp_path, codes):
    paths = [codes_path(tmp_path, f"ckpt-{k}", "all", 10) for k in range(CODES_KEPT + 2)]
    for k, path in enumerate(paths):
        write_codes(path, codes[:10, :2], codes[:10, 2:4])
        os.utime(path, ns=(k * 10**9, k * 10**9))  # written one after another
    assert sorted(tmp_path.glob("codes-*.npy")) == sorted(paths[-CODES_KEPT:])
