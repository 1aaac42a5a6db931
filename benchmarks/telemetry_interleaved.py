"""What telemetry adds to one operation, measured in one process, the modes interleaved.

The three-process comparison (:mod:`benchmarks.telemetry_cost`) runs P1, P2 and P5 whole in
each mode, minutes apart; on a shared machine the load between them moves the figures more
than telemetry does. Here ``create_order`` (over an httpx mock transport answering the canned
create, no ledger) and ``apply_callback`` (a signed Binance callback verified and applied to an
SQLite ledger, the hook included) run in batches, the modes taking turns:

* ``quiet``: :class:`~payments_core.telemetry.quiet.QuietTelemetry`, what runs when
  ``opentelemetry`` is absent (or ``PAYMENTS_TELEMETRY=off``);
* ``api``: :class:`~payments_core.telemetry.otel.OpenTelemetry` over the API's own (no-op)
  providers, as with the ``otel`` extra and no SDK;
* ``sdk``: the same with an SDK tracer and meter provider recording in memory.

Each figure is the median over rounds of a batch's mean, in microseconds per operation. On a
shared machine even interleaved timings of one process move by tens of microseconds from run
to run, so :func:`measure` also counts the Python function calls per operation in each mode
(``cProfile``), which the load does not move.

``python -m benchmarks.telemetry_interleaved [--quick] [--output PATH]`` runs both alone.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from payments_core import open_ledger, telemetry
from payments_core.telemetry.otel import OpenTelemetry
from payments_core.telemetry.quiet import QuietTelemetry

from .canned import API_KEY, API_SECRET, _created
from .common import (
    References,
    Webhooks,
    callback_facade,
    epoch_ms,
    facade,
    interleave,
    median,
    pending_order,
)
from .suite import order

__all__ = ["measure"]


def modes() -> tuple[dict[str, QuietTelemetry], InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    found: dict[str, QuietTelemetry] = {
        "quiet": QuietTelemetry(),
        "api": OpenTelemetry(),
        "sdk": OpenTelemetry(tracer_provider, meter_provider),
    }
    return found, exporter


def measure(quick: bool = False) -> dict[str, dict[str, float]]:
    """Microseconds per ``create_order`` and per ``apply_callback`` in each mode, and the
    function calls per operation (``create_order calls``, ``apply_callback calls``)."""
    batch, rounds = (100, 5) if quick else (200, 15)
    chosen, exporter = modes()
    saved = telemetry.active

    def turns(workload: Workload, batch: int, rounds: int, count: bool = False) -> dict[str, float]:
        with workload(batch, len(chosen) * (rounds + 1)) as run:
            return _turns(chosen, exporter, rounds, batch, run, count=count)

    try:
        creates = turns(_creates, batch, rounds)
        callbacks = turns(_callbacks, max(batch // 4, 20), rounds)
        counted = turns(_creates, 100, 1, count=True)
        counted_callbacks = turns(_callbacks, 20, 1, count=True)
    finally:
        telemetry.active = saved
    return {
        "create_order": creates,
        "apply_callback": callbacks,
        "create_order calls": counted,
        "apply_callback calls": counted_callbacks,
    }


def _seconds(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _calls(run: Callable[[], None]) -> float:
    profile = cProfile.Profile()
    profile.runcall(run)
    return float(pstats.Stats(profile).total_calls)  # type: ignore[attr-defined]


#: A workload: given the batch size and how many batches will run, it yields what runs one batch.
Workload = Callable[[int, int], AbstractContextManager[Callable[[], None]]]


@contextmanager
def _creates(batch: int, batches: int) -> Iterator[Callable[[], None]]:
    """``batch`` creates at a time, each answered at once by a canned response (so however
    many ``batches`` run, nothing is made beforehand)."""
    answer = _created("https://canned.example", "STAGE").split(b"\r\n\r\n", 1)[1]
    mock = httpx.MockTransport(lambda request: httpx.Response(200, content=answer))
    payments = facade("https://canned.example", API_KEY, API_SECRET, transport=mock)
    refs = References("telemetry")

    def batch_of_creates() -> None:
        for reference in refs.take(batch):
            payments.create_order(order(reference))

    try:
        yield batch_of_creates
    finally:
        payments.close()


@contextmanager
def _callbacks(batch: int, batches: int) -> Iterator[Callable[[], None]]:
    """``batch`` signed paid callbacks at a time applied through a ledger, each for its own
    order."""
    moment = datetime.now(UTC).replace(microsecond=0)
    hooks = Webhooks()
    with tempfile.TemporaryDirectory() as scratch:
        ledger = open_ledger(f"sqlite:///{Path(scratch) / 'ledger.sqlite3'}?synchronous=normal")
        payments = callback_facade(hooks, moment, ledger=ledger)
        # Signed beforehand: an RSA signature costs more than what is measured.
        supply = iter(_signed(hooks, ledger, moment, 1 + batch * batches))

        def batch_of_callbacks() -> None:
            for headers, body in (next(supply) for _ in range(batch)):
                payments.apply_callback("binance", headers, body)

        try:
            payments.apply_callback("binance", *next(supply))  # fetches the certificates
            yield batch_of_callbacks
        finally:
            payments.close()


def _turns(
    chosen: dict[str, QuietTelemetry],
    exporter: InMemorySpanExporter,
    rounds: int,
    batch: int,
    run: Callable[[], None],
    *,
    count: bool = False,
) -> dict[str, float]:
    """Microseconds per operation of ``run`` (``batch`` operations) in each mode, the modes
    taking turns ``rounds`` times after one warm-up each; with ``count``, function calls."""
    scale = 1.0 if count else 1e6
    measured = _calls if count else _seconds

    def step(mode: QuietTelemetry) -> Callable[[], float]:
        def in_mode() -> float:
            telemetry.active = mode
            exporter.clear()
            return measured(run) / batch

        return in_mode

    for mode in chosen.values():
        step(mode)()
    timings = interleave(rounds, *(step(mode) for mode in chosen.values()))
    return {name: median(values) * scale for name, values in zip(chosen, timings, strict=True)}


def _signed(
    hooks: Webhooks, ledger: Any, moment: datetime, count: int
) -> list[tuple[dict[str, str], bytes]]:
    """``count`` signed paid callbacks, each for its own pending order (recorded first)."""
    found = []
    for number in range(1, count + 1):
        prepay, trade = str(10**17 + number), f"TELEMETRY{number:08d}"
        ledger.record_order(pending_order(f"telemetry-{number}", prepay, trade))
        headers, body, _, _ = hooks.callback(prepay, trade, now_ms=epoch_ms(moment))
        found.append((headers, body))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.telemetry_interleaved")
    parser.add_argument("--quick", action="store_true", help="smaller batches, fewer rounds")
    parser.add_argument("--output", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    figures = measure(args.quick)
    for operation, by_mode in figures.items():
        print(f"{operation:<22} " + ", ".join(f"{m} {v:.0f}" for m, v in by_mode.items()))
    if args.output is not None:
        args.output.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
