"""The callback ASGI app, in process (httpx's ASGI transport) with the no-network provider."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from payments_core import ConfigurationError, LedgerError, Payments, PaymentStatus
from payments_core.asgi import create_callback_app
from payments_core.serving import BackgroundServer

from .fakes import (
    ACK,
    HEADERS,
    NAME,
    REFUSED,
    HookRecorder,
    callback_body,
    event_for,
    make_payments,
    order_for,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def recorder() -> HookRecorder:
    return HookRecorder()


@pytest.fixture
def failures() -> list[Exception]:
    """Failures to inject, one per apply, before the commit."""
    return []


@pytest.fixture
def payments(
    ledger_url: str, recorder: HookRecorder, failures: list[Exception]
) -> Iterator[Payments]:
    def fail_if_asked() -> None:
        if failures:
            raise failures.pop(0)

    with make_payments(ledger_url, plugins=[recorder], before_commit=fail_if_asked) as payments:
        assert payments.ledger is not None
        payments.ledger.record_order(order_for("booking-1"))
        yield payments


@pytest.fixture
async def client(payments: Payments) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_callback_app(payments))
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        yield client


def status_of(payments: Payments, reference: str) -> PaymentStatus:
    assert payments.ledger is not None
    order = payments.ledger.get_order(NAME, reference)
    assert order is not None
    return order.status


async def test_a_callback_is_applied_once_and_every_delivery_acknowledged(
    client: httpx.AsyncClient, payments: Payments, recorder: HookRecorder
) -> None:
    body = callback_body(event_for("booking-1"))
    answers = [
        await client.post("/callbacks/fake", content=body, headers=HEADERS) for _ in range(3)
    ]
    assert [(a.status_code, a.content) for a in answers] == [(ACK.status_code, ACK.body)] * 3
    assert answers[0].headers["content-type"] == ACK.content_type
    assert status_of(payments, "booking-1") is PaymentStatus.PAID
    assert [change.reference for change in recorder.changes] == ["booking-1"]


async def test_the_raw_body_bytes_reach_verification_untouched(
    client: httpx.AsyncClient, payments: Payments
) -> None:
    body = (
        b'{"eventId": "e-1",  "status": "paid", "providerOrderId": "%s", '
        % (event_for("booking-1").provider_order_id.encode())
        + b'"merchantOrderId": "m-booking-1", "amount": "1.00", "currency": "USD"}\n'
    )
    answer = await client.post("/callbacks/fake", content=body, headers=HEADERS)
    assert answer.status_code == 200
    assert payments.ledger is not None
    (event,) = payments.ledger.events_for(NAME, "booking-1")
    assert event.event_id == "e-1"


async def test_a_refused_callback_gets_the_providers_reply_and_changes_nothing(
    client: httpx.AsyncClient, payments: Payments
) -> None:
    body = callback_body(event_for("booking-1"))
    answer = await client.post("/callbacks/fake", content=body, headers={"X-Fake-Token": "no"})
    assert (answer.status_code, answer.content) == (REFUSED.status_code, REFUSED.body)
    assert status_of(payments, "booking-1") is PaymentStatus.PENDING


async def test_an_unknown_provider_is_not_found(client: httpx.AsyncClient) -> None:
    answer = await client.post("/callbacks/stripe", content=b"{}", headers=HEADERS)
    assert answer.status_code == 404
    assert "stripe" in answer.json()["error"]


async def test_only_post_is_allowed(client: httpx.AsyncClient) -> None:
    assert (await client.get("/callbacks/fake")).status_code == 405


async def test_an_oversized_body_is_refused_before_verification(
    payments: Payments, recorder: HookRecorder
) -> None:
    app = create_callback_app(payments, max_body_bytes=64)
    transport = httpx.ASGITransport(app=app)
    body = callback_body(event_for("booking-1"))
    assert len(body) > 64

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16):
            yield body[start : start + 16]

    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        declared = await client.post("/callbacks/fake", content=body, headers=HEADERS)
        streamed = await client.post("/callbacks/fake", content=chunks(), headers=HEADERS)
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert status_of(payments, "booking-1") is PaymentStatus.PENDING
    assert recorder.changes == []


async def test_a_ledger_failure_asks_for_redelivery_which_then_applies_once(
    client: httpx.AsyncClient,
    payments: Payments,
    recorder: HookRecorder,
    failures: list[Exception],
) -> None:
    failures.append(LedgerError("database is locked"))
    body = callback_body(event_for("booking-1"))
    failed = await client.post("/callbacks/fake", content=body, headers=HEADERS)
    assert failed.status_code == 503
    assert failed.headers["retry-after"] == "5"
    assert status_of(payments, "booking-1") is PaymentStatus.PENDING
    assert recorder.changes == []
    redelivered = await client.post("/callbacks/fake", content=body, headers=HEADERS)
    assert (redelivered.status_code, redelivered.content) == (200, ACK.body)
    assert status_of(payments, "booking-1") is PaymentStatus.PAID
    assert len(recorder.changes) == 1


async def test_an_unexpected_error_is_answered_500_by_the_server_and_records_nothing(
    payments: Payments, recorder: HookRecorder, failures: list[Exception]
) -> None:
    # Not a PaymentsError: a bug. The callback route has no middleware of its own; the server
    # answers 500, so that the provider delivers the callback again.
    failures.append(RuntimeError("a bug before the commit"))
    body = callback_body(event_for("booking-1"))
    with BackgroundServer(create_callback_app(payments)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            answer = await client.post("/callbacks/fake", content=body, headers=HEADERS)
    assert answer.status_code == 500
    assert status_of(payments, "booking-1") is PaymentStatus.PENDING
    assert recorder.changes == []


async def test_middleware_added_to_the_app_sees_the_callbacks(payments: Payments) -> None:
    seen: list[str] = []

    class Seen:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(f"{scope['type']} {scope.get('path', '')}")
            await self.app(scope, receive, send)

    app = create_callback_app(payments)
    app.add_middleware(Seen)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        body = callback_body(event_for("booking-1"))
        answer = await client.post("/callbacks/fake", content=body, headers=HEADERS)
    assert (answer.status_code, answer.content) == (200, ACK.body)
    assert seen == ["http /callbacks/fake"]
    assert status_of(payments, "booking-1") is PaymentStatus.PAID


async def test_an_app_in_debug_mode_shows_its_traceback_page_for_a_callback_too(
    payments: Payments, failures: list[Exception]
) -> None:
    """Setting ``debug`` on the built app turns the callback route's short cut off, as added
    middleware does: Starlette's own error page then answers an unexpected error."""
    failures.append(RuntimeError("a bug before the commit"))
    app = create_callback_app(payments)
    app.debug = True
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        body = callback_body(event_for("booking-1"))
        answer = await client.post("/callbacks/fake", content=body, headers=HEADERS)
    assert answer.status_code == 500
    assert "a bug before the commit" in answer.text
    assert status_of(payments, "booking-1") is PaymentStatus.PENDING


async def test_a_callback_that_cannot_be_verified_now_asks_for_redelivery(
    client: httpx.AsyncClient,
) -> None:
    body = b'{"kind": "keys-unavailable"}'
    answer = await client.post("/callbacks/fake", content=body, headers=HEADERS)
    assert answer.status_code == 503
    assert "deliver it again" in answer.json()["error"]


async def test_a_deferred_callback_gets_503_with_its_retry_after_and_changes_nothing(
    client: httpx.AsyncClient, payments: Payments, recorder: HookRecorder
) -> None:
    answer = await client.post(
        "/callbacks/fake", content=b'{"kind": "keys-being-fetched"}', headers=HEADERS
    )
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "3"  # 2.5 s, rounded up
    assert "cannot be checked yet" in answer.json()["error"]
    assert status_of(payments, "booking-1") is PaymentStatus.PENDING
    assert recorder.changes == []


async def test_the_app_mounts_under_a_prefix_in_another_starlette_app(
    payments: Payments,
) -> None:
    host = Starlette(routes=[Mount("/payments", app=create_callback_app(payments))])
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        body = callback_body(event_for("booking-1"))
        answer = await client.post("/payments/callbacks/fake", content=body, headers=HEADERS)
    assert answer.status_code == 200
    assert status_of(payments, "booking-1") is PaymentStatus.PAID


async def test_the_app_can_close_the_facade_it_owns_at_shutdown(ledger_url: str) -> None:
    payments = make_payments(ledger_url)
    app = create_callback_app(payments, close_payments=True)
    async with app.router.lifespan_context(app):
        pass
    assert payments.ledger is not None
    with pytest.raises(LedgerError, match="closed"):
        payments.ledger.get_order(NAME, "booking-1")


def test_the_app_needs_a_ledger() -> None:
    with make_payments(None) as payments, pytest.raises(ConfigurationError, match="ledger"):
        create_callback_app(payments)
