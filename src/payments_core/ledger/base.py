"""The ledger's interface, its result types, and the logic both stores share.

:class:`Ledger` is what the facade and the command line talk to. :class:`SqlLedger` writes the
ledger's behaviour once, over a DB-API style connection (``execute``, ``fetchone``,
``rowcount``); the SQLite and PostgreSQL stores supply only what differs between the two
databases: how to connect, how a write transaction begins, how an order row is locked, the
column types, and how times are stored.

Applying an event is one transaction::

    BEGIN (IMMEDIATE on SQLite)
    read the order the event names (FOR UPDATE on PostgreSQL)
    decide: unknown order? ids, currency or amount differ? a step forward from its status?
    INSERT the event ... ON CONFLICT DO NOTHING      -- no row inserted: a duplicate, roll back
    UPDATE the order's status, if the event is a step forward
    COMMIT

so the event id (unique per provider) and the status change commit together or not at all.

The applied event's row is also the application's outbox: it is committed with
``announced_at`` empty, and :meth:`Ledger.mark_announced` fills that in once the application's
hook has returned. A change whose announcement never completed (the process died between the
commit and the hook, or the hook raised) stays in :meth:`Ledger.unannounced_changes` until it is
announced again.
"""

from __future__ import annotations

import abc
import enum
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, ClassVar, Final, NamedTuple, Protocol, Self
from urllib.parse import urlsplit, urlunsplit

import attrs

from payments_core.errors import LedgerError, PaymentsError, ValidationError
from payments_core.models import (
    CallbackReply,
    Order,
    PaymentEvent,
    PaymentStatus,
    Refund,
    RefundRequest,
    RefundStatus,
    StatusChange,
)
from payments_core.money import Money, currency

__all__ = [
    "ApplyResult",
    "CallbackOutcome",
    "EventFlag",
    "EventRecord",
    "Ledger",
    "OrderRecord",
    "OrderState",
    "ReconcileOutcome",
    "RefundOutcome",
    "SqlLedger",
    "assess_event",
    "assess_refund_notice",
    "check_refundable",
    "safe_url",
]


class EventFlag(enum.StrEnum):
    """Why a recorded event did not change its order.

    Every flag but ``STALE`` marks a callback that does not fit the ledger and deserves a look.
    """

    UNKNOWN_ORDER = "unknown_order"  # no order in the ledger has that provider or merchant id
    ORDER_MISMATCH = "order_mismatch"  # the two ids name different orders, or one differs
    CURRENCY_MISMATCH = "currency_mismatch"  # neither the price's nor the settlement's currency
    AMOUNT_MISMATCH = "amount_mismatch"  # same currency, another amount
    STALE = "stale"  # not a step forward: a late "closed" after "paid", or no change at all
    UNKNOWN_REFUND = "unknown_refund"  # a refund notice for no refund the ledger has asked for


@attrs.frozen(kw_only=True)
class ApplyResult:
    """What applying one event did.

    Attributes:
        applied: Whether the order's status changed (then ``change`` says how).
        duplicate: Whether the event id was recorded before; nothing changed this time.
        flagged: Why the event was recorded without changing its order, if it was.
        change: The committed status change, when ``applied`` changed the order's status.
        reference: The reference of the order the event matched, if any.
        refund: For a refund notice that was applied, the refund as it now stands.
    """

    applied: bool
    duplicate: bool
    flagged: EventFlag | None
    change: StatusChange | None
    reference: str | None
    refund: Refund | None = None


@attrs.frozen(kw_only=True)
class RefundOutcome:
    """What the ledger did with one refund: reserved it, found it, or settled it.

    Attributes:
        refund: The refund as the ledger now holds it.
        created: Whether this call recorded it (a reservation); ``False`` when the refund
            reference was recorded before, which is then the refund to return.
        change: The committed status change of the order, if settling it changed the status.
    """

    refund: Refund
    created: bool = False
    change: StatusChange | None = None


@attrs.frozen(kw_only=True)
class OrderRecord:
    """An order as the ledger holds it, with when it was recorded and last changed."""

    order: Order
    created_at: datetime
    updated_at: datetime


@attrs.frozen(kw_only=True)
class EventRecord:
    """One recorded event (a callback or a reconciliation answer).

    Attributes:
        provider: The provider's name.
        event_id: The event's id, unique per provider.
        status: The status the event reported.
        provider_order_id: The provider's order id it named.
        merchant_order_id: The merchant order id it named.
        reference: The reference of the order it matched; ``None`` for an unknown order.
        previous_status: The order's status when the event arrived; ``None`` for an unknown
            order.
        amount: The amount it reported, if any.
        transaction_id: The provider's transaction id, if any.
        occurred_at: When the provider says it happened.
        received_at: When the ledger recorded it.
        applied: Whether it changed the order's status.
        flag: Why it did not, if it did not.
    """

    provider: str
    event_id: str
    status: PaymentStatus
    provider_order_id: str
    merchant_order_id: str
    reference: str | None
    previous_status: PaymentStatus | None
    amount: Money | None
    transaction_id: str | None
    occurred_at: datetime | None
    received_at: datetime
    applied: bool
    flag: EventFlag | None


@attrs.frozen(kw_only=True)
class CallbackOutcome:
    """What :meth:`payments_core.Payments.apply_callback` did with one callback.

    Attributes:
        reply: The acknowledgement to send to the provider (sent for duplicates too).
        event: The verified event, or ``None`` for a callback of a kind that changes no order.
        result: What the ledger did with the event; ``None`` when there was no event.
    """

    reply: CallbackReply
    event: PaymentEvent | None
    result: ApplyResult | None


@attrs.frozen(kw_only=True)
class ReconcileOutcome:
    """What reconciliation found for one order that was still pending.

    Attributes:
        order: The order as the ledger held it before.
        answer: The order as the provider holds it; ``None`` if it has none or was not asked.
        result: What applying the answer did; ``None`` if nothing was applied (the provider
            still says pending, has no such order, or could not be asked).
        error: Why the provider could not be asked, if it could not.
    """

    order: Order
    answer: Order | None
    result: ApplyResult | None
    error: PaymentsError | None = None


class OrderState(NamedTuple):
    """The part of a stored order that decides whether an event may change it."""

    reference: str
    provider_order_id: str
    merchant_order_id: str
    status: PaymentStatus
    amount: Decimal
    currency: str
    settlement_amount: Decimal | None = None
    settlement_currency: str | None = None


def assess_event(state: OrderState | None, event: PaymentEvent) -> EventFlag | None:
    """Decide whether ``event`` may change the order in ``state``.

    An amount is compared exactly with the order's price when it is in the price's currency,
    and with the order's settlement (what the provider converted the price to: Binance Pay
    asks USDT for a USD price) when it is in the settlement's currency; any other currency is a
    mismatch. One exception: for a fiat-priced order whose settlement the provider never stated,
    a crypto amount cannot be checked, and is accepted (and recorded). An event that states no
    amount is not checked for one.

    :returns: ``None`` if the event is a step forward for a matching order; otherwise the
        :class:`EventFlag` saying why it must be recorded without changing anything.
    """
    if state is None:
        return EventFlag.UNKNOWN_ORDER
    if (
        event.provider_order_id != state.provider_order_id
        or event.merchant_order_id != state.merchant_order_id
    ):
        return EventFlag.ORDER_MISMATCH
    amount = event.amount
    if amount is not None:
        expected: Decimal | None
        if amount.currency == state.currency:
            expected = state.amount
        elif amount.currency == state.settlement_currency:
            expected = state.settlement_amount
        elif (
            state.settlement_currency is None
            and amount.currency_info.crypto
            and not currency(state.currency).crypto
        ):
            expected = None  # converted at a rate the ledger never learnt: nothing to check
        else:
            return EventFlag.CURRENCY_MISMATCH
        if expected is not None and amount.amount != expected:
            return EventFlag.AMOUNT_MISMATCH
    if not state.status.can_become(event.status):
        return EventFlag.STALE
    return None


def check_refundable(
    state: OrderState, request: RefundRequest, held: Decimal, provider: str
) -> None:
    """Refuse ``request`` unless the order in ``state`` can give back ``request.amount``.

    ``held`` is the total of the order's refunds that have not failed.

    :raises ValidationError: naming ``reference`` (the order is not paid, or fully
        refunded), ``amount.currency`` (not the price's currency) or ``amount`` (more than
        the price less ``held``).
    """
    if not state.status.is_refundable:
        raise ValidationError(
            "reference",
            f"order {state.reference!r} is {state.status.value}: only a paid order can be refunded",
            provider=provider,
        )
    if request.amount.currency != state.currency:
        raise ValidationError(
            "amount.currency",
            f"must be the order's price currency {state.currency}, not {request.amount.currency}",
            provider=provider,
        )
    remaining = state.amount - held
    if request.amount.amount > remaining:
        raise ValidationError(
            "amount",
            f"{request.amount} exceeds what remains to refund of {state.reference!r}: "
            f"{_plain(remaining)} {state.currency} of {_plain(state.amount)}",
            provider=provider,
        )


def assess_refund_notice(
    state: OrderState | None, event: PaymentEvent, stored: Refund | None
) -> EventFlag | None:
    """Decide whether a refund notice may settle ``stored``, the refund it names.

    :returns: ``None`` if it may; otherwise the :class:`EventFlag` saying why it must be
        recorded without changing anything (``STALE`` for a refund that is final already).
    """
    notice = event.refund
    assert notice is not None
    if state is None:
        return EventFlag.UNKNOWN_ORDER
    if (
        event.provider_order_id != state.provider_order_id
        or event.merchant_order_id != state.merchant_order_id
    ):
        return EventFlag.ORDER_MISMATCH
    if stored is None:
        return EventFlag.UNKNOWN_REFUND
    if stored.reference != state.reference:
        return EventFlag.ORDER_MISMATCH
    amount = notice.amount
    if amount is not None:
        settlement = stored.settlement
        if amount.currency == stored.amount.currency:
            expected: Money | None = stored.amount
        elif settlement is not None and amount.currency == settlement.currency:
            expected = settlement
        elif settlement is None:
            expected = None  # converted at a rate the ledger never learnt: nothing to check
        else:
            return EventFlag.CURRENCY_MISMATCH
        if expected is not None and amount.amount != expected.amount:
            return EventFlag.AMOUNT_MISMATCH
    if stored.status is not RefundStatus.PENDING:
        return EventFlag.STALE
    return None


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class Ledger(abc.ABC):
    """Where orders and the events that change them are recorded, once each.

    Every method may raise :class:`~payments_core.errors.LedgerError` when the store cannot be
    reached or refuses a statement; nothing is half-written when it does. A ledger is safe to
    share between threads. Close it (or use it as a context manager) to release its
    connections.
    """

    @abc.abstractmethod
    def record_order(self, order: Order) -> Order:
        """Record ``order`` unless one is recorded for its provider and reference already.

        :returns: The stored order: the one given, or the one recorded before, which wins;
            but if the one recorded before has no payment links (it was recovered by a query)
            and ``order`` is the same provider order with links, its links are filled in.
        :raises LedgerError: also if the provider order id is recorded for another reference.
        """

    @abc.abstractmethod
    def get_order(self, provider: str, reference: str) -> Order | None:
        """The order recorded for ``reference`` at ``provider``, or ``None``."""

    @abc.abstractmethod
    def find_orders(self, reference: str) -> list[OrderRecord]:
        """Every order recorded for ``reference``, at any provider, with its times."""

    @abc.abstractmethod
    def apply_event(self, event: PaymentEvent, *, announced: bool = False) -> ApplyResult:
        """Record ``event`` and, if it is a step forward for a matching order, apply it.

        One transaction: the event row (unique per provider and event id) and the order's
        status change commit together. A duplicate event id changes nothing. An event for an
        unknown order, naming mismatched ids, or stating another currency or amount is
        recorded with a flag and changes nothing; so is one that is not a step forward.

        :param announced: Record the change as announced at once (no application listens
            for it), instead of leaving it in :meth:`unannounced_changes` until
            :meth:`mark_announced`.
        """

    @abc.abstractmethod
    def reserve_refund(self, provider: str, request: RefundRequest) -> RefundOutcome:
        """Record ``request`` as a pending refund, unless its refund reference is recorded.

        One transaction with the order's row locked, so two refunds of one order never both
        pass the check: the order must be recorded, paid (or partly refunded), priced in the
        refund's currency, and the refund must not exceed the price less every refund not
        failed (pending ones count: their money may already be on its way back).

        :returns: The new pending refund (``created``), or the refund recorded before under the
            same refund reference, which the caller must return instead of refunding again.
        :raises ValidationError: naming ``reference`` (no such order, or not paid),
            ``amount.currency``, ``amount`` (more than remains), or ``refund_reference``
            (recorded before for another amount). Nothing is changed.
        """

    @abc.abstractmethod
    def settle_refund(self, refund: Refund) -> RefundOutcome:
        """Record what the provider said of a reserved refund; apply it once if it succeeded.

        A succeeded refund adds to the order's refunded total and moves the order to
        ``partially_refunded``, or ``refunded`` once the total is the price. A refund that is
        final already stays as it is (the provider's answer and its notice may both report
        it: only the first counts).

        :raises LedgerError: if no refund is reserved under ``refund``'s references.
        """

    @abc.abstractmethod
    def release_refund(self, provider: str, reference: str, refund_reference: str) -> bool:
        """Forget a pending refund the provider refused outright; whether one was removed.

        Only a pending refund is removed: its reservation no longer holds back the amount, and
        the refund reference may be used again.
        """

    @abc.abstractmethod
    def get_refund(self, provider: str, reference: str, refund_reference: str) -> Refund | None:
        """The refund recorded under ``refund_reference`` for the order, or ``None``."""

    @abc.abstractmethod
    def refunds_for(self, provider: str, reference: str) -> list[Refund]:
        """Every refund recorded for an order, oldest first."""

    @abc.abstractmethod
    def pending_orders(self, older_than: timedelta) -> list[OrderRecord]:
        """Orders still ``pending`` that were recorded at least ``older_than`` ago, oldest first."""

    @abc.abstractmethod
    def events_for(self, provider: str, reference: str) -> list[EventRecord]:
        """The events recorded for an order, in the order they arrived."""

    @abc.abstractmethod
    def unannounced_changes(
        self, older_than: timedelta = timedelta(0), *, limit: int = 1000
    ) -> list[StatusChange]:
        """Committed status changes whose announcement to the application has not completed.

        :param older_than: Only changes recorded at least this long ago (so that changes
            another process is announcing right now are left to it).
        :param limit: At most this many, oldest first.
        """

    @abc.abstractmethod
    def mark_announced(self, provider: str, event_id: str) -> None:
        """Record that the change made by ``event_id`` has been announced to the application."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the ledger's connections; calling it again does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Cursor(Protocol):
    """The part of a DB-API cursor the ledger uses."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the ledger uses (sqlite3 and psycopg both fit)."""

    def execute(self, sql: Any, params: Sequence[Any] = ..., /) -> Cursor: ...

    def close(self) -> None: ...


class _Pool:
    """Idle connections kept for reuse; each is used by one thread at a time."""

    def __init__(
        self, connect: Callable[[], Connection], healthy: Callable[[Connection], bool]
    ) -> None:
        self._connect = connect
        self._healthy = healthy
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        with self._lock:
            if self._closed:
                raise LedgerError("the ledger is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            with self._lock:
                keep = not self._closed and self._healthy(conn)
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


_ORDER_COLUMNS: Final = (
    "provider, reference, provider_order_id, merchant_order_id, status, amount, currency, "
    "checkout_url, qr_code_url, qr_content, deep_link, universal_url, expires_at, "
    "transaction_id, created_at, updated_at, settlement_amount, settlement_currency, "
    "refunded_amount"
)
_EVENT_COLUMNS: Final = (
    "provider, event_id, status, provider_order_id, merchant_order_id, reference, "
    "previous_status, amount, currency, transaction_id, occurred_at, received_at, applied, flag"
)
_NEW_EVENT_COLUMNS: Final = f"{_EVENT_COLUMNS}, announced_at"
_STATE_COLUMNS: Final = (
    "reference, provider_order_id, merchant_order_id, status, amount, currency, "
    "settlement_amount, settlement_currency"
)
_REFUND_COLUMNS: Final = (
    "provider, reference, refund_reference, provider_refund_id, provider_order_id, amount, "
    "currency, settlement_amount, settlement_currency, reason, status, created_at, updated_at"
)

#: The schema, one entry per version. ``{id}``, ``{time}`` and ``{bool}`` are the store's types
#: for an auto-numbered key, a timestamp and a boolean. Amounts are TEXT: exact decimals.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE orders (
            provider TEXT NOT NULL,
            reference TEXT NOT NULL,
            provider_order_id TEXT NOT NULL,
            merchant_order_id TEXT NOT NULL,
            status TEXT NOT NULL,
            amount TEXT NOT NULL,
            currency TEXT NOT NULL,
            checkout_url TEXT,
            qr_code_url TEXT,
            qr_content TEXT,
            deep_link TEXT,
            universal_url TEXT,
            expires_at {time},
            transaction_id TEXT,
            created_at {time} NOT NULL,
            updated_at {time} NOT NULL,
            PRIMARY KEY (provider, reference),
            UNIQUE (provider, provider_order_id)
        )""",
        "CREATE INDEX orders_merchant_order_id ON orders (provider, merchant_order_id)",
        "CREATE INDEX orders_status_created ON orders (status, created_at)",
        """CREATE TABLE events (
            id {id},
            provider TEXT NOT NULL,
            event_id TEXT NOT NULL,
            status TEXT NOT NULL,
            provider_order_id TEXT NOT NULL,
            merchant_order_id TEXT NOT NULL,
            reference TEXT,
            previous_status TEXT,
            amount TEXT,
            currency TEXT,
            transaction_id TEXT,
            occurred_at {time},
            received_at {time} NOT NULL,
            applied {bool} NOT NULL,
            flag TEXT,
            UNIQUE (provider, event_id)
        )""",
        "CREATE INDEX events_order ON events (provider, reference)",
    ),
    (
        "ALTER TABLE orders ADD COLUMN settlement_amount TEXT",
        "ALTER TABLE orders ADD COLUMN settlement_currency TEXT",
    ),
    (
        # The total of succeeded refunds, in the price's currency; NULL: none yet.
        "ALTER TABLE orders ADD COLUMN refunded_amount TEXT",
        """CREATE TABLE refunds (
            provider TEXT NOT NULL,
            reference TEXT NOT NULL,
            refund_reference TEXT NOT NULL,
            provider_refund_id TEXT,
            provider_order_id TEXT NOT NULL,
            amount TEXT NOT NULL,
            currency TEXT NOT NULL,
            settlement_amount TEXT,
            settlement_currency TEXT,
            reason TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at {time} NOT NULL,
            updated_at {time} NOT NULL,
            PRIMARY KEY (provider, reference, refund_reference),
            UNIQUE (provider, provider_refund_id)
        )""",
    ),
    (
        # The outbox: an applied event is announced to the application once this is set.
        # Events applied before it existed were announced by the code of their time.
        "ALTER TABLE events ADD COLUMN announced_at {time}",
        "UPDATE events SET announced_at = received_at WHERE applied",
        "CREATE INDEX events_unannounced ON events (id) WHERE applied AND announced_at IS NULL",
    ),
)


def _plain(amount: Decimal) -> str:
    return format(amount, "f")  # never exponent form: "0.00000001", not "1E-8"


class SqlLedger(Ledger):
    """The ledger's behaviour over any SQL store; subclasses supply the dialect.

    :param before_commit: **For tests only.** Called inside :meth:`apply_event` after the event
        row and the status change are written and before the commit; whatever it raises rolls
        the transaction back and propagates (quality bar R5).
    :param clock: Where the ledger reads the time (timezone-aware); the system clock if unset.
    """

    #: Starts a write transaction.
    begin: str = "BEGIN"
    #: Appended to the query that reads an order before changing it.
    lock_order: str = ""
    #: Run first in the migration transaction, to keep two processes from migrating at once.
    schema_lock: str | None = None
    #: Column types: ``id`` (auto-numbered primary key), ``time``, ``bool``.
    types: ClassVar[Mapping[str, str]] = {}
    #: The driver's exceptions, which the ledger reports as ``LedgerError``.
    driver_errors: tuple[type[Exception], ...] = ()

    def __init__(
        self,
        url: str,
        *,
        before_commit: Callable[[], None] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.url = url
        self.before_commit = before_commit
        self._now = clock if clock is not None else _utc_now
        self._pool = _Pool(self._mapped_connect, self.healthy)
        self._sql = _Statements(self.placeholder, self.lock_order)
        with self._errors("open"):
            self._migrate()

    # -- what a store supplies --------------------------------------------------------------

    @abc.abstractmethod
    def connect(self) -> Connection:
        """Open a new connection, in autocommit mode (transactions begin explicitly)."""

    def placeholder(self, sql: str) -> str:
        """Rewrite ``?`` parameters into the driver's style."""
        return sql

    def healthy(self, conn: Connection) -> bool:
        """Whether ``conn`` may be reused after a failure."""
        del conn
        return True

    def writing(self) -> AbstractContextManager[object]:
        """Held around every write transaction (SQLite: one writer per process at a time)."""
        return nullcontext()

    def time_in(self, moment: datetime | None) -> object:
        """A timestamp as the store takes it."""
        return moment

    def time_out(self, value: Any) -> datetime | None:
        """A timestamp as the store gives it back, timezone-aware."""
        return value if value is None else value.astimezone(UTC)

    # -- the ledger -------------------------------------------------------------------------

    def record_order(self, order: Order) -> Order:
        now = self.time_in(self._now())
        settlement = order.settlement
        row = (
            order.provider, order.reference, order.provider_order_id, order.merchant_order_id,
            order.status.value, _plain(order.amount.amount), order.amount.currency,
            order.checkout_url, order.qr_code_url, order.qr_content, order.deep_link,
            order.universal_url, self.time_in(order.expires_at), order.transaction_id, now, now,
            None if settlement is None else _plain(settlement.amount),
            None if settlement is None else settlement.currency,
            None,
        )  # fmt: skip
        with self._errors("record order"), self._transaction() as conn:
            conn.execute(self._sql.insert_order, row)
            if order.checkout_url is not None:
                # An order recovered by a query has no payment links (a provider's query does
                # not return them); whoever got the create's own answer supplies them.
                links = (
                    order.checkout_url, order.qr_code_url, order.qr_content, order.deep_link,
                    order.universal_url, self.time_in(order.expires_at),
                    order.provider, order.reference, order.provider_order_id,
                )  # fmt: skip
                conn.execute(self._sql.fill_links, links)
            stored = conn.execute(self._sql.order, (order.provider, order.reference)).fetchone()
        if stored is None:
            raise LedgerError(
                f"provider order {order.provider_order_id} of {order.provider} is recorded for "
                f"another reference than {order.reference!r}",
                provider=order.provider,
            )
        return self._record(stored).order

    def get_order(self, provider: str, reference: str) -> Order | None:
        with self._errors("read order"), self._pool.connection() as conn:
            row = conn.execute(self._sql.order, (provider, reference)).fetchone()
        return None if row is None else self._record(row).order

    def find_orders(self, reference: str) -> list[OrderRecord]:
        with self._errors("read orders"), self._pool.connection() as conn:
            rows = conn.execute(self._sql.orders_by_reference, (reference,)).fetchall()
        return [self._record(row) for row in rows]

    def pending_orders(self, older_than: timedelta) -> list[OrderRecord]:
        cutoff = self.time_in(self._now() - older_than)
        with self._errors("read pending orders"), self._pool.connection() as conn:
            rows = conn.execute(self._sql.pending, (PaymentStatus.PENDING.value, cutoff)).fetchall()
        return [self._record(row) for row in rows]

    def events_for(self, provider: str, reference: str) -> list[EventRecord]:
        with self._errors("read events"), self._pool.connection() as conn:
            rows = conn.execute(self._sql.events, (provider, reference)).fetchall()
        return [self._event(row) for row in rows]

    def apply_event(self, event: PaymentEvent, *, announced: bool = False) -> ApplyResult:
        if event.refund is not None:
            return self._apply_refund_notice(event)
        now = self._now()
        try:
            with self._errors("apply event"), self._transaction() as conn:
                state = self._state(conn, event)
                flag = assess_event(state, event)
                self._insert_event(conn, event, state, flag, now, announced=announced)
                if state is not None and flag is None:
                    conn.execute(
                        self._sql.update_status,
                        (
                            event.status.value, event.transaction_id, self.time_in(now),
                            event.provider, state.reference,
                        ),
                    )  # fmt: skip
                if self.before_commit is not None:
                    self.before_commit()
        except _Duplicate as duplicate:
            return ApplyResult(
                applied=False,
                duplicate=True,
                flagged=None,
                change=None,
                reference=duplicate.reference,
            )
        if state is None or flag is not None:
            return ApplyResult(
                applied=False,
                duplicate=False,
                flagged=flag,
                change=None,
                reference=None if state is None else state.reference,
            )
        change = StatusChange(
            provider=event.provider,
            reference=state.reference,
            old_status=state.status,
            new_status=event.status,
            event_id=event.event_id,
            changed_at=now,
        )
        return ApplyResult(
            applied=True, duplicate=False, flagged=None, change=change, reference=state.reference
        )

    # -- refunds ----------------------------------------------------------------------------

    def reserve_refund(self, provider: str, request: RefundRequest) -> RefundOutcome:
        now = self.time_in(self._now())
        key = (provider, request.reference, request.refund_reference)
        with self._errors("reserve refund"), self._transaction() as conn:
            state = self._order_state(conn, provider, request.reference)
            if state is None:
                raise ValidationError(
                    "reference",
                    f"no order is recorded for {request.reference!r} at {provider}",
                    provider=provider,
                )
            row = conn.execute(self._sql.refund, key).fetchone()
            if row is not None:
                known = self._refund(row)
                if known.amount != request.amount:
                    raise ValidationError(
                        "refund_reference",
                        f"{request.refund_reference!r} already names a refund of {known.amount} "
                        f"of {request.reference!r}, not {request.amount}",
                        provider=provider,
                    )
                return RefundOutcome(refund=known)
            held = self._held(conn, provider, request.reference)
            check_refundable(state, request, held, provider)
            conn.execute(
                self._sql.insert_refund,
                (
                    provider, request.reference, request.refund_reference, None,
                    state.provider_order_id, _plain(request.amount.amount),
                    request.amount.currency, None, None, request.reason,
                    RefundStatus.PENDING.value, now, now,
                ),
            )  # fmt: skip
        refund = Refund(
            provider=provider,
            reference=request.reference,
            refund_reference=request.refund_reference,
            provider_refund_id=None,
            provider_order_id=state.provider_order_id,
            amount=request.amount,
            status=RefundStatus.PENDING,
            reason=request.reason,
        )
        return RefundOutcome(refund=refund, created=True)

    def settle_refund(self, refund: Refund) -> RefundOutcome:
        now = self._now()
        key = (refund.provider, refund.reference, refund.refund_reference)
        with self._errors("settle refund"), self._transaction() as conn:
            state = self._order_state(conn, refund.provider, refund.reference)
            row = conn.execute(self._sql.refund, key).fetchone()
            if state is None or row is None:
                raise LedgerError(
                    f"no refund {refund.refund_reference!r} of {refund.reference!r} is reserved "
                    f"at {refund.provider}",
                    provider=refund.provider,
                )
            stored = self._refund(row)
            if stored.status is not RefundStatus.PENDING:
                return RefundOutcome(refund=stored)
            event_id = f"{refund.provider}:refund:{refund.reference}:{refund.refund_reference}"
            change, settled = self._settle(conn, state, stored, refund, now, event_id)
        return RefundOutcome(refund=settled, change=change)

    def release_refund(self, provider: str, reference: str, refund_reference: str) -> bool:
        key = (provider, reference, refund_reference, RefundStatus.PENDING.value)
        with self._errors("release refund"), self._transaction() as conn:
            return conn.execute(self._sql.delete_pending_refund, key).rowcount > 0

    def get_refund(self, provider: str, reference: str, refund_reference: str) -> Refund | None:
        key = (provider, reference, refund_reference)
        with self._errors("read refund"), self._pool.connection() as conn:
            row = conn.execute(self._sql.refund, key).fetchone()
        return None if row is None else self._refund(row)

    def refunds_for(self, provider: str, reference: str) -> list[Refund]:
        with self._errors("read refunds"), self._pool.connection() as conn:
            rows = conn.execute(self._sql.refunds, (provider, reference)).fetchall()
        return [self._refund(row) for row in rows]

    def _apply_refund_notice(self, event: PaymentEvent) -> ApplyResult:
        notice = event.refund
        assert notice is not None
        now = self._now()
        change = settled = None
        try:
            with self._errors("apply event"), self._transaction() as conn:
                state = self._state(conn, event)
                row = conn.execute(
                    self._sql.refund_by_provider_id, (event.provider, notice.provider_refund_id)
                ).fetchone()
                stored = None if row is None else self._refund(row)
                flag = assess_refund_notice(state, event, stored)
                # Refund changes are announced after the commit, outside the outbox.
                self._insert_event(conn, event, state, flag, now, announced=True)
                if flag is None:
                    assert state is not None
                    assert stored is not None
                    heard = attrs.evolve(stored, status=notice.status)
                    change, settled = self._settle(conn, state, stored, heard, now, event.event_id)
                if self.before_commit is not None:
                    self.before_commit()
        except _Duplicate as duplicate:
            return ApplyResult(
                applied=False,
                duplicate=True,
                flagged=None,
                change=None,
                reference=duplicate.reference,
            )
        return ApplyResult(
            applied=flag is None,
            duplicate=False,
            flagged=flag,
            change=change,
            reference=None if state is None else state.reference,
            refund=settled,
        )

    def _settle(
        self,
        conn: Connection,
        state: OrderState,
        stored: Refund,
        heard: Refund,
        now: datetime,
        event_id: str,
    ) -> tuple[StatusChange | None, Refund]:
        """Write what was heard of the pending ``stored`` refund; count it if it succeeded."""
        settlement = heard.settlement
        conn.execute(
            self._sql.update_refund,
            (
                heard.provider_refund_id,
                None if settlement is None else _plain(settlement.amount),
                None if settlement is None else settlement.currency,
                heard.status.value, self.time_in(now),
                stored.provider, stored.reference, stored.refund_reference,
            ),
        )  # fmt: skip
        settled = attrs.evolve(
            stored,
            status=heard.status,
            provider_refund_id=heard.provider_refund_id or stored.provider_refund_id,
            settlement=settlement or stored.settlement,
        )
        if heard.status is not RefundStatus.SUCCEEDED:
            return None, settled
        key = (stored.provider, stored.reference)
        before = conn.execute(self._sql.refunded, key).fetchone()[0]
        total = (Decimal(0) if before is None else Decimal(before)) + stored.amount.amount
        status = (
            PaymentStatus.REFUNDED if total >= state.amount else PaymentStatus.PARTIALLY_REFUNDED
        )
        moves = state.status.can_become(status)
        conn.execute(
            self._sql.update_refunded,
            (
                _plain(total), (status if moves else state.status).value, self.time_in(now),
                *key,
            ),
        )  # fmt: skip
        if not moves:
            return None, settled
        change = StatusChange(
            provider=stored.provider,
            reference=stored.reference,
            old_status=state.status,
            new_status=status,
            event_id=event_id,
            changed_at=now,
        )
        return change, settled

    def _order_state(self, conn: Connection, provider: str, reference: str) -> OrderState | None:
        row = conn.execute(self._sql.state_by_reference, (provider, reference)).fetchone()
        return None if row is None else _order_state(row)

    def _held(self, conn: Connection, provider: str, reference: str) -> Decimal:
        """The total of an order's refunds that have not failed."""
        rows = conn.execute(self._sql.refund_amounts, (provider, reference)).fetchall()
        return sum(
            (Decimal(amount) for amount, status in rows if status != RefundStatus.FAILED.value),
            Decimal(0),
        )

    def _refund(self, row: Sequence[Any]) -> Refund:
        (
            provider, reference, refund_reference, provider_refund_id, provider_order_id, amount,
            currency, settlement_amount, settlement_currency, reason, status, _, _,
        ) = row  # fmt: skip
        return Refund(
            provider=provider,
            reference=reference,
            refund_reference=refund_reference,
            provider_refund_id=provider_refund_id,
            provider_order_id=provider_order_id,
            amount=Money(amount, currency),
            status=RefundStatus(status),
            settlement=(
                None if settlement_amount is None else Money(settlement_amount, settlement_currency)
            ),
            reason=reason,
        )

    def unannounced_changes(
        self, older_than: timedelta = timedelta(0), *, limit: int = 1000
    ) -> list[StatusChange]:
        cutoff = self.time_in(self._now() - older_than)
        with self._errors("read unannounced changes"), self._pool.connection() as conn:
            rows = conn.execute(self._sql.unannounced, (cutoff, limit)).fetchall()
        return [
            StatusChange(
                provider=provider,
                reference=reference,
                old_status=PaymentStatus(previous_status),
                new_status=PaymentStatus(status),
                event_id=event_id,
                changed_at=_aware(self.time_out(received_at)),
            )
            for provider, reference, previous_status, status, event_id, received_at in rows
        ]

    def mark_announced(self, provider: str, event_id: str) -> None:
        now = self.time_in(self._now())
        with self._errors("mark a change announced"), self._transaction() as conn:
            conn.execute(self._sql.mark_announced, (now, provider, event_id))

    def close(self) -> None:
        self._pool.close()

    # -- internals --------------------------------------------------------------------------

    def _state(self, conn: Connection, event: PaymentEvent) -> OrderState | None:
        key = (event.provider, event.provider_order_id)
        row = conn.execute(self._sql.state_by_provider_id, key).fetchone()
        if row is None:
            key = (event.provider, event.merchant_order_id)
            row = conn.execute(self._sql.state_by_merchant_id, key).fetchone()
        return None if row is None else _order_state(row)

    def _insert_event(
        self,
        conn: Connection,
        event: PaymentEvent,
        state: OrderState | None,
        flag: EventFlag | None,
        now: datetime,
        *,
        announced: bool,
    ) -> None:
        """Insert the event row; raise :class:`_Duplicate` if its id is recorded already."""
        reference = None if state is None else state.reference
        amount = event.amount
        inserted = conn.execute(
            self._sql.insert_event,
            (
                event.provider, event.event_id, event.status.value, event.provider_order_id,
                event.merchant_order_id, reference, None if state is None else state.status.value,
                None if amount is None else _plain(amount.amount),
                None if amount is None else amount.currency,
                event.transaction_id, self.time_in(event.occurred_at), self.time_in(now),
                flag is None, None if flag is None else flag.value,
                self.time_in(now) if announced and flag is None else None,
            ),
        ).rowcount  # fmt: skip
        if inserted == 0:
            raise _Duplicate(reference)

    def _record(self, row: Sequence[Any]) -> OrderRecord:
        (
            provider, reference, provider_order_id, merchant_order_id, status, amount, currency,
            checkout_url, qr_code_url, qr_content, deep_link, universal_url, expires_at,
            transaction_id, created_at, updated_at, settlement_amount, settlement_currency,
            refunded_amount,
        ) = row  # fmt: skip
        order = Order(
            provider=provider,
            reference=reference,
            provider_order_id=provider_order_id,
            merchant_order_id=merchant_order_id,
            status=PaymentStatus(status),
            amount=Money(amount, currency),
            settlement=(
                None if settlement_amount is None else Money(settlement_amount, settlement_currency)
            ),
            checkout_url=checkout_url,
            qr_code_url=qr_code_url,
            qr_content=qr_content,
            deep_link=deep_link,
            universal_url=universal_url,
            expires_at=self.time_out(expires_at),
            transaction_id=transaction_id,
            refunded=None if refunded_amount is None else Money(refunded_amount, currency),
        )
        return OrderRecord(
            order=order,
            created_at=_aware(self.time_out(created_at)),
            updated_at=_aware(self.time_out(updated_at)),
        )

    def _event(self, row: Sequence[Any]) -> EventRecord:
        (
            provider, event_id, status, provider_order_id, merchant_order_id, reference,
            previous_status, amount, currency, transaction_id, occurred_at, received_at, applied,
            flag,
        ) = row  # fmt: skip
        return EventRecord(
            provider=provider,
            event_id=event_id,
            status=PaymentStatus(status),
            provider_order_id=provider_order_id,
            merchant_order_id=merchant_order_id,
            reference=reference,
            previous_status=None if previous_status is None else PaymentStatus(previous_status),
            amount=None if amount is None else Money(amount, currency),
            transaction_id=transaction_id,
            occurred_at=self.time_out(occurred_at),
            received_at=_aware(self.time_out(received_at)),
            applied=bool(applied),
            flag=None if flag is None else EventFlag(flag),
        )

    def _mapped_connect(self) -> Connection:
        with self._errors("connect"):
            return self.connect()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self.writing(), self._pool.connection() as conn:
            conn.execute(self.begin)
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT too: left open, the transaction would keep its write lock
                # and the pooled connection would refuse every later BEGIN.
                _rollback(conn)
                raise

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except self.driver_errors as exc:
            raise LedgerError(
                f"ledger at {safe_url(self.url)} could not {what}: {type(exc).__name__}: {exc}"
            ) from exc

    def _migrate(self) -> None:
        with self._transaction() as conn:
            if self.schema_lock is not None:
                conn.execute(self.schema_lock)
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            found = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            if found > len(MIGRATIONS):
                raise LedgerError(
                    f"ledger at {safe_url(self.url)} has schema version {found}; this version "
                    f"of payments knows up to {len(MIGRATIONS)}: upgrade payments"
                )
            for version, statements in enumerate(MIGRATIONS[found:], start=found + 1):
                for statement in statements:
                    conn.execute(statement.format(**self.types))
                conn.execute(self.placeholder("INSERT INTO schema_version VALUES (?)"), (version,))


class _Duplicate(Exception):
    """Raised inside a transaction to roll it back when the event id was recorded before."""

    def __init__(self, reference: str | None) -> None:
        super().__init__(reference)
        self.reference = reference


class _Statements:
    """The ledger's SQL, written once with ``?`` parameters, in the driver's style.

    Built only from the constant column lists above and the store's lock clause: no value
    ever enters the SQL text (hence the ``S608`` exemptions).
    """

    def __init__(self, placeholder: Callable[[str], str], lock: str) -> None:
        order_marks = ", ".join("?" * len(_ORDER_COLUMNS.split(",")))
        event_marks = ", ".join("?" * len(_NEW_EVENT_COLUMNS.split(",")))
        order_select = f"SELECT {_ORDER_COLUMNS} FROM orders WHERE"  # noqa: S608
        state_select = f"SELECT {_STATE_COLUMNS} FROM orders WHERE"  # noqa: S608
        self.insert_order = placeholder(
            f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES ({order_marks}) "  # noqa: S608
            "ON CONFLICT DO NOTHING"
        )
        self.fill_links = placeholder(
            "UPDATE orders SET checkout_url = ?, qr_code_url = COALESCE(qr_code_url, ?), "
            "qr_content = COALESCE(qr_content, ?), deep_link = COALESCE(deep_link, ?), "
            "universal_url = COALESCE(universal_url, ?), expires_at = COALESCE(expires_at, ?) "
            "WHERE provider = ? AND reference = ? AND provider_order_id = ? "
            "AND checkout_url IS NULL"
        )
        self.order = placeholder(f"{order_select} provider = ? AND reference = ?")
        self.orders_by_reference = placeholder(f"{order_select} reference = ? ORDER BY provider")
        self.pending = placeholder(
            f"{order_select} status = ? AND created_at <= ? "
            "ORDER BY created_at, provider, reference"
        )
        self.events = placeholder(
            f"SELECT {_EVENT_COLUMNS} FROM events "  # noqa: S608
            "WHERE provider = ? AND reference = ? ORDER BY id"
        )
        self.insert_event = placeholder(
            f"INSERT INTO events ({_NEW_EVENT_COLUMNS}) VALUES ({event_marks}) "  # noqa: S608
            "ON CONFLICT DO NOTHING"
        )
        self.update_status = placeholder(
            "UPDATE orders SET status = ?, transaction_id = COALESCE(?, transaction_id), "
            "updated_at = ? WHERE provider = ? AND reference = ?"
        )
        self.unannounced = placeholder(
            "SELECT provider, reference, previous_status, status, event_id, received_at "
            "FROM events WHERE applied AND announced_at IS NULL AND received_at <= ? "
            "ORDER BY id LIMIT ?"
        )
        self.mark_announced = placeholder(
            "UPDATE events SET announced_at = ? "
            "WHERE provider = ? AND event_id = ? AND announced_at IS NULL"
        )
        self.state_by_provider_id = placeholder(
            f"{state_select} provider = ? AND provider_order_id = ?{lock}"
        )
        refund_select = f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE"  # noqa: S608
        refund_marks = ", ".join("?" * len(_REFUND_COLUMNS.split(",")))
        self.state_by_reference = placeholder(
            f"{state_select} provider = ? AND reference = ?{lock}"
        )
        self.refund = placeholder(
            f"{refund_select} provider = ? AND reference = ? AND refund_reference = ?"
        )
        self.refund_by_provider_id = placeholder(
            f"{refund_select} provider = ? AND provider_refund_id = ?"
        )
        self.refunds = placeholder(
            f"{refund_select} provider = ? AND reference = ? ORDER BY created_at, refund_reference"
        )
        self.refund_amounts = placeholder(
            "SELECT amount, status FROM refunds WHERE provider = ? AND reference = ?"
        )
        self.insert_refund = placeholder(
            f"INSERT INTO refunds ({_REFUND_COLUMNS}) VALUES ({refund_marks})"  # noqa: S608
        )
        self.update_refund = placeholder(
            "UPDATE refunds SET provider_refund_id = COALESCE(?, provider_refund_id), "
            "settlement_amount = COALESCE(?, settlement_amount), "
            "settlement_currency = COALESCE(?, settlement_currency), status = ?, updated_at = ? "
            "WHERE provider = ? AND reference = ? AND refund_reference = ?"
        )
        self.delete_pending_refund = placeholder(
            "DELETE FROM refunds WHERE provider = ? AND reference = ? AND refund_reference = ? "
            "AND status = ?"
        )
        self.refunded = placeholder(
            "SELECT refunded_amount FROM orders WHERE provider = ? AND reference = ?"
        )
        self.update_refunded = placeholder(
            "UPDATE orders SET refunded_amount = ?, status = ?, updated_at = ? "
            "WHERE provider = ? AND reference = ?"
        )
        self.state_by_merchant_id = placeholder(
            f"{state_select} provider = ? AND merchant_order_id = ? "
            f"ORDER BY reference LIMIT 1{lock}"
        )


def _order_state(row: Sequence[Any]) -> OrderState:
    (
        reference, provider_order_id, merchant_order_id, status, amount, currency,
        settlement_amount, settlement_currency,
    ) = row  # fmt: skip
    return OrderState(
        reference,
        provider_order_id,
        merchant_order_id,
        PaymentStatus(status),
        Decimal(amount),
        currency,
        None if settlement_amount is None else Decimal(settlement_amount),
        settlement_currency,
    )


def _rollback(conn: Connection) -> None:
    # If even ROLLBACK fails the connection is broken: the pool's health check discards it.
    with suppress(Exception):
        conn.execute("ROLLBACK")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime:
    assert moment is not None  # NOT NULL columns
    return moment
