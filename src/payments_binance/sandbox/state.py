"""Orders and their state machine (reference sections 4, 5 and 15).

``INITIAL`` (created) → ``PENDING`` (the payer opened the checkout page) → ``PAID``;
``INITIAL``/``PENDING`` → ``CANCELED`` (closed by the merchant or cancelled by the payer) or
``EXPIRED`` (at ``orderExpireTime``). Closing a paid order raises the 400204 :class:`ApiError`; a
payer action on an order that is not open raises :class:`OrderNotPayable`; an unknown id raises
:class:`OrderNotFound`. Identifiers are drawn from a seeded generator, so a run is reproducible;
prepay ids are 18 digits and always above 2^53, as real ones are. All methods are thread-safe.
"""

from __future__ import annotations

import heapq
import random
import threading
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

import attrs

from payments_binance.protocol import OrderStatus
from payments_binance.sandbox.envelope import ApiError

OPEN_STATES = frozenset({OrderStatus.INITIAL, OrderStatus.PENDING})


class OrderNotFound(LookupError):
    """No order has this prepay id or checkout token."""


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


@attrs.define
class OrderBook:
    """Every order the sandbox holds, indexed by prepay id, merchant trade number and token."""

    seed: int = 0
    _ids: _Ids = attrs.field(init=False)
    _orders: dict[str, Order] = attrs.field(init=False, factory=dict)
    _by_trade_no: dict[tuple[str, str], str] = attrs.field(init=False, factory=dict)
    _by_token: dict[str, str] = attrs.field(init=False, factory=dict)
    _expiry_heap: list[tuple[int, str]] = attrs.field(init=False, factory=list)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def __attrs_post_init__(self) -> None:
        self._ids = _Ids(self.seed)

    @property
    def orders(self) -> Mapping[str, Order]:
        """Read-only view of the orders by prepay id."""
        return MappingProxyType(self._orders)

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
            order = Order(
                prepay_id=self._ids.prepay_id(),
                merchant_key=merchant_key,
                merchant_id=merchant_id,
                request=new,
                create_time=now,
                expire_time=new.expire_time or now + default_expire_ms,
                checkout_token=self._ids.token(),
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

    def mark_viewed(self, order: Order) -> None:
        """The payer opened the checkout page: ``INITIAL`` becomes ``PENDING``."""
        with self._lock:
            if order.status is OrderStatus.INITIAL:
                order.status = OrderStatus.PENDING

    def pay(self, order: Order, *, now: int, open_user_id: str) -> None:
        """Mark an open order paid; :class:`OrderNotPayable` if it is not open."""
        with self._lock:
            if order.status not in OPEN_STATES:
                raise OrderNotPayable(f"order {order.prepay_id} is {order.status}")
            order.status = OrderStatus.PAID
            order.transact_time = now
            order.transaction_id = self._ids.transaction_id()
            order.open_user_id = open_user_id

    def cancel(self, order: Order, *, now: int) -> None:
        """The payer cancels an open order; :class:`OrderNotPayable` if it is not open."""
        with self._lock:
            if order.status not in OPEN_STATES:
                raise OrderNotPayable(f"order {order.prepay_id} is {order.status}")
            order.status = OrderStatus.CANCELED
            order.close_time = now

    def close(self, order: Order, *, now: int) -> bool:
        """Close an order: True if it was open and is now ``CANCELED``, False if already closed.

        Raises the 400204 :class:`ApiError` when the order has payment activity.
        """
        with self._lock:
            if order.status in {OrderStatus.CANCELED, OrderStatus.EXPIRED}:
                return False
            if order.status not in OPEN_STATES:
                raise ApiError("400204", "Order status is invalid: it is paid or being paid.")
            order.status = OrderStatus.CANCELED
            order.close_time = now
            return True

    def expire_due(self, now: int) -> list[Order]:
        """Move every open order whose expiry time has passed to ``EXPIRED``; return them."""
        expired: list[Order] = []
        with self._lock:
            while self._expiry_heap and self._expiry_heap[0][0] <= now:
                _, prepay_id = heapq.heappop(self._expiry_heap)
                order = self._orders[prepay_id]
                if order.status in OPEN_STATES:
                    order.status = OrderStatus.EXPIRED
                    order.close_time = now
                    expired.append(order)
        return expired

    def count_by_status(self) -> dict[str, int]:
        """How many orders are in each status."""
        with self._lock:
            counts: dict[str, int] = {}
            for order in self._orders.values():
                counts[order.status.value] = counts.get(order.status.value, 0) + 1
            return counts
