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

import attrs

from payments_core import ProviderSandbox

if TYPE_CHECKING:
    import click

    from payments_binance.sandbox import Sandbox

__all__ = ["RunningSandbox", "open_sandbox", "register_commands"]


@attrs.define
class RunningSandbox:
    """A sandbox serving on loopback, as :class:`payments_core.ProviderSandbox` describes it.

    Attributes:
        sandbox: The simulator itself (orders, webhook log, key rotation) for tests.
        base_url: Where its Merchant API listens.
        settings: Provider settings pointing at it: ``base_url``, ``api_key``, ``api_secret``.
    """

    sandbox: Sandbox
    base_url: str
    settings: dict[str, str] = attrs.field(repr=False)

    def pay(self, provider_order_id: str) -> None:
        """Pay the order as its payer; the sandbox then sends the ``PAY_SUCCESS`` callback."""
        self.sandbox.pay(provider_order_id)

    def cancel(self, provider_order_id: str) -> None:
        """Cancel the open order as its payer; the sandbox then sends ``PAY_CLOSED``."""
        self.sandbox.cancel(provider_order_id)

    def settle_refunds(self, provider_order_id: str) -> None:
        """Settle the order's pending refunds; the sandbox then sends ``REFUND_SUCCESS``."""
        for refund in self.sandbox.refunds:
            if refund.prepay_id == provider_order_id:
                self.sandbox.settle_refund(
                    refund.refund_request_id, merchant_key=refund.merchant_key
                )

    def checkout_url(self, provider_order_id: str) -> str:
        """The sandbox's checkout page for the order.

        :raises OrderNotFound: if the sandbox holds no order with that prepay id.
        """
        from payments_binance.sandbox import links

        return links.checkout_url(self.base_url, self.sandbox.orders[provider_order_id])

    def forward_callbacks(self, url: str) -> None:
        """Nothing to do: Binance Pay posts each order's callback to its own ``webhookUrl``."""
        del url


@contextmanager
def open_sandbox() -> Iterator[ProviderSandbox]:
    """Start a sandbox with webhook delivery on a free loopback port; stop it on exit."""
    from payments_binance.sandbox import Sandbox, SandboxConfig, SandboxServer

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
        yield RunningSandbox(sandbox, server.base_url, settings)


def register_commands(cli: click.Group) -> None:
    """Add ``payments sandbox`` to ``cli`` (the command imports the sandbox only when run)."""
    from payments_binance.sandbox import sandbox_command

    if sandbox_command.name not in cli.commands:
        cli.add_command(sandbox_command)
