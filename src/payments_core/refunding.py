"""One refund across attempts: how the facade makes a refund safe to repeat.

The provider derives its refund id from the order's reference and the caller's refund
reference, and sending the same refund again is safe at the provider. So a refund whose
outcome is unknown (a timeout, a lost answer) is recovered by *querying* the refund
(``query_refund``) before anything else, and only if the provider holds none is the refund sent
again: with the same id, never a new one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

from payments_core.errors import PaymentsError, PluginError, ValidationError
from payments_core.http import Operation
from payments_core.models import ErrorCategory, Order, Refund, RefundRequest, RefundStatus
from payments_core.plugins import ProviderHooks
from payments_core.rules import OrderState, check_refundable

__all__ = ["RefundAttempt", "check_order_refundable"]

T = TypeVar("T")


def check_order_refundable(order: Order | None, request: RefundRequest, provider: str) -> Order:
    """``order`` (the provider's answer to a query) if ``request`` may refund it.

    Without a ledger the only total known is the order's own ``refunded``, if the provider
    states one; the provider refuses a refund beyond what remains.

    :raises ValidationError: as :func:`~payments_core.ledger.base.check_refundable`, and
        naming ``reference`` if the provider holds no such order.
    """
    if order is None:
        raise ValidationError(
            "reference", f"{provider} holds no order for {request.reference!r}", provider=provider
        )
    state = OrderState(
        order.reference,
        order.provider_order_id,
        order.merchant_order_id,
        order.status,
        order.amount.amount,
        order.amount.currency,
    )
    held = Decimal(0) if order.refunded is None else order.refunded.amount
    check_refundable(state, request, held, provider)
    return order


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

    def _query(self) -> Operation[Refund | None] | None:
        return self.hooks.query_refund(self.order, self.request)

    def _refund(self) -> Operation[Refund]:
        operation = self.hooks.refund_order(self.order, self.request)
        if operation is None:
            raise PluginError(
                f"provider {self.hooks.name!r} does not implement refund_order",
                provider=self.hooks.name,
            )
        return operation

    def _note(self, error: PaymentsError) -> None:
        category = None if error.classification is None else error.classification.category
        if category is ErrorCategory.OUTCOME_UNKNOWN:
            self.unknown = True

    def _checked(self, refund: Refund) -> Refund:
        """``refund`` if it is the refund asked for: same references and amount."""
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
        if refund.amount != request.amount:
            raise ValidationError(
                "refund_reference",
                f"{request.refund_reference!r} already names a refund of {refund.amount} of "
                f"{request.reference!r} at {self.hooks.name}, not {request.amount}",
                provider=self.hooks.name,
            )
        return refund

    def run(self, run: Callable[[Operation[Any]], Any]) -> Refund:
        """One attempt, its operations sent by ``run``."""
        query = self._query() if self.unknown else None
        if query is not None:
            found: Refund | None = run(query)
            if found is not None:
                self.unknown = False
                return self._checked(found)
            self.unknown = False  # the provider holds none: sending it is the only way on
        try:
            refund: Refund = run(self._refund())
        except PaymentsError as error:
            self._note(error)
            raise
        self.unknown = False
        return self._checked(refund)

    async def arun(self, run: Callable[[Operation[Any]], Awaitable[Any]]) -> Refund:
        """Asynchronous :meth:`run`."""
        query = self._query() if self.unknown else None
        if query is not None:
            found: Refund | None = await run(query)
            if found is not None:
                self.unknown = False
                return self._checked(found)
            self.unknown = False
        try:
            refund: Refund = await run(self._refund())
        except PaymentsError as error:
            self._note(error)
            raise
        self.unknown = False
        return self._checked(refund)

    def known(self) -> Operation[Refund | None] | None:
        """The query for this refund, checked against the request; ``None`` without one."""
        query = self._query()
        if query is None:
            return None
        return self._checked_query(query)

    def _checked_query(self, query: Operation[Refund | None]) -> Operation[Refund | None]:
        found = yield from query
        return None if found is None else self._checked(found)

    def follow_up(self, refund: Refund) -> Operation[Refund | None] | None:
        """For a refund still pending, the query that may say it is done; else ``None``."""
        if refund.status is not RefundStatus.PENDING:
            return None
        return self._query()

    def settled(self, refund: Refund, found: Refund | None) -> Refund:
        """The follow-up query's ``found`` refund if it is this one, else ``refund``."""
        return refund if found is None else self._checked(found)
