"""The Binance provider's configuration: which keys it reads, their defaults, and their checks.

Every key can be set in code (``provider_settings={"binance": {...}}``), in the environment, or
in the ``[providers.binance]`` table of the TOML file. Credentials are required only when an
operation is built, so the provider loads (and ``payments providers`` lists it) without them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from payments_binance import protocol
from payments_core import ConfigurationError, ProviderSettings, Secret

__all__ = ["SETTING_ENV", "BinanceSettings", "load_settings"]

DEFAULT_TERMINAL_TYPE: Final = "WEB"
_ASSET: Final = re.compile(r"[A-Z0-9]{2,10}").fullmatch
#: Binance documents no freshness rule for webhooks; five minutes absorbs clock drift and
#: delivery delay while keeping a captured callback from being replayed much later.
DEFAULT_TIMESTAMP_TOLERANCE: Final = 300.0
#: At most one certificates fetch per minute, however many unknown serials arrive.
DEFAULT_CERT_REFRESH_COOLDOWN: Final = 60.0
DEFAULT_MAX_CALLBACK_BYTES: Final = 64 * 1024
#: UNCERTAIN: the v1 docs cap orderExpireTime at 1 hour, a transcription of v3 at 15 days; the
#: smallest is the default, so that no order is refused by Binance for its expiry.
DEFAULT_MAX_ORDER_EXPIRY: Final = 3600.0
#: UNCERTAIN: the docs hide the "Query Certificate New" path (reference section 16.3).
DEFAULT_NEW_CERTIFICATES_PATH: Final = protocol.PATH_CERTIFICATES_NEW
DEFAULT_GOODS_CATEGORY: Final = "Z000"
#: UNCERTAIN: Binance does not document how a refund query for an unknown refundRequestId is
#: answered; 400202 ORDER_NOT_FOUND is the code its order query uses for "none".
DEFAULT_REFUND_NOT_FOUND_CODES: Final = frozenset({"400202"})

#: Each configuration key with the environment variable that overrides it.
SETTING_ENV: Final[Mapping[str, str]] = {
    "api_key": "BINANCE_PAY_API_KEY",
    "api_secret": "BINANCE_PAY_API_SECRET",
    "base_url": "BINANCE_PAY_BASE_URL",
    "terminal_type": "BINANCE_PAY_TERMINAL_TYPE",
    "timestamp_tolerance": "BINANCE_PAY_TIMESTAMP_TOLERANCE",
    "cert_refresh_cooldown": "BINANCE_PAY_CERT_REFRESH_COOLDOWN",
    "max_callback_bytes": "BINANCE_PAY_MAX_CALLBACK_BYTES",
    "goods_category": "BINANCE_PAY_GOODS_CATEGORY",
    "max_order_expiry": "BINANCE_PAY_MAX_ORDER_EXPIRY",
    "refund_not_found_codes": "BINANCE_PAY_REFUND_NOT_FOUND_CODES",
    "new_certificates_path": "BINANCE_PAY_NEW_CERTIFICATES_PATH",
    "support_pay_currency": "BINANCE_PAY_SUPPORT_PAY_CURRENCY",
}


@attrs.frozen(kw_only=True)
class BinanceSettings:
    """The checked configuration of one Binance provider instance.

    Attributes:
        api_key: The merchant API key, sent as ``BinancePay-Certificate-SN``.
        api_secret: The HMAC-SHA512 signing secret.
        base_url: Scheme and host of the Merchant API, without a trailing slash.
        terminal_type: ``env.terminalType`` of created orders.
        timestamp_tolerance: Seconds a callback's timestamp may lie in the past or future.
        cert_refresh_cooldown: Seconds between two fetches of Binance's certificates.
        max_callback_bytes: Largest callback body accepted.
        goods_category: ``goodsCategory`` of the one item each order lists.
        max_order_expiry: Seconds from now an order's ``expires_at`` may lie at most.
        refund_not_found_codes: Binance codes that, answering a refund query, mean "no such
            refund" (comma-separated in configuration).
        new_certificates_path: Path of the new platform certificate's endpoint; empty to
            ignore the ``BinancePay-*-New`` webhook headers.
        support_pay_currency: The assets a payer may pay with, comma-separated
            (``supportPayCurrency`` of every created order); ``None`` lets Binance choose.
    """

    api_key: Secret
    api_secret: Secret
    base_url: str = protocol.DEFAULT_BASE_URL
    terminal_type: str = DEFAULT_TERMINAL_TYPE
    timestamp_tolerance: float = DEFAULT_TIMESTAMP_TOLERANCE
    cert_refresh_cooldown: float = DEFAULT_CERT_REFRESH_COOLDOWN
    max_callback_bytes: int = DEFAULT_MAX_CALLBACK_BYTES
    goods_category: str = DEFAULT_GOODS_CATEGORY
    max_order_expiry: float = DEFAULT_MAX_ORDER_EXPIRY
    refund_not_found_codes: frozenset[str] = DEFAULT_REFUND_NOT_FOUND_CODES
    new_certificates_path: str = DEFAULT_NEW_CERTIFICATES_PATH
    support_pay_currency: str | None = None


def _default(key: str) -> Any:
    """The default of ``key``: its field's in :class:`BinanceSettings`."""
    return attrs.fields_dict(BinanceSettings)[key].default


def _non_negative(settings: ProviderSettings, key: str) -> float:
    value = settings.number(key, env=SETTING_ENV[key], default=_default(key))
    if not (math.isfinite(value) and value >= 0):
        raise ConfigurationError(
            f"[providers.{settings.name}] {key} must be a finite number >= 0, got {value}"
        )
    return value


def _choice(settings: ProviderSettings, key: str, allowed: frozenset[str]) -> str:
    default: str = _default(key)
    value = settings.get(key, env=SETTING_ENV[key], default=default) or default
    if value not in allowed:
        raise ConfigurationError(
            f"[providers.{settings.name}] {key} must be one of {sorted(allowed)}, got {value!r}"
        )
    return value


def _codes(settings: ProviderSettings, key: str) -> frozenset[str]:
    value = settings.get(key, env=SETTING_ENV[key])
    if value is None:
        return frozenset(_default(key))
    codes = frozenset(code.strip() for code in str(value).split(",") if code.strip())
    if not codes or not all(code.isascii() and code.isdigit() for code in codes):
        raise ConfigurationError(
            f"[providers.{settings.name}] {key} must be comma-separated Binance codes (digits), "
            f"got {value!r}"
        )
    return codes


def _path(settings: ProviderSettings, key: str) -> str:
    value = settings.get(key, env=SETTING_ENV[key], default=_default(key))
    path = str(value).strip()
    if path and not (path.startswith("/") and path.isascii() and " " not in path):
        raise ConfigurationError(
            f"[providers.{settings.name}] {key} must be a URL path starting with '/', or empty, "
            f"got {value!r}"
        )
    return path


def asset_list(value: str, where: str) -> str:
    """``value`` as Binance's comma-separated asset list (``"USDT,BNB"``).

    :raises ValueError: naming ``where`` if an entry is not 2 to 10 upper-case letters/digits.
    """
    codes = [code.strip() for code in value.split(",")]
    if not all(_ASSET(code) for code in codes):
        raise ValueError(f"{where} must be comma-separated asset codes (USDT,BNB), got {value!r}")
    return ",".join(codes)


def _assets(settings: ProviderSettings, key: str) -> str | None:
    value = settings.get(key, env=SETTING_ENV[key])
    if value is None or not str(value).strip():
        return None
    try:
        return asset_list(str(value), f"[providers.{settings.name}] {key}")
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def load_settings(settings: ProviderSettings) -> BinanceSettings:
    """Read and check the provider's configuration.

    :raises ConfigurationError: if the API key or secret is missing, the base URL is not an
        http(s) URL, or a value is out of range (naming the key, never the secret's value).
    """
    api_key = settings.secret("api_key", env=SETTING_ENV["api_key"])
    api_secret = settings.secret("api_secret", env=SETTING_ENV["api_secret"])
    missing = [
        f"{key} ({SETTING_ENV[key]})"
        for key, value in (("api_key", api_key), ("api_secret", api_secret))
        if value is None
    ]
    if api_key is None or api_secret is None:
        raise ConfigurationError(
            f"Binance Pay provider {settings.name!r} needs credentials: set {', '.join(missing)}",
            provider=settings.name,
        )
    base_url = settings.get("base_url", env=SETTING_ENV["base_url"]) or protocol.DEFAULT_BASE_URL
    if not base_url.startswith(("https://", "http://")):
        raise ConfigurationError(
            f"[providers.{settings.name}] base_url must be an http(s) URL, got {base_url!r}"
        )
    return BinanceSettings(
        api_key=api_key,
        api_secret=api_secret,
        base_url=base_url.rstrip("/"),
        # Read first, as before the others: with two bad values, this one is named.
        max_callback_bytes=int(_non_negative(settings, "max_callback_bytes")),
        terminal_type=_choice(settings, "terminal_type", protocol.TERMINAL_TYPES),
        timestamp_tolerance=_non_negative(settings, "timestamp_tolerance"),
        cert_refresh_cooldown=_non_negative(settings, "cert_refresh_cooldown"),
        goods_category=_choice(settings, "goods_category", protocol.GOODS_CATEGORIES),
        max_order_expiry=_non_negative(settings, "max_order_expiry"),
        refund_not_found_codes=_codes(settings, "refund_not_found_codes"),
        new_certificates_path=_path(settings, "new_certificates_path"),
        support_pay_currency=_assets(settings, "support_pay_currency"),
    )
