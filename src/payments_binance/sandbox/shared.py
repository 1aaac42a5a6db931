"""The sandbox's state in a database, so that several worker processes serve one sandbox.

:class:`SharedOrderBook` has the methods of the in-memory
:class:`~payments_binance.sandbox.state.OrderBook` and applies the same transition functions,
but every change is one write transaction on a SQLite file (WAL mode, ``BEGIN IMMEDIATE``) or a
PostgreSQL database (a transaction-scoped advisory lock per schema): read the order and its
refunds, apply the rule, write them back. Writes are serialised, so a ``merchantTradeNo`` sent to
two workers at once is stored by one and refused (400201) by the other, a ``refundRequestId`` is
refunded once, an order expires once, and the worker whose transaction changed the state is the
one that sends the webhook. Used nonces are kept in the same database (:meth:`first_use`).

Orders handed out are snapshots: after a change through this book the caller's object is updated
in place, as the in-memory book's would be. Identifiers are derived from the seed and a sequence
number taken inside the transaction, so they are unique across workers and reproducible.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol, TypeVar

if sys.platform != "win32":
    import fcntl

import attrs
import cattrs

from payments_binance.sandbox import state
from payments_binance.sandbox.envelope import ApiError
from payments_binance.sandbox.state import (
    NewOrder,
    NewRefund,
    Order,
    OrderNotFound,
    Refund,
    RefundNotFound,
)

T = TypeVar("T")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sandbox_orders (
        seq BIGINT PRIMARY KEY,
        prepay_id TEXT NOT NULL UNIQUE,
        merchant_key TEXT NOT NULL,
        merchant_trade_no TEXT NOT NULL,
        checkout_token TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        expire_time BIGINT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (merchant_key, merchant_trade_no)
    )""",
    "CREATE INDEX IF NOT EXISTS sandbox_orders_due ON sandbox_orders (status, expire_time)",
    """CREATE TABLE IF NOT EXISTS sandbox_refunds (
        seq BIGINT PRIMARY KEY,
        merchant_key TEXT NOT NULL,
        refund_request_id TEXT NOT NULL,
        prepay_id TEXT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (merchant_key, refund_request_id)
    )""",
    "CREATE INDEX IF NOT EXISTS sandbox_refunds_order ON sandbox_refunds (prepay_id, seq)",
    """CREATE TABLE IF NOT EXISTS sandbox_nonces (
        merchant_key TEXT NOT NULL,
        nonce TEXT NOT NULL,
        timestamp BIGINT NOT NULL,
        PRIMARY KEY (merchant_key, nonce)
    )""",
    "CREATE INDEX IF NOT EXISTS sandbox_nonces_age ON sandbox_nonces (timestamp)",
)
_OPEN = tuple(status.value for status in state.OPEN_STATES)
#: Forget expired nonces after this many first uses (per worker), not on every request.
_NONCE_PRUNE_EVERY = 1024

_converter = cattrs.Converter()
_converter.register_unstructure_hook(Decimal, lambda amount: format(amount, "f"))
_converter.register_structure_hook(Decimal, lambda value, _: Decimal(value))


def is_database_url(target: str) -> bool:
    """Whether ``--state`` names a PostgreSQL database rather than a SQLite file."""
    return target.startswith(("postgres://", "postgresql://"))


class _Cursor(Protocol):
    rowcount: int

    def fetchall(self) -> list[tuple[Any, ...]]: ...


class _Database:
    """One connection, its transactions and its SQL dialect (``?`` placeholders throughout)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.lock = threading.RLock()
        self.postgres = is_database_url(target)
        self._connection: Any = None
        self._lock_file: Any = None
        self._integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
        if self.postgres:
            import psycopg

            self._integrity_errors = (psycopg.IntegrityError,)
        with self.write():
            for statement in _SCHEMA:
                self.execute(statement)

    def _connected(self) -> Any:
        # Opened on first use, and again after close(): a stopped sandbox can still be read.
        if self._connection is None:
            if self.postgres:
                import psycopg

                self._connection = psycopg.connect(self.target, autocommit=True)
            else:
                self._connection = sqlite3.connect(
                    self.target, isolation_level=None, check_same_thread=False, timeout=30.0
                )
                self._connection.execute("PRAGMA journal_mode=WAL")
                # A sandbox's state need not survive a power cut: no fsync on commit.
                self._connection.execute("PRAGMA synchronous=OFF")
        return self._connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> _Cursor:
        if self.postgres:
            sql = sql.replace("?", "%s")
        cursor: _Cursor = self._connected().execute(sql, params)
        return cursor

    def insert_unique(self, code: str, message: str, sql: str, params: Sequence[object]) -> None:
        """Insert a row; the :class:`ApiError` ``code`` if it breaks a unique constraint.

        The constraint (say, one ``merchantTradeNo`` per merchant) is the check itself: no
        read first, and the transaction is rolled back by the error.
        """
        try:
            self.execute(sql, params)
        except self._integrity_errors:
            raise ApiError(code, message) from None

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """One write transaction; writers of every worker wait for each other."""
        with self.lock, self._file_lock(), self._transaction("BEGIN IMMEDIATE"):
            if self.postgres:
                self.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()))")
            yield

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        """One consistent read (a snapshot of every table)."""
        with self.lock, self._transaction("BEGIN"):
            yield

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[None]:
        # PostgreSQL's own transaction, else SQLite's: ``begin`` (autocommit is on), then COMMIT.
        connection = self._connected()
        if self.postgres:
            with connection.transaction():
                yield
            return
        connection.execute(begin)
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        # SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries, with the event loop
        # blocked; a lock file wakes the next writer the moment the previous one commits.
        # PostgreSQL's writers wait on its advisory lock instead; without flock (Windows), SQLite's
        # busy handler alone serialises writers.
        if self.postgres or sys.platform == "win32":
            yield
            return
        if self._lock_file is None:
            self._lock_file = open(f"{self.target}.lock", "ab")  # noqa: SIM115 - closed in close()
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def close(self) -> None:
        with self.lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None


class _SharedIds:
    """Ids from the seed and a sequence number: odd 18-digit prepay ids above 2^53, tokens."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._base = random.Random(f"ids:{seed}").randrange(10**17, 9 * 10**17) | 1

    def prepay_id(self, seq: int) -> str:
        # Even steps keep every id odd, so a float round-trip (53-bit mantissa) always changes it.
        return str(self._base + 2 * 7919 * seq)

    def _digest(self, kind: str, value: object) -> str:
        text = f"{kind}:{self.seed}:{value}".encode()
        return hashlib.blake2b(text, digest_size=16).hexdigest()

    def token(self, seq: int) -> str:
        return self._digest("token", seq)

    def transaction_id(self, prepay_id: str) -> str:
        return f"M_R_{10**17 + int(self._digest('transaction', prepay_id), 16) % (9 * 10**17)}"


def _refresh(target: Order, source: Order) -> Order:
    """Copy ``source`` (just written) into the caller's snapshot ``target``; return ``target``."""
    for field in attrs.fields(Order):
        setattr(target, field.name, getattr(source, field.name))
    return target


class SharedOrderBook(state.Book):
    """The order book in a SQLite file or a PostgreSQL database (``target``), for workers.

    ``window_ms`` is the timestamp window, after which a used nonce may be forgotten. Raises
    ``sqlite3.Error`` or ``psycopg.Error`` if the database cannot be opened.
    """

    def __init__(self, target: str, *, seed: int = 0, window_ms: int = 60_000) -> None:
        self.target = target
        self.window_ms = window_ms
        self._db = _Database(target)
        self._ids = _SharedIds(seed)
        self._first_uses = 0

    def disconnect(self) -> None:
        """Close the database connection (it opens again if the book is used afterwards)."""
        self._db.close()

    # -- loading and saving -----------------------------------------------------------------

    def _load(self, where: str, params: Sequence[object]) -> Order | None:
        rows = self._db.rows(f"SELECT body FROM sandbox_orders WHERE {where}", params)  # noqa: S608 - fixed clauses
        if not rows:
            return None
        order = _converter.structure(json.loads(rows[0][0]), Order)
        refunds = self._db.rows(
            "SELECT body FROM sandbox_refunds WHERE prepay_id = ? ORDER BY seq",
            (order.prepay_id,),
        )
        order.refunds = [_converter.structure(json.loads(body), Refund) for (body,) in refunds]
        return order

    def _save(self, order: Order) -> None:
        self._db.execute(
            "UPDATE sandbox_orders SET status = ?, body = ? WHERE prepay_id = ?",
            (order.status.value, _body(order), order.prepay_id),
        )

    def _read(self, where: str, params: Sequence[object]) -> Order:
        with self._db.read():
            order = self._load(where, params)
        if order is None:
            raise OrderNotFound(str(params[0]))
        return order

    def _change(self, target: Order, change: Callable[[Order], T]) -> T:
        """Apply ``change`` to the stored order in one write transaction; refresh ``target``."""
        with self._db.write():
            order = self._load("prepay_id = ?", (target.prepay_id,))
            if order is None:
                raise OrderNotFound(target.prepay_id)
            result = change(order)
            self._save(order)
        _refresh(target, order)
        return result

    def _transaction_id(self, order: Order) -> str:
        return self._ids.transaction_id(order.prepay_id)

    # -- the OrderBook methods ----------------------------------------------------------------

    @property
    def orders(self) -> Mapping[str, Order]:
        """Read-only view of the orders by prepay id (each read is a query)."""
        return _OrdersView(self)

    @property
    def refunds(self) -> tuple[Refund, ...]:
        """Every refund, in the order they were made."""
        with self._db.read():
            rows = self._db.rows("SELECT body FROM sandbox_refunds ORDER BY seq")
        return tuple(_converter.structure(json.loads(body), Refund) for (body,) in rows)

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
        with self._db.write():
            [(seq,)] = self._db.rows("SELECT COALESCE(MAX(seq), 0) + 1 FROM sandbox_orders")
            order = state.new_order(
                new,
                prepay_id=self._ids.prepay_id(seq),
                checkout_token=self._ids.token(seq),
                merchant_key=merchant_key,
                merchant_id=merchant_id,
                now=now,
                default_expire_ms=default_expire_ms,
            )
            self._db.insert_unique(
                "400201",
                "merchantTradeNo is invalid or duplicated",
                "INSERT INTO sandbox_orders (seq, prepay_id, merchant_key, merchant_trade_no,"
                " checkout_token, status, expire_time, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    order.prepay_id,
                    merchant_key,
                    new.merchant_trade_no,
                    order.checkout_token,
                    order.status.value,
                    order.expire_time,
                    _body(order),
                ),
            )
        return order

    def find(
        self, merchant_key: str, *, prepay_id: str | None, merchant_trade_no: str | None
    ) -> Order:
        """The merchant's order by prepay id (preferred) or trade number; 400202 if none."""
        with self._db.read():
            if prepay_id is not None:
                order = self._load("prepay_id = ?", (prepay_id,))
            else:
                order = self._load(
                    "merchant_key = ? AND merchant_trade_no = ?", (merchant_key, merchant_trade_no)
                )
        if order is None or order.merchant_key != merchant_key:
            raise ApiError("400202", "Order not found.")
        return order

    def get(self, prepay_id: str) -> Order:
        """The order with this prepay id, whoever owns it; :class:`OrderNotFound` if none."""
        return self._read("prepay_id = ?", (prepay_id,))

    def by_token(self, token: str) -> Order:
        """The order whose checkout page has this token; :class:`OrderNotFound` if none."""
        return self._read("checkout_token = ?", (token,))

    def refund(self, merchant_key: str, new: NewRefund, *, now: int) -> tuple[Order, Refund, bool]:
        """Store a refund: (order, refund, whether the id was seen before); see ``OrderBook``."""
        with self._db.write():
            seen = self._refund(merchant_key, new.refund_request_id)
            if seen is not None:
                state.same_refund(seen, new)
                order = self._load("prepay_id = ?", (seen.prepay_id,))
                assert order is not None  # a refund's order is never deleted
                return order, seen, True
            order = self._load("prepay_id = ?", (new.prepay_id,))
            made = state.refund(order, merchant_key, new, now=now)
            assert order is not None  # state.refund refused a missing one
            self._save(order)
            [(seq,)] = self._db.rows("SELECT COALESCE(MAX(seq), 0) + 1 FROM sandbox_refunds")
            self._db.execute(
                "INSERT INTO sandbox_refunds (seq, merchant_key, refund_request_id, prepay_id,"
                " body) VALUES (?, ?, ?, ?, ?)",
                (seq, merchant_key, made.refund_request_id, made.prepay_id, _body(made)),
            )
        return order, made, False

    def settle_refund(
        self, merchant_key: str, refund_request_id: str, *, succeeded: bool, now: int
    ) -> tuple[Order, Refund, bool]:
        """Settle a pending refund: (its order, it, False if it was settled already)."""
        with self._db.write():
            seen = self._refund(merchant_key, refund_request_id)
            if seen is None:
                raise RefundNotFound(refund_request_id)
            order = self._load("prepay_id = ?", (seen.prepay_id,))
            assert order is not None  # a refund's order is never deleted
            # An order's refunds are all its merchant's (state.refund refuses another's order).
            [made] = [r for r in order.refunds if r.refund_request_id == refund_request_id]
            settled = state.settle(order, made, succeeded=succeeded, now=now)
            if settled:
                self._save(order)
                self._db.execute(
                    "UPDATE sandbox_refunds SET body = ? WHERE merchant_key = ?"
                    " AND refund_request_id = ?",
                    (_body(made), merchant_key, refund_request_id),
                )
        return order, made, settled

    def _refund(self, merchant_key: str, refund_request_id: str) -> Refund | None:
        rows = self._db.rows(
            "SELECT body FROM sandbox_refunds WHERE merchant_key = ? AND refund_request_id = ?",
            (merchant_key, refund_request_id),
        )
        return _converter.structure(json.loads(rows[0][0]), Refund) if rows else None

    def get_refund(self, merchant_key: str, refund_request_id: str) -> Refund:
        """The merchant's refund with this id; :class:`RefundNotFound` if there is none."""
        with self._db.read():
            made = self._refund(merchant_key, refund_request_id)
        if made is None:
            raise RefundNotFound(refund_request_id)
        return made

    def expire_due(self, now: int) -> list[Order]:
        """Expire every open order past its expiry time; each is returned by one worker only."""
        due_sql = "SELECT prepay_id FROM sandbox_orders WHERE status IN (?, ?) AND expire_time <= ?"
        params = (*_OPEN, now)
        with self._db.lock:  # one statement: its own snapshot, no transaction needed
            if not self._db.rows(due_sql, params):  # the usual case: no write transaction
                return []
        expired: list[Order] = []
        with self._db.write():
            for (prepay_id,) in self._db.rows(due_sql, params):
                order = self._load("prepay_id = ?", (prepay_id,))
                if order is not None and state.expire(order, now=now):
                    self._save(order)
                    expired.append(order)
        return expired

    def count_by_status(self) -> dict[str, int]:
        """How many orders are in each status."""
        with self._db.read():
            rows = self._db.rows("SELECT status, COUNT(*) FROM sandbox_orders GROUP BY status")
        return {status: int(count) for status, count in rows}

    # -- nonces -------------------------------------------------------------------------------

    def first_use(self, api_key: str, nonce: str, timestamp: int, now: int) -> bool:
        """Record ``nonce`` for every worker; False if the key used it within the window."""
        forgotten_before = now - self.window_ms
        with self._db.write():
            cursor = self._db.execute(
                "INSERT INTO sandbox_nonces (merchant_key, nonce, timestamp) VALUES (?, ?, ?)"
                " ON CONFLICT (merchant_key, nonce) DO UPDATE SET timestamp = excluded.timestamp"
                " WHERE sandbox_nonces.timestamp < ?",
                (api_key, nonce, timestamp, forgotten_before),
            )
            first = cursor.rowcount == 1
            self._first_uses += 1
            if self._first_uses % _NONCE_PRUNE_EVERY == 0:
                self._db.execute(
                    "DELETE FROM sandbox_nonces WHERE timestamp < ?", (forgotten_before,)
                )
        return first


class _OrdersView(Mapping[str, Order]):
    """``sandbox.orders`` over the database: every access reads the current rows."""

    def __init__(self, book: SharedOrderBook) -> None:
        self._book = book

    def __getitem__(self, prepay_id: str) -> Order:
        try:
            return self._book.get(prepay_id)
        except OrderNotFound:
            raise KeyError(prepay_id) from None

    def __iter__(self) -> Iterator[str]:
        with self._book._db.read():
            rows = self._book._db.rows("SELECT prepay_id FROM sandbox_orders ORDER BY seq")
        return iter([prepay_id for (prepay_id,) in rows])

    def __len__(self) -> int:
        with self._book._db.read():
            [(count,)] = self._book._db.rows("SELECT COUNT(*) FROM sandbox_orders")
        return int(count)


def _body(stored: Order | Refund) -> str:
    data = _converter.unstructure(stored)
    data.pop("refunds", None)  # an order's refunds are kept in their own table
    return json.dumps(data, separators=(",", ":"))
