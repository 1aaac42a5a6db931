"""``Payments.refund_order``: one refund per refund reference, through faults, with and without
a ledger. ExamplePay's in-process sandbox holds the refunds; a fault injector loses answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from payments_example.harness import ExampleHarness

from payments_core import (
    Money,
    OrderRequest,
    Payments,
    PaymentStatus,
    ProviderError,
    RefundRequest,
    RefundStatus,
    RequestTimeout,
    StatusChange,
    ValidationError,
    hookimpl,
)
from payments_core.testing import Fault, FaultInjector
from tests.ledger.fakes import NAME, order_for

from .refunding import example_payments, paid, refund


class Changes:
    def __init__(self) -> None:
        self.seen: list[tuple[str, PaymentStatus, PaymentStatus]] = []

    @hookimpl
    def payment_status_changed(self, change: StatusChange) -> None:
        self.seen.append((change.reference, change.old_status, change.new_status))


@pytest.fixture
def harness() -> Iterator[ExampleHarness]:
    harness = ExampleHarness()
    yield harness
    harness.close()


@pytest.fixture
def faults(harness: ExampleHarness) -> FaultInjector:
    return FaultInjector(harness.transport(), harness.async_transport())


def facade(
    harness: ExampleHarness, faults: FaultInjector, ledger_path: Path | None, *plugins: object
) -> Payments:
    """ExamplePay through ``faults``, each operation tried up to three times."""
    return example_payments(harness, ledger_path, *plugins, faults=faults, max_attempts=3)


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
def payments(
    harness: ExampleHarness, faults: FaultInjector, changes: Changes, tmp_path: Path
) -> Iterator[Payments]:
    """:func:`facade` with a ledger and ``changes`` as the application, booking-1 created and
    paid."""
    with facade(harness, faults, tmp_path / "l.db", changes) as opened:
        paid(opened, harness)
        yield opened


def test_a_lost_refund_answer_is_recovered_by_query_not_by_a_second_refund(
    harness: ExampleHarness, faults: FaultInjector, payments: Payments, changes: Changes
) -> None:
    faults.inject(Fault.timeout())
    made = payments.refund_order(refund("1.00"))
    sent = len(faults.requests)
    again = payments.refund_order(refund("1.00"))
    assert len(faults.requests) == sent  # a final refund is answered from the ledger
    assert payments.ledger is not None
    order = payments.ledger.get_order("example", "booking-1")
    assert harness.refund_count() == 1
    assert made.status is RefundStatus.SUCCEEDED
    assert again == made
    assert order is not None
    assert (order.status, order.refunded) == (PaymentStatus.REFUNDED, Money("1.00", "USD"))
    assert changes.seen == [
        ("booking-1", PaymentStatus.PENDING, PaymentStatus.PAID),
        ("booking-1", PaymentStatus.PAID, PaymentStatus.REFUNDED),
    ]
    paths = [r.url.path for r in faults.requests if "/refunds" in r.url.path]
    assert [p.endswith("/refunds") for p in paths] == [True, False]  # refund, then its query


def test_an_outcome_still_unknown_stays_pending_and_asking_again_settles_it(
    harness: ExampleHarness, faults: FaultInjector, payments: Payments
) -> None:
    faults.inject(Fault.timeout(), times=3)
    with pytest.raises(RequestTimeout):
        payments.refund_order(refund("0.40"))
    assert payments.ledger is not None
    held = payments.ledger.get_refund("example", "booking-1", "cancel-1")
    assert held is not None
    assert held.status is RefundStatus.PENDING
    with pytest.raises(ValidationError) as refused:  # its amount stays held back
        payments.refund_order(refund("0.61", "cancel-2"))
    assert refused.value.field == "amount"
    settled = payments.refund_order(refund("0.40"))
    assert settled.status is RefundStatus.SUCCEEDED
    assert harness.refund_count() == 1


def test_a_refund_the_provider_refuses_outright_frees_its_reference(
    harness: ExampleHarness, faults: FaultInjector, payments: Payments
) -> None:
    body = b'{"error":{"code":"order_not_refundable","message":"injected"}}'
    faults.inject(Fault.answer(409, body))
    with pytest.raises(ProviderError) as refused:
        payments.refund_order(refund("0.40"))
    assert refused.value.classification is not None
    assert not refused.value.classification.retryable
    assert payments.ledger is not None
    assert payments.ledger.refunds_for("example", "booking-1") == []
    assert payments.refund_order(refund("0.40")).status is RefundStatus.SUCCEEDED
    assert harness.refund_count() == 1


def test_a_payment_whose_callback_has_not_come_is_learnt_before_the_refund(
    harness: ExampleHarness, faults: FaultInjector, tmp_path: Path
) -> None:
    changes = Changes()
    with facade(harness, faults, tmp_path / "l.db", changes) as payments:
        order = payments.create_order(
            OrderRequest(
                reference="booking-1", price=Money("1.00", "USD"), callback_url="https://a.test/cb"
            )
        )
        harness.paid_callback(order)  # paid at the provider; the callback is never delivered
        assert payments.refund_order(refund("0.40")).status is RefundStatus.SUCCEEDED
    assert changes.seen == [
        ("booking-1", PaymentStatus.PENDING, PaymentStatus.PAID),
        ("booking-1", PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED),
    ]


def test_without_a_ledger_the_provider_refuses_an_over_refund_and_repeats_are_one_refund(
    harness: ExampleHarness, faults: FaultInjector
) -> None:
    with facade(harness, faults, None) as payments:
        paid(payments, harness)
        partial = payments.refund_order(refund("0.40"))
        with pytest.raises(ProviderError) as refused:
            payments.refund_order(refund("0.61", "cancel-2"))
        assert refused.value.provider_code == "refund_exceeds_remaining"
        rest = payments.refund_order(refund("0.60", "cancel-2"))
        # The order is refunded in full now: asking for either refund again finds it.
        assert payments.refund_order(refund("0.40")) == partial
        assert payments.refund_order(refund("0.60", "cancel-2")) == rest
        with pytest.raises(ValidationError) as unpaid:
            payments.refund_order(refund("0.10", "cancel-3"))
        assert unpaid.value.field == "reference"
    assert harness.refund_count() == 2


def test_the_async_refund_matches_the_blocking_one(
    harness: ExampleHarness, faults: FaultInjector, tmp_path: Path
) -> None:
    changes = Changes()
    payments = facade(harness, faults, tmp_path / "l.db", changes)
    paid(payments, harness)

    async def flow() -> tuple[RefundStatus, RefundStatus]:
        async with payments:
            faults.inject(Fault.timeout())
            first = await payments.refund_order_async(refund("0.40"))
            again = await payments.refund_order_async(refund("0.40"))
            rest = await payments.refund_order_async(refund("0.60", "cancel-2"))
            assert again == first
            return first.status, rest.status

    assert asyncio.run(flow()) == (RefundStatus.SUCCEEDED, RefundStatus.SUCCEEDED)
    assert harness.refund_count() == 2
    assert [new for _, _, new in changes.seen] == [
        PaymentStatus.PAID,
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED,
    ]


class FailsOnRefund(Changes):
    """An application whose hook dies on the refund's change, as a crashed process would."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    @hookimpl
    def payment_status_changed(self, change: StatusChange) -> None:
        if self.fail and change.new_status is PaymentStatus.REFUNDED:
            raise RuntimeError("the application died while hearing of the refund")
        super().payment_status_changed(change)


@pytest.mark.parametrize("notice_first", [False, True], ids=["answer-first", "notice-first"])
def test_a_refund_change_stays_in_the_outbox_until_the_hook_returns(
    harness: ExampleHarness, faults: FaultInjector, tmp_path: Path, notice_first: bool
) -> None:
    app = FailsOnRefund()
    with facade(harness, faults, tmp_path / "l.db", app) as payments:
        paid(payments, harness)
        if notice_first:
            # The notice is applied before the refund's answer is recorded.
            faults.inject(Fault.timeout(), times=3)
            with pytest.raises(RequestTimeout):
                payments.refund_order(refund("1.00"))
            notice = harness.sandbox.deliveries[-1]
            applied = payments.apply_callback("example", notice.headers, notice.body)
            assert applied.result is not None
            assert applied.result.applied
        else:
            assert payments.refund_order(refund("1.00")).status is RefundStatus.SUCCEEDED
        assert payments.ledger is not None
        (waiting,) = payments.ledger.unannounced_changes()
        assert waiting.new_status is PaymentStatus.REFUNDED
        app.fail = False  # the process restarts
        assert payments.announce_pending_changes() == 1
        assert payments.ledger.unannounced_changes() == []
        assert payments.announce_pending_changes() == 0
    assert app.seen == [
        ("booking-1", PaymentStatus.PENDING, PaymentStatus.PAID),
        ("booking-1", PaymentStatus.PAID, PaymentStatus.REFUNDED),
    ]


def pending_refund(payments: Payments, faults: FaultInjector, amount: str, ref: str) -> None:
    """A refund the provider made whose every answer was lost: the ledger holds it pending."""
    faults.inject(Fault.timeout(), times=3)
    with pytest.raises(RequestTimeout):
        payments.refund_order(refund(amount, ref))


def test_reconciling_refunds_settles_a_pending_refund_by_query_without_sending_it_again(
    harness: ExampleHarness, faults: FaultInjector, payments: Payments, changes: Changes
) -> None:
    pending_refund(payments, faults, "0.40", "cancel-1")
    sent = len(faults.requests)
    (settled,) = payments.reconcile_refunds(timedelta(0))
    asked = faults.requests[sent:]
    assert payments.ledger is not None
    held = payments.ledger.get_refund("example", "booking-1", "cancel-1")
    order = payments.ledger.get_order("example", "booking-1")
    assert payments.reconcile_refunds(timedelta(0)) == []  # nothing is pending any more
    assert harness.refund_count() == 1
    assert [r.method for r in asked] == ["GET"]  # one query, never a second refund
    assert (settled.reference, settled.refund_reference) == ("booking-1", "cancel-1")
    assert (settled.status, settled.amount) == (RefundStatus.SUCCEEDED, Money("0.40", "USD"))
    assert settled.reason == "booking cancelled"
    assert held == settled
    assert order is not None
    assert (order.status, order.refunded) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        Money("0.40", "USD"),
    )
    assert changes.seen[-1] == ("booking-1", PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED)


def test_a_refund_younger_than_asked_or_of_another_provider_is_not_reconciled(
    harness: ExampleHarness, faults: FaultInjector, payments: Payments
) -> None:
    pending_refund(payments, faults, "0.40", "cancel-1")
    sent = len(faults.requests)
    assert payments.reconcile_refunds(timedelta(hours=1)) == []
    assert payments.reconcile_refunds(timedelta(0), provider="other") == []
    assert len(faults.requests) == sent
    (settled,) = payments.reconcile_refunds(timedelta(0), provider="example")
    assert settled.status is RefundStatus.SUCCEEDED


def test_a_refund_whose_query_fails_stays_pending_and_the_others_are_reconciled(
    harness: ExampleHarness,
    faults: FaultInjector,
    payments: Payments,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pending_refund(payments, faults, "0.40", "cancel-1")
    pending_refund(payments, faults, "0.30", "cancel-2")
    faults.inject(Fault.timeout(), times=3)  # every query of the first refund is lost
    with caplog.at_level("WARNING", logger="payments_core.refunding"):
        first, second = sorted(
            payments.reconcile_refunds(timedelta(0)), key=lambda r: r.refund_reference
        )
    assert payments.ledger is not None
    held = payments.ledger.get_refund("example", "booking-1", "cancel-1")
    assert harness.refund_count() == 2
    assert (first.refund_reference, first.status) == ("cancel-1", RefundStatus.PENDING)
    assert held == first
    assert (second.refund_reference, second.status) == ("cancel-2", RefundStatus.SUCCEEDED)
    (warning,) = [r for r in caplog.records if "stays pending" in r.getMessage()]
    assert warning.getMessage() == (  # the error too, for whoever reads the log
        "refund cancel-1 stays pending: query_refund to example: no answer in time (ReadTimeout)"
    )


def test_a_refund_the_provider_holds_none_of_stays_pending_and_is_never_sent(
    harness: ExampleHarness, faults: FaultInjector, payments: Payments
) -> None:
    pending_refund(payments, faults, "0.40", "cancel-1")
    assert payments.ledger is not None
    (held,) = payments.ledger.pending_refunds(timedelta(0))
    missing = b'{"error":{"code":"refund_not_found","message":"injected"}}'
    faults.inject(Fault.answer(404, missing))
    sent = len(faults.requests)
    (same,) = payments.reconcile_refunds(timedelta(0))
    asked = faults.requests[sent:]
    still = payments.ledger.get_refund("example", "booking-1", "cancel-1")
    assert [r.method for r in asked] == ["GET"]
    assert same == held == still
    assert same.status is RefundStatus.PENDING
    assert harness.refund_count() == 1


def test_the_async_refund_reconciliation_matches_the_blocking_one(
    harness: ExampleHarness, faults: FaultInjector, tmp_path: Path
) -> None:
    payments = facade(harness, faults, tmp_path / "l.db")
    paid(payments, harness)
    pending_refund(payments, faults, "1.00", "cancel-1")

    async def flow() -> list[RefundStatus]:
        async with payments:
            return [r.status for r in await payments.reconcile_refunds_async(timedelta(0))]

    assert asyncio.run(flow()) == [RefundStatus.SUCCEEDED]
    assert harness.refund_count() == 1


def test_a_pending_refund_the_provider_holds_none_of_and_then_refuses_frees_its_reference(
    harness: ExampleHarness, faults: FaultInjector, payments: Payments
) -> None:
    pending_refund(payments, faults, "0.40", "cancel-1")
    missing = b'{"error":{"code":"refund_not_found","message":"injected"}}'
    refused = b'{"error":{"code":"order_not_refundable","message":"injected"}}'
    faults.inject(Fault.answer(404, missing))  # asked first: the provider holds none
    faults.inject(Fault.answer(409, refused))  # then sent, and refused outright
    sent = len(faults.requests)
    with pytest.raises(ProviderError):
        payments.refund_order(refund("0.40"))
    assert [r.method for r in faults.requests[sent:] if "/refunds" in r.url.path] == [
        "GET",
        "POST",
    ]
    assert payments.ledger is not None
    assert payments.ledger.refunds_for("example", "booking-1") == []


def test_reconciling_one_provider_passes_over_another_providers_earlier_refunds(
    harness: ExampleHarness, faults: FaultInjector, payments: Payments
) -> None:
    """Refunds of other providers pending before this provider's are passed over, and the
    reconciliation goes on to this provider's (it does not stop at the first one it skips)."""
    ledger = payments.ledger
    assert ledger is not None
    ledger.record_order(order_for("elsewhere", PaymentStatus.PAID))
    ledger.reserve_refund(
        NAME,
        RefundRequest(reference="elsewhere", refund_reference="r-1", amount=Money("0.10", "USD")),
    )
    pending_refund(payments, faults, "0.40", "cancel-1")
    assert [r.provider for r in ledger.pending_refunds(timedelta(0))] == [NAME, "example"]
    (settled,) = payments.reconcile_refunds(timedelta(0), provider="example")
    assert (settled.refund_reference, settled.status) == ("cancel-1", RefundStatus.SUCCEEDED)
    assert [r.provider for r in ledger.pending_refunds(timedelta(0))] == [NAME]
