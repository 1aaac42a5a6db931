"""Configuration of the sandbox: credentials, windows, schedules and every UNCERTAIN choice.

Everything a test or an operator may want to vary lives in :class:`SandboxConfig`, a frozen attrs
class. Defaults are the documented values of ``docs/sandbox.md``. Building a config with an
inconsistent value (an empty secret, a negative window, a retry schedule with a negative delay)
raises ``ValueError`` at once rather than misbehaving later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

import attrs

from payments_core.testing.sandbox import FaultProfile

#: The merchant credentials the sandbox accepts when none are configured. Not secret: printed
#: by ``payments sandbox`` and written in docs/sandbox.md.
DEFAULT_API_KEY = "sandbox-key"
DEFAULT_API_SECRET = "sandbox-secret-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"  # noqa: S105

#: Loose default so that tests and demos on a busy machine do not trip over clock jitter.
DEFAULT_TIMESTAMP_WINDOW_MS = 60_000
#: What Binance documents ("within 1s"); used when ``strict=True``.
STRICT_TIMESTAMP_WINDOW_MS = 1_000

#: Seconds before each of the (up to) six retries of a webhook delivery. Binance documents
#: "up to 6 retries" but no intervals, so this schedule is the sandbox's own.
DEFAULT_WEBHOOK_RETRY_SCHEDULE: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)

DEFAULT_ORDER_EXPIRE_MS = 3_600_000
#: Longest allowed ``orderExpireTime`` ahead of now: 15 days (one transcription of the v3 page;
#: the v1 page says 1 hour). UNCERTAIN, hence configurable.
DEFAULT_ORDER_EXPIRE_MAX_MS = 15 * 24 * 3_600_000

#: Fixed conversion rates, fiat unit → USDT, used for orders created with ``fiatCurrency``.
DEFAULT_FIAT_RATES: Mapping[str, Decimal] = MappingProxyType(
    {
        "USD": Decimal("1"),
        "EUR": Decimal("1.08"),
        "GBP": Decimal("1.27"),
        "HKD": Decimal("0.128"),
    }
)

#: Crypto codes accepted as an order ``currency``.
DEFAULT_CURRENCIES: frozenset[str] = frozenset(
    {"USDT", "USDC", "FDUSD", "BUSD", "BNB", "BTC", "ETH", "MBOX"}
)

DEFAULT_MAX_BODY_BYTES = 64 * 1024

WebhookAck = Literal["returnCode", "http200"]
#: Which platform certificates sign webhooks (reference section 16.3): the old one alone (the
#: new endpoint answers an empty list), both (each header pair), or the new one alone.
NewCertificate = Literal["off", "both", "new_only"]
#: UNCERTAIN: the "Query Certificate New" path is not in the docs' copies; the sandbox's guess,
#: spelt here rather than shared with the client side.
DEFAULT_NEW_CERTIFICATES_PATH = "/binancepay/openapi/certificates/new"


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _schedule(
    _: object, attribute: attrs.Attribute[tuple[float, ...]], value: tuple[float, ...]
) -> None:
    if any(delay < 0 for delay in value):
        raise ValueError(f"{attribute.name} must hold delays >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class SandboxConfig:
    """How a :class:`~payments_binance.sandbox.Sandbox` behaves.

    ``api_key``/``api_secret`` are the primary merchant; ``credentials`` adds more key pairs (each
    key is its own merchant, with its own ``merchantTradeNo`` namespace). ``clock`` returns the
    current time in epoch milliseconds and is injectable for expiry tests. ``base_url`` is the
    public URL used to build ``checkoutUrl`` and friends; when ``None`` it comes from the server
    (or from the request's own URL). ``error_http_status`` overrides the HTTP status per error
    code, ``error_http_status_all`` forces one status for every business error (the JSON body is
    identical either way).
    """

    api_key: str = DEFAULT_API_KEY
    api_secret: str = attrs.field(default=DEFAULT_API_SECRET, repr=False)
    credentials: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    merchant_id: int = 100_000_001

    timestamp_window_ms: int = attrs.field(
        default=DEFAULT_TIMESTAMP_WINDOW_MS, validator=_non_negative
    )
    strict: bool = False
    accept_lowercase_signature: bool = False
    reject_reused_nonce: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    webhook_retry_schedule: tuple[float, ...] = attrs.field(
        default=DEFAULT_WEBHOOK_RETRY_SCHEDULE, converter=tuple, validator=_schedule
    )
    webhook_timeout_s: float = attrs.field(default=5.0, validator=_non_negative)
    webhook_ack: WebhookAck = "returnCode"
    deliver_webhooks: bool = True
    default_webhook_url: str | None = None
    webhook_on_expiry: bool = True

    #: Seconds until a refund settles: 0 settles it in the request, ``None`` leaves it
    #: ``REFUND_PENDING`` until ``Sandbox.settle_refund``.
    refund_settle_delay_s: float | None = 0.0

    faults: FaultProfile | None = None
    seed: int = 0

    #: Where the orders, refunds and used nonces live: ``None`` in memory (one process), else a
    #: SQLite file path or a ``postgresql://`` URL shared by several worker processes.
    state: str | None = None
    #: This process's index among the workers serving one sandbox (seeds its fault decisions).
    worker: int = 0

    signing_key_pem: bytes | None = attrs.field(default=None, repr=False)
    extra_signing_keys: tuple[bytes, ...] = attrs.field(default=(), converter=tuple, repr=False)
    active_signing_key: int = 0
    new_certificate: NewCertificate = "off"
    new_certificates_path: str = DEFAULT_NEW_CERTIFICATES_PATH
    new_signing_key_pem: bytes | None = attrs.field(default=None, repr=False)
    #: ``bizId`` of a ``PAY_REFUND`` notification as text, as the docs type it (a JSON number,
    #: like the ``PAY`` notification's, when False).
    refund_biz_id_text: bool = True

    order_expire_default_ms: int = DEFAULT_ORDER_EXPIRE_MS
    order_expire_max_ms: int = DEFAULT_ORDER_EXPIRE_MAX_MS
    expiry_sweep_interval_s: float = attrs.field(default=1.0, validator=_non_negative)
    clock: Callable[[], int] | None = None

    fiat_rates: Mapping[str, Decimal] = DEFAULT_FIAT_RATES
    currencies: frozenset[str] = DEFAULT_CURRENCIES

    error_http_status: Mapping[str, int] = attrs.field(factory=dict)
    error_http_status_all: int | None = None

    base_url: str | None = None

    def __attrs_post_init__(self) -> None:
        if not self.api_key or not self.api_secret:
            raise ValueError("api_key and api_secret must not be empty")
        if self.refund_settle_delay_s is not None and self.refund_settle_delay_s < 0:
            raise ValueError("refund_settle_delay_s must be >= 0 or None")
        if self.new_certificate not in ("off", "both", "new_only"):
            raise ValueError(
                f"new_certificate must be off, both or new_only, got {self.new_certificate!r}"
            )
        if self.active_signing_key < 0 or self.active_signing_key > len(self.extra_signing_keys):
            raise ValueError("active_signing_key must index the primary or an extra signing key")

    @property
    def accepted_credentials(self) -> Mapping[str, str]:
        """Every API key the sandbox accepts, mapped to its secret."""
        return {self.api_key: self.api_secret, **self.credentials}

    @property
    def effective_timestamp_window_ms(self) -> int:
        """The window actually enforced: 1000 ms when ``strict``, else ``timestamp_window_ms``."""
        return STRICT_TIMESTAMP_WINDOW_MS if self.strict else self.timestamp_window_ms
