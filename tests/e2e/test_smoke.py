"""The app opens in a real browser, shows the selected run, and moves between pages."""

from conftest import E2E_RUN, selected_run, shot, wait_idle


def test_home_opens_and_pages_switch_keeping_the_run(page, app_url):
    page.goto(app_url)
    wait_idle(page)
    page.get_by_role("heading", name="Latent Explorer").wait_for()
    assert selected_run(page) == E2E_RUN
    shot(page, "home")
    page.get_by_role("link", name="Runs").first.click()
    wait_idle(page)
    assert page.url.endswith("/runs")
    assert selected_run(page) == E2E_RUN
