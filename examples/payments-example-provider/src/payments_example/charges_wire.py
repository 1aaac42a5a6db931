"""ExampleCharges' wire format: what both its provider and its sandbox rely on, and no logic.

ExampleCharges is the shape of Coinbase Commerce, BTCPay or NOWPayments: the server assigns every
id, there is no idempotency key and no lookup by a merchant's id. What the merchant may store
with a charge is ``metadata``; the provider keeps the caller's reference there and finds the
charge again by it.

Requests carry the merchant's key in ``X-Charges-Api-Key``. Callbacks carry
``X-Charges-Signature``: hex HMAC-SHA256(webhook_secret, raw body), no timestamp, no key id.
Errors come as ``{"error": {"code": "...", "message": "..."}}``.
"""

from __future__ import annotations

from typing import Final

DEFAULT_BASE_URL: Final = "https://api.examplecharges.invalid"

PATH_ACCOUNT: Final = "/v1/account"  # GET
PATH_CHARGES: Final = "/v1/charges"  # POST: create; GET: list, newest first, by pages
PATH_SEARCH: Final = "/v1/charges/search"  # GET ?metadata_reference=...: charges carrying it
PATH_CHARGE: Final = "/v1/charges/{id}"  # GET
PATH_CANCEL: Final = "/v1/charges/{id}/cancel"  # POST

HEADER_KEY: Final = "X-Charges-Api-Key"
HEADER_SIGNATURE: Final = "X-Charges-Signature"

PAGE_MAX: Final = 100  # ?limit= (default 20), then ?starting_after=<last id of the page>
PAGE_DEFAULT: Final = 20
METADATA_REFERENCE: Final = "reference"
CALLBACK_BODY_MAX: Final = 64 * 1024

CURRENCIES: Final = {"USD": 2, "EUR": 2}

STATUS_NEW: Final = "NEW"
STATUS_COMPLETED: Final = "COMPLETED"
STATUS_CANCELED: Final = "CANCELED"

EVENT_CONFIRMED: Final = "charge:confirmed"
EVENT_CANCELED: Final = "charge:canceled"

ERRORS: Final = {
    "invalid_request": 400,
    "unknown_key": 401,
    "not_found": 404,
    "not_cancelable": 409,
    "rate_limited": 429,
    "internal_error": 500,
}
