"""The refund contracts (for providers listing the ``refund_order`` capability)."""

from __future__ import annotations

from functools import partial

import attrs

from payments_core.config import HttpSettings
from payments_core.errors import ProviderError, ValidationError
from payments_core.models import PaymentStatus
from payments_core.testing.contract.checks import check_refund, expect_error, skip_without_refunds
from payments_core.testing.contract.runner import ContractRun, contract_test, require
from payments_core.testing.harness import Fault
from payments_core.transport import HttpxSender, drive


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
        require(operation is not None, "refund_order gave no operation")
        assert operation is not None
        sender = HttpxSender(HttpSettings(), transport=run.faults)
        try:
            expect_error(
                lambda: drive(operation, partial(sender.send, provider=run.harness.name)),
                "the provider's refund of an unpaid order",
            )
        finally:
            sender.close()
        made = run.refunds_made(before)
        require(made in {None, 0}, f"refunding an unpaid order made {made} refund(s)")
