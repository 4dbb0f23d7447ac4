"""The Explore map's pure pieces (``ui.maps``): reading a click, label groups, the CSV, far-from-items."""

import io

import numpy as np
import pandas as pd
import pytest

from ui import maps as page
from ui.maps import CLICK_GRID
from vae.projection import LatentProjector


def test_last_pick_maps_curve_and_index_to_a_row_or_a_grid_cell():
    traces = [None, np.array([4, 7, 9]), np.array([0, 1])]
    select = lambda *points: {"selection": {"points": list(points)}}  # noqa: E731
    assert page.last_pick(select({"curve_number": 1, "point_index": 2}), traces) == ("item", 9)
    assert page.last_pick(select({"curve_number": 0, "point_index": 61}), traces) == ("grid", 61)
    assert page.last_pick(select({"curve_number": 2, "point_number": 1}), traces) == ("item", 1)
    two = select({"curve_number": 1, "point_index": 0}, {"curve_number": 2, "point_index": 0})
    assert page.last_pick(two, traces) == ("item", 0)  # the last one clicked


@pytest.mark.parametrize(
    "event",
    [None, {}, {"selection": {"points": []}}, {"selection": {"points": [{"curve_number": 5, "point_index": 0}]}},
     {"selection": {"points": [{"curve_number": 1, "point_index": 3}]}},
     {"selection": {"points": [{"curve_number": 0, "point_index": CLICK_GRID**2}]}}],
    ids=["none", "empty", "no-points", "marker-trace", "past-trace-end", "past-grid-end"],
)  # fmt: skip
def test_last_pick_ignores_what_is_not_a_map_point(event):
    assert page.last_pick(event, [None, np.array([4, 7, 9])]) is None


def test_label_groups_one_per_label_in_order_or_one_without_labels():
    labels = np.array([2, 0, 2, 1, 0])
    groups = page.label_groups(labels, ["zero", "one", "two"], 5)
    assert [(rows.tolist(), name) for rows, name, _ in groups] == [([1, 4], "zero"), ([3], "one"), ([0, 2], "two")]
    assert len({colour for _, _, colour in groups}) == 3
    ((rows, name, _),) = page.label_groups(None, None, 4)
    assert rows.tolist() == [0, 1, 2, 3] and name == "items"


def test_table_csv_has_coordinates_labels_and_codes():
    emb = np.array([[0.5, -1.0], [2.0, 3.0]], dtype=np.float32)
    codes = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    df = pd.read_csv(io.BytesIO(page.table_csv("test", np.array([10, 42]), np.array([1, 0]), ["a", "b"], emb, codes)))
    assert list(df.columns) == ["split", "index", "label", "label_name", "x", "y", "z0", "z1", "z2"]
    assert df["index"].tolist() == [10, 42] and df["label_name"].tolist() == ["b", "a"]
    np.testing.assert_allclose(df[["x", "y"]].to_numpy(), emb)
    np.testing.assert_allclose(df[["z0", "z1", "z2"]].to_numpy(), codes)
    unlabelled = pd.read_csv(io.BytesIO(page.table_csv("train", np.array([0, 1]), None, None, emb, codes)))
    assert "label" not in unlabelled.columns and len(unlabelled) == 2
    both = pd.read_csv(io.BytesIO(page.table_csv("all", np.array([3, 12]), None, None, emb, codes, n_train=10)))
    assert both["split"].tolist() == ["train", "test"] and both["index"].tolist() == [3, 2]


def test_far_from_items_is_relative_to_the_map_extent():
    proj = LatentProjector(method="pca").fit(np.random.default_rng(0).normal(size=(200, 3)))
    x0, x1 = proj.embedding_[:, 0].min(), proj.embedding_[:, 0].max()
    assert not page.far_from_items(proj, proj.embedding_[17])
    assert page.far_from_items(proj, [x1 + 0.2 * (x1 - x0), 0.0])


def test_a_downloaded_grid_says_what_it_shows():
    """The traversal PNG carries its row and column labels and a title (before, the picture alone)."""
    from PIL import Image

    from ui.pictures import grid_picture, labelled_grid

    items = np.zeros((6, 1, 8, 8), dtype=np.float32)  # black cells: any dark pixel outside them is text
    plain_png = grid_picture(items, ncol=3, scale=4)
    labelled = Image.open(io.BytesIO(labelled_grid(plain_png, ["z0", "z3"], ["-3", "+0", "+3"], "run: traversal")))
    grid = Image.open(io.BytesIO(plain_png))
    assert labelled.width > grid.width and labelled.height > grid.height
    pixels = np.asarray(labelled.convert("L"))
    margin_left = labelled.width - grid.width - 4  # the row labels' column
    assert (pixels[30:, :margin_left] < 128).any()  # row labels drawn
    assert (pixels[:12, :] < 128).any()  # the title drawn
