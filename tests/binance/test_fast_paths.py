"""The provider's faster code paths against the plain code they replaced or bypass.

Each fast path must give exactly what the plain one gives, and refuse exactly what it refuses:
the plain versions are kept here (or are still the library's fallback) as the reference.
"""

from __future__ import annotations

import hashlib
import string
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from payments_binance import orders, wire
from payments_binance import provider as provider_module
from payments_binance.settings import BinanceSettings
from payments_binance.trade_no import merchant_trade_no
from payments_core import HttpResponse, Secret

from .conftest import START, envelope
from .test_orders import CREATED, provider, seed_request

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
