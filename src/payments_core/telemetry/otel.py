"""The telemetry that speaks OpenTelemetry's API: spans, events, links and metrics.

Imported only when ``opentelemetry-api`` is installed (the ``otel`` extra). With the API alone
every span is OpenTelemetry's non-recording span and every instrument its no-op; an
application that installs the SDK (``TracerProvider``, ``MeterProvider``) and its exporters
gets the real ones. Nothing here reads a request's headers or body, a callback's body, or an
exception's message: attributes are names, ids the merchant chose, statuses, categories and
times (``docs/observability.md`` lists them).
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final, TypeVar
from urllib.parse import urlsplit

import attrs
from opentelemetry import context, metrics, trace
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from payments_core import __version__
from payments_core.errors import CallbackDeferred, CallbackError
from payments_core.telemetry.quiet import Attributes, Expected, QuietTelemetry, RequestSpan, Steps
from payments_core.telemetry.vocabulary import callback_outcome, refusal, url_template

if TYPE_CHECKING:
    from payments_core.http import HttpRequest
    from payments_core.ledger import Ledger

__all__ = ["OpenTelemetry"]

T = TypeVar("T")
S = TypeVar("S")

#: Seconds: the bucket boundaries OpenTelemetry's HTTP conventions advise for durations.
DURATION_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip


@attrs.define
class _Operation:
    """The facade operation running in this context: its root span and how it ended."""

    span: trace.Span
    outcome: str | None = None


_running: ContextVar[_Operation | None] = ContextVar("payments_operation", default=None)


class _RequestSpan(RequestSpan):
    """A provider request's client span, ended and timed when the block ends."""

    __slots__ = ("labels", "span", "started", "telemetry", "token")

    def __init__(self, telemetry: OpenTelemetry, request: HttpRequest, provider: str) -> None:
        self.telemetry = telemetry
        self.labels: dict[str, str | int] = {
            "http.request.method": request.method,
            "payments.provider": provider,
            "payments.operation": request.operation or "request",
        }
        self.token: object = None
        # Named by its method until it is known to be recorded: the template costs a parse.
        self.span = telemetry.tracer.start_span(request.method, kind=SpanKind.CLIENT)
        if self.span.is_recording():
            parts = urlsplit(request.url)
            template = url_template(parts.path)
            self.span.update_name(f"{request.method} {template}")
            self.span.set_attributes(
                {**self.labels, "server.address": parts.hostname or "", "url.template": template}
            )
            if parts.port is not None:
                self.span.set_attribute("server.port", parts.port)
        self.started = 0.0

    def __enter__(self) -> _RequestSpan:
        if self.span is not trace.INVALID_SPAN:
            self.token = context.attach(trace.set_span_in_context(self.span))
        self.started = time.perf_counter()
        return self

    def answered(self, status_code: int) -> None:
        self.labels["http.response.status_code"] = status_code
        self.span.set_attribute("http.response.status_code", status_code)
        if status_code >= 400:
            self._failed(str(status_code))

    def _failed(self, error_type: str) -> None:
        self.labels["error.type"] = error_type
        self.span.set_attribute("error.type", error_type)
        self.span.set_status(Status(StatusCode.ERROR, error_type))

    def __exit__(self, *exc_info: object) -> None:
        elapsed = time.perf_counter() - self.started
        kind = exc_info[0]
        if isinstance(kind, type):
            self._failed(kind.__name__)
        self.telemetry.request_duration.record(elapsed, self.labels)
        if self.token is not None:
            context.detach(self.token)  # type: ignore[arg-type]
            self.span.end()


class _Scope:
    """A started span made current for a block, then ended; failed if the block raises.

    Without an SDK the span is the API's invalid one: nothing is made current or ended, so the
    block costs one ``start_span`` call. Exceptions are recorded by type only: a message may
    quote a provider's answer.
    """

    __slots__ = ("expected", "span", "token")

    def __init__(self, span: trace.Span, expected: Expected) -> None:
        self.span = span
        self.expected = expected
        self.token: object = None

    def __enter__(self) -> trace.Span:
        if self.span is not trace.INVALID_SPAN:
            self.token = context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if self.token is None:
            return
        if isinstance(error, Exception) and not isinstance(error, self.expected):
            error_type = type(error).__name__
            self.span.set_attribute("error.type", error_type)
            self.span.set_status(Status(StatusCode.ERROR, error_type))
        context.detach(self.token)  # type: ignore[arg-type]
        self.span.end()


class OpenTelemetry(QuietTelemetry):
    """Spans and metrics through the OpenTelemetry API.

    :param tracer_provider: Where spans go; the global provider if not given.
    :param meter_provider: Where metrics go; the global provider if not given.
    """

    enabled = True

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.tracer = trace.get_tracer("payments_core", __version__, tracer_provider)
        meter = metrics.get_meter("payments_core", __version__, meter_provider)
        self.orders = meter.create_counter(
            "payments.orders", unit="{order}", description="create_order calls, by outcome"
        )
        self.callbacks = meter.create_counter(
            "payments.callbacks", unit="{callback}", description="Callbacks, by outcome"
        )
        self.retries = meter.create_counter(
            "payments.retries", unit="{retry}", description="Retries, by error category"
        )
        self.request_duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Provider requests, by provider, operation and status",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.callback_duration = meter.create_histogram(
            "payments.callback.duration",
            unit="s",
            description="Handling one callback: verification, ledger and hook",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    # -- spans ----------------------------------------------------------------------------

    def span(
        self, name: str, attributes: Attributes | None = None, *, expected: Expected = ()
    ) -> _Scope:
        return _Scope(self.tracer.start_span(name, attributes=attributes), expected)

    def traced(
        self, name: str, flow: Steps[S, T], attributes: Attributes | None = None
    ) -> Steps[S, T]:
        with self.span(name, attributes):
            return (yield from flow)

    def operation(
        self, name: str, provider: str, flow: Steps[S, T], attributes: Attributes | None = None
    ) -> Steps[S, T]:
        labels = {"payments.provider": provider, "payments.operation": name}
        with self.span(f"payments.{name}", {**labels, **(attributes or {})}) as span:
            running = _Operation(span)
            token = _running.set(running)
            try:
                result = yield from flow
            except Exception:
                running.outcome = "failed"
                raise
            finally:
                outcome = running.outcome or "succeeded"
                span.set_attribute("payments.outcome", outcome)
                _running.reset(token)
                if name == "create_order":
                    self.orders.add(1, {"payments.provider": provider, "payments.outcome": outcome})
            return result

    def callback(self, provider: str, flow: Steps[S, T]) -> Steps[S, T]:
        started = time.perf_counter()
        labels = {"payments.provider": provider, "payments.operation": "callback"}
        with self.span("payments.callback", labels) as span:
            running = _Operation(span)
            token = _running.set(running)
            outcome = "failed"
            try:
                result = yield from flow
                outcome = callback_outcome(result, span.set_attribute)
                return result
            except CallbackError as error:
                outcome = "refused"
                span.set_attribute("payments.callback.refusal", refusal(error))
                raise
            except CallbackDeferred:
                outcome = "deferred"
                raise
            finally:
                _running.reset(token)
                span.set_attribute("payments.outcome", outcome)
                counted = {"payments.provider": provider, "payments.outcome": outcome}
                self.callbacks.add(1, counted)
                self.callback_duration.record(time.perf_counter() - started, counted)

    def request(self, request: HttpRequest, provider: str) -> RequestSpan:
        return _RequestSpan(self, request, provider)

    # -- what the running operation learns ------------------------------------------------

    def retrying(self, error: BaseException | None, attempt: int, wait: float) -> None:
        classification = getattr(error, "classification", None)
        category = "unclassified" if classification is None else str(classification.category)
        provider = getattr(error, "provider", None) or "unknown"
        trace.get_current_span().add_event(
            "payments.retry",
            {
                "payments.attempt": attempt,
                "payments.retry.category": category,
                "payments.retry.wait_s": round(wait, 6),
                "error.type": type(error).__name__,
            },
        )
        self.retries.add(1, {"payments.provider": provider, "payments.retry.category": category})

    def note(self, name: str, attributes: Attributes | None = None) -> None:
        trace.get_current_span().add_event(name, attributes)

    def outcome(self, outcome: str) -> None:
        running = _running.get()
        if running is not None:
            running.outcome = outcome

    def traceparent(self) -> str | None:
        running = _running.get()
        if running is None:
            return None
        found = running.span.get_span_context()
        if not found.is_valid:
            return None
        return f"00-{found.trace_id:032x}-{found.span_id:016x}-{int(found.trace_flags):02x}"

    def link_order(self, ledger: Ledger, provider: str, reference: str | None) -> None:
        running = _running.get()
        if reference is None or running is None or not running.span.is_recording():
            return
        kept = ledger.trace_context(provider, reference)
        linked = None if kept is None else _span_context(kept)
        if linked is not None:
            running.span.add_link(linked, {"payments.link": "created_by"})

    def ids(self) -> tuple[str, str] | None:
        found = trace.get_current_span().get_span_context()
        if not found.is_valid:
            return None
        return f"{found.trace_id:032x}", f"{found.span_id:016x}"


def _span_context(traceparent: str) -> SpanContext | None:
    """The span a W3C ``traceparent`` names, or ``None`` if it is not one."""
    parts = traceparent.split("-")
    if len(parts) != 4:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    found = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
    return found if found.is_valid else None
