"""The sandbox's JSON writer: Decimals as exact number literals, in one pass of the C encoder."""

from __future__ import annotations

import json
from decimal import Decimal
from types import MappingProxyType

import pytest

from payments_binance.sandbox import jsonwire


def test_decimals_are_written_as_their_exact_digits() -> None:
    value = {
        "totalFee": Decimal("0.88000000"),
        "list": [Decimal("1"), Decimal("-2.50"), ("tuple", None, True)],
        "view": MappingProxyType({"big": 2**70, "text": 'é"\\'}),
    }
    raw = jsonwire.dumps(value)
    assert raw == (
        b'{"totalFee":0.88000000,"list":[1,-2.50,["tuple",null,true]],'
        b'"view":{"big":1180591620717411303424,"text":"\xc3\xa9\\"\\\\"}}'
    )
    assert jsonwire.loads(raw)["totalFee"] == Decimal("0.88000000")


def test_a_string_shaped_like_the_decimal_mark_stays_a_string() -> None:
    value = {"passThroughInfo": "\x000\x00", "amount": Decimal("1.5"), "more": "\x001\x00"}
    parsed = json.loads(jsonwire.dumps(value), parse_float=Decimal)
    assert parsed == value


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), object(), b"bytes"])
def test_values_json_cannot_carry_are_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        jsonwire.dumps({"value": bad})
