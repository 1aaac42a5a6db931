"""Traces, metrics and trace-carrying logs of every payment operation (the ``otel`` extra).

The core calls :data:`active` at a few points: the facade's operations, the transport that
sends every provider request, the retry policy, the callback path, the ledger's transactions
and the application hook. Because a provider's hooks only *describe* requests (sans-I/O), these
points see every provider, present and future, without the provider doing anything.

:data:`active` is :class:`~payments_core.telemetry.otel.OpenTelemetry` when
``opentelemetry-api`` can be imported, else :class:`~payments_core.telemetry.quiet.QuietTelemetry`,
which does nothing and imports nothing. ``PAYMENTS_TELEMETRY=off`` in the environment chooses
the quiet one even when the API is installed. What is recorded, and how to export it, is in
``docs/observability.md``.
"""

from __future__ import annotations

import os
import threading

from payments_core.telemetry.quiet import Attributes, QuietTelemetry, RequestSpan

__all__ = ["Attributes", "QuietTelemetry", "RequestSpan", "active"]


def _choose() -> QuietTelemetry:
    if os.environ.get("PAYMENTS_TELEMETRY", "").strip().lower() in {"off", "0", "false", "no"}:
        return QuietTelemetry()
    try:
        from payments_core.telemetry.otel import OpenTelemetry
    except ImportError:  # the otel extra is not installed
        return QuietTelemetry()
    return OpenTelemetry()


#: The telemetry every instrumentation point calls; chosen once, on first use (not at import,
#: so that the core's modules may import this package while they load).
active: QuietTelemetry
_choosing = threading.Lock()


def __getattr__(name: str) -> QuietTelemetry:
    if name != "active":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _choosing:
        chosen = globals().get("active")
        if chosen is None:
            chosen = globals()["active"] = _choose()
    return chosen
