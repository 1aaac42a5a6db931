"""What a provider's author reads when the contract suite fails: each check's message names
what was wrong and what was expected. The checks are called directly with the faulty values a
broken provider would produce (tests/testing/test_broken_providers.py runs whole providers)."""

from __future__ import annotations

import asyncio
import math
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest
from payments_example.harness import ExampleHarness
from payments_example.provider import ExampleProvider

from payments_core import (
    CallbackReply,
    CallbackResult,
    Money,
    Order,
    OrderRequest,
    PaymentEvent,
    PaymentStatus,
    PluginError,
    ProviderError,
    ProviderInfo,
    Refund,
    RefundRequest,
    RefundStatus,
    hookimpl,
)
from payments_core.classify import classification_for_status
from payments_core.testing.contract.runner import (
    ATTEMPTS,
    RETRY_AFTER,
    ContractRun,
    check_money,
    check_order,
    check_paid_event,
    check_refund,
    classification_problems,
    describe,
    retry_problems,
    round_trip,
    skip_without_refunds,
    unique,
)
from payments_core.testing.contract.settlement import stored_status
from payments_core.testing.harness import Fault


class NoRefunds(ExampleProvider):
    """ExamplePay without the refund capabilities in its description."""

    @hookimpl
    def describe_provider(self) -> ProviderInfo:
        info = super().describe_provider()
        return attrs.evolve(info, capabilities=info.capabilities - {"refund_order", "query_refund"})


class NoDollars(ExampleProvider):
    """ExamplePay as if it took neither US dollars nor the first of its other currencies."""

    @hookimpl
    def describe_provider(self) -> ProviderInfo:
        info = super().describe_provider()
        return attrs.evolve(info, currencies=frozenset({"JPY", "EUR"}))


REQUEST = RefundRequest(
    reference="order-1",
    refund_reference="refund-1",
    amount=Money("1.00", "USD"),
    reason="contract",
)
REFUND = Refund(
    provider="example",
    reference="order-1",
    refund_reference="refund-1",
    provider_refund_id="R1",
    provider_order_id="P1",
    amount=Money("1.00", "USD"),
    status=RefundStatus.SUCCEEDED,
)


def failure(check: object) -> str:
    """The message of the contract failure ``check`` (a thunk) raises."""
    assert callable(check)
    with pytest.raises(AssertionError) as failed:
        check()
    return str(failed.value)


def test_a_good_refund_passes_the_refund_check() -> None:
    assert check_refund(REFUND, REQUEST, "example") is REFUND


@pytest.mark.parametrize(
    ("refund", "message"),
    [
        ("refunded", "refund_order gave a str"),
        (attrs.evolve(REFUND, provider="other"), "refund.provider is 'other'"),
        (
            attrs.evolve(REFUND, refund_reference="refund-2"),
            "the refund names 'order-1'/'refund-2', not the request's",
        ),
        (
            attrs.evolve(REFUND, provider_refund_id=""),
            "refund.provider_refund_id is '': it must be a non-empty str",
        ),
        (
            attrs.evolve(REFUND, amount=Money("0.50", "USD")),
            "refund.amount is 0.50 USD, 1.00 USD was asked",
        ),
        (
            attrs.evolve(REFUND, status=RefundStatus.FAILED),
            f"a valid refund ended {RefundStatus.FAILED!r}",
        ),
    ],
    ids=["not-a-refund", "provider", "references", "refund-id", "amount", "failed"],
)
def test_a_wrong_refund_is_named_with_what_is_wrong(refund: object, message: str) -> None:
    assert failure(lambda: check_refund(refund, REQUEST, "example")) == message


def test_a_model_that_is_not_json_ready_is_named_with_the_reason() -> None:
    message = failure(lambda: round_trip(object(), "order"))
    assert message.startswith("order does not unstructure to JSON-ready data: ")
    assert "not JSON serializable" in message


def test_a_model_that_changes_in_a_round_trip_is_shown_before_and_after() -> None:
    message = failure(lambda: round_trip(math.nan, "amount"))
    assert message == "amount changed in a converter round trip: nan → nan"


def classified(status: int, *, retry_after: float | None = None) -> ProviderError:
    error = ProviderError("refused", status_code=status, retry_after=retry_after)
    error.classification = classification_for_status(status, retry_after=retry_after)
    return error


def test_a_well_classified_error_has_no_problems() -> None:
    assert not classification_problems(
        "HTTP 429", classified(429, retry_after=RETRY_AFTER), 429, True
    )


def test_classification_problems_name_the_wrong_type_status_and_judgement() -> None:
    assert classification_problems("HTTP 500", PluginError("x"), 500, False) == [
        "HTTP 500 raised PluginError, not ProviderError"
    ]
    wrong = classified(400)
    assert classification_problems("HTTP 500", wrong, 500, False) == [
        "HTTP 500 gave ProviderError.status_code=400",
        "HTTP 500 classified invalid_request, retryable=False; expected provider_unavailable, "
        "retryable=True",
    ]
    unjudged = ProviderError("refused", status_code=500)
    assert classification_problems("HTTP 500", unjudged, 500, False) == [
        "HTTP 500 was not classified"
    ]


def test_retry_problems_name_the_attempts_and_the_waits() -> None:
    assert retry_problems("HTTP 500", ProviderError("x", status_code=500), 5, []) == []
    retryable = classified(429, retry_after=RETRY_AFTER)
    assert retry_problems("HTTP 429", retryable, ATTEMPTS, [RETRY_AFTER] * 2) == []
    assert retry_problems("HTTP 429", retryable, 1, [1.0]) == [
        f"HTTP 429 was sent 1 time(s), expected {ATTEMPTS}",
        f"HTTP 429: waited [1.0] despite Retry-After {RETRY_AFTER}",
    ]
    assert retry_problems("HTTP 400", classified(400), 2, []) == [
        "HTTP 400 was sent 2 time(s), expected 1"
    ]


ORDER = Order(
    provider="example",
    reference="order-1",
    provider_order_id="P1",
    status=PaymentStatus.PAID,
    amount=Money("2.00", "USD"),
)
EVENT = PaymentEvent(
    provider="example",
    event_id="E1",
    status=PaymentStatus.PAID,
    provider_order_id="P1",
    amount=Money("2.00", "USD"),
    occurred_at=datetime(2026, 12, 6, tzinfo=UTC),
)


def result(event: PaymentEvent | None = EVENT, status: int = 200) -> CallbackResult:
    return CallbackResult(event, CallbackReply(status, b"{}"))


def test_a_good_paid_callback_passes_the_event_check() -> None:
    assert check_paid_event(result(), ORDER, "example") is EVENT
    assert check_paid_event(result(status=299), ORDER, "example") is EVENT
    no_amount = attrs.evolve(EVENT, amount=None, occurred_at=None)
    assert check_paid_event(result(no_amount), ORDER, "example") is no_amount


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("paid", "handle_callback gave str"),
        (result(status=300), "a genuine callback was answered with HTTP 300"),
        (result(None), "a paid callback gave event None"),
        (result(attrs.evolve(EVENT, provider="other")), "event.provider is 'other'"),
        (
            result(attrs.evolve(EVENT, status=PaymentStatus.PENDING)),
            f"a paid callback gave status {PaymentStatus.PENDING!r}",
        ),
        (
            result(attrs.evolve(EVENT, provider_order_id="P2")),
            "the event names order 'P2'/None, the callback was for 'P1'/None",
        ),
        (
            result(attrs.evolve(EVENT, provider_reference="order-2")),
            "the event names order 'P1'/'order-2', the callback was for 'P1'/None",
        ),
        (result(attrs.evolve(EVENT, event_id="")), "event.event_id is ''"),
        (
            result(attrs.evolve(EVENT, paid=2)),
            "event.paid is a int, not Money",
        ),
        (result(attrs.evolve(EVENT, amount=2)), "event.amount is a int, not Money"),
        (
            result(attrs.evolve(EVENT, amount=Money("1.00", "USD"))),
            "event.amount is 1.00 USD, the order's 2.00 USD",
        ),
        (
            result(attrs.evolve(EVENT, occurred_at=datetime(2026, 12, 6))),
            "event.occurred_at is a naive datetime",
        ),
        (
            result(attrs.evolve(EVENT, occurred_at="today")),
            "event.occurred_at is a str, not datetime",
        ),
    ],
    ids=[
        "not-a-result",
        "http-300",
        "no-event",
        "provider",
        "status",
        "order-id",
        "order-reference",
        "event-id",
        "paid",
        "amount-type",
        "amount",
        "naive-time",
        "time-type",
    ],
)
def test_a_wrong_paid_callback_is_named_with_what_is_wrong(answer: object, message: str) -> None:
    assert failure(lambda: check_paid_event(answer, ORDER, "example")) == message


ORDER_REQUEST = OrderRequest(
    reference="order-1", price=Money("2.00", "USD"), callback_url="https://a.test/cb"
)


def test_a_good_order_passes_the_order_check() -> None:
    assert check_order(ORDER, ORDER_REQUEST, "example") is ORDER
    settled = attrs.evolve(ORDER, amount=Money("2.00", "USDT"))
    assert check_order(settled, ORDER_REQUEST, "example", queried=True) is settled


@pytest.mark.parametrize(
    ("order", "message"),
    [
        ("order", "create_order gave a str, not Order"),
        (attrs.evolve(ORDER, provider="other"), "order.provider is 'other', not 'example'"),
        (
            attrs.evolve(ORDER, reference="order-2"),
            "order.reference is 'order-2', not the request's 'order-1'",
        ),
        (
            attrs.evolve(ORDER, provider_order_id=""),
            "order.provider_order_id is '': it must be a non-empty str (ids pass 2**53)",
        ),
        (
            attrs.evolve(ORDER, provider_reference=""),
            "order.provider_reference is '': None or a non-empty str",
        ),
        (attrs.evolve(ORDER, status="paid"), "order.status is 'paid', not a status"),
        (
            attrs.evolve(ORDER, amount=Money("1.00", "USD")),
            "order.amount is 1.00 USD, but 2.00 USD was asked for",
        ),
        (attrs.evolve(ORDER, fee=1), "order.fee is a int, not Money"),
        (attrs.evolve(ORDER, checkout_url=1), "order.checkout_url is 1"),
        (attrs.evolve(ORDER, transaction_id=1), "order.transaction_id is 1"),
        (
            attrs.evolve(ORDER, expires_at=datetime(2026, 12, 6)),
            "order.expires_at is a naive datetime",
        ),
    ],
    ids=[
        "not-an-order",
        "provider",
        "reference",
        "order-id",
        "provider-reference",
        "status",
        "amount",
        "fee",
        "checkout-url",
        "transaction-id",
        "naive-expiry",
    ],
)
def test_a_wrong_order_is_named_with_what_is_wrong(order: object, message: str) -> None:
    assert failure(lambda: check_order(order, ORDER_REQUEST, "example")) == message


class NoRefundCount(ExampleHarness):
    """A harness whose sandbox cannot count its refunds."""

    def refund_count(self) -> int | None:
        return None


def test_the_refunds_a_run_counts_are_the_sandboxs_since_the_count_before() -> None:
    harness = ExampleHarness()
    run = ContractRun(harness)
    try:
        payments = run.payments()
        order = run.paid_order("refunds", payments)
        before = harness.refund_count()
        assert before == 0
        payments.refund_order(run.refund_request(order, "refunds", 1))
        assert run.refunds_made(before) == 1
        assert run.refunds_made(None) is None
    finally:
        run.close()
        harness.close()
    blind = NoRefundCount()
    try:
        assert ContractRun(blind).refunds_made(0) is None
    finally:
        blind.close()


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_runs_retry_records_its_waits_without_sleeping(asynchronous: bool) -> None:
    # A contract may retry through either facade: the waits it asks for are recorded for the
    # Retry-After check, and never really slept (a run would take minutes otherwise).
    harness = ExampleHarness()
    run = ContractRun(harness)
    try:
        payments = run.payments()
        busy = Fault.answer(429, harness.error_body(429), {"Retry-After": str(int(RETRY_AFTER))})
        run.faults.fail_every_request(busy)
        request = run.request("retry", payments)

        def create() -> object:
            if asynchronous:
                return asyncio.run(payments.create_order_async(request))
            return payments.create_order(request)

        with pytest.raises(ProviderError) as refused:
            create()
        assert refused.value.classification is not None
        assert refused.value.classification.retry_after == RETRY_AFTER
        assert len(run.faults.requests) == ATTEMPTS
        assert run.sleeps == [RETRY_AFTER] * (ATTEMPTS - 1)
    finally:
        run.close()
        harness.close()


def test_a_runs_facade_is_configured_by_the_run_not_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whoever runs the suite may have a payments configuration of their own in the environment
    # (a file, a default provider): the run's facades read none of it.
    monkeypatch.setenv("PAYMENTS_CONFIG", str(tmp_path / "nowhere.toml"))
    monkeypatch.setenv("PAYMENTS_DEFAULT_PROVIDER", "another-provider")
    harness = ExampleHarness()
    run = ContractRun(harness)
    try:
        payments = run.payments()
        assert payments.config.default_provider is None
        assert payments.describe(None).name == harness.name
    finally:
        run.close()
        harness.close()


def test_a_reference_made_unique_keeps_its_tail_and_the_length_limit() -> None:
    harness = ExampleHarness()
    run = ContractRun(harness)
    try:
        made = unique(run, "booking-1")
        long = unique(run, "x" * 200)
    finally:
        harness.close()
    assert made.startswith("contract-h-")
    assert made.endswith("-booking-1")
    assert len(long) == 128


def test_a_provider_without_dollars_is_asked_in_the_first_currency_it_lists() -> None:
    harness = ExampleHarness(NoDollars)
    run = ContractRun(harness)
    try:
        request = run.request("currency", run.payments())
    finally:
        run.close()
        harness.close()
    assert request.price == Money(1, "EUR")


def test_a_provider_without_the_refund_capability_skips_the_refund_contracts() -> None:
    harness, full = ExampleHarness(NoRefunds), ExampleHarness()
    run, full_run = ContractRun(harness), ContractRun(full)
    try:
        with pytest.raises(pytest.skip.Exception) as skipped:
            skip_without_refunds(run.payments(), harness.name)
        try:
            skip_without_refunds(full_run.payments(), full.name)
        except pytest.skip.Exception:
            pytest.fail("a provider that lists refund_order was skipped")
    finally:
        run.close()
        full_run.close()
        harness.close()
        full.close()
    assert skipped.value.msg == "the provider does not list the refund_order capability"


def test_a_runs_ledger_lives_in_a_folder_of_its_own_removed_when_the_run_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    harness = ExampleHarness()
    run = ContractRun(harness)
    try:
        payments = run.payments(ledger=run.ledger())
        (folder,) = tmp_path.iterdir()
        assert folder.name.startswith("payments-contract-")
        assert (folder / "ledger.sqlite3").exists()
        order = run.paid_order("stored", payments)
        assert stored_status(payments, harness.name, order) is PaymentStatus.PENDING
        lost = failure(lambda: stored_status(payments, harness.name, ORDER))
    finally:
        run.close()
        harness.close()
    assert lost == "the ledger lost order 'order-1'"
    assert list(tmp_path.iterdir()) == []


def test_a_queried_order_may_state_the_settlement_but_not_another_price() -> None:
    settled = attrs.evolve(ORDER, amount=Money("2.00", "USDT"))
    assert failure(lambda: check_order(settled, ORDER_REQUEST, "example")) == (
        "order.amount is 2.00000000 USDT, but 2.00 USD was asked for"
    )
    cheaper = attrs.evolve(ORDER, amount=Money("1.00", "USD"))
    assert failure(lambda: check_order(cheaper, ORDER_REQUEST, "example", queried=True)) == (
        "order.amount is 1.00 USD, but 2.00 USD was asked for"
    )


def test_money_that_passed_through_a_float_and_a_wrong_refund_amount_are_named() -> None:
    floated = Money("1.00", "USD")
    object.__setattr__(floated, "amount", 1.0)
    assert failure(lambda: check_money(floated, "order.amount")) == (
        "order.amount.amount is a float, not Decimal: money must never pass through a float"
    )
    assert failure(lambda: check_refund(attrs.evolve(REFUND, amount=1), REQUEST, "example")) == (
        "refund.amount is a int, not Money"
    )


def test_a_contract_failure_keeps_hypothesis_falsifying_example_and_no_other_note() -> None:
    failed = AssertionError("event.amount is 1.00 USD, the order's 2.00 USD")
    failed.add_note("Falsifying example: test(amount=1)")
    failed.add_note("an unrelated note")
    failed.add_note("Failing test case: test(amount=2)")
    assert describe(failed) == (
        "event.amount is 1.00 USD, the order's 2.00 USD\n"
        "Falsifying example: test(amount=1)\n"
        "Failing test case: test(amount=2)"
    )
    assert describe(ValueError()) == "unexpected ValueError: ValueError"
