"""The payer's side: the checkout page (amount, QR, buttons) and pressing Pay or Cancel."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import httpx

from payments_binance import protocol

from .conftest import Receiver, Running


class _Page(HTMLParser):
    """Collects the forms (action → button ids), svg elements and the amount text."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, list[str]] = {}
        self.svgs = 0
        self.amount = ""
        self._form: str | None = None
        self._in_amount = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and attributes.get("method") == "post":
            self._form = attributes["action"] or ""
            self.forms[self._form] = []
        elif tag == "button" and self._form is not None:
            self.forms[self._form].append(attributes.get("id") or "")
        elif tag == "svg":
            self.svgs += 1
        elif tag == "p" and attributes.get("id") == "amount":
            self._in_amount = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "p":
            self._in_amount = False

    def handle_data(self, data: str) -> None:
        if self._in_amount:
            self.amount += data


def load(http: httpx.Client, url: str) -> tuple[_Page, str]:
    response = http.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = _Page()
    page.feed(response.text)
    return page, response.text


def test_checkout_page_shows_amount_qr_and_buttons_and_pay_marks_paid(
    running: Running, receiver: Receiver
) -> None:
    order = running.merchant.create("SHOP1", orderAmount="12.34", webhookUrl=receiver.url)
    assert order["checkoutUrl"].startswith(running.server.base_url)
    assert order["qrContent"] == order["checkoutUrl"]
    page, html = load(running.merchant.http, order["checkoutUrl"])
    assert page.amount.strip() == "12.34 USDT"
    assert page.svgs == 1
    assert "<path" in html
    pay_url = f"{running.server.base_url}/sandbox/orders/{order['prepayId']}/pay"
    cancel_url = f"{running.server.base_url}/sandbox/orders/{order['prepayId']}/cancel"
    assert page.forms == {pay_url: ["pay"], cancel_url: ["cancel"]}
    assert running.merchant.query(prepayId=order["prepayId"])["status"] == "PENDING"

    # Press "Pay" as a browser would: a form post, answered with a redirect to the page.
    pressed = running.merchant.http.post(pay_url, data={"action": "pay"})
    assert pressed.status_code == 303
    assert pressed.headers["location"] == order["checkoutUrl"]
    queried = running.merchant.query(merchantTradeNo="SHOP1")
    assert queried["status"] == "PAID"
    assert queried["orderAmount"] == "12.34"
    running.sandbox.wait_for_webhooks_sync()
    [hook] = receiver.wait_for(1)
    assert json.loads(hook.body)["bizStatus"] == "PAY_SUCCESS"
    after, _ = load(running.merchant.http, order["checkoutUrl"])
    assert after.forms == {}


def test_cancel_button_closes_order_with_pay_closed(running: Running, receiver: Receiver) -> None:
    order = running.merchant.create("SHOP2", webhookUrl=receiver.url)
    page, _ = load(running.merchant.http, order["checkoutUrl"])
    cancel_url = next(url for url, buttons in page.forms.items() if buttons == ["cancel"])
    response = running.merchant.http.post(cancel_url)
    assert response.json() == {"prepayId": order["prepayId"], "status": "CANCELED"}
    running.sandbox.wait_for_webhooks_sync()
    [hook] = receiver.wait_for(1)
    assert json.loads(hook.body)["bizStatus"] == "PAY_CLOSED"
    assert running.merchant.http.post(cancel_url).status_code == 409


def test_payer_errors_and_other_links(running: Running) -> None:
    http = running.merchant.http
    assert http.post("/sandbox/orders/123/pay").status_code == 404
    assert http.get("/sandbox/checkout/nope").status_code == 404
    order = running.merchant.create("SHOP3")
    assert http.post(f"/sandbox/orders/{order['prepayId']}/pay").json()["status"] == "PAID"
    assert http.post(f"/sandbox/orders/{order['prepayId']}/pay").status_code == 409
    image = http.get(order["qrcodeLink"])
    assert image.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in image.content
    redirect = http.get(order["universalUrl"])
    assert redirect.status_code == 307
    assert redirect.headers["location"] == order["checkoutUrl"]
    assert order["deeplink"].startswith("bnc://app.binance.com/payment/secpay?tempToken=")


def test_stats_endpoint(running: Running) -> None:
    running.merchant.create("STAT1")
    running.merchant.post(protocol.PATH_CREATE_ORDER_V3, {"merchantTradeNo": "STAT1"})
    stats = running.merchant.http.get("/sandbox/stats").json()
    assert stats["orders_created"] == 1
    assert stats["requests"] == 2
    assert stats["errors"] == {"400100": 1}
    assert stats["orders_by_status"] == {"INITIAL": 1}
    assert stats["faults_injected"] == {}


def test_checkout_page_is_for_a_phone_and_loads_nothing_from_elsewhere(running: Running) -> None:
    order = running.merchant.create(
        "SHOP4", orderAmount=None, currency=None, fiatAmount="1.00", fiatCurrency="USD"
    )
    page, html = load(running.merchant.http, order["checkoutUrl"])
    assert page.amount.strip() == "1.00 USD"
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert 'id="countdown" data-expires="' in html
    # Every link is the page's own forms or an inline data: URL; no src= fetches anything.
    assert " src=" not in html
    assert re.findall(r'href="([^"]*)"', html) == ["data:,"]


def test_unknown_checkout_page_says_so_with_404(running: Running) -> None:
    response = running.merchant.http.get("/sandbox/checkout/0123456789abcdef")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Unknown checkout" in response.text
