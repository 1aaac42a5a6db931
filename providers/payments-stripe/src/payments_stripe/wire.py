"""Stripe's wire format: the facts the provider and the sandbox both rely on, and no logic.

Requests are form-encoded (``application/x-www-form-urlencoded``, nested keys in brackets:
``line_items[0][price_data][unit_amount]=100``) and authenticated with
``Authorization: Bearer sk_...``; answers are JSON. A ``POST`` may carry an ``Idempotency-Key``:
for 24 hours Stripe answers a repeat with the same key and the same parameters with the first
answer (``Idempotent-Replayed: true``), a repeat with other parameters with a 400
``idempotency_error``, and a repeat while the first is still running with a 409
``idempotency_error``.

Errors come as ``{"error": {"type", "code", "message", "param"}}``; ``Stripe-Should-Retry``
says whether sending the same request again may succeed, ``Retry-After`` how long to wait.

Webhooks carry ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``, where each
``v1`` is HMAC-SHA256 of ``f"{t}." + body`` under one of the endpoint's signing secrets
(``whsec_...``); while a secret is being rolled, Stripe signs with both and sends two ``v1``.
"""

from __future__ import annotations

from typing import Final

DEFAULT_BASE_URL: Final = "https://api.stripe.com"
#: The API version the provider pins (``Stripe-Version``), so answers keep their shape.
API_VERSION: Final = "2024-06-20"

PATH_SESSIONS: Final = "/v1/checkout/sessions"  # POST: create; GET: list
PATH_SESSION: Final = "/v1/checkout/sessions/{session_id}"  # GET: retrieve
PATH_EXPIRE: Final = "/v1/checkout/sessions/{session_id}/expire"  # POST: expire an open one
PATH_BALANCE: Final = "/v1/balance"  # GET: the cheapest authenticated call
PATH_REFUNDS: Final = "/v1/refunds"  # POST: refund a PaymentIntent's charge; GET: list
PATH_REFUND: Final = "/v1/refunds/{refund_id}"  # GET: retrieve
PATH_LINE_ITEMS: Final = "/v1/checkout/sessions/{session_id}/line_items"  # GET: list
PATH_PAYMENT_INTENT: Final = "/v1/payment_intents/{intent_id}"  # GET: retrieve

HEADER_IDEMPOTENCY_KEY: Final = "Idempotency-Key"
HEADER_IDEMPOTENT_REPLAYED: Final = "Idempotent-Replayed"
HEADER_SHOULD_RETRY: Final = "Stripe-Should-Retry"
HEADER_REQUEST_ID: Final = "Request-Id"
HEADER_VERSION: Final = "Stripe-Version"
HEADER_SIGNATURE: Final = "Stripe-Signature"
FORM: Final = "application/x-www-form-urlencoded"

#: Webhook timestamps further than this from now are refused (stripe-python's default).
TOLERANCE_SECONDS: Final = 300
#: How long Stripe keeps an idempotency key.
IDEMPOTENCY_WINDOW_SECONDS: Final = 24 * 3600
#: A Checkout Session's ``expires_at`` must lie this far ahead of its creation.
EXPIRES_MIN_SECONDS: Final = 30 * 60
EXPIRES_MAX_SECONDS: Final = 24 * 3600
#: The largest ``unit_amount`` Stripe takes (an 8-digit count of minor units).
UNIT_AMOUNT_MAX: Final = 99_999_999
LIST_LIMIT_MAX: Final = 100
METADATA_VALUE_MAX: Final = 500
CLIENT_REFERENCE_MAX: Final = 200
PRODUCT_NAME_MAX: Final = 250
CALLBACK_BODY_MAX: Final = 512 * 1024

#: Presentment currencies the provider offers: those of Stripe's that ``payments_core`` knows.
CURRENCIES: Final = frozenset(
    {"AED", "ARS", "AUD", "BHD", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK", "DKK", "EUR",
     "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "ISK", "JOD", "JPY", "KRW", "KWD", "MXN", "MYR",
     "NGN", "NOK", "NZD", "OMR", "PHP", "PKR", "PLN", "RON", "SAR", "SEK", "SGD", "THB", "TRY",
     "TWD", "UAH", "USD", "VND", "ZAR"}
)  # fmt: skip
#: The smallest charge Stripe takes, in minor units, for the currencies its table names
#: (docs.stripe.com/currencies, "Minimum and maximum charge amounts"). A charge in another
#: currency than the account settles in must also convert to at least the settlement
#: currency's minimum, which only Stripe can tell.
MINIMUM_CHARGE: Final = {
    "USD": 50, "AED": 200, "AUD": 50, "BGN": 100, "BRL": 50, "CAD": 50, "CHF": 50, "CZK": 1500,
    "DKK": 250, "EUR": 50, "GBP": 30, "HKD": 400, "HUF": 17500, "INR": 50, "JPY": 50,
    "MXN": 1000, "MYR": 200, "NOK": 300, "NZD": 50, "PLN": 200, "RON": 200, "SEK": 300,
    "SGD": 50, "THB": 1000,
}  # fmt: skip
#: Currencies whose amounts Stripe counts in whole units.
ZERO_DECIMAL: Final = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
     "VUV", "XAF", "XOF", "XPF"}
)  # fmt: skip
#: Currencies counted in thousandths, whose last digit Stripe requires to be 0.
THREE_DECIMAL: Final = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
#: Currencies Stripe counts in hundredths although ISO 4217 gives them no minor unit; the
#: count must be a multiple of 100.
HUNDREDTHS_OF_WHOLE_UNITS: Final = frozenset({"ISK"})

# Checkout Session ``status`` and ``payment_status`` values.
SESSION_OPEN: Final = "open"
SESSION_COMPLETE: Final = "complete"
SESSION_EXPIRED: Final = "expired"
PAYMENT_PAID: Final = "paid"
PAYMENT_UNPAID: Final = "unpaid"
PAYMENT_NOT_REQUIRED: Final = "no_payment_required"

# Event ``type`` values the provider reads.
EVENT_COMPLETED: Final = "checkout.session.completed"
EVENT_ASYNC_SUCCEEDED: Final = "checkout.session.async_payment_succeeded"
EVENT_ASYNC_FAILED: Final = "checkout.session.async_payment_failed"
EVENT_EXPIRED: Final = "checkout.session.expired"
EVENT_CHARGE_REFUNDED: Final = "charge.refunded"
EVENT_REFUND_CREATED: Final = "refund.created"
EVENT_REFUND_UPDATED: Final = "refund.updated"
EVENT_REFUND_FAILED: Final = "refund.failed"
EVENT_CHARGE_REFUND_UPDATED: Final = "charge.refund.updated"

#: The ``reason`` values a refund may be created with.
REFUND_REASONS: Final = ("duplicate", "fraudulent", "requested_by_customer")
#: The ``locale`` values of a Checkout Session.
CHECKOUT_LOCALES: Final = frozenset(
    {"auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil", "fr",
     "fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl", "pl", "pt",
     "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK", "zh-TW"}
)  # fmt: skip

# Refund ``status`` values.
REFUND_SUCCEEDED: Final = "succeeded"
REFUND_PENDING: Final = "pending"
REFUND_REQUIRES_ACTION: Final = "requires_action"
REFUND_FAILED: Final = "failed"
REFUND_CANCELED: Final = "canceled"

#: ``metadata`` key under which the caller's reference travels with the session and its
#: PaymentIntent (``client_reference_id`` carries it too).
METADATA_REFERENCE: Final = "payments_reference"
#: ``metadata`` keys of a refund: the caller's refund reference and reason.
METADATA_REFUND_REFERENCE: Final = "payments_refund_reference"
METADATA_REFUND_REASON: Final = "payments_refund_reason"

# Error ``type`` values.
ERROR_API: Final = "api_error"
ERROR_CARD: Final = "card_error"
ERROR_IDEMPOTENCY: Final = "idempotency_error"
ERROR_INVALID_REQUEST: Final = "invalid_request_error"

# Error ``code`` values the provider or the sandbox name.
CODE_RESOURCE_MISSING: Final = "resource_missing"
CODE_RATE_LIMIT: Final = "rate_limit"
CODE_LOCK_TIMEOUT: Final = "lock_timeout"
CODE_API_KEY_EXPIRED: Final = "api_key_expired"
CODE_PARAMETER_MISSING: Final = "parameter_missing"
CODE_PARAMETER_INVALID_INTEGER: Final = "parameter_invalid_integer"
CODE_PARAMETER_UNKNOWN: Final = "parameter_unknown"
CODE_AMOUNT_TOO_LARGE: Final = "amount_too_large"
CODE_AMOUNT_TOO_SMALL: Final = "amount_too_small"
CODE_CHARGE_ALREADY_REFUNDED: Final = "charge_already_refunded"
