"""Every field rule of the reference's section 15 (and the brief) gets its error code."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from payments_binance import protocol
from payments_binance.sandbox import Sandbox, SandboxConfig, SandboxServer

from .conftest import KEY, SECRET, Merchant, v3_order

_trade_nos = itertools.count()
Body = dict[str, Any]


@pytest.fixture(scope="module")
def merchant(signing_key_pem: bytes) -> Iterator[Merchant]:
    """One sandbox for the whole table: each case uses a fresh merchantTradeNo."""
    config = SandboxConfig(api_key=KEY, api_secret=SECRET, signing_key_pem=signing_key_pem)
    with (
        SandboxServer(Sandbox(config)) as server,
        httpx.Client(base_url=server.base_url, trust_env=False) as http,
    ):
        yield Merchant(http)


def trade_no() -> str:
    return f"VAL{next(_trade_nos)}"


def goods(**changes: Any) -> Callable[[Body], None]:
    def edit(body: Body) -> None:
        item = body["goodsDetails"][0]
        for name, value in changes.items():
            if value is None:
                item.pop(name)
            else:
                item[name] = value

    return edit


def field(name: str, value: Any) -> Callable[[Body], None]:
    def edit(body: Body) -> None:
        if value is None:
            body.pop(name)
        else:
            body[name] = value

    return edit


def env(**changes: Any) -> Callable[[Body], None]:
    def edit(body: Body) -> None:
        for name, value in changes.items():
            if value is None:
                body["env"].pop(name)
            else:
                body["env"][name] = value

    return edit


def fiat(currency: Any, amount: Any) -> Callable[[Body], None]:
    def edit(body: Body) -> None:
        body.pop("currency")
        body.pop("orderAmount")
        if currency is not None:
            body["fiatCurrency"] = currency
        if amount is not None:
            body["fiatAmount"] = amount

    return edit


def expire_in(ms: int) -> Callable[[Body], None]:
    def edit(body: Body) -> None:
        body["orderExpireTime"] = time.time_ns() // 1_000_000 + ms

    return edit


DAY_MS = 24 * 3_600_000

CREATE_RULES: list[tuple[str, Callable[[Body], None], str]] = [
    ("merchantTradeNo missing", field("merchantTradeNo", None), "400100"),
    ("merchantTradeNo empty", field("merchantTradeNo", ""), "400100"),
    ("merchantTradeNo a number", field("merchantTradeNo", 12345), "400100"),
    ("merchantTradeNo 33 chars", field("merchantTradeNo", "A" * 33), "400101"),
    ("merchantTradeNo dash", field("merchantTradeNo", "ORDER-1"), "400103"),
    ("merchantTradeNo underscore", field("merchantTradeNo", "ORDER_1"), "400103"),
    ("merchantTradeNo non-ascii letter", field("merchantTradeNo", "ORDÉR1"), "400103"),
    ("env missing", field("env", None), "400100"),
    ("terminalType missing", env(terminalType=None), "400100"),
    ("terminalType unknown", env(terminalType="TV"), "400102"),
    ("terminalType PAYMENT_LINK", env(terminalType="PAYMENT_LINK"), "400102"),
    ("osType unknown", env(osType="WINDOWS"), "400102"),
    ("MINI_PROGRAM without appId", env(terminalType="MINI_PROGRAM"), "400100"),
    ("subMerchantId 20 chars", field("merchant", {"subMerchantId": "1" * 20}), "400101"),
    ("currency and fiatCurrency both absent", fiat(None, None), "400100"),
    ("currency without orderAmount", field("orderAmount", None), "400100"),
    ("orderAmount without currency", field("currency", None), "400100"),
    ("currency is fiat", field("currency", "USD"), "400102"),
    ("currency lowercase", field("currency", "usdt"), "400102"),
    ("currency and fiatCurrency both given", field("fiatCurrency", "USD"), "400001"),
    ("orderAmount zero", field("orderAmount", "0"), "400102"),
    ("orderAmount negative", field("orderAmount", "-1.00"), "400102"),
    ("orderAmount below minimum", field("orderAmount", "0.000000009"), "400102"),
    ("orderAmount 9 decimals", field("orderAmount", "1.000000001"), "400101"),
    ("orderAmount number 9 decimals", field("orderAmount", 1.000000001), "400101"),
    ("orderAmount not numeric", field("orderAmount", "ten"), "400100"),
    ("orderAmount exponent text", field("orderAmount", "1e5"), "400100"),
    ("orderAmount boolean", field("orderAmount", True), "400100"),
    ("fiatCurrency unknown", fiat("XYZ", "1.00"), "400102"),
    ("fiatAmount missing", fiat("USD", None), "400100"),
    ("fiatAmount 9 decimals", fiat("USD", "1.000000001"), "400101"),
    ("fiatAmount zero", fiat("USD", "0"), "400102"),
    ("description missing", field("description", None), "400100"),
    ("description empty", field("description", ""), "400100"),
    ("description 257 chars", field("description", "d" * 257), "400101"),
    ("goodsDetails missing", field("goodsDetails", None), "400100"),
    ("goodsDetails empty", field("goodsDetails", []), "400100"),
    ("goodsDetails an object", field("goodsDetails", {"goodsType": "01"}), "400100"),
    ("goodsDetails item not an object", field("goodsDetails", ["x"]), "400100"),
    ("goodsType missing", goods(goodsType=None), "400100"),
    ("goodsType unknown", goods(goodsType="03"), "400102"),
    ("goodsCategory missing", goods(goodsCategory=None), "400100"),
    ("goodsCategory unknown", goods(goodsCategory="G000"), "400102"),
    ("referenceGoodsId missing", goods(referenceGoodsId=None), "400100"),
    ("goodsName missing", goods(goodsName=None), "400100"),
    ("goodsName 257 chars", goods(goodsName="n" * 257), "400101"),
    ("goodsName double quote", goods(goodsName='Big "deal"'), "400103"),
    ("goodsName backslash", goods(goodsName="back\\slash"), "400103"),
    ("goodsName emoji", goods(goodsName="Coffee \u2615"), "400103"),
    ("goodsName astral emoji", goods(goodsName="Party \U0001f389"), "400103"),
    ("goodsDetail 257 chars", goods(goodsDetail="g" * 257), "400101"),
    (
        "goodsUnitAmount bad amount",
        goods(goodsUnitAmount={"currency": "USDT", "amount": "x"}),
        "400100",
    ),
    ("webhookUrl not http", field("webhookUrl", "ftp://example.invalid/hook"), "400101"),
    ("webhookUrl 257 chars", field("webhookUrl", "https://h/" + "p" * 247), "400101"),
    ("returnUrl 257 chars", field("returnUrl", "https://h/" + "p" * 247), "400101"),
    ("cancelUrl 257 chars", field("cancelUrl", "https://h/" + "p" * 247), "400101"),
    ("orderExpireTime in the past", expire_in(-1_000), "400102"),
    ("orderExpireTime in seconds", field("orderExpireTime", 1_750_000_000), "400102"),
    ("orderExpireTime beyond 15 days", expire_in(16 * DAY_MS), "400102"),
    ("orderExpireTime a string", field("orderExpireTime", "soon"), "400100"),
    ("passThroughInfo 513 chars", field("passThroughInfo", "p" * 513), "400101"),
    ("supportPayCurrency 1025 chars", field("supportPayCurrency", "B" * 1025), "400101"),
    ("universalUrlAttach 121 chars", field("universalUrlAttach", "u" * 121), "400101"),
]


@pytest.mark.parametrize(
    ("edit", "code"),
    [(edit, code) for _, edit, code in CREATE_RULES],
    ids=[r[0] for r in CREATE_RULES],
)
def test_create_order_v3_rule(merchant: Merchant, edit: Callable[[Body], None], code: str) -> None:
    body = v3_order(trade_no())
    edit(body)
    response = merchant.post(protocol.PATH_CREATE_ORDER_V3, body)
    assert response.json()["code"] == code, response.text
    assert response.json()["status"] == "FAIL"
    expected_status = protocol.ERROR_CODES[code].http_status or 400
    assert response.status_code == expected_status


VALID_EDGES: list[tuple[str, Callable[[Body], None]]] = [
    ("minimum amount", field("orderAmount", "0.00000001")),
    ("8 decimals", field("orderAmount", "1.12345678")),
    ("amount as JSON number", field("orderAmount", 25.17)),
    ("amount as JSON integer", field("orderAmount", 3)),
    ("32-char trade no", lambda b: field("merchantTradeNo", f"Z{next(_trade_nos):031d}")(b)),
    ("256-char description", field("description", "d" * 256)),
    ("expire in 14 days", expire_in(14 * DAY_MS)),
    ("http webhook", field("webhookUrl", "http://127.0.0.1:9/hook")),
    ("fiat order", fiat("USD", "1.00")),
    (
        "MINI_PROGRAM with appId",
        lambda b: (env(terminalType="MINI_PROGRAM")(b), field("appId", "a")(b)),
    ),
]


@pytest.mark.parametrize("edit", [e for _, e in VALID_EDGES], ids=[n for n, _ in VALID_EDGES])
def test_create_order_v3_valid_edge(merchant: Merchant, edit: Callable[[Body], None]) -> None:
    body = v3_order(trade_no())
    edit(body)
    response = merchant.post(protocol.PATH_CREATE_ORDER_V3, body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "400001"),
        (b"[1, 2]", "400001"),
        (b'{"merchantTradeNo": "A", "merchantTradeNo": "B"}', "400001"),
        (b'{"orderAmount": NaN}', "400001"),
        (b"\xff\xfe{}", "400001"),
    ],
    ids=["malformed", "array", "duplicate-key", "nan", "not-utf8"],
)
def test_unparseable_body(merchant: Merchant, raw: bytes, code: str) -> None:
    response = merchant.post(protocol.PATH_CREATE_ORDER_V3, raw)
    assert response.json()["code"] == code


def test_v2_requires_goods_object_not_description(merchant: Merchant) -> None:
    body = v3_order(trade_no(), description=None)
    item = body.pop("goodsDetails")[0]
    missing = merchant.post(protocol.PATH_CREATE_ORDER_V2, body)
    assert missing.json()["code"] == "400100"
    body["goods"] = item
    created = merchant.post(protocol.PATH_CREATE_ORDER_V2, body)
    assert created.status_code == 200, created.text
    body["merchantTradeNo"] = trade_no()
    body["goods"] = {**item, "goodsType": "07"}
    assert merchant.post(protocol.PATH_CREATE_ORDER_V2, body).json()["code"] == "400102"


def test_duplicate_merchant_trade_no_is_400201_and_counted(signing_key_pem: bytes) -> None:
    sandbox = Sandbox(
        SandboxConfig(api_key=KEY, api_secret=SECRET, signing_key_pem=signing_key_pem)
    )
    with SandboxServer(sandbox) as server, httpx.Client(base_url=server.base_url) as http:
        merchant = Merchant(http)
        merchant.create("DUP1")
        for _ in range(2):
            again = merchant.post(protocol.PATH_CREATE_ORDER_V3, v3_order("DUP1", orderAmount="99"))
            assert (again.status_code, again.json()["code"]) == (400, "400201")
        assert sandbox.stats()["duplicates_refused"] == 2
        assert sandbox.stats()["orders_created"] == 1
        assert [o.request.merchant_trade_no for o in sandbox.orders.values()] == ["DUP1"]


@pytest.mark.parametrize(
    ("lookup", "code"),
    [
        ({}, "400100"),
        ({"prepayId": "", "merchantTradeNo": ""}, "400100"),
        ({"prepayId": "12345678901234567890"}, "400101"),
        ({"prepayId": "12ab"}, "400100"),
        ({"merchantTradeNo": "NO-SUCH"}, "400103"),
        ({"merchantTradeNo": "NOSUCHORDER"}, "400202"),
        ({"prepayId": "123456789012345678"}, "400202"),
    ],
    ids=[
        "empty",
        "both-empty",
        "prepay-20-digits",
        "prepay-letters",
        "trade-no-dash",
        "unknown-trade-no",
        "unknown-prepay",
    ],
)
@pytest.mark.parametrize("path", [protocol.PATH_QUERY_ORDER, protocol.PATH_CLOSE_ORDER])
def test_query_and_close_lookup_rules(
    merchant: Merchant, path: str, lookup: dict[str, str], code: str
) -> None:
    response = merchant.post(path, lookup)
    assert response.json()["code"] == code, response.text


def test_close_paid_order_is_400204(merchant: Merchant) -> None:
    data = merchant.create(trade_no())
    response = merchant.http.post(f"/sandbox/orders/{data['prepayId']}/pay")
    assert response.json()["status"] == "PAID"
    closed = merchant.post(protocol.PATH_CLOSE_ORDER, {"prepayId": data["prepayId"]})
    assert closed.json()["code"] == "400204"
    assert json.loads(closed.content)["status"] == "FAIL"
