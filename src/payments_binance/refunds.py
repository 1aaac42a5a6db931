"""Refunds: the refund and refund-query bodies, and their answers as :class:`~payments_core.Refund`.

Binance names a refund by the merchant's ``refundRequestId``, derived here from the order's
reference and the caller's refund reference (:func:`~payments_binance.trade_no.refund_request_id`),
so a refund sent again after a lost answer is the same refund (``duplicateRequest`` ``"Y"``).

Binance refunds in the order's currency: for a fiat-priced order that is the crypto asset it
converted the price to (``1.00 USD`` became ``1.00 USDT``). The caller's refund is in the price's
currency, so :func:`order_currency_amount` takes the same share of the settlement.

The refund answer does not say whether the money is back; a refund is ``pending`` until a query
(``refundStatus``) or the ``PAY_REFUND`` notification says it succeeded or failed.

Binance allows ten refunds per order, and the tenth ignores its amount and refunds everything
that remains (reference section 16.1). A :class:`RefundAttempts` remembers each order's
``remainingAttempts`` from Binance's answers, so that a partial refund that would be the last
is refused before it is sent; and whenever Binance answers with another amount than asked (the
last attempt, or a ``refundRequestId`` it knew with another amount), the :class:`Refund` states
what Binance refunded: money that moved is never reported as an error.
"""

from __future__ import annotations

import decimal
import threading
from collections.abc import Collection
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
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
    get_logger,
)

__all__ = [
    "STATUS_BY_REFUND_STATUS",
    "RefundAttempts",
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
log = get_logger("payments_binance.refunds")

#: ``400001``: how the sandbox (and perhaps Binance, undocumented) answers a reused
#: ``refundRequestId`` with another amount; the refund query then says what Binance holds.
INVALID_REQUEST: Final = "400001"
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


class RefundAttempts:
    """What Binance last said of each order's refunds: attempts left and the amount left.

    Learnt from refund and refund-query answers (``remainingAttempts``, ``orderAmount``,
    ``refundedAmount``), kept per prepay id for the provider instance (thread-safe). A process
    that has not seen an order's latest answer does not know; Binance's answer then says what
    it refunded, and that is what is recorded.
    """

    def __init__(self) -> None:
        self._left: dict[str, tuple[int, Decimal]] = {}
        self._lock = threading.Lock()

    def learn(self, result: wire.RefundResult) -> None:
        """Remember ``result``'s figures if they are the latest known for its order."""
        attempts = result.remaining_attempts
        if attempts is None or result.order_amount is None or result.refunded_amount is None:
            return
        left = result.order_amount - result.refunded_amount
        with self._lock:
            known = self._left.get(result.prepay_id)
            if known is None or attempts < known[0]:
                self._left[result.prepay_id] = (attempts, left)

    def check(self, prepay_id: str, amount: Money, provider: str) -> None:
        """Refuse ``amount`` if it is partial and Binance will refund all that remains.

        :raises ValidationError: naming ``amount``, with the amount the last refund must ask.
        """
        with self._lock:
            known = self._left.get(prepay_id)
        if known is None:
            return
        attempts, left = known
        if attempts == 1 and amount.amount < left:
            raise ValidationError(
                "amount",
                f"{amount} would be the last of Binance's ten refunds of this order, which "
                f"refunds all that remains ({left} {amount.currency}): ask for all of it",
                provider=provider,
            )


def _reading(
    api: ApiClient, order: Order, request: RefundRequest, attempts: RefundAttempts | None
) -> Operation[_Reading]:
    """The reader of ``request``'s answers; a fiat-priced ``order`` whose settlement the caller
    does not know is queried from Binance first."""
    if order.settlement is None and not order.amount.currency_info.crypto:
        found = yield from orders.query_order(api, order.reference)
        order = attrs.evolve(order, settlement=found.settlement)
    amount = order_currency_amount(order, request.amount)
    return _Reading(api.provider, order, request, amount, attempts)


def refund(
    api: ApiClient,
    order: Order,
    request: RefundRequest,
    attempts: RefundAttempts | None = None,
) -> Operation[Refund]:
    """Refund ``request.amount`` of ``order``; the answer is a pending :class:`Refund`.

    A fiat-priced order whose settlement the caller does not know is queried first. If Binance
    refunds another amount than asked (the last of its ten refunds refunds all that remains),
    the refund states what Binance refunded. A ``400001`` answer is checked with a refund query:
    if Binance holds a refund under this ``refundRequestId`` (made before, for another amount),
    that refund is the answer.

    :raises ValidationError: ``callback_url`` longer than Binance takes; ``amount`` for a
        partial refund that ``attempts`` knows would be Binance's last (nothing is sent).
    :raises ProviderError: from the operation, for Binance's refusals (400301 to 400304,
        400204 for an order that is not paid).
    """
    orders.checked_url(request.callback_url, "callback_url")
    reading = yield from _reading(api, order, request, attempts)
    prepay_id, amount = reading.order.provider_order_id, reading.amount
    if attempts is not None:
        attempts.check(prepay_id, amount, api.provider)
    body = wire.RefundBody(
        refund_request_id=reading.request_id,
        prepay_id=prepay_id,
        refund_amount=amount.amount,
        refund_reason=request.reason or None,
        webhook_url=request.callback_url,
    )
    try:
        return (
            yield from api.call(
                protocol.PATH_REFUND,
                wire.unstructure(body),
                reading.refunded,
                operation="refund_order",
            )
        )
    except ProviderError as error:
        if error.provider_code != INVALID_REQUEST:
            raise
        try:
            held = yield from reading.query(api)
        except ProviderError:
            raise error from None
        log.warning(
            "refund %s was made before for %s: recorded as Binance holds it",
            reading.request_id,
            held.amount,
        )
        return held


def query_refund(
    api: ApiClient,
    order: Order,
    request: RefundRequest,
    *,
    not_found: Collection[str],
    attempts: RefundAttempts | None = None,
) -> Operation[Refund | None]:
    """The refund Binance holds for ``request``, or ``None`` if it holds none.

    Binance does not document how it answers a query for a ``refundRequestId`` it never saw:
    an error whose code is in ``not_found`` (setting ``refund_not_found_codes``) means none.

    A refund Binance holds for another amount than asked is returned as Binance holds it.

    :raises ProviderError: from the operation, for any other error answer.
    """
    reading = yield from _reading(api, order, request, attempts)
    try:
        return (yield from reading.query(api))
    except ProviderError as error:
        if error.provider_code in not_found:
            return None
        raise


@attrs.frozen
class _Reading:
    """Reads a refund or refund-query answer about one refund, checking it is that refund."""

    provider: str
    order: Order
    request: RefundRequest
    amount: Money
    attempts: RefundAttempts | None
    #: The refund's ``refundRequestId``, derived once from the request's references.
    request_id: str = attrs.field(init=False)

    @request_id.default
    def _request_id(self) -> str:
        return refund_request_id(self.request.reference, self.request.refund_reference)

    def query(self, api: ApiClient) -> Operation[Refund]:
        """Ask Binance for this refund (the refund query)."""
        body = wire.unstructure(wire.RefundLookup(refund_request_id=self.request_id))
        return api.call(protocol.PATH_REFUND_QUERY, body, self.queried, operation="query_refund")

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
        if self.attempts is not None:
            self.attempts.learn(result)
        refunded, settlement = request.amount, amount
        if result.refund_amount != amount.amount:
            # Binance moved another amount (the last attempt refunds all that remains, or the
            # refundRequestId was used before): what it refunded is the truth.
            settlement = Money(result.refund_amount, amount.currency)
            refunded = price_amount(order, settlement, result)
            log.warning(
                "refund %s: asked %s, Binance refunded %s; recorded as refunded",
                self.request_id,
                amount,
                settlement,
            )
        return Refund(
            provider=self.provider,
            reference=request.reference,
            refund_reference=request.refund_reference,
            provider_refund_id=result.refund_request_id,
            provider_order_id=order.provider_order_id,
            amount=refunded,
            status=status,
            settlement=None if settlement.currency == refunded.currency else settlement,
            reason=request.reason,
        )


def price_amount(order: Order, settlement: Money, result: wire.RefundResult) -> Money:
    """What ``settlement`` (an amount in the order's currency) is in the price's currency.

    The inverse of :func:`order_currency_amount`. When Binance's totals say the order is
    refunded in full, the part of the price not yet counted as refunded is returned, so that
    the totals meet exactly; otherwise the same share of the price, to the price's places.
    """
    price = order.amount
    if settlement.currency == price.currency:
        return Money(settlement.amount, price.currency)
    whole = order.settlement
    assert whole is not None  # a fiat-priced order is refunded in its settlement's currency
    if (
        result.order_amount is not None
        and result.refunded_amount is not None
        and result.refunded_amount >= result.order_amount
        and order.refunded is not None
    ):
        return Money(price.amount - order.refunded.amount, price.currency)
    share = _CONTEXT.divide(_CONTEXT.multiply(settlement.amount, price.amount), whole.amount)
    places = Decimal(1).scaleb(-price.currency_info.minor_units)
    return Money(share.quantize(places, rounding=ROUND_HALF_EVEN, context=_CONTEXT), price.currency)
