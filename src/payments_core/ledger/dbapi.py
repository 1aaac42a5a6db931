"""What the ledger needs of a database driver and of a connection pool.

sqlite3 and psycopg both fit :class:`Connection` and :class:`Cursor`; the ledger uses nothing
else of them. :class:`Pool` keeps idle connections for reuse (the SQLite store's pool);
``psycopg_pool.ConnectionPool`` fits :class:`Connections` too (the PostgreSQL store's).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from payments_core.errors import LedgerError

__all__ = ["Connection", "Connections", "Cursor", "Pool"]


class Cursor(Protocol):
    """The part of a DB-API cursor the ledger uses."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the ledger uses (sqlite3 and psycopg both fit)."""

    def execute(self, sql: Any, params: Sequence[Any] | Mapping[str, Any] = ..., /) -> Cursor: ...

    def close(self) -> None: ...


class Connections(Protocol):
    """Where the ledger draws its connections from: a pool."""

    def connection(self) -> AbstractContextManager[Any]:
        """A connection for one thread's use, given back when the block ends."""

    def close(self) -> None:
        """Close every connection; later requests fail."""


class Pool:
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
