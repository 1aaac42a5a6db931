"""The operator's console over 100,000 stored orders, on SQLite and PostgreSQL.

``python -m benchmarks.console [--orders 100000] [--rounds 20] [--output PATH]``

Each store is filled fast, with bulk inserts straight into the ledger's own tables (the schema
``open_ledger`` created): ``--orders`` orders over 90 days, most paid (each with its applied
and announced callback), some pending (a tenth of them older than the stuck threshold), closed,
expired and refunded ones (with their refunds), and one flagged callback in 200. PostgreSQL is
then analysed, as its autovacuum would do; SQLite is left as the ledger leaves it (no ANALYZE).

Then, ``--rounds`` times each, interleaved, it times:

* the queries alone (``LedgerReader``): the overview, a filtered list (``paid`` at ``binance``
  since 30 days ago), its tenth page (by cursor), the list of every status, a lookup by
  reference, one order's timeline;
* the same pages over HTTP from the console on loopback (query, template and transfer).

It prints milliseconds (median and p95) and writes them as JSON
(``benchmarks/results/console.json`` unless ``--output``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from payments_core import Payments
from payments_core.console import Operator, create_console_app
from payments_core.console.queries import LedgerReader
from payments_core.console.rows import OrderFilter
from payments_core.ledger import open_ledger
from payments_core.ledger.sql import SqlLedger
from payments_core.models import PaymentStatus
from payments_core.serving import BackgroundServer

from .common import machine
from .growth import _postgres_schema

RESULTS = Path(__file__).parent / "results" / "console.json"
DAYS = 90
STATUSES = (
    [PaymentStatus.PAID] * 80
    + [PaymentStatus.PENDING] * 8
    + [PaymentStatus.CLOSED] * 4
    + [PaymentStatus.EXPIRED] * 4
    + [PaymentStatus.PARTIALLY_REFUNDED] * 2
    + [PaymentStatus.REFUNDED] * 2
)


def fill(ledger: SqlLedger, orders: int, now: datetime, seed: int = 7) -> dict[str, Any]:
    """Insert ``orders`` orders with their events and refunds; what was inserted."""
    chance = random.Random(seed)
    order_rows, event_rows, refund_rows = [], [], []
    step = timedelta(days=DAYS) / orders
    for number in range(orders):
        created = now - timedelta(days=DAYS) + step * number
        t = ledger.time_in(created)
        provider = "stripe" if number % 10 == 9 else "binance"
        status = chance.choice(STATUSES)
        reference = f"booking-{number:07d}"
        prepay = str(300000000000000000 + number)
        price = chance.choice(("1.00", "1.00", "1.00", "2.50", "5.00"))
        refunded = {"partially_refunded": "0.40", "refunded": price}.get(status.value)
        order_rows.append(
            (
                provider, reference, prepay, f"M{number:07d}", status.value, price, "USD",
                f"https://pay.example/checkout/{prepay}", t, t, refunded,
            )
        )  # fmt: skip
        if status in {PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}:
            paid_at = ledger.time_in(created + timedelta(minutes=2))
            event_rows.append(
                (
                    provider, f"{provider}:{prepay}:PAY_SUCCESS", "paid", prepay,
                    f"M{number:07d}", reference, "pending", price, "USD", f"T{number}",
                    paid_at, paid_at, True, None, paid_at,
                )
            )  # fmt: skip
        if refunded is not None:
            refund_at = ledger.time_in(created + timedelta(hours=3))
            refund_rows.append(
                (
                    provider, reference, f"r-{number}", f"R{number}", prepay, refunded, "USD",
                    "customer asked", "succeeded", refund_at, refund_at,
                )
            )  # fmt: skip
        if number % 200 == 0:
            odd_at = ledger.time_in(created + timedelta(minutes=3))
            event_rows.append(
                (
                    provider, f"{provider}:odd:{number}", "paid", str(900000000000 + number),
                    f"X{number}", None, None, "1.00", "USD", None, odd_at, odd_at, False,
                    "unknown_order", None,
                )
            )  # fmt: skip
    columns = {
        "orders": "provider, reference, provider_order_id, provider_reference, status, amount, "
        "currency, checkout_url, created_at, updated_at, refunded_amount",
        "events": "provider, event_id, status, provider_order_id, provider_reference, reference, "
        "previous_status, amount, currency, transaction_id, occurred_at, received_at, applied, "
        "flag, announced_at",
        "refunds": "provider, reference, refund_reference, provider_refund_id, "
        "provider_order_id, amount, currency, reason, status, created_at, updated_at",
    }
    conn: Any = ledger.connect()
    try:
        conn.execute("BEGIN")
        for table, rows in (
            ("orders", order_rows),
            ("events", event_rows),
            ("refunds", refund_rows),
        ):
            marks = ", ".join("?" * len(columns[table].split(",")))
            sql = ledger.placeholder(f"INSERT INTO {table} ({columns[table]}) VALUES ({marks})")  # noqa: S608
            conn.cursor().executemany(sql, rows)
        conn.execute("COMMIT")
        if ledger.placeholder("?") != "?":  # PostgreSQL: what autovacuum's analyse would know
            conn.execute("ANALYZE")
    finally:
        conn.close()
    return {"orders": len(order_rows), "events": len(event_rows), "refunds": len(refund_rows)}


def ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
    }


def timed(step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


@contextmanager
def store(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="console-bench-") as folder:
            yield f"sqlite:///{Path(folder) / 'ledger.sqlite3'}"
    else:
        with _postgres_schema() as url:
            yield url


def measure(kind: str, orders: int, rounds: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    with store(kind) as url:
        ledger = open_ledger(url)
        assert isinstance(ledger, SqlLedger)
        started = time.perf_counter()
        filled = fill(ledger, orders, now)
        fill_s = time.perf_counter() - started
        reader = LedgerReader(ledger)
        since = (now - timedelta(days=30)).date()
        paid_here = OrderFilter(status=PaymentStatus.PAID, provider="binance", since=since)
        tenth = None  # the tenth page's cursor, or the last page's in a smaller run
        for _ in range(9):
            following = reader.orders(paid_here, cursor=tenth).next_cursor
            if following is None:
                break
            tenth = following
        middle = f"booking-{orders // 2:07d}"
        found = reader.order("binance", middle) or reader.order("stripe", middle)
        assert found is not None
        queries: dict[str, Callable[[], object]] = {
            "overview": lambda: reader.overview(now=now, stuck_after=timedelta(minutes=15)),
            "list: paid, binance, last 30 days": lambda: reader.orders(paid_here),
            "list: the same, 10th page": lambda: reader.orders(paid_here, cursor=tenth),
            "list: every status": lambda: reader.orders(OrderFilter()),
            "list: by reference": lambda: reader.orders(OrderFilter(reference=middle)),
            "order: timeline": lambda: reader.timeline(found),
        }
        listed = f"/orders?status=paid&provider=binance&since={since}"
        pages = {
            "overview": "/",
            "list: paid, binance, last 30 days": listed,
            "list: the same, 10th page": f"{listed}&after={tenth}" if tenth else listed,
            "list: every status": "/orders",
            "list: by reference": f"/orders?reference={middle}",
            "order: timeline": f"/order?provider={found.provider}&reference={middle}",
        }
        payments = Payments(ledger=ledger, load_entry_points=False)
        app = create_console_app(
            payments, authorize=lambda request: Operator(name="bench", may_act=True)
        )
        samples: dict[str, list[float]] = {f"query {k}": [] for k in queries}
        samples.update({f"page {k}": [] for k in pages})
        with (
            BackgroundServer(app, lifespan="off") as server,
            httpx.Client(base_url=server.url, timeout=60) as client,
        ):

            def get(path: str) -> None:
                answer = client.get(path)
                assert answer.status_code == 200, answer.text[:500]

            for name in queries:  # warm: connections, statements, the page cache
                queries[name]()
                get(pages[name])
            for _ in range(rounds):
                for name, query in queries.items():
                    samples[f"query {name}"].append(timed(query))
                    samples[f"page {name}"].append(timed(lambda p=pages[name]: get(p)))  # type: ignore[misc]
        reader.close()
        payments.close()
    return {
        "store": kind,
        "stored": filled,
        "fill_seconds": round(fill_s, 1),
        "figures": {name: ms(values) for name, values in samples.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.console", description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    box = machine()
    runs = [measure(kind, args.orders, args.rounds) for kind in args.stores.split(",")]
    box["load_after"] = [round(x, 2) for x in __import__("os").getloadavg()]
    for run in runs:
        print(f"\n{run['store']}: {run['stored']} stored in {run['fill_seconds']} s")
        for name, figure in run["figures"].items():
            median, p95 = figure["median_ms"], figure["p95_ms"]
            print(f"  {name:<42} median {median:>8.2f} ms   p95 {p95:>8.2f} ms")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"machine": box, "runs": runs}, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
