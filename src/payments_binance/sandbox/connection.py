"""Breaking a client connection from inside the ASGI app, for the network faults.

ASGI gives an app no handle on the socket, so :mod:`payments_binance.sandbox.server` runs uvicorn
with a protocol that publishes each connection's transport in :data:`CURRENT_TRANSPORT` for the
request task. With it, :func:`reset` sends a TCP RST and :func:`close` ends the connection
mid-response. Without it (``httpx.ASGITransport``, another server) both raise an exception in the
app instead: :class:`ConnectionResetError` and :class:`ResponseDropped`.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import struct

CURRENT_TRANSPORT: contextvars.ContextVar[asyncio.Transport | None] = contextvars.ContextVar(
    "payments_binance_sandbox_transport", default=None
)


class ResponseDropped(Exception):
    """The sandbox dropped the connection after starting the response (a fault, on purpose)."""


async def reset() -> None:
    """Abort the current connection with a TCP RST (SO_LINGER 0) before any response."""
    transport = CURRENT_TRANSPORT.get()
    if transport is None:
        raise ConnectionResetError("sandbox fault: connection reset")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await asyncio.sleep(0)  # lets connection_lost run, so the server knows the client is gone


async def close() -> None:
    """Close the current connection after what was already written (a truncated response)."""
    transport = CURRENT_TRANSPORT.get()
    if transport is None:
        raise ResponseDropped("sandbox fault: response dropped after the order was stored")
    transport.close()
    await asyncio.sleep(0)  # lets connection_lost run, so the server knows the client is gone
