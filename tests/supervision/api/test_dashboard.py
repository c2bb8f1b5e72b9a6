"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright.

Playwright's own browser download is never used: the system's ``chromium`` is launched by
path. Where it is absent the tests skip and say how to get it (CI installs it in .ci/run, so
there they always run). Screenshots land in var/test-artefacts/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import eventually
from tests.supervision.api.serving import HOLD, TOKEN, serving

ARTEFACTS = Path(__file__).resolve().parents[3] / "var" / "test-artefacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on this machine: apt-get install -y --no-install-recommends chromium "
           "(Playwright drives the system's browser; never run 'playwright install')")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def open_dashboard(browser, url: str, *, width: int = 1200, height: int = 900):
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.fill("#token", TOKEN)
    page.click("#login-form button")
    page.wait_for_selector("#pairs tbody tr[data-pair='BTC/USDT']", timeout=15_000)
    return page, errors


def test_the_table_fills_a_fill_appears_and_pausing_from_the_page_pauses(
        tmp_path, monkeypatch, browser):
    """Both pairs show up with prices, fills arrive in the list, Pause pauses the pair in the
    system (and the row says so); a screenshot is kept."""
    with serving(tmp_path, monkeypatch) as (system, _, _):
        page, errors = open_dashboard(browser, system.api_url)
        rows = page.locator("#pairs tbody tr")
        assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.pair)")) == [
            "BTC/USDT", "ETH/USDT"]
        page.wait_for_selector("#fills li:nth-child(3)", timeout=30_000)
        eth = page.locator("#pairs tr[data-pair='ETH/USDT']")
        eth.locator("[data-action=pause]").click()
        eventually(lambda: system.pair_status("ETH/USDT").state == "paused", 10, "paused")
        expect(eth.locator("td").nth(1)).to_have_text("paused", timeout=10_000)
        assert page.locator("#link").get_attribute("class") == "dot on"
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / "dashboard.png"), full_page=True)
        page.close()
    assert not errors
    assert (ARTEFACTS / "dashboard.png").stat().st_size > 10_000


def test_a_destructive_control_asks_first_and_does_nothing_when_cancelled(
        tmp_path, monkeypatch, browser):
    """Exit on a pair opens a confirmation: Cancel leaves the position, Confirm sells it."""
    with serving(tmp_path, monkeypatch, strategy=HOLD) as (system, _, _):
        eventually(lambda: system.status().pair("BTC/USDT").position > 0, 30, "a position")
        page, errors = open_dashboard(browser, system.api_url)
        page.click("#pairs tr[data-pair='BTC/USDT'] [data-action=pause]")
        eventually(lambda: system.pair_status("BTC/USDT").state == "paused", 10, "paused")
        exit_button = page.locator("#pairs tr[data-pair='BTC/USDT'] [data-action=exit]")
        expect(exit_button).to_be_enabled(timeout=10_000)
        exit_button.click()
        page.wait_for_selector("#confirm[open]")
        assert "BTC/USDT" in page.text_content("#confirm-text")
        page.click("#confirm button[value=cancel]")
        assert system.status().pair("BTC/USDT").position > 0
        assert not [r for r in system.audit(limit=20) if r.action == "force_exit"]
        exit_button.click()
        page.click("#confirm-ok")
        eventually(lambda: system.status().pair("BTC/USDT").position == 0, 30, "sold")
        page.close()
    assert not errors


def test_on_a_phone_the_page_fits_and_a_wrong_token_is_refused(tmp_path, monkeypatch, browser):
    """At 390 px wide nothing but the table scrolls sideways; a wrong token keeps the login
    form up with the refusal."""
    with serving(tmp_path, monkeypatch) as (system, _, _):
        page, errors = open_dashboard(browser, system.api_url, width=390, height=844)
        page.wait_for_selector("#chart canvas")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
        page.click("#forget")
        page.fill("#token", "x" * 20)
        page.click("#login-form button")
        expect(page.locator("#login-error")).to_contain_text("refused", timeout=10_000)
        assert page.is_hidden("#app")
        page.close()
    assert not errors
