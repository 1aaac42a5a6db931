"""Field rules of the merchant API (reference sections 3–6 and 15), each with its error code.

The codes follow the meanings of the reference's error table: a required field missing, empty, of
the wrong JSON type or unparseable → 400100; too long, too many decimals or a wrong format (a
``webhookUrl`` that is not http/https) → 400101; a value out of range or not in its enumeration
(amount below 0.00000001, unknown ``terminalType``, ``orderExpireTime`` not in the future) →
400102; illegal characters (``merchantTradeNo`` outside ``[A-Za-z0-9]``, a backslash, double
quote or emoji in ``goodsName``) → 400103; a body that is not one JSON object, or mixes
``currency`` with ``fiatCurrency`` → 400001. Every function raises :class:`ApiError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from payments_binance import protocol
from payments_binance.sandbox import jsonwire
from payments_binance.sandbox.config import SandboxConfig
from payments_binance.sandbox.envelope import ApiError
from payments_binance.sandbox.state import NewOrder, NewRefund

MIN_AMOUNT = Decimal("0.00000001")
_QUANTUM = Decimal(1).scaleb(-protocol.AMOUNT_MAX_DECIMALS)
_TRADE_NO_CHARS = re.compile(r"[A-Za-z0-9]+")
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DIGITS = re.compile(r"[0-9]+")
OS_TYPES = frozenset({"IOS", "ANDROID"})
MAX_TEXT = 256
MAX_PASS_THROUGH = 512
MAX_SUPPORT_PAY_CURRENCY = 1024
MAX_UNIVERSAL_URL_ATTACH = 120
MAX_SUB_MERCHANT_ID = 19
MAX_REFUND_REQUEST_ID = 64


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object; 400001 if it is not exactly that."""
    try:
        value = jsonwire.loads(raw)
    except jsonwire.MalformedJSON as exc:
        raise ApiError("400001", f"request body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ApiError("400001", "request body must be a JSON object")
    return value


def _missing(field: str) -> ApiError:
    return ApiError("400100", f"{field} is mandatory and must not be empty or malformed")


# The helpers below take a JSON object and a field's path in it as error messages name it
# ("env.terminalType", "goodsDetails[0].goodsName"): the key read is the path's last part.


def _value(body: Mapping[str, Any], field: str) -> Any:
    return body.get(field.rpartition(".")[2])


def _object(body: Mapping[str, Any], field: str, *, required: bool) -> dict[str, Any]:
    value = _value(body, field)
    if value is None:
        if required:
            raise _missing(field)
        return {}
    if not isinstance(value, dict):
        raise _missing(field)
    return value


def _checked_text(value: object, field: str, max_len: int | None) -> str | None:
    """``value`` as text of at most ``max_len`` characters; ``None`` if it is absent or empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _missing(field)
    if max_len is not None and len(value) > max_len:
        raise ApiError("400101", f"{field} must be at most {max_len} characters")
    return value


def _text(body: Mapping[str, Any], field: str, *, max_len: int | None = None) -> str | None:
    return _checked_text(_value(body, field), field, max_len)


def _required_text(body: Mapping[str, Any], field: str, *, max_len: int | None = None) -> str:
    value = _text(body, field, max_len=max_len)
    if value is None:
        raise _missing(field)
    return value


def _amount(body: Mapping[str, Any], field: str) -> Decimal:
    value = _value(body, field)
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _missing(field)
    if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
        raise _missing(field)
    amount = Decimal(value)
    if not amount.is_finite():  # only a caller in Python can hand one over; JSON cannot
        raise _missing(field)
    if amount < MIN_AMOUNT:
        raise ApiError("400102", f"{field} must be at least {MIN_AMOUNT}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > protocol.AMOUNT_MAX_DECIMALS:
        raise ApiError(
            "400101", f"{field} must have at most {protocol.AMOUNT_MAX_DECIMALS} decimal places"
        )
    return amount


def merchant_trade_no(value: object, field: str = "merchantTradeNo") -> str:
    """A valid ``merchantTradeNo``: 1 to 32 letters and digits."""
    trade_no = _checked_text(value, field, protocol.MERCHANT_TRADE_NO_MAX)
    if trade_no is None:
        raise _missing(field)
    if not _TRADE_NO_CHARS.fullmatch(trade_no):
        raise ApiError("400103", f"{field} may contain letters and digits only")
    return trade_no


def _has_illegal_name_char(name: str) -> bool:
    return any(
        ch in '\\"' or ord(ch) >= 0x1F000 or 0x2600 <= ord(ch) <= 0x27BF or ord(ch) == 0xFE0F
        for ch in name
    )


def _goods(item: object, field: str) -> tuple[str, str]:
    """Validate one goods object; return (goodsCategory, goodsName) for the webhook."""
    if not isinstance(item, dict):
        raise _missing(field)
    goods_type = _required_text(item, f"{field}.goodsType")
    if goods_type not in protocol.GOODS_TYPES:
        raise ApiError("400102", f"{field}.goodsType must be one of {sorted(protocol.GOODS_TYPES)}")
    category = _required_text(item, f"{field}.goodsCategory")
    if category not in protocol.GOODS_CATEGORIES:
        raise ApiError("400102", f"{field}.goodsCategory is not a known category")
    _required_text(item, f"{field}.referenceGoodsId")
    name = _required_text(item, f"{field}.goodsName", max_len=MAX_TEXT)
    if _has_illegal_name_char(name):
        raise ApiError("400103", f'{field}.goodsName must not contain \\, " or emoji')
    _text(item, f"{field}.goodsDetail", max_len=MAX_TEXT)
    unit = _object(item, f"{field}.goodsUnitAmount", required=False)
    if unit:
        _required_text(unit, f"{field}.goodsUnitAmount.currency")
        _amount(unit, f"{field}.goodsUnitAmount.amount")
    return category, name


def _url(body: Mapping[str, Any], field: str, *, http_only: bool) -> str | None:
    url = _text(body, field, max_len=MAX_TEXT)
    if url is not None and http_only and not url.startswith(("http://", "https://")):
        raise ApiError("400101", f"{field} must start with http:// or https://")
    return url


def _expire_time(body: Mapping[str, Any], config: SandboxConfig, now: int) -> int | None:
    value = body.get("orderExpireTime")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _missing("orderExpireTime")
    if value <= now:
        raise ApiError("400102", "orderExpireTime must be an epoch-millisecond time in the future")
    if value > now + config.order_expire_max_ms:
        raise ApiError("400102", "orderExpireTime is too far in the future")
    return value


def _money(
    body: Mapping[str, Any], config: SandboxConfig
) -> tuple[str, Decimal, str | None, Decimal | None]:
    """(currency, amount, fiatCurrency, fiatAmount) with fiat converted to USDT."""
    crypto = body.get("currency") is not None or body.get("orderAmount") is not None
    fiat = body.get("fiatCurrency") is not None or body.get("fiatAmount") is not None
    if crypto and fiat:
        raise ApiError("400001", "send either currency+orderAmount or fiatCurrency+fiatAmount")
    if not crypto and not fiat:
        raise _missing("currency")
    if crypto:
        currency = _required_text(body, "currency")
        if currency not in config.currencies:
            raise ApiError("400102", f"currency {currency!r} is not supported")
        return currency, _amount(body, "orderAmount"), None, None
    fiat_currency = _required_text(body, "fiatCurrency")
    rate = config.fiat_rates.get(fiat_currency)
    if rate is None:
        raise ApiError("400102", f"fiatCurrency {fiat_currency!r} is not supported")
    fiat_amount = _amount(body, "fiatAmount")
    amount = (fiat_amount * rate).quantize(_QUANTUM, rounding=ROUND_HALF_UP)
    if amount < MIN_AMOUNT:
        raise ApiError("400102", "fiatAmount converts to less than the minimum order amount")
    return "USDT", amount, fiat_currency, fiat_amount


def create_order(
    body: Mapping[str, Any], *, api_version: str, config: SandboxConfig, now: int
) -> NewOrder:
    """Validate a create-order body (``api_version`` "v3" or "v2") into a :class:`NewOrder`."""
    env = _object(body, "env", required=True)
    terminal_type = _required_text(env, "env.terminalType")
    if terminal_type not in protocol.TERMINAL_TYPES:
        raise ApiError(
            "400102", f"env.terminalType must be one of {sorted(protocol.TERMINAL_TYPES)}"
        )
    os_type = _text(env, "env.osType")
    if os_type is not None and os_type not in OS_TYPES:
        raise ApiError("400102", "env.osType must be IOS or ANDROID")
    merchant = _object(body, "merchant", required=False)
    _text(merchant, "merchant.subMerchantId", max_len=MAX_SUB_MERCHANT_ID)
    trade_no = merchant_trade_no(body.get("merchantTradeNo"))
    currency, amount, fiat_currency, fiat_amount = _money(body, config)
    description = None
    if api_version == "v3":
        description = _required_text(body, "description", max_len=MAX_TEXT)
        details = body.get("goodsDetails")
        if not isinstance(details, list) or not details:
            raise _missing("goodsDetails")
        goods = [_goods(item, f"goodsDetails[{i}]") for i, item in enumerate(details)]
        category, name = goods[0]
    else:
        category, name = _goods(body.get("goods"), "goods")
    if terminal_type == "MINI_PROGRAM":
        _required_text(body, "appId")
    _text(body, "supportPayCurrency", max_len=MAX_SUPPORT_PAY_CURRENCY)
    _text(body, "universalUrlAttach", max_len=MAX_UNIVERSAL_URL_ATTACH)
    return NewOrder(
        api_version=api_version,
        merchant_trade_no=trade_no,
        terminal_type=terminal_type,
        currency=currency,
        amount=amount,
        product_type=category,
        product_name=name,
        description=description,
        fiat_currency=fiat_currency,
        fiat_amount=fiat_amount,
        webhook_url=_url(body, "webhookUrl", http_only=True),
        pass_through_info=_text(body, "passThroughInfo", max_len=MAX_PASS_THROUGH),
        return_url=_url(body, "returnUrl", http_only=False),
        cancel_url=_url(body, "cancelUrl", http_only=False),
        expire_time=_expire_time(body, config, now),
    )


def order_lookup(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(prepayId, merchantTradeNo) of a query or close body; at least one is required."""
    raw_prepay = body.get("prepayId")
    raw_trade_no = body.get("merchantTradeNo")
    if raw_prepay in (None, "") and raw_trade_no in (None, ""):
        raise _missing("prepayId or merchantTradeNo")
    prepay_id = None if raw_prepay in (None, "") else _prepay_id(raw_prepay)
    trade_no = None if raw_trade_no in (None, "") else merchant_trade_no(raw_trade_no)
    return prepay_id, trade_no


def _prepay_id(value: object) -> str:
    """A prepay id sent as a string or a JSON integer: up to 19 digits."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise _missing("prepayId")
    prepay_id = str(value)
    if not _DIGITS.fullmatch(prepay_id):
        raise _missing("prepayId")
    if len(prepay_id) > protocol.PREPAY_ID_MAX:
        raise ApiError("400101", f"prepayId must be at most {protocol.PREPAY_ID_MAX} digits")
    return prepay_id


def refund_request_id(value: object) -> str:
    """A valid ``refundRequestId``: a non-empty string of at most 64 characters."""
    request_id = _checked_text(value, "refundRequestId", MAX_REFUND_REQUEST_ID)
    if request_id is None:
        raise _missing("refundRequestId")
    return request_id


def refund(body: Mapping[str, Any]) -> NewRefund:
    """Validate a refund body (reference section 6.1) into a :class:`NewRefund`."""
    return NewRefund(
        refund_request_id=refund_request_id(body.get("refundRequestId")),
        prepay_id=_prepay_id(body.get("prepayId")),
        amount=_amount(body, "refundAmount"),
        reason=_text(body, "refundReason", max_len=MAX_TEXT),
        webhook_url=_url(body, "webhookUrl", http_only=True),
    )
