"""Refund notices racing their refund's answer: how many end as ``unknown_refund``.

``python -m benchmarks.refund_races [--runs 20] [--json]`` runs, each ``--runs`` times:

* the LeadsCalendar guide's example (docs/leadscalendar.md: book, pay, cancel with a full
  refund) against the Binance sandbox, waiting for the refund's notification to be recorded;
* ``payments demo --refund`` (Binance);
* ``payments demo --provider stripe --refund``;

and counts, over every ledger event recorded for the refunded orders, the flags the ledger set.
A notification that overtakes its refund's answer used to be recorded ``unknown_refund``;
docs/refunds.md records the figures. Not a speed benchmark: the runs are not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from click.testing import CliRunner

from payments_core import Payments
from payments_core.cli import cli
from payments_core.ledger import open_ledger
from payments_core.plugins import PluginHost
from payments_core.serving import BackgroundServer

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "leadscalendar_app.py"
#: How long a run waits for the refund's notification to be recorded.
NOTICE_TIMEOUT_S = 10.0


def load_example() -> ModuleType:
    """The guide's example app, docs/examples/leadscalendar_app.py, as a module."""
    loader = SourceFileLoader("leadscalendar_app", str(EXAMPLE))
    module = ModuleType(loader.name)
    module.__file__ = str(EXAMPLE)
    loader.exec_module(module)
    return module


def until(found: Callable[[], bool], what: str) -> None:
    """Wait (polling) until ``found()``; :data:`NOTICE_TIMEOUT_S` at most."""
    deadline = time.monotonic() + NOTICE_TIMEOUT_S
    pause = threading.Event()
    while not found():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} never arrived")
        pause.wait(0.02)


def guide_run(example: ModuleType, host: PluginHost) -> list[str | None]:
    """One run of the guide's example; the flags of the booking's ledger events."""
    with (
        host.provider("binance").open_sandbox() as sandbox,  # type: ignore[union-attr]
        tempfile.TemporaryDirectory() as folder,
    ):
        bookings = example.Bookings()
        payments = Payments(
            ledger=open_ledger(f"sqlite:///{Path(folder) / 'payments.sqlite3'}"),
            provider_settings={"binance": sandbox.settings},
            plugins=(example.ConfirmPaidBookings(bookings),),
        )
        app = example.create_app(payments, bookings)
        with (
            payments,
            BackgroundServer(app) as server,
            httpx.Client(base_url=server.url) as client,
        ):
            booking = client.post("/bookings", json={"title": "Intro call"}).json()
            sandbox.pay(booking["order_id"])
            path = f"/bookings/{booking['booking_id']}"
            until(lambda: client.get(path).json()["status"] == "confirmed", "the payment")
            cancelled = client.post(f"/bookings/{booking['booking_id']}/cancel").json()
            if cancelled["status"] != "cancelled":
                raise RuntimeError(f"the booking was not cancelled: {cancelled}")
            ledger = payments.ledger
            assert ledger is not None

            def events() -> list[Any]:
                return ledger.events_for("binance", booking["booking_id"])

            until(lambda: any(":PAY_REFUND:" in e.event_id for e in events()), "the notice")
            return [None if event.flag is None else str(event.flag) for event in events()]


def demo_run(*provider: str) -> list[str | None]:
    """One ``payments demo [--provider ...] --refund --json``; its ledger events' flags."""
    # Nothing from this environment may point the demo elsewhere than its own sandbox.
    ours = {name: None for name in os.environ if name.startswith(("PAYMENTS_", "BINANCE_PAY_"))}
    result = CliRunner().invoke(
        cli, ["demo", *provider, "--refund", "--json"], env=ours, catch_exceptions=False
    )
    if result.exit_code != 0:
        raise RuntimeError(f"payments demo failed: {result.output}")
    data = json.loads(result.stdout)
    return [event["flag"] for event in data["ledger"]["events"]]


def measure(runs: int) -> dict[str, dict[str, Any]]:
    """Each scenario ``runs`` times: flags counted over its events, and runs with any."""
    example = load_example()
    host = PluginHost()
    host.load_entry_points(["binance"])
    scenarios: dict[str, Callable[[], list[str | None]]] = {
        "leadscalendar guide (binance)": lambda: guide_run(example, host),
        "payments demo --refund": demo_run,
        "payments demo --provider stripe --refund": lambda: demo_run("--provider", "stripe"),
    }
    figures: dict[str, dict[str, Any]] = {}
    for name, scenario in scenarios.items():
        flags: Counter[str] = Counter()
        unknown_runs = 0
        for _ in range(runs):
            found = [flag for flag in scenario() if flag is not None]
            flags.update(found)
            unknown_runs += "unknown_refund" in found
        figures[name] = {"runs": runs, "runs_with_unknown_refund": unknown_runs, "flags": flags}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="Runs of each scenario.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args()
    figures = measure(args.runs)
    if args.json:
        print(json.dumps(figures, indent=2, sort_keys=True))
        return
    for name, figure in figures.items():
        flags = ", ".join(f"{flag} {n}" for flag, n in sorted(figure["flags"].items()))
        print(
            f"{name}: {figure['runs_with_unknown_refund']} of {figure['runs']} runs with "
            f"unknown_refund; flags: {flags or 'none'}"
        )


if __name__ == "__main__":
    main()
