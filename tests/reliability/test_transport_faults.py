"""Each network fault, over real loopback, ends as the same typed error with either async backend.

The sandbox acts each fault out on the socket (a TCP reset, a response cut in half, an answer
held past the client's read timeout); both senders must map it into the core's error tree so
that the retry policy and recover-by-query see the same thing whichever backend runs.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable

import aiohttp
import httpx
import pytest

from payments_binance import protocol
from payments_binance.sandbox import FaultProfile
from payments_core import (
    ConfigurationError,
    ConnectError,
    HttpRequest,
    HttpResponse,
    Payments,
    RequestTimeout,
    ResponseLost,
    TransportError,
)
from payments_core import transport as transport_module
from payments_core.config import HttpSettings
from payments_core.transport import (
    AiohttpAsyncSender,
    HttpxAsyncSender,
    async_sender,
    resolve_async_backend,
)

from .conftest import Harness

BACKENDS = ["httpx", "aiohttp"]
SETTINGS = HttpSettings(read_timeout=0.2, connect_timeout=2.0)


def create_request(base_url: str) -> HttpRequest:
    return HttpRequest(
        "POST",
        base_url + protocol.PATH_CREATE_ORDER_V3,
        {"content-type": "application/json"},
        b'{"merchantTradeNo":"T1"}',
        operation="create_order",
    )


def send_once(backend: str, request: HttpRequest) -> HttpResponse:
    async def run() -> HttpResponse:
        sender = async_sender(backend, SETTINGS)
        try:
            return await sender.send(request, "binance")
        finally:
            await sender.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("fault", "expected"),
    [("reset", ResponseLost), ("drop_response", ResponseLost), ("timeout", RequestTimeout)],
)
def test_network_fault_becomes_typed_error(
    start_sandbox: Callable[..., Harness],
    backend: str,
    fault: str,
    expected: type[TransportError],
) -> None:
    harness = start_sandbox(faults=FaultProfile(timeout_delay_s=2.0, **{fault: 1.0}))
    with pytest.raises(TransportError) as caught:
        send_once(backend, create_request(harness.base_url))
    error = caught.value
    assert type(error) is expected
    assert error.request_sent  # outcome unknown: the facade must recover by query
    assert error.provider == "binance"
    assert error.operation == "create_order"
    assert isinstance(error.__cause__, httpx.HTTPError | aiohttp.ClientError | TimeoutError)


@pytest.mark.parametrize("backend", BACKENDS)
def test_refused_connection_is_connect_error(backend: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more.
    with pytest.raises(ConnectError) as caught:
        send_once(backend, create_request(f"http://127.0.0.1:{port}"))
    assert not caught.value.request_sent


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("fault", "status", "retry_after"),
    [("rate_limit_retry_after", 429, "1"), ("rate_limit", 429, None)],
)
def test_error_answers_come_back_as_responses(
    start_sandbox: Callable[..., Harness],
    backend: str,
    fault: str,
    status: int,
    retry_after: str | None,
) -> None:
    harness = start_sandbox(faults=FaultProfile(**{fault: 1.0}))
    response = send_once(backend, create_request(harness.base_url))
    assert response.status_code == status
    assert response.headers.get("retry-after") == retry_after
    assert response.content == b"Too Many Requests"


@pytest.mark.parametrize("backend", BACKENDS)
def test_server_error_body_arrives_intact(
    start_sandbox: Callable[..., Harness], backend: str
) -> None:
    harness = start_sandbox(faults=FaultProfile(server_error=1.0, server_error_statuses=(500,)))
    response = send_once(backend, create_request(harness.base_url))
    assert response.status_code == 500
    assert b'"code":"400000"' in response.content.replace(b" ", b"")


def test_async_backend_names_resolve_and_impossible_choices_are_refused() -> None:
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    assert resolve_async_backend("auto") == "aiohttp"  # installed in the dev environment
    assert resolve_async_backend("auto", transport=mock) == "httpx"
    assert resolve_async_backend("httpx") == "httpx"
    with pytest.raises(ConfigurationError, match="one of"):
        resolve_async_backend("curl")
    with pytest.raises(ConfigurationError, match="httpx transport"):
        resolve_async_backend("aiohttp", transport=mock)
    with pytest.raises(ConfigurationError, match="one of"):
        Payments(load_entry_points=False, async_http="requests")


def test_missing_aiohttp_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_module, "_aiohttp_installed", lambda: False)
    assert resolve_async_backend("auto") == "httpx"
    with pytest.raises(ConfigurationError, match=r"pip install 'payments-core\[aiohttp\]'"):
        resolve_async_backend("aiohttp")
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # import aiohttp now fails
    with pytest.raises(ConfigurationError, match="aiohttp"):
        AiohttpAsyncSender(SETTINGS)


def test_auto_picks_aiohttp_and_an_injected_transport_keeps_httpx() -> None:
    assert isinstance(async_sender("auto", SETTINGS), AiohttpAsyncSender)
    mock = httpx.MockTransport(lambda request: httpx.Response(200))

    async def run() -> None:
        sender = async_sender("auto", SETTINGS, transport=mock)
        assert isinstance(sender, HttpxAsyncSender)
        await sender.aclose()

    asyncio.run(run())
