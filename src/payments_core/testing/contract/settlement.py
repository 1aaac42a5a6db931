"""The contracts on what follows an order: its callbacks and its refunds.

Genuine callbacks are accepted once and forged ones refused; a status that is not final never
ends an order; a refund is made once per refund reference, never for more than was paid, never
of an unpaid order.
"""

from __future__ import annotations

from functools import partial

import attrs
import pytest
from hypothesis import given

from payments_core.errors import ProviderError, ValidationError
from payments_core.facade import Payments
from payments_core.models import CallbackRequest, Order, PaymentStatus, RefundStatus
from payments_core.money import Money
from payments_core.outcomes import CallbackOutcome
from payments_core.refunding import reserve_refund
from payments_core.testing.changes import ChangeRecorder
from payments_core.testing.contract.runner import (
    ContractRun,
    check_paid_event,
    check_refund,
    check_refused,
    contract_test,
    expect_error,
    handle,
    require,
    require_value,
    skip_without_refunds,
)
from payments_core.testing.harness import Fault
from payments_core.testing.profiles import contract_settings
from payments_core.testing.strategies import CallbackMutation, callback_mutations, callback_requests


class CallbackContracts:
    """Callbacks: genuine ones accepted once, tampered and malformed ones refused."""

    @contract_test(
        "callback-accepted",
        hooks={"create_order", "handle_callback"},
        summary="a genuine paid callback is accepted (2xx) and says which order was paid, with "
        "a stable event id and exact money",
    )
    def test_genuine_callback_is_accepted(self, run: ContractRun) -> None:
        """A genuine callback verifies and describes the payment."""
        payments = run.payments()
        order = payments.create_order(run.request("callback", payments))
        result = handle(payments, run.harness.name, run.harness.paid_callback(order))
        check_paid_event(result, order, run.harness.name)

    @contract_test(
        "callback-duplicate",
        hooks={"create_order", "handle_callback"},
        summary="a callback delivered twice, to one app instance or two, gives the same event "
        "and event id both times; different orders' events have different ids",
    )
    def test_duplicate_callback_is_harmless(self, run: ContractRun) -> None:
        """Redelivery is harmless: same event, same id, acknowledged again."""
        payments = run.payments()
        order = payments.create_order(run.request("duplicate", payments))
        callback = run.harness.paid_callback(order)
        first = handle(payments, run.harness.name, callback)
        second = handle(payments, run.harness.name, callback)
        third = handle(run.payments(), run.harness.name, callback)
        for label, result in (("a redelivery", second), ("another instance", third)):
            check_paid_event(result, order, run.harness.name)
            require(
                result.event == first.event,
                f"{label} gave event {result.event!r}, the first delivery {first.event!r}",
            )
        other = payments.create_order(run.request("duplicate-other", payments))
        other_result = handle(payments, run.harness.name, run.harness.paid_callback(other))
        assert first.event is not None
        assert other_result.event is not None
        require(
            other_result.event.event_id != first.event.event_id,
            f"two different orders' callbacks share event id {first.event.event_id!r}",
        )

    @contract_test(
        "callback-tamper",
        hooks={"create_order", "handle_callback"},
        summary="every tampered copy of a genuine callback (flipped byte, dropped header, "
        "re-serialised body, shifted timestamp, changed key name, bad signature) is refused with "
        "a CallbackError and a 4xx reply",
    )
    def test_tampered_callbacks_are_refused(self, run: ContractRun) -> None:
        """No tampered callback is accepted."""
        payments = run.payments()
        order = payments.create_order(run.request("tamper", payments))
        genuine = run.harness.paid_callback(order)

        @contract_settings()
        @given(callback_mutations(run.harness.callback_format))
        def check(mutation: CallbackMutation) -> None:
            what = f"a callback tampered by {mutation.description}"
            check_refused(payments, run.harness.name, mutation(genuine), what)

        check()

    @contract_test(
        "callback-garbage",
        hooks={"handle_callback"},
        summary="arbitrary headers and bodies are refused with a CallbackError and a 4xx reply, "
        "never another exception",
    )
    def test_malformed_callbacks_are_refused(self, run: ContractRun) -> None:
        """Random callbacks are refused cleanly."""
        payments = run.payments()

        @contract_settings()
        @given(callback_requests(run.harness.callback_format))
        def check(callback: CallbackRequest) -> None:
            name = run.harness.name
            check_refused(payments, name, callback, "a malformed callback", "a random callback")

        check()

    @contract_test(
        "not-final-never-finalises",
        hooks={"create_order", "handle_callback"},
        summary="a callback sent before a payment ends (seen but not confirmed, held for the "
        "merchant's review) states a status that is not final, leaves the ledger's order not "
        "final and is announced to the application; once the order is paid, the same "
        "callbacks again change nothing (harnesses giving unfinished_callbacks)",
    )
    def test_not_final_status_never_finalises(self, run: ContractRun) -> None:
        """A status that is not final never ends an order, nor undoes an ending."""
        heard = ChangeRecorder()
        payments = run.payments(ledger=run.ledger(), plugins=(heard,))
        name = run.harness.name
        order = payments.create_order(run.request("not-final", payments))
        notices = run.harness.unfinished_callbacks(order)
        if not notices:
            pytest.skip("the harness gives no callback before a payment ends")
        for number, notice in enumerate(notices, 1):
            what = f"callback {number} of {len(notices)} before the payment ended"
            event = require_value(apply(payments, name, notice).event, f"{what} gave no event")
            require(not event.status.is_final, f"{what} says {event.status}, a final status")
            status = stored_status(payments, name, order)
            require(not status.is_final, f"{what} left the ledger's order {status}")
        ended = [change for change in heard.changes if change.new_status.is_final]
        require(not ended, f"the application heard {ended} before the payment ended")
        require(heard.changes, "the application heard nothing of the callbacks before payment")
        apply(payments, name, run.harness.paid_callback(order))
        status = stored_status(payments, name, order)
        require(status is PaymentStatus.PAID, f"the paid callback left the order {status}")
        heard.changes.clear()
        for number, notice in enumerate(notices, 1):
            apply(payments, name, notice)
            status = stored_status(payments, name, order)
            require(
                status is PaymentStatus.PAID,
                f"callback {number} before the payment ended, delivered again once it was "
                f"paid, moved the order to {status}",
            )
        require(heard.changes == [], f"late callbacks announced {heard.changes}")


def apply(payments: Payments, provider: str, callback: CallbackRequest) -> CallbackOutcome:
    return payments.apply_callback(provider, callback.headers, callback.body)


def stored_status(payments: Payments, provider: str, order: Order) -> PaymentStatus:
    assert payments.ledger is not None
    stored = payments.ledger.get_order(provider, order.reference)
    return require_value(stored, f"the ledger lost order {order.reference!r}").status


class RefundContracts:
    """Refunds: once per refund reference, never more than was paid, never of an unpaid order."""

    @contract_test(
        "idempotent-refund",
        hooks={"create_order", "query_order", "refund_order", "query_refund"},
        summary="refunding twice under one refund reference, from one facade or two, or after "
        "the refund's answer was lost, gives the same refund and the provider makes one "
        "(providers listing the refund_order capability)",
    )
    def test_same_refund_reference_gives_same_refund(self, run: ContractRun) -> None:
        """A repeated refund (a retry, a second app instance, a lost answer) refunds once."""
        payments = run.payments()
        skip_without_refunds(payments, run.harness.name)
        order = run.paid_order("refund", payments)
        before = run.harness.refund_count()
        request = run.refund_request(order, "refund", 1)
        first = check_refund(payments.refund_order(request), request, run.harness.name)
        for label, facade in (("the second refund", payments), ("another facade's", None)):
            again = (facade or run.payments()).refund_order(request)
            require(
                again.provider_refund_id == first.provider_refund_id,
                f"{label} gave refund {again.provider_refund_id!r}, the first gave "
                f"{first.provider_refund_id!r}",
            )
        made = run.refunds_made(before)
        require(made in {None, 1}, f"three refunds under one refund reference made {made}")
        lost = run.refund_request(order, "refund-lost", 1)
        run.faults.inject(Fault.forward())  # the order's query goes through
        run.faults.inject(Fault.timeout())  # the refund is made, its answer lost
        recovered = check_refund(payments.refund_order(lost), lost, run.harness.name)
        again = payments.refund_order(lost)
        require(
            again.provider_refund_id == recovered.provider_refund_id,
            "after a lost answer, refunding again gave another provider refund",
        )
        made = run.refunds_made(before)
        require(made in {None, 2}, f"two refund references, one answer lost, made {made}")

    @contract_test(
        "over-refund-refused",
        hooks={"create_order", "refund_order"},
        summary="a refund of more than remains of a paid order is refused with a typed, "
        "non-retryable error, and refunds nothing",
    )
    def test_over_refund_is_refused(self, run: ContractRun) -> None:
        """No refund gives back more than was paid."""
        payments = run.payments()
        skip_without_refunds(payments, run.harness.name)
        order = run.paid_order("over-refund", payments)
        payments.refund_order(run.refund_request(order, "over-refund-part", 1))
        before = run.harness.refund_count()
        excess = run.refund_request(order, "over-refund-excess", 2)
        error = expect_error(
            partial(payments.refund_order, excess), "refunding 2 of what remains 1"
        )
        retryable = error.classification is not None and error.classification.retryable
        require(
            isinstance(error, ValidationError | ProviderError) and not retryable,
            f"refunding more than remains raised {type(error).__name__} (retryable="
            f"{retryable}): expected a ValidationError or a non-retryable ProviderError",
        )
        made = run.refunds_made(before)
        require(made in {None, 0}, f"a refund of more than remains made {made} refund(s)")

    @contract_test(
        "refund-unpaid-refused",
        hooks={"create_order", "refund_order"},
        summary="the provider refuses to refund an order it holds as unpaid, even when told it "
        "is paid; the facade refuses it with a ValidationError naming reference",
    )
    def test_refund_of_an_unpaid_order_is_refused(self, run: ContractRun) -> None:
        """Nothing is refunded of an order nobody paid."""
        payments = run.payments()
        skip_without_refunds(payments, run.harness.name)
        order = payments.create_order(run.request("refund-unpaid", payments))
        request = run.refund_request(order, "refund-unpaid", 1)
        before = run.harness.refund_count()
        error = expect_error(partial(payments.refund_order, request), "refunding an unpaid order")
        require(
            isinstance(error, ValidationError) and error.field == "reference",
            f"refunding an unpaid order raised {error!r}, not a ValidationError on reference",
        )
        # The provider itself, told by a stale ledger that the order is paid, must refuse too.
        forged = attrs.evolve(order, status=PaymentStatus.PAID)
        operation = payments.provider(run.harness.name).refund_order(forged, request)
        operation = require_value(operation, "refund_order gave no operation")
        expect_error(partial(run.drive, operation), "the provider's refund of an unpaid order")
        made = run.refunds_made(before)
        require(made in {None, 0}, f"refunding an unpaid order made {made} refund(s)")

    @contract_test(
        "refund-notice-first",
        hooks={"create_order", "handle_callback", "refund_order", "refund_id"},
        summary="a refund's notification that arrives before the refund's answer is recorded "
        "settles the refund in the ledger (it names the refund by the caller's refund reference "
        "or by the id refund_id gave beforehand); the answer arriving later changes nothing",
    )
    def test_refund_notice_before_the_answer_settles_it(self, run: ContractRun) -> None:
        """The notice and the answer race: whichever comes first settles the refund, once."""
        ledger = run.ledger()
        payments = run.payments(ledger=ledger)
        skip_without_refunds(payments, run.harness.name)
        name = run.harness.name
        asked = run.request("notice-first", payments)
        created = payments.create_order(attrs.evolve(asked, price=Money(2, asked.price.currency)))
        apply(payments, name, run.harness.paid_callback(created))
        order = ledger.get_order(name, created.reference)
        require(
            order is not None and order.status is PaymentStatus.PAID,
            f"the paid callback left the order {order!r}",
        )
        assert order is not None
        request = run.refund_request(order, "notice-first", 1)
        hooks = payments.provider(name)
        # As the facade does: reserved first, then sent; here the answer is held back.
        reserve_refund(ledger, hooks, request)
        operation = hooks.refund_order(order, request)
        operation = require_value(operation, "refund_order gave no operation")
        answer = check_refund(run.drive(operation), request, name)
        notice = run.harness.refund_callback(order, answer)
        if notice is None:
            pytest.skip("the harness gives no refund notification (refund_callback)")
        result = apply(payments, name, notice).result
        require(
            result is not None and result.flagged is None and result.refund is not None,
            "the refund's notification, arriving before its answer, was not applied "
            f"({'no event' if result is None else result.flagged}): a notice must name its "
            "refund by the caller's refund reference (RefundNotice.refund_reference) or by the "
            "id the refund_id hook gave before it was sent",
        )
        assert result is not None
        assert result.refund is not None
        settled = ledger.settle_refund(answer)
        kept = ledger.get_refund(name, request.reference, request.refund_reference)
        require(
            kept is not None and kept.status is result.refund.status and settled.change is None,
            f"the answer arriving after the notice changed the refund: {kept!r}",
        )
        refunded = ledger.get_order(name, order.reference)
        succeeded = result.refund.status is RefundStatus.SUCCEEDED
        expected = result.refund.amount if succeeded else None
        require(
            refunded is not None and refunded.refunded == expected,
            f"after the notice and the answer the order's refunded total is "
            f"{None if refunded is None else refunded.refunded}, not {expected}",
        )
