"""The handle on a running sandbox that a provider's ``open_sandbox`` hook hands over."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import attrs

from payments_core.testing.sandbox.faults import Faults

__all__ = ["Payable", "RunningSandbox"]


class Payable(Protocol):
    """A sandbox whose orders a payer can pay (which makes it send the callback)."""

    def pay(self, provider_order_id: str, /) -> object:
        """Pay the order as its payer would."""


SandboxT = TypeVar("SandboxT", bound=Payable)


@attrs.define
class RunningSandbox(Generic[SandboxT]):
    """A sandbox served on loopback, as :class:`payments_core.ProviderSandbox` describes it.

    Attributes:
        base_url: Where it listens.
        settings: Provider settings pointing at it (base URL, credentials).
        sandbox: The sandbox itself (its orders, its deliveries), for tests.
        faults: Its fault decisions, when it injects faults.
        checkout_path: The path of an order's checkout page, from the provider's order id
            (default ``/checkout/{id}``).
        forward: Where callbacks go when they are forwarded (a provider whose webhooks go to
            the account's endpoint); ``None``: each order's callback goes to its own URL.
    """

    base_url: str
    settings: dict[str, str] = attrs.field(repr=False)
    sandbox: SandboxT
    faults: Faults | None = None
    checkout_path: Callable[[str], str] = attrs.field(default="/checkout/{}".format, repr=False)
    forward: Callable[[str], None] | None = attrs.field(default=None, repr=False)

    def pay(self, provider_order_id: str) -> None:
        """Pay the order as its payer would; the sandbox sends the callback."""
        self.sandbox.pay(provider_order_id)

    def checkout_url(self, provider_order_id: str) -> str:
        """The order's checkout page."""
        return f"{self.base_url}{self.checkout_path(provider_order_id)}"

    def forward_callbacks(self, url: str) -> None:
        """Send callbacks to ``url`` from now on; nothing to do without ``forward``."""
        if self.forward is not None:
            self.forward(url)
