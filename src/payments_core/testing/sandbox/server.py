"""A sandbox served on loopback, with a hand on each connection for the network faults.

ASGI gives an app no handle on its socket, so :func:`background_server` serves with a uvicorn
protocol that publishes each connection to the request tasks it starts. With it, inside a
request, :func:`reset` sends a TCP RST, :func:`close` ends the connection after what was
written (a truncated answer), and :func:`stall` holds the request; stopping the server ends
every stall at once. Without it (``httpx.ASGITransport``, another server) ``reset`` raises
:class:`ConnectionResetError`, ``close`` raises :class:`ResponseDropped`, ``stall`` sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import socket
import struct
from collections.abc import Iterator
from typing import Any, Final

from uvicorn.protocols.http.h11_impl import H11Protocol

from payments_core.serving import BackgroundServer

__all__ = [
    "SERVER_OPTIONS",
    "ResponseDropped",
    "background_server",
    "close",
    "reset",
    "stall",
]


class ResponseDropped(ConnectionAbortedError):
    """The sandbox dropped the connection after starting the answer (a fault, on purpose)."""


class _Connection:
    """One client connection: its transport, and the stalls that end when the server stops."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.closing = False
        self.stalls: set[asyncio.Future[None]] = set()

    def end_stalls(self) -> None:
        self.closing = True
        for ended in self.stalls:
            if not ended.done():
                ended.set_result(None)


_CURRENT: contextvars.ContextVar[_Connection | None] = contextvars.ContextVar(
    "payments_sandbox_connection", default=None
)


@contextlib.contextmanager
def _exposing(connection: _Connection) -> Iterator[None]:
    # A request task copies this context when the protocol creates it inside the block.
    token = _CURRENT.set(connection)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def _connection_aware(protocol: type[Any]) -> type[asyncio.Protocol]:
    class ConnectionAware(protocol):  # type: ignore[misc]
        """The uvicorn protocol, exposing its connection to the request tasks it starts."""

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self.sandbox_connection = _Connection(transport)

        def data_received(self, data: bytes) -> None:
            with _exposing(self.sandbox_connection):
                super().data_received(data)

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            # httptools: a pipelined request starts later, from the previous answer's end.
            with _exposing(self.sandbox_connection):
                super()._start_asgi_task(cycle, app)

        def shutdown(self) -> None:
            self.sandbox_connection.end_stalls()
            super().shutdown()

    return ConnectionAware


def _http_protocol() -> type[asyncio.Protocol]:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return _connection_aware(H11Protocol)
    return _connection_aware(HttpToolsProtocol)


#: uvicorn options a sandbox is served with. httptools (when installed) parses a request in C,
#: several times faster than h11. An idle connection stays open 75 s, as common front ends
#: keep it: uvicorn's 5 s raced clients reusing a connection at the moment it closed.
SERVER_OPTIONS: Final[dict[str, Any]] = {
    "http": _http_protocol(),
    "timeout_keep_alive": 75,
    "timeout_graceful_shutdown": 5,
}


def background_server(
    app: Any, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> BackgroundServer:
    """A :class:`~payments_core.serving.BackgroundServer` for a sandbox's ASGI ``app``.

    ``options`` (``sock``, ``name``, ``lifespan``, ...) override :data:`SERVER_OPTIONS`.
    """
    return BackgroundServer(app, host, port, **{"name": "sandbox", **SERVER_OPTIONS, **options})


async def reset() -> None:
    """Abort the current connection with a TCP RST (``SO_LINGER`` 0) before any answer."""
    connection = _CURRENT.get()
    if connection is None:
        raise ConnectionResetError("sandbox fault: connection reset")
    sock = connection.transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.transport.abort()
    await asyncio.sleep(0)  # lets connection_lost run, so the server knows the client is gone


async def close() -> None:
    """Close the current connection after what was already written (a truncated answer)."""
    connection = _CURRENT.get()
    if connection is None:
        raise ResponseDropped("sandbox fault: the answer was dropped after the work was done")
    connection.transport.close()
    await asyncio.sleep(0)  # lets connection_lost run, so the server knows the client is gone


async def stall(seconds: float) -> bool:
    """Hold the current request ``seconds``; ``False`` if the server began stopping first."""
    connection = _CURRENT.get()
    if connection is None:
        await asyncio.sleep(seconds)
        return True
    if connection.closing:
        return False
    ended = asyncio.get_running_loop().create_future()
    connection.stalls.add(ended)
    try:
        await asyncio.wait_for(ended, seconds)
    except TimeoutError:
        return True
    finally:
        connection.stalls.discard(ended)
    return False
