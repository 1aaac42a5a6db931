"""No secret, signature or key material in reprs, error messages or DEBUG logs (R6)."""

from __future__ import annotations

import logging

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import payments_core
from payments_binance import protocol
from payments_core import CallbackError, Money, OrderRequest, PaymentsError

from .conftest import (
    API_KEY,
    API_SECRET,
    FakeClock,
    MockBinance,
    callback_headers,
    ok,
    refusal,
)


def test_nothing_secret_leaks_during_create_and_callback_flows(
    payments: payments_core.Payments,
    binance: MockBinance,
    rsa_key: rsa.RSAPrivateKey,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    request = OrderRequest(
        reference="booking-1", price=Money("1.00", "USD"), callback_url="https://lc.example/cb"
    )
    binance.queue(
        protocol.PATH_CREATE_ORDER_V3,
        ok({"prepayId": "1234567890123456789"}),
        *[refusal("400002", "Signature not valid", status=400) for _ in range(4)],
    )
    payments.create_order(request)
    with pytest.raises(PaymentsError) as failed:
        payments.create_order(attrs.evolve(request, reference="booking-2"))
    messages += [str(failed.value), repr(failed.value)]

    body = b'{"bizType":"PAY","bizIdStr":"1","bizStatus":"PAY_SUCCESS","data":"{}"}'
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms)
    with pytest.raises(CallbackError) as refused:
        payments.handle_callback("binance", headers, body + b" ")
    messages += [str(refused.value), repr(refused.value), refused.value.reply.body.decode()]
    with pytest.raises(CallbackError) as missing_trade_no:
        payments.handle_callback("binance", headers, body)
    messages.append(str(missing_trade_no.value))

    provider = payments.host.provider("binance")
    plugin = dict(payments.host.plugins())["binance"]
    messages += [repr(plugin), repr(provider), repr(payments)]
    signatures = [r.headers[protocol.HEADER_SIGNATURE] for r in binance.requests]
    signatures.append(headers[protocol.HEADER_SIGNATURE])
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for text in [*messages, logged]:
        assert API_SECRET not in text
        assert API_KEY not in text
        for signature in signatures:
            assert signature not in text
        assert "PRIVATE KEY" not in text
    assert caplog.records, "the flow logged at DEBUG, so the check above saw real output"
