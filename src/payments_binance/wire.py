"""The Merchant API's JSON: exact reading and writing, and the shapes of bodies and answers.

Reading keeps integers as ``int`` (a ``bizId`` or ``prepayId`` above 2**53 keeps every digit)
and decimals as ``Decimal``; a float is never made. Writing is compact UTF-8 and renders a
``Decimal`` as a JSON number with exactly its digits (``1.00``), which ``json.dumps`` cannot do.

Field names on the wire are camelCase; the attrs classes here use snake_case and the converter
renames them. Answers are read leniently (unknown fields ignored, an id sent as a number kept as
its digits); anything that does not fit raises :class:`MalformedAnswer`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, NoReturn, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

__all__ = [
    "Certificate",
    "CreateOrderBody",
    "CreateOrderResult",
    "Env",
    "GoodsDetail",
    "MalformedAnswer",
    "MalformedJSON",
    "OrderLookup",
    "QueryOrderResult",
    "RefundBody",
    "RefundLookup",
    "RefundResult",
    "converter",
    "dumps",
    "loads",
    "loads_text",
    "structure",
    "unstructure",
]

T = TypeVar("T")
_DIGITS = re.compile(r"-?[0-9]+")


class MalformedJSON(ValueError):
    """The bytes are not one valid UTF-8 JSON document."""


class MalformedAnswer(ValueError):
    """An answer is valid JSON but not the shape the Merchant API documents."""


def _reject_constant(name: str) -> NoReturn:
    raise MalformedJSON(f"{name} is not valid JSON")


# One decoder and one string encoder for every call: json.loads and json.dumps with keyword
# arguments build a new one each time.
_DECODER: Final = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)
_STRINGS: Final = json.JSONEncoder(ensure_ascii=False)


def loads(raw: bytes) -> Any:
    """Parse ``raw`` with exact numbers; raise :class:`MalformedJSON` on any defect."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJSON(str(exc)) from None
    return _parse(text)


def loads_text(text: str) -> Any:
    """:func:`loads` of a document already decoded (a JSON string inside a JSON document).

    Text that UTF-8 cannot carry (a lone surrogate, which a ``\\ud800`` escape in the outer
    document yields) is refused as bytes that are not UTF-8 are.
    """
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise MalformedJSON(str(exc)) from None
    return _parse(text)


def _parse(text: str) -> Any:
    if text.startswith("\ufeff"):
        raise MalformedJSON("a JSON document may not start with a byte order mark")
    try:
        return _DECODER.decode(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise MalformedJSON(str(exc)) from None


def dumps(value: object) -> bytes:
    """Serialise ``value`` compactly as UTF-8; ``TypeError`` for what JSON cannot carry."""
    return _encode(value).encode("utf-8")


def _encode(value: object) -> str:
    if isinstance(value, str):
        return _STRINGS.encode(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, Decimal):
        # A JSON number with exactly the Decimal's digits (1.00 stays 1.00), never exponent form.
        if not value.is_finite():
            raise TypeError(f"{value!r} has no JSON form")
        return format(value, "f")
    if isinstance(value, Mapping):
        members = (f"{_encode(str(k))}:{_encode(v)}" for k, v in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# -- request bodies -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Env:
    """``env`` of a create-order body; ``orderClientIp`` is the payer's IP address."""

    terminal_type: str
    order_client_ip: str | None = None


@attrs.frozen(kw_only=True)
class GoodsDetail:
    """One entry of ``goodsDetails`` (v3)."""

    goods_type: str
    goods_category: str
    reference_goods_id: str
    goods_name: str


@attrs.frozen(kw_only=True)
class CreateOrderBody:
    """A create-order v3 body. Exactly one of the crypto pair and the fiat pair is set."""

    env: Env
    merchant_trade_no: str
    description: str
    goods_details: tuple[GoodsDetail, ...]
    order_amount: Decimal | None = None
    currency: str | None = None
    fiat_amount: Decimal | None = None
    fiat_currency: str | None = None
    return_url: str | None = None
    cancel_url: str | None = None
    order_expire_time: int | None = None
    webhook_url: str | None = None
    pass_through_info: str | None = None
    support_pay_currency: str | None = None


@attrs.frozen(kw_only=True)
class OrderLookup:
    """A query-order or close-order body: the order named by its ``merchantTradeNo``."""

    merchant_trade_no: str


@attrs.frozen(kw_only=True)
class RefundBody:
    """A refund body (reference 6.1). ``refundAmount`` is in the order's currency."""

    refund_request_id: str
    prepay_id: str
    refund_amount: Decimal
    refund_reason: str | None = None
    webhook_url: str | None = None


@attrs.frozen(kw_only=True)
class RefundLookup:
    """A refund-query body: the refund named by its ``refundRequestId``."""

    refund_request_id: str


# -- answers --------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CreateOrderResult:
    """``data`` of a create-order answer (the fields this plugin uses)."""

    prepay_id: str
    expire_time: int | None = None
    qrcode_link: str | None = None
    qr_content: str | None = None
    checkout_url: str | None = None
    deeplink: str | None = None
    universal_url: str | None = None
    currency: str | None = None
    total_fee: Decimal | None = None


@attrs.frozen(kw_only=True)
class QueryOrderResult:
    """``data`` of a query-order v2 answer (the fields this plugin uses)."""

    prepay_id: str
    merchant_trade_no: str
    status: str
    currency: str | None = None
    order_amount: Decimal | None = None
    transaction_id: str | None = None
    transact_time: int | None = None
    pass_through_info: str | None = None
    #: Binance's fee for the order, in ``currency`` (reference section 16.4).
    commission: Decimal | None = None
    #: What the payer actually paid, and how (reference section 16.4): read by
    #: :func:`~payments_binance.orders.paid_from`.
    payment_info: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class RefundResult:
    """``data`` of a refund or refund-query answer, or a notification's ``refundInfo``.

    Amounts are in the order's currency; ``refunded_amount`` counts every refund of the order
    so far, this one included. ``refund_status`` comes with a query alone,
    ``duplicate_request`` with a refund alone (``"Y"``: the id was seen before).
    ``refund_id`` is Binance's own id of the refund; ``refund_commission`` the fee given back
    with this refund, ``refunded_commission`` with every refund so far (section 16.4).
    """

    refund_request_id: str
    prepay_id: str
    refund_amount: Decimal
    order_amount: Decimal | None = None
    refunded_amount: Decimal | None = None
    remaining_attempts: int | None = None
    duplicate_request: str | None = None
    refund_status: str | None = None
    refund_id: str | None = None
    refund_commission: Decimal | None = None
    refunded_commission: Decimal | None = None


@attrs.frozen(kw_only=True)
class Certificate:
    """One entry of the certificates answer: a serial and its PEM public key."""

    cert_serial: str
    cert_public: str


def _structure_str(value: object, _: type) -> str:
    # Ids are documented as strings but some answers carry them as numbers: keep the digits.
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise MalformedAnswer(f"expected a string, got {type(value).__name__}")


def _structure_int(value: object, _: type) -> int:
    # Times are numbers in v2 answers and strings in v1 documents.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise MalformedAnswer(f"expected an integer, got {value!r}")


def _structure_decimal(value: object, _: type) -> Decimal:
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
        return Decimal(value)
    raise MalformedAnswer(f"expected a decimal, got {value!r}")


def _camel_structure(cls: type[Any]) -> Callable[[Any, type], Any]:
    renames = {f.name: override(rename=_camel(f.name)) for f in attrs.fields(cls)}
    return make_dict_structure_fn(cls, converter, **renames)  # type: ignore[arg-type]


def _camel_unstructure(cls: type[Any]) -> Callable[[Any], Any]:
    renames = {f.name: override(rename=_camel(f.name)) for f in attrs.fields(cls)}
    # None means "not sent": Binance treats an explicit null like a wrong value.
    return make_dict_unstructure_fn(
        cls,
        converter,
        _cattrs_omit_if_default=True,
        **renames,  # type: ignore[arg-type]
    )


converter = cattrs.Converter(forbid_extra_keys=False)
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(Decimal, _structure_decimal)
converter.register_unstructure_hook(Decimal, lambda d: d)
converter.register_structure_hook_factory(attrs.has, _camel_structure)
converter.register_unstructure_hook_factory(attrs.has, _camel_unstructure)


def unstructure(body: object) -> Any:
    """A request body class as wire data (camelCase keys, unset fields left out)."""
    return converter.unstructure(body)


def structure(data: object, cls: type[T]) -> T:
    """Read wire data into ``cls``; :class:`MalformedAnswer` if it does not fit."""
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, MalformedAnswer, TypeError, ValueError) as exc:
        raise MalformedAnswer(f"{cls.__name__}: {_describe(exc)}") from None


def _describe(exc: Exception) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return str(exc)
