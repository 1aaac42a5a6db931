"""The application the crash tests run under ``payments serve --plugin tests.ledger.crash_app``.

It does what the docs ask of an application that cannot afford to miss or repeat a payment:
it records each change's effect durably (a line appended to ``effects.log`` and synced), keyed
by the change's stable ``event_id``, and ignores a change whose effect it already recorded.
Every call of the hook is also appended to ``calls.log``, so a test can count how often a
change reached the hook (at least once; more when a kill fell between the hook and its mark).
The folder is ``$PAYMENTS_CRASH_APP_DIR``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from payments_core import StatusChange, hookimpl


def _append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())  # one write of one short line: never torn by a kill
        os.fsync(fd)
    finally:
        os.close(fd)


class Effects:
    """Confirms each booking once, whatever the number of announcements."""

    def __init__(self) -> None:
        self.folder = Path(os.environ["PAYMENTS_CRASH_APP_DIR"])
        self.effects = self.folder / "effects.log"
        self.calls = self.folder / "calls.log"
        self._lock = threading.Lock()
        self._seen = set(read_lines(self.effects))

    @hookimpl
    def payment_status_changed(self, change: StatusChange) -> None:
        line = f"{change.event_id} {change.reference} {change.new_status}"
        with self._lock:
            _append(self.calls, line + "\n")
            if change.event_id in self._seen:
                return
            _append(self.effects, line + "\n")
            self._seen.add(change.event_id)


def read_lines(path: Path) -> list[str]:
    """The event ids in a log, one per line (none if the file does not exist)."""
    if not path.exists():
        return []
    return [line.split(" ", 1)[0] for line in path.read_text().splitlines() if line]
