"""Refunds: the refund and refund-query bodies, and their answers as :class:`~payments_core.Refund`.

Binance names a refund by the merchant's ``refundRequestId``, derived here from the order's
reference and the caller's refund reference (:func:`~payments_binance.trade_no.refund_request_id`),
so a refund sent again after a lost answer is the same refund (``duplicateRequest`` ``"Y"``).

Binance refunds in the order's currency: for a fiat-priced order that is the crypto asset it
converted the price to (``1.00 USD`` became ``1.00 USDT``). The caller's refund is in the price's
currency, so :func:`order_currency_amount` takes the same share of the settlement.

The refund answer does not say whether the money is back; a refund is ``pending`` until a query
(``refundStatus``) or the ``PAY_REFUND`` notification says it succeeded or failed.
"""

from __future__ import annotations

import decimal
from collections.abc import Collection
from decimal import ROUND_DOWN, Decimal
from typing import Final

import attrs

from payments_binance import orders, protocol, wire
from payments_binance.api import ApiClient
from payments_binance.trade_no import refund_request_id
from payments_core import (
    Money,
    Operation,
    Order,
    ProviderError,
    Refund,
    RefundRequest,
    RefundStatus,
    ValidationError,
)

__all__ = [
    "STATUS_BY_REFUND_STATUS",
    "order_currency_amount",
    "query_refund",
    "refund",
]

#: A query's ``refundStatus`` in provider-neutral words.
STATUS_BY_REFUND_STATUS: Final[dict[str, RefundStatus]] = {
    protocol.BinanceRefundStatus.REFUND_SUCCESS: RefundStatus.SUCCEEDED,
    protocol.BinanceRefundStatus.REFUND_FAIL: RefundStatus.FAILED,
    protocol.BinanceRefundStatus.REFUND_PENDING: RefundStatus.PENDING,
}
_EIGHT_PLACES: Final = Decimal(1).scaleb(-protocol.AMOUNT_MAX_DECIMALS)
# Enough digits for any product of two amounts: the caller's context plays no part.
_CONTEXT: Final = decimal.Context(prec=60)


def order_currency_amount(order: Order, amount: Money) -> Money:
    """``amount``, in ``order``'s price currency, as Binance's ``refundAmount``.

    A crypto-priced order, or one whose settlement is in the price's currency, refunds the
    amount as it is. A fiat-priced order refunds in its settlement currency: the whole price
    is the whole settlement, and a part the same share of it, rounded down to 8 places, so
    that partial refunds never add up to more than was paid.
    """
    settlement = order.settlement
    if settlement is None or settlement.currency == amount.currency:
        return amount
    if amount.amount == order.amount.amount:
        return settlement
    share = _CONTEXT.divide(
        _CONTEXT.multiply(amount.amount, settlement.amount), order.amount.amount
    )
    return Money(
        share.quantize(_EIGHT_PLACES, rounding=ROUND_DOWN, context=_CONTEXT), settlement.currency
    )


def _settled(api: ApiClient, order: Order) -> Operation[Order]:
    """``order`` with its settlement: queried from Binance for a fiat price without one."""
    if order.settlement is not None or order.amount.currency_info.crypto:
        return order
    found = yield from api.call(
        protocol.PATH_QUERY_ORDER,
        orders.lookup_body(order.reference),
        lambda data: orders.order_from_query(
            api.provider, order.reference, wire.structure(data, wire.QueryOrderResult)
        ),
        operation="query_order",
    )
    return attrs.evolve(order, settlement=found.settlement)


def refund(api: ApiClient, order: Order, request: RefundRequest) -> Operation[Refund]:
    """Refund ``request.amount`` of ``order``; the answer is a pending :class:`Refund`.

    A fiat-priced order whose settlement the caller does not know is queried first.

    :raises ValidationError: ``callback_url`` longer than Binance takes; or ``refund_reference``
        when Binance answers that this refund was made before for another amount.
    :raises ProviderError: from the operation, for Binance's refusals (400301 to 400304,
        400204 for an order that is not paid).
    """
    if request.callback_url is not None and len(request.callback_url) > orders.URL_MAX:
        raise ValidationError(
            "callback_url", f"must be at most {orders.URL_MAX} characters for Binance Pay"
        )
    order = yield from _settled(api, order)
    amount = order_currency_amount(order, request.amount)
    reading = _Reading(api.provider, order, request, amount)
    body = wire.RefundBody(
        refund_request_id=reading.request_id,
        prepay_id=order.provider_order_id,
        refund_amount=amount.amount,
        refund_reason=request.reason or None,
        webhook_url=request.callback_url,
    )
    return (
        yield from api.call(
            protocol.PATH_REFUND, wire.unstructure(body), reading.refunded, operation="refund_order"
        )
    )


def query_refund(
    api: ApiClient, order: Order, request: RefundRequest, *, not_found: Collection[str]
) -> Operation[Refund | None]:
    """The refund Binance holds for ``request``, or ``None`` if it holds none.

    Binance does not document how it answers a query for a ``refundRequestId`` it never saw:
    an error whose code is in ``not_found`` (setting ``refund_not_found_codes``) means none.

    :raises ValidationError: naming ``refund_reference`` when Binance holds this refund for
        another amount.
    :raises ProviderError: from the operation, for any other error answer.
    """
    order = yield from _settled(api, order)
    reading = _Reading(api.provider, order, request, order_currency_amount(order, request.amount))
    body = wire.unstructure(wire.RefundLookup(refund_request_id=reading.request_id))
    try:
        return (
            yield from api.call(
                protocol.PATH_REFUND_QUERY, body, reading.queried, operation="query_refund"
            )
        )
    except ProviderError as error:
        if error.provider_code in not_found:
            return None
        raise


class _Reading:
    """Reads a refund or refund-query answer about one refund, checking it is that refund."""

    def __init__(self, provider: str, order: Order, request: RefundRequest, amount: Money) -> None:
        self.provider = provider
        self.order = order
        self.request = request
        self.amount = amount
        self.request_id = refund_request_id(request.reference, request.refund_reference)

    def refunded(self, data: object) -> Refund:
        """The refund answer: pending, since it does not say the money is back."""
        return self._refund(wire.structure(data, wire.RefundResult), RefundStatus.PENDING)

    def queried(self, data: object) -> Refund:
        """The refund-query answer, with its ``refundStatus``."""
        result = wire.structure(data, wire.RefundResult)
        status = STATUS_BY_REFUND_STATUS.get(result.refund_status or "")
        if status is None:
            raise wire.MalformedAnswer(f"unknown refundStatus {result.refund_status!r}")
        return self._refund(result, status)

    def _refund(self, result: wire.RefundResult, status: RefundStatus) -> Refund:
        order, request, amount = self.order, self.request, self.amount
        if (
            result.refund_request_id != self.request_id
            or result.prepay_id != order.provider_order_id
        ):
            raise wire.MalformedAnswer(
                f"the answer is about refund {result.refund_request_id!r} of order "
                f"{result.prepay_id!r}, not {self.request_id!r} of {order.provider_order_id!r}"
            )
        if result.refund_amount != amount.amount:
            # A refundRequestId seen before (duplicateRequest "Y") for another amount.
            raise ValidationError(
                "refund_reference",
                f"{request.refund_reference!r} names a refund of {result.refund_amount} at "
                f"Binance, not {amount}",
                provider=self.provider,
            )
        return Refund(
            provider=self.provider,
            reference=request.reference,
            refund_reference=request.refund_reference,
            provider_refund_id=result.refund_request_id,
            provider_order_id=order.provider_order_id,
            amount=request.amount,
            status=status,
            settlement=None if amount.currency == request.amount.currency else amount,
            reason=request.reason,
        )
