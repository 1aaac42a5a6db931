"""``payments serve --metrics``: Prometheus scrapes ``/metrics`` over HTTP from the real command."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.ledger.serve_process import ServeProcess, paid_callbacks, quiet_sandbox, serve_env


def sample(scrape: str, name: str, **labels: str) -> float:
    """The value of the sample ``name{labels}`` in a Prometheus text scrape."""
    for line in scrape.splitlines():
        if not line.startswith(f"{name}{{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.partition("}")[0]))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels} in the scrape:\n{scrape}")


def test_metrics_are_scraped_from_payments_serve(tmp_path: Path) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    with quiet_sandbox(seed=22) as (sandbox, base_url):
        callbacks = paid_callbacks(sandbox, base_url, ledger_url, ["metrics-1", "metrics-2"])
        env = serve_env(ledger_url, base_url, tmp_path)
        with ServeProcess(["--metrics"], env) as serve, httpx.Client(base_url=serve.url) as client:
            before = client.get("/metrics")
            answer = client.post(
                "/callbacks/binance",
                content=callbacks[0].delivery.body,
                headers=dict(callbacks[0].headers),
            )
            after = client.get("/metrics")
    assert answer.status_code == 200
    assert before.status_code == after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")
    scraped = after.text
    provider = {"payments_provider": "binance"}
    assert sample(scraped, "payments_callbacks_total", payments_outcome="applied", **provider) == 1
    assert (
        sample(scraped, "payments_callback_duration_seconds_count", payments_outcome="applied") == 1
    )
    # Two orders were created, one is paid now: one pending, none for fifteen minutes yet.
    assert sample(before.text, "payments_orders_pending", payments_pending_older_than="0s") == 2
    assert sample(scraped, "payments_orders_pending", payments_pending_older_than="0s") == 1
    assert sample(scraped, "payments_orders_pending", payments_pending_older_than="15m") == 0
    assert sample(scraped, "payments_outbox_backlog") == 0
    assert sample(scraped, "payments_refunds_pending") == 0
    assert (
        sample(
            scraped,
            "http_client_request_duration_seconds_count",
            payments_operation="certificates",
        )
        >= 1
    )
