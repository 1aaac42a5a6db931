"""A sandbox's requests and answers, over ASGI or in process, with the faults acted out.

A provider's sandbox answers a :class:`SandboxRequest` with an :class:`Answer`.
:func:`sandbox_app` serves it as a raw ASGI app, through the faults; :func:`mock_transport`
calls it in process. A sandbox with an ASGI app of its own uses :func:`read_body`,
:func:`send_answer` and :func:`answer_with_fault`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

import attrs
import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from payments_core.testing.sandbox import server
from payments_core.testing.sandbox.faults import FaultKind, FaultRecord, Faults

__all__ = [
    "Answer",
    "Handler",
    "SandboxRequest",
    "answer_with_fault",
    "mock_transport",
    "read_body",
    "sandbox_app",
    "send_answer",
]

#: Bytes of a request body a sandbox keeps; a larger body is cut here and flagged.
BODY_LIMIT: Final = 1024 * 1024


@attrs.frozen
class SandboxRequest:
    """One request to a sandbox: method, path, query string, headers, body bytes."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


@attrs.frozen
class Answer:
    """An HTTP answer of a sandbox: status, body, headers (JSON unless told otherwise)."""

    status_code: int
    body: bytes
    headers: Mapping[str, str] = attrs.field(factory=lambda: {"content-type": "application/json"})


_REFUSED: Final = {FaultKind.RATE_LIMIT, FaultKind.RATE_LIMIT_RETRY_AFTER, FaultKind.SERVER_ERROR}

#: What a sandbox answers a request with.
Handler = Callable[[SandboxRequest], Answer]


async def read_body(receive: Receive, limit: int = BODY_LIMIT) -> tuple[bytes, bool]:
    """The whole request body (kept up to ``limit`` bytes) and whether it was larger."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks), size > limit


async def send_answer(send: Send, answer: Answer, *, dropped: bool = False) -> None:
    """Send ``answer``; ``dropped``: send half of its body, then close the connection."""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    if not dropped:
        await send({"type": "http.response.body", "body": answer.body})
        return
    half = answer.body[: len(answer.body) // 2]
    await send({"type": "http.response.body", "body": half, "more_body": True})
    await server.close()


async def answer_with_fault(
    send: Send,
    fault: FaultRecord | None,
    faults: Faults,
    refusal: Callable[[FaultRecord], Answer],
    work: Callable[[], Awaitable[Answer]],
) -> None:
    """Answer a request through its ``fault``: ``work`` does the request, when it is done.

    A 429 or 5xx is ``refusal(fault)`` (the provider's error page; ``Retry-After`` is added
    here) and the work is not done; a reset or a timeout that is not then processed ends the
    connection without it; a dropped answer is sent in part after the work was done.
    """
    kind = fault.kind if fault is not None else None
    profile = faults.profile
    if fault is not None and kind in _REFUSED:
        answer = refusal(fault)
        if kind is FaultKind.RATE_LIMIT_RETRY_AFTER:
            retry_after = {"retry-after": str(profile.retry_after_s)}
            answer = attrs.evolve(answer, headers={**answer.headers, **retry_after})
        await send_answer(send, answer)
        return
    if kind is FaultKind.RESET:
        await server.reset()
        return
    if kind is FaultKind.TIMEOUT:
        completed = await server.stall(profile.timeout_delay_s)
        if not (completed and profile.timeout_then_process):
            await server.close()
            return
    await send_answer(send, await work(), dropped=kind is FaultKind.DROP_RESPONSE)


def _request(scope: Scope, body: bytes) -> SandboxRequest:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    query = scope["query_string"].decode("latin-1")
    return SandboxRequest(scope["method"], scope["path"], query, headers, body)


def sandbox_app(
    api: Handler,
    *,
    pages: Mapping[str, Handler] | None = None,
    faults: Faults | None = None,
    refusal: Callable[[FaultRecord], Answer] | None = None,
) -> ASGIApp:
    """A raw ASGI app over a sandbox; handlers run in worker threads.

    :param api: Answers every request no page takes, each through the faults.
    :param pages: Handlers by path prefix (a checkout page, say), never faulted.
    :param faults: The fault decisions; none when ``None``.
    :param refusal: The provider's 429 or 5xx answer for a fault; required with ``faults``.
    """
    if faults is not None and refusal is None:
        raise ValueError("a sandbox that injects faults needs a refusal for them")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan: nothing to start or stop
        path: str = scope["path"]
        page = next((h for prefix, h in (pages or {}).items() if path.startswith(prefix)), None)
        fault = faults.for_request(path) if faults is not None and page is None else None
        request = _request(scope, (await read_body(receive))[0])
        handler = page or api

        async def work() -> Answer:
            return await asyncio.to_thread(handler, request)

        if faults is None or refusal is None:
            await send_answer(send, await work())
        else:
            await answer_with_fault(send, fault, faults, refusal, work)

    return app


def mock_transport(api: Handler) -> httpx.MockTransport:
    """An ``httpx`` transport, blocking and asynchronous, that calls ``api`` in process."""

    def handler(request: httpx.Request) -> httpx.Response:
        answer = api(
            SandboxRequest(
                request.method,
                request.url.path,
                request.url.query.decode("ascii"),
                request.headers,
                request.read(),
            )
        )
        return httpx.Response(answer.status_code, headers=dict(answer.headers), content=answer.body)

    return httpx.MockTransport(handler)
