"""R3: callbacks that must be refused, end to end over loopback with the sandbox's real key.

A genuine callback comes from the sandbox (an order created through the facade, paid by the
sandbox's payer, the webhook delivered over HTTP to the callback endpoint). Each case below is
then posted to the same endpoint over HTTP: forged from the genuine one, or signed afresh with
the sandbox's own key so that only the one defect under test is present. Each must get its
typed error and the documented HTTP answer (401 for a verification failure, 400 for a bad
payload, 413 for an oversized body), with Binance's ``FAIL`` body, and leave the ledger exactly
as it was. The suite's log capture (conftest) checks that nothing secret was logged meanwhile.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import httpx
import pytest

from payments_binance import protocol
from payments_binance.sandbox.certificates import SigningKey
from payments_binance.sandbox.webhooks import signed_headers
from payments_binance.settings import DEFAULT_MAX_CALLBACK_BYTES, DEFAULT_TIMESTAMP_TOLERANCE
from payments_core import (
    CallbackError,
    CallbackPayloadError,
    CallbackVerificationError,
    Money,
    OrderRequest,
    PaymentStatus,
)
from payments_core.asgi import create_callback_app
from payments_core.ledger import open_ledger

from .conftest import Harness, Leaks
from .receiver import AsgiServer, CallbackReceiver

Headers = dict[str, str]
Forgery = Callable[["Genuine"], tuple[Headers, bytes]]


@attrs.frozen
class Genuine:
    """A callback the sandbox really sent, and the means to sign new ones as it does."""

    headers: Headers
    body: bytes
    sandbox_key: SigningKey
    other_key: SigningKey

    def signed(self, body: bytes, *, shift_ms: int = 0) -> tuple[Headers, bytes]:
        """``body`` signed with the sandbox's key (timestamp shifted by ``shift_ms``)."""
        now = time.time_ns() // 1_000_000 + shift_ms
        ring = _Ring(self.sandbox_key)
        return signed_headers(ring, body, now), body  # type: ignore[arg-type]

    def document(self) -> dict[str, object]:
        parsed: dict[str, object] = json.loads(self.body)
        return parsed


@attrs.frozen
class _Ring:
    """The one attribute ``signed_headers`` reads from a key ring."""

    signing_key: SigningKey


def _without(name: str) -> Forgery:
    return lambda g: ({k: v for k, v in g.headers.items() if k.lower() != name.lower()}, g.body)


def _with(name: str, value: str) -> Forgery:
    def forge(g: Genuine) -> tuple[Headers, bytes]:
        headers = {k: v for k, v in g.headers.items() if k.lower() != name.lower()}
        return {**headers, name: value}, g.body

    return forge


def _wrong_key(g: Genuine) -> tuple[Headers, bytes]:
    headers = dict(g.headers)
    payload = b"%s\n%s\n%s\n" % (
        headers[protocol.HEADER_TIMESTAMP].encode(),
        headers[protocol.HEADER_NONCE].encode(),
        g.body,
    )
    headers[protocol.HEADER_SIGNATURE] = g.other_key.sign(payload)
    return headers, g.body


def _byte_changed(g: Genuine) -> tuple[Headers, bytes]:
    index = g.body.index(b"PAY_SUCCESS")
    return dict(g.headers), g.body[:index] + b"Q" + g.body[index + 1 :]


def _reserialised(g: Genuine) -> tuple[Headers, bytes]:
    return dict(g.headers), json.dumps(g.document(), indent=1).encode()


def _tolerance_ms() -> int:
    return int(DEFAULT_TIMESTAMP_TOLERANCE * 1000)


CASES: dict[str, tuple[Forgery, type[CallbackError], int]] = {
    "wrong key": (_wrong_key, CallbackVerificationError, 401),
    "one body byte changed": (_byte_changed, CallbackVerificationError, 401),
    "re-serialised body": (_reserialised, CallbackVerificationError, 401),
    **{
        f"missing {name}": (_without(name), CallbackVerificationError, 401)
        for name in (
            protocol.HEADER_TIMESTAMP,
            protocol.HEADER_NONCE,
            protocol.HEADER_CERTIFICATE_SN,
            protocol.HEADER_SIGNATURE,
        )
    },
    "malformed timestamp": (
        _with(protocol.HEADER_TIMESTAMP, "17e11"),
        CallbackVerificationError,
        401,
    ),
    "malformed signature": (
        _with(protocol.HEADER_SIGNATURE, "not*base64*at*all"),
        CallbackVerificationError,
        401,
    ),
    "empty signature": (_with(protocol.HEADER_SIGNATURE, ""), CallbackVerificationError, 401),
    "unknown certificate serial": (
        _with(protocol.HEADER_CERTIFICATE_SN, "0123456789ABCDEF0123456789ABCDEF"),
        CallbackVerificationError,
        401,
    ),
    "stale timestamp": (
        lambda g: g.signed(g.body, shift_ms=-_tolerance_ms() - 60_000),
        CallbackVerificationError,
        401,
    ),
    "future timestamp": (
        lambda g: g.signed(g.body, shift_ms=_tolerance_ms() + 60_000),
        CallbackVerificationError,
        401,
    ),
    "malformed JSON": (lambda g: g.signed(g.body[:-1]), CallbackPayloadError, 400),
    "JSON that is not an object": (lambda g: g.signed(b"[1, 2]"), CallbackPayloadError, 400),
    "oversized body": (
        lambda g: g.signed(g.body + b" " * (DEFAULT_MAX_CALLBACK_BYTES + 1 - len(g.body))),
        CallbackPayloadError,
        413,
    ),
    "unknown bizType": (
        lambda g: g.signed(json.dumps({**g.document(), "bizType": "LOTTERY"}).encode()),
        CallbackPayloadError,
        400,
    ),
    "unknown bizStatus": (
        lambda g: g.signed(json.dumps({**g.document(), "bizStatus": "PAY_MAYBE"}).encode()),
        CallbackPayloadError,
        400,
    ),
}


@attrs.define
class World:
    harness: Harness
    receiver: CallbackReceiver
    genuine: Genuine
    database: Path
    http: httpx.Client
    app_url: str


def dump(database: Path) -> list[str]:
    """The whole database as SQL statements: any change to any row shows."""
    with sqlite3.connect(database) as conn:
        return list(conn.iterdump())


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    signing_pems: tuple[bytes, bytes],
    leaks: Leaks,
) -> Iterator[World]:
    """One sandbox, endpoint and ledger for every case, with one genuine callback applied."""
    from payments_binance.sandbox import Sandbox, SandboxConfig, SandboxServer

    from .conftest import API_KEY, API_SECRET

    database = tmp_path_factory.mktemp("r3") / "ledger.sqlite3"
    ledger = open_ledger(f"sqlite:///{database}")
    sandbox = Sandbox(
        SandboxConfig(
            api_key=API_KEY,
            api_secret=API_SECRET,
            signing_key_pem=signing_pems[0],
            webhook_retry_schedule=(0, 0),
        )
    )
    with SandboxServer(sandbox) as server, httpx.Client(timeout=10, trust_env=False) as http:
        harness = Harness(sandbox, server, leaks)
        payments = harness.payments()
        with CallbackReceiver(payments, ledger) as receiver:
            order = payments.create_order(
                OrderRequest(
                    reference="r3-booking-1",
                    price=Money("5.00", "USD"),
                    callback_url=receiver.url,
                )
            )
            ledger.record_order(order)
            sandbox.pay(order.provider_order_id)
            sandbox.wait_for_webhooks_sync(timeout=30)
            (delivered,) = [a for a in sandbox.webhook_log if a.ok]
            genuine = Genuine(
                dict(delivered.headers),
                delivered.delivery.body,
                sandbox.keys.signing_key,
                SigningKey.from_pem(signing_pems[1]),
            )
            stored = ledger.get_order("binance", "r3-booking-1")
            assert stored is not None
            assert stored.status is PaymentStatus.PAID
            # The same callbacks through the library's own endpoint, with its own facade.
            app_payments = harness.payments(ledger=open_ledger(f"sqlite:///{database}"))
            app = create_callback_app(app_payments, close_payments=True)
            with AsgiServer(app) as served:
                app_url = f"{served.base_url}/callbacks/binance"
                yield World(harness, receiver, genuine, database, http, app_url)
            payments.close()
        leaks.add(*harness.webhook_signatures())
    ledger.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_with_typed_error_and_documented_answer(
    world: World, leaks: Leaks, case: str
) -> None:
    forge, error_type, status = CASES[case]
    headers, body = forge(world.genuine)
    leaks.add(headers.get(protocol.HEADER_SIGNATURE, ""))
    before = dump(world.database)
    handled = len(world.receiver.outcomes)

    response = world.http.post(world.receiver.url, content=body, headers=headers)

    assert response.status_code == status
    assert response.json()["returnCode"] == "FAIL"
    assert response.json()["returnMessage"]
    (outcome,) = world.receiver.outcomes[handled:]
    assert type(outcome.error) is error_type
    assert outcome.error.reply.status_code == status
    assert outcome.error.provider == "binance"
    assert dump(world.database) == before


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_through_the_callback_app(world: World, leaks: Leaks, case: str) -> None:
    forge, _, status = CASES[case]
    headers, body = forge(world.genuine)
    leaks.add(headers.get(protocol.HEADER_SIGNATURE, ""))
    before = dump(world.database)

    response = world.http.post(world.app_url, content=body, headers=headers)

    assert response.status_code == status
    if status != 413:  # the app refuses an oversized body itself, before the provider
        assert response.json()["returnCode"] == "FAIL"
    assert dump(world.database) == before


def test_the_genuine_callback_is_accepted_and_applied_once(world: World) -> None:
    # The control: the same endpoint takes the genuine callback (a redelivery now) and the
    # ledger recorded its one change when it first arrived.
    for url in (world.receiver.url, world.app_url):
        response = world.http.post(url, content=world.genuine.body, headers=world.genuine.headers)
        assert response.status_code == 200
        assert response.json()["returnCode"] == "SUCCESS"
    with sqlite3.connect(world.database) as conn:
        (events,) = conn.execute("select count(*) from events").fetchone()
    assert events == 1


def test_an_unknown_serial_flood_costs_at_most_one_certificates_fetch(world: World) -> None:
    requests_before = world.harness.sandbox.stats()["requests"]
    for i in range(20):
        headers, body = _with(protocol.HEADER_CERTIFICATE_SN, f"FORGED{i:026d}")(world.genuine)
        assert world.http.post(world.receiver.url, content=body, headers=headers).status_code == 401
    fetches = world.harness.sandbox.stats()["requests"] - requests_before  # type: ignore[operator]
    assert fetches <= 1
