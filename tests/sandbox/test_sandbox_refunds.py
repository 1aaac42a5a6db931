"""Refunds over loopback HTTP: rules and codes, idempotency, order states, PAY_REFUND webhooks."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments_binance import protocol
from payments_binance.sandbox import FaultProfile, RefundNotFound, validation
from payments_binance.sandbox.envelope import ApiError
from payments_binance.sandbox.state import NewOrder, OrderBook

from .conftest import Receiver, Running
from .test_sandbox_webhooks import public_keys, verify

REFUND = "/binancepay/openapi/order/refund"
REFUND_QUERY = "/binancepay/openapi/order/refund/query"


def paid_order(run: Running, trade_no: str, **overrides: Any) -> str:
    """Create and pay an order of 10.50 USDT; its prepay id."""
    prepay_id: str = run.merchant.create(trade_no, **overrides)["prepayId"]
    run.sandbox.pay(prepay_id)
    return prepay_id


def refund(run: Running, request_id: str, prepay_id: str, amount: str, **extra: str) -> Any:
    """POST a refund; the parsed answer (envelope) and its HTTP status."""
    body = {"refundRequestId": request_id, "prepayId": prepay_id, "refundAmount": amount, **extra}
    response = run.merchant.post(REFUND, body)
    return response.status_code, response.json()


def refunded(run: Running, request_id: str, prepay_id: str, amount: str, **extra: str) -> Any:
    """A refund that must succeed; its ``data``."""
    status, answer = refund(run, request_id, prepay_id, amount, **extra)
    assert (status, answer["code"]) == (200, "000000"), answer
    return answer["data"]


def error_code(run: Running, body: object) -> str:
    code: str = run.merchant.post(REFUND, body).json()["code"]
    return code


def test_partial_then_full_refund_moves_order_to_refunded_then_full_refunded(
    running: Running,
) -> None:
    prepay_id = paid_order(running, "RF1")
    first = refunded(running, "rf1-a", prepay_id, "4.00", refundReason="changed mind")
    assert first == {
        "refundRequestId": "rf1-a",
        "prepayId": prepay_id,
        "orderAmount": "10.50",
        "refundedAmount": "4.00",
        "refundAmount": "4.00",
        "remainingAttempts": 9,
        "payerOpenId": running.sandbox.orders[prepay_id].open_user_id,
        "duplicateRequest": "N",
        "refundId": first["refundId"],
        "refundCommission": "0",
        "refundedCommission": "0",
    }
    # Binance's own id of the refund: digits, stable, its own for each refund.
    assert first["refundId"].isdigit()
    assert refunded(running, "rf1-a", prepay_id, "4.00")["refundId"] == first["refundId"]
    assert running.merchant.query(prepayId=prepay_id)["status"] == "REFUNDED"
    second = refunded(running, "rf1-b", prepay_id, "6.5")
    assert second["refundId"] != first["refundId"]
    assert (second["refundedAmount"], second["refundAmount"], second["remainingAttempts"]) == (
        "10.50",
        "6.5",
        8,
    )
    query = running.merchant.query(prepayId=prepay_id)
    assert query["status"] == "FULL_REFUNDED"
    assert query["transactionId"].startswith("M_R_")  # still shown after the refund
    assert [r.refund_request_id for r in running.sandbox.refunds] == ["rf1-a", "rf1-b"]


def test_same_refund_request_id_returns_the_same_refund_never_a_second(running: Running) -> None:
    prepay_id = paid_order(running, "RF2")
    first = refunded(running, "rf2", prepay_id, "10.50")
    again = refunded(running, "rf2", prepay_id, "10.5")  # same amount, written differently
    assert again == {**first, "duplicateRequest": "Y"}
    assert len(running.sandbox.refunds) == 1
    assert running.sandbox.orders[prepay_id].refunded_amount == Decimal("10.50")
    stats = running.sandbox.stats()
    assert (stats["refunds_created"], stats["duplicate_refunds"]) == (1, 1)


@pytest.mark.parametrize("change", [{"refundAmount": "1.00"}, {"prepayId": "other"}])
def test_reused_refund_request_id_for_another_refund_is_refused(
    running: Running, change: dict[str, str]
) -> None:
    prepay_id = paid_order(running, "RF3")
    other = paid_order(running, "RF3B")
    refunded(running, "rf3", prepay_id, "2.00")
    body = {"refundRequestId": "rf3", "prepayId": prepay_id, "refundAmount": "2.00"}
    body.update({k: other if v == "other" else v for k, v in change.items()})
    assert error_code(running, body) == "400001"
    assert len(running.sandbox.refunds) == 1
    assert running.sandbox.orders[other].status == "PAID"


def test_refund_of_an_order_never_paid_is_400204(running: Running) -> None:
    open_order = running.merchant.create("RF4A")["prepayId"]
    closed = running.merchant.create("RF4B")["prepayId"]
    running.sandbox.cancel(closed)
    for prepay_id in (open_order, closed):
        status, answer = refund(running, f"rf4-{prepay_id}", prepay_id, "1.00")
        assert (status, answer["code"], answer["status"]) == (400, "400204", "FAIL")
    assert running.sandbox.refunds == ()
    assert running.merchant.query(prepayId=open_order)["status"] == "INITIAL"


def test_refund_of_an_expired_order_is_400204(start: Callable[..., Running]) -> None:
    now = [1_900_000_000_000]
    run = start(clock=lambda: now[0], timestamp_window_ms=10**13)
    prepay_id = run.merchant.create("RF5", orderExpireTime=now[0] + 60_000)["prepayId"]
    now[0] += 120_000
    assert run.merchant.query(prepayId=prepay_id)["status"] == "EXPIRED"
    _, answer = refund(run, "rf5", prepay_id, "1")
    assert answer["code"] == "400204"


def test_unknown_prepay_id_or_another_merchants_order_is_400301(
    start: Callable[..., Running],
) -> None:
    run = start(credentials={"key2": "secret2"})
    prepay_id = paid_order(run, "RF6")
    assert refund(run, "rf6", "123456789012345678", "1")[1]["code"] == "400301"
    run.merchant.key, run.merchant.secret = "key2", "secret2"
    assert refund(run, "rf6", prepay_id, "1")[1]["code"] == "400301"
    assert run.sandbox.refunds == ()


def test_more_than_remaining_is_400303_and_changes_nothing(running: Running) -> None:
    prepay_id = paid_order(running, "RF7")
    refunded(running, "rf7-a", prepay_id, "10.00")
    assert refund(running, "rf7-b", prepay_id, "0.51")[1]["code"] == "400303"
    refunded(running, "rf7-c", prepay_id, "0.50")
    assert refund(running, "rf7-d", prepay_id, "0.01")[1]["code"] == "400303"
    assert running.sandbox.orders[prepay_id].refunded_amount == Decimal("10.50")
    assert [r.refund_request_id for r in running.sandbox.refunds] == ["rf7-a", "rf7-c"]


def test_tenth_refund_takes_everything_left_and_an_eleventh_is_400302(running: Running) -> None:
    prepay_id = paid_order(running, "RF8")
    for i in range(9):
        data = refunded(running, f"rf8-{i}", prepay_id, "0.01")
        assert data["remainingAttempts"] == 9 - i
    last = refunded(running, "rf8-9", prepay_id, "0.01")
    assert (last["refundAmount"], last["refundedAmount"], last["remainingAttempts"]) == (
        "10.41",
        "10.50",
        0,
    )
    assert running.merchant.query(prepayId=prepay_id)["status"] == "FULL_REFUNDED"
    assert refund(running, "rf8-10", prepay_id, "0.01")[1]["code"] == "400302"
    # A retry of the last refund is still answered as a duplicate, not refused.
    assert refunded(running, "rf8-9", prepay_id, "0.01")["duplicateRequest"] == "Y"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"prepayId": "1", "refundAmount": "1"}, "400100"),
        ({"refundRequestId": "", "prepayId": "1", "refundAmount": "1"}, "400100"),
        ({"refundRequestId": "x" * 65, "prepayId": "1", "refundAmount": "1"}, "400101"),
        ({"refundRequestId": "r", "refundAmount": "1"}, "400100"),
        ({"refundRequestId": "r", "prepayId": "12a", "refundAmount": "1"}, "400100"),
        ({"refundRequestId": "r", "prepayId": "1" * 20, "refundAmount": "1"}, "400101"),
        ({"refundRequestId": "r", "prepayId": "1"}, "400100"),
        ({"refundRequestId": "r", "prepayId": "1", "refundAmount": "ten"}, "400100"),
        ({"refundRequestId": "r", "prepayId": "1", "refundAmount": True}, "400100"),
        ({"refundRequestId": "r", "prepayId": "1", "refundAmount": "0"}, "400102"),
        ({"refundRequestId": "r", "prepayId": "1", "refundAmount": "-1"}, "400102"),
        ({"refundRequestId": "r", "prepayId": "1", "refundAmount": "1.000000001"}, "400101"),
        (
            {
                "refundRequestId": "r",
                "prepayId": "1",
                "refundAmount": "1",
                "refundReason": "x" * 257,
            },
            "400101",
        ),
        (
            {"refundRequestId": "r", "prepayId": "1", "refundAmount": "1", "webhookUrl": "ftp://x"},
            "400101",
        ),
    ],
)
def test_malformed_refund_fields_get_their_codes(
    running: Running, body: dict[str, Any], code: str
) -> None:
    assert error_code(running, body) == code
    assert running.sandbox.refunds == ()


def test_amount_as_json_number_is_accepted(running: Running) -> None:
    prepay_id = paid_order(running, "RF9")
    raw = f'{{"refundRequestId":"rf9","prepayId":{prepay_id},"refundAmount":1.25}}'.encode()
    answer = running.merchant.post(REFUND, raw).json()
    assert answer["data"]["refundAmount"] == "1.25"


def test_refunded_order_cannot_be_closed(running: Running) -> None:
    prepay_id = paid_order(running, "RF10")
    refunded(running, "rf10", prepay_id, "1.00")
    answer = running.merchant.post(protocol.PATH_CLOSE_ORDER, {"prepayId": prepay_id}).json()
    assert answer["code"] == "400204"
    assert running.merchant.query(prepayId=prepay_id)["status"] == "REFUNDED"


def query_refund(run: Running, request_id: str) -> Any:
    return run.merchant.post(REFUND_QUERY, {"refundRequestId": request_id}).json()


def test_refund_query_reports_success_and_unknown_ids(running: Running) -> None:
    prepay_id = paid_order(running, "RF11")
    made = refunded(running, "rf11", prepay_id, "3.00")
    answer = query_refund(running, "rf11")
    del made["duplicateRequest"]
    assert answer["data"] == {**made, "refundStatus": "REFUND_SUCCESS"}
    assert query_refund(running, "nope")["code"] == "400202"
    assert running.merchant.post(REFUND_QUERY, {}).json()["code"] == "400100"


def test_pending_refund_settles_on_demand_success_or_fail(
    start: Callable[..., Running], receiver: Receiver
) -> None:
    run = start(refund_settle_delay_s=None)
    prepay_id = paid_order(run, "RF12", webhookUrl=receiver.url)
    receiver.wait_for(1)  # deliveries run side by side: each is awaited to pin their order
    refunded(run, "rf12-a", prepay_id, "4.00")
    refunded(run, "rf12-b", prepay_id, "6.50")
    assert query_refund(run, "rf12-a")["data"]["refundStatus"] == "REFUND_PENDING"
    assert run.merchant.query(prepayId=prepay_id)["status"] == "REFUNDING"
    # A pending refund holds its amount: nothing is left to refund meanwhile.
    assert refund(run, "rf12-c", prepay_id, "0.01")[1]["code"] == "400303"

    run.sandbox.settle_refund("rf12-a")
    receiver.wait_for(2)
    assert run.merchant.query(prepayId=prepay_id)["status"] == "REFUNDING"
    response = run.merchant.http.post("/sandbox/refunds/rf12-b/settle?outcome=fail")
    assert response.json()["refundStatus"] == "REFUND_FAIL"
    assert query_refund(run, "rf12-b")["data"]["refundStatus"] == "REFUND_FAIL"
    assert run.merchant.query(prepayId=prepay_id)["status"] == "REFUNDED"
    run.sandbox.settle_refund("rf12-b")  # settled already: nothing changes, nothing sent
    refunded(run, "rf12-c", prepay_id, "6.50")  # the failed amount can be refunded again

    run.sandbox.wait_for_webhooks_sync()
    statuses = [json.loads(h.body)["bizStatus"] for h in receiver.received]
    assert statuses == ["PAY_SUCCESS", "REFUND_SUCCESS", "REFUND_REJECTED"]
    with pytest.raises(RefundNotFound):
        run.sandbox.settle_refund("unknown")


def test_refund_webhook_is_signed_like_payments_and_sent_to_the_refund_url(
    running: Running, receiver: Receiver
) -> None:
    prepay_id = paid_order(running, "RF13", passThroughInfo="booking-7")
    refunded(running, "rf13", prepay_id, "2.50", webhookUrl=receiver.url)
    refunded(running, "rf13", prepay_id, "2.50", webhookUrl=receiver.url)  # duplicate: no hook
    running.sandbox.wait_for_webhooks_sync()
    [hook] = receiver.wait_for(1)
    verify(hook, public_keys(running))
    # The docs type a refund notification's bizId as text (a payment's as a number).
    assert f'"bizId":"{prepay_id}",'.encode() in hook.body
    body = json.loads(hook.body, parse_float=Decimal)
    assert (body["bizType"], body["bizIdStr"], body["bizStatus"]) == (
        "PAY_REFUND",
        prepay_id,
        "REFUND_SUCCESS",
    )
    inner = json.loads(body["data"], parse_float=Decimal)
    order = running.sandbox.orders[prepay_id]
    assert inner == {
        "merchantTradeNo": "RF13",
        "productType": "Z000",
        "productName": "Booking",
        "tradeType": "WEB",
        "totalFee": Decimal("10.50"),
        "currency": "USDT",
        "openUserId": order.open_user_id,
        "refundInfo": {
            "refundRequestId": "rf13",
            "prepayId": prepay_id,
            "orderAmount": "10.50",
            "refundedAmount": "2.50",
            "refundAmount": "2.50",
            "remainingAttempts": 9,
            "payerOpenId": order.open_user_id,
            "duplicateRequest": "N",
        },
    }


def test_refund_webhook_falls_back_to_the_orders_url_and_can_be_duplicated(
    start: Callable[..., Running], receiver: Receiver
) -> None:
    run = start(faults=FaultProfile(duplicate_webhook=1.0))
    prepay_id = paid_order(run, "RF14", webhookUrl=receiver.url)
    refunded(run, "rf14", prepay_id, "1.00")
    run.sandbox.wait_for_webhooks_sync()
    hooks = receiver.wait_for(4)
    refund_hooks = [h.body for h in hooks if b'"bizType":"PAY_REFUND"' in h.body]
    assert len(refund_hooks) == 2
    assert refund_hooks[0] == refund_hooks[1]  # the same event twice, not two refunds
    assert len(run.sandbox.refunds) == 1


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("rate_limit_retry_after", "429"),
        ("rate_limit", "429"),
        ("server_error", "5xx"),
        ("reset", "ReadError"),
        ("drop_response", "RemoteProtocolError"),
    ],
)
def test_faults_hit_refunds_and_a_retry_never_refunds_twice(
    start: Callable[..., Running], fault: str, expected: str
) -> None:
    run = start(faults=FaultProfile(**{fault: 1.0}))
    faults, run.sandbox.faults = run.sandbox.faults, None  # create and pay unfaulted
    prepay_id = paid_order(run, "RF16")
    run.sandbox.faults = faults
    body = {"refundRequestId": "rf16", "prepayId": prepay_id, "refundAmount": "5.00"}
    try:
        response = run.merchant.post(REFUND, body)
        seen = "5xx" if response.status_code >= 500 else str(response.status_code)
    except httpx.HTTPError as exc:
        seen = type(exc).__name__
    assert seen in expected.split("|")
    stored = 1 if fault == "drop_response" else 0
    assert len(run.sandbox.refunds) == stored
    run.sandbox.faults = None  # the fault clears; the client retries with the same id
    data = refunded(run, "rf16", prepay_id, "5.00")
    assert data["duplicateRequest"] == ("Y" if stored else "N")
    assert data["refundedAmount"] == "5.00"
    assert len(run.sandbox.refunds) == 1
    assert faults is not None
    assert [(record.target, record.kind.value) for record in faults.log] == [(REFUND, fault)]


def test_refund_with_a_settle_delay_settles_later_by_itself(
    start: Callable[..., Running], receiver: Receiver
) -> None:
    run = start(refund_settle_delay_s=0.3)
    prepay_id = paid_order(run, "RF17", webhookUrl=receiver.url)
    receiver.wait_for(1)  # under load the payment's delivery may outlast the settle delay
    refunded(run, "rf17", prepay_id, "1.00")
    hooks = receiver.wait_for(2)
    assert json.loads(hooks[1].body)["bizStatus"] == "REFUND_SUCCESS"
    [made] = run.sandbox.refunds
    assert made.settle_time is not None
    assert made.settle_time - made.create_time >= 250  # timers may fire a millisecond early
    assert query_refund(run, "rf17")["data"]["refundStatus"] == "REFUND_SUCCESS"
    assert run.merchant.query(prepayId=prepay_id)["status"] == "REFUNDED"


_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=80)
_refund_values = {
    "refundRequestId": _json_scalars | st.text(min_size=60, max_size=70),
    "prepayId": st.just("the order")
    | _json_scalars
    | st.integers(min_value=0, max_value=10**21).map(str),
    "refundAmount": _json_scalars
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.decimals(min_value=-10, max_value=20, places=9).map(str),
    "refundReason": _json_scalars | st.text(min_size=250, max_size=260),
    "webhookUrl": _json_scalars | st.just("https://shop.example/hook"),
}


_plausible_refund = st.fixed_dictionaries(
    {
        "refundRequestId": st.text(min_size=1, max_size=64),
        "prepayId": st.just("the order"),
        "refundAmount": st.decimals(min_value="0.01", max_value="12", places=2).map(str),
    },
    optional={"refundReason": st.text(max_size=256), "webhookUrl": _refund_values["webhookUrl"]},
)


@given(
    _plausible_refund
    | st.fixed_dictionaries({}, optional=_refund_values)
    | st.dictionaries(st.text(max_size=5), _json_scalars, max_size=3)
)
@settings(max_examples=1_000, deadline=None)
def test_any_refund_body_is_a_refund_or_a_coded_refusal_and_changes_nothing_when_refused(
    body: dict[str, Any],
) -> None:
    book = OrderBook()
    order = book.create(
        NewOrder(
            api_version="v3",
            merchant_trade_no="H1",
            terminal_type="WEB",
            currency="USDT",
            amount=Decimal("10.50"),
            product_type="Z000",
            product_name="Booking",
        ),
        merchant_key="k",
        merchant_id=1,
        now=0,
        default_expire_ms=10**9,
    )
    book.pay(order, now=1, open_user_id="payer")
    if body.get("prepayId") == "the order":
        body = {**body, "prepayId": order.prepay_id}
    try:
        new = validation.refund(body)
        book.refund("k", new, now=2)
    except ApiError as error:
        assert error.code in {"400100", "400101", "400102", "400301", "400303"}
        assert book.refunds == ()
        assert (order.status, order.refunded_amount) == ("PAID", Decimal(0))
        return
    [made] = book.refunds
    assert Decimal(0) < made.amount <= Decimal("10.50")
    assert order.refunded_amount == made.amount
