"""Crash safety of order creation: a process killed with SIGKILL in the middle of retries.

The sandbox runs in a process of its own with the "flaky" fault profile: answers lost after the
order is stored, timeouts (the order stored later), resets, 429s and 5xx. A worker process
creates the orders ``client-0`` ... through ``Payments.create_order`` (SQLite ledger) and is
killed with SIGKILL right after its retry policy logs a retry after an unknown outcome (a lost
answer, a timeout, a reset): in the middle of a create's retries, when the sandbox may or may
not hold the order. It is started again (as an
application re-runs its job) until it finishes; some orders are paid at the sandbox; then
``payments reconcile`` runs. The sandbox then holds exactly one order per reference, the very
one the ledger holds, and no order is unknown to the ledger or left with an unknown status.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx

from payments_binance.sandbox import SandboxProcess
from payments_core import PaymentStatus, open_ledger

from .serve_process import STARTUP_TIMEOUT_S, child_env, cli_command

ORDERS = 80
KILLS = 5
API_KEY = "client-crash-key"
API_SECRET = "client-crash-secret-0a1b2c3d4e5f"
# Short timeouts and waits: the sandbox holds a "timeout" request 30 s, the client gives up
# after 0.5 s and recovers the order by a query.
CONFIG = """
[payments.http]
connect_timeout = 2.0
read_timeout = 0.5

[payments.retry]
max_attempts = 10
deadline = 20.0
initial_delay = 0.02
max_delay = 0.2
"""


def run_worker(env: dict[str, str], kill_at_retry: int | None) -> tuple[bool, list[str]]:
    """Run the worker; with ``kill_at_retry``, SIGKILL it right after that many retries of a
    create whose outcome is unknown.

    :returns: whether it was killed, and the lines it printed.
    """
    process = subprocess.Popen(  # noqa: S603 - this interpreter, a module of these tests
        [sys.executable, "-m", "tests.ledger.create_worker", str(ORDERS)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    retries = 0
    killed = False
    for line in process.stdout:
        lines.append(line.rstrip())
        retries += line.startswith("retry ") and "outcome_unknown" in line
        if kill_at_retry is not None and retries == kill_at_retry:
            process.send_signal(signal.SIGKILL)
            killed = True
            break
    process.stdout.close()
    code = process.wait(STARTUP_TIMEOUT_S)
    assert killed or code == 0, "\n".join(lines[-20:])
    return killed, lines


def test_create_killed_mid_retry_then_reconcile_leaves_one_order_per_reference(
    tmp_path: Path, report_figure: Callable[[str], None]
) -> None:
    config = tmp_path / "payments.toml"
    config.write_text(CONFIG)
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    sandbox_args = ("--faults", "flaky", "--seed", "14", "--no-webhooks")
    with SandboxProcess(*sandbox_args, "--api-key", API_KEY, "--api-secret", API_SECRET) as box:
        env = child_env(
            {
                "PAYMENTS_CONFIG": str(config),
                "PAYMENTS_PROVIDERS": "binance",
                "PAYMENTS_DATABASE_URL": ledger_url,
                "BINANCE_PAY_BASE_URL": box.base_url,
                "BINANCE_PAY_API_KEY": API_KEY,
                "BINANCE_PAY_API_SECRET": API_SECRET,
            }
        )
        rng = random.Random(14)
        kills = runs = orphaned = 0
        created: dict[str, str] = {}
        while True:
            runs += 1
            assert runs <= KILLS + 10
            killed, lines = run_worker(env, 1 if kills < KILLS else None)
            for line in lines:
                if line.startswith("created "):
                    _, reference, provider_order_id = line.split()
                    assert created.setdefault(reference, provider_order_id) == provider_order_id
            if not killed:
                break
            kills += 1
            # Did the kill leave an order at the sandbox that the ledger does not know yet?
            at_sandbox = httpx.get(f"{box.base_url}/sandbox/stats").json()["orders_created"]
            with open_ledger(ledger_url) as ledger:
                known = sum(bool(ledger.find_orders(f"client-{i}")) for i in range(ORDERS))
            orphaned += at_sandbox > known
        assert kills == KILLS, "the worker finished before it could be killed often enough"
        with open_ledger(ledger_url) as ledger:
            orders = {
                f"client-{i}": ledger.get_order("binance", f"client-{i}") for i in range(ORDERS)
            }
        paid = sorted(rng.sample(sorted(orders), ORDERS // 4))
        with httpx.Client(base_url=box.base_url) as http:
            for reference in paid:
                order = orders[reference]
                assert order is not None
                answer = http.post(f"/sandbox/orders/{order.provider_order_id}/pay")
                assert answer.json()["status"] == "PAID"
            stats_before = http.get("/sandbox/stats").json()
        reconciles = []
        for _ in range(5):  # a run may leave an order unchecked (faults); run it again
            reconcile = subprocess.run(  # noqa: S603 - this interpreter
                cli_command("reconcile", "--older-than", "0", "--json"),
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            reconciles.append(reconcile)
            if reconcile.returncode == 0:
                break
        assert reconcile.returncode == 0, reconcile.stderr
        with httpx.Client(base_url=box.base_url) as http:
            stats = http.get("/sandbox/stats").json()
    with open_ledger(ledger_url) as ledger:
        final = {reference: ledger.get_order("binance", reference) for reference in orders}
        pending = ledger.pending_orders(older_than=timedelta(0))
    # One order per reference at the sandbox: as many created as references, and the ledger's.
    assert stats["orders_created"] == ORDERS
    assert sum(stats["orders_by_status"].values()) == ORDERS
    assert {r: o.provider_order_id for r, o in final.items() if o} == {
        r: o.provider_order_id for r, o in orders.items() if o
    }
    assert all(order is not None for order in orders.values())
    # What a killed run printed as created is the order the ledger holds, not a second one.
    assert created == {r: o.provider_order_id for r, o in orders.items() if o and r in created}
    assert len({o.provider_order_id for o in final.values() if o}) == ORDERS
    # No status left unknown: the paid ones are paid, the others still open at the sandbox.
    assert {r for r, o in final.items() if o and o.status is PaymentStatus.PAID} == set(paid)
    assert sorted(o.order.reference for o in pending) == sorted(set(orders) - set(paid))
    assert stats["orders_by_status"].get("PAID") == len(paid)
    rows = json.loads(reconciles[-1].stdout)["orders"]
    report_figure(
        f"{kills} SIGKILLs of a create_order process mid-retry over {runs} runs "
        f"({orphaned} left an order at the sandbox the ledger did not know yet); "
        f"{stats_before['duplicates_refused']} duplicate creates refused by the sandbox; "
        f"{stats['orders_created']} provider orders for {ORDERS} references; "
        f"reconcile: {len(reconciles)} run(s), last checked {len(rows)} pending, "
        f"{sum(r['applied'] for r in rows)} changed"
    )
