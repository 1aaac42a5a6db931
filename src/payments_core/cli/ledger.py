"""``payments serve``, ``reconcile``, ``status`` and ``refund``: the ledger's commands.

Each reads the ledger's URL from ``--database-url``, else ``PAYMENTS_DATABASE_URL`` (or
``database_url`` in the configuration file), else ``sqlite:///payments.sqlite3`` in the working
directory. The commands that need an order already recorded (``status``, ``refund``,
``reconcile``) never create an SQLite ledger: where there is no file, they say so.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from payments_core.cli._common import (
    database_url_option,
    echo_fields,
    echo_json,
    json_option,
    ledger_url,
    load_plugins,
    open_existing_ledger,
    order_record,
    orders_for,
    plugins_option,
    serving_payments,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from payments_core.models import Order, Refund
    from payments_core.outcomes import ReconcileOutcome

__all__ = ["commands", "serve_worker_app"]

#: Reconciliation leaves younger unannounced changes to the process announcing them now.
ANNOUNCE_AFTER_S = 60


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes serving the port, each with its own ledger connection.",
)
@click.option(
    "--metrics",
    is_flag=True,
    help="Also serve GET /metrics for Prometheus (needs opentelemetry-sdk and "
    "opentelemetry-exporter-prometheus; one worker).",
)
@click.option(
    "--access-log",
    is_flag=True,
    help="Log one line per request (uvicorn's access log); off by default.",
)
@database_url_option
@plugins_option
def serve_command(
    host: str,
    port: int,
    workers: int,
    metrics: bool,
    access_log: bool,
    database_url: str | None,
    plugins: tuple[str, ...],
) -> None:
    """Receive provider callbacks at POST /callbacks/{provider} and apply them to the ledger.

    Runs uvicorn until interrupted. Each callback is verified, applied once, announced to the
    application hooks, and acknowledged to the provider. At startup, changes that a previous
    run committed but never announced (it was killed in between) are announced first.
    """
    import uvicorn

    from payments_core import Config
    from payments_core.asgi import create_callback_app
    from payments_core.redaction import safe_url

    config = Config.load()
    url = ledger_url(database_url, config)
    payments = serving_payments(url, plugins, config)
    providers = ", ".join(payments.provider_names) or "none loaded"
    click.echo(f"ledger {safe_url(url)}; providers: {providers}", err=True)
    click.echo("callbacks: POST /callbacks/<provider> on the address below", err=True)
    if metrics and workers > 1:
        payments.close()
        raise click.UsageError(
            "--metrics serves one process's metrics: use --workers 1, or export to a "
            "collector (docs/observability.md)"
        )
    if workers == 1:
        routes = []
        if metrics:
            from payments_core.telemetry.prometheus import metrics_route

            routes.append(metrics_route(payments.ledger))
            click.echo("metrics: GET /metrics", err=True)
        app = create_callback_app(payments, close_payments=True, routes=routes)
        uvicorn.run(app, host=host, port=port, **_uvicorn_options(access_log))
        return
    # Announced here, once, before any worker serves: a worker announcing at its startup
    # could repeat a change that a sibling, already serving, is announcing.
    with payments:
        announced = payments.announce_pending_changes()
    if announced:
        click.echo(f"announced {announced} change(s) left unannounced by a previous run", err=True)
    os.environ["PAYMENTS_DATABASE_URL"] = url  # what serve_worker_app reads
    os.environ["PAYMENTS_PLUGINS"] = " ".join(plugins)
    uvicorn.run(
        f"{__name__}:{serve_worker_app.__name__}",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        **_uvicorn_options(access_log),
    )


def _uvicorn_options(access_log: bool) -> dict[str, Any]:
    """How ``payments serve`` runs uvicorn: a request costs only what a callback needs.

    The forwarded client address (``X-Forwarded-For`` from a proxy on loopback) is read only
    for the access log, the one thing that uses it; no ``Server`` header names the software.
    """
    return {
        "lifespan": "on",
        "log_level": "info",
        "access_log": access_log,
        "proxy_headers": access_log,
        "server_header": False,
    }


def serve_worker_app() -> Starlette:
    """The callback app of one ``payments serve --workers N`` worker process.

    uvicorn calls it in each worker it starts (an app factory), so that every worker opens its
    own ledger connection. The ledger and the plugins are those the command was given, passed
    in ``PAYMENTS_DATABASE_URL`` and ``PAYMENTS_PLUGINS``. At its startup a worker announces
    only the changes left unannounced for over a minute (the command announced the rest
    before starting the workers), so a restarted worker cannot repeat a sibling's change.
    """
    from datetime import timedelta

    from payments_core import Config
    from payments_core.asgi import create_callback_app

    config = Config.load()
    plugins = tuple(os.environ.get("PAYMENTS_PLUGINS", "").split())
    payments = serving_payments(ledger_url(None, config), plugins, config)
    return create_callback_app(
        payments, close_payments=True, announce_older_than=timedelta(seconds=ANNOUNCE_AFTER_S)
    )


@click.command("reconcile")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Only orders and refunds recorded at least this long ago (default: 900, fifteen minutes).",
)
@click.option("--provider", help="Only orders and refunds of this provider.")
@database_url_option
@plugins_option
@json_option
def reconcile_command(
    older_than: float | None,
    provider: str | None,
    database_url: str | None,
    plugins: tuple[str, ...],
    as_json: bool,
) -> None:
    """Ask the provider about orders not yet final and refunds still pending; apply its answers.

    Orders are settled as their callbacks would settle them; refunds through the provider's
    ``query_refund``, as their answers would.

    First announces, to the application plugins, the changes committed at least a minute ago
    but never announced (a process died between its commit and its hook). Exits with status 1
    if the provider could not be asked about some order (after the others are done).
    """
    from datetime import timedelta

    from payments_core import Config, Payments
    from payments_core.facade import RECONCILE_AFTER

    config = Config.load()
    age = RECONCILE_AFTER if older_than is None else timedelta(seconds=older_than)
    application = load_plugins(plugins)
    ledger = open_existing_ledger(ledger_url(database_url, config))
    with Payments(config, ledger=ledger, plugins=application) as payments:
        payments.announce_pending_changes(timedelta(seconds=ANNOUNCE_AFTER_S))
        outcomes = payments.reconcile(age, provider=provider)
        refunds = payments.reconcile_refunds(age, provider=provider)
    rows = [_reconciled(outcome) for outcome in outcomes]
    refund_rows = [
        {
            "provider": refund.provider,
            "reference": refund.reference,
            "refund_reference": refund.refund_reference,
            "status": refund.status.value,
        }
        for refund in refunds
    ]
    if as_json:
        echo_json({"orders": rows, "refunds": refund_rows})
    else:
        for row in rows:
            click.echo(_reconciled_line(row))
        changed = sum(row["applied"] for row in rows)
        failed = sum(row["error"] is not None for row in rows)
        click.echo(f"{len(rows)} pending checked: {changed} changed, {failed} not checked")
        for refund_row in refund_rows:
            click.echo(
                f"{refund_row['provider']}\t{refund_row['reference']}\t"
                f"refund {refund_row['refund_reference']}: {refund_row['status']}"
            )
        settled = sum(row["status"] != "pending" for row in refund_rows)
        click.echo(f"{len(refund_rows)} pending refunds checked: {settled} settled")
    if any(row["error"] is not None for row in rows):
        raise SystemExit(1)


def _reconciled(outcome: ReconcileOutcome) -> dict[str, Any]:
    result = outcome.result
    return {
        "provider": outcome.order.provider,
        "reference": outcome.order.reference,
        "ledger_status": outcome.order.status.value,
        "provider_status": None if outcome.answer is None else outcome.answer.status.value,
        "applied": bool(result and result.applied),
        "duplicate": bool(result and result.duplicate),
        "flag": None if result is None or result.flagged is None else result.flagged.value,
        "error": None
        if outcome.error is None
        else f"{type(outcome.error).__name__}: {outcome.error}",
    }


def _reconciled_line(row: dict[str, Any]) -> str:
    head = f"{row['provider']}\t{row['reference']}\t"
    if row["error"] is not None:
        return head + f"not checked: {row['error']}"
    if row["provider_status"] is None:
        return head + "unknown to the provider"
    if row["applied"]:
        return head + f"{row['ledger_status']} -> {row['provider_status']}"
    if row["flag"] is not None:
        return head + f"{row['provider_status']} at the provider, not applied: {row['flag']}"
    return head + f"still {row['provider_status']}"


@click.command("status")
@click.argument("reference")
@click.option("--provider", help="Only the order at this provider.")
@database_url_option
@json_option
def status_command(
    reference: str, provider: str | None, database_url: str | None, as_json: bool
) -> None:
    """Show the ledger's record of the order for REFERENCE: its refunds and every event."""
    from payments_core import Config
    from payments_core.serialization import converter

    url = ledger_url(database_url, Config.load())
    with open_existing_ledger(url) as ledger:
        records = [
            (
                record,
                ledger.refunds_for(record.order.provider, reference),
                ledger.events_for(record.order.provider, reference),
            )
            for record in orders_for(ledger, url, reference, provider)
        ]
    if as_json:
        data = [
            {**converter.unstructure(record), "refunds": refunds, "events": events}
            for record, refunds, events in records
        ]
        echo_json({"orders": data})
        return
    for record, refunds, events in records:
        order = record.order
        click.echo(f"{order.provider} order for {order.reference}: {order.status}")
        echo_fields(
            ("amount", order.amount),
            ("refunded", _refunded(order)),
            ("provider order id", order.provider_order_id),
            ("provider reference", order.provider_reference),
            ("paid", order.paid),
            ("provider fee", order.fee),
            ("transaction id", order.transaction_id),
            ("recorded", record.created_at.isoformat()),
            ("last changed", record.updated_at.isoformat()),
            ("refunds", len(refunds) or "none"),
        )
        for refund in refunds:
            click.echo(f"    {_refund_line(refund)}")
        click.echo(f"  events            {len(events) or 'none'}")
        for event in events:
            what = "applied" if event.applied else f"not applied: {event.flag}"
            click.echo(
                f"    {event.received_at.isoformat()}  {event.status:<9} {what}  {event.event_id}"
            )


def _refunded(order: Order) -> str:
    refunded = order.refunded
    plain = "0" if refunded is None else refunded.plain
    return f"{plain} {order.amount.currency} of {order.amount.plain}"


def _refund_line(refund: Refund) -> str:
    settlement = "" if refund.settlement is None else f" ({refund.settlement})"
    return (
        f"{refund.refund_reference}  {refund.status:<9} {refund.amount}{settlement}  "
        f"provider id {refund.provider_refund_id or '(not answered yet)'}"
    )


@click.command("refund")
@click.argument("reference")
@click.option(
    "--amount",
    metavar="AMOUNT",
    help="How much to give back, in the order's price currency (default: all that remains).",
)
@click.option("--reason", default="", help="Why; the provider may show it to the payer.")
@click.option(
    "--refund-reference",
    metavar="REF",
    help="The refund's own id, which makes it safe to run again (default: refund-AMOUNT, so "
    "the same command twice is one refund).",
)
@click.option(
    "--provider",
    help="The order's provider (default: the one the ledger records for REFERENCE).",
)
@database_url_option
@json_option
def refund_command(
    reference: str,
    amount: str | None,
    reason: str,
    refund_reference: str | None,
    provider: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Give back all or part of the paid order for REFERENCE, once, and record it.

    The refund is checked against the ledger first: more than remains, another currency or
    an unpaid order is refused with nothing sent. Run it again after a timeout: the same
    refund reference is the same refund. Exits with status 1 if the refund is still pending.
    """
    from payments_core import Config, Money, Payments, RefundRequest, RefundStatus

    config = Config.load()
    url = ledger_url(database_url, config)
    ledger = open_existing_ledger(url)
    with Payments(config, ledger=ledger) as payments:
        order = order_record(ledger, url, reference, provider).order
        name = payments.provider(order.provider).name
        if amount is None:
            refunded = order.refunded.amount if order.refunded is not None else 0
            money = Money(order.amount.amount - refunded, order.amount.currency)
        else:
            money = Money(amount, order.amount.currency)
        request = RefundRequest(
            reference=reference,
            refund_reference=refund_reference or f"refund-{money.plain}",
            amount=money,
            reason=reason,
        )
        refund = payments.refund_order(request, provider=name)
        after = ledger.get_order(name, reference)
    assert after is not None
    if as_json:
        echo_json({"refund": refund, "order": after})
    else:
        click.echo(f"{name} refund of {reference}: {_refund_line(refund)}")
        click.echo(f"order {after.status}: refunded {_refunded(after)}")
    if refund.status is RefundStatus.PENDING:
        raise SystemExit(1)


commands = [serve_command, reconcile_command, status_command, refund_command]
