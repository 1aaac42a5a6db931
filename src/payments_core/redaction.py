"""Secrets that never show, and a logging filter that scrubs them if they try.

A :class:`Secret` holds a credential. Its ``repr`` and ``str`` are masked, so it cannot leak
through a log line, a traceback or a debugger by accident; code that needs the value calls
:meth:`Secret.reveal`. Every secret's value is also remembered by :class:`RedactingFilter`,
which the core attaches to the ``payments_core`` and provider loggers, so that a value that did
slip into a message is replaced before any handler sees it. The filter also masks things shaped
like signatures and key material (long hex or base64 runs, PEM blocks). :func:`safe_url` hides
the password in a database URL before it is shown.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Final
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "RedactingFilter", "Secret", "get_logger", "redact", "safe_url"]

MASK: Final = "**********"

_known: set[str] = set()
_known_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None

# Shapes of signatures and keys: PEM blocks, 64+ hex chars, 100+ base64 chars.
_SHAPES: Final = re.compile(
    r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----"
    r"|\b[0-9A-Fa-f]{64,}\b"
    r"|[A-Za-z0-9+/]{100,}={0,2}",
    re.DOTALL,
)


class Secret:
    """A credential whose value is never shown by ``repr``, ``str`` or formatting.

    >>> s = Secret("hunter2hunter2")
    >>> s
    Secret('**********')
    >>> s.reveal()
    'hunter2hunter2'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a Secret holds a str")
        self._value = value
        _remember(value)

    def reveal(self) -> str:
        """Return the value. Call only where it is about to be used, never to log it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


def _remember(value: str) -> None:
    global _pattern
    # Short values would mask ordinary words; they are not credentials in any provider we know.
    if len(value) < 6:
        return
    with _known_lock:
        if value in _known:
            return
        _known.add(value)
        ordered = sorted(_known, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def redact(text: str) -> str:
    """Replace every known secret and every signature- or key-shaped run in ``text``."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _SHAPES.sub(MASK, text)


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages and logs.

    >>> safe_url("postgresql://app:hunter2@db.internal:5432/app")
    'postgresql://app:***@db.internal:5432/app'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record with secrets masked.

    It formats the message with its arguments first, masks the result, and drops the
    arguments, so that neither the template nor an argument can carry a secret out.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        # A traceback is formatted by the handler, after the filters ran: format it here, mask
        # it, and drop the exception itself, so no handler can format it unmasked.
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FORMATTER = logging.Formatter()
_filter = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """Return the logger ``name`` with the redacting filter attached (once), and the filter
    that adds the current trace and span ids (:mod:`payments_core.telemetry.logs`)."""
    from payments_core.telemetry.logs import TRACE_FILTER

    logger = logging.getLogger(name)
    if _filter not in logger.filters:
        logger.addFilter(_filter)
        logger.addFilter(TRACE_FILTER)
    return logger
