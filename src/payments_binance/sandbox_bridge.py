"""The provider's side of ``open_sandbox`` and ``payments sandbox``.

The sandbox (:mod:`payments_binance.sandbox`) is imported only when one is opened, so loading the
provider does not pay for starlette and uvicorn. Each sandbox gets fresh random credentials, which
``settings`` hands to the provider that should talk to it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from payments_core import ProviderSandbox

if TYPE_CHECKING:
    import click

__all__ = ["open_sandbox", "register_commands"]


@contextmanager
def open_sandbox() -> Iterator[ProviderSandbox]:
    """Start a sandbox with webhook delivery on a free loopback port; stop it on exit."""
    from payments_binance.sandbox import Sandbox, SandboxConfig, SandboxServer, links
    from payments_core.testing.sandbox import RunningSandbox

    api_key = f"sandbox-{secrets.token_hex(8)}"
    api_secret = secrets.token_urlsafe(48)
    # A fresh seed gives each sandbox its own order ids, as a real account never repeats one.
    config = SandboxConfig(
        api_key=api_key,
        api_secret=api_secret,
        deliver_webhooks=True,
        seed=secrets.randbelow(2**31),
    )
    sandbox = Sandbox(config)
    with SandboxServer(sandbox, host="127.0.0.1", port=0) as server:
        settings = {"base_url": server.base_url, "api_key": api_key, "api_secret": api_secret}
        yield RunningSandbox(
            server.base_url,
            settings,
            sandbox,
            sandbox.faults,
            checkout_path=lambda prepay_id: links.checkout_path(sandbox.orders[prepay_id]),
        )


def register_commands(cli: click.Group) -> None:
    """Add ``payments sandbox`` to ``cli`` (the command imports the sandbox only when run)."""
    from payments_binance.sandbox import sandbox_command

    if sandbox_command.name not in cli.commands:
        cli.add_command(sandbox_command)
