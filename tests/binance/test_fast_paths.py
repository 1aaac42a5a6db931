"""The provider's faster code paths against the plain code they replaced or bypass.

Each fast path must give exactly what the plain one gives, and refuse exactly what it refuses:
the plain versions are kept here (or are still the library's fallback) as the reference.
"""

from __future__ import annotations

import hashlib
import string
from typing import Any

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
