"""Request signing: the reference's section-13 vectors, and signed bytes are the sent bytes."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import string
from unittest import mock

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import payments_core
from payments_binance import protocol, signing
from payments_core import Money, OrderRequest, Secret

from .conftest import API_KEY, API_SECRET, FakeClock, MockBinance, ok

V_SECRET = Secret("k3v9q2m8x7w1r5t6y4u0p2o9i8l7j6h5g4f3d2s1a0z9x8c7v6b5n4m3q2w1e0r9")
V_TS = "1700000000000"
V_NONCE = "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEf"
V2_BODY = (
    b'{"env":{"terminalType":"WEB"},"merchantTradeNo":"ORDER20231114001","orderAmount":"10.50",'
    b'"currency":"USDT","description":"Test order","goodsDetails":[{"goodsType":"02",'
    b'"goodsCategory":"Z000","referenceGoodsId":"SKU001","goodsName":"Test item"}]}'
)

VECTORS = [
    pytest.param(
        Secret("uahr4nhailyq55yubuhuncnprfac73bcbz2qfafsevic1jruwunioxtoaozy122f"),
        "1611232922428",
        "5RhaTrZPhknNv0kDSA2UQ67cPMVNS4sA",
        b'{"merchantId":"98765987","subMerchantId":"98765987","merchantTradeNo":"9825382937292",'
        b'"totalFee":25.17,"productDetail":"Greentea ice cream cone","currency":"BUSD",'
        b'"returnUrl":"","tradeType":"APP","productType":"Food","productName":"Ice Cream"}',
        "253B9241C7331C0F02A0F5417BDDD4CD88124D3E188C0BA0E3EF121D36844B7F"
        "4D1A69AD8A1C3C7FF34901115E35A2530B672CF7430902E9862D69867689FD9F",
        id="V1-faq-busd",
    ),
    pytest.param(
        V_SECRET,
        V_TS,
        V_NONCE,
        V2_BODY,
        "3D515D84F3DDF1EFDDF39CE097C3E6FEA652906FF24636A3E1C99F7E7FDBAF34"
        "827F0AF6C9AB256EFA694EFEABBBB9EDEE948EC3B9896E1898C9E11FE9CD5776",
        id="V2-v3-create-compact",
    ),
    pytest.param(
        V_SECRET,
        V_TS,
        V_NONCE,
        json.dumps(json.loads(V2_BODY)).encode(),
        "03AC0D3D7D3E35E62F5E55E3CAD38C1D9A5CF85029DFBB8580F5A40D6536E3E4"
        "9A3C6BD2A443DE0DBDE74F38A76001EA6B01E55E3970456C29873E9684100B7D",
        id="V2b-connector-spacing",
    ),
    pytest.param(
        V_SECRET,
        "1700000000123",
        "zYxWvUtSrQpOnMlKjIhGfEdCbAzYxWvU",
        b"{}",
        "0D841A54687046056B081E622D85FBF83E60B0C682A353242EFC677A26FBF6B3"
        "3271A33A1E8E938830D0CDCF1E8A68564E7CF8CC168D975EBE806398409A12AC",
        id="V3-empty-object",
    ),
    pytest.param(
        V_SECRET,
        "1700000000123",
        "zYxWvUtSrQpOnMlKjIhGfEdCbAzYxWvU",
        b"",
        "65D8A884026E1B9EA2A8C33C1C0543A04E882EC5931828E56962BF95C9B8C41D"
        "73046914CECA09E2DFAC32C2B2B6F8C0624B4413D581E0FB71688CA7C74E7E3F",
        id="V3-empty-body",
    ),
    pytest.param(
        V_SECRET,
        V_TS,
        V_NONCE,
        '{"merchantTradeNo":"Q1","description":"Café ☕"}'.encode(),
        "A1E5544C2A1D7A45A2810A47AD82D940FC74E637505CB777589A84A69AC91B0C"
        "5628ECC0DA0C163C6C1D7957947EF5E9AB24015AE474F27645C1A84668A5206D",
        id="V4-utf8",
    ),
    pytest.param(
        V_SECRET,
        V_TS,
        V_NONCE,
        b'{"merchantTradeNo":"Q1","description":"Caf\\u00e9 \\u2615"}',
        "9BB147C58BCEB89ABBA80AB14E4F154C441F106A3669A97735AA467EBAFF0F0A"
        "35813DCE38D14613A7973722F059FBD2E5EA963CA2D685B2A39AEC41368328B8",
        id="V4-ascii-escapes",
    ),
]


@pytest.mark.parametrize(("secret", "timestamp", "nonce", "body", "expected"), VECTORS)
def test_sign_reproduces_reference_vectors(
    secret: Secret, timestamp: str, nonce: str, body: bytes, expected: str
) -> None:
    assert signing.sign(secret, timestamp, nonce, body) == expected


def test_v2_body_is_245_bytes_as_the_reference_states() -> None:
    assert len(V2_BODY) == 245


def test_nonce_is_32_letters_and_digits_and_fresh_each_time() -> None:
    nonces = {signing.new_nonce() for _ in range(50)}
    assert len(nonces) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", n) for n in nonces)


def test_timestamp_is_unix_milliseconds(clock: FakeClock) -> None:
    assert signing.timestamp_ms(clock.now()) == str(clock.ms) == "1714564800000"


def test_sent_bytes_are_the_signed_bytes_with_the_four_headers(
    payments: payments_core.Payments, binance: MockBinance, clock: FakeClock
) -> None:
    binance.queue(
        protocol.PATH_CREATE_ORDER_V3, ok({"prepayId": "383729303729303", "expireTime": 1})
    )
    request = OrderRequest(
        reference="booking-42",
        price=Money("1.00", "USD"),
        callback_url="https://leadscalendar.example/payments/binance",
        description="Café booking ☕",
    )
    payments.create_order(request)

    (sent,) = binance.sent(protocol.PATH_CREATE_ORDER_V3)
    headers = sent.headers
    assert headers["content-type"] == "application/json"
    assert headers[protocol.HEADER_TIMESTAMP] == str(clock.ms)
    assert re.fullmatch(r"[A-Za-z0-9]{32}", headers[protocol.HEADER_NONCE])
    assert headers[protocol.HEADER_CERTIFICATE_SN] == API_KEY
    payload = b"%s\n%s\n%s\n" % (
        headers[protocol.HEADER_TIMESTAMP].encode(),
        headers[protocol.HEADER_NONCE].encode(),
        sent.content,
    )
    independent = hmac.new(API_SECRET.encode(), payload, hashlib.sha512).hexdigest().upper()
    assert headers[protocol.HEADER_SIGNATURE] == independent
    assert b"Caf\xc3\xa9" in sent.content  # UTF-8 as sent, not re-escaped after signing
    assert b": " not in sent.content
    assert b", " not in sent.content


# -- the nonce ----------------------------------------------------------------------------------


def reference_nonce(random_bytes: list[bytes]) -> str:
    """The nonce as first written, drawing its bytes from ``random_bytes`` in turn."""
    alphabet = string.ascii_letters + string.digits
    unbiased_below = len(alphabet) * (256 // len(alphabet))
    chars: list[str] = []
    draws = iter(random_bytes)
    while len(chars) < 32:
        chars.extend(
            alphabet[byte % len(alphabet)] for byte in next(draws) if byte < unbiased_below
        )
    return "".join(chars[:32])


@given(st.lists(st.binary(min_size=64, max_size=64), min_size=40, max_size=40))
@example([bytes([255] * 64)] * 3 + [bytes(range(64))] * 37)  # whole draws rejected
@example([bytes([250] * 40 + list(range(24)))] * 40)  # 24 kept: a draw can fall short of 32
@example([bytes([247, 248] * 32)] * 40)  # the edges of the unbiased range
def test_the_nonce_maps_and_rejects_bytes_as_before(draws: list[bytes]) -> None:
    """The fast nonce keeps the reference's unbiased mapping: same random bytes, same nonce."""
    expected = reference_nonce(draws)
    supply = iter(draws)

    def token_bytes(n: int) -> bytes:
        assert n == 64
        return next(supply)

    with mock.patch.object(signing.secrets, "token_bytes", token_bytes):
        assert signing.new_nonce() == expected
