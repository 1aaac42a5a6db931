"""What the console must never do: run markup, act without its token or for a reader, leak."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import httpx

from payments_core import Money, Order, PaymentStatus
from payments_core.cli.console import console_with_login
from payments_core.console import OneTimeToken
from payments_core.serving import BackgroundServer

from .conftest import Desk
from .pages import hidden_fields, text_of

MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def every_page(desk: Desk, operator: str = "alice") -> list[str]:
    """Every page the console serves for the ledger as it stands, links followed once."""
    seen: set[str] = set()
    pages = []
    queue = ["/", "/orders", "/flagged"]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        page = desk.get(path, operator)
        assert page.status_code == 200, (path, page.text)
        pages.append(page.text)
        for link in re.findall(r'href="(/[^"]*)"', page.text):
            queue.append(link.replace("&amp;", "&"))
    return pages


def test_a_reference_and_a_reason_with_markup_are_shown_as_text(desk: Desk) -> None:
    ledger = desk.payments.ledger
    assert ledger is not None
    ledger.record_order(  # a row the application never validated, as an old import might hold
        Order(
            provider="binance",
            reference=MARKUP,
            provider_order_id="7777",
            provider_reference="m-7777",
            status=PaymentStatus.PENDING,
            amount=Money("1.00", "USD"),
            checkout_url="javascript:alert(1)",
        )
    )
    desk.paid("lc-markup")
    form = hidden_fields(
        desk.get("/order", provider="binance", reference="lc-markup").text, "refund-form"
    )
    form.update(amount="0.10", reason=MARKUP)
    asked = desk.post("/actions/refund", form)
    done = desk.post("/actions/refund", hidden_fields(asked.text, "confirm-form"))
    assert done.status_code == 200
    pages = [
        *every_page(desk),
        asked.text,
        done.text,
        desk.get("/order", provider="binance", reference=MARKUP).text,
        desk.get("/orders", reference=MARKUP).text,
    ]
    for page in pages:
        assert "<script>" not in page
        assert "<img" not in page
        assert 'href="javascript:' not in page
    order = desk.get("/order", provider="binance", reference=MARKUP).text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in order
    assert text_of(order, "reference") == MARKUP  # shown, as text
    refunded = desk.get("/order", provider="binance", reference="lc-markup").text
    assert MARKUP in text_of(refunded, "refunds")
    assert MARKUP in text_of(done.text, "outcome")


def test_an_action_without_its_csrf_token_changes_nothing(desk: Desk) -> None:
    desk.order("lc-csrf")
    page = desk.get("/order", provider="binance", reference="lc-csrf").text
    form = {**hidden_fields(page, "close-form"), "confirm": "yes"}
    for csrf in ("", "0" * 64, form["csrf"][::-1]):
        refused = desk.post("/actions/close", {**form, "csrf": csrf})
        assert refused.status_code == 403
        assert "token is missing or wrong: nothing was changed" in text_of(refused.text, "refused")
    # A page of another site can make the browser post, but without the console's cookie.
    with httpx.Client(base_url=str(desk.console.base_url)) as elsewhere:
        forged = elsewhere.post("/actions/close", data=form, headers={"x-test-operator": "alice"})
    assert forged.status_code == 403
    assert desk.status("lc-csrf") is PaymentStatus.PENDING
    at_provider = desk.payments.query_order("lc-csrf", provider="binance")
    assert at_provider is not None
    assert at_provider.status is PaymentStatus.PENDING


def test_a_read_only_operator_sees_but_changes_nothing(desk: Desk) -> None:
    desk.paid("lc-reader")
    page = desk.get("/order", "bob", provider="binance", reference="lc-reader")
    assert page.status_code == 200
    assert text_of(page.text, "operator").startswith("bob@support (read only)")
    assert 'id="refund-form"' not in page.text
    alices = hidden_fields(
        desk.get("/order", provider="binance", reference="lc-reader").text, "refund-form"
    )
    fields = {**alices, "amount": "1.00", "reason": "bob tries", "confirm": "yes"}
    for action in ("refund", "reconcile", "close", "announce"):
        refused = desk.post(f"/actions/{action}", fields, operator="bob")
        assert refused.status_code == 403
        assert "bob@support may look but not act" in text_of(refused.text, "refused")
    assert desk.payments.refunds("lc-reader", provider="binance") == []
    assert desk.status("lc-reader") is PaymentStatus.PAID


def test_no_secret_appears_in_any_page(desk: Desk) -> None:
    desk.paid("lc-secrets")
    desk.order("lc-secrets-open")
    secrets = {desk.sandbox.settings["api_secret"], desk.sandbox.settings["api_key"]}
    form = hidden_fields(
        desk.get("/order", provider="binance", reference="lc-secrets").text, "refund-form"
    )
    asked = desk.post("/actions/refund", {**form, "reason": "checking"})
    done = desk.post("/actions/refund", hidden_fields(asked.text, "confirm-form"))
    pages = [*every_page(desk), *every_page(desk, "bob"), asked.text, done.text]
    for page in pages:
        for secret in secrets:
            assert secret not in page
    headers = desk.get("/").headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"


def test_the_one_time_token_opens_one_session_once(desk: Desk) -> None:
    token = OneTimeToken(operator="carol (payments console)")
    assert token.token is not None
    login = token.login_path(token.token)
    with BackgroundServer(console_with_login(desk.payments, token), lifespan="off") as server:
        with httpx.Client(base_url=server.url) as stranger:
            assert stranger.get("/").status_code == 403
            assert stranger.get("/login?token=guess").status_code == 403
        with httpx.Client(base_url=server.url, follow_redirects=True) as browser:
            opened = browser.get(login)
            assert opened.status_code == 200
            assert text_of(opened.text, "operator").startswith("carol (payments console)")
            assert browser.get("/orders").status_code == 200
        with httpx.Client(base_url=server.url) as second:
            again = second.get(login)
            assert again.status_code == 403  # used once: worthless now
            assert second.get("/").status_code == 403
    assert dict(parse_qsl(urlsplit(login).query))["token"] not in opened.text
