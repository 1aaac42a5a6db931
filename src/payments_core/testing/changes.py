"""The application's side in a test: every status change announced to it.

Register a :class:`ChangeRecorder` as a plugin (``Payments(plugins=(recorder,))``) and read
``recorder.changes`` after the callback or the reconciliation that should have announced them.
"""

from __future__ import annotations

import threading

from payments_core.hookspecs import hookimpl
from payments_core.models import StatusChange

__all__ = ["ChangeRecorder"]


class ChangeRecorder:
    """An application plugin that records every ``payment_status_changed`` call, in order.

    The callback app calls hooks from worker threads; recording is thread-safe.

    Attributes:
        changes: The changes announced so far, oldest first.
    """

    def __init__(self) -> None:
        self.changes: list[StatusChange] = []
        self._lock = threading.Lock()

    @hookimpl
    def payment_status_changed(self, change: StatusChange) -> None:
        """Record ``change``."""
        with self._lock:
            self.changes.append(change)

    def steps(self, reference: str) -> list[tuple[str, str]]:
        """The ``(old, new)`` statuses announced for ``reference``, oldest first."""
        with self._lock:
            return [(c.old_status, c.new_status) for c in self.changes if c.reference == reference]
