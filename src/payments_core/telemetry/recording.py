"""Recording spans and metrics in memory, with the OpenTelemetry SDK.

``payments demo`` and the tests record this way; an application exports to a collector instead
(``docs/observability.md``). Needs ``opentelemetry-sdk``, which the ``dev`` extra installs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from payments_core.errors import ConfigurationError

__all__ = ["Recorder", "exported_texts", "record", "render_tree", "walk"]

_lock = threading.Lock()
_recorder: Recorder | None = None


class Recorder:
    """Every span and metric point the process makes, kept in memory.

    Attributes:
        exporter: The finished spans.
        reader: The metrics, read on demand.
    """

    def __init__(self, exporter: InMemorySpanExporter, reader: InMemoryMetricReader) -> None:
        self.exporter = exporter
        self.reader = reader

    def spans(self) -> tuple[ReadableSpan, ...]:
        """The spans finished so far, in the order they finished."""
        return tuple(self.exporter.get_finished_spans())

    def clear(self) -> None:
        """Forget the spans finished so far (metrics are cumulative: compare readings)."""
        self.exporter.clear()

    def points(self) -> dict[tuple[str, frozenset[tuple[str, Any]]], Any]:
        """Each metric's value now, by name and labels: a sum, a gauge's value, or a
        histogram's count."""
        found: dict[tuple[str, frozenset[tuple[str, Any]]], Any] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        labels = frozenset((point.attributes or {}).items())
                        value = getattr(point, "value", None)
                        found[metric.name, labels] = value if value is not None else point.count  # type: ignore[union-attr]
        return found

    def value(self, name: str, **labels: Any) -> Any:
        """The value of metric ``name`` with exactly ``labels`` (dots written as ``__``), or 0."""
        wanted = frozenset((key.replace("__", "."), value) for key, value in labels.items())
        return self.points().get((name, wanted), 0)


def record() -> Recorder:
    """Install, once per process, an SDK tracer and meter provider that record in memory.

    :raises ConfigurationError: if the application set its own providers first (add an
        in-memory exporter to them instead).
    """
    global _recorder
    with _lock:
        if _recorder is not None:
            return _recorder
        exporter = InMemorySpanExporter()
        reader = InMemoryMetricReader()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        meter_provider = MeterProvider(metric_readers=[reader])
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        if trace.get_tracer_provider() is not tracer_provider:
            raise ConfigurationError(
                "a tracer provider was set before payments could record: add an "
                "InMemorySpanExporter to it instead"
            )
        _recorder = Recorder(exporter, reader)
        return _recorder


def exported_texts(
    spans: Sequence[ReadableSpan], points: Iterable[tuple[str, frozenset[tuple[str, Any]]]] = ()
) -> Iterator[tuple[str, str]]:
    """Every text a collector would receive from ``spans`` and the metric ``points`` (their
    names and labels), as ``(where, text)``: what a scan for secrets must search."""
    for span in spans:
        yield f"span {span.name}", span.name
        for key, value in (span.attributes or {}).items():
            yield f"span {span.name} {key}", f"{key}={value!s}"
        for event in span.events:
            yield f"event {event.name}", event.name
            for key, value in (event.attributes or {}).items():
                yield f"event {event.name} {key}", f"{key}={value!s}"
        for link in span.links:
            for key, value in (link.attributes or {}).items():
                yield f"link of {span.name} {key}", f"{key}={value!s}"
        if span.status.description:
            yield f"status of {span.name}", span.status.description
    for name, labels in points:
        for key, value in labels:
            yield f"metric {name} {key}", f"{key}={value!s}"


def walk(spans: Sequence[ReadableSpan]) -> Iterator[tuple[int, ReadableSpan]]:
    """Every span with its depth, depth first, roots by start time."""
    # The spans by their parent's span id (None for roots), each list by start time.
    ids = {span.context.span_id for span in spans if span.context is not None}
    tree: dict[int | None, list[ReadableSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent is not None else None
        tree.setdefault(parent if parent in ids else None, []).append(span)

    def visit(span: ReadableSpan, depth: int) -> Iterator[tuple[int, ReadableSpan]]:
        yield depth, span
        for child in tree.get(span.context.span_id if span.context else None, []):
            yield from visit(child, depth + 1)

    for root in tree.get(None, []):
        yield from visit(root, 0)


def render_tree(spans: Sequence[ReadableSpan]) -> str:
    """The span tree as text: one line per span, indented, with its duration and outcome."""
    lines = []
    for depth, span in walk(spans):
        attributes = span.attributes or {}
        elapsed = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        notes = [
            f"{key.rpartition('.')[2]}={attributes[key]!s}"
            for key in (
                "payments.outcome",
                "http.response.status_code",
                "error.type",
                "payments.callback.flag",
            )
            if key in attributes
        ]
        notes += [event.name.removeprefix("payments.") for event in span.events]
        notes += ["linked to its creation" for _ in span.links]
        suffix = f"  [{', '.join(notes)}]" if notes else ""
        lines.append(f"{'  ' * depth}{span.name}  {elapsed:.1f} ms{suffix}")
    return "\n".join(lines)
