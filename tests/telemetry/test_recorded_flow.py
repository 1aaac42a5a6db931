"""A full flow recorded with the SDK's in-memory exporters: its span tree, the link from the
callback to the order's creation, the outcomes and the metrics; and nothing private in any of
it (spans, events, links, metric labels, log lines)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from payments_core.telemetry.recording import Recorder, exported_texts, render_tree, walk

from .flow import RecordedFlow, run_flow


@pytest.fixture
def flow(recorder: Recorder, tmp_path: Path) -> RecordedFlow:
    return run_flow(recorder, tmp_path)


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def under(spans: tuple[ReadableSpan, ...], root: ReadableSpan) -> list[str]:
    """The names of ``root``'s descendants, depth first."""
    inside = [s for s in spans if s.context.trace_id == root.context.trace_id]
    return [f"{'  ' * depth}{span.name}" for depth, span in walk(inside)]


def attribute(span: ReadableSpan, key: str) -> Any:
    return (span.attributes or {})[key]


def grown(flow: RecordedFlow, name: str, **labels: Any) -> Any:
    wanted = frozenset((key.replace("__", "."), value) for key, value in labels.items())
    return flow.recorder.value(name, **labels) - flow.before.get((name, wanted), 0)


def test_create_with_a_lost_answer_is_one_trace_of_attempts_retry_and_recovery(
    flow: RecordedFlow,
) -> None:
    spans = flow.recorder.spans()
    create = next(
        s
        for s in named(spans, "payments.create_order")
        if attribute(s, "payments.reference") == "booking-traced"
    )
    assert attribute(create, "payments.outcome") == "recovered"
    tree = under(spans, create)
    assert tree[:3] == [
        "payments.create_order",
        "  payments.ledger read order",
        "  payments.attempt",
    ]
    assert "    POST /binancepay/openapi/v3/order" in tree
    assert "    POST /binancepay/openapi/v2/order/query" in tree
    assert tree[-1] == "  payments.ledger record order"
    lost, found = (
        s
        for s in spans
        if s.context.trace_id == create.context.trace_id and s.name.startswith("POST")
    )
    assert attribute(lost, "error.type") == "RequestTimeout"
    assert attribute(lost, "url.template") == "/binancepay/openapi/v3/order"
    assert attribute(lost, "server.address") == "127.0.0.1"
    assert attribute(found, "http.response.status_code") == 200
    retry = next(e for e in create.events if e.name == "payments.retry")
    assert retry.attributes is not None
    assert retry.attributes["payments.retry.category"] == "outcome_unknown"
    assert retry.attributes["payments.attempt"] == 1
    (waited,) = flow.waits  # one retry, after the lost answer
    assert 0 < waited <= 0.01
    assert retry.attributes["payments.retry.wait_s"] == round(waited, 6)
    attempts = [s for s in named(spans, "payments.attempt") if s.parent == create.context]
    assert [attribute(a, "payments.attempt") for a in attempts] == [1, 2]
    assert [e.name for e in attempts[1].events] == ["payments.recovered_by_query"]


def test_callbacks_link_to_the_creation_and_say_how_they_ended(flow: RecordedFlow) -> None:
    spans = flow.recorder.spans()
    assert flow.outcomes == [200, 200, 401]
    callbacks = named(spans, "payments.callback")
    assert [attribute(c, "payments.outcome") for c in callbacks] == [
        "applied",
        "duplicate",
        "refused",
    ]
    assert attribute(callbacks[2], "payments.callback.refusal") == "verification"
    create = next(
        s
        for s in named(spans, "payments.create_order")
        if attribute(s, "payments.reference") == "booking-traced"
    )
    for callback in callbacks[:2]:
        assert [link.context.span_id for link in callback.links] == [create.context.span_id]
        assert callback.links[0].context.trace_id == create.context.trace_id
    assert callbacks[2].links == ()  # refused before the ledger: no order to link to
    applied = under(spans, callbacks[0])
    assert applied[:2] == ["payments.callback", "  payments.callback.verify"]
    # The first callback fetches the provider's certificates: a request inside verification.
    assert applied[2].startswith("    POST ")
    assert "  payments.ledger apply event" in applied


def test_refund_and_reconcile_are_traced(flow: RecordedFlow) -> None:
    spans = flow.recorder.spans()
    (refund,) = named(spans, "payments.refund_order")
    assert attribute(refund, "payments.outcome") == "succeeded"
    assert attribute(refund, "payments.provider") == "binance"
    assert attribute(refund, "payments.operation") == "refund_order"
    assert attribute(refund, "payments.reference") == "booking-traced"
    assert any(name.strip().startswith("POST ") for name in under(spans, refund))
    (reconcile,) = named(spans, "payments.reconcile")
    lost = next(
        s
        for s in named(spans, "payments.create_order")
        if attribute(s, "payments.reference") == "booking-lost-callback"
    )
    assert [link.context.span_id for link in reconcile.links] == [lost.context.span_id]
    assert "  payments.ledger apply event" in under(spans, reconcile)


def test_metrics_count_orders_callbacks_retries_and_time_requests(flow: RecordedFlow) -> None:
    provider = {"payments__provider": "binance"}
    assert grown(flow, "payments.orders", **provider, payments__outcome="recovered") == 1
    assert grown(flow, "payments.orders", **provider, payments__outcome="succeeded") == 1
    for outcome in ("applied", "duplicate", "refused"):
        assert grown(flow, "payments.callbacks", **provider, payments__outcome=outcome) == 1
        assert grown(flow, "payments.callback.duration", **provider, payments__outcome=outcome) == 1
    category = {"payments.retry.category": "outcome_unknown", "payments.provider": "binance"}
    assert flow.recorder.points()["payments.retries", frozenset(category.items())] >= 1
    timed = {
        labels: count
        for (name, labels), count in flow.recorder.points().items()
        if name == "http.client.request.duration"
    }
    lost = frozenset(
        {
            "http.request.method": "POST",
            "payments.provider": "binance",
            "payments.operation": "create_order",
            "error.type": "RequestTimeout",
        }.items()
    )
    assert timed[lost] >= 1


def test_the_span_tree_prints(flow: RecordedFlow) -> None:
    text = render_tree(flow.recorder.spans())
    assert "payments.create_order" in text
    assert "outcome=recovered" in text
    assert "linked to its creation" in text


# -- nothing private leaves ---------------------------------------------------------------


def exported_text(flow: RecordedFlow) -> Iterator[tuple[str, str]]:
    """Every string a collector or a log reader would see: (where, text)."""
    yield from exported_texts(flow.recorder.spans(), flow.recorder.points())
    for number, line in enumerate(flow.log_lines):
        yield f"log line {number}", line


def leaks(flow: RecordedFlow) -> list[str]:
    found = []
    for where, text in exported_text(flow):
        for what, secret in flow.private.items():
            if secret and secret in text:
                found.append(f"{what} in {where}")
    return found


def test_no_secret_or_payer_data_in_any_span_event_label_or_log_line(flow: RecordedFlow) -> None:
    assert len(flow.private) > 10  # keys, secrets, signatures, nonces, payer ids, bodies
    assert len(flow.log_lines) > 5  # the logs were captured, at DEBUG
    assert sum(1 for _ in exported_text(flow)) > 200
    assert leaks(flow) == []


def test_the_scan_finds_a_planted_secret(recorder: Recorder, tmp_path: Path) -> None:
    from opentelemetry import trace

    flow = run_flow(recorder, tmp_path)
    assert leaks(flow) == []
    with trace.get_tracer("planted").start_as_current_span("planted") as span:
        span.set_attribute("careless", f"secret={flow.private['api secret']}")
        span.add_event("careless", {"payer": flow.private["payer"]})
    assert sorted(leaks(flow)) == [
        "api secret in span planted careless",
        "payer in event careless payer",
    ]


@pytest.mark.anyio
async def test_the_asynchronous_api_records_the_same_tree(recorder: Recorder) -> None:
    from payments_core import Money, OrderRequest
    from tests.binance.loopback import binance_payments, sandbox_on_loopback

    with sandbox_on_loopback() as (_, base_url):
        async with binance_payments(base_url, None, async_http="httpx") as payments:
            request = OrderRequest(
                reference="booking-async",
                price=Money("3.00", "USDT"),
                callback_url="https://leadscalendar.example/callbacks/binance",
            )
            await payments.create_order_async(request)
    spans = recorder.spans()
    (create,) = named(spans, "payments.create_order")
    # The asynchronous client is opened before the operation starts, in a span of its own.
    assert under(spans, create) == [
        "payments.create_order",
        "  payments.attempt",
        "    POST /binancepay/openapi/v3/order",
    ]
    assert len(named(spans, "payments.http_client.open")) == 1
    assert attribute(create, "payments.outcome") == "succeeded"
