"""Log records that carry the trace, and a JSON log format.

:class:`TraceFilter` adds ``trace_id`` and ``span_id`` (hex; empty outside a recorded span) to
every record of the core's loggers (:func:`payments_core.redaction.get_logger` attaches it), so
an operator can go from a log line to its trace. :class:`JsonFormatter` writes one JSON object
per line; :func:`configure_logging` installs either format on the root logger, and the command
line's ``--log-format json`` (or ``PAYMENTS_LOG_FORMAT=json``) calls it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final

__all__ = ["LOG_FORMATS", "TRACE_FILTER", "JsonFormatter", "TraceFilter", "configure_logging"]

#: The formats :func:`configure_logging` knows.
LOG_FORMATS: Final = ("text", "json")

_TEXT: Final = (
    "%(asctime)s %(levelname)s %(name)s [trace=%(trace_id)s span=%(span_id)s] %(message)s"
)


class TraceFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` of the current span to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        from payments_core import telemetry  # loaded by then; not while the loggers are made

        ids = telemetry.active.ids()
        record.trace_id, record.span_id = ids if ids is not None else ("", "")
        return True


#: The one filter :func:`payments_core.redaction.get_logger` attaches to the core's loggers.
TRACE_FILTER: Final = TraceFilter()


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, trace and span ids.

    The message is the one the redacting filter left (secrets masked); a traceback, if any,
    is its already-masked text.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": getattr(record, "trace_id", ""),
            "span_id": getattr(record, "span_id", ""),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> logging.Handler:
    """Log the core's records to stderr in ``log_format`` (``text`` or ``json``).

    :returns: The handler installed on the root logger.
    :raises ValueError: for a format not in :data:`LOG_FORMATS`.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(_TEXT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler
