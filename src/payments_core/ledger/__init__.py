"""The ledger: every order and every callback event, recorded once.

Open one with :func:`open_ledger` and a URL (``PAYMENTS_DATABASE_URL``)::

    sqlite:///payments.sqlite3              a file, relative to the working directory (default)
    sqlite:////var/lib/app/payments.db      an absolute path (four slashes)
    sqlite:///payments.db?synchronous=normal&busy_timeout=10
    postgresql://user:password@db.internal:5432/app

and hand it to the facade: ``Payments(ledger=open_ledger(url))``. The facade then returns an
order already recorded for a reference without calling the provider, applies verified
callbacks (:meth:`~payments_core.Payments.apply_callback`) and reconciles pending orders
(:meth:`~payments_core.Payments.reconcile`). See ``docs/ledger.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from importlib import import_module
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from payments_core import redaction
from payments_core.errors import ConfigurationError
from payments_core.ledger._moved import moved_names
from payments_core.ledger.interface import Ledger
from payments_core.ledger.records import (
    ApplyResult,
    Backlog,
    EventRecord,
    OrderRecord,
    RefundOutcome,
)
from payments_core.rules import EventFlag

if TYPE_CHECKING:
    from payments_core.outcomes import CallbackOutcome, ReconcileOutcome

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ApplyResult",
    "Backlog",
    "CallbackOutcome",
    "EventFlag",
    "EventRecord",
    "Ledger",
    "OrderRecord",
    "ReconcileOutcome",
    "RefundOutcome",
    "open_ledger",
]

#: Where the ledger lives when ``PAYMENTS_DATABASE_URL`` is not set: a file in the working
#: directory.
DEFAULT_DATABASE_URL: Final = "sqlite:///payments.sqlite3"
_SQLITE_OPTIONS: Final = ("synchronous", "busy_timeout")

# The facade's outcomes live beside it and import this package: loaded when first asked for.
_OUTCOMES: Final = ("CallbackOutcome", "ReconcileOutcome")
_moved = moved_names(__name__, {"safe_url": "payments_core.redaction"}, stacklevel=3)


def __getattr__(name: str) -> object:
    if name in _OUTCOMES:
        return getattr(import_module("payments_core.outcomes"), name)
    return _moved(name)


def open_ledger(
    url: str,
    *,
    before_commit: Callable[[], None] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Ledger:
    """Open (creating or migrating on first use) the ledger at ``url``.

    :param url: ``sqlite:///path`` (options ``synchronous=full|normal``, ``busy_timeout``
        in seconds) or ``postgresql://...`` (any libpq URL; option ``pool_size``).
    :param before_commit: For tests only: called in :meth:`Ledger.apply_event` after the
        writes and before the commit; what it raises rolls the transaction back.
    :param clock: Where the ledger reads the time; the system clock if unset.
    :raises ConfigurationError: for an unknown scheme, a malformed URL or option, or a
        PostgreSQL URL without psycopg installed.
    :raises LedgerError: if the database cannot be opened or its schema is newer than this code.
    """
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        from payments_core.ledger.sqlite import SqliteLedger

        path, synchronous, busy_timeout = _sqlite_target(url)
        return SqliteLedger(
            path,
            synchronous=synchronous,
            busy_timeout=busy_timeout,
            before_commit=before_commit,
            clock=clock,
        )
    if scheme in {"postgresql", "postgres"}:
        try:
            from payments_core.ledger.postgres import PostgresLedger
        except ImportError as exc:
            raise ConfigurationError(
                f"{redaction.safe_url(url)} needs psycopg: "
                f"pip install 'payments-core[postgres]' ({exc})"
            ) from None
        return PostgresLedger(url, before_commit=before_commit, clock=clock)
    raise ConfigurationError(
        f"database URL {redaction.safe_url(url)!r} must start with sqlite:/// or postgresql://"
    )


def _sqlite_target(url: str) -> tuple[str, str, float]:
    parts = urlsplit(url)
    if not url.startswith("sqlite:///") or parts.netloc:
        raise ConfigurationError(
            f"SQLite URL {url!r} must be sqlite:///relative/path or sqlite:////absolute/path"
        )
    path = unquote(parts.path[1:])
    if not path or path == ":memory:":
        raise ConfigurationError(
            f"SQLite URL {url!r} must name a file: an in-memory database is not shared "
            "between the ledger's connections"
        )
    synchronous, busy_timeout = "full", 5.0
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "synchronous":
            synchronous = value.lower()
        elif key == "busy_timeout":
            try:
                busy_timeout = float(value)
            except ValueError:
                raise ConfigurationError(
                    f"SQLite URL option busy_timeout must be seconds, not {value!r}"
                ) from None
        else:
            raise ConfigurationError(
                f"SQLite URL option {key!r} is unknown (known: {', '.join(_SQLITE_OPTIONS)})"
            )
    return path, synchronous, busy_timeout
