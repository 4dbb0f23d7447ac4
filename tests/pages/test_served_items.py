"""The items' pictures the app's server answers by HTTP for a large map (ui/served.py), and how Explore offers them:
what the browser gets for the map on screen, and a sentence with a status for anything else."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from ui import served
from vae.config import DataConfig
from vae.data import load_dataset
from vae.web import mapgrid

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig(name="digits"))


@pytest.fixture
def offered(digits, monkeypatch):
    """A map of the digits' 360 test items offered as Explore offers it: rows -> uint8 pictures."""
    monkeypatch.setattr(served, "_offers", type(served._offers)())
    idx = np.arange(digits.split_size("test"))[::-1].copy()  # the map's rows name test items in another order
    served.offer("digits@final/pca", len(idx), lambda r: mapgrid.picture_bytes(digits.split_items("test", idx[r])))
    return idx


def test_the_rows_asked_come_back_as_the_datas_own_pixels_in_the_order_asked(digits, offered):
    status, body = served.items("digits@final/pca", "5,0,359,5")
    assert status == 200
    n, c, h, w = served.HEADER.unpack(body[:16])
    assert (n, c, h, w) == (4, 1, 8, 8) and len(body) == 16 + 4 * 64
    got = np.frombuffer(body[16:], np.uint8).reshape(4, 1, 8, 8)
    want = np.round(digits.x_test[offered[[5, 0, 359, 5]]].numpy() * 255)
    assert np.abs(got.astype(int) - want).max() == 0


@pytest.mark.parametrize(
    ("map_id", "rows", "status"),
    [
        ("another@final/pca", "0", 404),
        (None, "0", 404),
        ("../digits@final/pca", "0", 404),
        ("digits@final/pca", None, 400),
        ("digits@final/pca", "", 400),
        ("digits@final/pca", "-1", 400),
        ("digits@final/pca", "1,,2", 400),
        ("digits@final/pca", "1.5", 400),
        ("digits@final/pca", "0x10", 400),
        ("digits@final/pca", "360", 400),
        ("digits@final/pca", "99999999999", 400),
        ("digits@final/pca", ",".join(["1"] * (served.MOST_ROWS + 1)), 400),
    ],
)
def test_anything_else_gets_a_status_and_a_sentence(offered, map_id, rows, status):
    got, body = served.items(map_id, rows)
    assert got == status and isinstance(body, str) and body.endswith(".") and "Traceback" not in body


def test_a_map_whose_data_fails_under_it_answers_a_sentence(monkeypatch):
    monkeypatch.setattr(served, "_offers", type(served._offers)())

    def gone(rows):
        raise OSError("the file is no longer there")

    served.offer("m", 10, gone)
    status, body = served.items("m", "1")
    assert status == 500 and "could not be read" in body and "no longer there" in body
    served.offer("flat", 10, lambda rows: np.zeros((len(rows), 64), np.uint8))  # not (rows, C, H, W)
    assert served.items("flat", "1")[0] == 500


def test_only_the_last_maps_offered_are_answered(monkeypatch):
    monkeypatch.setattr(served, "_offers", type(served._offers)())
    for k in range(served.KEEP + 2):
        served.offer(f"m{k}", 4, lambda rows: np.zeros((len(rows), 1, 2, 2), np.uint8))
    served.offer("m2", 4, lambda rows: np.ones((len(rows), 1, 2, 2), np.uint8))  # offered again: kept longest
    served.offer("m99", 4, lambda rows: np.zeros((len(rows), 1, 2, 2), np.uint8))
    assert [served.items(f"m{k}", "0")[0] for k in (0, 1, 2, 3, 4)] == [404, 404, 200, 404, 200]


def test_streamlit_run_finds_the_server_with_its_routes_in_app_py():
    """`streamlit run app.py` looks for an ``app = st.App(...)``; the page script runs under ``__main__`` only."""
    from streamlit.web.server.app_discovery import discover_asgi_app

    found = discover_asgi_app(ROOT / "app.py")
    assert found.is_asgi_app and found.import_string.endswith(":app")
    tree = ast.parse((ROOT / "app.py").read_text())
    guard = next(node for node in tree.body if isinstance(node, ast.If))
    assert ast.unparse(guard.test) == "__name__ == '__main__'"
    assert any("served.ROUTES" in ast.unparse(node) for node in guard.orelse)


def test_the_items_are_answered_to_this_machines_host_names_only():
    """As Streamlit's websocket (``server.allowedHosts``): a rebinding domain's page cannot read the items."""
    local = ["localhost", "127.0.0.1", "::1"]
    assert served.host_allowed("127.0.0.1:8501", local) and served.host_allowed("localhost", local)
    assert served.host_allowed("[::1]:8501", local) and served.host_allowed("LOCALHOST.:8501", local)
    for host in ("evil.example:8501", "evil.example", None, "", "127.0.0.1:port", "user@127.0.0.1", "127.0.0.1/x"):
        assert not served.host_allowed(host, local), host
    assert served.host_allowed("app.lab.example", ["*.lab.example"]) and served.host_allowed("anything", ["*"])
    assert not served.host_allowed("lab.example.evil", ["*.lab.example"])
    assert served.host_allowed("anything", [])  # no list: Streamlit's own default, any host


def test_a_feed_answers_what_its_page_offered_and_a_sentence_when_it_breaks(monkeypatch):
    """A training's live feed (``offer_feed``): its function's answer, with the query's parameters; a sentence and
    500 when that function fails (a run folder broken under the page), 404 for a feed no page offered; the oldest
    feed goes past ``KEEP_FEEDS``."""
    monkeypatch.setattr(served, "_feeds", type(served._feeds)())
    url = served.offer_feed("run-a", lambda params: served.Answer(200, params["part"].encode(), "text/plain"))
    assert url == f"{served.FEED_ROUTE}?id=run-a"
    assert served.feed({"id": "run-a", "part": "panel"}) == served.Answer(200, b"panel", "text/plain")

    def broken(params):
        raise RuntimeError("the status file is half written")

    served.offer_feed("run-b", broken)
    status, body, *_ = served.feed({"id": "run-b"})
    assert status == 500 and body == "The run could not be read (RuntimeError): the status file is half written"
    for k in range(served.KEEP_FEEDS):
        served.offer_feed(f"run-{k}", broken)
    assert served.feed({"id": "run-a"}).status == 404 and served.feed({"id": "run-0"}).status == 500
