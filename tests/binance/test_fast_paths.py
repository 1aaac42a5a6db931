"""The provider's faster code paths against the plain code they replaced or bypass.

Each fast path must give exactly what the plain one gives, and refuse exactly what it refuses:
the plain versions are kept here (or are still the library's fallback) as the reference.
"""

from __future__ import annotations

import enum
import hashlib
import json
import string
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from payments_binance import orders, webhooks, wire
from payments_binance import provider as provider_module
from payments_binance.settings import BinanceSettings
from payments_binance.trade_no import merchant_trade_no
from payments_core import CallbackPayloadError, HttpResponse, Secret

from .conftest import START, envelope
from .test_orders import CREATED, create_body, provider, seed_request

# -- merchantTradeNo ----------------------------------------------------------------------------

_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase


def reference_trade_no(reference: str) -> str:
    """The derivation as first written: one base-62 digit at a time."""
    prefix = "".join(ch for ch in reference if ch.isascii() and ch.isalnum())[:10]
    number = int.from_bytes(hashlib.sha256(reference.encode("utf-8")).digest(), "big")
    digits = []
    for _ in range(22):
        number, remainder = divmod(number, len(_ALPHABET))
        digits.append(_ALPHABET[remainder])
    return prefix + "".join(reversed(digits))


@given(st.text(max_size=200))
@example("booking-12345")
@example("")
@example("\u0661\u0662\u0663abc")  # Arabic-Indic digits: alphanumeric, but not ASCII
@example("\u212a\u0130\u0131x")  # Kelvin sign, dotted and dotless I: not ASCII letters
@example("a" * 10_000)
def test_merchant_trade_no_is_the_original_derivation(reference: str) -> None:
    assert merchant_trade_no(reference) == reference_trade_no(reference)


def test_the_trade_number_is_derived_once_per_create_and_is_the_same_in_body_and_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def counting(reference: str) -> str:
        calls.append(reference)
        return merchant_trade_no(reference)

    monkeypatch.setattr(provider_module, "merchant_trade_no", counting)
    monkeypatch.setattr(orders, "merchant_trade_no", counting)
    operation = provider().create_order(request=seed_request())
    sent = next(operation)
    with pytest.raises(StopIteration) as done:
        operation.send(HttpResponse(200, {}, envelope(CREATED)))
    assert calls == ["booking-42"]
    body = wire.loads(sent.content)
    assert body["merchantTradeNo"] == done.value.value.merchant_order_id
    assert body["merchantTradeNo"] == merchant_trade_no("booking-42")


def test_create_body_and_order_from_create_still_derive_it_alone() -> None:
    request = seed_request()
    settings = BinanceSettings(
        api_key=Secret("key-0123456789"), api_secret=Secret("secret-0123456789")
    )
    body: Any = orders.create_body(request, settings, START)
    assert body["merchantTradeNo"] == merchant_trade_no(request.reference)
    answer = wire.structure(CREATED, wire.CreateOrderResult)
    order = orders.order_from_create("binance", request, answer)
    assert order.merchant_order_id == merchant_trade_no(request.reference)


# -- the create answer --------------------------------------------------------------------------

_KEYS = [
    "prepayId",
    "expireTime",
    "qrcodeLink",
    "qrContent",
    "checkoutUrl",
    "deeplink",
    "universalUrl",
    "currency",
    "totalFee",
    "terminalType",
    "fiatCurrency",
]
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=12),
    st.from_regex(r"-?[0-9]{1,20}(\.[0-9]{1,10})?", fullmatch=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_ANSWERS = st.one_of(
    st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=5), _VALUES, max_size=12),
    st.fixed_dictionaries(
        {"prepayId": st.text(min_size=1) | st.integers(min_value=0)},
        optional={key: _VALUES for key in _KEYS[1:]},
    ),
    _VALUES,
)


def _read(reader: Any, data: object) -> tuple[str, object]:
    try:
        return "ok", reader(data)
    except wire.MalformedAnswer as error:
        return "refused", str(error)


@given(_ANSWERS)
@example({"prepayId": "1", "expireTime": "9" * 5_000})  # int() refuses: cattrs's ValueError
@example({"prepayId": True})
@example({"prepayId": "1", "totalFee": Decimal("NaN")})
@example({"prepayId": "1", "totalFee": "1e5"})
@example({"prepayId": 29383937493038367292, "currency": None, "totalFee": "1.00000000"})
def test_the_create_answer_reads_exactly_as_cattrs_reads_it(data: object) -> None:
    fast = _read(wire.read_create_result, data)
    plain = _read(lambda d: wire.structure(d, wire.CreateOrderResult), data)
    assert fast == plain
    if fast[0] == "ok":
        # Same types too (attrs equality would take 1 == Decimal(1)).
        assert types_of(fast[1]) == types_of(plain[1])


def types_of(result: object) -> dict[str, type]:
    return {name: type(value) for name, value in attrs.asdict(result).items()}  # type: ignore[arg-type]


def test_the_documented_create_answer_takes_the_fast_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_cattrs(data: object, cls: type) -> None:
        raise AssertionError("fell back to cattrs")

    monkeypatch.setattr(wire, "structure", no_cattrs)
    result = wire.read_create_result(dict(CREATED))
    assert result.prepay_id == "29383937493038367292"
    assert result.total_fee == Decimal("1.00000000")
    assert result.expire_time == 1714568400000


# -- JSON reading -------------------------------------------------------------------------------

_PLAIN_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=wire._reject_constant)


def reference_loads(raw: bytes) -> object:
    """wire.loads as first written: JSONDecoder.decode after the BOM check."""
    try:
        text = raw.decode("utf-8")
        if text.startswith("\ufeff"):
            raise wire.MalformedJSON("a JSON document may not start with a byte order mark")
        return _PLAIN_DECODER.decode(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise wire.MalformedJSON(str(exc)) from None


def _loaded(load: Any, raw: Any) -> tuple[str, object]:
    try:
        value = load(raw)
    except wire.MalformedJSON as error:
        return "refused", str(error)
    return "ok", (value, _shape(value))


def _shape(value: object) -> object:
    """The value's types all the way down (1 == 1.0 == Decimal(1) would hide a difference)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value)


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_SPACE = st.text(alphabet=" \t\n\r\x0b\x0c\u00a0\u2028", max_size=3)


@st.composite
def json_documents(draw: st.DrawFn) -> bytes:
    text = json.dumps(draw(_JSON_VALUES), default=str, ensure_ascii=draw(st.booleans()))
    text = draw(_SPACE) + text + draw(_SPACE)
    mangle = draw(st.sampled_from(["none", "cut", "append", "insert", "bom"]))
    if mangle == "cut" and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif mangle == "append":
        text += draw(st.sampled_from(["x", "}", " 1", ",", "\x00", "NaN", "[]"]))
    elif mangle == "insert" and text:
        at = draw(st.integers(0, len(text)))
        text = (
            text[:at] + draw(st.sampled_from(["NaN", "Infinity", "-", ",", "\\", '"'])) + text[at:]
        )
    elif mangle == "bom":
        text = "\ufeff" + text
    return text.encode("utf-8", "surrogatepass")


@given(json_documents() | st.binary(max_size=40))
@example(b"")
@example(b"   ")
@example(b" {} ")
@example(b"{} x")
@example(b"{}\x0b")
@example(b"\xef\xbb\xbf{}")
@example(b"[NaN]")
@example(b"-Infinity")
@example(b"1.50")
@example(b"[" * 100_000)
@example(b'"\\ud800"')
@example(b'"\xed\xa0\x80"')  # a surrogate encoded as UTF-8: not UTF-8
def test_loads_reads_and_refuses_exactly_as_jsondecoder_decode(raw: bytes) -> None:
    assert _loaded(wire.loads, raw) == _loaded(reference_loads, raw)


@given(st.text())
@example("\ufeff{}")
@example('{"a":1} ')
def test_loads_text_is_loads_of_the_utf8_bytes(text: str) -> None:
    assert _loaded(wire.loads_text, text) == _loaded(wire.loads, text.encode("utf-8"))


@pytest.mark.parametrize("text", ["\ud800", '{"a":"\udfff"}', '{"merchantTradeNo":"x\ud83d"}'])
def test_loads_text_refuses_text_utf8_cannot_carry(text: str) -> None:
    with pytest.raises(wire.MalformedJSON, match="surrogates not allowed"):
        wire.loads_text(text)


# -- epoch milliseconds -------------------------------------------------------------------------


@given(st.integers(min_value=-(10**20), max_value=10**20))
@example(0)
@example(253_402_300_799_999)
@example(253_402_300_800_000)
@example(-62_135_596_800_000)
@example(-62_135_596_800_001)
def test_from_epoch_ms_is_timedelta_milliseconds(value: int) -> None:
    def outcome(make: Any) -> object:
        try:
            return make()
        except OverflowError as error:
            return ("overflow", str(error))

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert outcome(lambda: orders.from_epoch_ms(value)) == outcome(
        lambda: epoch + timedelta(milliseconds=value)
    )


# -- reading a verified callback ----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    ['"\\ud800"', '"{\\"merchantTradeNo\\":\\"a\\ud800\\"}"'],
    ids=["lone-surrogate", "surrogate-in-a-value"],
)
def test_a_data_string_utf8_cannot_carry_is_a_payload_error_not_a_crash(data: str) -> None:
    # The outer document's \ud800 escape makes a str no UTF-8 encoder takes; reading it once
    # raised UnicodeEncodeError out of the provider. It is refused like any data not JSON.
    body = (
        '{"bizType":"PAY","bizStatus":"PAY_SUCCESS","bizIdStr":"1","data":' + data + "}"
    ).encode()
    with pytest.raises(CallbackPayloadError) as caught:
        webhooks._interpret(body, "binance")
    assert caught.value.reply is not None
    assert caught.value.reply.status_code == 400
    assert b"data is not valid JSON" in caught.value.reply.body


# -- JSON writing and goodsName -----------------------------------------------------------------


def reference_encode(value: object) -> str:
    """wire's encoder as first written: one isinstance chain for every value."""
    if isinstance(value, str):
        return json.encoder.encode_basestring(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value!r} has no JSON form")
        return format(value, "f")
    if isinstance(value, Mapping):
        members = (f"{reference_encode(str(k))}:{reference_encode(v)}" for k, v in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return "[" + ",".join(reference_encode(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class Kind(enum.StrEnum):
    A = "a\u00e9"


class Label(str):
    def __str__(self) -> str:
        return "label"


_WIRE_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.decimals(),
    st.text(),
    st.sampled_from([Kind.A, Label("x"), b"raw", 1.5, object()]),
)
_WIRE_KEYS = st.one_of(st.text(), st.integers(), st.none(), st.sampled_from([Kind.A, Label("k")]))
_WIRE_VALUES = st.recursive(
    _WIRE_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_WIRE_KEYS, inner, max_size=3)
        | st.dictionaries(_WIRE_KEYS, inner, max_size=3).map(MappingProxyType)
    ),
    max_leaves=10,
)


def _encoded(encode: Any, value: object) -> tuple[str, str]:
    try:
        return "ok", encode(value)
    except TypeError as error:
        return "refused", str(error)


@given(_WIRE_VALUES)
def test_dumps_writes_and_refuses_exactly_as_before(value: object) -> None:
    assert _encoded(wire._encode, value) == _encoded(reference_encode, value)


def test_dumps_of_a_create_body_is_unchanged() -> None:
    body = create_body(seed_request(description='Caf\u00e9 "\\ booking'))
    assert wire._encode(body) == reference_encode(body)


def reference_goods_name(description: str) -> str:
    return " ".join("".join(ch for ch in description if not orders._is_emoji_or_quote(ch)).split())


@given(st.text() | st.text(alphabet=st.characters(max_codepoint=127)))
@example('Booking \\ "deluxe"\t\n room')
@example("\x1c\x1d\x1e\x1f\x85\xa0 x")  # separators str.split() splits on
def test_goods_name_is_unchanged(description: str) -> None:
    assert orders.goods_name(description) == reference_goods_name(description)
