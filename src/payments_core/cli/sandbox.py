"""``payments sandbox --provider NAME`` and ``payments trigger``: drive a provider's sandbox.

``payments sandbox --provider NAME`` opens the provider's sandbox through its ``open_sandbox``
hook, on loopback, and keeps it until Ctrl-C. It prints the sandbox's settings as ``key: value``
lines, the ``export`` lines that point ``payments serve`` (or any application) at it, the URL
of its trigger endpoint, and last ``ready: ...``.

``payments trigger ACTION REFERENCE`` finds the order for REFERENCE in the ledger and asks the
running sandbox's trigger endpoint (``PAYMENTS_SANDBOX_URL``) to act on it, as the payer or
the provider's back office would: the sandbox then sends its callback to ``payments serve``,
like Stripe's ``stripe trigger``. The endpoint calls the :class:`~payments_core.ProviderSandbox`
the hook handed over: ``pay`` is part of that protocol; ``cancel``, ``expire`` and
``settle_refunds`` are methods the handle, or the simulator it runs (its ``sandbox``
attribute), may offer too (each takes the provider's order id); an action neither offers is
refused, naming those that are.

Without ``--provider``, ``payments sandbox`` runs the command a provider registers under
that name (Binance Pay's, with its own options: ``payments sandbox --port 8080 --workers 4``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import click

from payments_core.cli._common import (
    database_url_option,
    ledger_url,
    open_existing_ledger,
    order_record,
)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from payments_core.hookspecs import ProviderSandbox
    from payments_core.plugins import PluginHost

__all__ = ["ACTIONS", "SANDBOX_URL_VARIABLE", "commands"]

#: What ``payments trigger`` can ask, and the sandbox handle's method that does it.
ACTIONS: Final = {
    "pay": "pay",
    "cancel": "cancel",
    "expire": "expire",
    "settle-refund": "settle_refunds",
}
#: Where ``payments trigger`` finds the running sandbox's trigger endpoint.
SANDBOX_URL_VARIABLE: Final = "PAYMENTS_SANDBOX_URL"


@click.command(
    "sandbox",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.option("--provider", help="Whose sandbox to run (any provider with the sandbox hook).")
@click.option(
    "--forward-to",
    metavar="URL",
    help="Send the sandbox's callbacks here (a provider with account-wide webhooks, such as "
    "Stripe, needs it: http://127.0.0.1:8000/callbacks/stripe).",
)
@click.option(
    "--trigger-port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="The port of the trigger endpoint that payments trigger calls; 0 picks a free one.",
)
@click.pass_context
def sandbox_command(
    ctx: click.Context, provider: str | None, forward_to: str | None, trigger_port: int
) -> None:
    """Run a provider's local sandbox until Ctrl-C and print how to use it.

    Prints the sandbox's settings, the export lines for payments serve, and the trigger
    endpoint that payments trigger drives. Without --provider, runs the sandbox command a
    provider registers itself, with its own options (Binance Pay's are listed by
    python -m payments_binance.sandbox --help).
    """
    from payments_core.plugins import PluginHost

    host = PluginHost()
    host.load_entry_points()
    if provider is None:
        _run_provider_command(ctx, host)
        return
    if ctx.args:
        raise click.UsageError(
            f"unexpected {' '.join(ctx.args)!r}: with --provider, only --forward-to and "
            "--trigger-port are understood"
        )
    hooks = host.provider(provider)
    opened = hooks.open_sandbox()
    if opened is None:
        raise click.ClickException(f"provider {provider!r} has no sandbox")
    info = hooks.describe_provider()
    variables = {} if info is None else info.settings
    _serve_sandbox(provider, opened, variables, forward_to, trigger_port)


def _run_provider_command(ctx: click.Context, host: PluginHost) -> None:
    """Hand the arguments to the ``sandbox`` command a provider registers, if one does."""
    found = click.Group()
    host.pm.hook.register_commands(cli=found)
    command = found.commands.get("sandbox")
    if command is None:
        with_sandbox = [
            name
            for name in host.provider_names
            if (info := host.provider(name).describe_provider()) and "sandbox" in info.capabilities
        ]
        raise click.UsageError(
            f"name the provider: --provider NAME ({', '.join(with_sandbox) or 'none'} "
            "have a sandbox)"
        )
    with command.make_context("payments sandbox", list(ctx.args), parent=ctx) as sub:
        command.invoke(sub)


def _serve_sandbox(
    provider: str,
    opened: AbstractContextManager[ProviderSandbox],
    variables: Mapping[str, str],
    forward_to: str | None,
    trigger_port: int,
) -> None:
    """Run the sandbox and its trigger endpoint until Ctrl-C or SIGTERM."""
    import signal
    import threading

    from payments_core.serving import BackgroundServer

    stop = threading.Event()
    with opened as sandbox:
        if forward_to is not None:
            sandbox.forward_callbacks(forward_to)
        app = _trigger_app(provider, sandbox)
        with BackgroundServer(app, "127.0.0.1", trigger_port, name="sandbox-trigger") as server:
            click.echo(f"provider: {provider}")
            for key, value in sorted(sandbox.settings.items()):
                click.echo(f"{key}: {value}")
            click.echo(f"trigger_url: {server.url}")
            for key, value in sorted(sandbox.settings.items()):
                if key in variables:
                    click.echo(f"export {variables[key]}={value}")
            click.echo(f"export {SANDBOX_URL_VARIABLE}={server.url}")
            click.echo(f"ready: the {provider} sandbox at {sandbox.base_url}; Ctrl-C stops it")
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()


def _trigger_app(provider: str, sandbox: ProviderSandbox) -> Any:
    """The trigger endpoint: ``POST /trigger/{provider}/{action}/{provider_order_id}``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def trigger(request: Request) -> JSONResponse:
        wanted = request.path_params["provider"]
        action = request.path_params["action"]
        order_id = request.path_params["order_id"]
        if wanted != provider:
            message = f"this is the {provider} sandbox, not {wanted}'s"
            return JSONResponse({"error": message}, status_code=404)
        method = _action(sandbox, ACTIONS.get(action, ""))
        if method is None:
            offered = [name for name, attr in ACTIONS.items() if _action(sandbox, attr)]
            message = f"the {provider} sandbox cannot {action}; it can {', '.join(offered)}"
            return JSONResponse({"error": message}, status_code=404)
        try:
            await run_in_threadpool(method, order_id)
        except Exception as error:  # the sandbox refuses: unknown order, wrong state
            message = f"the {provider} sandbox refused to {action} {order_id}: {error}"
            return JSONResponse({"error": message}, status_code=409)
        return JSONResponse({"provider": provider, "action": action, "order": order_id})

    return Starlette(
        routes=[Route("/trigger/{provider}/{action}/{order_id}", trigger, methods=["POST"])]
    )


def _action(sandbox: ProviderSandbox, name: str) -> Callable[[str], object] | None:
    """The handle's method ``name``, else that of the simulator it runs (its ``sandbox``)."""
    found = getattr(sandbox, name, None) or getattr(getattr(sandbox, "sandbox", None), name, None)
    return found if callable(found) else None


@click.command("trigger")
@click.argument("action", type=click.Choice(list(ACTIONS)))
@click.argument("reference")
@click.option("--provider", help="The order's provider (default: the one the ledger records).")
@click.option(
    "--sandbox-url",
    envvar=SANDBOX_URL_VARIABLE,
    required=True,
    metavar="URL",
    help=f"The trigger endpoint that payments sandbox printed (default: {SANDBOX_URL_VARIABLE}).",
)
@database_url_option
def trigger_command(
    action: str,
    reference: str,
    provider: str | None,
    sandbox_url: str,
    database_url: str | None,
) -> None:
    """Make a running sandbox pay, cancel or expire the order for REFERENCE, or settle its
    refunds; the sandbox then sends the callback, as the real provider would.

    The order is looked up in the ledger (as payments checkout recorded it); the sandbox is
    the one payments sandbox --provider NAME runs.
    """
    import httpx

    from payments_core import Config

    url = ledger_url(database_url, Config.load())
    with open_existing_ledger(url) as ledger:
        order = order_record(ledger, url, reference, provider).order
    target = f"{sandbox_url.rstrip('/')}/trigger/{order.provider}/{action}/"
    try:
        with httpx.Client(trust_env=False, timeout=30) as http:
            answer = http.post(target + order.provider_order_id)
    except httpx.HTTPError as error:
        raise click.ClickException(
            f"no sandbox answered at {sandbox_url}: {type(error).__name__}: {error}"
        ) from None
    if answer.status_code != 200:
        raise click.ClickException(_error_of(answer))
    click.echo(f"{order.provider} sandbox: {action} {reference} ({order.provider_order_id})")


def _error_of(answer: Any) -> str:
    try:
        return str(answer.json()["error"])
    except (ValueError, KeyError, TypeError):
        return f"the sandbox answered {answer.status_code}: {answer.text[:200]}"


commands = [sandbox_command, trigger_command]
