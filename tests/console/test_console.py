"""The console's pages and actions, on SQLite and PostgreSQL, over the Binance Pay sandbox."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta

import attrs
import httpx
import pytest

from payments_core import (
    Money,
    OrderRequest,
    PaymentEvent,
    PaymentStatus,
    RefundNotice,
    RefundRequest,
    RefundStatus,
    ValidationError,
)
from payments_core.console import create_console_app
from payments_core.serving import BackgroundServer

from .conftest import REFUND_STEPS, Desk
from .pages import csrf_of, hidden_fields, text_of


def order_page(desk: Desk, reference: str, operator: str = "alice") -> str:
    page = desk.get("/order", operator, provider="binance", reference=reference)
    assert page.status_code == 200, page.text
    return page.text


def act(desk: Desk, action: str, fields: dict[str, str], operator: str = "alice") -> str:
    """Post an action, check it asks to confirm, confirm it; the result page's outcome."""
    asked = desk.post(f"/actions/{action}", fields, operator)
    assert asked.status_code == 200, asked.text
    assert 'name="confirm" value="yes"' in asked.text
    confirmed = hidden_fields(asked.text, "confirm-form")
    done = desk.post(f"/actions/{action}", confirmed, operator)
    assert done.status_code == 200, done.text
    return text_of(done.text, "outcome")


def test_a_host_application_links_to_the_pages_by_name(desk: Desk) -> None:
    """A host that mounts the console builds its links with url_path_for."""
    app = create_console_app(desk.payments)
    pages = {name: app.url_path_for(name) for name in ("overview", "orders", "order", "flagged")}
    assert pages == {"overview": "/", "orders": "/orders", "order": "/order", "flagged": "/flagged"}


def test_a_console_mounted_without_a_decision_refuses_everyone(desk: Desk) -> None:
    desk.paid("lc-refused")
    with (
        BackgroundServer(create_console_app(desk.payments), lifespan="off") as server,
        httpx.Client(base_url=server.url) as client,
    ):
        for path in ("/", "/orders", "/flagged", "/order?provider=binance&reference=lc-refused"):
            page = client.get(path)
            assert page.status_code == 403
            assert "lc-refused" not in page.text
            assert "not allowed to see this console" in text_of(page.text, "refused")
        posted = client.post(
            "/actions/refund",
            data={"provider": "binance", "reference": "lc-refused", "amount": "1.00",
                  "reason": "x", "refund_reference": "r-1", "confirm": "yes"},
        )  # fmt: skip
    assert posted.status_code == 403
    assert desk.payments.refunds("lc-refused", provider="binance") == []


def test_the_overview_counts_orders_and_charts_what_was_paid_per_day(desk: Desk) -> None:
    desk.paid("lc-day1-a", "1.00")
    desk.clock.advance(days=1)
    desk.paid("lc-day2-a", "2.50")
    desk.paid("lc-day2-b", "0.25")
    desk.order("lc-day2-open")
    page = desk.get("/").text
    counts = text_of(page, "by-status")
    assert counts == "status binance pending 1 paid 3"
    chart = text_of(page, "chart-USD")
    assert chart.startswith("3.75 USD from 3 order(s); the tallest bar is 2.75 USD")
    bars = re.findall(r"<rect [^>]*><title>([^<]*)</title>", page)
    yesterday, today = desk.clock.now.date() - timedelta(days=1), desk.clock.now.date()
    assert bars == [
        f"{yesterday}: 1.00 USD from 1 order(s)",
        f"{today}: 2.75 USD from 2 order(s)",
    ]


def test_the_overview_shows_what_needs_a_look(desk: Desk) -> None:
    ledger = desk.payments.ledger
    assert ledger is not None
    desk.order("lc-stuck")
    desk.clock.advance(minutes=20)
    desk.order("lc-fresh")
    paid = desk.paid("lc-refunding")
    desk.waiting_refund("lc-refunding", "r-waiting", "0.30", "moved the call")
    assert desk.stranger_paid("999", "nobody").flagged is not None
    mismatched = PaymentEvent(
        provider="binance",
        event_id="binance:mismatch",
        status=PaymentStatus.PAID,
        provider_order_id=paid.provider_order_id,
        provider_reference=paid.provider_reference,
        amount=Money("0.01", "USDT"),
    )
    assert ledger.apply_event(mismatched).flagged is not None
    desk.paid_unannounced("lc-unannounced", "binance:late")
    page = desk.get("/").text
    assert text_of(page, "flagged-count").startswith("2 flagged events")
    assert "unknown_order: no order in the ledger has the ids it names" in text_of(page, "flagged")
    assert text_of(page, "outbox").startswith("1 changes not yet announced")
    assert text_of(page, "stuck-count").startswith("1 orders not final over 15 min")
    assert "lc-stuck" in text_of(page, "stuck")
    assert "lc-fresh" not in text_of(page, "stuck")
    assert "r-waiting 0.30 USD moved the call" in text_of(page, "pending-refunds")
    flagged = text_of(desk.get("/flagged").text, "flagged")
    assert "amount_mismatch: its amount is not the order's" in flagged
    assert "lc-refunding" in flagged


def test_a_payment_seen_or_under_review_is_shown_waiting_filtered_and_not_closable(
    desk: Desk,
) -> None:
    ledger = desk.payments.ledger
    assert ledger is not None
    for reference, status in (
        ("lc-seen", PaymentStatus.CONFIRMING),
        ("lc-review", PaymentStatus.NEEDS_REVIEW),
    ):
        order = desk.order(reference)
        ledger.apply_event(
            PaymentEvent(
                provider="binance",
                event_id=f"binance:{reference}",
                status=status,
                provider_order_id=order.provider_order_id,
                provider_reference=order.provider_reference,
            )
        )
    desk.clock.advance(minutes=20)
    overview = desk.get("/").text
    assert text_of(overview, "stuck-count").startswith("2 orders not final over 15 min")
    assert '<span class="status confirming">confirming</span>' in overview
    assert '<span class="status needs_review">needs_review</span>' in overview
    listed = desk.get("/orders", status="confirming").text
    assert re.findall(r'class="id" href="[^"]*">([^<]+)</a>', listed) == ["lc-seen"]
    assert '<option value="needs_review"' in listed
    page = order_page(desk, "lc-seen")
    assert 'id="close-form"' not in page
    refused = desk.post("/actions/close", {"csrf": csrf_of(page), "provider": "binance",
                                           "reference": "lc-seen"})  # fmt: skip
    assert refused.status_code == 409
    assert desk.status("lc-seen") is PaymentStatus.CONFIRMING
    desk.order("lc-open")
    assert 'id="close-form"' in order_page(desk, "lc-open")  # a pending order may be closed


def test_the_order_list_filters_by_status_provider_date_and_reference(desk: Desk) -> None:
    first = desk.paid("lc-list-1")
    desk.clock.advance(days=2)
    desk.order("lc-list-2")
    desk.paid("lc-list-3")
    today = desk.clock.now.date()

    def listed(**params: str) -> list[str]:
        page = desk.get("/orders", **params)
        assert page.status_code == 200, page.text
        return re.findall(r'class="id" href="[^"]*">([^<]+)</a>', page.text)

    assert listed(status="paid") == ["lc-list-3", "lc-list-1"]
    assert listed(status="pending", provider="binance") == ["lc-list-2"]
    assert listed(provider="stripe") == []
    assert listed(since=str(today)) == ["lc-list-3", "lc-list-2"]
    assert listed(until=str(today - timedelta(days=1))) == ["lc-list-1"]
    assert listed(reference="lc-list-2") == ["lc-list-2"]
    assert listed(reference=first.provider_order_id) == ["lc-list-1"]
    assert listed(reference="lc-list-1", status="pending") == []
    refused = desk.get("/orders", since="yesterday")
    assert refused.status_code == 400
    assert "since: must be a date" in text_of(refused.text, "refused")


def test_the_order_list_pages_newest_first_without_gaps_or_repeats(desk: Desk) -> None:
    made = []
    for number in range(8):
        desk.order(f"lc-page-{number}")
        made.append(f"lc-page-{number}")
        if number % 3 == 0:  # several orders share a creation time: the tie-breakers decide
            desk.clock.advance(seconds=1)
    seen: list[str] = []
    page = desk.get("/orders")
    for _ in range(len(made)):  # bounded: a cursor that does not advance fails, not hangs
        seen.extend(re.findall(r'class="id" href="[^"]*">([^<]+)</a>', page.text))
        following = re.search(r'id="next" href="([^"]+)"', page.text)
        if following is None:
            break
        page = desk.get(following[1].replace("&amp;", "&"))
    assert sorted(seen) == sorted(made)
    assert len(seen) == len(made)
    assert seen[0] == "lc-page-7"
    bad = desk.get("/orders", after="not-a-cursor")
    assert bad.status_code == 400


def test_an_orders_timeline_after_pay_duplicate_forged_and_partial_refund(desk: Desk) -> None:
    order, refund = desk.eventful_order("lc-timeline")
    assert refund.status is RefundStatus.SUCCEEDED
    page = order_page(desk, "lc-timeline")
    assert text_of(page, "status") == "partially_refunded"
    assert text_of(page, "refunded") == "0.40 USD"
    titles = re.findall(r'<span class="title">([^<]+)</span>', page)
    # One paid callback: the duplicate and the forgery left nothing behind.
    assert titles[:3] == [
        "Order created",
        "Callback received: paid",
        "Announced to the application",
    ]
    later = [title for title in titles[3:] if title != "Announced to the application"]
    assert later in REFUND_STEPS
    timeline = text_of(page, "timeline")
    if later == REFUND_STEPS[1]:  # the answer settled the refund; the notice came after it
        assert "recorded, not applied (stale)" in timeline
    assert "applied: pending → paid" in timeline
    assert "reason: late cancellation" in timeline
    assert order.provider_order_id in timeline
    assert text_of(page, "transaction-id") in timeline  # the payer's transaction, shown
    links = text_of(page, "links")
    assert all(name in links for name in ("checkout", "QR code", "app link", "web link"))
    # What the payer paid and Binance's fee, from the callback's paymentInfo and commission.
    assert text_of(page, "paid") == f"{order.settlement.amount} {order.settlement.currency}"
    assert re.fullmatch(r"0\.0+ USDT", text_of(page, "fee"))


def test_a_refunds_answer_is_its_own_step_and_its_later_notice_is_shown_stale(desk: Desk) -> None:
    """The provider's answer to a refund is not labelled as a callback; the notice that
    follows it changes nothing and says so."""
    order = desk.paid("lc-answer")
    desk.clock.advance(minutes=5)
    asked = RefundRequest(
        reference="lc-answer", refund_reference="r-answer", amount=Money("0.40", "USD")
    )
    reserved = desk.ledger.reserve_refund("binance", asked).refund
    answer = attrs.evolve(reserved, status=RefundStatus.SUCCEEDED, provider_refund_id="rf-1")
    assert desk.ledger.settle_refund(answer, announced=True).change is not None
    notice = PaymentEvent(
        provider="binance",
        event_id="binance:refund-notice:rf-1",
        status=PaymentStatus.PARTIALLY_REFUNDED,
        provider_order_id=order.provider_order_id,
        refund=RefundNotice(
            refund_reference="r-answer",
            provider_refund_id="rf-1",
            status=RefundStatus.SUCCEEDED,
            amount=Money("0.40", "USD"),
        ),
    )
    assert not desk.ledger.apply_event(notice).applied
    page = order_page(desk, "lc-answer")
    titles = re.findall(r'<span class="title">([^<]+)</span>', page)
    steps = [title for title in titles if title != "Announced to the application"]
    assert steps == ["Order created", "Callback received: paid", *REFUND_STEPS[1]]
    assert "recorded, not applied (stale)" in text_of(page, "timeline")


def test_a_refund_through_the_form_is_confirmed_and_a_double_submit_refunds_once(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    desk.paid("lc-form-refund")
    form = hidden_fields(order_page(desk, "lc-form-refund"), "refund-form")
    assert form["refund_reference"].startswith("console-")
    form.update(amount="0.25", reason="the call was cut short")
    asked = desk.post("/actions/refund", form)
    assert "Give back 0.25 USD of lc-form-refund at binance" in text_of(asked.text, "what")
    assert desk.payments.refunds("lc-form-refund", provider="binance") == []  # not yet
    confirmed = hidden_fields(asked.text, "confirm-form")
    with caplog.at_level(logging.INFO, logger="payments_core.console"):
        first = desk.post("/actions/refund", confirmed)
        second = desk.post("/actions/refund", confirmed)  # the button pressed twice
    for done in (first, second):
        assert done.status_code == 200
        assert text_of(done.text, "outcome").startswith(
            f"refund {form['refund_reference']} of 0.25 USD is succeeded"
        )
    refunds = desk.payments.refunds("lc-form-refund", provider="binance")
    assert [(r.refund_reference, r.amount) for r in refunds] == [
        (form["refund_reference"], Money("0.25", "USD"))
    ]
    assert len(desk.sandbox.sandbox.refunds) == 1
    assert desk.status("lc-form-refund") is PaymentStatus.PARTIALLY_REFUNDED
    assert "alice@support did refund binance/lc-form-refund" in caplog.text
    fresh = hidden_fields(order_page(desk, "lc-form-refund"), "refund-form")
    assert fresh["refund_reference"] != form["refund_reference"]  # the next refund is another
    assert fresh["amount"] == "0.75"


def test_a_refund_for_more_than_remains_is_refused_before_anything_happens(desk: Desk) -> None:
    desk.paid("lc-too-much")
    form = hidden_fields(order_page(desk, "lc-too-much"), "refund-form")
    form.update(amount="1.50", reason="oops")
    asked = desk.post("/actions/refund", form)
    assert asked.status_code == 200
    done = desk.post("/actions/refund", hidden_fields(asked.text, "confirm-form"))
    assert "ValidationError" in text_of(done.text, "outcome")
    assert "exceeds what remains" in text_of(done.text, "outcome")
    assert desk.payments.refunds("lc-too-much", provider="binance") == []
    no_reason = {**form, "amount": "0.10", "reason": " "}
    refused = desk.post("/actions/refund", no_reason)
    assert refused.status_code == 400
    assert "reason: say why" in text_of(refused.text, "refused")


def test_close_reconcile_and_announce_are_confirmed_done_and_logged_with_who(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = desk.payments.ledger
    assert ledger is not None
    # Their callbacks go where nothing listens: only asking the provider finds out they were
    # closed or paid (a delivered close notice would race the console's own reconcile).
    unheard = {
        reference: desk.payments.create_order(
            OrderRequest(
                reference=reference,
                price=Money("1.00", "USD"),
                callback_url="http://127.0.0.1:9/callbacks/binance",
            ),
            provider="binance",
        )
        for reference in ("lc-close", "lc-reconcile")
    }
    desk.sandbox.pay(unheard["lc-reconcile"].provider_order_id)
    fields = {"csrf": csrf_of(order_page(desk, "lc-close")), "provider": "binance"}
    with caplog.at_level(logging.INFO, logger="payments_core.console"):
        closed = act(desk, "close", {**fields, "reference": "lc-close"})
        assert closed == "binance says closed: pending → closed"
        assert desk.status("lc-close") is PaymentStatus.CLOSED
        assert desk.status("lc-reconcile") is PaymentStatus.PENDING
        reconciled = act(desk, "reconcile", {**fields, "reference": "lc-reconcile"})
        assert reconciled == "binance says paid: pending → paid"
        assert desk.status("lc-reconcile") is PaymentStatus.PAID
        desk.paid_unannounced("lc-announce", "binance:late-announce")
        heard = len(desk.app.changes)
        announced = act(desk, "announce", {"csrf": fields["csrf"]})
    assert announced == "1 change(s) announced to the application"
    assert [c.reference for c in desk.app.changes[heard:]] == ["lc-announce"]
    assert "alice@support did close binance/lc-close" in caplog.text
    assert "alice@support did reconcile binance/lc-reconcile" in caplog.text
    assert "alice@support did announce the outbox: 1 change(s)" in caplog.text
    refused = desk.post("/actions/close", {**fields, "reference": "lc-close"})
    assert refused.status_code == 409  # closed already: only a pending order can be closed


def test_reconcile_order_refuses_a_reference_the_ledger_does_not_hold(desk: Desk) -> None:
    with pytest.raises(ValidationError) as refused:
        desk.payments.reconcile_order("lc-never-booked", provider="binance")
    assert refused.value.field == "reference"
    with pytest.raises(ValidationError) as refused_async:
        asyncio.run(desk.payments.reconcile_order_async("lc-never-booked", provider="binance"))
    assert refused_async.value.field == "reference"
    desk.order("lc-booked")
    csrf = csrf_of(order_page(desk, "lc-booked"))
    missing = desk.post(
        "/actions/reconcile", {"csrf": csrf, "provider": "binance", "reference": "lc-never"}
    )
    assert missing.status_code == 404


def test_reconcile_order_async_applies_the_providers_answer_once(desk: Desk) -> None:
    lost = OrderRequest(
        reference="lc-async",
        price=Money("1.00", "USD"),
        callback_url="http://127.0.0.1:9/callbacks/binance",
    )
    order = desk.payments.create_order(lost, provider="binance")
    desk.sandbox.pay(order.provider_order_id)
    first = asyncio.run(desk.payments.reconcile_order_async("lc-async", provider="binance"))
    again = asyncio.run(desk.payments.reconcile_order_async("lc-async", provider="binance"))
    assert first.result is not None
    assert first.result.change is not None
    assert first.result.change.new_status is PaymentStatus.PAID
    assert again.result is None or again.result.change is None  # once
    assert desk.status("lc-async") is PaymentStatus.PAID
    assert [c.reference for c in desk.app.changes].count("lc-async") == 1
