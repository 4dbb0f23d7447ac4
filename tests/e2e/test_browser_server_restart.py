"""The Streamlit server dies while a run trains: the training carries on, and a new server finds it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time

from browser import ARTIFACTS, free_port, selected_run, shot, start_server, wait_healthy
from test_browser_train import open_train, set_field

from vae.runs import folder as rf
from vae.runs import jobs

RUN = "e2e-restart"


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # no goodbye: as if the machine's terminal had been closed
    proc.wait(timeout=10)


def test_training_survives_a_server_restart(browser, runs_dir):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = start_server(runs_dir, port)
    run = runs_dir / RUN
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server)
        open_train(page, url)
        try:
            set_field(page, "Epochs", "2000")
        except Exception:
            shot(page, "FAILED-restart-form")
            raise
        set_field(page, "Run name", RUN)
        page.get_by_role("button", name="Start training").click()
        page.get_by_text(re.compile(r"Training · \d+ of 2000 epochs done")).wait_for()
        pid = rf.read_status(run)["pid"]

        stop_server(server)
        step = rf.read_status(run)["step"]
        time.sleep(1.0)
        assert jobs.pid_alive(pid)  # the training process lives in its own session
        assert rf.read_status(run)["step"] > step  # ... and keeps training with no server

        port = free_port()
        server = start_server(runs_dir, port)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server)
        page.goto("about:blank")
        page.goto(url)
        page.get_by_role("heading", name="Latent Explorer").wait_for()
        picker = page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Run")
        assert picker.input_value() == RUN  # the newest run is picked
        page.get_by_role("link", name="Train", exact=True).first.click()
        page.get_by_role("heading", name=f"Run: {RUN}").wait_for()
        page.get_by_text(re.compile(r"Training · \d+ of 2000 epochs done")).wait_for()
        assert selected_run(page) == RUN
        assert rf.read_status(run)["pid"] == pid  # the same process, found again from its files
        shot(page, "restart-found-again")
    finally:
        page.close()
        if server.poll() is None:
            stop_server(server)
        if run.exists():  # leave the shared runs folder as it was (other tests expect their run picked)
            jobs.stop(run, wait=20)
            shutil.rmtree(run)
