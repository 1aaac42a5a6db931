"""The PostgreSQL ledger's connection pool: sized by ``pool_size``, shared by every thread."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier, Event

import pytest

from payments_core import ConfigurationError, Ledger, open_ledger

from .conftest import _admin_connection
from .fakes import event_for, order_for

pytestmark = pytest.mark.postgres

THREADS = 8


def connections_named(application_name: str) -> int:
    with _admin_connection() as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def connections_named_once_gone(application_name: str, within: float = 10.0) -> int:
    """Count the named connections once the server has let go of those already closed.

    A client closes its socket at once, but its backend leaves ``pg_stat_activity`` only when
    it has seen the end of the stream and exited, a moment later: poll, bounded, for zero.
    """
    deadline = time.monotonic() + within
    pause = Event()
    while (count := connections_named(application_name)) and time.monotonic() < deadline:
        pause.wait(0.02)
    return count


def busy(ledger: Ledger, barrier: Barrier, reference: str) -> bool:
    barrier.wait()  # every thread asks for a connection at once
    ledger.record_order(order_for(reference))
    return ledger.apply_event(event_for(reference)).applied


def test_threads_share_at_most_pool_size_connections_named_in_the_url(postgres_url: str) -> None:
    name = f"pool-{uuid.uuid4().hex[:8]}"
    # pool_size is the ledger's option, not libpq's: libpq would refuse the URL with it.
    with open_ledger(f"{postgres_url}&application_name={name}&pool_size=2") as ledger:
        barrier = Barrier(THREADS)
        with ThreadPoolExecutor(THREADS) as pool:
            applied = list(pool.map(lambda i: busy(ledger, barrier, f"pool-{i}"), range(THREADS)))
        assert applied == [True] * THREADS
        assert 1 <= connections_named(name) <= 2
    assert connections_named_once_gone(name) == 0  # closing the ledger closes its connections


@pytest.mark.parametrize("size", ["0", "-1", "many"])
def test_a_pool_size_below_one_is_a_configuration_error(postgres_url: str, size: str) -> None:
    with pytest.raises(ConfigurationError, match="pool_size"):
        open_ledger(f"{postgres_url}&pool_size={size}")
