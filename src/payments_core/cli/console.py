"""``payments console``: the operator's console for a ledger, behind a one-time login link."""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

import click

from payments_core.cli._common import (
    database_url_option,
    ledger_url,
    plugins_option,
    serving_payments,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from payments_core.console import OneTimeToken
    from payments_core.facade import Payments

__all__ = ["commands", "console_with_login"]

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def console_with_login(payments: Payments, token: OneTimeToken) -> Starlette:
    """The console for ``payments``, where ``GET /login?token=...`` opens the one session."""
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route

    from payments_core.console import create_console_app

    console = create_console_app(payments, authorize=token.authorize)
    return Starlette(routes=[Route("/login", token.login), Mount("", console)])


@click.command("console")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on; anything but loopback exposes the console to the network.",
)
@click.option("--port", default=8001, show_default=True, type=click.IntRange(0, 65535))
@database_url_option
@plugins_option
def console_command(
    host: str, port: int, database_url: str | None, plugins: tuple[str, ...]
) -> None:
    """Serve the operator's console over the ledger: orders, timelines, refunds, reconciliation.

    Prints a login link with a one-time token: the first browser to open it gets a session
    that may see and act (refund, close, reconcile, announce); the link then stops working.
    Actions are logged with the operator's name. Give the application's plugins with --plugin
    so that announced changes reach its payment_status_changed hook.
    """
    import getpass

    import uvicorn

    from payments_core import Config
    from payments_core.console import OneTimeToken
    from payments_core.redaction import safe_url
    from payments_core.serving import bind

    try:
        import jinja2  # noqa: F401 - only to say what is missing, before anything starts
    except ImportError:
        raise click.ClickException(
            "the console needs jinja2: pip install 'payments-core[console]'"
        ) from None
    config = Config.load()
    url = ledger_url(database_url, config)
    payments = serving_payments(url, plugins, config)
    token = OneTimeToken(operator=f"{getpass.getuser()} (payments console)")
    assert token.token is not None
    app = console_with_login(payments, token)
    try:
        listening = bind(host, port, backlog=128)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from None
    port = listening.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"ledger {safe_url(url)}", err=True)
    if host not in LOOPBACK:
        click.echo(
            f"warning: listening on {host}, not loopback: anyone who can reach it sees "
            "the login page",
            err=True,
        )
    click.echo("open this link once to log in (it works once):", err=True)
    click.echo(f"    http://{shown_host}:{port}{token.login_path(token.token)}", err=True)
    try:
        # uvicorn shuts down gracefully on Ctrl+C, then raises it again: the end, not an error.
        with suppress(KeyboardInterrupt):
            uvicorn.Server(uvicorn.Config(app, log_level="info")).run(sockets=[listening])
    finally:
        listening.close()
        payments.close()


commands = [console_command]
