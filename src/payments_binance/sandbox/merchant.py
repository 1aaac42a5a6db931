"""The merchant API operations behind the endpoints: create (v3/v2), query, close, refund, refund
query, certificates.

Each operation takes the authenticated API key and the parsed body, and returns the ``data`` of the
success envelope or raises :class:`ApiError` (validation codes, 400201 duplicate, 400202 not found,
400204 close of a paid order or refund of an unpaid one, 400301–400303 refund rules). Expired
orders are swept before every operation, so a query never shows an order as open after its expiry
time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from payments_binance.protocol import BizStatus
from payments_binance.sandbox import links, validation
from payments_binance.sandbox.certificates import KeyRing
from payments_binance.sandbox.config import SandboxConfig
from payments_binance.sandbox.envelope import ApiError
from payments_binance.sandbox.state import Book, Order, Refund, RefundNotFound
from payments_binance.sandbox.webhooks import payment_info, refund_answer

#: Refund paths (reference section 6), spelt here rather than shared with the client side.
PATH_REFUND = "/binancepay/openapi/order/refund"
PATH_REFUND_QUERY = "/binancepay/openapi/order/refund/query"


@attrs.define
class Counters:
    """Request-side figures for ``/sandbox/stats``."""

    requests: int = 0
    requests_by_path: dict[str, int] = attrs.field(factory=dict)
    orders_created: int = 0
    duplicates_refused: int = 0
    refunds_created: int = 0
    duplicate_refunds: int = 0
    errors: dict[str, int] = attrs.field(factory=dict)

    def request(self, path: str) -> None:
        """Count one merchant request to ``path``."""
        self.requests += 1
        self.requests_by_path[path] = self.requests_by_path.get(path, 0) + 1

    def error(self, code: str) -> None:
        """Count one business error answered with ``code``."""
        self.errors[code] = self.errors.get(code, 0) + 1
        if code == "400201":
            self.duplicates_refused += 1


@attrs.define
class MerchantApi:
    """Business logic of the merchant endpoints, over the order book and the key ring."""

    config: SandboxConfig
    book: Book
    keys: KeyRing
    new_keys: KeyRing | None
    clock: Callable[[], int]
    merchant_ids: Mapping[str, int]
    expire_due: Callable[[], object]
    notify: Callable[[Order, BizStatus], None]
    refunded: Callable[[Order, Refund], None]
    counters: Counters

    def create_order(
        self, api_key: str, body: Mapping[str, Any], *, api_version: str, base_url: str
    ) -> dict[str, object]:
        """Validate and store a new order; its v3 or v2 OrderResult."""
        self.expire_due()
        now = self.clock()
        new = validation.create_order(body, api_version=api_version, config=self.config, now=now)
        order = self.book.create(
            new,
            merchant_key=api_key,
            merchant_id=self.merchant_ids[api_key],
            now=now,
            default_expire_ms=self.config.order_expire_default_ms,
        )
        self.counters.orders_created += 1
        data: dict[str, object] = {
            "prepayId": order.prepay_id,
            "terminalType": new.terminal_type,
            "expireTime": order.expire_time,
            "qrcodeLink": links.qrcode_link(base_url, order),
            "qrContent": links.checkout_url(base_url, order),
            "checkoutUrl": links.checkout_url(base_url, order),
            "deeplink": links.deeplink(base_url, order),
            "universalUrl": links.universal_url(base_url, order),
        }
        if api_version == "v3":
            data["currency"] = new.currency
            data["totalFee"] = new.amount
            if new.fiat_currency is not None:
                data["fiatCurrency"] = new.fiat_currency
                data["fiatAmount"] = new.fiat_amount
        return data

    def query_order(self, api_key: str, body: Mapping[str, Any]) -> dict[str, object]:
        """The QueryOrderResult (v2) of one of the merchant's orders."""
        return query_result(self._order(api_key, body))

    def close_order(self, api_key: str, body: Mapping[str, Any]) -> bool:
        """Close an open order (PAY_CLOSED follows); closing a closed one again is a no-op."""
        order = self._order(api_key, body)
        if self.book.close(order, now=self.clock()):
            self.notify(order, BizStatus.PAY_CLOSED)
        return True

    def _order(self, api_key: str, body: Mapping[str, Any]) -> Order:
        """The order a query or close body names, after the expiry sweep."""
        self.expire_due()
        prepay_id, trade_no = validation.order_lookup(body)
        return self.book.find(api_key, prepay_id=prepay_id, merchant_trade_no=trade_no)

    def refund(self, api_key: str, body: Mapping[str, Any]) -> dict[str, object]:
        """Refund (part of) a paid order once per ``refundRequestId``; its RefundResult."""
        self.expire_due()
        new = validation.refund(body)
        order, refund, duplicate = self.book.refund(api_key, new, now=self.clock())
        if duplicate:
            self.counters.duplicate_refunds += 1
        else:
            self.counters.refunds_created += 1
            self.refunded(order, refund)
        return refund_answer(refund, duplicate=duplicate)

    def query_refund(self, api_key: str, body: Mapping[str, Any]) -> dict[str, object]:
        """One of the merchant's refunds with its ``refundStatus``; 400202 if unknown."""
        refund_request_id = validation.refund_request_id(body.get("refundRequestId"))
        try:
            refund = self.book.get_refund(api_key, refund_request_id)
        except RefundNotFound:
            raise ApiError("400202", "Refund not found.") from None
        data = refund_answer(refund, duplicate=False)
        del data["duplicateRequest"]
        data["refundStatus"] = refund.status.value
        return data

    def certificates(self) -> list[dict[str, str]]:
        """Every published webhook key."""
        return self.keys.certificates()

    def new_certificates(self) -> list[dict[str, str]]:
        """The new platform certificate's keys: empty until it is enabled."""
        return self.new_keys.certificates() if self.new_keys is not None else []


def query_result(order: Order) -> dict[str, object]:
    """Query-order v2 ``data``: ``orderAmount`` as a string, times as integer ms."""
    request = order.request
    data: dict[str, object] = {
        "merchantId": order.merchant_id,
        "prepayId": order.prepay_id,
        "merchantTradeNo": request.merchant_trade_no,
        "status": order.status.value,
        "currency": request.currency,
        "orderAmount": format(request.amount, "f"),
        "createTime": order.create_time,
    }
    if order.transaction_id is not None:
        data["transactionId"] = order.transaction_id
        data["openUserId"] = order.open_user_id
        data["transactTime"] = order.transact_time
        data["paymentInfo"] = payment_info(order)
    # The sandbox charges no fee; the field is there so that a client reads it.
    data["commission"] = format(Decimal(0), "f")
    if request.pass_through_info is not None:
        data["passThroughInfo"] = request.pass_through_info
    return data
