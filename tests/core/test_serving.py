"""payments_core.serving: a loopback server that starts, serves, stops, and says why it failed."""

from __future__ import annotations

import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from payments_core.serving import BackgroundServer, bind


async def hello(request: object) -> PlainTextResponse:
    del request
    return PlainTextResponse("hello")


APP = Starlette(routes=[Route("/", hello)])


def test_it_serves_on_a_free_loopback_port_until_stopped() -> None:
    with BackgroundServer(APP) as server, httpx.Client(trust_env=False) as client:
        assert server.url.startswith("http://127.0.0.1:")
        assert client.get(server.url).text == "hello"
    with pytest.raises(httpx.ConnectError):  # stopped: the port no longer answers
        httpx.get(server.url, trust_env=False)


def test_bind_asks_for_tcp_so_accepted_sockets_get_nodelay() -> None:
    with bind() as sock:
        assert sock.proto == socket.IPPROTO_TCP


def test_a_server_that_cannot_start_says_why_at_once() -> None:
    server = BackgroundServer(APP, ssl_certfile="/nonexistent/cert.pem")
    with pytest.raises(RuntimeError, match="did not start") as caught:
        server.start()
    assert isinstance(caught.value.__cause__, FileNotFoundError)
