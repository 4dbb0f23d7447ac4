"""One way to open the app in Streamlit's AppTest, for every test that drives a page (tests/ is on sys.path)."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


def page_path(page: str) -> str:
    """``"runs"`` or ``"app_pages/runs.py"`` → the path ``AppTest.switch_page`` takes."""
    return page if page.endswith(".py") else f"app_pages/{page}.py"


def open_app(
    page: str | None = None,
    *,
    state: dict | None = None,
    query: dict | None = None,
    timeout: float = 120,
    check: bool = True,
) -> AppTest:
    """The app (app.py, run once, so the sidebar picks a run), then ``page`` if given. ``state`` is set in the
    session before switching; ``query`` is the URL's query parameters from the start. With ``check``, a page
    that raised fails the test here."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    for key, value in (state or {}).items():
        at.session_state[key] = value
    if page:
        at.switch_page(page_path(page)).run()
    if check:
        assert not at.exception, at.exception
    return at


def shown(text: str) -> str:
    """What a person reads of Markdown that ``ui.text.plain`` escaped (its backslashes gone)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


def page_components(at: AppTest) -> list:
    """The page's custom components (bidi), without the frame's own history keeper (``ui.history``, on every page)."""
    return [el for el in at.get("bidi_component") if not el.proto.id.endswith("history_entries")]
