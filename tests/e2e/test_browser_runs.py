"""The Runs page in a real browser: the table of runs, two runs' curves compared, an evaluation."""

from __future__ import annotations

import shutil

import pytest
from browser import E2E_RUN, choose, selected_run, shot, wait_idle

SECOND = "e2e-compare"


@pytest.fixture
def second_run(runs_dir, small_run):
    """A second finished run (another latent size) to compare with; removed afterwards."""
    run = small_run(runs_dir, SECOND, latent_dim=2, hidden=(32,), epochs=8)
    yield run
    for path in (run, runs_dir / f"{SECOND}-2"):  # the run and its uploaded copy
        shutil.rmtree(path, ignore_errors=True)


def table_rows(page) -> dict[str, list[str]]:
    """The run table's cells by run name, read from the grid's accessible table."""
    rows = page.locator('[data-testid="stDataFrame"] tbody tr[role="row"]')
    out = {}
    for i in range(rows.count()):
        cells = [c.strip() for c in rows.nth(i).locator("td").all_text_contents()]
        out[cells[0]] = cells
    return out


def chart_traces(page, index: int = 0) -> list[str]:
    """Names of the traces of the ``index``-th Plotly chart on the page."""
    return page.evaluate("i => (document.querySelectorAll('.js-plotly-plot')[i]?.data || []).map(t => t.name)", index)


def test_runs_table_compare_two_runs_and_evaluate(page, app_url, runs_dir, second_run, tmp_path):
    page.goto(app_url)
    wait_idle(page)
    page.get_by_role("link", name="Runs", exact=True).first.click()
    page.get_by_role("heading", name="Runs", exact=True).wait_for()
    wait_idle(page)

    # the table lists both runs with their state and model
    page.locator('[data-testid="stDataFrame"] td').first.wait_for(state="attached")
    rows = table_rows(page)
    assert {E2E_RUN, SECOND} <= set(rows)
    assert rows[E2E_RUN][2:8] == ["finished", "", "digits", "VAE", "MLP 64", "4"]  # state, alarm, data, family,
    assert rows[SECOND][2:8] == ["finished", "", "digits", "VAE", "MLP 32", "2"]  # model, latent (after the tags)
    shot(page, "runs-table")

    # a click on a row selects its run everywhere (the sidebar's picker too); then back to the newest
    assert selected_run(page) == SECOND
    grid = page.locator('[data-testid="stDataFrame"]').bounding_box()
    for name in (E2E_RUN, SECOND):
        row = list(rows).index(name)
        page.mouse.click(grid["x"] + 18, grid["y"] + 35 + 35 * row + 17)  # the row's selection box
        page.wait_for_function(
            'n => document.querySelector(\'[data-testid="stSidebar"] input[aria-label="Run"]\')?.value === n'
            " || [...document.querySelectorAll('[data-testid=\"stSidebar\"] input')].some(i => i.value === n)",
            arg=name,
        )
        wait_idle(page)
        assert selected_run(page) == name
        page.get_by_role("heading", name=f"Evaluate {name}").wait_for()

    # compare: the two runs' test ELBO curves in one figure, then another curve
    page.get_by_role("heading", name="Compare curves").scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('.js-plotly-plot')?.data?.length === 2")
    assert sorted(chart_traces(page)) == sorted([E2E_RUN, SECOND])
    compare = page.locator('[data-testid="stMultiSelect"]')
    compare.get_by_role("button", name=f"Remove {SECOND}").click()  # one run left
    page.wait_for_function("() => document.querySelector('.js-plotly-plot')?.data?.length === 1")
    assert chart_traces(page) == [E2E_RUN]
    choose(page, compare.get_by_role("combobox"), SECOND)
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.querySelector('.js-plotly-plot')?.data?.length === 2")
    choose(page, page.locator('[data-testid="stSelectbox"]').filter(has_text="Curve").get_by_role("combobox"),
           "test KL")  # fmt: skip
    page.get_by_text("test KL per epoch").wait_for()
    assert sorted(chart_traces(page)) == sorted([E2E_RUN, SECOND])
    wait_idle(page)
    shot(page, "runs-compare")

    # evaluate the selected run (the newest: the second one) with a small K
    page.get_by_role("heading", name=f"Evaluate {SECOND}").scroll_into_view_if_needed()
    page.get_by_role("button", name="Evaluate").click()
    page.locator('[data-testid="stMetric"]').filter(has_text="Active units").wait_for(timeout=60_000)
    wait_idle(page)
    metrics = page.locator('[data-testid="stMetric"]')
    assert metrics.count() == 4
    assert "of 2" in metrics.filter(has_text="Active units").inner_text()
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length === 3")  # + KL bars, heat strip
    page.get_by_role("heading", name=f"Evaluate {SECOND}").scroll_into_view_if_needed()
    shot(page, "runs-evaluated")

    # download the run as a .zip, upload it again: a new run with identical weights
    page.get_by_role("heading", name=f"Manage {SECOND}").scroll_into_view_if_needed()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download .zip").click()
    assert download.value.suggested_filename == f"{SECOND}.zip"
    saved = tmp_path / f"{SECOND}.zip"
    download.value.save_as(saved)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(saved))
    page.get_by_text(f"Imported {SECOND}.zip as {SECOND}-2; it is now the selected run.").wait_for()
    wait_idle(page)
    copy = runs_dir / f"{SECOND}-2"
    assert (copy / "model.safetensors").read_bytes() == (second_run / "model.safetensors").read_bytes()
    assert selected_run(page) == f"{SECOND}-2"

    # deleting asks first; cancel keeps the run
    page.get_by_role("button", name="Delete…").click()
    page.get_by_text(f"Delete {SECOND}-2 and all its files? This cannot be undone.").wait_for()
    page.get_by_role("heading", name=f"Manage {SECOND}-2").scroll_into_view_if_needed()
    shot(page, "runs-manage")
    page.get_by_role("button", name="Cancel").click()
    wait_idle(page)
    assert copy.is_dir()
