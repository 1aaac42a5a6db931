"""The ledger's behaviour, written once over any SQL store.

:class:`SqlLedger` works over a DB-API style connection (``execute``, ``fetchone``,
``fetchall``); the SQLite and PostgreSQL stores supply only what differs between the two
databases: how to connect and pool connections, how a write transaction begins and whether
its statements may be pipelined, how an order row is locked, the column types, and how times
are stored.

Applying an event is one transaction::

    BEGIN (IMMEDIATE on SQLite)
    read the order the event names (FOR UPDATE on PostgreSQL)
    decide: unknown order? ids, currency or amount differ? a step forward from its status?
    INSERT the event ... ON CONFLICT DO NOTHING RETURNING id
    UPDATE the order's status, if the event is a step forward
    no event row returned: a duplicate, roll back
    COMMIT

so the event id (unique per provider) and the status change commit together or not at all.
A store that can send statements without waiting for each answer (PostgreSQL's pipeline
mode, see :meth:`SqlLedger.batched`) sends ``BEGIN`` with the read, the insert with the
update, and ``COMMIT`` alone: three round trips instead of five.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, TypedDict

import attrs

from payments_core import telemetry
from payments_core.errors import LedgerError, ValidationError
from payments_core.ledger import columns, observed
from payments_core.ledger.dbapi import Connection, Connections, Cursor, Pool
from payments_core.ledger.interface import Ledger
from payments_core.ledger.migrations import MIGRATIONS
from payments_core.ledger.records import (
    ApplyResult,
    Backlog,
    EventRecord,
    OrderRecord,
    RefundOutcome,
    answer_event_id,
    flagged_event_id,
    status_change,
)
from payments_core.ledger.statements import Statement, Statements
from payments_core.models import (
    Order,
    PaymentEvent,
    PaymentStatus,
    Refund,
    RefundRequest,
    RefundStatus,
    StatusChange,
)
from payments_core.money import Money
from payments_core.redaction import safe_url
from payments_core.rules import (
    EventFlag,
    OrderState,
    assess_event,
    assess_refund_notice,
    check_refundable,
    check_refunded,
    learnt_settlement,
)

__all__ = ["LedgerOptions", "SqlLedger"]


class LedgerOptions(TypedDict, total=False):
    """The options every store takes besides where it is (see :class:`SqlLedger`)."""

    before_commit: Callable[[], None] | None
    clock: Callable[[], datetime] | None


class SqlLedger(Ledger):
    """The ledger's behaviour over any SQL store; subclasses supply the dialect.

    :param before_commit: **For tests only.** Called inside :meth:`apply_event` after the event
        row and the status change are written and before the commit; whatever it raises rolls
        the transaction back and propagates.
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
        self._sql = Statements(self.placeholder, self.lock_order, self)
        with self._errors("open"):
            self._pool = self.open_pool()
            self._migrate()

    # -- what a store supplies --------------------------------------------------------------

    @abc.abstractmethod
    def connect(self) -> Connection:
        """Open a new connection, in autocommit mode (transactions begin explicitly)."""

    def open_pool(self) -> Connections:
        """The pool the ledger draws connections from: idle connections kept for reuse."""
        return Pool(self._mapped_connect, self.healthy)

    def batched(self, conn: Connection) -> AbstractContextManager[object]:
        """Held around a write transaction: statements may be sent before earlier answers
        arrive (a statement's answer is waited for when it is read, and at the end)."""
        del conn
        return nullcontext()

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

    # -- orders and events ------------------------------------------------------------------

    def record_order(self, order: Order) -> Order:
        sql = self._sql
        key = {"provider": order.provider, "reference": order.reference}
        traced = telemetry.active.traceparent()
        with self._errors("record order"), self._transaction() as conn:
            sql.insert_order.run(conn, **columns.order_row(order, self._now()))
            if traced is not None:
                observed.keep_trace(conn, self.placeholder, order.provider, order.reference, traced)
            if order.checkout_url is not None:
                # An order recovered by a query has no payment links (a provider's query does
                # not return them); whoever got the create's own answer supplies them.
                links = columns.links_row(order)
                sql.fill_links.run(conn, **links, **key, provider_order_id=order.provider_order_id)
            stored = sql.order.row(conn, **key)
        if stored is None:
            raise LedgerError(
                f"provider order {order.provider_order_id} of {order.provider} is recorded for "
                f"another reference than {order.reference!r}",
                provider=order.provider,
            )
        return columns.order_record(stored).order

    def get_order(self, provider: str, reference: str) -> Order | None:
        with self._errors("read order"), self._pool.connection() as conn:
            row = self._sql.order.row(conn, provider=provider, reference=reference)
        return None if row is None else columns.order_record(row).order

    def find_orders(self, reference: str) -> list[OrderRecord]:
        with self._errors("read orders"), self._pool.connection() as conn:
            rows = self._sql.orders_by_reference.rows(conn, reference=reference)
        return [columns.order_record(row) for row in rows]

    def pending_orders(self, older_than: timedelta) -> list[OrderRecord]:
        rows = self._pending("orders", self._sql.pending, older_than)
        return [columns.order_record(row) for row in rows]

    def pending_refunds(self, older_than: timedelta) -> list[Refund]:
        pending = RefundStatus.PENDING.value
        rows = self._pending("refunds", self._sql.pending_refunds, older_than, status=pending)
        return [columns.refund(row) for row in rows]

    def _pending(
        self, what: str, query: Statement, older_than: timedelta, **values: object
    ) -> list[columns.Row]:
        """The rows ``query`` finds (with ``values``), created at least ``older_than`` ago."""
        cutoff = self._now() - older_than
        with self._errors(f"read pending {what}"), self._pool.connection() as conn:
            return query.rows(conn, created_at=cutoff, **values)

    def events_for(self, provider: str, reference: str) -> list[EventRecord]:
        with self._errors("read events"), self._pool.connection() as conn:
            rows = self._sql.events.rows(conn, provider=provider, reference=reference)
        return [columns.event_record(row) for row in rows]

    def apply_event(self, event: PaymentEvent, *, announced: bool = False) -> ApplyResult:
        now = self._now()
        if self.before_commit is None:
            done = self.apply_at_once(event, now, announced=announced)
            if done is not None:
                return done
        if event.refund is not None:
            return self._apply_refund_notice(event, now, announced=announced)
        try:
            with self._errors("apply event"), self._transaction() as conn:
                state = self._state(conn, event)
                flag = assess_event(state, event)
                inserted = self._insert_event(conn, event, state, flag, now, announced=announced)
                if state is not None and flag is None:
                    self._sql.update_status.run(
                        conn,
                        status=event.status.value,
                        transaction_id=event.transaction_id,
                        **columns.money_row(event.paid, "paid_"),
                        **columns.money_row(event.fee, "fee_"),
                        **columns.money_row(learnt_settlement(state, event), "settlement_"),
                        updated_at=now,
                        provider=event.provider,
                        reference=state.reference,
                    )
                self._ready_to_commit(inserted, state)
        except _Duplicate as duplicate:
            return duplicate.result
        if state is None or flag is not None:
            return ApplyResult(
                applied=False, flagged=flag, reference=None if state is None else state.reference
            )
        return ApplyResult.applied_by(event, state, now)

    def apply_at_once(
        self, event: PaymentEvent, now: datetime, *, announced: bool
    ) -> ApplyResult | None:
        """Apply ``event`` in one statement if the store can and the event fits its order.

        A refund notice (``event.refund``) fits when it settles its pending refund.

        :returns: the result, or ``None`` to apply it by the general transaction (which then
            decides everything again). The base class always returns ``None``.
        """
        del event, now, announced
        return None

    def unannounced_changes(
        self, older_than: timedelta = timedelta(0), *, limit: int = 1000
    ) -> list[StatusChange]:
        cutoff = self._now() - older_than
        with self._errors("read unannounced changes"), self._pool.connection() as conn:
            rows = self._sql.unannounced.rows(conn, received_at=cutoff, limit=limit)
        return [
            StatusChange(
                provider=row["provider"],
                reference=row["reference"],
                old_status=PaymentStatus(row["previous_status"]),
                new_status=PaymentStatus(row["status"]),
                event_id=row["event_id"],
                changed_at=row["received_at"],
            )
            for row in rows
        ]

    def mark_announced(self, provider: str, event_id: str) -> None:
        with self._errors("mark a change announced"), self._transaction() as conn:
            self._sql.mark_announced.run(
                conn, announced_at=self._now(), provider=provider, event_id=event_id
            )

    def close(self) -> None:
        self._pool.close()

    # -- claims -----------------------------------------------------------------------------

    def claim_reference(self, provider: str, reference: str, holder: str, hold: timedelta) -> bool:
        now = self._now()
        with self._errors("claim a reference"), self._transaction() as conn:
            won = self._sql.claim.row(
                conn,
                provider=provider,
                reference=reference,
                holder=holder,
                claimed_at=now,
                expires_at=now + hold,
            )
        return won is not None

    def release_claim(self, provider: str, reference: str, holder: str) -> None:
        with self._errors("release a claim"), self._transaction() as conn:
            self._sql.release_claim.run(conn, provider=provider, reference=reference, holder=holder)

    # -- what telemetry reads ---------------------------------------------------------------

    def trace_context(self, provider: str, reference: str) -> str | None:
        with self._errors("read trace context"), self._pool.connection() as conn:
            return observed.read_trace(conn, self.placeholder, provider, reference)

    def backlog(self) -> Backlog:
        with self._errors("read backlog"), self._pool.connection() as conn:
            return observed.count_backlog(conn, self.placeholder, self.time_in, self._now())

    # -- refunds ----------------------------------------------------------------------------

    def reserve_refund(
        self, provider: str, request: RefundRequest, *, provider_refund_id: str | None = None
    ) -> RefundOutcome:
        now = self._now()
        with self._errors("reserve refund"), self._transaction() as conn:
            state = self._order_state(conn, provider, request.reference)
            if state is None:
                raise ValidationError(
                    "reference",
                    f"no order is recorded for {request.reference!r} at {provider}",
                    provider=provider,
                )
            known = self._stored_refund(conn, provider, request.reference, request.refund_reference)
            if known is not None:
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
            refund = Refund(
                provider=provider,
                reference=request.reference,
                refund_reference=request.refund_reference,
                provider_refund_id=provider_refund_id,
                provider_order_id=state.provider_order_id,
                amount=request.amount,
                status=RefundStatus.PENDING,
                reason=request.reason,
            )
            self._sql.insert_refund.run(conn, **columns.refund_row(refund, now))
        return RefundOutcome(refund=refund, created=True)

    def settle_refund(self, refund: Refund, *, announced: bool = False) -> RefundOutcome:
        now = self._now()
        with self._errors("settle refund"), self._transaction() as conn:
            state = self._order_state(conn, refund.provider, refund.reference)
            stored = self._stored_refund(
                conn, refund.provider, refund.reference, refund.refund_reference
            )
            if state is None or stored is None:
                raise LedgerError(
                    f"no refund {refund.refund_reference!r} of {refund.reference!r} is reserved "
                    f"at {refund.provider}",
                    provider=refund.provider,
                )
            if stored.status is not RefundStatus.PENDING:
                # Settled by its notice first: the answer may still say what was moved back.
                if stored.settlement is None and refund.settlement is not None:
                    with_settlement = attrs.evolve(stored, settlement=refund.settlement)
                    self._write_refund(conn, stored, with_settlement, now)
                    stored = with_settlement
                return RefundOutcome(refund=stored)
            others = self._held(conn, refund.provider, refund.reference) - stored.amount.amount
            flag = check_refunded(state, refund, others)
            if flag is not None:
                return RefundOutcome(refund=stored, flagged=flag)
            event_id = answer_event_id(refund)
            change, settled = self._settle(conn, state, stored, refund, now, event_id)
            if change is not None:
                # The order's move waits in the outbox like an applied event's.
                moved = PaymentEvent(
                    provider=refund.provider,
                    event_id=event_id,
                    status=change.new_status,
                    provider_order_id=state.provider_order_id,
                    provider_reference=state.provider_reference,
                    amount=settled.amount,
                )
                self._insert_event(conn, moved, state, None, now, announced=announced)
        return RefundOutcome(refund=settled, change=change)

    def release_refund(self, provider: str, reference: str, refund_reference: str) -> bool:
        with self._errors("release refund"), self._transaction() as conn:
            deleted = self._sql.delete_pending_refund.row(
                conn,
                provider=provider,
                reference=reference,
                refund_reference=refund_reference,
                status=RefundStatus.PENDING.value,
            )
            return deleted is not None

    def get_refund(self, provider: str, reference: str, refund_reference: str) -> Refund | None:
        with self._errors("read refund"), self._pool.connection() as conn:
            return self._stored_refund(conn, provider, reference, refund_reference)

    def refunds_for(self, provider: str, reference: str) -> list[Refund]:
        with self._errors("read refunds"), self._pool.connection() as conn:
            rows = self._sql.refunds.rows(conn, provider=provider, reference=reference)
        return [columns.refund(row) for row in rows]

    def _apply_refund_notice(
        self, event: PaymentEvent, now: datetime, *, announced: bool
    ) -> ApplyResult:
        notice = event.refund
        assert notice is not None
        change = settled = None
        try:
            with self._errors("apply event"), self._transaction() as conn:
                state = self._state(conn, event)
                stored = self._noticed_refund(conn, event, state)
                flag = assess_refund_notice(state, event, stored)
                recorded = event
                if flag is None:
                    assert state is not None
                    assert stored is not None
                    heard = attrs.evolve(
                        stored,
                        status=notice.status,
                        provider_refund_id=stored.provider_refund_id or notice.provider_refund_id,
                        settlement=stored.settlement or _moved(stored, notice.amount),
                    )
                    change, settled = self._settle(conn, state, stored, heard, now, event.event_id)
                    if change is not None:
                        # Recorded as the ledger decided it, and kept in the outbox until the
                        # application has heard of it (a duplicate rolls all of it back).
                        recorded = attrs.evolve(event, status=change.new_status)
                inserted = self._insert_event(
                    conn, recorded, state, flag, now, announced=announced or change is None
                )
                self._ready_to_commit(inserted, state)
        except _Duplicate as duplicate:
            return duplicate.result
        return ApplyResult(
            applied=flag is None,
            flagged=flag,
            change=change,
            reference=None if state is None else state.reference,
            refund=settled,
        )

    def _write_refund(self, conn: Connection, stored: Refund, heard: Refund, now: datetime) -> None:
        """Write ``heard``'s status, and its provider id and settlement where it states them."""
        self._sql.update_refund.run(
            conn,
            provider_refund_id=heard.provider_refund_id,
            **columns.money_row(heard.settlement, "settlement_"),
            status=heard.status.value,
            updated_at=now,
            provider=stored.provider,
            reference=stored.reference,
            refund_reference=stored.refund_reference,
        )

    def _noticed_refund(
        self, conn: Connection, event: PaymentEvent, state: OrderState | None
    ) -> Refund | None:
        """The refund a notice names: by the caller's refund reference when the provider echoes
        it, else by the provider's refund id."""
        notice = event.refund
        assert notice is not None
        row = self._sql.refund_by_provider_id.row(
            conn, provider=event.provider, provider_refund_id=notice.provider_refund_id
        )
        by_id = None if row is None else columns.refund(row)
        if notice.refund_reference is None or state is None:
            return by_id
        stored = self._stored_refund(conn, event.provider, state.reference, notice.refund_reference)
        if by_id is not None and by_id != stored:
            return None  # its id is another refund's: it names no refund of its own
        return stored

    def _settle(
        self,
        conn: Connection,
        state: OrderState,
        stored: Refund,
        heard: Refund,
        now: datetime,
        event_id: str,
    ) -> tuple[StatusChange | None, Refund]:
        """Write what was heard of the pending ``stored`` refund; count it if it succeeded.

        A provider that refunded another amount than was reserved (Binance's last refund
        attempt refunds all that remains) is taken at its word: the refund holds that amount.
        """
        key = {"provider": stored.provider, "reference": stored.reference}
        if heard.amount != stored.amount:
            self._sql.update_refund_amount.run(
                conn,
                amount=heard.amount.amount,
                refund_reference=stored.refund_reference,
                **key,
            )
            stored = attrs.evolve(stored, amount=heard.amount)
        self._write_refund(conn, stored, heard, now)
        settled = attrs.evolve(
            stored,
            status=heard.status,
            provider_refund_id=heard.provider_refund_id or stored.provider_refund_id,
            settlement=heard.settlement or stored.settlement,
        )
        if heard.status is not RefundStatus.SUCCEEDED:
            return None, settled
        before = self._sql.refunded.row(conn, **key)
        assert before is not None  # the order's row is locked
        total = Decimal(before["refunded_amount"] or 0) + stored.amount.amount
        status = (
            PaymentStatus.REFUNDED if total >= state.amount else PaymentStatus.PARTIALLY_REFUNDED
        )
        moves = state.status.can_become(status)
        self._sql.update_refunded.run(
            conn,
            refunded_amount=total,
            status=(status if moves else state.status).value,
            updated_at=now,
            **key,
        )
        if not moves:
            return None, settled
        return status_change(stored.provider, state, status, event_id, now), settled

    # -- internals --------------------------------------------------------------------------

    def _state(self, conn: Connection, event: PaymentEvent) -> OrderState | None:
        row = self._sql.state_by_provider_id.row(
            conn, provider=event.provider, provider_order_id=event.provider_order_id
        )
        if row is None and event.provider_reference is not None:
            row = self._sql.state_by_provider_reference.row(
                conn, provider=event.provider, provider_reference=event.provider_reference
            )
        return None if row is None else columns.order_state(row)

    def _order_state(self, conn: Connection, provider: str, reference: str) -> OrderState | None:
        row = self._sql.state_by_reference.row(conn, provider=provider, reference=reference)
        return None if row is None else columns.order_state(row)

    def _stored_refund(
        self, conn: Connection, provider: str, reference: str, refund_reference: str
    ) -> Refund | None:
        row = self._sql.refund.row(
            conn, provider=provider, reference=reference, refund_reference=refund_reference
        )
        return None if row is None else columns.refund(row)

    def _held(self, conn: Connection, provider: str, reference: str) -> Decimal:
        """The total of an order's refunds that have not failed."""
        rows = self._sql.refund_amounts.rows(conn, provider=provider, reference=reference)
        return sum(
            (Decimal(row["amount"]) for row in rows if row["status"] != RefundStatus.FAILED.value),
            Decimal(0),
        )

    def _insert_event(
        self,
        conn: Connection,
        event: PaymentEvent,
        state: OrderState | None,
        flag: EventFlag | None,
        now: datetime,
        *,
        announced: bool,
    ) -> Cursor:
        """Send the event row's insert; :meth:`_ready_to_commit` reads whether it was new.

        An event flagged for not fitting its order (unknown, other ids, currency or amount) is
        kept under its own key, :func:`flagged_event_id`: a forged or garbled delivery never
        takes the key under which the genuine event is later told from a duplicate.
        """
        if flag is not None and flag is not EventFlag.STALE:
            event = attrs.evolve(event, event_id=flagged_event_id(event, flag))
        row = columns.event_row(event, state, flag, now, announced=announced)
        return self._sql.insert_event.run(conn, **row)

    def _ready_to_commit(self, inserted: Cursor, state: OrderState | None) -> None:
        """Raise :class:`_Duplicate` if the event's id was recorded already; else call
        :attr:`before_commit`, if set: the transaction is about to commit."""
        if inserted.fetchone() is None:
            raise _Duplicate(None if state is None else state.reference)
        if self.before_commit is not None:
            self.before_commit()

    def _mapped_connect(self) -> Connection:
        with self._errors("connect"):
            return self.connect()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self.writing(), self._pool.connection() as conn:
            try:
                with self.batched(conn):
                    conn.execute(self.begin)
                    yield conn
                    conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT too: left open, the transaction would keep its write lock
                # and the pooled connection would refuse every later BEGIN.
                _rollback(conn)
                raise

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        # Every ledger operation passes here: its span names the operation, never a value.
        attributes = {"db.operation.name": what}
        with telemetry.active.span(f"payments.ledger {what}", attributes, expected=_Duplicate):
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
                for step in statements:
                    if callable(step):
                        step(conn, self.placeholder)
                    else:
                        conn.execute(step.format(**self.types))
                conn.execute(self.placeholder("INSERT INTO schema_version VALUES (?)"), (version,))


class _Duplicate(Exception):
    """Raised inside a transaction to roll it back when the event id was recorded before."""

    def __init__(self, reference: str | None) -> None:
        super().__init__(reference)
        self.result = ApplyResult.duplicate_of(reference)


def _rollback(conn: Connection) -> None:
    # If even ROLLBACK fails the connection is broken: the pool's health check discards it.
    with suppress(Exception):
        conn.execute("ROLLBACK")


def _moved(refund: Refund, amount: Money | None) -> Money | None:
    """A notice's amount as the refund's settlement, if it is in another currency than the
    refund's (what the provider moved back in its own)."""
    if amount is None or amount.currency == refund.amount.currency:
        return None
    return amount


def _utc_now() -> datetime:
    return datetime.now(UTC)
