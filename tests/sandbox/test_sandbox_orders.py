"""Order responses (v3, v2, fiat, query) and the in-process ASGI use of the sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from payments_binance import protocol
from payments_binance.sandbox import OrderNotPayable, Sandbox, SandboxConfig

from .conftest import Receiver, Running, signed_headers, v3_order

V2_FIELDS = {
    "prepayId",
    "terminalType",
    "expireTime",
    "qrcodeLink",
    "qrContent",
    "checkoutUrl",
    "deeplink",
    "universalUrl",
}


def test_v3_response_fields_and_big_prepay_id(running: Running) -> None:
    response = running.merchant.post(protocol.PATH_CREATE_ORDER_V3, v3_order("RESP1"))
    envelope = response.json(parse_float=Decimal)
    assert (envelope["status"], envelope["code"], envelope["errorMessage"]) == (
        "SUCCESS",
        "000000",
        None,
    )
    data = envelope["data"]
    assert set(data) == V2_FIELDS | {"currency", "totalFee"}
    assert isinstance(data["prepayId"], str)
    assert 18 <= len(data["prepayId"]) <= 19
    assert int(data["prepayId"]) > 2**53
    assert int(float(data["prepayId"])) != int(data["prepayId"])
    assert isinstance(data["expireTime"], int)
    assert (data["currency"], data["totalFee"]) == ("USDT", Decimal("10.50"))


def test_v2_response_has_only_the_eight_fields(running: Running) -> None:
    body = v3_order("RESP2", description=None)
    body["goods"] = body.pop("goodsDetails")[0]
    data = running.merchant.post(protocol.PATH_CREATE_ORDER_V2, body).json()["data"]
    assert set(data) == V2_FIELDS


def test_fiat_order_converts_at_fixed_rate(running: Running) -> None:
    data = running.merchant.create(
        "FIAT1", currency=None, orderAmount=None, fiatCurrency="EUR", fiatAmount="10.00"
    )
    assert (data["currency"], data["fiatCurrency"]) == ("USDT", "EUR")
    assert Decimal(str(data["totalFee"])) == Decimal("10.80")
    assert Decimal(str(data["fiatAmount"])) == Decimal("10.00")
    usd = running.merchant.create(
        "FIAT2", currency=None, orderAmount=None, fiatCurrency="USD", fiatAmount="1"
    )
    assert Decimal(str(usd["totalFee"])) == 1
    assert running.merchant.query(merchantTradeNo="FIAT2")["orderAmount"] == "1.00000000"


def test_query_after_payment(running: Running) -> None:
    data = running.merchant.create("QRY1", passThroughInfo="ref-7")
    before = running.merchant.query(merchantTradeNo="QRY1")
    assert before["status"] == "INITIAL"
    assert before["orderAmount"] == "10.50"
    assert before["passThroughInfo"] == "ref-7"
    assert "transactionId" not in before
    running.sandbox.pay(data["prepayId"], open_user_id="payer-1")
    after: dict[str, Any] = running.merchant.query(prepayId=data["prepayId"])
    assert after["status"] == "PAID"
    assert after["openUserId"] == "payer-1"
    assert after["transactionId"].startswith("M_R_")
    assert isinstance(after["transactTime"], int)
    assert after["paymentInfo"]["paymentInstructions"][0]["currency"] == "USDT"
    assert after["commission"] == "0"
    assert after["merchantId"] == running.sandbox.config.merchant_id
    with pytest.raises(OrderNotPayable):
        running.sandbox.cancel(data["prepayId"])


def test_prepay_id_as_json_number_is_accepted_in_query(running: Running) -> None:
    data = running.merchant.create("QRY2")
    raw = b'{"prepayId":' + data["prepayId"].encode() + b"}"
    assert (
        running.merchant.post(protocol.PATH_QUERY_ORDER, raw).json()["data"]["status"] == "INITIAL"
    )
    mangled = json.dumps({"prepayId": float(data["prepayId"])}).encode()
    assert running.merchant.post(protocol.PATH_QUERY_ORDER, mangled).json()["code"] == "400100"


def test_config_rejects_inconsistent_values() -> None:
    with pytest.raises(ValueError, match="empty"):
        SandboxConfig(api_secret="")
    with pytest.raises(ValueError, match=">= 0"):
        SandboxConfig(webhook_retry_schedule=(1, -1))
    assert SandboxConfig(strict=True).effective_timestamp_window_ms == 1_000
    assert SandboxConfig().effective_timestamp_window_ms == 60_000


@pytest.mark.anyio
async def test_in_process_with_asgi_transport(
    make_config: Callable[..., SandboxConfig], receiver: Receiver
) -> None:
    sandbox = Sandbox(make_config())
    transport = httpx.ASGITransport(sandbox.app)
    async with sandbox, httpx.AsyncClient(transport=transport, base_url="http://sb.test") as client:
        raw = json.dumps(v3_order("ASGI1", webhookUrl=receiver.url)).encode()
        response = await client.post(
            protocol.PATH_CREATE_ORDER_V3, content=raw, headers=signed_headers(raw)
        )
        data = response.json()["data"]
        assert data["checkoutUrl"].startswith("http://sb.test/sandbox/checkout/")
        paid = await client.post(f"/sandbox/orders/{data['prepayId']}/pay")
        assert paid.json()["status"] == "PAID"
        await sandbox.wait_for_webhooks()
    [hook] = receiver.wait_for(1)
    assert json.loads(hook.body)["bizIdStr"] == data["prepayId"]
