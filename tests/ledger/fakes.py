"""A provider that needs no network, for ledger tests, and the workers the process tests run.

``FakeProvider``'s operations yield no HTTP request. Its "remote" (what the provider itself
holds) is a small SQLite file, so several processes see one provider: a second create for a
reference is refused as a duplicate, exactly as a provider with deterministic order ids does,
and the facade recovers the order by querying it.

Callbacks are JSON bodies (:func:`callback_body`) carrying a token header instead of a
signature; a wrong token is refused with a 401 reply.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Generator, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import payments_core
from payments_core.ledger.migrations import MIGRATIONS
from payments_core.ledger.sqlite import SqliteLedger
from payments_core.testing.changes import ChangeRecorder
from tests.core.fakes import DUPLICATE_ORDER

NAME = "fake"
TOKEN = "let-me-in"
ACK = payments_core.CallbackReply(200, b'{"returnCode":"SUCCESS"}')
REFUSED = payments_core.CallbackReply(401, b'{"returnCode":"FAIL","returnMessage":"bad token"}')
PRICE = payments_core.Money("1.00", "USD")


def provider_order_id(reference: str) -> str:
    """The fake provider's deterministic order id for ``reference``."""
    return str(int(hashlib.sha256(reference.encode()).hexdigest()[:15], 16))


def provider_reference(reference: str) -> str:
    return f"m-{reference}"


def order_for(
    reference: str, status: payments_core.PaymentStatus = payments_core.PaymentStatus.PENDING
) -> payments_core.Order:
    """The order the fake provider holds for ``reference``."""
    return payments_core.Order(
        provider=NAME,
        reference=reference,
        provider_order_id=provider_order_id(reference),
        provider_reference=provider_reference(reference),
        status=status,
        amount=PRICE,
        checkout_url=f"https://fake.test/checkout/{provider_order_id(reference)}",
    )


def event_for(
    reference: str,
    status: payments_core.PaymentStatus = payments_core.PaymentStatus.PAID,
    *,
    amount: payments_core.Money | None = PRICE,
    event_id: str | None = None,
    refund: payments_core.RefundNotice | None = None,
) -> payments_core.PaymentEvent:
    """The event a callback about ``reference`` carries (about one of its refunds: ``refund``)."""
    return payments_core.PaymentEvent(
        provider=NAME,
        event_id=event_id or f"{NAME}:{provider_order_id(reference)}:{status.value}",
        status=status,
        provider_order_id=provider_order_id(reference),
        provider_reference=provider_reference(reference),
        amount=amount,
        refund=refund,
    )


def refund_notice_for(
    reference: str,
    refund_id: str,
    status: payments_core.RefundStatus,
    amount: payments_core.Money | None,
    *,
    refund_reference: str | None = None,
) -> payments_core.PaymentEvent:
    """The event a refund callback carries: refund ``refund_id`` of ``reference``'s order."""
    notice = payments_core.RefundNotice(
        provider_refund_id=refund_id,
        status=status,
        amount=amount,
        refund_reference=refund_reference,
    )
    return event_for(
        reference,
        payments_core.PaymentStatus.PARTIALLY_REFUNDED,
        amount=amount,
        event_id=f"{NAME}:{refund_id}:{status.value}",
        refund=notice,
    )


def status_of(ledger: payments_core.Ledger, reference: str) -> payments_core.PaymentStatus:
    """The status the ledger holds for the fake provider's order for ``reference``."""
    order = ledger.get_order(NAME, reference)
    assert order is not None, f"no order for {reference!r} in the ledger"
    return order.status


#: The time an old ledger's rows were written (:func:`write_old_sqlite_ledger`).
OLD_STAMP = "2030-01-01T00:00:00.000000+00:00"


def write_old_sqlite_ledger(path: Path, version: int, status: payments_core.PaymentStatus) -> None:
    """Write a SQLite ledger at schema ``version`` as the code of its time left it, holding an
    order ``old`` in ``status`` (provider order id ``1``, merchant order id ``m-old``)."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for number, statements in enumerate(MIGRATIONS[:version], start=1):
            for statement in statements:
                assert isinstance(statement, str), "old schema versions are SQL alone"
                conn.execute(statement.format(**SqliteLedger.types))
            conn.execute("INSERT INTO schema_version VALUES (?)", (number,))
        conn.execute(
            "INSERT INTO orders (provider, reference, provider_order_id, merchant_order_id, "
            "status, amount, currency, created_at, updated_at) VALUES "
            "(?, 'old', '1', 'm-old', ?, '1.00', 'USD', ?, ?)",
            (NAME, status.value, OLD_STAMP, OLD_STAMP),
        )


def callback_body(event: payments_core.PaymentEvent) -> bytes:
    """The fake provider's callback body for ``event``."""
    data: dict[str, Any] = {
        "eventId": event.event_id,
        "status": event.status.value,
        "providerOrderId": event.provider_order_id,
        "merchantOrderId": event.provider_reference,
    }
    if event.amount is not None:
        data["amount"] = event.amount.plain
        data["currency"] = event.amount.currency
    return json.dumps(data).encode()


HEADERS = {"X-Fake-Token": TOKEN, "Content-Type": "application/json"}


class FakeRemote:
    """The provider's own order store, in a SQLite file several processes can share."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS remote_orders "
                "(reference TEXT PRIMARY KEY, status TEXT NOT NULL)"
            )

    def _connect(self) -> closing[sqlite3.Connection]:
        return closing(sqlite3.connect(self.path, timeout=30, isolation_level=None))

    def create(self, reference: str) -> payments_core.Order:
        try:
            with self._connect() as conn:
                conn.execute("INSERT INTO remote_orders VALUES (?, 'pending')", (reference,))
        except sqlite3.IntegrityError:
            raise payments_core.ProviderError(
                f"order {reference} exists", provider=NAME, status_code=409, provider_code="dup"
            ) from None
        return order_for(reference)

    def get(self, reference: str) -> payments_core.Order | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT status FROM remote_orders WHERE reference = ?", (reference,)
            ).fetchone()
        return None if row is None else order_for(reference, payments_core.PaymentStatus(row[0]))

    def set_status(self, reference: str, status: payments_core.PaymentStatus) -> None:
        with self._connect() as conn:
            conn.execute(
                "UPDATE remote_orders SET status = ? WHERE reference = ?", (status.value, reference)
            )

    def count(self) -> int:
        with self._connect() as conn:
            count: int = conn.execute("SELECT COUNT(*) FROM remote_orders").fetchone()[0]
        return count


def _done(value: Any) -> Generator[payments_core.HttpRequest, payments_core.HttpResponse, Any]:
    """An operation that needs no request: ``value`` is computed when it is driven."""
    return value()
    yield  # unreachable: makes this a generator


class FakeProvider:
    """A provider with no network: see the module docstring. Settings: ``remote`` (a path)."""

    def __init__(self, context: payments_core.ProviderContext) -> None:
        self.name = context.name
        remote = context.settings.get("remote")
        self.remote = FakeRemote(Path(remote)) if remote else None
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def _called(self, hook: str) -> None:
        with self._lock:
            self.calls.append(hook)

    def _need_remote(self) -> FakeRemote:
        assert self.remote is not None, "give the fake provider a remote setting"
        return self.remote

    @payments_core.hookimpl
    def describe_provider(self) -> payments_core.ProviderInfo:
        return payments_core.ProviderInfo(name=self.name, display_name="Fake")

    @payments_core.hookimpl
    def create_order(
        self, request: payments_core.OrderRequest
    ) -> Generator[payments_core.HttpRequest, payments_core.HttpResponse, payments_core.Order]:
        self._called("create_order")
        return _done(lambda: self._need_remote().create(request.reference))

    @payments_core.hookimpl
    def query_order(
        self, reference: str
    ) -> Generator[
        payments_core.HttpRequest, payments_core.HttpResponse, payments_core.Order | None
    ]:
        self._called("query_order")
        return _done(lambda: self._need_remote().get(reference))

    @payments_core.hookimpl
    def handle_callback(
        self, callback: payments_core.CallbackRequest
    ) -> Generator[
        payments_core.HttpRequest, payments_core.HttpResponse, payments_core.CallbackResult
    ]:
        return _done(lambda: self._interpret(callback))

    def _interpret(self, callback: payments_core.CallbackRequest) -> payments_core.CallbackResult:
        if callback.headers.get("x-fake-token") != TOKEN:
            raise payments_core.CallbackVerificationError(
                "bad token", provider=self.name, reply=REFUSED
            )
        data = json.loads(callback.body)
        if data.get("kind") == "ping":
            return payments_core.CallbackResult(None, ACK)
        if data.get("kind") == "keys-unavailable":  # as if fetching the provider's keys failed
            raise payments_core.ProviderError(
                "keys unavailable", provider=self.name, status_code=503
            )
        if data.get("kind") == "keys-being-fetched":  # as if another callback were fetching them
            raise payments_core.CallbackDeferred(
                "keys being fetched", provider=self.name, retry_after=2.5
            )
        amount = payments_core.Money(data["amount"], data["currency"]) if "amount" in data else None
        event = payments_core.PaymentEvent(
            provider=self.name,
            event_id=data["eventId"],
            status=payments_core.PaymentStatus(data["status"]),
            provider_order_id=data["providerOrderId"],
            provider_reference=data["merchantOrderId"],
            amount=amount,
        )
        return payments_core.CallbackResult(event, ACK)

    @payments_core.hookimpl
    def classify_error(
        self, error: payments_core.PaymentsError
    ) -> payments_core.ErrorClassification | None:
        if isinstance(error, payments_core.ProviderError) and error.provider_code == "dup":
            return DUPLICATE_ORDER
        return None


#: An application plugin that records every ``payment_status_changed`` call.
HookRecorder = ChangeRecorder


def make_payments(
    ledger_url: str | None,
    *,
    remote: Path | None = None,
    plugins: Iterable[object] = (),
    before_commit: Callable[[], None] | None = None,
) -> payments_core.Payments:
    """A facade with the fake provider (and ``remote``) and a ledger at ``ledger_url``."""
    settings: Mapping[str, Any] = {"remote": str(remote)} if remote else {}
    return payments_core.Payments(
        payments_core.Config(),
        providers={NAME: FakeProvider},
        provider_settings={NAME: settings},
        load_entry_points=False,
        plugins=tuple(plugins),
        ledger=None
        if ledger_url is None
        else payments_core.open_ledger(ledger_url, before_commit=before_commit),
    )


def request_for(reference: str) -> payments_core.OrderRequest:
    return payments_core.OrderRequest(
        reference=reference, price=PRICE, callback_url="https://app.test/cb"
    )


# -- process workers (spawned: they must be importable, and take only picklable arguments) --


def deliver_in_process(ledger_url: str, bodies: list[bytes], threads: int) -> tuple[int, list[str]]:
    """Deliver ``bodies`` through a facade of this process's own; return acks and changes."""
    recorder = HookRecorder()
    with (
        make_payments(ledger_url, plugins=[recorder]) as payments,
        ThreadPoolExecutor(threads) as pool,
    ):
        outcomes = list(pool.map(lambda b: payments.apply_callback(NAME, HEADERS, b), bodies))
    acks = sum(outcome.reply == ACK for outcome in outcomes)
    return acks, [change.reference for change in recorder.changes]


def create_in_process(
    ledger_url: str, remote: str, reference: str, barrier: Barrier, results: Any
) -> None:
    """Create the order for ``reference`` once ``barrier`` opens; put the order on ``results``."""
    with make_payments(ledger_url, remote=Path(remote)) as payments:
        barrier.wait()
        results.put(payments.create_order(request_for(reference)))
