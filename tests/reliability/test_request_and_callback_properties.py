"""R4: property tests (hypothesis) for order requests and for callback headers and bodies.

Every input must end in a valid object or a typed error that names the field; never anything
else. Order requests are fuzzed at construction (``OrderRequest``, ``Money``) and through the
Binance provider's create operation (``next(operation)`` builds the signed request); a request
the provider does build must be one the sandbox, which checks every field as Binance does,
accepts. Callbacks are fuzzed through ``Payments.handle_callback``: random headers and bodies,
and random bodies that carry a valid signature (so the body parsing itself is reached).

Examples per property: the loaded hypothesis profile's (``ci``: 1,000, chosen when ``CI`` is
set; ``dev``: 200).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from payments_binance import protocol
from payments_binance.orders import SUPPORTED_CURRENCIES as BINANCE_CURRENCIES
from payments_binance.sandbox import SandboxConfig
from payments_binance.sandbox import validation as sandbox_validation
from payments_binance.sandbox.envelope import ApiError
from payments_core import (
    CallbackError,
    CallbackRequest,
    CallbackResult,
    HttpRequest,
    Money,
    OrderRequest,
    Payments,
    RetryPolicy,
    ValidationError,
)
from payments_core.money import CURRENCIES
from tests.binance import loopback

from .conftest import API_KEY, API_SECRET, Leaks

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SERIAL = "R4TESTSERIAL0001"
ORDER_FIELDS = {
    "reference",
    "price",
    "callback_url",
    "transaction_type",
    "description",
    "return_url",
    "cancel_url",
    "expires_at",
}
SANDBOX_ACCEPTS = BINANCE_CURRENCIES & (
    set(SandboxConfig().fiat_rates) | set(SandboxConfig().currencies)
)
# Each example builds objects only (no sleeping, no network), so the whole run stays fast.
PROPERTY = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@attrs.define
class FixedClock:
    moment: datetime = NOW

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return 1000.0


# -- order requests ---------------------------------------------------------------------------

_text = st.text(max_size=40)
_reference_chars = st.sampled_from("abcXYZ019-_.:/#@+=" + " \t\n\x00é€😀\\\"'%?&<>")
references = st.one_of(
    st.text(alphabet=_reference_chars, min_size=0, max_size=140),
    st.integers(),
    st.none(),
)
amounts = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(10**9), places=8),
    st.integers(min_value=-10, max_value=10**16),
    st.floats(),
    st.sampled_from(["1.00", "0.01", "1e3", "NaN", "", " 1", "0", "-1", "12.345", "1_0"]),
    st.booleans(),
)
currency_codes = st.one_of(st.sampled_from(sorted(CURRENCIES)), _text, st.integers())
prices = st.one_of(
    st.builds(lambda a, c: (a, c), amounts, currency_codes),
    st.none(),
    _text,
)
urls = st.one_of(
    st.sampled_from(
        [
            "https://shop.example/cb",
            "http://127.0.0.1:8000/callbacks/binance",
            "https://[::1]:8443/x?y=1",
            "ftp://shop.example/cb",
            "https://",
            "/relative",
            "javascript:alert(1)",
            "https://shop.example/" + "a" * 300,
            "https://shop.example/" + "a" * 3000,
            "https://shop.example:99999/",
            "https://sh op.example/",
        ]
    ),
    st.builds(lambda host, path: f"https://{host}/{path}", _text, _text),
    st.none(),
    st.integers(),
)
expiries = st.one_of(
    st.none(),
    st.datetimes(),
    st.datetimes(timezones=st.just(UTC)),
    st.builds(lambda s: NOW + timedelta(seconds=s), st.integers(-86_400, 40 * 86_400)),
    _text,
)
descriptions = st.one_of(_text, st.text(min_size=250, max_size=300), st.none(), st.integers())


def build_money(value: Any) -> Any:
    """``Money(*value)`` for a pair, else the value as it is (a wrong type on purpose)."""
    if isinstance(value, tuple):
        return Money(*value)
    return value


good_references = st.text(alphabet="abcdefXYZ0123456789-_.:/#@+=", min_size=1, max_size=128)
good_prices = st.builds(
    lambda amount, currency: (amount, currency),
    st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(10**7), places=8)
    | st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**7), places=2)
    | st.integers(min_value=1, max_value=10**6).map(Decimal),
    st.sampled_from(sorted(CURRENCIES)),
)
good_urls = st.sampled_from(
    [
        "https://shop.example/callbacks/binance",
        "http://127.0.0.1:8000/cb?x=1",
        "https://[::1]:8443/x",
        "https://a.b.c.example/" + "p" * 230,
        "https://a.b.c.example/" + "p" * 300,
    ]
)
good_texts = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=256)
GOOD = {
    "reference": good_references,
    "price": good_prices,
    "callback_url": good_urls,
    "description": good_texts,
    "return_url": st.none() | good_urls,
    "cancel_url": st.none() | good_urls,
    "expires_at": st.none()
    | st.builds(lambda s: NOW + timedelta(seconds=s), st.integers(-3_600, 40 * 86_400)),
    "transaction_type": st.just("PAY"),
}
ANY = {
    "reference": references,
    "price": prices,
    "callback_url": urls,
    "description": descriptions,
    "return_url": urls,
    "cancel_url": urls,
    "expires_at": expiries,
    "transaction_type": st.sampled_from(["PAY", "REFUND", ""]),
}


@st.composite
def order_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    """Arguments for ``OrderRequest``: valid ones, valid but for one or two fields, or anything."""
    optional = {"description", "return_url", "cancel_url", "expires_at", "transaction_type"}
    kwargs: dict[str, Any] = {
        name: draw(strategy)
        for name, strategy in GOOD.items()
        if name not in optional or draw(st.booleans())
    }
    mode = draw(st.sampled_from(["valid", "valid", "one bad", "two bad", "anything"]))
    broken = {
        "valid": [],
        "one bad": draw(st.lists(st.sampled_from(sorted(ANY)), min_size=1, max_size=1)),
        "two bad": draw(st.lists(st.sampled_from(sorted(ANY)), min_size=2, max_size=2)),
        "anything": sorted(ANY),
    }[mode]
    for name in broken:
        kwargs[name] = draw(ANY[name])
    return kwargs


def binance_payments(base_url: str, **kwargs: Any) -> Payments:
    """A facade with the Binance provider alone, its clock fixed, pointed at ``base_url``."""
    credentials = {"api_key": API_KEY, "api_secret": API_SECRET}
    return loopback.binance_payments(
        base_url, None, settings=credentials, clock=FixedClock(), **kwargs
    )


@pytest.fixture(scope="module")
def provider() -> Iterator[Any]:
    payments = binance_payments("http://127.0.0.1:9")
    yield payments.provider("binance")
    payments.close()


@PROPERTY
@given(kwargs=order_kwargs())
def test_order_request_is_valid_or_names_the_field(provider: Any, kwargs: dict[str, Any]) -> None:
    try:
        request = OrderRequest(**{**kwargs, "price": build_money(kwargs["price"])})
    except ValidationError as error:
        field = error.field.split(".")[0]
        assert field in ORDER_FIELDS | {"amount", "currency"}, error.field
        if field in {"amount", "currency"}:  # raised by Money itself
            assert isinstance(kwargs["price"], tuple)
        return
    assert isinstance(request, OrderRequest)
    event("OrderRequest built")

    # Through the provider: the signed request, or a ValidationError naming the field.
    try:
        sent = next(provider.create_order(request))
    except ValidationError as error:
        assert error.field.split(".")[0] in ORDER_FIELDS, error.field
        return
    assert isinstance(sent, HttpRequest)
    event("provider built the signed request")
    assert sent.url.endswith(protocol.PATH_CREATE_ORDER_V3)
    body = sandbox_validation.parse_body(sent.content)
    if request.price.currency in SANDBOX_ACCEPTS:
        # What the provider builds, Binance (the sandbox's checks) accepts.
        now_ms = int(NOW.timestamp() * 1000)
        try:
            sandbox_validation.create_order(
                body, api_version="v3", config=SandboxConfig(), now=now_ms
            )
        except ApiError as refused:  # pragma: no cover - a failure message, not a branch
            pytest.fail(f"sandbox refuses a body the provider built: {refused} {body}")


def test_expiry_beyond_binance_maximum_names_the_field(provider: Any) -> None:
    request = OrderRequest(
        reference="r4-expiry",
        price=Money("1.00", "USDT"),
        callback_url="https://shop.example/cb",
        expires_at=NOW + timedelta(days=16),
    )
    with pytest.raises(ValidationError) as caught:
        next(provider.create_order(request))
    assert caught.value.field == "expires_at"


@PROPERTY
@given(amount=amounts, currency=currency_codes)
def test_money_is_valid_or_names_the_field(amount: Any, currency: Any) -> None:
    try:
        money = Money(amount, currency)
    except ValidationError as error:
        assert error.field in {"amount", "currency"}, error.field
        return
    assert money.currency in CURRENCIES
    assert money.amount.is_finite()


# -- callbacks --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def webhook_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def payments(webhook_key: rsa.RSAPrivateKey) -> Iterator[Payments]:
    pem = (
        webhook_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    certificates = json.dumps(
        {
            "status": "SUCCESS",
            "code": "000000",
            "data": [{"certSerial": SERIAL, "certPublic": pem}],
        }
    ).encode()

    def binance(request: httpx.Request) -> httpx.Response:
        assert request.url.path == protocol.PATH_CERTIFICATES
        return httpx.Response(200, content=certificates)

    facade = binance_payments(
        "https://bpay.binanceapi.example",
        transport=httpx.MockTransport(binance),
        retry=RetryPolicy(max_attempts=1),
    )
    yield facade
    facade.close()


def sign(key: rsa.RSAPrivateKey, timestamp: str, nonce: str, body: bytes) -> str:
    payload = b"%s\n%s\n%s\n" % (timestamp.encode("latin-1"), nonce.encode("utf-8"), body)
    return base64.b64encode(key.sign(payload, padding.PKCS1v15(), hashes.SHA256())).decode()


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**53, max_value=2**64),
    st.floats(allow_nan=False),
    st.text(max_size=12),
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_inner_data = st.fixed_dictionaries(
    {},
    optional={
        "merchantTradeNo": st.one_of(st.text(max_size=32), _json_leaf),
        "totalFee": st.one_of(
            st.sampled_from(["1.00", "0.00000001", "1e400", "-1", "NaN", ""]), _json_leaf
        ),
        "currency": st.one_of(st.sampled_from(["USDT", "USD", "XYZ", ""]), _json_leaf),
        "transactTime": st.one_of(st.integers(), _json_leaf),
        "transactionId": st.one_of(st.text(max_size=20), _json_leaf),
    },
)
_notification = st.fixed_dictionaries(
    {},
    optional={
        "bizType": st.one_of(st.sampled_from(["PAY", "PAY_REFUND", "PAYOUT", "X"]), _json_leaf),
        "bizStatus": st.one_of(
            st.sampled_from(["PAY_SUCCESS", "PAY_CLOSED", "PAY_FAIL"]), _json_leaf
        ),
        "bizId": st.one_of(st.integers(min_value=-5, max_value=2**70), _json_leaf),
        "bizIdStr": st.one_of(
            st.from_regex(r"[0-9]{1,40}", fullmatch=True), st.text(max_size=8), _json_leaf
        ),
        "data": st.one_of(
            _inner_data.map(json.dumps), _inner_data, st.text(max_size=20), _json_leaf
        ),
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    _json.map(lambda v: json.dumps(v).encode()),
    _notification.map(lambda v: json.dumps(v).encode()),
    _notification.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8")),
)
_header_text = st.text(alphabet=st.characters(codec="latin-1"), max_size=60)
_header_names = [
    protocol.HEADER_TIMESTAMP,
    protocol.HEADER_NONCE,
    protocol.HEADER_CERTIFICATE_SN,
    protocol.HEADER_SIGNATURE,
]


@st.composite
def callbacks(draw: st.DrawFn, key: rsa.RSAPrivateKey) -> tuple[CallbackRequest, str]:
    """A callback (a random body; headers random, valid, or valid but for one or two) and the
    valid signature computed for its body."""
    body = draw(bodies)
    timestamp = str(int(NOW.timestamp() * 1000) + draw(st.integers(-400_000, 400_000)))
    nonce = draw(st.text(alphabet="abcdefXYZ0123456789", min_size=1, max_size=32))
    signature = sign(key, timestamp, nonce, body)
    headers = {
        protocol.HEADER_TIMESTAMP: timestamp,
        protocol.HEADER_NONCE: nonce,
        protocol.HEADER_CERTIFICATE_SN: draw(st.sampled_from([SERIAL, SERIAL, "OTHER"])),
        protocol.HEADER_SIGNATURE: signature,
    }
    for name in draw(st.lists(st.sampled_from(_header_names), max_size=2, unique=True)):
        if draw(st.booleans()):
            del headers[name]
        else:
            headers[name] = draw(_header_text)
    if draw(st.integers(0, 9)) == 0:  # sometimes headers that are random from end to end
        headers = draw(st.dictionaries(st.sampled_from(_header_names) | _header_text, _header_text))
    return CallbackRequest(headers, body), signature


@PROPERTY
@given(data=st.data())
def test_callback_is_a_result_or_a_typed_refusal(
    payments: Payments, webhook_key: rsa.RSAPrivateKey, leaks: Leaks, data: st.DataObject
) -> None:
    callback, signature = data.draw(callbacks(webhook_key))
    leaks.add(signature)
    try:
        result = payments.handle_callback("binance", callback.headers, callback.body)
    except CallbackError as error:
        assert error.reply.status_code in {400, 401, 413}
        assert json.loads(error.reply.body)["returnCode"] == "FAIL"
        return
    assert isinstance(result, CallbackResult)
    assert result.reply.status_code == 200
    if result.event is not None:
        assert result.event.provider == "binance"
        assert result.event.provider_order_id.isdigit()
