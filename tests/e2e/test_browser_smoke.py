"""The app opens in a real browser, shows the selected run, and moves between pages."""

from browser import E2E_RUN, selected_run, shot, wait_idle


def test_home_opens_and_pages_switch_keeping_the_run(page, app_url):
    page.goto(app_url)
    wait_idle(page)
    page.get_by_role("heading", name="Latent Explorer").wait_for()
    assert selected_run(page) == E2E_RUN
    shot(page, "home")
    page.get_by_role("link", name="Runs").first.click()
    page.wait_for_url("**/runs")
    wait_idle(page)
    assert selected_run(page) == E2E_RUN


def test_a_deep_link_opens_the_page_inside_the_app(page, app_url):
    """A bookmarked page URL runs through app.py: navigation and the shared run picker are there."""
    page.goto(f"{app_url}/decode")
    wait_idle(page)
    page.get_by_role("heading", name="Decode").first.wait_for()
    assert selected_run(page) == E2E_RUN
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Explore" in nav and "app" not in nav.split()
