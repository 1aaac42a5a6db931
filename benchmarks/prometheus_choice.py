"""Why ``/metrics`` uses OpenTelemetry's Prometheus exporter: what each choice costs.

``python -m benchmarks.prometheus_choice`` records one callback's metrics (a counter and a
histogram, with the same labels) 100,000 times and renders a scrape, two ways: the
OpenTelemetry SDK read by ``opentelemetry-exporter-prometheus``, and ``prometheus-client``'s
own instruments. ``docs/observability.md`` quotes the figures and the decision.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest

from payments_core.telemetry.otel import DURATION_BUCKETS

TIMES: Final = 100_000
LABELS: Final = {"payments.provider": "binance", "payments.outcome": "applied"}


def best(run: Callable[[], object], rounds: int = 5) -> float:
    """The fastest of ``rounds`` runs, in seconds."""
    found = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        found.append(time.perf_counter() - started)
    return min(found)


def opentelemetry_exporter() -> tuple[float, float]:
    meter = MeterProvider(metric_readers=[PrometheusMetricReader()]).get_meter("choice")
    counter = meter.create_counter("payments.callbacks")
    histogram = meter.create_histogram(
        "payments.callback.duration", unit="s", explicit_bucket_boundaries_advisory=DURATION_BUCKETS
    )

    def record() -> None:
        for _ in range(TIMES):
            counter.add(1, LABELS)
            histogram.record(0.02, LABELS)

    return best(record) / TIMES, best(lambda: generate_latest(REGISTRY))


def prometheus_client() -> tuple[float, float]:
    registry = CollectorRegistry()
    names = ["payments_provider", "payments_outcome"]
    counter = Counter("payments_callbacks", "Callbacks", names, registry=registry)
    histogram = Histogram(
        "payments_callback_duration_seconds",
        "Handling one callback",
        names,
        registry=registry,
        buckets=DURATION_BUCKETS,
    )

    def record() -> None:
        for _ in range(TIMES):
            counter.labels("binance", "applied").inc()
            histogram.labels("binance", "applied").observe(0.02)

    return best(record) / TIMES, best(lambda: generate_latest(registry))


def main() -> None:
    for name, measure in (
        ("OpenTelemetry SDK + its Prometheus exporter", opentelemetry_exporter),
        ("prometheus-client alone", prometheus_client),
    ):
        per_callback, scrape = measure()
        print(
            f"{name:<45} {per_callback * 1e6:6.2f} us per callback's metrics, "
            f"scrape {scrape * 1e3:5.2f} ms"
        )


if __name__ == "__main__":
    main()
