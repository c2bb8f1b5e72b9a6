"""The HTML report in a real browser: headless Chromium (Debian's package) through
Playwright opens the file with the network blocked and checks that every chart rendered."""

from __future__ import annotations

import shutil

import pytest

from supervision.research import from_files, run_backtest
from supervision.research.outputs import write_report
from supervision.research.timeframes import TimeRange
from tests.supervision.research.data import write_candles

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH: apt-get install -y --no-install-recommends chromium "
                    "(the project's .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def test_the_report_opens_offline_and_every_chart_renders(browser, tmp_path):
    """Equity, drawdown and both pairs' price charts have a drawn size and drawn lines;
    the page asks for nothing but itself."""
    from supervision.config import build_config

    btc = write_candles(tmp_path / "btc.csv", 2000, seed=3)
    eth = write_candles(tmp_path / "eth.csv", 2000, seed=4, price=50.0)
    data = from_files([("BTC/USDT", str(btc)), ("ETH/USDT", str(eth))], TimeRange())
    run = run_backtest(build_config({}, {"pairs": "BTC/USDT,ETH/USDT"}), data)
    assert run.recording.trades
    write_report(run, tmp_path / "report")
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.route("http*://**", lambda route: route.abort())
    page.goto((tmp_path / "report" / "report.html").as_uri())
    charts = page.eval_on_selector_all("figure.chart", """figures => figures.map(f => {
        const svg = f.querySelector('svg');
        const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
        const lines = svg ? [...svg.querySelectorAll('path')].filter(p => {
            const b = p.getBBox(); return b.width > 50 && b.height > 5; }).length : 0;
        return {id: f.id, width: box.width, height: box.height, lines};
    })""")
    assert [c["id"] for c in charts] == ["chart-equity", "chart-drawdown",
                                         "chart-price-BTC_USDT", "chart-price-ETH_USDT"]
    for chart in charts:
        assert chart["width"] > 600, chart
        assert chart["height"] > 100, chart
        assert chart["lines"] >= 1, chart
    markers = page.eval_on_selector_all("#chart-price-BTC_USDT svg use", "u => u.length")
    assert markers >= 2 * len([t for t in run.recording.trades if t.pair == "BTC/USDT"])
    assert "buy and hold" in page.inner_text("body")
    assert all(url.startswith("file://") for url in requested), requested
    page.close()
