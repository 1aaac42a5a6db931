"""The sandbox's ASGI app: merchant API endpoints, payer pages and control endpoints.

Merchant requests go through one pipeline, in this order: the seeded fault decision (made on
arrival, before any ``await``, so it depends only on arrival order), the body read, method and
content-type (the SYS envelope), body size (400104), the signature check, the JSON parse and the
operation. The answer is the Binance envelope with the configured HTTP status; a fault replaces
or breaks it. Unknown paths outside ``/sandbox`` get the CDN's HTML 403 page, as Binance's do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from payments_binance import protocol
from payments_binance.sandbox import checkout, envelope, links, validation
from payments_binance.sandbox.envelope import ApiError
from payments_binance.sandbox.merchant import PATH_REFUND, PATH_REFUND_QUERY
from payments_binance.sandbox.state import (
    Order,
    OrderNotFound,
    OrderNotPayable,
    Refund,
    RefundNotFound,
)
from payments_binance.sandbox.webhooks import attempt_json, refund_answer
from payments_core.testing.sandbox import (
    Answer,
    FaultKind,
    FaultRecord,
    answer_with_fault,
    read_body,
    send_answer,
)

if TYPE_CHECKING:
    from payments_binance.sandbox.sandbox import Sandbox

Operation = Callable[[str, Mapping[str, Any], str], object]

_CDN_403 = (
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">\n'
    "<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY>\n"
    "<H1>403 ERROR</H1>\n<H2>The request could not be satisfied.</H2>\n</BODY></HTML>\n"
)
_GATEWAY_PAGE = "<html><body><h1>{status} Server Error</h1></body></html>\n"


def base_url_of(sandbox: Sandbox, scope: Scope) -> str:
    """The configured public base URL, else the one the request arrived at."""
    if sandbox.base_url is not None:
        return sandbox.base_url.rstrip("/")
    return str(Request(scope).base_url).rstrip("/")


def _refusal(fault: FaultRecord) -> Answer:
    """Binance's front end refusing a request: a plain 429, the 500 envelope, a gateway page."""
    if fault.kind is not FaultKind.SERVER_ERROR:
        return Answer(429, b"Too Many Requests", {"content-type": "text/plain"})
    status = fault.status or 500
    if status == 500:
        return Answer(500, envelope.failure(ApiError("400000", "unknown error, retry later")))
    page = _GATEWAY_PAGE.format(status=status).encode()
    return Answer(status, page, {"content-type": "text/html"})


class MerchantEndpoint:
    """Raw ASGI endpoint for one merchant API path (all methods, so a wrong one gets SYS)."""

    def __init__(self, sandbox: Sandbox, operation: Operation) -> None:
        self.sandbox = sandbox
        self.operation = operation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox = self.sandbox
        sandbox.counters.request(scope["path"])
        faults = sandbox.faults
        fault = faults.for_request(scope["path"]) if faults is not None else None
        body, too_large = await read_body(receive, sandbox.config.max_body_bytes)

        async def work() -> Answer:
            return Answer(*self._answer(scope, body, too_large))

        if faults is None:
            await send_answer(send, await work())
        else:
            await answer_with_fault(send, fault, faults, _refusal, work)

    def _answer(self, scope: Scope, body: bytes, too_large: bool) -> tuple[int, bytes]:
        """(HTTP status, envelope bytes) for a request that reached the sandbox intact."""
        headers = Headers(scope=scope)
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        is_certificates = scope["path"] in (
            protocol.PATH_CERTIFICATES,
            self.sandbox.config.new_certificates_path,
        )
        if scope["method"] != "POST" or content_type != "application/json":
            return 400, envelope.system_error()
        if not body and not too_large and not is_certificates:
            return 400, envelope.system_error()
        config = self.sandbox.config
        try:
            if too_large:
                raise ApiError("400104", f"request body exceeds {config.max_body_bytes} bytes")
            api_key = self.sandbox.authenticator.authenticate(headers, body)
            parsed = validation.parse_body(body) if body or not is_certificates else {}
            data = self.operation(api_key, parsed, base_url_of(self.sandbox, scope))
        except ApiError as error:
            self.sandbox.counters.error(error.code)
            status = envelope.http_status(
                error.code, config.error_http_status, config.error_http_status_all
            )
            return status, envelope.failure(error)
        return 200, envelope.success(data)


def _merchant_endpoints(sandbox: Sandbox) -> dict[str, MerchantEndpoint]:
    api = sandbox.merchant
    operations: dict[str, Operation] = {
        protocol.PATH_CREATE_ORDER_V3: lambda key, body, base: api.create_order(
            key, body, api_version="v3", base_url=base
        ),
        protocol.PATH_CREATE_ORDER_V2: lambda key, body, base: api.create_order(
            key, body, api_version="v2", base_url=base
        ),
        protocol.PATH_QUERY_ORDER: lambda key, body, _: api.query_order(key, body),
        protocol.PATH_CLOSE_ORDER: lambda key, body, _: api.close_order(key, body),
        PATH_REFUND: lambda key, body, _: api.refund(key, body),
        PATH_REFUND_QUERY: lambda key, body, _: api.query_refund(key, body),
        protocol.PATH_CERTIFICATES: lambda _key, _body, _base: api.certificates(),
        sandbox.config.new_certificates_path: lambda _key, _body, _base: api.new_certificates(),
    }
    return {path: MerchantEndpoint(sandbox, op) for path, op in operations.items()}


def _payer_routes(sandbox: Sandbox) -> list[Route]:
    def order_by_token(token: str) -> Order:
        sandbox.expire_due()
        return sandbox.book.by_token(token)

    async def checkout_page(request: Request) -> Response:
        try:
            order = order_by_token(request.path_params["token"])
        except OrderNotFound:
            return HTMLResponse(checkout.render_unknown(), status_code=404)
        sandbox.book.mark_viewed(order)
        return HTMLResponse(checkout.render(order, base_url_of(sandbox, request.scope)))

    async def qr_image(request: Request) -> Response:
        try:
            order = order_by_token(request.path_params["token"])
        except OrderNotFound:
            return Response(status_code=404)
        content = links.checkout_url(base_url_of(sandbox, request.scope), order)
        return Response(checkout.qr_svg_document(content), media_type="image/svg+xml")

    async def secpay(request: Request) -> Response:
        try:
            order = order_by_token(request.query_params.get("linkToken", ""))
        except OrderNotFound:
            return HTMLResponse(checkout.render_unknown(), status_code=404)
        return RedirectResponse(links.checkout_url(base_url_of(sandbox, request.scope), order))

    def payer_action(action: Callable[[str], Order]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            prepay_id = request.path_params["prepay_id"]
            try:
                order = action(prepay_id)
            except OrderNotFound:
                return JSONResponse({"error": f"no order {prepay_id}"}, status_code=404)
            except OrderNotPayable as exc:
                return JSONResponse({"error": str(exc)}, status_code=409)
            if request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                # A browser pressed the button: show the page again, now in its final state.
                url = links.checkout_url(base_url_of(sandbox, request.scope), order)
                return RedirectResponse(url, status_code=303)
            return JSONResponse({"prepayId": order.prepay_id, "status": order.status.value})

        return endpoint

    async def settle_refund(request: Request) -> Response:
        refund_request_id = request.path_params["refund_request_id"]
        succeeded = request.query_params.get("outcome", "success") != "fail"
        try:
            refund = sandbox.settle_refund(refund_request_id, succeeded=succeeded)
        except RefundNotFound:
            return JSONResponse({"error": f"no refund {refund_request_id}"}, status_code=404)
        return JSONResponse(refund_json(refund))

    async def webhook_log(_: Request) -> Response:
        return JSONResponse([attempt_json(attempt) for attempt in sandbox.webhook_log])

    async def stats(_: Request) -> Response:
        return JSONResponse(sandbox.stats())

    async def refunds(_: Request) -> Response:
        return JSONResponse([refund_json(refund) for refund in sandbox.refunds])

    return [
        Route("/sandbox/checkout/{token}", checkout_page),
        Route("/sandbox/qr/{token}.svg", qr_image),
        Route("/sandbox/secpay", secpay),
        Route("/sandbox/orders/{prepay_id}/pay", payer_action(sandbox.pay), methods=["POST"]),
        Route("/sandbox/orders/{prepay_id}/cancel", payer_action(sandbox.cancel), methods=["POST"]),
        Route("/sandbox/refunds/{refund_request_id}/settle", settle_refund, methods=["POST"]),
        Route("/sandbox/webhooks", webhook_log),
        Route("/sandbox/stats", stats),
        Route("/sandbox/refunds", refunds),
    ]


def refund_json(refund: Refund) -> dict[str, object]:
    """A refund as listed at ``/sandbox/refunds``."""
    return {
        **refund_answer(refund, duplicate=False),
        "refundStatus": refund.status.value,
        "requestedAmount": format(refund.requested_amount, "f"),
        "merchantKey": refund.merchant_key,
        "createTime": refund.create_time,
        "settleTime": refund.settle_time,
    }


async def _not_found(request: Request) -> Response:
    if request.url.path.startswith("/sandbox/"):
        return JSONResponse({"error": "not found"}, status_code=404)
    return HTMLResponse(_CDN_403, status_code=403)


class SandboxApp:
    """The sandbox's ASGI app: merchant paths go straight to their endpoint (no routing
    layers on the hot path), everything else (payer pages, control, lifespan) to Starlette.
    """

    def __init__(self, merchant: Mapping[str, MerchantEndpoint], rest: Starlette) -> None:
        self.merchant = merchant
        self.rest = rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.merchant.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is not None:
            await endpoint(scope, receive, send)
        else:
            await self.rest(scope, receive, send)


def build_app(sandbox: Sandbox) -> SandboxApp:
    """The ASGI app of ``sandbox``; its lifespan starts and stops the sandbox."""

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await sandbox.startup()
        try:
            yield
        finally:
            await sandbox.aclose()

    all_methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    routes = [
        *_payer_routes(sandbox),
        Route("/{path:path}", _not_found, methods=all_methods),
    ]
    return SandboxApp(_merchant_endpoints(sandbox), Starlette(routes=routes, lifespan=lifespan))
