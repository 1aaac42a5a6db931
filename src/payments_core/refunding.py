"""One refund across attempts: how the facade makes a refund safe to repeat.

The provider derives its refund id from the order's reference and the caller's refund
reference, and sending the same refund again is safe at the provider. So a refund whose
outcome is unknown (a timeout, a lost answer) is recovered by *querying* the refund
(``query_refund``) before anything else, and only if the provider holds none is the refund sent
again: with the same id, never a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from payments_core.errors import PaymentsError, PluginError, ValidationError
from payments_core.flows import Flow, call_provider, query_flow, reconciliation_event
from payments_core.http import blocking
from payments_core.models import (
    ErrorCategory,
    Order,
    PaymentEvent,
    PaymentStatus,
    Refund,
    RefundRequest,
    RefundStatus,
)
from payments_core.plugins import ProviderHooks
from payments_core.redaction import get_logger
from payments_core.retry import RetryPolicy, is_retryable
from payments_core.rules import OrderState, check_refundable, worth_applying

if TYPE_CHECKING:
    from payments_core.ledger import Ledger, RefundOutcome

__all__ = [
    "RefundAttempt",
    "check_order_refundable",
    "reconcile_refund_flow",
    "reconcile_refunds_flow",
    "refund_flow",
    "reserve_refund",
]

log = get_logger("payments_core.refunding")


def check_order_refundable(order: Order | None, request: RefundRequest, provider: str) -> Order:
    """``order`` (the provider's answer to a query) if ``request`` may refund it.

    Without a ledger the only total known is the order's own ``refunded``, if the provider
    states one; the provider refuses a refund beyond what remains.

    :raises ValidationError: as :func:`~payments_core.rules.check_refundable`, and
        naming ``reference`` if the provider holds no such order.
    """
    if order is None:
        raise ValidationError(
            "reference", f"{provider} holds no order for {request.reference!r}", provider=provider
        )
    state = OrderState(
        order.reference,
        order.provider_order_id,
        order.provider_reference,
        order.status,
        order.amount.amount,
        order.amount.currency,
    )
    held = Decimal(0) if order.refunded is None else order.refunded.amount
    check_refundable(state, request, held, provider)
    return order


def reserve_refund(ledger: Ledger, hooks: ProviderHooks, request: RefundRequest) -> RefundOutcome:
    """Reserve ``request`` in ``ledger`` before the provider is asked (``Ledger.reserve_refund``).

    With the provider's refund id when the provider knows it beforehand (the ``refund_id``
    hook): a notice that arrives before the refund's answer then finds its refund.
    """
    return ledger.reserve_refund(hooks.name, request, provider_refund_id=hooks.refund_id(request))


def refund_flow(
    hooks: ProviderHooks,
    request: RefundRequest,
    retry: RetryPolicy,
    ledger: Ledger | None,
    *,
    apply: Callable[[Ledger, PaymentEvent], object],
    settle: Callable[[Ledger, Refund], Refund],
) -> Flow[Refund]:
    """Refund ``request`` with its recovery; see ``Payments.refund_order``.

    :param ledger: Where the refund is checked, reserved and recorded, if anywhere.
    :param apply: Applies an event to the ledger and announces the change it makes.
    :param settle: Records the provider's answer about a refund and announces the order's
        move.
    """
    order: Order | None
    if ledger is None:
        answer = yield from query_flow(hooks, request.reference, retry)
        if answer is not None and answer.status is PaymentStatus.REFUNDED:
            # Asked again after it refunded everything: the refund, if it is this one.
            known = RefundAttempt(hooks, answer, request, recover=True).known()
            if known is not None:
                found = yield from known
                if found is not None:
                    return found
        order = check_order_refundable(answer, request, hooks.name)
        reserved = None
    else:
        order = yield from _refundable(hooks, request, retry, ledger, apply)
        reserved = yield from blocking(reserve_refund, ledger, hooks, request)
        if not reserved.created and reserved.refund.status is not RefundStatus.PENDING:
            return reserved.refund
        if order is None:
            order = yield from blocking(ledger.get_order, hooks.name, request.reference)
    assert order is not None  # the reservation found it
    attempt = RefundAttempt(
        hooks, order, request, recover=reserved is not None and not reserved.created
    )
    try:
        refund = yield from retry.flow(attempt.flow, should_retry=is_retryable)
    except PaymentsError:
        if ledger is not None and not attempt.unknown:
            yield from blocking(
                ledger.release_refund, hooks.name, request.reference, request.refund_reference
            )
        raise
    follow_up = attempt.follow_up(refund)
    if follow_up is not None:
        if ledger is not None:
            # Known by its provider id now, the refund's notification can settle it too.
            yield from blocking(settle, ledger, refund)
        try:
            refund = attempt.settled(refund, (yield from follow_up))
        except PaymentsError as error:
            log.info("refund %s stays pending: %s", request.refund_reference, error)
    if ledger is None:
        return refund
    return (yield from blocking(settle, ledger, refund))


def reconcile_refunds_flow(
    hooks_of: Callable[[str], ProviderHooks],
    retry: RetryPolicy,
    ledger: Ledger,
    older_than: timedelta,
    provider: str | None,
    *,
    settle: Callable[[Ledger, Refund], Refund],
) -> Flow[list[Refund]]:
    """:func:`reconcile_refund_flow` for each refund pending at least ``older_than`` (of
    ``provider``, or of any); one that fails stays pending."""
    checked = []
    for refund in (yield from blocking(ledger.pending_refunds, older_than)):
        if provider is not None and refund.provider != provider:
            continue
        try:
            now = yield from reconcile_refund_flow(
                hooks_of(refund.provider), refund, retry, ledger, settle=settle
            )
        except PaymentsError as error:
            log.warning("refund %s stays pending: %s", refund.refund_reference, error)
            now = refund
        checked.append(now)
    return checked


def reconcile_refund_flow(
    hooks: ProviderHooks,
    refund: Refund,
    retry: RetryPolicy,
    ledger: Ledger,
    *,
    settle: Callable[[Ledger, Refund], Refund],
) -> Flow[Refund]:
    """Ask the provider how the pending ``refund`` stands, and record a final answer.

    The refund is asked for by ``query_refund`` with the request it was reserved for. A
    provider without that hook, or that holds no such refund, leaves it pending (one that
    still says pending too): reconciliation never sends a refund (``refund_order`` with the
    same refund reference does, once the provider holds none).

    :returns: The refund as the ledger now holds it.
    """
    order = yield from blocking(ledger.get_order, hooks.name, refund.reference)
    assert order is not None  # a refund is reserved only for a recorded order
    request = RefundRequest(
        reference=refund.reference,
        refund_reference=refund.refund_reference,
        amount=refund.amount,
        reason=refund.reason,
    )
    attempt = RefundAttempt(hooks, order, request, recover=True)
    if attempt.known() is None:
        return refund  # the provider cannot be asked: a callback, or asking again, settles it

    def query() -> Flow[Refund | None]:
        known = attempt.known()
        assert known is not None  # it was not the first time
        return known

    found = yield from retry.flow(query, should_retry=is_retryable)
    if found is None:
        return refund
    # Still pending, it is recorded all the same: its id and settlement, for its notice.
    return (yield from blocking(settle, ledger, found))


def _refundable(
    hooks: ProviderHooks,
    request: RefundRequest,
    retry: RetryPolicy,
    ledger: Ledger,
    apply: Callable[[Ledger, PaymentEvent], object],
) -> Flow[Order | None]:
    """The ledger's order for the refund, first brought up to date if it is not paid.

    A payment whose callback has not arrived yet is learnt from the provider and applied
    as reconciliation applies it; an order the ledger never saw is recorded. A refund
    recorded before under the refund reference needs neither: it is the answer.
    """
    reference = request.reference
    order = yield from blocking(ledger.get_order, hooks.name, reference)
    if order is not None and order.status.is_refundable:
        return order
    known = yield from blocking(ledger.get_refund, hooks.name, reference, request.refund_reference)
    if known is not None:
        return order
    answer = yield from query_flow(hooks, reference, retry)
    if answer is None:
        return order
    if order is None:
        return (yield from blocking(ledger.record_order, answer))
    if worth_applying(order.status, answer.status):
        yield from blocking(apply, ledger, reconciliation_event(hooks.name, answer))
    return (yield from blocking(ledger.get_order, hooks.name, reference))


class RefundAttempt:
    """One refund, across attempts: remembers whether its outcome is unknown.

    :param hooks: The provider's hooks.
    :param order: The order being refunded.
    :param request: The refund request.
    :param recover: Whether the refund may have been sent before (a pending refund recorded
        by an earlier call): then the first attempt queries before sending.

    Attributes:
        unknown: Whether the provider may hold the refund although no answer said so: the last
            attempt lost its answer, and no query since found nothing.
    """

    def __init__(
        self, hooks: ProviderHooks, order: Order, request: RefundRequest, *, recover: bool
    ) -> None:
        self.hooks = hooks
        self.order = order
        self.request = request
        self.unknown = recover

    def _query(self) -> Flow[Refund | None] | None:
        operation = self.hooks.query_refund(self.order, self.request)
        return None if operation is None else call_provider(self.hooks, "query_refund", operation)

    def _note(self, error: PaymentsError) -> None:
        category = None if error.classification is None else error.classification.category
        if category is ErrorCategory.OUTCOME_UNKNOWN:
            self.unknown = True

    def _checked(self, refund: Refund) -> Refund:
        """``refund`` if it is the refund asked for: same references and currency.

        Its amount is what the provider refunded, which may differ from the one asked (Binance's
        last refund attempt refunds all that remains): money that moved is recorded, never
        reported as an error.
        """
        request = self.request
        if (refund.reference, refund.refund_reference) != (
            request.reference,
            request.refund_reference,
        ):
            raise PluginError(
                f"provider {self.hooks.name!r} answered a refund of {request.refund_reference!r} "
                f"with refund {refund.refund_reference!r} of {refund.reference!r}",
                provider=self.hooks.name,
            )
        if refund.amount.currency != request.amount.currency:
            raise PluginError(
                f"provider {self.hooks.name!r} answered refund {request.refund_reference!r} "
                f"in {refund.amount.currency}, not {request.amount.currency}",
                provider=self.hooks.name,
            )
        if refund.amount != request.amount:
            log.warning(
                "%s refunded %s for refund %s of %s, not the %s asked: recorded as refunded",
                self.hooks.name,
                refund.amount,
                request.refund_reference,
                request.reference,
                request.amount,
            )
        return refund

    def flow(self) -> Flow[Refund]:
        """One attempt: the query first while the outcome is unknown, else the refund."""
        query = self._query() if self.unknown else None
        if query is not None:
            found = yield from query
            self.unknown = False  # found, or the provider holds none: sending it is the way on
            if found is not None:
                return self._checked(found)
        hooks = self.hooks
        try:
            refund = yield from call_provider(
                hooks, "refund_order", hooks.refund_order(self.order, self.request)
            )
        except PaymentsError as error:
            self._note(error)
            raise
        # An answer about another refund or currency is no answer about this one, which the
        # provider may hold: the outcome stays unknown, and the refund reserved (pending).
        self.unknown = True
        checked = self._checked(refund)
        self.unknown = False
        return checked

    def known(self) -> Flow[Refund | None] | None:
        """The query for this refund, checked against the request; ``None`` without one."""
        query = self._query()
        return None if query is None else self._checked_query(query)

    def _checked_query(self, query: Flow[Refund | None]) -> Flow[Refund | None]:
        found = yield from query
        return None if found is None else self._checked(found)

    def follow_up(self, refund: Refund) -> Flow[Refund | None] | None:
        """For a refund still pending, the query that may say it is done; else ``None``."""
        if refund.status is not RefundStatus.PENDING:
            return None
        return self._query()

    def settled(self, refund: Refund, found: Refund | None) -> Refund:
        """The follow-up query's ``found`` refund if it is this one, else ``refund``."""
        return refund if found is None else self._checked(found)
