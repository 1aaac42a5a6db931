"""``GET /metrics`` for Prometheus, on the callback server (``payments serve --metrics``).

The metrics are the OpenTelemetry instruments of :mod:`payments_core.telemetry`, read by the
OpenTelemetry project's Prometheus exporter (``opentelemetry-exporter-prometheus``) into
``prometheus-client``'s registry, and written in Prometheus's text format. Why this exporter,
and not ``prometheus-client``'s own instruments: ``docs/observability.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from payments_core.errors import ConfigurationError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.routing import Route

    from payments_core.ledger import Ledger

__all__ = ["NEEDS", "metrics_route"]

#: What ``--metrics`` needs installed.
NEEDS = "opentelemetry-sdk opentelemetry-exporter-prometheus"


def metrics_route(ledger: Ledger | None = None) -> Route:
    """A route serving ``/metrics``; installs a meter provider that Prometheus reads.

    :param ledger: Its backlog is reported as gauges too (:func:`~.gauges.observe_ledger`).
    :raises ConfigurationError: if the SDK or the exporter is not installed, or another meter
        provider was set first.
    """
    try:
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
    except ImportError:
        raise ConfigurationError(f"--metrics needs: pip install {NEEDS}") from None
    from starlette.responses import Response
    from starlette.routing import Route

    from payments_core.telemetry.gauges import observe_ledger

    provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
    metrics.set_meter_provider(provider)
    if metrics.get_meter_provider() is not provider:
        raise ConfigurationError("a meter provider was set before /metrics could be served")
    if ledger is not None:
        observe_ledger(ledger, provider)

    async def scrape(request: Request) -> Response:
        del request
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", scrape, methods=["GET"])
