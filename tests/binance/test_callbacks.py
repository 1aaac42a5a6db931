"""Callback verification: what is accepted, what is refused and how, and big ids kept exact."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import payments_core
from payments_binance import protocol, webhooks
from payments_core import (
    CallbackDeferred,
    CallbackError,
    CallbackPayloadError,
    CallbackVerificationError,
    Money,
    PaymentsError,
    PaymentStatus,
)

from .conftest import API_KEY, FakeClock, MockBinance, callback_headers, envelope, public_pem

BIG_ID = "29383937493038367292"  # above 2**64, from Binance's own sample


def notification(
    *,
    biz_type: str = "PAY",
    biz_status: str = "PAY_SUCCESS",
    biz_id: str = BIG_ID,
    with_str: bool = True,
    payment_info: str = "",
) -> bytes:
    inner = (
        '{"merchantTradeNo":"booking42abcdef","productType":"Z000","productName":"Booking",'
        '"transactTime":1714564790000,"tradeType":"WEB","totalFee":1.00000000,'
        '"currency":"USDT","transactionId":"M_R_282737362839373","commission":0.00100000'
        + (f',"paymentInfo":{payment_info}' if payment_info else "")
        + "}"
    )
    text = f'{{"bizType":"{biz_type}","bizId":{biz_id},'
    if with_str:
        text += f'"bizIdStr":"{biz_id}",'
    text += f'"bizStatus":"{biz_status}","data":{json.dumps(inner)}}}'
    return text.encode()


Deliver = Callable[..., payments_core.CallbackResult]


@pytest.fixture
def deliver(
    payments: payments_core.Payments, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> Deliver:
    def send(body: bytes, headers: dict[str, str] | None = None) -> payments_core.CallbackResult:
        if headers is None:
            headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms)
        return payments.handle_callback("binance", headers, body)

    return send


def test_valid_callback_is_accepted_with_the_documented_ack(
    deliver: Deliver, binance: MockBinance
) -> None:
    result = deliver(notification())
    assert result.reply.status_code == 200
    assert result.reply.body == b'{"returnCode":"SUCCESS","returnMessage":null}'
    event = result.event
    assert event is not None
    assert event.status is PaymentStatus.PAID
    assert event.amount == Money("1.00000000", "USDT")
    assert event.provider_reference == "booking42abcdef"
    assert event.transaction_id == "M_R_282737362839373"
    assert event.event_id == f"binance:{BIG_ID}:PAY_SUCCESS"
    assert event.fee == Money("0.001", "USDT")  # commission, in the order's currency
    assert event.paid is None  # no paymentInfo: nothing said of what was paid
    assert binance.count(protocol.PATH_CERTIFICATES) == 1


@pytest.mark.parametrize(
    ("payment_info", "paid"),
    [
        (
            '{"payerId":1,"payMethod":"funding","paymentInstructions":'
            '[{"currency":"BTC","amount":0.00001500,"price":66666.67}]}',
            Money("0.000015", "BTC"),
        ),
        (  # paid in two parts of one coin: their sum
            '{"paymentInstructions":[{"currency":"USDC","amount":0.4,"price":1},'
            '{"currency":"USDC","amount":0.6,"price":1}]}',
            Money("1.00", "USDC"),
        ),
        (  # two coins at once: no single amount says it
            '{"paymentInstructions":[{"currency":"USDC","amount":0.4,"price":1},'
            '{"currency":"BNB","amount":0.001,"price":600}]}',
            None,
        ),
        ('{"paymentInstructions":[{"amount":"lots"}]}', None),
        ('"not an object"', None),
    ],
)
def test_what_the_payer_paid_is_read_from_payment_info_and_never_refuses(
    deliver: Deliver, payment_info: str, paid: Money | None
) -> None:
    result = deliver(notification(payment_info=payment_info))
    assert result.reply.status_code == 200
    assert result.event is not None
    assert result.event.status is PaymentStatus.PAID
    assert result.event.paid == paid


def test_key_is_cached_after_the_first_fetch(deliver: Deliver, binance: MockBinance) -> None:
    deliver(notification())
    deliver(notification(biz_status="PAY_CLOSED"))
    assert binance.count(protocol.PATH_CERTIFICATES) == 1


def test_pay_closed_means_closed(deliver: Deliver) -> None:
    event = deliver(notification(biz_status="PAY_CLOSED")).event
    assert event is not None
    assert event.status is PaymentStatus.CLOSED


def _with_amount(biz_status: str, amount: dict[str, object]) -> bytes:
    """A notification whose data states ``amount`` (``totalFee`` and ``currency``) instead."""
    body = json.loads(notification(biz_status=biz_status))
    data = {k: v for k, v in json.loads(body["data"]).items() if k not in ("totalFee", "currency")}
    body["data"] = json.dumps(data | amount)
    return json.dumps(body).encode()


UNCHECKABLE = {
    "over-precise": {"totalFee": "1.000000001", "currency": "USDT"},
    "unknown-currency": {"totalFee": "0.5", "currency": "DOGE"},
    "negative": {"totalFee": "-1", "currency": "USDT"},
    "no-fee": {"currency": "USDT"},
    "no-currency": {"totalFee": "1.00000000"},
}


@pytest.mark.parametrize("text", ["M\ud800", "M\x00"], ids=["lone-surrogate", "nul"])
@pytest.mark.parametrize("field", ["merchantTradeNo", "transactionId"])
def test_text_a_ledger_cannot_store_is_refused(field: str, text: str, deliver: Deliver) -> None:
    body = json.loads(notification())
    body["data"] = json.dumps(json.loads(body["data"]) | {field: text})
    error = _refused(deliver, CallbackPayloadError, json.dumps(body).encode(), None)
    assert f"{field} is not valid text" in str(error)


@pytest.mark.parametrize("amount", UNCHECKABLE.values(), ids=UNCHECKABLE)
def test_a_payment_whose_amount_cannot_be_checked_is_refused(
    amount: dict[str, object], deliver: Deliver
) -> None:
    error = _refused(deliver, CallbackPayloadError, _with_amount("PAY_SUCCESS", amount), None)
    assert "amount cannot be checked" in str(error)


@pytest.mark.parametrize("amount", UNCHECKABLE.values(), ids=UNCHECKABLE)
def test_a_closed_order_is_closed_whatever_its_amount_says(
    amount: dict[str, object], deliver: Deliver
) -> None:
    event = deliver(_with_amount("PAY_CLOSED", amount)).event
    assert event is not None
    assert event.status is PaymentStatus.CLOSED
    assert event.amount is None


@pytest.mark.parametrize("with_str", [True, False], ids=["bizIdStr", "bizId-only"])
def test_biz_id_above_2_pow_53_survives_exactly(deliver: Deliver, with_str: bool) -> None:
    event = deliver(notification(with_str=with_str)).event
    assert event is not None
    assert event.provider_order_id == BIG_ID


def _refused(
    deliver: Deliver, error: type[CallbackError], body: bytes, headers: dict[str, str] | None
) -> CallbackError:
    with pytest.raises(error) as caught:
        deliver(body, headers)
    reply = caught.value.reply
    assert 400 <= reply.status_code < 500
    assert json.loads(reply.body)["returnCode"] == "FAIL"
    return caught.value


def test_one_changed_byte_is_refused(
    deliver: Deliver, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    body = notification()
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms)
    tampered = body.replace(b"1.00000000", b"9.00000000")
    _refused(deliver, CallbackVerificationError, tampered, headers)


def test_re_serialised_body_is_refused(
    deliver: Deliver, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    body = notification()
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms)
    reserialised = json.dumps(json.loads(body)).encode()  # same content, other bytes
    assert reserialised != body
    _refused(deliver, CallbackVerificationError, reserialised, headers)


@pytest.mark.parametrize(
    "missing",
    [
        protocol.HEADER_TIMESTAMP,
        protocol.HEADER_NONCE,
        protocol.HEADER_CERTIFICATE_SN,
        protocol.HEADER_SIGNATURE,
    ],
)
def test_missing_header_is_refused(
    missing: str, deliver: Deliver, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    body = notification()
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms)
    del headers[missing]
    error = _refused(deliver, CallbackVerificationError, body, headers)
    assert missing in str(error)


@pytest.mark.parametrize(
    ("header", "value"),
    [(protocol.HEADER_TIMESTAMP, "12:00"), (protocol.HEADER_SIGNATURE, "not base64!")],
)
def test_malformed_header_is_refused(
    header: str, value: str, deliver: Deliver, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    body = notification()
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms)
    headers[header] = value
    _refused(deliver, CallbackVerificationError, body, headers)


def test_wrong_key_is_refused(deliver: Deliver, clock: FakeClock) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = notification()
    _refused(
        deliver,
        CallbackVerificationError,
        body,
        callback_headers(other, body, timestamp_ms=clock.ms),
    )


def test_unknown_serial_fetches_once_then_not_again_within_the_cooldown(
    deliver: Deliver, binance: MockBinance, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    deliver(notification())  # fills the cache: fetch 1
    clock.advance(61)  # past the default 60 s cool-down (and within the 300 s tolerance)
    body = notification()
    for serial in ("FORGED1", "FORGED2"):
        headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms, serial=serial)
        error = _refused(deliver, CallbackVerificationError, body, headers)
        assert "serial" in str(error)
    assert binance.count(protocol.PATH_CERTIFICATES) == 2  # one refresh for both forgeries
    clock.advance(61)
    assert deliver(notification()).event is not None  # the real serial still verifies, no fetch
    assert binance.count(protocol.PATH_CERTIFICATES) == 2


def test_a_callback_arriving_while_the_certificates_are_fetched_is_deferred_not_refused(
    deliver: Deliver, binance: MockBinance
) -> None:
    body = notification()
    deferred: list[Exception] = []

    def another_callback_arrives(request: httpx.Request) -> None:
        if request.url.path == protocol.PATH_CERTIFICATES and not deferred:
            with pytest.raises(CallbackDeferred) as caught:
                deliver(body)
            deferred.append(caught.value)

    binance.meanwhile = another_callback_arrives
    assert deliver(body).event is not None  # the first fetches the keys and verifies
    assert len(deferred) == 1
    assert not isinstance(deferred[0], CallbackError)  # not refused: to be delivered again
    assert binance.count(protocol.PATH_CERTIFICATES) == 1
    assert deliver(body).event is not None  # the redelivery verifies from the cache
    assert binance.count(protocol.PATH_CERTIFICATES) == 1


def test_a_fetch_landing_between_two_looks_does_not_make_a_listed_serial_unknown(
    payments: payments_core.Payments,
    binance: MockBinance,
    rsa_key: rsa.RSAPrivateKey,
    clock: FakeClock,
) -> None:
    """Callback A fetches the keys; callback B (another thread) misses the cache just before
    A's fetch lands and finds the fetch's cool-down claimed just after: B must verify."""
    provider = payments.host.pm.get_plugin("binance")
    cache = provider._certificates
    body = notification()
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms)
    a = payments.provider("binance").handle_callback(payments_core.CallbackRequest(headers, body))
    assert a is not None
    fetch = next(a)  # A has claimed the fetch and sent it
    assert fetch.url.endswith(protocol.PATH_CERTIFICATES)
    claim = cache.claim_fetch

    def a_lands_then_claim(now: float, cooldown: float) -> bool:
        answer = payments_core.HttpResponse(200, {}, envelope(binance.certificates))
        with pytest.raises(StopIteration):
            a.send(answer)  # A verifies; the keys are cached and the list settled
        return claim(now, cooldown)

    cache.claim_fetch = a_lands_then_claim
    assert payments.handle_callback("binance", headers, body).event is not None


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(500, text="busy"), httpx.ConnectError("refused")],
    ids=["error-answer", "unreachable"],
)
def test_after_a_failed_fetch_callbacks_are_deferred_until_a_fetch_succeeds(
    failure: httpx.Response | Exception,
    deliver: Deliver,
    binance: MockBinance,
    clock: FakeClock,
) -> None:
    binance.queue(protocol.PATH_CERTIFICATES, failure)
    with pytest.raises(PaymentsError) as first:
        deliver(notification())
    assert not isinstance(first.value, CallbackError)
    with pytest.raises(CallbackDeferred):  # within the cool-down: no second fetch, no refusal
        deliver(notification())
    assert binance.count(protocol.PATH_CERTIFICATES) == 1
    clock.advance(61)
    assert deliver(notification()).event is not None
    assert binance.count(protocol.PATH_CERTIFICATES) == 2


def test_an_abandoned_fetch_does_not_leave_the_cache_waiting(
    payments: payments_core.Payments,
    rsa_key: rsa.RSAPrivateKey,
    binance: MockBinance,
    clock: FakeClock,
) -> None:
    body = notification()
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms)
    hooks = payments.provider("binance")
    operation = hooks.handle_callback(payments_core.CallbackRequest(headers, body))
    assert operation is not None
    fetch = next(operation)  # the certificates request, never answered
    assert fetch.url.endswith(protocol.PATH_CERTIFICATES)
    operation.close()
    clock.advance(61)
    assert payments.handle_callback("binance", headers, body).event is not None
    assert binance.count(protocol.PATH_CERTIFICATES) == 1  # only the second was sent


def test_rotated_key_is_found_by_one_refresh(
    deliver: Deliver, binance: MockBinance, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    deliver(notification())
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    binance.certificates.append({"certSerial": "ROTATED", "certPublic": public_pem(new_key)})
    clock.advance(61)
    body = notification()
    rotated = callback_headers(new_key, body, timestamp_ms=clock.ms, serial="ROTATED")
    assert deliver(body, rotated).event is not None
    assert deliver(body, callback_headers(rsa_key, body, timestamp_ms=clock.ms)).event
    assert binance.count(protocol.PATH_CERTIFICATES) == 2


@pytest.mark.parametrize("offset_s", [-301, 301], ids=["stale", "future"])
def test_timestamp_outside_tolerance_is_refused(
    offset_s: int, deliver: Deliver, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    body = notification()
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms + offset_s * 1000)
    error = _refused(deliver, CallbackVerificationError, body, headers)
    assert ("stale" if offset_s < 0 else "future") in str(error)


def test_timestamp_tolerance_is_configurable(
    make_payments: Callable[..., payments_core.Payments],
    rsa_key: rsa.RSAPrivateKey,
    clock: FakeClock,
) -> None:
    payments = make_payments(timestamp_tolerance="10")
    body = notification()
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms - 11_000)
    with pytest.raises(CallbackVerificationError):
        payments.handle_callback("binance", headers, body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"bizType":"PAY",',
        b"\xff\xfe",
        b"[1,2]",
        b'{"bizType":"PAY","bizStatus":"PAY_SUCCESS","bizIdStr":"1","data":"{not json"}',
    ],
    ids=["truncated", "not-utf8", "not-an-object", "inner-data"],
)
def test_malformed_json_is_refused_after_verification(body: bytes, deliver: Deliver) -> None:
    error = _refused(deliver, CallbackPayloadError, body, None)
    assert error.reply.status_code == 400


def test_oversized_body_is_refused_before_anything_else(
    make_payments: Callable[..., payments_core.Payments], binance: MockBinance
) -> None:
    payments = make_payments(max_callback_bytes="1024")
    body = b"{" + b" " * 2000 + b"}"
    with pytest.raises(CallbackPayloadError) as caught:
        payments.handle_callback("binance", {}, body)
    assert caught.value.reply.status_code == 413
    assert binance.requests == []


@pytest.mark.parametrize(
    "body",
    [notification(biz_type="SOMETHING_NEW"), notification(biz_status="PAY_FAIL")],
    ids=["bizType", "bizStatus"],
)
def test_unknown_kind_is_refused(body: bytes, deliver: Deliver) -> None:
    _refused(deliver, CallbackPayloadError, body, None)


def test_documented_other_kind_is_acknowledged_without_an_event(deliver: Deliver) -> None:
    result = deliver(notification(biz_type="PAYOUT", biz_status="SUCCESS"))
    assert result.event is None
    assert result.reply.status_code == 200


@pytest.mark.parametrize("kind", sorted(protocol.OTHER_BIZ_TYPES))
def test_every_documented_kind_has_a_reader(kind: str, deliver: Deliver) -> None:
    # The readers table is what decides: a documented kind is acknowledged, never refused.
    result = deliver(notification(biz_type=kind, biz_status="ANYTHING"))
    assert result.event is None
    assert result.reply.body == webhooks.ACK.body


def test_disagreeing_ids_are_refused(deliver: Deliver) -> None:
    body = notification().replace(f'"bizIdStr":"{BIG_ID}"'.encode(), b'"bizIdStr":"1"')
    _refused(deliver, CallbackPayloadError, body, None)


def test_cert_fetch_is_signed_like_any_request(deliver: Deliver, binance: MockBinance) -> None:
    deliver(notification())
    (fetch,) = binance.sent(protocol.PATH_CERTIFICATES)
    assert fetch.content == b"{}"
    assert fetch.headers[protocol.HEADER_CERTIFICATE_SN] == API_KEY
    assert len(fetch.headers[protocol.HEADER_SIGNATURE]) == 128


@pytest.mark.parametrize(
    "data",
    ['"\\ud800"', '"{\\"merchantTradeNo\\":\\"a\\ud800\\"}"'],
    ids=["lone-surrogate", "surrogate-in-a-value"],
)
def test_a_data_string_utf8_cannot_carry_is_refused_as_not_json(
    data: str, deliver: Deliver
) -> None:
    # The outer document's \ud800 escape makes a str no UTF-8 encoder takes: refused like
    # any data that is not JSON, never a crash.
    body = (
        '{"bizType":"PAY","bizStatus":"PAY_SUCCESS","bizIdStr":"1","data":' + data + "}"
    ).encode()
    error = _refused(deliver, CallbackPayloadError, body, None)
    assert error.reply.status_code == 400
    assert b"data is not valid JSON" in error.reply.body
