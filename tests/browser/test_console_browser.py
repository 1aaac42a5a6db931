"""The operator's console in a real (headless) Chromium, at a support desk's screen size.

The shop is the console tests' (``tests/console/conftest.py``): the Binance Pay sandbox, a
``Payments`` facade with an SQLite ledger whose clock the test moves, the callback app where
the sandbox delivers its signed webhooks, and the console on loopback. The browser is told who
it is by a cookie the test's ``authorize`` reads. Screenshots: docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from payments_core import Money, PaymentStatus
from payments_core.console import create_console_app
from payments_core.serving import BackgroundServer
from tests.console.conftest import REFUND_STEPS, Desk, open_desk

from .conftest import chromium
from .test_checkout_browser import assert_self_contained, text_of, wait_until

DESK_WIDTH, DESK_HEIGHT = 1280, 1000


@pytest.fixture(scope="module")
def desktop() -> Iterator[Any]:
    """A headless Chromium with a support desk's window, closed after the module's tests."""
    with chromium(DESK_WIDTH, DESK_HEIGHT) as driver:
        yield driver


@pytest.fixture
def desk(tmp_path: Path, desktop: Any) -> Iterator[Desk]:
    with open_desk(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", page_size=20) as opened:
        desktop.delete_all_cookies()
        desktop.get(f"{opened.console.base_url}/missing")  # the cookie needs the origin first
        desktop.add_cookie({"name": "test-operator", "value": "alice"})
        yield opened


def open_page(browser: Any, desk: Desk, path: str) -> None:
    browser.get(f"{desk.console.base_url}{path}")


def screenshot(browser: Any, folder: Path, name: str) -> None:
    path = folder / f"console-{name}.png"
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(DESK_WIDTH, min(max(height + 140, 600), 2400))
    assert browser.save_screenshot(str(path))
    browser.set_window_size(DESK_WIDTH, DESK_HEIGHT)
    assert path.read_bytes().startswith(b"\x89PNG")


def a_busy_week(desk: Desk) -> None:
    """A week of bookings: paid most days, one stuck, one refund waiting, one odd callback."""
    prices = ["1.00", "1.00", "2.50", "1.00", "5.00", "1.00", "3.00"]
    for day, price in enumerate(prices):
        desk.paid(f"lc-week-{day}-a", price)
        if day % 2:
            desk.paid(f"lc-week-{day}-b", "1.00")
        desk.clock.advance(days=1)
    desk.order("lc-stuck")
    desk.clock.advance(minutes=40)
    desk.order("lc-just-booked")
    desk.waiting_refund("lc-week-4-a", "console-waiting", "2.00", "double booking")
    desk.stranger_paid("404404404", "not-ours")


def test_the_overview_shows_the_ledger_at_a_glance(
    desktop: Any, desk: Desk, screenshots: Path
) -> None:
    from selenium.webdriver.common.by import By

    a_busy_week(desk)
    open_page(desktop, desk, "/")
    assert text_of(desktop, "flagged-count").startswith("1\nflagged events")
    assert text_of(desktop, "stuck-count").startswith("1\norders not final over 15 min")
    assert text_of(desktop, "pending-refunds-count").startswith("1\nrefunds pending")
    chart = desktop.find_element(By.CSS_SELECTOR, "#chart-USD svg")
    assert chart.is_displayed()
    assert len(chart.find_elements(By.TAG_NAME, "rect")) == 7
    assert text_of(desktop, "chart-USD").startswith("17.50 USD from 10 order(s)")
    assert_self_contained(desktop, str(desk.console.base_url))
    screenshot(desktop, screenshots, "overview")


def test_the_order_list_filters_by_status(desktop: Any, desk: Desk, screenshots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    a_busy_week(desk)
    open_page(desktop, desk, "/orders")
    Select(desktop.find_element(By.ID, "filter-status")).select_by_value("pending")
    desktop.find_element(By.ID, "filter").click()
    wait_until(desktop, lambda b: "status=pending" in b.current_url)
    rows = desktop.find_elements(By.CSS_SELECTOR, "#orders tbody tr")
    assert [row.find_element(By.CSS_SELECTOR, "a.id").text for row in rows] == [
        "lc-just-booked",
        "lc-stuck",
    ]
    screenshot(desktop, screenshots, "orders")


def test_an_orders_timeline_after_pay_duplicate_forged_and_partial_refund(
    desktop: Any, desk: Desk, screenshots: Path
) -> None:
    from selenium.webdriver.common.by import By

    order, _ = desk.eventful_order("lc-timeline")
    open_page(desktop, desk, "/order?provider=binance&reference=lc-timeline")
    assert text_of(desktop, "status") == "partially_refunded"
    assert text_of(desktop, "provider-order-id") == order.provider_order_id
    titles = [
        element.text
        for element in desktop.find_elements(By.CSS_SELECTOR, "#timeline .title")
        if element.text != "Announced to the application"
    ]
    # One paid callback: the duplicate and the forgery left nothing behind.
    assert titles[:2] == ["Order created", "Callback received: paid"]
    assert titles[2:] in REFUND_STEPS
    assert "reason: late cancellation" in text_of(desktop, "timeline")
    assert_self_contained(desktop, str(desk.console.base_url))
    screenshot(desktop, screenshots, "order")


def test_a_refund_through_the_form_double_submitted_refunds_once(
    desktop: Any, desk: Desk, screenshots: Path
) -> None:
    from selenium.webdriver.common.by import By

    desk.paid("lc-form")
    open_page(desktop, desk, "/order?provider=binance&reference=lc-form")
    amount = desktop.find_element(By.ID, "refund-amount")
    amount.clear()
    amount.send_keys("0.25")
    desktop.find_element(By.ID, "refund-reason").send_keys("the call was cut short")
    desktop.find_element(By.ID, "refund").click()
    wait_until(desktop, lambda b: b.find_elements(By.ID, "confirm"))
    assert "Give back 0.25 USD of lc-form at binance" in text_of(desktop, "what")
    screenshot(desktop, screenshots, "confirm")
    # The same confirmation, submitted from a second tab as a double click would.
    fields = desktop.execute_script(
        "return Array.from(document.querySelectorAll('#confirm-form input'))"
        ".map(i => [i.name, i.value])"
    )
    first_tab = desktop.current_window_handle
    desktop.switch_to.new_window("tab")
    open_page(desktop, desk, "/orders")
    desktop.execute_script(
        "const form = document.createElement('form');"
        "form.method = 'post'; form.action = 'actions/refund';"
        "for (const [name, value] of arguments[0]) {"
        "  const input = document.createElement('input');"
        "  input.type = 'hidden'; input.name = name; input.value = value; form.append(input); }"
        "document.body.append(form); form.submit();",
        fields,
    )
    wait_until(desktop, lambda b: b.find_elements(By.ID, "outcome"))
    second = text_of(desktop, "outcome")
    desktop.close()
    desktop.switch_to.window(first_tab)
    desktop.find_element(By.ID, "confirm").click()
    wait_until(desktop, lambda b: b.find_elements(By.ID, "outcome"))
    first = text_of(desktop, "outcome")
    assert first == second
    assert first.endswith("of 0.25 USD is succeeded (reason: the call was cut short)")
    screenshot(desktop, screenshots, "refunded")
    refunds = desk.payments.refunds("lc-form", provider="binance")
    assert [r.amount for r in refunds] == [Money("0.25", "USD")]
    assert len(desk.sandbox.sandbox.refunds) == 1
    assert desk.status("lc-form") is PaymentStatus.PARTIALLY_REFUNDED


def test_without_authorization_the_console_shows_nothing(
    desktop: Any, desk: Desk, screenshots: Path
) -> None:
    desk.paid("lc-private")
    with BackgroundServer(create_console_app(desk.payments), lifespan="off") as server:
        desktop.get(f"{server.url}/order?provider=binance&reference=lc-private")
        assert "not allowed to see this console" in text_of(desktop, "refused")
        assert "lc-private" not in desktop.page_source
        screenshot(desktop, screenshots, "refused")
