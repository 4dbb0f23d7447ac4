"""The app served for a browser: `streamlit run app.py` on 127.0.0.1, and Debian's Chromium to drive it.

One home for what the browser tests (tests/e2e/), the benchmarks (bench/) and the tour (docs/make_tour.py)
share. Nothing here imports streamlit (the server is a child process) or playwright (imported inside the
functions that launch a browser), so importing this module starts nothing.

    with serving(runs) as url, chromium() as browser:
        page = browser.new_page()
        page.goto(url)
        wait_idle(page)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "e2e"  # server logs (streamlit-<port>.log); the browser tests' screenshots too
CHROMIUM = "/usr/bin/chromium"  # Debian's package: never `playwright install`
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# True once Streamlit has finished the current run: the app says its script is not running (nor asked to rerun), and
# its status widget ("Running...") is gone. The widget alone shows only once a run has lasted a moment: a page left
# while its run still wrote the URL (Back pressed then) had that write land on the page gone back to.
IDLE_JS = """() => { const app = document.querySelector('[data-testid="stApp"]');
  return !!app && !['running', 'rerunRequested'].includes(app.dataset.testScriptState)
    && !document.querySelector('[data-testid="stStatusWidget"]'); }"""
APP = '[data-testid="stApp"]'


# ---------------------------------------------------------------- the server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(runs: Path, port: int, extra_args: Sequence[str] = ()) -> subprocess.Popen:
    """`streamlit run app.py` on 127.0.0.1:``port`` over the runs folder ``runs``, in a session of its own.

    Headless, no usage statistics, no file watcher; ``extra_args`` are more `streamlit run` options. Its
    output goes to ``ARTIFACTS/streamlit-<port>.log``. End it with ``stop_server``.
    """
    env = {**os.environ, "LATENT_EXPLORER_RUNS": str(runs), "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        *extra_args,
    ]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / f"streamlit-{port}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait until the server at ``url`` answers ``/_stcore/health``; raise if ``proc`` exits or time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}; see {ARTIFACTS}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"streamlit did not answer at {url} within {timeout} s")


def stop_server(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """End a server ``start_server`` started: SIGTERM to the session it leads (its pid), SIGKILL after ``timeout``."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the process group start_server made: this server and nothing else
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_app(runs: Path, extra_args: Sequence[str] = ()) -> tuple[str, subprocess.Popen]:
    """``start_server`` on a free port, without waiting: (its URL, its process). Then ``wait_healthy``."""
    port = free_port()
    return f"http://127.0.0.1:{port}", start_server(runs, port, extra_args)


@contextlib.contextmanager
def serving(runs: Path, extra_args: Sequence[str] = (), timeout: float = 60.0) -> Iterator[str]:
    """A live app over ``runs`` for the ``with`` block: yields its URL, then ends the server by its pid."""
    url, proc = start_app(runs, extra_args)
    try:
        wait_healthy(url, proc, timeout)
        yield url
    finally:
        stop_server(proc)


# ---------------------------------------------------------------- the browser


def missing_browser() -> list[str]:
    """What a Playwright run on Debian's Chromium lacks here, as install hints (empty: nothing)."""
    missing = [] if Path(CHROMIUM).exists() else [f"{CHROMIUM} (apt-get install chromium)"]
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install playwright; never `playwright install`)")
    return missing


def launch_options() -> dict:
    """Keyword arguments for Playwright's ``chromium.launch`` (sync or async API): Debian's Chromium, headless."""
    return {"executable_path": CHROMIUM, "args": list(CHROMIUM_ARGS)}


@contextlib.contextmanager
def chromium() -> Iterator:
    """Debian's Chromium through Playwright's sync API for the ``with`` block (a ``Browser``); closed after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_options())
        try:
            yield browser
        finally:
            browser.close()


@contextlib.asynccontextmanager
async def async_chromium() -> AsyncIterator:
    """``chromium`` for Playwright's async API: ``async with async_chromium() as browser``."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(**launch_options())
        try:
            yield browser
        finally:
            await browser.close()


# ---------------------------------------------------------------- the served page (Playwright sync API)


def wait_idle(page, timeout: float = 30_000) -> None:
    """Wait until Streamlit has finished the current run (``IDLE_JS``), looking every 50 ms: Playwright's default,
    every animation frame, keeps the page drawing 60 frames a second while it waits (1.6 s of Chromium's CPU per
    10 s waited on Explore, against 0.05 s)."""
    page.wait_for_selector(APP, timeout=timeout)
    page.wait_for_function(IDLE_JS, timeout=timeout, polling=50)


def choose(page, box, option: str, tries: int = 3) -> None:
    """Open the select box ``box`` (a locator of its combobox) and click ``option`` in its list. A rerun that lands
    between the click and the list (the app answering an earlier change) closes the list again: open it anew."""
    for attempt in range(tries):
        wait_idle(page)
        box.click()
        choice = page.get_by_role("option", name=option, exact=True)
        try:
            choice.wait_for(timeout=5_000)
        except Exception:  # Playwright's TimeoutError: the list closed under the click
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            continue
        choice.click()
        return


def pick_run(page, run: str) -> None:
    """Choose ``run`` in the sidebar's run picker and wait for the rerun it causes."""
    choose(page, page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Run"), run)
    wait_idle(page)


def display_toggle(page, label: str) -> None:
    """Flip one of Explore's display toggles (they sit in its "Display" popover above the map), with Playwright's
    sync API, and close the popover again."""
    page.get_by_role("button", name="Display").click()
    page.get_by_text(label, exact=True).click()
    page.keyboard.press("Escape")
