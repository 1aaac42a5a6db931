"""The Merchant API's JSON on the client side: exact numbers read and written, defects refused."""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType

import pytest

from payments_binance import wire


def test_numbers_are_read_exactly_and_never_as_floats() -> None:
    value = wire.loads(b'{"prepayId":29383937493038367292,"totalFee":1.00000000,"n":[1,-2.5]}')
    assert value == {
        "prepayId": 29383937493038367292,
        "totalFee": Decimal("1.00000000"),
        "n": [1, Decimal("-2.5")],
    }
    assert str(value["totalFee"]) == "1.00000000"
    assert type(value["n"][0]) is int


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "Expecting value"),
        (b"   ", "Expecting value"),
        (b"{} x", "Extra data"),
        (b"{}\x0b", "Extra data"),  # a vertical tab is not JSON whitespace
        (b"\xef\xbb\xbf{}", "byte order mark"),
        (b"[NaN]", "NaN is not valid JSON"),
        (b"-Infinity", "-Infinity is not valid JSON"),
        (b"\xff{}", "utf-8"),
        (b'"\xed\xa0\x80"', "utf-8"),  # a surrogate encoded as UTF-8 is not UTF-8
        (b"[" * 100_000, "recursion"),  # too deep: refused, not a crash
    ],
)
def test_bytes_that_are_not_one_json_document_are_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(wire.MalformedJSON, match=reason):
        wire.loads(raw)


def test_surrounding_json_whitespace_is_allowed() -> None:
    assert wire.loads(b" \t\r\n{} \n") == {}


@pytest.mark.parametrize("text", ["\ud800", '{"a":"\udfff"}', '{"merchantTradeNo":"x\ud83d"}'])
def test_loads_text_refuses_text_utf8_cannot_carry(text: str) -> None:
    with pytest.raises(wire.MalformedJSON, match="surrogates not allowed"):
        wire.loads_text(text)


@pytest.mark.parametrize("text", ['{"a":1} ', "\ufeff{}", "[1.50]", "{} x"])
def test_loads_text_reads_and_refuses_as_loads_of_its_utf8_bytes(text: str) -> None:
    def outcome(load: object, value: object) -> object:
        try:
            return ("ok", load(value))  # type: ignore[operator]
        except wire.MalformedJSON as error:
            return ("refused", str(error))

    assert outcome(wire.loads_text, text) == outcome(wire.loads, text.encode("utf-8"))


def test_dumps_writes_compact_utf8_with_decimals_as_their_exact_digits() -> None:
    value = {
        "orderAmount": Decimal("1.00"),
        "tiny": Decimal("1E-8"),
        "list": [1, -2, ("tuple", None, True, False)],
        "view": MappingProxyType({"big": 2**70, "text": 'Café "\\ ☕'}),
        7: "key made a string",
    }
    assert (
        wire.dumps(value)
        == (
            '{"orderAmount":1.00,"tiny":0.00000001,"list":[1,-2,["tuple",null,true,false]],'
            '"view":{"big":1180591620717411303424,"text":"Café \\"\\\\ ☕"},'
            '"7":"key made a string"}'
        ).encode()
    )
    assert wire.loads(wire.dumps(value))["orderAmount"] == Decimal("1.00")


@pytest.mark.parametrize(
    "bad", [Decimal("NaN"), Decimal("Infinity"), 1.5, b"bytes", object()], ids=repr
)
def test_dumps_refuses_what_json_cannot_carry_exactly(bad: object) -> None:
    with pytest.raises(TypeError):
        wire.dumps({"value": [bad]})
