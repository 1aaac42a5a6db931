"""Order and refund notifications (reference sections 6.3, 8 and 14): build, sign, deliver, retry.

A notification body is serialised once; every delivery attempt posts exactly those bytes, signed
afresh (new timestamp and nonce) with the active RSA key. A delivery is acknowledged by HTTP 200
with a JSON body whose ``returnCode`` is ``"SUCCESS"`` (or by any HTTP 200 when the config says
``webhook_ack="http200"``); anything else, including a network error or timeout, is retried after
each delay of the retry schedule and then given up. Deliveries run as tasks on the event loop the
dispatcher is bound to, so they never block request handling; :meth:`WebhookDispatcher.wait_idle`
lets another thread wait for them without sleeping. Notifying before any loop is bound queues the
delivery until :meth:`WebhookDispatcher.bind` is called.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
import httpx

from payments_binance import protocol
from payments_binance.protocol import BizStatus, BizType
from payments_binance.sandbox import jsonwire
from payments_binance.sandbox.certificates import KeyRing
from payments_binance.sandbox.config import SandboxConfig
from payments_binance.sandbox.faults import FaultInjector, FaultKind
from payments_binance.sandbox.state import Order, Refund, RefundStatus

_NONCE_ALPHABET = string.ascii_letters + string.digits
_FEE_QUANTUM = Decimal("0.00000001")
#: The sandbox's own spelling, so a client typo cannot hide behind a shared constant.
REFUND_BIZ_TYPE = "PAY_REFUND"


@attrs.frozen
class WebhookAttempt:
    """One delivery attempt (or one skipped delivery, with ``skipped`` giving the reason)."""

    event_id: int
    prepay_id: str
    biz_status: str
    url: str | None
    body: bytes
    headers: Mapping[str, str]
    attempt: int
    copy: int = 1
    status_code: int | None = None
    ok: bool = False
    error: str | None = None
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The log entry as served at ``/sandbox/webhooks``."""
        return {
            "eventId": self.event_id,
            "prepayId": self.prepay_id,
            "bizStatus": self.biz_status,
            "url": self.url,
            "attempt": self.attempt,
            "copy": self.copy,
            "statusCode": self.status_code,
            "ok": self.ok,
            "error": self.error,
            "skipped": self.skipped,
            "headers": dict(self.headers),
            "body": self.body.decode("utf-8"),
        }


def notification_body(order: Order, biz_status: BizStatus) -> bytes:
    """The exact bytes of a ``PAY`` notification; ``bizId`` is a JSON number above 2^53."""
    request = order.request
    inner: dict[str, object] = {
        "merchantTradeNo": request.merchant_trade_no,
        "productType": request.product_type,
        "productName": request.product_name,
        "transactTime": order.transact_time
        if order.transact_time is not None
        else order.close_time,
        "tradeType": request.terminal_type,
        "totalFee": request.amount.quantize(_FEE_QUANTUM),
        "currency": request.currency,
    }
    if order.transaction_id is not None:
        inner["transactionId"] = order.transaction_id
    if order.open_user_id is not None:
        inner["openUserId"] = order.open_user_id
    if request.pass_through_info is not None:
        inner["passThroughInfo"] = request.pass_through_info
    inner["commission"] = Decimal(0).quantize(_FEE_QUANTUM)
    return jsonwire.dumps(
        {
            "bizType": BizType.PAY.value,
            "bizId": int(order.prepay_id),
            "bizIdStr": order.prepay_id,
            "bizStatus": biz_status.value,
            "data": jsonwire.dumps(inner).decode("utf-8"),
        }
    )


#: ``bizStatus`` of the ``PAY_REFUND`` notification for each final refund status.
REFUND_BIZ_STATUS = {
    RefundStatus.REFUND_SUCCESS: "REFUND_SUCCESS",
    RefundStatus.REFUND_FAIL: "REFUND_REJECTED",
}


def refund_info(refund: Refund, *, duplicate: bool) -> dict[str, object]:
    """RefundResult (reference section 6.1): amounts as strings, as when the refund was made."""
    return {
        "refundRequestId": refund.refund_request_id,
        "prepayId": refund.prepay_id,
        "orderAmount": format(refund.order_amount, "f"),
        "refundedAmount": format(refund.refunded_amount, "f"),
        "refundAmount": format(refund.amount, "f"),
        "remainingAttempts": refund.remaining_attempts,
        "payerOpenId": refund.payer_open_id,
        "duplicateRequest": "Y" if duplicate else "N",
    }


def refund_notification_body(order: Order, refund: Refund, biz_status: str) -> bytes:
    """The exact bytes of a ``PAY_REFUND`` notification (reference section 6.3)."""
    request = order.request
    inner: dict[str, object] = {
        "merchantTradeNo": request.merchant_trade_no,
        "productType": request.product_type,
        "productName": request.product_name,
        "tradeType": request.terminal_type,
        "totalFee": request.amount.quantize(_FEE_QUANTUM),
        "currency": request.currency,
        "openUserId": order.open_user_id,
        "refundInfo": refund_info(refund, duplicate=False),
    }
    return jsonwire.dumps(
        {
            "bizType": REFUND_BIZ_TYPE,
            "bizId": int(order.prepay_id),
            "bizIdStr": order.prepay_id,
            "bizStatus": biz_status,
            "data": jsonwire.dumps(inner).decode("utf-8"),
        }
    )


def signed_headers(keys: KeyRing, body: bytes, now_ms: int) -> dict[str, str]:
    """Fresh timestamp, nonce, certificate serial and RSA signature for ``body``."""
    nonce = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(protocol.NONCE_LENGTH))
    timestamp = str(now_ms)
    key = keys.signing_key
    payload = timestamp.encode("ascii") + b"\n" + nonce.encode("ascii") + b"\n" + body + b"\n"
    return {
        "Content-Type": "application/json",
        protocol.HEADER_TIMESTAMP: timestamp,
        protocol.HEADER_NONCE: nonce,
        protocol.HEADER_CERTIFICATE_SN: key.serial,
        protocol.HEADER_SIGNATURE: key.sign(payload),
    }


@attrs.define
class _Delivery:
    event_id: int
    prepay_id: str
    biz_status: str
    url: str
    body: bytes
    copy: int
    hold: bool


@attrs.define
class WebhookDispatcher:
    """Sends notifications on a bound event loop and keeps the delivery log and counters."""

    config: SandboxConfig
    keys: KeyRing
    clock: Callable[[], int]
    injector: FaultInjector | None = None
    log: list[WebhookAttempt] = attrs.field(factory=list)
    events: int = 0
    delivered: int = 0
    attempts: int = 0
    failed: int = 0
    skipped: int = 0
    _pending: int = attrs.field(init=False, default=0)
    _idle: threading.Condition = attrs.field(init=False, factory=threading.Condition)
    _queued: list[_Delivery] = attrs.field(init=False, factory=list)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(init=False, default=None)
    _client: httpx.AsyncClient | None = attrs.field(init=False, default=None)
    _tasks: set[asyncio.Task[None]] = attrs.field(init=False, factory=set)
    _first_attempts: int = attrs.field(init=False, default=0)
    _overtaken: asyncio.Condition | None = attrs.field(init=False, default=None)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run deliveries on ``loop`` from now on (call it from that loop); start queued ones."""
        self._loop = loop
        self._overtaken = asyncio.Condition()
        queued, self._queued = self._queued, []
        for delivery in queued:
            self._start(delivery)

    async def aclose(self) -> None:
        """Cancel deliveries still running, close the HTTP client and unbind the loop."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._loop = None

    def notify(self, order: Order, biz_status: BizStatus) -> None:
        """Build, sign and schedule the ``PAY`` notification of ``order``; thread-safe."""
        body = notification_body(order, biz_status)
        self.send(order.prepay_id, biz_status.value, body, order.request.webhook_url)

    def notify_refund(self, order: Order, refund: Refund) -> None:
        """Build, sign and schedule the ``PAY_REFUND`` notification of a settled refund."""
        biz_status = REFUND_BIZ_STATUS[refund.status]
        body = refund_notification_body(order, refund, biz_status)
        self.send(
            order.prepay_id, biz_status, body, refund.webhook_url or order.request.webhook_url
        )

    def send(self, prepay_id: str, biz_status: str, body: bytes, url: str | None) -> None:
        """Sign and deliver one event's ``body`` to ``url`` (else the default URL); thread-safe."""
        url = url or self.config.default_webhook_url
        with self._idle:
            self.events += 1
            event_id = self.events
        if url is not None and self.config.deliver_webhooks:
            faults = self.injector.for_webhook(prepay_id) if self.injector else frozenset()
            copies = 2 if FaultKind.DUPLICATE_WEBHOOK in faults else 1
            with self._idle:
                self._pending += copies
            for copy in range(1, copies + 1):
                # Only the first copy is held back, so a duplicate can also overtake its original.
                hold = copy == 1 and FaultKind.OUT_OF_ORDER_WEBHOOK in faults
                self._schedule(_Delivery(event_id, prepay_id, biz_status, url, body, copy, hold))
            return
        reason = (
            "webhook delivery is switched off"
            if not self.config.deliver_webhooks
            else "order has no webhookUrl and no default_webhook_url is configured"
        )
        with self._idle:
            self.skipped += 1
        headers = signed_headers(self.keys, body, self.clock())
        self.log.append(
            WebhookAttempt(event_id, prepay_id, biz_status, url, body, headers, 0, skipped=reason)
        )

    def _schedule(self, delivery: _Delivery) -> None:
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None and running is not None:
            self.bind(running)
            loop = running
        if loop is None:
            self._queued.append(delivery)
        elif loop is running:
            self._start(delivery)
        else:
            loop.call_soon_threadsafe(self._start, delivery)

    def _start(self, delivery: _Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no delivery is pending or running; False if ``timeout`` passed first."""
        with self._idle:
            if self._pending and self._loop is None:
                raise RuntimeError("webhooks are queued but no event loop runs the sandbox")
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _acknowledged(self, response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        if self.config.webhook_ack == "http200":
            return True
        try:
            reply = jsonwire.loads(response.content)
        except jsonwire.MalformedJSON:
            return False
        return isinstance(reply, dict) and reply.get("returnCode") == "SUCCESS"

    async def _hold_until_overtaken(self, delivery: _Delivery) -> None:
        # Out-of-order fault: let a later delivery make its first attempt before this one.
        if self._overtaken is None:
            return
        seen = self._first_attempts
        hold = self.config.faults.reorder_max_hold_s if self.config.faults else 0.0
        async with self._overtaken:
            try:
                await asyncio.wait_for(
                    self._overtaken.wait_for(lambda: self._first_attempts > seen), hold
                )
            except TimeoutError:
                return

    async def _first_attempt_done(self) -> None:
        self._first_attempts += 1
        if self._overtaken is not None:
            async with self._overtaken:
                self._overtaken.notify_all()

    async def _deliver(self, delivery: _Delivery) -> None:
        try:
            if delivery.hold:
                await self._hold_until_overtaken(delivery)
            if self._client is None:
                self._client = httpx.AsyncClient(
                    timeout=self.config.webhook_timeout_s, trust_env=False
                )
            client = self._client
            schedule = (0.0, *self.config.webhook_retry_schedule)
            for attempt, delay in enumerate(schedule, start=1):
                if delay:
                    await asyncio.sleep(delay)
                if await self._attempt(client, delivery, attempt):
                    with self._idle:
                        self.delivered += 1
                    return
            with self._idle:
                self.failed += 1
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    async def _attempt(self, client: httpx.AsyncClient, delivery: _Delivery, attempt: int) -> bool:
        headers = signed_headers(self.keys, delivery.body, self.clock())
        status_code: int | None = None
        error = None
        ok = False
        try:
            response = await client.post(delivery.url, content=delivery.body, headers=headers)
            status_code = response.status_code
            ok = self._acknowledged(response)
            if not ok:
                error = f"not acknowledged: HTTP {status_code} {response.text[:200]!r}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._idle:
            self.attempts += 1
        self.log.append(
            WebhookAttempt(
                delivery.event_id,
                delivery.prepay_id,
                delivery.biz_status,
                delivery.url,
                delivery.body,
                headers,
                attempt,
                delivery.copy,
                status_code,
                ok,
                error,
            )
        )
        if attempt == 1:
            await self._first_attempt_done()
        return ok
