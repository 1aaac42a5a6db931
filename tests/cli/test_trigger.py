"""``payments trigger`` drives a running ``payments sandbox --provider NAME`` for a running
``payments serve``: three processes, as an operator runs them."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from payments_core import PaymentStatus
from payments_core.cli import cli
from payments_core.ledger import open_ledger
from tests.cli.conftest import CLEARED

PAYMENTS = [sys.executable, "-c", "from payments_core.cli import main; main()"]


def _environment(extra: dict[str, str]) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if key not in CLEARED}
    return {**base, **extra}


@contextmanager
def _process(
    args: list[str], env: dict[str, str], until: str, *, stderr: bool
) -> Iterator[list[str]]:
    """Run ``payments ARGS`` until the block ends; yield its output up to the line containing
    ``until`` (read from stderr if ``stderr``)."""
    with subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [*PAYMENTS, *args],
        env=env,
        stdout=subprocess.DEVNULL if stderr else subprocess.PIPE,
        stderr=subprocess.PIPE if stderr else subprocess.DEVNULL,
        text=True,
    ) as process:
        stream = process.stderr if stderr else process.stdout
        assert stream is not None
        # Keep the pipe drained once read, so a chatty server never blocks on it.
        drain = threading.Thread(target=stream.read, daemon=True)
        lines: list[str] = []
        try:
            for line in stream:
                lines.append(line.rstrip("\n"))
                if until in line:
                    break
            else:
                pytest.fail(f"payments {' '.join(args)} ended before {until!r}: {lines}")
            drain.start()
            yield lines
        finally:
            process.terminate()
            process.wait(timeout=10)
            if drain.is_alive():
                drain.join(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_status(url: str, provider: str, reference: str, wanted: PaymentStatus) -> None:
    deadline = time.monotonic() + 20
    pause = threading.Event()
    with open_ledger(url) as ledger:
        while (order := ledger.get_order(provider, reference)) is None or (
            order.status is not wanted
        ):
            assert time.monotonic() < deadline, f"{reference} is {order and order.status}"
            pause.wait(0.05)


@pytest.mark.parametrize("provider", ["binance", "stripe"])
def test_trigger_pay_makes_the_order_paid_in_a_running_serve(provider: str, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    port = _free_port()
    callback_url = f"http://127.0.0.1:{port}/callbacks/{provider}"
    sandbox_args = ["sandbox", "--provider", provider, "--forward-to", callback_url]
    with _process(sandbox_args, _environment({}), "ready:", stderr=False) as printed:
        exports = dict(
            match.groups() for line in printed if (match := re.match(r"export (\w+)=(.*)", line))
        )
        env = _environment({**exports, "PAYMENTS_DATABASE_URL": database_url})
        serve_args = ["serve", "--port", str(port)]
        with _process(serve_args, env, "Uvicorn running on", stderr=True):
            runner = CliRunner()
            for reference in ("booking-42", "booking-43"):
                created = runner.invoke(
                    cli,
                    [
                        "checkout",
                        "--provider",
                        provider,
                        "--amount",
                        "1.00",
                        "--reference",
                        reference,
                        "--callback-url",
                        callback_url,
                    ],
                    env={**CLEARED, **env},
                )
                assert created.exit_code == 0, created.output

            triggered = runner.invoke(cli, ["trigger", "pay", "booking-42"], env={**CLEARED, **env})

            assert triggered.exit_code == 0, triggered.output
            assert triggered.stdout.startswith(f"{provider} sandbox: pay booking-42 (")
            _wait_for_status(database_url, provider, "booking-42", PaymentStatus.PAID)
            again = runner.invoke(cli, ["trigger", "pay", "booking-42"], env={**CLEARED, **env})
            assert again.exit_code == 1
            assert again.stderr.startswith(f"Error: the {provider} sandbox refused to pay ")
            # The action that ends an unpaid order: the payer cancels at Binance, a Stripe
            # Checkout Session expires.
            ending, ended = {
                "binance": ("cancel", PaymentStatus.CLOSED),
                "stripe": ("expire", PaymentStatus.EXPIRED),
            }[provider]
            closed = runner.invoke(cli, ["trigger", ending, "booking-43"], env={**CLEARED, **env})
            assert closed.exit_code == 0, closed.output
            _wait_for_status(database_url, provider, "booking-43", ended)
            unable = {"binance": "expire", "stripe": "cancel"}[provider]
            refused = runner.invoke(cli, ["trigger", unable, "booking-42"], env={**CLEARED, **env})
            assert refused.exit_code == 1
            offered = {"binance": "pay, cancel, settle-refund", "stripe": "pay, expire"}[provider]
            assert refused.stderr == (
                f"Error: the {provider} sandbox cannot {unable}; it can {offered}\n"
            )
