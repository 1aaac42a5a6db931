"""Fixtures that run every ledger test against both stores.

``ledger_url`` is parametrised: ``sqlite`` (a file in the test's temporary directory) and
``postgres`` (a fresh schema in the database at ``$PAYMENTS_TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``, dropped after the test). Where PostgreSQL is not
reachable the ``postgres`` cases are skipped with a message saying so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from payments_core import Ledger, open_ledger
from payments_core.ledger.postgres import PostgresLedger
from payments_core.redaction import safe_url

if TYPE_CHECKING:
    from payments_binance.sandbox import Sandbox

POSTGRES_URL = os.environ.get(
    "PAYMENTS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
_unreachable: dict[str, str] = {}


def _admin_connection() -> Any:
    """A connection to the test database, or a skip saying why there is none."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("PostgreSQL cases need psycopg: pip install 'payments-core[postgres]'")
    if POSTGRES_URL in _unreachable:
        pytest.skip(_unreachable[POSTGRES_URL])
    try:
        return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        detail = " ".join(str(exc).split())
        reason = f"PostgreSQL not reachable at {safe_url(POSTGRES_URL)}: {detail}"
        _unreachable[POSTGRES_URL] = reason
        pytest.skip(reason)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a fresh, empty schema of the test database, dropped afterwards."""
    schema = f"payments_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with _admin_connection() as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty ledger, in each store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def open_test_ledger(ledger_url: str) -> Iterator[Callable[..., Ledger]]:
    """Open ledgers at ``ledger_url`` (with any ``open_ledger`` options); all closed after."""
    with ExitStack() as opened:
        yield lambda **options: opened.enter_context(open_ledger(ledger_url, **options))


@pytest.fixture
def ledger(open_test_ledger: Callable[..., Ledger]) -> Ledger:
    """An empty ledger, in each store."""
    return open_test_ledger()


@pytest.fixture
def quiet_binance_sandbox() -> Iterator[tuple[Sandbox, str]]:
    """A served Binance sandbox for our merchant that sends no webhook: (it, its URL)."""
    from .serve_process import quiet_sandbox

    with quiet_sandbox(seed=14) as running:
        yield running


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def postgres_ledger(postgres_url: str) -> Iterator[PostgresLedger]:
    """An empty PostgreSQL ledger (for the tests of its own statements)."""
    with open_ledger(postgres_url) as ledger:
        assert isinstance(ledger, PostgresLedger)
        yield ledger
