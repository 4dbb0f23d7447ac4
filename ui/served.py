"""What the app's server answers besides its pages, by HTTP: a large map's items' pictures, a few at a time, and
a training run's live feed.

A map whose items are too many for their pixels to travel with it (``vae.web.mapgrid.thumbnail_scale``: past
10,000 items, thumbnails or nothing) is *offered* here by the page that draws it (``offer``); the browser then asks
``GET /api/items?map=<map id>&rows=3,17,...`` for the item under its pointer and for the few in view when zoomed
in, and keeps what it got. The answer: 16 bytes (uint32 n, C, H, W, little-endian), then the n items' pixels as
uint8 (0-255), item after item, in the order asked. A Streamlit rerun would take a tenth of a second and redraw the
page; this takes a few milliseconds and touches nothing else.

Only maps offered by a page of this server are answered (the last ``KEEP``), at most ``MOST_ROWS`` rows a request;
anything else gets its status and a sentence.

``GET /api/live?id=<feed id>&part=...``: the Train page's live panel (``ui.livepanel``) and live map
(``ui.livemap``) poll the run they show here every 2 s, while it trains, instead of rerunning the page: a feed is
answered only once a page of this server offered it (``offer_feed``; the last ``KEEP_FEEDS``), by the function it
gave, with the query's parameters.

app.py hands ``ROUTES`` to ``st.App``; this module imports nothing heavy (no torch), as app.py's first lines must
not.
"""

from __future__ import annotations

import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple
from urllib.parse import urlsplit

import numpy as np
import streamlit as st
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

ROUTE = "/api/items"
FEED_ROUTE = "/api/live"
MOST_ROWS = 64
KEEP = 8
KEEP_FEEDS = 16
HEADER = struct.Struct("<4I")
_ROWS = re.compile(rf"\d{{1,10}}(?:,\d{{1,10}}){{0,{MOST_ROWS - 1}}}")


class Offer(NamedTuple):
    n: int  # the map's rows
    pictures: Callable[[np.ndarray], np.ndarray]  # rows -> their items' pixels, uint8 (k, C, H, W)


class Answer(NamedTuple):
    status: int
    body: bytes | str  # a sentence where status is not 200
    media_type: str = "application/json"
    headers: dict | None = None


_offers: OrderedDict[str, Offer] = OrderedDict()
_feeds: OrderedDict[str, Callable[[Mapping[str, str]], Answer]] = OrderedDict()
_lock = threading.Lock()


def offer(map_id: str, n: int, pictures: Callable[[np.ndarray], np.ndarray]) -> str:
    """Answer requests for the pictures of map ``map_id``'s ``n`` rows with ``pictures(rows)`` (uint8, (k, C, H,
    W)) from now on; the path the browser asks. The map offered longest ago goes past ``KEEP`` maps."""
    with _lock:
        _offers[map_id] = Offer(int(n), pictures)
        _offers.move_to_end(map_id)
        while len(_offers) > KEEP:
            _offers.popitem(last=False)
    return ROUTE


def offer_feed(feed_id: str, answer: Callable[[Mapping[str, str]], Answer]) -> str:
    """Answer ``GET FEED_ROUTE?id=<feed_id>&...`` with ``answer(the query's parameters)`` from now on; the URL the
    browser asks. The feed offered longest ago goes past ``KEEP_FEEDS``."""
    with _lock:
        _feeds[feed_id] = answer
        _feeds.move_to_end(feed_id)
        while len(_feeds) > KEEP_FEEDS:
            _feeds.popitem(last=False)
    return f"{FEED_ROUTE}?id={feed_id}"


def feed(params: Mapping[str, str]) -> Answer:
    """The answer to a request of a feed (its query's parameters, ``id`` naming the feed)."""
    with _lock:
        answer = _feeds.get(params.get("id") or "")
    if answer is None:
        return Answer(404, "No live feed of that name is open on a page of this server: reload the page.")
    try:
        return answer(params)
    except Exception as e:  # noqa: BLE001 - the page polling shows a sentence, never a traceback
        return Answer(500, f"The run could not be read ({type(e).__name__}): {e}")


def items(map_id: str | None, rows: str | None) -> tuple[int, bytes | str]:
    """The answer to a request for map ``map_id``'s ``rows`` (as the query spells them): (200, the bytes) or (an
    error status, a sentence)."""
    with _lock:
        found = _offers.get(map_id or "")
    if found is None:
        return 404, "No map of that name is open on a page of this server: reload the page."
    if not rows or not _ROWS.fullmatch(rows):
        return 400, f"rows must be 1 to {MOST_ROWS} row numbers separated by commas."
    asked = np.array([int(r) for r in rows.split(",")], dtype=np.int64)
    if asked.max() >= found.n:
        return 400, f"This map has {found.n:,} rows (0 to {found.n - 1:,})."
    try:
        pixels = np.ascontiguousarray(found.pictures(asked), dtype=np.uint8)
    except (OSError, ValueError, RuntimeError, MemoryError) as e:  # the data moved or failed under the page
        return 500, f"The items could not be read: {e}"
    if pixels.ndim != 4 or len(pixels) != len(asked):
        return 500, f"The items' pixels have the shape {pixels.shape}, not (rows, C, H, W)."
    return 200, HEADER.pack(*pixels.shape) + pixels.tobytes()


def host_allowed(host: str | None, allowed: Sequence[str]) -> bool:
    """Whether a request's Host header names a host of ``allowed`` (``server.allowedHosts``: names, ``*.domain``,
    ``*``; none: any), as Streamlit's websocket checks it: a web page whose domain re-points its DNS at this machine
    (DNS rebinding) cannot read the items either."""
    if not allowed:
        return True
    try:
        parsed = urlsplit(f"//{host or ''}")
        name, _ = parsed.hostname, parsed.port  # .port checks the port is a number
    except ValueError:
        return False
    if not name or parsed.username or parsed.password or parsed.path or parsed.query or parsed.fragment:
        return False
    name = name.lower().rstrip(".")
    for pattern in (str(a).strip().lower().rstrip(".") for a in allowed):
        if pattern == "*" or name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return True
    return False


def _foreign(request: Request) -> Response | None:
    if host_allowed(request.headers.get("host"), st.get_option("server.allowedHosts") or []):
        return None
    return PlainTextResponse("This server answers its own host names only.", status_code=403)


def _answer(request: Request) -> Response:
    if refused := _foreign(request):
        return refused
    status, body = items(request.query_params.get("map"), request.query_params.get("rows"))
    if status != 200:
        return PlainTextResponse(str(body), status_code=status)
    return Response(body, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})


def _answer_feed(request: Request) -> Response:
    if refused := _foreign(request):
        return refused
    answer = feed(request.query_params)
    if answer.status not in (200, 204):
        return PlainTextResponse(str(answer.body), status_code=answer.status)
    body = answer.body if answer.status == 200 else b""
    return Response(body, status_code=answer.status, media_type=answer.media_type,
                    headers={"Cache-Control": "no-store", **(answer.headers or {})})  # fmt: skip


ROUTES = [Route(ROUTE, _answer, methods=["GET"]), Route(FEED_ROUTE, _answer_feed, methods=["GET"])]
