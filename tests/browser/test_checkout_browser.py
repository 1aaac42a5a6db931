"""The sandbox's checkout page in a real (headless) Chromium, as a person on a phone sees it.

The flow is the demo's: the provider's own sandbox (``open_sandbox``), a ``Payments`` facade with
an SQLite ledger file, and the callback app on loopback, where the sandbox delivers its signed
webhooks. The browser opens the checkout page, sees the booking, the price and the QR code,
presses Pay, and the ledger turns PAID through the real callback. Every state the page can be
in is screenshotted (see docs/sandbox.md).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from payments_binance.sandbox_bridge import open_sandbox
from payments_core import Money, Order, OrderRequest, Payments, PaymentStatus, open_ledger
from payments_core.asgi import create_callback_app
from payments_core.serving import BackgroundServer

from .conftest import PHONE_WIDTH

BOOKING = "LeadsCalendar: 30-minute intro call"
#: Bound on every wait for the browser or the ledger (seconds); nothing here sleeps blindly.
WAIT_S = 20.0


@attrs.frozen
class Shop:
    """The application side: its facade (with the ledger), its callback URL and the sandbox."""

    payments: Payments
    callback_url: str
    sandbox: Any

    def order(self, reference: str, **options: Any) -> Order:
        request = OrderRequest(
            reference=reference,
            price=Money("1.00", "USD"),
            callback_url=self.callback_url,
            description=BOOKING,
            **options,
        )
        return self.payments.create_order(request, provider="binance")

    def open_checkout(self, browser: Any, reference: str, **options: Any) -> Order:
        """Create the order for ``reference`` and open its checkout page in ``browser``."""
        order = self.order(reference, **options)
        assert order.checkout_url is not None
        browser.get(order.checkout_url)
        return order

    def ledger_status(self, reference: str) -> PaymentStatus | None:
        assert self.payments.ledger is not None
        found = self.payments.ledger.get_order("binance", reference)
        return None if found is None else found.status

    def wait_for_ledger(self, reference: str, status: PaymentStatus) -> None:
        """Poll the ledger (bounded) until the order has ``status``."""
        deadline = time.monotonic() + WAIT_S
        while self.ledger_status(reference) is not status:
            assert time.monotonic() < deadline, f"{reference} is {self.ledger_status(reference)}"
            time.sleep(0.05)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    with (
        open_sandbox() as sandbox,
        Payments(
            ledger=open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}"),
            provider_settings={"binance": sandbox.settings},
        ) as payments,
        BackgroundServer(create_callback_app(payments), lifespan="off") as app,
    ):
        yield Shop(payments, f"{app.url}/callbacks/binance", sandbox)


def wait_until(browser: Any, condition: Callable[[Any], Any]) -> Any:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    # While the page is replaced (after a click), its old elements vanish under the condition.
    wait = WebDriverWait(
        browser, WAIT_S, poll_frequency=0.1, ignored_exceptions=(WebDriverException,)
    )
    return wait.until(condition)


def text_of(browser: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    text: str = browser.find_element(By.ID, element_id).text
    return text


def assert_fits_a_phone(browser: Any) -> None:
    """Nothing is wider than the phone's screen, and the text is big enough to read."""
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH
    smallest = browser.execute_script(
        "return Math.min(...Array.from(document.querySelectorAll('p, h1, button'))"
        ".filter(e => e.offsetParent !== null)"
        ".map(e => parseFloat(getComputedStyle(e).fontSize)))"
    )
    assert smallest >= 12


def assert_self_contained(browser: Any, base_url: str) -> None:
    """The page loaded nothing but itself: styles, QR code and script are inline."""
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert loaded == []
    assert browser.current_url.startswith(base_url)


def assert_final(browser: Any, status: str, state: str) -> None:
    """The page shows the order's final ``status`` and ``state`` and offers nothing to press."""
    from selenium.webdriver.common.by import By

    assert text_of(browser, "status") == status
    assert text_of(browser, "state") == state
    assert browser.find_elements(By.TAG_NAME, "button") == []


def screenshot_on_a_phone(browser: Any, folder: Path, name: str) -> Path:
    """Check the page fits a phone, then keep its screenshot as ``checkout-<name>.png``."""
    assert_fits_a_phone(browser)
    return screenshot(browser, folder, name)


def screenshot(browser: Any, folder: Path, name: str) -> Path:
    path = folder / f"checkout-{name}.png"
    assert browser.save_screenshot(str(path))
    assert path.read_bytes().startswith(b"\x89PNG")
    return path


def test_a_person_pays_on_a_phone_and_the_ledger_turns_paid(
    browser: Any, shop: Shop, screenshots: Path
) -> None:
    from selenium.webdriver.common.by import By

    shop.open_checkout(browser, "lc-browser-paid")
    assert text_of(browser, "goods") == BOOKING
    assert text_of(browser, "amount") == "1.00 USD"
    assert text_of(browser, "settlement").startswith("charged as 1.00")
    qr = browser.find_element(By.CSS_SELECTOR, "#qr svg")
    assert qr.is_displayed()
    assert qr.size["width"] >= 150
    first = text_of(browser, "countdown")
    assert re.fullmatch(r"Expires in (\d+:)?\d{1,2}:\d\d", first), first
    wait_until(browser, lambda b: text_of(b, "countdown") != first)  # it counts down
    assert_fits_a_phone(browser)
    assert_self_contained(browser, shop.sandbox.base_url)
    screenshot(browser, screenshots, "open")
    assert shop.ledger_status("lc-browser-paid") is PaymentStatus.PENDING

    browser.find_element(By.ID, "pay").click()
    wait_until(browser, lambda b: text_of(b, "status") == "PAID")
    assert text_of(browser, "state").startswith("Paid")
    assert browser.find_elements(By.ID, "pay") == []
    shop.wait_for_ledger("lc-browser-paid", PaymentStatus.PAID)
    screenshot_on_a_phone(browser, screenshots, "paid")


def test_cancel_closes_the_order_and_the_ledger_hears_of_it(
    browser: Any, shop: Shop, screenshots: Path
) -> None:
    from selenium.webdriver.common.by import By

    shop.open_checkout(browser, "lc-browser-cancel")
    browser.find_element(By.ID, "cancel").click()
    wait_until(browser, lambda b: text_of(b, "status") == "CANCELED")
    assert_final(browser, "CANCELED", "This order was closed; it can no longer be paid.")
    shop.wait_for_ledger("lc-browser-cancel", PaymentStatus.CLOSED)
    screenshot(browser, screenshots, "closed")


def test_the_countdown_reaches_zero_and_the_page_then_shows_the_order_expired(
    browser: Any, shop: Shop, screenshots: Path
) -> None:
    from selenium.webdriver.common.by import By

    soon = datetime.now(UTC) + timedelta(seconds=3)
    shop.open_checkout(browser, "lc-browser-expired", expires_at=soon)
    wait_until(browser, lambda b: "expired" in text_of(b, "countdown"))
    assert not browser.find_element(By.ID, "pay").is_enabled()
    browser.refresh()
    assert_final(browser, "EXPIRED", "This order expired; it can no longer be paid.")
    screenshot_on_a_phone(browser, screenshots, "expired")


def test_a_refunded_order_says_so_and_offers_nothing(
    browser: Any, shop: Shop, screenshots: Path
) -> None:

    order = shop.order("lc-browser-refunded")
    assert order.checkout_url is not None
    sandbox = shop.sandbox.sandbox
    paid = sandbox.pay(order.provider_order_id)
    shop.wait_for_ledger("lc-browser-refunded", PaymentStatus.PAID)
    refund = {
        "refundRequestId": "lc-browser-refund-1",
        "prepayId": order.provider_order_id,
        "refundAmount": format(paid.request.amount, "f"),  # all of it (the sandbox settles at once)
    }
    sandbox.merchant.refund(sandbox.config.api_key, refund)
    browser.get(order.checkout_url)
    assert_final(browser, "FULL_REFUNDED", "Paid and refunded in full.")
    assert text_of(browser, "amount") == "1.00 USD"
    screenshot_on_a_phone(browser, screenshots, "refunded")


def test_an_unknown_checkout_link_says_so_with_404(
    browser: Any, shop: Shop, screenshots: Path
) -> None:
    url = f"{shop.sandbox.base_url}/sandbox/checkout/0123456789abcdef"
    assert httpx.get(url).status_code == 404
    browser.get(url)
    assert text_of(browser, "unknown") == "Unknown checkout"
    assert "no order behind this link" in browser.page_source
    screenshot_on_a_phone(browser, screenshots, "unknown")
