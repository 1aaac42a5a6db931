"""Order and refund notifications (reference sections 6.3, 8 and 14): build, sign, deliver.

A notification body is serialised once; the toolkit's
:class:`~payments_core.testing.sandbox.WebhookPoster` delivers it on the sandbox's event loop
and retries it on the configured schedule, and every attempt posts exactly those bytes, signed
afresh (new timestamp and nonce) with the active RSA key. A delivery is acknowledged by HTTP 200
with a JSON body whose ``returnCode`` is ``"SUCCESS"`` (or by any HTTP 200 when the config says
``webhook_ack="http200"``).
"""

from __future__ import annotations

import hashlib
import secrets
import string
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

from payments_binance import protocol
from payments_binance.protocol import BizStatus, BizType
from payments_binance.sandbox import jsonwire
from payments_binance.sandbox.certificates import KeyRing
from payments_binance.sandbox.config import SandboxConfig
from payments_binance.sandbox.state import Order, Refund, RefundStatus
from payments_core.testing.sandbox import Delivery, DeliveryAttempt, Faults, WebhookPoster

_NONCE_ALPHABET = string.ascii_letters + string.digits
_FEE_QUANTUM = Decimal("0.00000001")
#: The sandbox's own spelling, so a client typo cannot hide behind a shared constant.
REFUND_BIZ_TYPE = "PAY_REFUND"
HEADER_CERTIFICATE_SN_NEW = "BinancePay-Certificate-SN-New"
HEADER_SIGNATURE_NEW = "BinancePay-Signature-New"


def attempt_json(attempt: DeliveryAttempt) -> dict[str, Any]:
    """A delivery attempt as served at ``/sandbox/webhooks``."""
    delivery = attempt.delivery
    return {
        "eventId": int(delivery.event_id),
        "prepayId": delivery.subject,
        "bizStatus": delivery.type,
        "url": delivery.url,
        "attempt": attempt.attempt,
        "copy": attempt.copy,
        "statusCode": attempt.status_code,
        "ok": attempt.ok,
        "error": attempt.error,
        "skipped": attempt.skipped,
        "headers": dict(attempt.headers),
        "body": delivery.body.decode("utf-8"),
    }


def payment_info(order: Order) -> dict[str, object]:
    """``paymentInfo`` of a paid order: what the payer actually paid, and how (section 16.4).

    The sandbox's payer always pays the order's own asset, at a price of 1.
    """
    request = order.request
    return {
        "payerId": int(order.prepay_id) % 10**9,
        "payMethod": "funding",
        "paymentInstructions": [
            {"currency": request.currency, "amount": request.amount, "price": Decimal(1)}
        ],
        "channel": "DEFAULT",
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
    if order.transaction_id is not None:
        inner["paymentInfo"] = payment_info(order)
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


def refund_id(refund: Refund) -> str:
    """Binance's own id of a refund (``refundId``): stable, derived from the merchant's."""
    digest = hashlib.sha256(f"{refund.merchant_key}\x00{refund.refund_request_id}".encode())
    return str(int.from_bytes(digest.digest()[:8], "big") % 10**18)


def refund_info(refund: Refund, *, duplicate: bool) -> dict[str, object]:
    """A notification's ``refundInfo`` (section 6.3): amounts as strings, as when it was made."""
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


def refund_answer(refund: Refund, *, duplicate: bool) -> dict[str, object]:
    """The refund (and refund query) answer: ``refundInfo`` with Binance's own refund id and
    the commissions (sections 6.1, 16.4). The sandbox charges no fee: both are zero."""
    return {
        **refund_info(refund, duplicate=duplicate),
        "refundId": refund_id(refund),
        "refundCommission": "0",
        "refundedCommission": "0",
    }


def refund_notification_body(
    order: Order, refund: Refund, biz_status: str, *, biz_id_text: bool = True
) -> bytes:
    """The exact bytes of a ``PAY_REFUND`` notification (reference sections 6.3 and 16.2).

    ``bizId`` is text, as the docs type it for refunds, or a JSON number if not ``biz_id_text``.
    """
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
            "bizId": order.prepay_id if biz_id_text else int(order.prepay_id),
            "bizIdStr": order.prepay_id,
            "bizStatus": biz_status,
            "data": jsonwire.dumps(inner).decode("utf-8"),
        }
    )


def signed_headers(
    keys: KeyRing, body: bytes, now_ms: int, *, new_keys: KeyRing | None = None, old: bool = True
) -> dict[str, str]:
    """Fresh timestamp, nonce, and the certificate serial and RSA signature for ``body``.

    With ``new_keys``, the new certificate signs too (``BinancePay-*-New``); ``old=False``
    leaves out the old certificate's pair.
    """
    nonce = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(protocol.NONCE_LENGTH))
    timestamp = str(now_ms)
    payload = timestamp.encode("ascii") + b"\n" + nonce.encode("ascii") + b"\n" + body + b"\n"
    headers = {
        "Content-Type": "application/json",
        protocol.HEADER_TIMESTAMP: timestamp,
        protocol.HEADER_NONCE: nonce,
    }
    if old:
        key = keys.signing_key
        headers[protocol.HEADER_CERTIFICATE_SN] = key.serial
        headers[protocol.HEADER_SIGNATURE] = key.sign(payload)
    if new_keys is not None:
        key = new_keys.signing_key
        headers[HEADER_CERTIFICATE_SN_NEW] = key.serial
        headers[HEADER_SIGNATURE_NEW] = key.sign(payload)
    return headers


class WebhookDispatcher:
    """Builds and signs the notifications; its :attr:`poster` delivers them and logs it."""

    def __init__(
        self,
        config: SandboxConfig,
        keys: KeyRing,
        clock: Callable[[], int],
        faults: Faults | None = None,
        new_keys: KeyRing | None = None,
    ) -> None:
        self.config = config
        signs_old = config.new_certificate != "new_only"
        self.poster = WebhookPoster(
            retry_schedule=config.webhook_retry_schedule,
            timeout_s=config.webhook_timeout_s,
            acknowledged=self._acknowledged,
            sign=lambda body: signed_headers(keys, body, clock(), new_keys=new_keys, old=signs_old),
            faults=faults,
        )
        self.events = 0
        self._lock = threading.Lock()

    def notify(self, order: Order, biz_status: BizStatus) -> None:
        """Build, sign and schedule the ``PAY`` notification of ``order``; thread-safe."""
        body = notification_body(order, biz_status)
        self.send(order.prepay_id, biz_status.value, body, order.request.webhook_url)

    def notify_refund(self, order: Order, refund: Refund) -> None:
        """Build, sign and schedule the ``PAY_REFUND`` notification of a settled refund."""
        biz_status = REFUND_BIZ_STATUS[refund.status]
        body = refund_notification_body(
            order, refund, biz_status, biz_id_text=self.config.refund_biz_id_text
        )
        self.send(
            order.prepay_id, biz_status, body, refund.webhook_url or order.request.webhook_url
        )

    def send(self, prepay_id: str, biz_status: str, body: bytes, url: str | None) -> None:
        """Deliver one event's ``body`` to ``url`` (else the default URL); thread-safe."""
        url = url or self.config.default_webhook_url
        with self._lock:
            self.events += 1
            event_id = self.events
        delivery = Delivery(url, {}, body, str(event_id), biz_status, prepay_id)
        if not self.config.deliver_webhooks:
            self.poster.skip(delivery, "webhook delivery is switched off")
        elif url is None:
            reason = "order has no webhookUrl and no default_webhook_url is configured"
            self.poster.skip(delivery, reason)
        else:
            self.poster.send(delivery)

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
