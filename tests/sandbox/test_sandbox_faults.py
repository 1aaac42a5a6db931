"""Fault injection: seeded determinism, and what a client actually sees for each fault kind."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from payments_binance import protocol
from payments_binance.sandbox import FaultKind, FaultProfile, Sandbox
from payments_core.testing.sandbox import PROFILES, Faults

from .conftest import Receiver, Running, signed_headers, v3_order

CREATE = protocol.PATH_CREATE_ORDER_V3


def outcome(run: Running, trade_no: str) -> str:
    """What the client saw for one create call: HTTP status or the httpx exception type."""
    try:
        response = run.merchant.post(CREATE, v3_order(trade_no))
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return str(response.status_code)


def test_same_profile_and_seed_inject_same_faults_in_same_order(
    start: Callable[..., Running],
) -> None:
    runs = []
    for seed in (11, 11, 12):
        run = start(faults=PROFILES["flaky"], seed=seed)
        run.merchant.http.timeout = httpx.Timeout(0.3)
        seen = [outcome(run, f"DET{i}") for i in range(80)]
        faults = [(r.seq, r.kind, r.status) for r in run.sandbox.fault_log]
        runs.append((seen, faults))
    (seen_a, faults_a), (seen_b, faults_b), (_, faults_c) = runs
    assert faults_a == faults_b
    assert seen_a == seen_b
    assert faults_a != faults_c
    assert len({kind for _, kind, _ in faults_a}) >= 4  # a real mix, not one kind


def only(kind: str, **extra: object) -> FaultProfile:
    return FaultProfile(**{kind: 1.0}, **extra)  # type: ignore[arg-type]


def test_rate_limit_with_and_without_retry_after(start: Callable[..., Running]) -> None:
    with_header = start(faults=only("rate_limit_retry_after", retry_after_s=3))
    response = with_header.merchant.post(CREATE, v3_order("RL1"))
    assert (response.status_code, response.headers["retry-after"]) == (429, "3")
    without = start(faults=only("rate_limit"))
    response = without.merchant.post(CREATE, v3_order("RL2"))
    assert response.status_code == 429
    assert "retry-after" not in response.headers
    assert not with_header.sandbox.orders
    assert not without.sandbox.orders


def test_server_errors(start: Callable[..., Running]) -> None:
    run = start(faults=only("server_error", server_error_statuses=(500,)))
    response = run.merchant.post(CREATE, v3_order("SE1"))
    assert response.status_code == 500
    assert response.json()["code"] == "400000"
    run = start(faults=only("server_error", server_error_statuses=(503,)))
    response = run.merchant.post(CREATE, v3_order("SE2"))
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert not run.sandbox.orders


def test_drop_response_stores_order_and_client_sees_remote_protocol_error(
    start: Callable[..., Running],
) -> None:
    run = start(faults=only("drop_response"))
    with pytest.raises(httpx.RemoteProtocolError, match=r"complete message body"):
        run.merchant.post(CREATE, v3_order("DROP1"))
    [order] = run.sandbox.orders.values()
    assert order.request.merchant_trade_no == "DROP1"
    assert run.sandbox.stats()["faults_injected"] == {"drop_response": 1}


def test_reset_client_sees_read_error(start: Callable[..., Running]) -> None:
    run = start(faults=only("reset"))
    with pytest.raises(httpx.ReadError):
        run.merchant.post(CREATE, v3_order("RESET1"))
    assert not run.sandbox.orders


def test_timeout_client_sees_read_timeout(start: Callable[..., Running]) -> None:
    run = start(faults=only("timeout", timeout_delay_s=30.0))
    run.merchant.http.timeout = httpx.Timeout(0.2)
    with pytest.raises(httpx.ReadTimeout):
        run.merchant.post(CREATE, v3_order("SLOW1"))


@pytest.mark.anyio
async def test_timeout_fault_then_processes_the_request(make_config: Callable[..., object]) -> None:
    # In process the client has no timeout, so it sees the delayed but complete answer.
    sandbox = Sandbox(make_config(faults=only("timeout", timeout_delay_s=0.05)))  # type: ignore[arg-type]
    raw = json.dumps(v3_order("LATE1")).encode()
    async with (
        sandbox,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(sandbox.app), base_url="http://sandbox.test"
        ) as client,
    ):
        response = await client.post(CREATE, content=raw, headers=signed_headers(raw))
    assert response.status_code == 200
    assert len(sandbox.orders) == 1


def test_certificates_are_exempt_unless_configured(start: Callable[..., Running]) -> None:
    run = start(faults=only("server_error"))
    assert run.merchant.certificates()
    run = start(faults=only("server_error", fault_spared_paths=True, server_error_statuses=(500,)))
    assert run.merchant.post(protocol.PATH_CERTIFICATES, b"{}").status_code == 500


def test_control_endpoints_are_never_faulted(start: Callable[..., Running]) -> None:
    run = start(faults=only("reset"))
    assert run.merchant.http.get("/sandbox/stats").json()["requests"] == 0


def test_duplicate_webhook_deliveries(start: Callable[..., Running], receiver: Receiver) -> None:
    run = start(faults=FaultProfile(duplicate_webhook=1.0))
    run.sandbox.pay(_create_direct(run, "DUPHOOK1", receiver))
    run.sandbox.wait_for_webhooks_sync()
    first, second = receiver.wait_for(2)
    assert first.body == second.body
    assert run.sandbox.stats()["faults_injected"] == {"duplicate_webhook": 1}


def test_out_of_order_webhook_deliveries(start: Callable[..., Running], receiver: Receiver) -> None:
    profile = FaultProfile(out_of_order_webhook=0.5, reorder_max_hold_s=10.0)
    seed = next(s for s in range(1_000) if _held_then_not(profile, s))
    run = start(faults=profile, seed=seed)
    held = _create_direct(run, "ORDERA", receiver)
    overtaking = _create_direct(run, "ORDERB", receiver)
    run.sandbox.pay(held)
    run.sandbox.pay(overtaking)
    run.sandbox.wait_for_webhooks_sync()
    hooks = receiver.wait_for(2)
    assert [h.body.count(held.encode()) > 0 for h in hooks] == [False, True]
    assert [r.kind for r in run.sandbox.fault_log] == [FaultKind.OUT_OF_ORDER_WEBHOOK]


def _held_then_not(profile: FaultProfile, seed: int) -> bool:
    faults = Faults(profile, seed)
    return faults.for_webhook("a") == {FaultKind.OUT_OF_ORDER_WEBHOOK} and not faults.for_webhook(
        "b"
    )


def _create_direct(run: Running, trade_no: str, receiver: Receiver) -> str:
    """Create an order (these profiles have no request faults) and return its prepay id."""
    return str(run.merchant.create(trade_no, webhookUrl=receiver.url)["prepayId"])
