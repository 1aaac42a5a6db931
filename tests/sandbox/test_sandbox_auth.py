"""Request checks as Binance makes them: raw-byte HMAC, headers, nonce, window, keys, envelope."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable

import pytest

from payments_binance import protocol

from .conftest import KEY, SECRET, Running, fresh_nonce, hmac_signature, signed_headers, v3_order

CREATE = protocol.PATH_CREATE_ORDER_V3


def fail_code(response: object) -> str:
    body = response.json()  # type: ignore[attr-defined]
    assert body["status"] == "FAIL"
    assert isinstance(body["code"], str)
    code: str = body["code"]
    return code


def test_spaced_body_with_unicode_escapes_is_accepted_and_compact_reserialisation_refused(
    running: Running,
) -> None:
    order = v3_order("SPACED1", description="Caf\u00e9 \u2615 booking")
    spaced = json.dumps(order).encode()  # ", " and ": " separators, non-ASCII as \uXXXX
    assert b", " in spaced
    assert b"\\u00e9" in spaced
    headers = signed_headers(spaced)
    accepted = running.merchant.http.post(CREATE, content=spaced, headers=headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["code"] == "000000"

    compact = json.dumps(
        v3_order("SPACED2", description="Caf\u00e9 \u2615 booking"),
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    original = signed_headers(
        json.dumps(v3_order("SPACED2", description="Caf\u00e9 \u2615 booking")).encode()
    )
    refused = running.merchant.http.post(CREATE, content=compact, headers=original)
    assert refused.status_code == 406
    assert refused.json() == {
        "status": "FAIL",
        "code": "400002",
        "errorMessage": "Signature for this request is not valid.",
    }
    assert [o.request.merchant_trade_no for o in running.sandbox.orders.values()] == ["SPACED1"]


def test_reference_vector_v2_is_accepted(start: Callable[..., Running]) -> None:
    # Section 13, V2: fixed secret, timestamp, nonce and body with the documented signature.
    secret = "k3v9q2m8x7w1r5t6y4u0p2o9i8l7j6h5g4f3d2s1a0z9x8c7v6b5n4m3q2w1e0r9"
    run = start(api_secret=secret, clock=lambda: 1_700_000_000_000)
    body = (
        b'{"env":{"terminalType":"WEB"},"merchantTradeNo":"ORDER20231114001","orderAmount":"10.50",'
        b'"currency":"USDT","description":"Test order","goodsDetails":[{"goodsType":"02",'
        b'"goodsCategory":"Z000","referenceGoodsId":"SKU001","goodsName":"Test item"}]}'
    )
    assert len(body) == 245
    headers = {
        "content-type": "application/json",
        protocol.HEADER_TIMESTAMP: "1700000000000",
        protocol.HEADER_NONCE: "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEf",
        protocol.HEADER_CERTIFICATE_SN: KEY,
        protocol.HEADER_SIGNATURE: (
            "3D515D84F3DDF1EFDDF39CE097C3E6FEA652906FF24636A3E1C99F7E7FDBAF34"
            "827F0AF6C9AB256EFA694EFEABBBB9EDEE948EC3B9896E1898C9E11FE9CD5776"
        ),
    }
    response = run.merchant.http.post(CREATE, content=body, headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "signature"),
    [
        (
            b"{}",
            "0D841A54687046056B081E622D85FBF83E60B0C682A353242EFC677A26FBF6B3"
            "3271A33A1E8E938830D0CDCF1E8A68564E7CF8CC168D975EBE806398409A12AC",
        ),
        (
            b"",
            "65D8A884026E1B9EA2A8C33C1C0543A04E882EC5931828E56962BF95C9B8C41D"
            "73046914CECA09E2DFAC32C2B2B6F8C0624B4413D581E0FB71688CA7C74E7E3F",
        ),
    ],
    ids=["braces", "empty"],
)
def test_reference_vector_v3_certificates_with_either_body(
    start: Callable[..., Running], body: bytes, signature: str
) -> None:
    secret = "k3v9q2m8x7w1r5t6y4u0p2o9i8l7j6h5g4f3d2s1a0z9x8c7v6b5n4m3q2w1e0r9"
    run = start(api_secret=secret, clock=lambda: 1_700_000_000_123)
    headers = {
        "content-type": "application/json",
        protocol.HEADER_TIMESTAMP: "1700000000123",
        protocol.HEADER_NONCE: "zYxWvUtSrQpOnMlKjIhGfEdCbAzYxWvU",
        protocol.HEADER_CERTIFICATE_SN: KEY,
        protocol.HEADER_SIGNATURE: signature,
    }
    response = run.merchant.http.post(protocol.PATH_CERTIFICATES, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"][0]["certSerial"] == run.sandbox.certificate_serial


@pytest.mark.parametrize(
    "header",
    [
        protocol.HEADER_TIMESTAMP,
        protocol.HEADER_NONCE,
        protocol.HEADER_CERTIFICATE_SN,
        protocol.HEADER_SIGNATURE,
    ],
)
def test_missing_header_is_400100(running: Running, header: str) -> None:
    body = json.dumps(v3_order("MISSING")).encode()
    headers = signed_headers(body)
    del headers[header]
    response = running.merchant.http.post(CREATE, content=body, headers=headers)
    assert (response.status_code, fail_code(response)) == (400, "400100")


@pytest.mark.parametrize(
    "nonce",
    ["short", "A" * 33, "abcdefghijklmnopqrstuvwxyz-12345", "abcdefghijklmnopqrstuvwxyz 12345"],
    ids=["short", "long", "dash", "space"],
)
def test_malformed_nonce_is_400100(running: Running, nonce: str) -> None:
    body = json.dumps(v3_order("NONCE")).encode()
    response = running.merchant.http.post(
        CREATE, content=body, headers=signed_headers(body, nonce=nonce)
    )
    assert fail_code(response) == "400100"


def test_hex_and_letter_nonces_are_accepted(running: Running) -> None:
    for i, nonce in enumerate(
        ["0123456789abcdef0123456789abcdef", "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEf"]
    ):
        body = json.dumps(v3_order(f"NONCEOK{i}")).encode()
        response = running.merchant.http.post(
            CREATE, content=body, headers=signed_headers(body, nonce=nonce)
        )
        assert response.status_code == 200, response.text


def test_unknown_api_key_is_400004(running: Running) -> None:
    body = json.dumps(v3_order("KEY")).encode()
    response = running.merchant.http.post(
        CREATE, content=body, headers=signed_headers(body, key="someone-else")
    )
    assert (response.status_code, fail_code(response)) == (401, "400004")


def test_wrong_secret_is_400002(running: Running) -> None:
    body = json.dumps(v3_order("SECRET")).encode()
    response = running.merchant.http.post(
        CREATE, content=body, headers=signed_headers(body, secret="not-the-secret")
    )
    assert fail_code(response) == "400002"


def test_lowercase_signature_is_refused_unless_allowed(start: Callable[..., Running]) -> None:
    body = json.dumps(v3_order("LOWER")).encode()
    strict = start()
    headers = signed_headers(body)
    headers[protocol.HEADER_SIGNATURE] = headers[protocol.HEADER_SIGNATURE].lower()
    assert fail_code(strict.merchant.http.post(CREATE, content=body, headers=headers)) == "400002"
    lenient = start(accept_lowercase_signature=True)
    headers[protocol.HEADER_NONCE] = fresh_nonce()
    ts, nonce = headers[protocol.HEADER_TIMESTAMP], headers[protocol.HEADER_NONCE]
    headers[protocol.HEADER_SIGNATURE] = hmac_signature(SECRET, ts, nonce, body).lower()
    assert lenient.merchant.http.post(CREATE, content=body, headers=headers).status_code == 200


def test_missing_trailing_newline_in_payload_is_400002(running: Running) -> None:
    body = json.dumps(v3_order("NOLF")).encode()
    headers = signed_headers(body)
    ts, nonce = headers[protocol.HEADER_TIMESTAMP], headers[protocol.HEADER_NONCE]
    payload = f"{ts}\n{nonce}\n".encode() + body  # no trailing LF
    headers[protocol.HEADER_SIGNATURE] = (
        hmac.new(SECRET.encode(), payload, hashlib.sha512).hexdigest().upper()
    )
    assert fail_code(running.merchant.http.post(CREATE, content=body, headers=headers)) == "400002"


@pytest.mark.parametrize("offset_ms", [-1_001, 1_001, -3_600_000], ids=["past", "future", "hour"])
def test_timestamp_outside_strict_window_is_400003(
    start: Callable[..., Running], offset_ms: int
) -> None:
    now = 1_750_000_000_000
    run = start(strict=True, clock=lambda: now)
    body = json.dumps(v3_order("STALE")).encode()
    response = run.merchant.http.post(
        CREATE, content=body, headers=signed_headers(body, timestamp=now + offset_ms)
    )
    assert (response.status_code, fail_code(response)) == (406, "400003")


def test_timestamp_inside_strict_window_is_accepted(start: Callable[..., Running]) -> None:
    now = 1_750_000_000_000
    run = start(strict=True, clock=lambda: now)
    body = json.dumps(v3_order("INWINDOW")).encode()
    response = run.merchant.http.post(
        CREATE, content=body, headers=signed_headers(body, timestamp=now - 1_000)
    )
    assert response.status_code == 200, response.text


def test_timestamp_in_seconds_is_400003(running: Running) -> None:
    body = json.dumps(v3_order("SECONDS")).encode()
    response = running.merchant.http.post(
        CREATE, content=body, headers=signed_headers(body, timestamp=1_750_000_000)
    )
    assert fail_code(response) == "400003"


def test_reused_nonce_is_400001(running: Running) -> None:
    body = json.dumps(v3_order("REPLAY")).encode()
    headers = signed_headers(body)
    first = running.merchant.http.post(CREATE, content=body, headers=headers)
    assert first.status_code == 200
    again = running.merchant.http.post(CREATE, content=body, headers=headers)
    assert fail_code(again) == "400001"


@pytest.mark.parametrize(
    ("method", "content_type", "body"),
    [
        ("GET", "application/json", b""),
        ("PUT", "application/json", b"{}"),
        ("POST", None, b"{}"),
        ("POST", "text/plain", b"{}"),
        ("POST", "application/json", b""),
    ],
    ids=["get", "put", "no-content-type", "text-plain", "no-body"],
)
def test_system_envelope(
    running: Running, method: str, content_type: str | None, body: bytes
) -> None:
    headers = signed_headers(body)
    if content_type is None:
        del headers["content-type"]
    else:
        headers["content-type"] = content_type
    response = running.merchant.http.request(method, CREATE, content=body, headers=headers)
    assert response.json() == {
        "status": "ERROR",
        "type": "SYS",
        "code": "100001001",
        "errorData": "System abnormality",
    }


def test_charset_parameter_in_content_type_is_accepted(running: Running) -> None:
    response = running.merchant.post(
        CREATE, v3_order("CHARSET"), **{"content-type": "application/json;charset=utf-8"}
    )
    assert response.status_code == 200, response.text


def test_body_too_large_is_400104(start: Callable[..., Running]) -> None:
    run = start(max_body_bytes=1024)
    response = run.merchant.post(CREATE, v3_order("LARGE", description="x" * 2000))
    assert (response.status_code, fail_code(response)) == (413, "400104")


def test_unknown_path_gets_cdn_403_html(running: Running) -> None:
    response = running.merchant.post("/binancepay/openapi/v9/order", v3_order("PATH"))
    assert response.status_code == 403
    assert "request could not be satisfied" in response.text


def test_several_credentials_are_separate_merchants(start: Callable[..., Running]) -> None:
    run = start(credentials={"second-key": "second-secret"})
    first = run.merchant.create("SHARED1")
    run.merchant.key, run.merchant.secret = "second-key", "second-secret"
    second = run.merchant.create("SHARED1")  # same trade number, other merchant: allowed
    assert first["prepayId"] != second["prepayId"]
    response = run.merchant.post(protocol.PATH_QUERY_ORDER, {"prepayId": first["prepayId"]})
    assert fail_code(response) == "400202"


def test_error_http_status_is_configurable_and_body_unchanged(
    start: Callable[..., Running],
) -> None:
    uniform = start(error_http_status_all=200)
    response = uniform.merchant.post(CREATE, v3_order("BAD-NO"))
    assert (response.status_code, fail_code(response)) == (200, "400103")
    per_code = start(error_http_status={"400103": 422})
    response = per_code.merchant.post(CREATE, v3_order("BAD-NO"))
    assert (response.status_code, fail_code(response)) == (422, "400103")
