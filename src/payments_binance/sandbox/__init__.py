"""A faithful local simulator of the Binance Pay Merchant API (see docs/sandbox.md).

It checks what arrives as Binance would (HMAC over the raw bytes, nonce, timestamp window, every
field rule with its error code), keeps orders, refunds and their state machine (in memory, or in
a SQLite/PostgreSQL state shared by several worker processes), serves a checkout page, signs and
delivers payment and refund webhooks with its own RSA key, and injects faults, all on the sandbox
toolkit (:mod:`payments_core.testing.sandbox`). It shares no code with the client side except
the wire facts in :mod:`payments_binance.protocol`.

Names are imported lazily, so ``from payments_binance.sandbox import sandbox_command`` (what a
CLI mounts) does not pay for starlette, uvicorn, httpx and cryptography.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from payments_core._lazy import lazy_names

if TYPE_CHECKING:
    from payments_binance.sandbox.cli import sandbox_command
    from payments_binance.sandbox.config import SandboxConfig
    from payments_binance.sandbox.sandbox import Sandbox
    from payments_binance.sandbox.server import SandboxProcess, SandboxServer
    from payments_binance.sandbox.state import (
        Order,
        OrderNotFound,
        OrderNotPayable,
        Refund,
        RefundNotFound,
        RefundStatus,
    )
    from payments_core.testing.sandbox import FaultKind, FaultProfile

__all__ = [
    "FaultKind",
    "FaultProfile",
    "Order",
    "OrderNotFound",
    "OrderNotPayable",
    "Refund",
    "RefundNotFound",
    "RefundStatus",
    "Sandbox",
    "SandboxConfig",
    "SandboxProcess",
    "SandboxServer",
    "sandbox_command",
]

_HOMES = {
    "sandbox_command": "cli",
    "SandboxConfig": "config",
    "FaultKind": "payments_core.testing.sandbox",
    "FaultProfile": "payments_core.testing.sandbox",
    "Sandbox": "sandbox",
    "SandboxProcess": "server",
    "SandboxServer": "server",
    "Order": "state",
    "OrderNotFound": "state",
    "OrderNotPayable": "state",
    "Refund": "state",
    "RefundNotFound": "state",
    "RefundStatus": "state",
}


__getattr__ = lazy_names(globals(), _HOMES)
