"""vae.web.mapgrid: a map's blob for the browser; large maps carry their items as thumbnails."""

from __future__ import annotations

import numpy as np
import pytest

from vae.web import mapgrid as webmap


def test_thumbnail_scale_sends_small_maps_whole_and_large_ones_as_thumbnails_within_the_cap():
    assert webmap.thumbnail_scale(10_000, (1, 28, 28)) == 1  # whole, as before
    assert webmap.thumbnail_scale(70_000, (1, 28, 28)) == 2  # Fashion-MNIST's 70,000: 14×14, 13.7 MB
    assert 70_000 * 14 * 14 <= webmap.MAX_THUMBNAIL_BYTES < 70_000 * 28 * 28
    assert webmap.thumbnail_scale(737_280, (1, 32, 32)) is None  # 8×8 would be 47 MB: shown on click instead
    assert webmap.thumbnail_scale(20_000, (3, 64, 64)) == 4  # 16×16 RGB
    assert webmap.thumbnail_scale(50_000, (8,)) is None  # table rows have no picture


@pytest.mark.usefixtures("fashion_mnist")
def test_a_large_maps_blob_carries_block_mean_thumbnails_of_the_real_items():
    from vae.config import DataConfig
    from vae.data import load_dataset

    ds = load_dataset(DataConfig(name="fashion-mnist", max_train=12_000, max_test=100))
    x = ds.x_train.numpy()  # (12000, 1, 28, 28): over MAX_PIXEL_ITEMS
    n = len(x)
    rng = np.random.default_rng(0)
    groups = [(np.arange(n), "all", "#000")]
    grid = np.zeros((4, 4, 2), dtype=np.float32)
    blob = webmap.pack_map("m", rng.normal(size=(n, 2)), np.arange(n), groups, np.arange(4.0), np.arange(4.0), grid,
                           x)  # fmt: skip
    header, arrays = webmap.read_map(blob)
    assert header["item_shape"] == [1, 14, 14] and header["pixel_scale"] == 2
    k = 5  # drawn point k is item rows[k]; its thumbnail is the mean of each 2×2 block of it, in 0..255
    item = x[arrays["rows"][k], 0]
    want = np.round(item.reshape(14, 2, 14, 2).mean(axis=(1, 3)) * 255)
    np.testing.assert_array_equal(arrays["pixels"][k].reshape(14, 14), want)
    assert arrays["pixels"].nbytes <= webmap.MAX_THUMBNAIL_BYTES
