"""The SQLite store: the embedded default, one file, in WAL mode.

Readers never wait for the writer (WAL). Writers take ``BEGIN IMMEDIATE``, so a transaction
holds the write lock from its first statement and two writers never deadlock upgrading a
read lock. Within one process writes are queued on a lock (SQLite admits one writer at a
time anyway, and a lock is cheaper than SQLite's busy-wait); across processes the busy
timeout waits for the other writer.

Times are stored as ISO 8601 text in UTC with microseconds, so they sort as text.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Final, Unpack

from payments_core.errors import ConfigurationError
from payments_core.ledger.dbapi import Connection
from payments_core.ledger.sql import LedgerOptions, SqlLedger
from payments_core.redaction import get_logger

__all__ = ["SqliteLedger"]

SYNCHRONOUS: Final = ("full", "normal")

log = get_logger("payments_core.ledger")


class SqliteLedger(SqlLedger):
    """A ledger in one SQLite file.

    :param path: The database file; created, with its schema, if missing. Several processes
        on one machine may share it; for several machines use PostgreSQL.
    :param synchronous: ``full`` (the default) syncs the write-ahead log on every commit, so a
        committed event survives a power cut; ``normal`` syncs at checkpoints only, which is
        faster but may lose the last commits on a power cut (never on a process crash).
    :param busy_timeout: Seconds a writer waits for another process's write lock before the
        operation fails with :class:`~payments_core.errors.LedgerError`.
    :param options: ``before_commit`` (for tests only) and ``clock``: see
        :class:`~payments_core.ledger.sql.SqlLedger`.
    :raises LedgerError: if the file cannot be opened or its schema is newer than this code.
    """

    begin = "BEGIN IMMEDIATE"
    concurrency = 1  # writes take turns on the process's write lock
    types: ClassVar[Mapping[str, str]] = {
        "id": "INTEGER PRIMARY KEY",
        "time": "TEXT",
        "bool": "INTEGER",
    }
    driver_errors = (sqlite3.Error,)

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "full",
        busy_timeout: float = 5.0,
        **options: Unpack[LedgerOptions],
    ) -> None:
        if synchronous not in SYNCHRONOUS:
            raise ConfigurationError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}"
            )
        self.path = Path(path)
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self._write_lock = threading.Lock()
        super().__init__(f"sqlite:///{self.path}", **options)

    def connect(self) -> Connection:
        # isolation_level=None: no implicit transactions; the ledger says BEGIN and COMMIT.
        # check_same_thread=False: the pool hands a connection to one thread at a time.
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        except sqlite3.Error:
            conn.close()
            raise
        if mode != "wal":  # a filesystem without shared memory: correct, but writers wait more
            log.warning("SQLite ledger %s runs in %s journal mode, not WAL", self.path, mode)
        return conn

    def healthy(self, conn: Connection) -> bool:
        assert isinstance(conn, sqlite3.Connection)
        return not conn.in_transaction

    def writing(self) -> AbstractContextManager[object]:
        return self._write_lock

    def time_in(self, moment: datetime | None) -> object:
        return None if moment is None else moment.astimezone(UTC).isoformat(timespec="microseconds")

    def time_out(self, value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    def __repr__(self) -> str:
        return f"SqliteLedger({str(self.path)!r})"
