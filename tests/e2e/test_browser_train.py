"""Train a tiny model from the Train page in a real browser and watch it live until it finishes."""

from __future__ import annotations

import re
import shutil
import time

import pytest
from browser import selected_run, shot, wait_idle
from PIL import Image
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from vae.runs import folder as rf
from vae.runs import jobs

RUN = "e2e-train"
EPOCHS = 30


def progress_text(page) -> str:
    """The live panel's progress-bar text ("" while there is none)."""
    texts = page.locator("[data-live-panel] .llp-progress-text").all_inner_texts()  # no wait: it may vanish
    return texts[0].strip() if texts else ""


def live_panel_in_page(panel) -> dict:
    """The live panel (``ui.livepanel``) as the browser shows it: the rows it holds, and how many pixels of each
    of its canvases (the loss and ELBO curves, the KL heat strip) are painted in a colour (not grey, not blank)."""
    return panel.evaluate(
        """(e) => { const painted = (c) => { const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 0; i < px.length; i += 4) {
                    const spread = Math.max(px[i], px[i + 1], px[i + 2]) - Math.min(px[i], px[i + 1], px[i + 2]);
                    if (px[i + 3] > 0 && spread > 40) n++;
                }
                return n; };
            return { steps: Number(e.dataset.steps), epochs: Number(e.dataset.epochs),
                     painted: [...e.querySelectorAll('canvas')].map(painted) }; }"""
    )


HISTORY_PLOT = """[...document.querySelectorAll('.js-plotly-plot')]
    .find((g) => g._transitionData && g._transitionData._frames && g._transitionData._frames.length)"""
FRAMES_JS = f"() => {{ const gd = {HISTORY_PLOT}; return gd ? gd._transitionData._frames.length : 0; }}"


def history_in_page(page) -> dict:
    """The Train page's latent-history chart as the browser has it: its number of frames and the first items'
    positions in the frame it shows."""
    return page.evaluate(
        f"""() => {{ const gd = {HISTORY_PLOT};
            return gd ? {{ frames: gd._transitionData._frames.length, last: Array.from(gd._fullData[0].x).slice(0, 5) }}
                      : {{ frames: 0, last: null }}; }}"""
    )


def live_map_in_page(live) -> dict:
    """The live latent map (``ui.livemap``) as the browser shows it: its frames, the first label's first items'
    x in the frame it shows, and how many of its canvas's pixels are painted in a colour (not grey, not blank)."""
    return live.evaluate(
        """(e) => { const s = (e.parentElement || e.parentNode).__liveMap;
            const c = s.canvas, px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let painted = 0;
            for (let i = 0; i < px.length; i += 4) {
                const spread = Math.max(px[i], px[i + 1], px[i + 2]) - Math.min(px[i], px[i + 1], px[i + 2]);
                if (px[i + 3] > 0 && spread > 40) painted++;
            }
            const first = s.members[0].slice(0, 5).map((i) => s.pos[2 * i]); // as the replay's first trace has them
            return { frames: s.data.layouts.length, last: first, painted }; }"""
    )


def open_train(page, app_url: str) -> None:
    """Home, then the Train link: the way a person arrives (and how app.py's navigation runs the page)."""
    page.goto(app_url)
    wait_idle(page)
    page.get_by_role("link", name="Train", exact=True).first.click()
    page.get_by_role("heading", name="Train", exact=True).wait_for()
    wait_idle(page)
    new_run = page.get_by_role("button", name="New run", exact=True)
    epochs = page.get_by_label("Epochs", exact=True)
    new_run.or_(epochs).first.wait_for()  # one of them, once the page has drawn (idle can come before the draw)
    if new_run.count():  # runs exist: the form opens on request
        for attempt in range(3):  # a click landing as the page reruns for its URL's run can be lost: click again
            new_run.click()
            try:
                page.get_by_role("heading", name="New run", exact=True).wait_for(timeout=15_000)
                break
            except PlaywrightTimeout:
                if attempt == 2:
                    raise
                wait_idle(page)
        wait_idle(page)
        try:
            epochs.wait_for(timeout=60_000)  # the model part, once the data loaded
        except Exception:
            shot(page, "FAILED-open-train-form")
            raise


def set_field(page, label: str, value: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Enter")
    wait_idle(page)
    expect(field).to_have_value(value)  # no later rerun put an older value back


@pytest.fixture
def cleanup(runs_dir):
    """Stop and delete the run this test makes, so the shared e2e runs folder stays as it was."""
    yield
    run = runs_dir / RUN
    if run.exists():
        jobs.stop(run, wait=20)
        shutil.rmtree(run)


def test_train_a_tiny_digits_model_and_watch_it(page, app_url, runs_dir, cleanup):
    open_train(page, app_url)
    page.get_by_text("1,437 training and 360 test images of 1×8×8, 10 classes.").wait_for()
    set_field(page, "Epochs", str(EPOCHS))
    # batches of 16 (90 steps an epoch): the run must outlast the panel's next redraw after Resume, also when the
    # busy page let it reach epoch 19 of 30 before Pause took (CI: it finished before the curves could gain one)
    set_field(page, "Batch size", "16")
    set_field(page, "Run name", RUN)
    shot(page, "train-form")

    assert page.get_by_label("Run name", exact=True).input_value() == RUN  # the form holds what was typed
    page.get_by_role("button", name="Start training").click()
    page.get_by_role("heading", name=f"Run: {RUN}").wait_for(timeout=60_000)  # loads data, starts a process
    assert rf.is_run(runs_dir / RUN)
    assert selected_run(page) == RUN  # the shared picker follows the new run

    # the live panel: its progress text changes while the model trains
    page.get_by_text(re.compile(r"Training · \d+ of 30 epochs done · step [\d,]+ of [\d,]+ · on the CPU")).wait_for(
        timeout=45_000
    )
    seen = [progress_text(page)]
    page.get_by_role("button", name="Pause").click()
    page.get_by_text(re.compile(r"Paused · \d+ of 30 epochs done")).wait_for()
    seen.append(progress_text(page))
    assert jobs.refresh_status(runs_dir / RUN)["state"] == "paused"
    page.get_by_text("Samples decoded from the prior").wait_for()  # the run's pictures are shown
    page.get_by_text("Test items (top row) and their reconstructions").wait_for()
    # loss and ELBO curves, KL per dimension and epoch, and the latent map: drawn by the browser, no Plotly
    panel = page.locator("[data-live-panel]")
    paused_panel = live_panel_in_page(panel)
    assert paused_panel["steps"] >= 1 and paused_panel["epochs"] >= 1, paused_panel
    loss, elbo, _, heat = paused_panel["painted"]  # the KL parts' canvas is β-TCVAE's: hidden, blank
    assert loss > 200 and elbo > 50 and heat > 200, paused_panel  # coloured curves, markers and heat cells
    expect(page.locator(".js-plotly-plot")).to_have_count(0)
    page.get_by_role("heading", name="Latent map as it trains").wait_for()
    live = page.locator("[data-live-map]")
    expect(live).to_have_attribute("data-shown", re.compile(r"\d+"))
    shot(page, "train-paused")
    paused_map = live_map_in_page(live)
    assert 1 <= paused_map["frames"] <= EPOCHS  # the map so far: before training and each epoch done
    assert paused_map["painted"] > 300  # its points are on the canvas (coloured pixels)

    page.get_by_role("button", name="Resume").click()
    deadline, live_seen, epochs_seen = time.time() + 45, [], []  # the live map's (frames, frame aimed at) as it trains
    while time.time() < deadline and not page.get_by_text("Training finished").count():
        text = progress_text(page)
        if text and text != seen[-1]:
            seen.append(text)
        try:
            live_seen.append(live.evaluate("(e) => [Number(e.dataset.frames), Number(e.dataset.target)]", timeout=500))
            epochs_seen.append(panel.evaluate("(e) => Number(e.dataset.epochs)", timeout=500))
        except PlaywrightError:  # the page drew the finished run's replay instead
            pass
        page.wait_for_timeout(200)
    # the map gained frames while it trained and set off towards them (a glide may not end before the run does, and
    # a busy page ends it late); the curves gained epochs
    assert any(frames > paused_map["frames"] and target >= paused_map["frames"] for frames, target in live_seen), (
        live_seen
    )
    assert max(epochs_seen, default=0) > paused_panel["epochs"], (paused_panel, epochs_seen)
    page.get_by_text(f"Training finished: {EPOCHS} epochs").wait_for()
    wait_idle(page)
    assert len(set(seen)) >= 2, seen  # the text changed while training (running, then paused, ...)
    assert any(t.startswith("Paused") for t in seen)
    assert jobs.refresh_status(runs_dir / RUN)["state"] == "finished"
    page.get_by_role("link", name="Explore its latent space").wait_for()
    shot(page, "train-finished")
    # the live map changed while it trained: more frames, and the items it shows moved
    page.wait_for_function(f"() => ({FRAMES_JS})() === {EPOCHS + 1}")  # the finished page's chart, drawn
    finished_map = history_in_page(page)
    assert finished_map["frames"] == EPOCHS + 1 > paused_map["frames"], (paused_map["frames"], finished_map["frames"])
    assert len(finished_map["last"]) == 5 and finished_map["last"] != paused_map["last"], (paused_map, finished_map)
    with page.expect_download() as download:  # the animation: a GIF with a frame per recorded frame
        page.get_by_role("button", name="Download animation (GIF)").click()
    gif = Image.open(download.value.path())
    assert gif.format == "GIF" and gif.is_animated and gif.n_frames == EPOCHS + 1

    # the run belongs to the files, not the tab: a fresh visit finds it, finished
    page.goto("about:blank")
    open_train(page, app_url)
    assert selected_run(page) == RUN
    page.get_by_role("heading", name=f"Run: {RUN}").wait_for()
    page.get_by_text(f"Training finished: {EPOCHS} epochs").wait_for()
