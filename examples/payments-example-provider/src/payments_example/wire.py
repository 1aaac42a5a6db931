"""ExamplePay's wire format: facts both the provider and the sandbox rely on, and no logic.

The API speaks JSON. Every merchant request carries three headers::

    ExamplePay-Key:        the merchant's API key
    ExamplePay-Timestamp:  Unix seconds; requests more than 300 s off are refused
    ExamplePay-Signature:  hex HMAC-SHA256(api_secret, f"{timestamp}\\n{METHOD}\\n{path}\\n" + body)

Callbacks to the merchant carry two::

    ExamplePay-Event-Timestamp:  Unix seconds
    ExamplePay-Event-Signature:  hex HMAC-SHA256(api_secret, f"{timestamp}." + body)

Errors come as ``{"error": {"code": "...", "message": "...", "field": "..."}}`` with the
status below; ``429`` answers carry ``Retry-After`` in whole seconds.
"""

from __future__ import annotations

from typing import Final

DEFAULT_BASE_URL: Final = "https://api.examplepay.invalid"

PATH_ACCOUNT: Final = "/v1/account"  # GET: who the credentials belong to
PATH_ORDERS: Final = "/v1/orders"  # POST: create
PATH_ORDER: Final = "/v1/orders/{merchant_order_id}"  # GET: query
PATH_CLOSE: Final = "/v1/orders/{merchant_order_id}/close"  # POST: close
# POST: refund (201 new, 200 the same merchant_refund_id again: idempotent)
PATH_REFUNDS: Final = "/v1/orders/{merchant_order_id}/refunds"
PATH_REFUND: Final = "/v1/orders/{merchant_order_id}/refunds/{merchant_refund_id}"  # GET: query

HEADER_KEY: Final = "ExamplePay-Key"
HEADER_TIMESTAMP: Final = "ExamplePay-Timestamp"
HEADER_SIGNATURE: Final = "ExamplePay-Signature"
HEADER_EVENT_TIMESTAMP: Final = "ExamplePay-Event-Timestamp"
HEADER_EVENT_SIGNATURE: Final = "ExamplePay-Event-Signature"
HEADER_REQUEST_ID: Final = "ExamplePay-Request-Id"

TIMESTAMP_TOLERANCE_SECONDS: Final = 300
MERCHANT_ORDER_ID_MAX: Final = 64
DESCRIPTION_MAX: Final = 256
CALLBACK_BODY_MAX: Final = 64 * 1024

# Pricing currencies and their decimal places.
CURRENCIES: Final = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0}

# What a payer may pay in, and its decimal places: the price's currency, or a coin the payer
# picks when paying. An order paid in a coin says what was paid (its "paid") in that coin.
ASSETS: Final = {**CURRENCIES, "BTC": 8, "USDT": 6}
# ExamplePay keeps this share of what was paid as its fee ("fee"), rounded down, in that asset.
FEE_RATE: Final = "0.01"

# Order "status" values.
STATUS_OPEN: Final = "open"
STATUS_PROCESSING: Final = "processing"  # the payment arrived, not yet confirmed
STATUS_HELD: Final = "held"  # the amount paid is not the order's: held for the merchant
STATUS_PAID: Final = "paid"
STATUS_FAILED: Final = "failed"  # the payment never confirmed, or the merchant refused it
STATUS_CLOSED: Final = "closed"
STATUS_PARTIALLY_REFUNDED: Final = "partially_refunded"
STATUS_REFUNDED: Final = "refunded"

# Refund "status" values: ExamplePay refunds at once, or refuses.
REFUND_SUCCEEDED: Final = "succeeded"
REFUND_FAILED: Final = "failed"
REASON_MAX: Final = 256

# Callback "type" values.
EVENT_PROCESSING: Final = "order.processing"
EVENT_HELD: Final = "order.held"
EVENT_PAID: Final = "order.paid"
EVENT_FAILED: Final = "order.failed"
EVENT_CLOSED: Final = "order.closed"
EVENT_REFUNDED: Final = "refund.succeeded"

# Error codes and the HTTP status each comes with.
ERRORS: Final = {
    "invalid_request": 400,
    "unknown_key": 401,
    "bad_signature": 401,
    "stale_timestamp": 401,
    "forbidden": 403,
    "not_found": 404,
    "order_not_found": 404,
    "duplicate_order": 409,
    "order_not_closable": 409,
    "order_not_refundable": 409,
    "refund_exceeds_remaining": 400,
    "refund_mismatch": 409,
    "refund_not_found": 404,
    "rate_limited": 429,
    "internal_error": 500,
}
