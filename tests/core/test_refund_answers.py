"""What ``Payments.refund_order`` makes of a provider's refund answer that is not the refund
asked for, and of refunds the ledger cannot check alone. ExamplePay's in-process sandbox, some
of its answers altered the way a faulty provider plugin would alter them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from payments_example.harness import ExampleHarness
from payments_example.provider import ExampleProvider

from payments_core import (
    Config,
    Money,
    Order,
    Payments,
    PaymentStatus,
    PluginError,
    Refund,
    RefundRequest,
    RefundStatus,
    RequestTimeout,
    RetryPolicy,
    ValidationError,
    hookimpl,
    open_ledger,
)
from payments_core.http import Operation
from payments_core.testing import Fault, FaultInjector

from .refunding import example_payments, paid, refund


class AnswersAnotherRefund(ExampleProvider):
    """Answers every refund with another refund reference of the same order."""

    @hookimpl
    def refund_order(self, order: Order, request: RefundRequest) -> Operation[Refund]:
        refund = yield from super().refund_order(order, request)
        return attrs.evolve(refund, refund_reference="someone-else")


class AnswersAnotherOrder(ExampleProvider):
    """Answers every refund as a refund of another order."""

    @hookimpl
    def refund_order(self, order: Order, request: RefundRequest) -> Operation[Refund]:
        refund = yield from super().refund_order(order, request)
        return attrs.evolve(refund, reference="another-order")


class AnswersInEuros(ExampleProvider):
    """States every refund's amount in EUR."""

    @hookimpl
    def refund_order(self, order: Order, request: RefundRequest) -> Operation[Refund]:
        refund = yield from super().refund_order(order, request)
        return attrs.evolve(refund, amount=Money(refund.amount.amount, "EUR"))


class RefundsTenCentsLess(ExampleProvider):
    """Says it refunded ten cents less than asked (as Binance's last refund may differ)."""

    @hookimpl
    def refund_order(self, order: Order, request: RefundRequest) -> Operation[Refund]:
        refund = yield from super().refund_order(order, request)
        return attrs.evolve(refund, amount=Money(refund.amount.amount - Decimal("0.10"), "USD"))


class AnswersPending(ExampleProvider):
    """Answers every refund as still pending; its query says how it ended."""

    @hookimpl
    def refund_order(self, order: Order, request: RefundRequest) -> Operation[Refund]:
        refund = yield from super().refund_order(order, request)
        return attrs.evolve(refund, status=RefundStatus.PENDING)


class CannotQueryRefunds(ExampleProvider):
    """A provider without the query_refund hook."""

    @hookimpl
    def query_refund(self, order: Order, request: RefundRequest) -> Operation[Refund | None] | None:
        return None


class StatesNinetyCentsRefunded(ExampleProvider):
    """Its order query states that 0.90 of the order was refunded already."""

    @hookimpl
    def query_order(self, reference: str) -> Operation[Order | None]:
        order = yield from super().query_order(reference)
        return None if order is None else attrs.evolve(order, refunded=Money("0.90", "USD"))


class CannotRefund(ExampleProvider):
    """A provider without the refund_order hook."""

    @hookimpl
    def refund_order(self, order: Order, request: RefundRequest) -> Operation[Refund] | None:
        return None


class EchoesTheReason(ExampleProvider):
    """Answers a refund query with the reason of the request it was asked with, as Binance's
    query does (its answer has no reason of its own)."""

    @hookimpl
    def query_refund(self, order: Order, request: RefundRequest) -> Operation[Refund | None]:
        found = yield from super().query_refund(order, request)
        return None if found is None else attrs.evolve(found, reason=request.reason)


@pytest.fixture
def harness_of() -> Iterator[Callable[..., ExampleHarness]]:
    """Makes ExamplePay harnesses (of a provider class, ExamplePay's own by default), closed
    after the test."""
    made: list[ExampleHarness] = []

    def make(factory: type[ExampleProvider] = ExampleProvider) -> ExampleHarness:
        made.append(ExampleHarness(factory))
        return made[-1]

    yield make
    for harness in made:
        harness.close()


#: :func:`paid_with`'s opener: a provider class in, the harness and the facade out.
PaidWith = Callable[..., tuple[ExampleHarness, Payments]]


@pytest.fixture
def paid_with(harness_of: Callable[..., ExampleHarness], tmp_path: Path) -> Iterator[PaidWith]:
    """Opens a facade with a ledger on a harness of ExamplePay (or of a provider class altering
    its answers), booking-1 created and paid; the facade is closed after the test."""
    with ExitStack() as opened:

        def open_paid(
            factory: type[ExampleProvider] = ExampleProvider,
        ) -> tuple[ExampleHarness, Payments]:
            harness = harness_of(factory)
            payments = opened.enter_context(example_payments(harness, tmp_path / "l.db"))
            paid(payments, harness)
            return harness, payments

        yield open_paid


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (
            AnswersAnotherRefund,
            "answered a refund of 'cancel-1' with refund 'someone-else' of 'booking-1'",
        ),
        (
            AnswersAnotherOrder,
            "answered a refund of 'cancel-1' with refund 'cancel-1' of 'another-order'",
        ),
        (AnswersInEuros, "answered refund 'cancel-1' in EUR, not USD"),
    ],
    ids=["another-refund", "another-order", "another-currency"],
)
def test_an_answer_about_another_refund_or_currency_is_a_plugin_error_naming_both(
    paid_with: PaidWith, factory: type[ExampleProvider], message: str
) -> None:
    _, payments = paid_with(factory)
    with pytest.raises(PluginError) as wrong:
        payments.refund_order(refund())
    assert str(wrong.value) == f"provider 'example' {message}"
    assert wrong.value.provider == "example"


def test_a_refund_answered_as_another_stays_reserved_and_asking_again_finds_it_by_query(
    paid_with: PaidWith,
) -> None:
    harness, payments = paid_with(AnswersAnotherRefund)
    with pytest.raises(PluginError):
        payments.refund_order(refund())
    assert payments.ledger is not None
    held = payments.ledger.get_refund("example", "booking-1", "cancel-1")
    assert held is not None
    assert held.status is RefundStatus.PENDING  # the provider may hold it: not released
    again = payments.refund_order(refund())  # its query answers truly
    assert (again.refund_reference, again.status) == ("cancel-1", RefundStatus.SUCCEEDED)
    assert harness.refund_count() == 1


def test_a_refund_of_another_amount_is_recorded_as_refunded_with_a_warning(
    paid_with: PaidWith, caplog: pytest.LogCaptureFixture
) -> None:
    _, payments = paid_with(RefundsTenCentsLess)
    with caplog.at_level(logging.WARNING, logger="payments_core.refunding"):
        made = payments.refund_order(refund())
    assert payments.ledger is not None
    order = payments.ledger.get_order("example", "booking-1")
    assert (made.status, made.amount) == (RefundStatus.SUCCEEDED, Money("0.30", "USD"))
    assert order is not None
    assert order.refunded == Money("0.30", "USD")
    assert [r.getMessage() for r in caplog.records if r.name == "payments_core.refunding"] == [
        "example refunded 0.30 USD for refund cancel-1 of booking-1, not the 0.40 USD asked: "
        "recorded as refunded"
    ]


def test_without_a_ledger_a_refund_of_an_order_the_provider_does_not_hold_names_the_reference(
    harness_of: Callable[..., ExampleHarness],
) -> None:
    harness = harness_of()
    with example_payments(harness, None) as payments, pytest.raises(ValidationError) as refused:
        payments.refund_order(refund())
    assert refused.value.field == "reference"
    assert str(refused.value) == "reference: example holds no order for 'booking-1'"
    assert refused.value.provider == "example"


def test_without_a_ledger_a_refund_in_another_currency_is_refused_before_it_is_sent(
    harness_of: Callable[..., ExampleHarness],
) -> None:
    harness = harness_of()
    with example_payments(harness, None) as payments:
        paid(payments, harness)
        with pytest.raises(ValidationError) as refused:
            payments.refund_order(refund(currency="EUR"))
    assert refused.value.field == "amount.currency"
    assert refused.value.provider == "example"
    assert harness.refund_count() == 0


def test_a_refund_of_an_order_the_ledger_never_saw_records_the_order_first(
    harness_of: Callable[..., ExampleHarness], tmp_path: Path
) -> None:
    harness = harness_of()
    with example_payments(harness, None) as elsewhere:  # created and paid by another installation
        paid(elsewhere, harness)
    with example_payments(harness, tmp_path / "l.db") as payments:
        made = payments.refund_order(refund())
        assert payments.ledger is not None
        order = payments.ledger.get_order("example", "booking-1")
    assert made.status is RefundStatus.SUCCEEDED
    assert order is not None
    assert (order.status, order.refunded) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        Money("0.40", "USD"),
    )
    assert harness.refund_count() == 1


def test_a_pending_refund_answer_is_followed_by_its_query_and_recorded_as_it_ended(
    paid_with: PaidWith,
) -> None:
    _, payments = paid_with(AnswersPending)
    made = payments.refund_order(refund())
    assert payments.ledger is not None
    held = payments.ledger.get_refund("example", "booking-1", "cancel-1")
    assert made.status is RefundStatus.SUCCEEDED
    assert held == made


@pytest.mark.parametrize(
    ("answer", "logged"),
    [
        (Fault.answer(404, b'{"error":{"code":"refund_not_found","message":"injected"}}'), []),
        (
            Fault.answer(500, b'{"error":{"code":"internal","message":"injected"}}'),
            ["refund cancel-1 stays pending: "],
        ),
    ],
    ids=["query-finds-none", "query-fails"],
)
def test_a_pending_refund_whose_follow_up_finds_nothing_stays_pending(
    harness_of: Callable[..., ExampleHarness],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    answer: Fault,
    logged: list[str],
) -> None:
    harness = harness_of(AnswersPending)
    faults = FaultInjector(harness.transport())
    with example_payments(harness, tmp_path / "l.db", faults=faults) as payments:
        paid(payments, harness)
        faults.inject(Fault.forward())  # the refund itself
        faults.inject(answer)  # its follow-up query
        with caplog.at_level(logging.INFO, logger="payments_core.refunding"):
            made = payments.refund_order(refund())
        assert payments.ledger is not None
        held = payments.ledger.get_refund("example", "booking-1", "cancel-1")
    assert (made.refund_reference, made.status) == ("cancel-1", RefundStatus.PENDING)
    assert held == made
    messages = [r.getMessage() for r in caplog.records if r.name == "payments_core.refunding"]
    assert [m[: len(p)] for m, p in zip(messages, logged, strict=True)] == logged
    if logged:
        assert "HTTP 500" in messages[0] or "internal" in messages[0]


def test_a_pending_refund_of_a_provider_that_cannot_be_asked_is_sent_again_under_its_reference(
    harness_of: Callable[..., ExampleHarness], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness = harness_of(CannotQueryRefunds)
    faults = FaultInjector(harness.transport())
    with example_payments(harness, tmp_path / "l.db", faults=faults) as payments:
        paid(payments, harness)
        faults.inject(Fault.timeout())  # the refund is made, its answer lost
        with pytest.raises(RequestTimeout):
            payments.refund_order(refund())
        with caplog.at_level(logging.INFO, logger="payments_core.refunding"):
            (still,) = payments.reconcile_refunds(timedelta(0))  # cannot ask: left alone
        sent = len(faults.requests)
        made = payments.refund_order(refund())
    assert still.status is RefundStatus.PENDING
    assert not [r for r in caplog.records if r.name == "payments_core.refunding"]
    assert len(faults.requests) == sent + 1  # sent again: the provider knows it by its id
    assert made.status is RefundStatus.SUCCEEDED
    assert harness.refund_count() == 1


def test_without_a_ledger_the_refunded_total_the_provider_states_holds_a_refund_back(
    harness_of: Callable[..., ExampleHarness],
) -> None:
    harness = harness_of(StatesNinetyCentsRefunded)
    with example_payments(harness, None) as payments:
        paid(payments, harness)
        with pytest.raises(ValidationError) as refused:
            payments.refund_order(refund("0.40"))
        made = payments.refund_order(refund("0.10"))
    assert refused.value.field == "amount"
    assert "exceeds what remains to refund of 'booking-1'" in str(refused.value)
    assert made.amount == Money("0.10", "USD")
    assert harness.refund_count() == 1


def test_a_provider_without_refunds_is_a_plugin_error_naming_the_hook_and_holds_nothing_back(
    paid_with: PaidWith,
) -> None:
    _, payments = paid_with(CannotRefund)
    with pytest.raises(PluginError) as missing:
        payments.refund_order(refund())
    assert payments.ledger is not None
    assert payments.ledger.refunds_for("example", "booking-1") == []
    assert str(missing.value) == "provider 'example' does not implement refund_order"


def test_reconciling_a_refund_keeps_its_reason_where_the_provider_echoes_the_request(
    harness_of: Callable[..., ExampleHarness], tmp_path: Path
) -> None:
    harness = harness_of(EchoesTheReason)
    faults = FaultInjector(harness.transport())
    with example_payments(harness, tmp_path / "l.db", faults=faults) as payments:
        paid(payments, harness)
        faults.inject(Fault.timeout())
        with pytest.raises(RequestTimeout):
            payments.refund_order(refund())
        (settled,) = payments.reconcile_refunds(timedelta(0))
    assert settled.status is RefundStatus.SUCCEEDED
    assert settled.reason == "booking cancelled"


def test_refunds_are_reconciled_with_their_own_provider_not_the_default_one(
    harness_of: Callable[..., ExampleHarness], tmp_path: Path
) -> None:
    harness, other = harness_of(), harness_of()
    faults = FaultInjector(harness.transport())
    payments = Payments(
        Config(default_provider="other"),
        providers={"example": harness.factory(), "other": other.factory()},
        provider_settings={"example": harness.settings(), "other": other.settings()},
        load_entry_points=False,
        retry=RetryPolicy(max_attempts=1, sleep=lambda _: None),
        transport=faults,
        ledger=open_ledger(f"sqlite:///{tmp_path / 'l.db'}"),
    )
    with payments:
        paid(payments, harness, provider="example")
        faults.inject(Fault.timeout())
        with pytest.raises(RequestTimeout):
            payments.refund_order(refund(), provider="example")
        (settled,) = payments.reconcile_refunds(timedelta(0))
    assert (settled.provider, settled.status) == ("example", RefundStatus.SUCCEEDED)


def test_a_refund_of_an_order_still_pending_at_the_provider_is_refused_and_not_sent(
    harness_of: Callable[..., ExampleHarness], tmp_path: Path
) -> None:
    harness = harness_of()
    with example_payments(harness, tmp_path / "l.db") as payments:
        paid(payments, harness, pay=False)
        with pytest.raises(ValidationError) as refused:
            payments.refund_order(refund())
    assert "'booking-1' is pending: only a paid order can be refunded" in str(refused.value)
    assert harness.refund_count() == 0


def test_without_a_ledger_a_refund_of_an_unpaid_order_names_the_order(
    harness_of: Callable[..., ExampleHarness],
) -> None:
    harness = harness_of()
    with example_payments(harness, None) as payments:
        paid(payments, harness, pay=False)
        with pytest.raises(ValidationError) as refused:
            payments.refund_order(refund())
    assert "order 'booking-1' is pending: only a paid order can be refunded" in str(refused.value)
    assert refused.value.provider == "example"
