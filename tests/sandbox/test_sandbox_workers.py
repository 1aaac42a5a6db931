"""One sandbox served by several workers over a shared state (SQLite file or PostgreSQL).

Two in-process sandboxes on one database stand for two workers (each has its own connection and
its own server), so races can be set up exactly; the process tests then check the real
``--workers`` command. Races start together at a barrier; nothing sleeps.
"""

from __future__ import annotations

import functools
import json
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest

from payments_binance import protocol
from payments_binance.sandbox import SandboxProcess
from payments_binance.sandbox.config import DEFAULT_API_KEY, DEFAULT_API_SECRET

from .conftest import Merchant, Receiver, Running, signed_headers, v3_order

CREATE = protocol.PATH_CREATE_ORDER_V3
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgres"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh shared state: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield str(tmp_path / "state.db")
        return
    schema = f"sandbox_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def two_workers(state: str, start: Callable[..., Running]) -> tuple[Running, Running]:
    """Two sandboxes (workers 0 and 1) sharing ``state``."""
    return start(state=state, worker=0), start(state=state, worker=1)


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def codes_of(*responses: httpx.Response) -> list[str]:
    return sorted(response.json()["code"] for response in responses)


def test_duplicate_trade_no_at_two_workers_at_once_is_refused_by_one(
    two_workers: tuple[Running, Running],
) -> None:
    first, second = two_workers
    for i in range(15):
        body = v3_order(f"RACE{i}")
        answers = race(
            functools.partial(first.merchant.post, CREATE, body),
            functools.partial(second.merchant.post, CREATE, body),
        )
        assert codes_of(*answers) == ["000000", "400201"]
    assert len(first.sandbox.orders) == len(second.sandbox.orders) == 15
    refused = (
        first.sandbox.stats()["duplicates_refused"],
        second.sandbox.stats()["duplicates_refused"],
    )
    assert sum(refused) == 15  # type: ignore[arg-type]


def test_a_nonce_used_at_one_worker_is_refused_at_another(
    two_workers: tuple[Running, Running],
) -> None:
    first, second = two_workers
    body = json.dumps(v3_order("NONCE1")).encode()
    headers = signed_headers(body)
    assert (
        first.merchant.http.post(CREATE, content=body, headers=headers).json()["code"] == "000000"
    )
    again = second.merchant.http.post(CREATE, content=body, headers=headers).json()
    assert again["code"] == "400001"


def test_orders_and_refunds_are_the_same_at_every_worker(
    two_workers: tuple[Running, Running], receiver: Receiver
) -> None:
    first, second = two_workers
    prepay_id = first.merchant.create("SHARED1", webhookUrl=receiver.url)["prepayId"]
    assert second.merchant.query(merchantTradeNo="SHARED1")["prepayId"] == prepay_id
    second.sandbox.pay(prepay_id)
    assert first.merchant.query(prepayId=prepay_id)["status"] == "PAID"
    refund = {"refundRequestId": "shared-rf", "prepayId": prepay_id, "refundAmount": "10.50"}
    answers = race(
        lambda: first.merchant.post("/binancepay/openapi/order/refund", refund),
        lambda: second.merchant.post("/binancepay/openapi/order/refund", refund),
    )
    duplicates = sorted(answer.json()["data"]["duplicateRequest"] for answer in answers)
    assert duplicates == ["N", "Y"]
    assert len(first.sandbox.refunds) == 1
    assert second.merchant.query(prepayId=prepay_id)["status"] == "FULL_REFUNDED"
    for run in (first, second):
        run.sandbox.wait_for_webhooks_sync()
    statuses = sorted(json.loads(hook.body)["bizStatus"] for hook in receiver.wait_for(2))
    assert statuses == ["PAY_SUCCESS", "REFUND_SUCCESS"]  # each sent once, by one worker


def test_an_order_expires_once_and_one_worker_notifies_it(
    state: str, start: Callable[..., Running], receiver: Receiver
) -> None:
    now = [1_900_000_000_000]
    window = {"timestamp_window_ms": 10**13, "clock": lambda: now[0], "state": state}
    first, second = start(worker=0, **window), start(worker=1, **window)
    created = [
        first.merchant.create(f"EXP{i}", webhookUrl=receiver.url, orderExpireTime=now[0] + 1_000)
        for i in range(5)
    ]
    now[0] += 2_000
    expired = race(first.sandbox.expire_due, second.sandbox.expire_due)
    assert sorted(o.prepay_id for batch in expired for o in batch) == sorted(
        c["prepayId"] for c in created
    )
    for run in (first, second):
        run.sandbox.wait_for_webhooks_sync()
    hooks = receiver.wait_for(5)
    assert len(hooks) == 5
    assert {json.loads(hook.body)["bizStatus"] for hook in hooks} == {"PAY_CLOSED"}
    assert second.sandbox.stats()["orders_by_status"] == {"EXPIRED": 5}


def worker_clients(base_url: str, wanted: int, tries: int = 60) -> list[httpx.Client]:
    """Clients whose kept-alive connection is served by ``wanted`` different workers."""
    found: dict[int, httpx.Client] = {}
    for _ in range(tries):
        client = httpx.Client(base_url=base_url, trust_env=False, timeout=10.0)
        pid = client.get("/sandbox/stats").json()["worker_pid"]
        if pid in found:
            client.close()
        else:
            found[pid] = client
        if len(found) == wanted:
            return list(found.values())
    for client in found.values():
        client.close()
    raise AssertionError(f"{tries} connections all went to {sorted(found)}")


def test_workers_command_refuses_a_duplicate_sent_to_two_worker_processes_at_once(
    tmp_path: Path,
) -> None:
    with SandboxProcess("--no-webhooks", workers=2, state=str(tmp_path / "s.db")) as process:
        assert process.info["workers"] == "2"
        clients = worker_clients(process.base_url, 2)
        try:
            merchants = [
                Merchant(client, DEFAULT_API_KEY, DEFAULT_API_SECRET) for client in clients
            ]
            for i in range(10):
                body = v3_order(f"PROC{i}")
                answers = race(*(functools.partial(m.post, CREATE, body) for m in merchants))
                assert codes_of(*answers) == ["000000", "400201"]
            orders = clients[0].get("/sandbox/stats").json()["orders_by_status"]
            assert orders == {"INITIAL": 10}
        finally:
            for client in clients:
                client.close()


def test_workers_command_stops_every_worker_and_fails_when_one_dies(tmp_path: Path) -> None:
    sandbox = SandboxProcess("--no-webhooks", workers=2, state=str(tmp_path / "s.db"))
    with sandbox as process:
        clients = worker_clients(process.base_url, 2)
        pids = []
        for client in clients:
            pids.append(client.get("/sandbox/stats").json()["worker_pid"])
            client.close()
        parent = psutil.Process(process.pid)
        assert sorted(child.pid for child in parent.children()) == sorted(pids)
        psutil.Process(pids[0]).kill()
        assert parent.wait(30) == 1  # the command reports the failure
        assert not any(psutil.pid_exists(pid) for pid in pids)  # the other one was stopped


def test_workers_command_stops_its_workers_when_started_with_sigint_ignored(
    tmp_path: Path,
) -> None:
    sandbox = SandboxProcess("--no-webhooks", workers=2, state=str(tmp_path / "s.db"))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a background shell starts it
    try:
        sandbox.__enter__()
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        pids = [child.pid for child in psutil.Process(sandbox.pid).children()]
        assert len(pids) == 2
    finally:
        sandbox.__exit__(None, None, None)
    assert not any(psutil.pid_exists(pid) for pid in pids)
