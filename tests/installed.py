"""Helpers for tests that use the providers installed in this environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from payments_core import ProviderSandbox
from payments_core.plugins import PluginHost


@contextmanager
def installed_sandbox(provider: str) -> Iterator[ProviderSandbox]:
    """The sandbox of the installed provider ``provider``, running until the block ends."""
    host = PluginHost()
    host.load_entry_points([provider])
    opened = host.provider(provider).open_sandbox()
    assert opened is not None, f"{provider} offers no sandbox"
    with opened as running:
        yield running
