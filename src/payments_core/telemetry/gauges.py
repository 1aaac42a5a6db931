"""Observable gauges of what waits in a ledger: pending orders by age, pending refunds, the
outbox's backlog. Needs ``opentelemetry-api``.

Each reading runs a few ``COUNT`` queries; register the gauges in one process per ledger (the
one that serves ``/metrics``), not in every worker.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from payments_core import __version__
from payments_core.errors import PaymentsError
from payments_core.redaction import get_logger

if TYPE_CHECKING:
    from payments_core.ledger import Backlog, Ledger

__all__ = ["observe_ledger"]

log = get_logger("payments_core.telemetry")


def observe_ledger(ledger: Ledger, meter_provider: metrics.MeterProvider | None = None) -> None:
    """Report ``ledger``'s backlog as the gauges ``payments.orders.pending`` (by
    ``payments.pending.older_than``), ``payments.refunds.pending`` and
    ``payments.outbox.backlog``, read when the metrics are collected.

    The ledger is held weakly: once it is gone the gauges report nothing.
    """
    meter = metrics.get_meter("payments_core", __version__, meter_provider)
    held = weakref.ref(ledger)

    def reading(
        pick: Callable[[Backlog], Iterable[Observation]],
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            del options
            found = held()
            try:
                backlog = None if found is None else found.backlog()
            except PaymentsError as error:  # a scrape must not fail: the gauge skips a reading
                log.warning("the ledger's backlog could not be read: %s", error)
                return []
            return [] if backlog is None else list(pick(backlog))

        return observe

    meter.create_observable_gauge(
        "payments.orders.pending",
        callbacks=[
            reading(
                lambda b: (
                    Observation(count, {"payments.pending.older_than": age})
                    for age, count in b.pending_orders.items()
                )
            )
        ],
        unit="{order}",
        description="Orders still pending, at least as old as payments.pending.older_than",
    )
    meter.create_observable_gauge(
        "payments.refunds.pending",
        callbacks=[reading(lambda b: [Observation(b.pending_refunds)])],
        unit="{refund}",
        description="Refunds the provider has not said are done",
    )
    meter.create_observable_gauge(
        "payments.outbox.backlog",
        callbacks=[reading(lambda b: [Observation(b.unannounced)])],
        unit="{change}",
        description="Committed changes not yet announced to the application",
    )
