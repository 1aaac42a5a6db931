"""Capturing log output and searching it for secrets (none may ever reach a log line).

:class:`LogCapture` attaches one handler to the root logger at ``DEBUG`` for the duration of a
``with`` block and keeps every formatted line, tracebacks included. :meth:`LogCapture.leaks`
names the secrets that appear in them, without repeating the secret values themselves, so that
the failure message of a test is as safe to print as the logs should have been.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Final, Self

__all__ = ["MIN_SECRET_LENGTH", "LogCapture", "find_leaks"]

#: Shorter values are not searched for: they would match ordinary words and numbers.
MIN_SECRET_LENGTH: Final = 6


class LogCapture(logging.Handler):
    """Every log line written while active, from every logger that propagates to the root.

    Attributes:
        lines: ``(logger name, formatted line)`` pairs, tracebacks included.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[tuple[str, str]] = []
        self._previous_level = logging.NOTSET

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, self.format(record)))

    def __enter__(self) -> Self:
        root = logging.getLogger()
        self._previous_level = root.level
        root.setLevel(logging.DEBUG)
        root.addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._previous_level)

    def leaks(self, secrets: Mapping[str, str]) -> list[str]:
        """Describe each log line that holds one of ``secrets`` (label → value)."""
        return find_leaks(secrets, ((f"log line from {n!r}", line) for n, line in self.lines))


def find_leaks(secrets: Mapping[str, str], texts: Iterable[tuple[str, str]]) -> list[str]:
    """Describe each ``(where, text)`` that holds a secret value, naming the secret's label.

    The description shows the text with the value masked, never the value.

    :raises ValueError: if a secret is shorter than :data:`MIN_SECRET_LENGTH`.
    """
    for label, value in secrets.items():
        if len(value) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"secret {label!r} is shorter than {MIN_SECRET_LENGTH} characters: too short to "
                "search logs for; use a realistic value in tests"
            )
    found = []
    for where, text in texts:
        leaked = [label for label, value in secrets.items() if value in text]
        if leaked:
            masked = text
            for label, value in secrets.items():
                masked = masked.replace(value, f"<{label}>")
            found.append(f"{', '.join(leaked)} in {where}: {masked[:300]!r}")
    return found
