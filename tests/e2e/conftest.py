"""Real-browser fixtures: a `streamlit run app.py` server on 127.0.0.1 and Debian's Chromium via Playwright.

The server gets its own runs folder holding one small model trained on digits ("e2e-digits"), so
every page has something to show. Screenshots go to artifacts/e2e/ (look at them).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import ARTIFACTS, CHROMIUM, E2E_RUN, chromium, serving


@pytest.fixture(scope="session")
def runs_dir(trained_runs, tmp_path_factory) -> Path:
    """A runs folder with one finished model on digits, named E2E_RUN (a copy of ``trained_runs``)."""
    import shutil

    root = tmp_path_factory.mktemp("e2e-runs")
    shutil.copytree(trained_runs / "digits-small", root / E2E_RUN)
    return root


@pytest.fixture(scope="session")
def app_url(runs_dir) -> str:
    """Base URL of a live app server (started once per test session, ended by its pid)."""
    from vae.runs import jobs

    with serving(runs_dir) as url:
        yield url
    for run in jobs.active_runs(runs_dir):  # background trainings run in their own sessions: stop them too
        jobs.stop(run, wait=10)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (apt-get install chromium)")
    with chromium() as b:
        yield b


@pytest.fixture(scope="session", autouse=True)
def waits_look_every_50_ms():
    """Every ``page.wait_for_function`` here looks every 50 ms unless it says otherwise. Playwright's default, every
    animation frame, keeps the waiting page drawing 60 frames a second: 1.6 s of Chromium's CPU per 10 s waited on
    Explore (0.05 s at 50 ms); two browser test files took 186 CPU-s so and 164 at 50 ms. The states waited for
    here last (a map drawn, a counter passed), so 50 ms between looks misses none."""
    from playwright.sync_api import Page

    waits = Page.wait_for_function

    def wait_for_function(self, expression, *, arg=None, timeout=None, polling=None):
        return waits(self, expression, arg=arg, timeout=timeout, polling=50 if polling is None else polling)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Page, "wait_for_function", wait_for_function)
        yield


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed browser test, save what the page showed (artifacts/e2e/FAILED-<test>.png)."""
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and page is not None:
        try:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"FAILED-{item.name}.png"), full_page=True)
        except Exception as e:  # the page may be gone; the test's own error is what matters
            print(f"no failure screenshot: {e}")
