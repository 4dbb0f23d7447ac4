"""Helpers for the real-browser tests: screenshots and the run picker, over ``harness.serving``.

``harness.serving`` owns the app server, Chromium's settings and the wait for an idle app (the benchmarks and the
tour use them too); they are re-exported here so that test modules import everything with
``from browser import ...``. Fixtures live in conftest.py.
"""

from __future__ import annotations

from pathlib import Path

from harness.serving import (  # noqa: F401 - re-exported for the test modules
    ARTIFACTS,
    CHROMIUM,
    ROOT,
    choose,
    chromium,
    display_toggle,
    free_port,
    serving,
    start_server,
    wait_healthy,
    wait_idle,
)

E2E_RUN = "e2e-digits"


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def selected_run(page) -> str:
    """The run shown in the sidebar's run picker (its combobox value)."""
    return page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Run").input_value()
