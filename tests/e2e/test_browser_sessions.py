"""Eight browser sessions on the Decode page at once, while a small model trains in the background.

Each session is its own browser context (its own cookies, so its own Streamlit session) on the
Decode page with server-side decoding. Each moves a different slider to a different value, several
times, all sessions in the same moment; afterwards each must show its own slider values and its own
decoded image (the pixels the model gives for its own point, fetched from the page) and no
exception. Slider release -> new image latency over all sessions is printed and written to
artifacts/e2e/sessions-latency.txt, never asserted.
"""

from __future__ import annotations

import io
import re
import shutil
import statistics
import time

import numpy as np
import pytest
from browser import ARTIFACTS, E2E_RUN, selected_run, shot, wait_idle
from PIL import Image
from playwright.sync_api import expect

from vae.runs import folder as rf
from vae.runs import jobs

SESSIONS = 8
ROUNDS = 3  # the first press jumps to an end of the slider, the next ones step back from it
RUN = "e2e-sessions-training"
DECODED = 'img[alt="decoded image"]'
SLIDER_BOXES = '[data-testid="stMain"] [class*="st-key-decode_dim_"] [data-testid="stSlider"]'
SLIDERS = '[data-testid="stMain"] [class*="st-key-decode_dim_"] input[type="range"]'  # the latent dimensions' sliders
BROWSER_TOGGLE = "Decode in the browser while dragging"
STEP, LIMIT = 0.05, 3.0

# Browser-side probe (the page's performance.now() clock): when each key went down, and when a new
# decoded image finished loading.
PROBE = """() => {
  const lat = (window.__lat = {keys: [], loads: []});
  const sel = 'img[alt="decoded image"]';
  let last = document.querySelector(sel)?.src;
  document.addEventListener('keydown', () => lat.keys.push(performance.now()), true);
  new MutationObserver(() => {
    const img = document.querySelector(sel);
    if (!img || img.src === last) return;
    last = img.src;
    const loaded = () => lat.loads.push(performance.now());
    if (img.complete && img.naturalWidth) loaded(); else img.addEventListener('load', loaded, {once: true});
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}"""


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


@pytest.fixture
def training(runs_dir):
    """Where the background training goes; stopped and deleted afterwards."""
    run = runs_dir / RUN
    yield run
    if run.exists():
        jobs.stop(run, wait=20)
        shutil.rmtree(run, ignore_errors=True)


def start_training(run) -> None:
    """A small MLP on digits, trained by a background process through the jobs API (one torch thread)."""
    from vae.config import DataConfig, TrainConfig
    from vae.data import load_dataset
    from vae.runs.folder import new_run

    cfg = DataConfig(name="digits")
    train_cfg = TrainConfig(epochs=5000, batch_size=64, lr=3e-3, threads=1)
    new_run(run.parent, run.name, load_dataset(cfg), cfg, latent_dim=2, hidden=(64,), train_cfg=train_cfg)
    jobs.start(run)


def open_decode(page, app_url: str) -> None:
    """Start loading the Decode page (a deep link runs app.py and its run picker too)."""
    page.set_default_timeout(45_000)
    page.goto(f"{app_url}/decode")


def use_server_sliders(page) -> None:
    """Switch in-browser decoding off, so every slider release is decoded by the server."""
    wait_idle(page)
    assert selected_run(page) == E2E_RUN
    toggle = page.get_by_role("switch", name=BROWSER_TOGGLE)
    if toggle.count() and toggle.is_checked():
        page.get_by_text(BROWSER_TOGGLE).click()


def dims_and_values(page) -> tuple[list[int], list[float]]:
    """The latent dimension each slider moves (from its label "z2 · KL 1.23") and the sliders' values."""
    labels = page.locator(SLIDER_BOXES).all_inner_texts()
    dims = [int(re.search(r"z(\d+) · KL", text).group(1)) for text in labels]
    values = page.locator(SLIDERS).evaluate_all("s => s.map(e => Number(e.value))")
    return dims, values


def shown_pixels(page, scale_to: int) -> np.ndarray:
    """The decoded image this page shows, fetched through the page's own context, back at the model's size."""
    src = page.locator(DECODED).evaluate("i => i.src")
    img = np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("L"))
    step = img.shape[0] // scale_to
    return img[step // 2 :: step, step // 2 :: step]  # centre of each enlarged pixel


def expected_pixels(model, z: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        item = model.decode(torch.as_tensor(z[None], dtype=torch.float32)).numpy()[0, 0]  # (H, W)
    return (np.clip(item, 0, 1) * 255 + 0.5).astype(np.uint8)


def test_eight_sessions_decode_their_own_points_while_a_model_trains(browser, app_url, runs_dir, training):
    contexts = [browser.new_context(viewport={"width": 1200, "height": 900}) for _ in range(SESSIONS)]
    pages = [c.new_page() for c in contexts]
    t0 = time.perf_counter()
    try:
        for page in pages:  # all eight load at once
            open_decode(page, app_url)
        for page in pages:  # each session has picked its run before the training run exists (newest is picked)
            page.get_by_role("heading", name="Decode").first.wait_for()
            expect(page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Run")).to_have_value(E2E_RUN)
        start_training(training)
        for page in pages:
            use_server_sliders(page)
        for page in pages:
            page.locator(DECODED).wait_for()
            wait_idle(page)
            page.locator(SLIDERS).nth(3).wait_for()  # slider widgets load their code lazily: grey boxes until then
            assert page.locator(SLIDERS).count() == 4
            page.evaluate(PROBE)
        loaded = time.perf_counter() - t0
        deadline = time.time() + 30
        while jobs.refresh_status(training).get("step", 0) == 0 and time.time() < deadline:
            time.sleep(0.2)
        step_before = jobs.refresh_status(training).get("step", 0)
        assert step_before > 0, rf.read_log(training)

        # session i moves slider i % 4: sessions 0-3 up from +3 downwards, sessions 4-7 from -3 upwards
        thumbs = [page.locator(SLIDERS).nth(i % 4) for i, page in enumerate(pages)]
        for r in range(ROUNDS):
            for i, (page, thumb) in enumerate(zip(pages, thumbs, strict=True)):
                up = i < SESSIONS // 2
                thumb.focus()
                page.keyboard.press(("End" if up else "Home") if r == 0 else ("ArrowLeft" if up else "ArrowRight"))
            for page in pages:
                page.wait_for_function(f"window.__lat.loads.length >= {r + 1}", timeout=30_000)

        model = rf.load_model(runs_dir / E2E_RUN)
        side = model.cfg.input_shape[-1]
        end = LIMIT - STEP * (ROUNDS - 1)
        latencies = []
        for i, page in enumerate(pages):
            wait_idle(page)
            assert page.locator('[data-testid="stException"]').count() == 0, f"session {i}"
            dims, values = dims_and_values(page)
            want = [0.0] * 4
            want[i % 4] = end if i < SESSIONS // 2 else -end
            assert values == pytest.approx(want), f"session {i} sees {values}, expected {want}"
            z = np.zeros(model.cfg.latent_dim, np.float32)
            z[dims] = values
            shown, expected = shown_pixels(page, side), expected_pixels(model, z)
            assert np.abs(shown.astype(int) - expected).max() <= 1, f"session {i} shows another point's image"
            lat = page.evaluate("window.__lat")
            latencies += [next(t for t in lat["loads"] if t >= k) - k for k in lat["keys"][-ROUNDS:]]
        status = jobs.refresh_status(training)
        assert status["state"] == "running" and status.get("step", 0) > step_before, status
        shot(pages[0], "sessions-0")
        shot(pages[-1], f"sessions-{SESSIONS - 1}")
    except Exception:
        for i, page in enumerate(pages):
            try:
                shot(page, f"FAILED-sessions-{i}")
            except Exception as e:  # the page may be gone; the test's own error is what matters
                print(f"no screenshot of session {i}: {e}")
        raise
    finally:
        for c in contexts:
            c.close()
    report = (
        f"Decode page, {SESSIONS} sessions at once while {RUN} trains, slider release -> new image "
        f"({len(latencies)} releases): p50 {statistics.median(latencies):.0f} ms, "
        f"p95 {percentile(latencies, 0.95):.0f} ms, max {max(latencies):.0f} ms; "
        f"eight pages loaded in {loaded:.1f} s"
    )
    print("\n" + report)
    (ARTIFACTS / "sessions-latency.txt").write_text(report + "\n")
    assert rf.is_run(training)
