"""The telemetry that does nothing: used when ``opentelemetry-api`` is not installed.

Every instrumentation point of the core calls :data:`payments_core.telemetry.active`; this
class is what it is without the ``otel`` extra (or with ``PAYMENTS_TELEMETRY=off``). Its flow
wrappers hand the flow back untouched and its context managers are one shared object, so an
instrumented operation costs a method call per point and nothing more.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

if TYPE_CHECKING:
    from payments_core.http import HttpRequest
    from payments_core.ledger import Ledger

__all__ = ["Attributes", "QuietTelemetry", "RequestSpan"]

T = TypeVar("T")
S = TypeVar("S")

#: Span attributes and metric labels: names as OpenTelemetry spells them, plain values.
Attributes = Mapping[str, str | int | float | bool]
#: A flow the wrappers take and give back: it yields steps ``S`` and returns ``T``.
Steps: TypeAlias = Generator[S, Any, T]
#: Exceptions a span does not count as failures.
Expected: TypeAlias = type[BaseException] | tuple[type[BaseException], ...]


class RequestSpan:
    """What a provider request's span is told while the request runs; here, nothing."""

    def __enter__(self) -> RequestSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def answered(self, status_code: int) -> None:
        """The provider answered with ``status_code``."""


_QUIET_REQUEST = RequestSpan()


class QuietTelemetry:
    """Traces and metrics switched off: every method does nothing, as cheaply as it can."""

    #: Whether spans and metrics go anywhere (an OpenTelemetry API is installed).
    enabled = False

    def operation(
        self, name: str, provider: str, flow: Steps[S, T], attributes: Attributes | None = None
    ) -> Steps[S, T]:
        """``flow`` as the facade operation ``name`` (the root span of its trace)."""
        del name, provider, attributes
        return flow

    def callback(self, provider: str, flow: Steps[S, T]) -> Steps[S, T]:
        """``flow``, the handling of one callback, with its outcome counted and timed."""
        del provider
        return flow

    def traced(
        self, name: str, flow: Steps[S, T], attributes: Attributes | None = None
    ) -> Steps[S, T]:
        """``flow`` as a child span ``name`` of the current one."""
        del name, attributes
        return flow

    def span(
        self, name: str, attributes: Attributes | None = None, *, expected: Expected = ()
    ) -> AbstractContextManager[object]:
        """A context manager: the block as a child span ``name`` of the current one.

        An exception leaving the block marks the span failed, unless it is ``expected`` (one
        the caller raises to say something normal, such as a duplicate).
        """
        del name, attributes, expected
        return _QUIET_REQUEST

    def request(self, request: HttpRequest, provider: str) -> RequestSpan:
        """A context manager: one provider request as an HTTP client span, and timed."""
        del request, provider
        return _QUIET_REQUEST

    def retrying(self, error: BaseException | None, attempt: int, wait: float) -> None:
        """Attempt ``attempt`` failed with ``error``; the next starts after ``wait`` s."""

    def note(self, name: str, attributes: Attributes | None = None) -> None:
        """An event ``name`` on the current span."""

    def outcome(self, outcome: str) -> None:
        """Say how the running operation ended, when it is more than succeeded or failed."""

    def traceparent(self) -> str | None:
        """The running operation's span as a W3C ``traceparent``, or ``None``."""
        return None

    def link_order(self, ledger: Ledger, provider: str, reference: str | None) -> None:
        """Link the running operation to the trace that created the order, if kept."""

    def ids(self) -> tuple[str, str] | None:
        """The current trace and span ids in hex, or ``None`` outside a recorded span."""
        return None
