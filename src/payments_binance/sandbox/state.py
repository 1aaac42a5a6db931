"""Orders, refunds and their state machine (reference sections 4, 5, 6 and 15).

``INITIAL`` (created) → ``PENDING`` (the payer opened the checkout page) → ``PAID``;
``INITIAL``/``PENDING`` → ``CANCELED`` (closed by the merchant or cancelled by the payer) or
``EXPIRED`` (at ``orderExpireTime``); ``PAID`` → ``REFUNDING`` (a refund is pending) → ``REFUNDED``
(partly refunded) or ``FULL_REFUNDED``. Closing a paid or refunded order raises the 400204
:class:`ApiError`; a payer action on an order that is not open raises :class:`OrderNotPayable`; an
unknown id raises :class:`OrderNotFound`. Refund rules (idempotent ``refundRequestId``, at most ten
refunds, the tenth refunds everything left) raise their :class:`ApiError` codes from
:meth:`OrderBook.refund`. Identifiers are drawn from a seeded generator, so a run is reproducible;
prepay ids are 18 digits and always above 2^53, as real ones are. All methods are thread-safe.
"""

from __future__ import annotations

import enum
import heapq
import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Protocol, TypeVar

import attrs

from payments_binance.protocol import OrderStatus
from payments_binance.sandbox.envelope import ApiError

T = TypeVar("T")

OPEN_STATES = frozenset({OrderStatus.INITIAL, OrderStatus.PENDING})
#: States in which an order has been paid, so it can be refunded (again).
REFUNDABLE_STATES = frozenset(
    {OrderStatus.PAID, OrderStatus.REFUNDING, OrderStatus.REFUNDED, OrderStatus.FULL_REFUNDED}
)
#: Binance allows at most ten refunds per order (400302 beyond).
MAX_REFUNDS = 10


class RefundStatus(enum.StrEnum):
    """``refundStatus`` of the refund query (reference section 6.2)."""

    REFUND_SUCCESS = "REFUND_SUCCESS"
    REFUND_FAIL = "REFUND_FAIL"
    REFUND_PENDING = "REFUND_PENDING"


class OrderNotFound(LookupError):
    """No order has this prepay id or checkout token."""


class RefundNotFound(LookupError):
    """The merchant has no refund with this ``refundRequestId``."""


class OrderNotPayable(Exception):
    """The payer acted on an order that is no longer open (paid, closed or expired)."""


@attrs.frozen(kw_only=True)
class NewOrder:
    """A validated create-order request (v2 or v3), fiat already converted to the order currency."""

    api_version: str
    merchant_trade_no: str
    terminal_type: str
    currency: str
    amount: Decimal
    product_type: str
    product_name: str
    description: str | None = None
    fiat_currency: str | None = None
    fiat_amount: Decimal | None = None
    webhook_url: str | None = None
    pass_through_info: str | None = None
    return_url: str | None = None
    cancel_url: str | None = None
    expire_time: int | None = None


@attrs.frozen(kw_only=True)
class NewRefund:
    """A validated refund request."""

    refund_request_id: str
    prepay_id: str
    amount: Decimal
    reason: str | None = None
    webhook_url: str | None = None


@attrs.define(kw_only=True)
class Refund:
    """One stored refund; the figures are those answered when it was made.

    Attributes:
        requested_amount: The ``refundAmount`` sent, compared when the id is reused.
        amount: What was refunded: the requested amount, or everything left on the last attempt.
        refunded_amount: The order's refunded total including this refund, when it was made.
        remaining_attempts: Refunds still allowed on the order after this one.
    """

    refund_request_id: str
    merchant_key: str
    prepay_id: str
    requested_amount: Decimal
    amount: Decimal
    order_amount: Decimal
    refunded_amount: Decimal
    remaining_attempts: int
    payer_open_id: str | None
    reason: str | None
    webhook_url: str | None
    create_time: int
    status: RefundStatus = RefundStatus.REFUND_PENDING
    settle_time: int | None = None


@attrs.define(kw_only=True)
class Order:
    """One stored order; mutated only by :class:`OrderBook` under its lock."""

    prepay_id: str
    merchant_key: str
    merchant_id: int
    request: NewOrder
    create_time: int
    expire_time: int
    checkout_token: str
    status: OrderStatus = OrderStatus.INITIAL
    transaction_id: str | None = None
    transact_time: int | None = None
    open_user_id: str | None = None
    close_time: int | None = None
    #: Refunded or pending total; failed refunds are taken off again.
    refunded_amount: Decimal = Decimal(0)
    refunds: list[Refund] = attrs.Factory(list)


@attrs.define
class _Ids:
    """Seeded identifiers: prepay ids (odd, 18 digits, > 2^53), tokens and transaction ids."""

    seed: int
    _rng: random.Random = attrs.field(init=False)
    _next_prepay: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(f"ids:{self.seed}")
        self._next_prepay = self._rng.randrange(10**17, 9 * 10**17) | 1

    def prepay_id(self) -> str:
        # Even steps keep every id odd, so a float round-trip (53-bit mantissa) always changes it.
        self._next_prepay += 2 * self._rng.randrange(1, 10**6)
        return str(self._next_prepay)

    def token(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    def transaction_id(self) -> str:
        return f"M_R_{self._rng.randrange(10**17, 10**18)}"


# -- transitions, shared by the in-memory book and the shared (SQL) one ----------------------


def new_order(
    new: NewOrder,
    *,
    prepay_id: str,
    checkout_token: str,
    merchant_key: str,
    merchant_id: int,
    now: int,
    default_expire_ms: int,
) -> Order:
    """A freshly created order (``INITIAL``)."""
    return Order(
        prepay_id=prepay_id,
        merchant_key=merchant_key,
        merchant_id=merchant_id,
        request=new,
        create_time=now,
        expire_time=new.expire_time or now + default_expire_ms,
        checkout_token=checkout_token,
    )


def view(order: Order) -> None:
    """The payer opened the checkout page: ``INITIAL`` becomes ``PENDING``."""
    if order.status is OrderStatus.INITIAL:
        order.status = OrderStatus.PENDING


def pay(order: Order, *, now: int, open_user_id: str, transaction_id: str) -> None:
    """Mark an open order paid; :class:`OrderNotPayable` if it is not open."""
    if order.status not in OPEN_STATES:
        raise OrderNotPayable(f"order {order.prepay_id} is {order.status}")
    order.status = OrderStatus.PAID
    order.transact_time = now
    order.transaction_id = transaction_id
    order.open_user_id = open_user_id


def cancel(order: Order, *, now: int) -> None:
    """The payer cancels an open order; :class:`OrderNotPayable` if it is not open."""
    if order.status not in OPEN_STATES:
        raise OrderNotPayable(f"order {order.prepay_id} is {order.status}")
    order.status = OrderStatus.CANCELED
    order.close_time = now


def close(order: Order, *, now: int) -> bool:
    """Close an order: True if it was open and is now ``CANCELED``, False if already closed.

    Raises the 400204 :class:`ApiError` when the order has payment activity.
    """
    if order.status in {OrderStatus.CANCELED, OrderStatus.EXPIRED}:
        return False
    if order.status not in OPEN_STATES:
        raise ApiError("400204", "Order status is invalid: it is paid or being paid.")
    order.status = OrderStatus.CANCELED
    order.close_time = now
    return True


def expire(order: Order, *, now: int) -> bool:
    """Expire an open order; True if it was open."""
    if order.status not in OPEN_STATES:
        return False
    order.status = OrderStatus.EXPIRED
    order.close_time = now
    return True


def same_refund(seen: Refund, new: NewRefund) -> None:
    """A reused ``refundRequestId`` must name the same order and amount; 400001 otherwise."""
    if seen.prepay_id != new.prepay_id or seen.requested_amount != new.amount:
        raise ApiError("400001", "refundRequestId was already used for a different refund")


def refund(order: Order | None, merchant_key: str, new: NewRefund, *, now: int) -> Refund:
    """Add a refund (``REFUND_PENDING``) to ``order``, the order ``new`` names (if it exists).

    An unknown or another merchant's order → 400301; an order never paid → 400204; ten refunds
    already → 400302; more than what is left → 400303. The tenth refund ignores its amount and
    refunds everything left.
    """
    if order is None or order.merchant_key != merchant_key:
        raise ApiError("400301", "Invalid prepayId.")
    if order.status not in REFUNDABLE_STATES:
        raise ApiError("400204", f"Order status is invalid: it is {order.status.value}.")
    if len(order.refunds) >= MAX_REFUNDS:
        raise ApiError("400302", f"An order can be refunded at most {MAX_REFUNDS} times.")
    left = order.request.amount - order.refunded_amount
    last_attempt = len(order.refunds) == MAX_REFUNDS - 1
    amount = left if last_attempt else new.amount
    if left <= 0 or amount > left:
        raise ApiError("400303", f"refundAmount exceeds the remaining {left:f}.")
    order.refunded_amount += amount
    made = Refund(
        refund_request_id=new.refund_request_id,
        merchant_key=merchant_key,
        prepay_id=order.prepay_id,
        requested_amount=new.amount,
        amount=amount,
        order_amount=order.request.amount,
        refunded_amount=order.refunded_amount,
        remaining_attempts=MAX_REFUNDS - len(order.refunds) - 1,
        payer_open_id=order.open_user_id,
        reason=new.reason,
        webhook_url=new.webhook_url,
        create_time=now,
    )
    order.refunds.append(made)
    order.status = _refund_state(order)
    return made


def settle(order: Order, made: Refund, *, succeeded: bool, now: int) -> bool:
    """Settle a pending refund of ``order``; False (nothing changes) if it was settled already."""
    if made.status is not RefundStatus.REFUND_PENDING:
        return False
    made.status = RefundStatus.REFUND_SUCCESS if succeeded else RefundStatus.REFUND_FAIL
    made.settle_time = now
    if not succeeded:
        order.refunded_amount -= made.amount
    order.status = _refund_state(order)
    return True


def _refund_state(order: Order) -> OrderStatus:
    """A paid order's status from its refunds: pending first, then how much was refunded."""
    if any(made.status is RefundStatus.REFUND_PENDING for made in order.refunds):
        return OrderStatus.REFUNDING
    if order.refunded_amount >= order.request.amount:
        return OrderStatus.FULL_REFUNDED
    return OrderStatus.REFUNDED if order.refunded_amount > 0 else OrderStatus.PAID


# -- the books ----------------------------------------------------------------------------


class Book(Protocol):
    """What the sandbox needs of an order book: :class:`OrderBook` (in memory) or
    :class:`~payments_binance.sandbox.shared.SharedOrderBook` (a database, for workers).

    Both subclass it for its payer and close methods, which apply a transition through the
    book's ``_change`` (under its lock, or in one write transaction).
    """

    @property
    def orders(self) -> Mapping[str, Order]: ...
    @property
    def refunds(self) -> tuple[Refund, ...]: ...
    def create(
        self,
        new: NewOrder,
        *,
        merchant_key: str,
        merchant_id: int,
        now: int,
        default_expire_ms: int,
    ) -> Order: ...
    def find(
        self, merchant_key: str, *, prepay_id: str | None, merchant_trade_no: str | None
    ) -> Order: ...
    def get(self, prepay_id: str) -> Order: ...
    def by_token(self, token: str) -> Order: ...
    def _change(self, order: Order, change: Callable[[Order], T]) -> T:
        """Apply ``change`` to the stored ``order``, its result returned; ``order`` follows."""
        ...

    def _transaction_id(self, order: Order) -> str: ...

    def mark_viewed(self, order: Order) -> None:
        """The payer opened the checkout page: ``INITIAL`` becomes ``PENDING``."""
        if order.status is OrderStatus.INITIAL:
            self._change(order, view)

    def pay(self, order: Order, *, now: int, open_user_id: str) -> None:
        """Mark an open order paid; :class:`OrderNotPayable` if it is not open."""

        def paid(stored: Order) -> None:
            transaction_id = self._transaction_id(stored)
            pay(stored, now=now, open_user_id=open_user_id, transaction_id=transaction_id)

        self._change(order, paid)

    def cancel(self, order: Order, *, now: int) -> None:
        """The payer cancels an open order; :class:`OrderNotPayable` if it is not open."""
        self._change(order, lambda stored: cancel(stored, now=now))

    def close(self, order: Order, *, now: int) -> bool:
        """Close an order (see :func:`close`)."""
        return self._change(order, lambda stored: close(stored, now=now))

    def refund(
        self, merchant_key: str, new: NewRefund, *, now: int
    ) -> tuple[Order, Refund, bool]: ...
    def settle_refund(
        self, merchant_key: str, refund_request_id: str, *, succeeded: bool, now: int
    ) -> tuple[Order, Refund, bool]: ...
    def get_refund(self, merchant_key: str, refund_request_id: str) -> Refund: ...
    def expire_due(self, now: int) -> list[Order]: ...
    def count_by_status(self) -> dict[str, int]: ...


@attrs.define
class OrderBook(Book):
    """Every order the sandbox holds, in memory, by prepay id, merchant trade number and token.

    Its methods apply the transitions above under one lock. ``SharedOrderBook``
    (:mod:`payments_binance.sandbox.shared`) offers the same methods over a database, for
    several worker processes.
    """

    seed: int = 0
    _ids: _Ids = attrs.field(init=False)
    _orders: dict[str, Order] = attrs.field(init=False, factory=dict)
    _by_trade_no: dict[tuple[str, str], str] = attrs.field(init=False, factory=dict)
    _by_token: dict[str, str] = attrs.field(init=False, factory=dict)
    _expiry_heap: list[tuple[int, str]] = attrs.field(init=False, factory=list)
    _refunds: dict[tuple[str, str], Refund] = attrs.field(init=False, factory=dict)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def __attrs_post_init__(self) -> None:
        self._ids = _Ids(self.seed)

    @property
    def orders(self) -> Mapping[str, Order]:
        """Read-only view of the orders by prepay id."""
        return MappingProxyType(self._orders)

    @property
    def refunds(self) -> tuple[Refund, ...]:
        """Every refund, in the order they were made."""
        with self._lock:
            return tuple(self._refunds.values())

    def create(
        self,
        new: NewOrder,
        *,
        merchant_key: str,
        merchant_id: int,
        now: int,
        default_expire_ms: int,
    ) -> Order:
        """Store a new order; 400201 if this merchant already used the ``merchantTradeNo``."""
        with self._lock:
            key = (merchant_key, new.merchant_trade_no)
            if key in self._by_trade_no:
                raise ApiError("400201", "merchantTradeNo is invalid or duplicated")
            order = new_order(
                new,
                prepay_id=self._ids.prepay_id(),
                checkout_token=self._ids.token(),
                merchant_key=merchant_key,
                merchant_id=merchant_id,
                now=now,
                default_expire_ms=default_expire_ms,
            )
            self._orders[order.prepay_id] = order
            self._by_trade_no[key] = order.prepay_id
            self._by_token[order.checkout_token] = order.prepay_id
            heapq.heappush(self._expiry_heap, (order.expire_time, order.prepay_id))
            return order

    def find(
        self, merchant_key: str, *, prepay_id: str | None, merchant_trade_no: str | None
    ) -> Order:
        """The merchant's order by prepay id (preferred) or trade number; 400202 if none."""
        with self._lock:
            if prepay_id is None and merchant_trade_no is not None:
                prepay_id = self._by_trade_no.get((merchant_key, merchant_trade_no))
            order = self._orders.get(prepay_id) if prepay_id is not None else None
            if order is None or order.merchant_key != merchant_key:
                raise ApiError("400202", "Order not found.")
            return order

    def get(self, prepay_id: str) -> Order:
        """The order with this prepay id, whoever owns it; :class:`OrderNotFound` if none."""
        try:
            return self._orders[prepay_id]
        except KeyError:
            raise OrderNotFound(prepay_id) from None

    def by_token(self, token: str) -> Order:
        """The order whose checkout page has this token; :class:`OrderNotFound` if none."""
        with self._lock:
            prepay_id = self._by_token.get(token)
        if prepay_id is None:
            raise OrderNotFound(token)
        return self.get(prepay_id)

    def _change(self, order: Order, change: Callable[[Order], T]) -> T:
        with self._lock:
            return change(order)

    def _transaction_id(self, order: Order) -> str:
        return self._ids.transaction_id()

    def refund(self, merchant_key: str, new: NewRefund, *, now: int) -> tuple[Order, Refund, bool]:
        """Store a refund (``REFUND_PENDING``): (order, refund, whether the id was seen before).

        A reused ``refundRequestId`` returns its refund again if it names the same order and
        amount, else 400001 (this check comes first); then the rules of :func:`refund`.
        """
        with self._lock:
            seen = self._refunds.get((merchant_key, new.refund_request_id))
            if seen is not None:
                same_refund(seen, new)
                return self._orders[seen.prepay_id], seen, True
            order = self._orders.get(new.prepay_id)
            made = refund(order, merchant_key, new, now=now)
            self._refunds[(merchant_key, made.refund_request_id)] = made
            return self._orders[made.prepay_id], made, False

    def settle_refund(
        self, merchant_key: str, refund_request_id: str, *, succeeded: bool, now: int
    ) -> tuple[Order, Refund, bool]:
        """Settle a pending refund: (its order, it, False if it was settled already).

        Raises :class:`RefundNotFound` for an unknown id.
        """
        made = self.get_refund(merchant_key, refund_request_id)
        with self._lock:
            order = self._orders[made.prepay_id]
            return order, made, settle(order, made, succeeded=succeeded, now=now)

    def get_refund(self, merchant_key: str, refund_request_id: str) -> Refund:
        """The merchant's refund with this id; :class:`RefundNotFound` if there is none."""
        with self._lock:
            made = self._refunds.get((merchant_key, refund_request_id))
        if made is None:
            raise RefundNotFound(refund_request_id)
        return made

    def expire_due(self, now: int) -> list[Order]:
        """Move every open order whose expiry time has passed to ``EXPIRED``; return them."""
        expired: list[Order] = []
        with self._lock:
            while self._expiry_heap and self._expiry_heap[0][0] <= now:
                _, prepay_id = heapq.heappop(self._expiry_heap)
                order = self._orders[prepay_id]
                if expire(order, now=now):
                    expired.append(order)
        return expired

    def count_by_status(self) -> dict[str, int]:
        """How many orders are in each status."""
        with self._lock:
            return dict(Counter(order.status.value for order in self._orders.values()))
