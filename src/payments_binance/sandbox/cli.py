"""``payments sandbox``: run the Binance Pay sandbox on loopback until Ctrl-C.

It prints ``key: value`` lines (base URL, accepted credentials, webhook certificate serial,
fault profile, workers, state) and then ``ready: ...``, which ``SandboxProcess`` waits for.
With ``--workers N`` it starts N processes on one socket sharing ``--state`` (see
:mod:`payments_binance.sandbox.workers`); the hidden ``--listen-fd``/``--worker-index`` options
are how it starts them. Heavy imports
happen inside the command, so mounting it in a CLI costs only click.
An unreadable ``--signing-key`` file or an unknown ``--faults`` name is a usage error.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from payments_binance.sandbox.sandbox import Sandbox

PROFILE_NAMES = ("none", "flaky", "webhooks", "chaos")


def _schedule(_: click.Context, __: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        return tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter("give comma-separated seconds, e.g. 1,2,4") from None


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=0, show_default=True, help="Port; 0 picks a free one.")
@click.option("--api-key", default=None, help="Merchant API key to accept [sandbox default].")
@click.option("--api-secret", default=None, help="Its secret [sandbox default].")
@click.option(
    "--faults",
    type=click.Choice(PROFILE_NAMES),
    default="none",
    show_default=True,
    help="Named fault profile.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of fault decisions and ids.")
@click.option("--no-webhooks", is_flag=True, help="Log webhooks but do not deliver them.")
@click.option(
    "--strict", is_flag=True, help="Enforce Binance's documented ±1000 ms timestamp window."
)
@click.option("--timestamp-window-ms", type=int, default=None, help="Timestamp window [60000].")
@click.option(
    "--webhook-retry-schedule",
    callback=_schedule,
    default=None,
    help="Seconds before each webhook retry, comma-separated [1,2,4,8,16,32].",
)
@click.option("--default-webhook-url", default=None, help="Webhook URL for orders without one.")
@click.option(
    "--signing-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM RSA private key for webhooks [generated at start].",
)
@click.option(
    "--refund-settle-delay",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds until a refund settles [0: at once].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes serving this sandbox (they share --state).",
)
@click.option(
    "--state",
    default=None,
    help="SQLite file or postgresql:// URL holding the orders [memory; a temporary file "
    "with --workers > 1].",
)
@click.option("--listen-fd", type=int, default=None, hidden=True, help="Internal: worker socket.")
@click.option("--worker-index", type=int, default=0, hidden=True, help="Internal: worker number.")
def sandbox_command(
    host: str,
    port: int,
    api_key: str | None,
    api_secret: str | None,
    faults: str,
    seed: int,
    no_webhooks: bool,
    strict: bool,
    timestamp_window_ms: int | None,
    webhook_retry_schedule: tuple[float, ...] | None,
    default_webhook_url: str | None,
    signing_key: Path | None,
    refund_settle_delay: float | None,
    workers: int,
    state: str | None,
    listen_fd: int | None,
    worker_index: int,
) -> None:
    """Run a local Binance Pay Merchant API simulator (the sandbox) until Ctrl-C."""
    from payments_binance.sandbox.config import SandboxConfig
    from payments_binance.sandbox.sandbox import Sandbox
    from payments_core.testing.sandbox import PROFILES

    given = {
        "api_key": api_key,
        "api_secret": api_secret,
        "timestamp_window_ms": timestamp_window_ms,
        "webhook_retry_schedule": webhook_retry_schedule,
        "signing_key_pem": signing_key.read_bytes() if signing_key is not None else None,
        "refund_settle_delay_s": refund_settle_delay,
    }
    options: dict[str, object] = {
        "seed": seed,
        "deliver_webhooks": not no_webhooks,
        "strict": strict,
        "default_webhook_url": default_webhook_url,
        "faults": None if faults == "none" else PROFILES[faults],
        "worker": worker_index,
        **{name: value for name, value in given.items() if value is not None},
    }
    with contextlib.ExitStack() as cleanup:
        if workers > 1 and listen_fd is None:
            import tempfile

            from payments_binance.sandbox.certificates import SigningKey

            scratch = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="sandbox-")))
            state = state or str(scratch / "state.db")
            if signing_key is None:
                # Every worker must sign with the same key, so the parent makes it.
                signing_key = scratch / "webhook-key.pem"
                pem = options["signing_key_pem"] = SigningKey.generate().private_pem()
                signing_key.write_bytes(pem)
        options["state"] = state
        try:
            config = SandboxConfig(**options)  # type: ignore[arg-type]
            sandbox = Sandbox(config)
        except (TypeError, ValueError) as exc:
            raise click.UsageError(str(exc)) from exc
        except Exception as exc:  # the state database cannot be opened
            raise click.UsageError(f"--state {state}: {exc}") from exc
        if listen_fd is not None:
            _serve_as_worker(sandbox, listen_fd)
            return

        def announce(base_url: str) -> None:
            click.echo("Binance Pay sandbox: a local simulator, no real money moves")
            click.echo(f"base_url: {base_url}")
            click.echo(f"api_key: {config.api_key}")
            click.echo(f"api_secret: {config.api_secret}")
            click.echo(f"certificate_serial: {', '.join(sandbox.certificate_serials)}")
            click.echo(f"timestamp_window_ms: {config.effective_timestamp_window_ms}")
            click.echo(f"faults: {faults} (seed {seed})")
            click.echo(f"webhooks: {'off' if no_webhooks else 'on'}")
            click.echo(f"workers: {workers}")
            click.echo(f"state: {_shown(state)}")
            click.echo("ready: serving until Ctrl-C", nl=True)

        if workers == 1:
            _serve_alone(sandbox, host, port, announce)
            return
        child_args = _child_args(click.get_current_context(), state, signing_key)
        _serve_with_workers(sandbox, host, port, workers, child_args, announce)
        click.echo("stopped")


def _serve_alone(sandbox: Sandbox, host: str, port: int, announce: Callable[[str], None]) -> None:
    from payments_binance.sandbox.server import serve_forever

    try:
        serve_forever(sandbox, host, port, on_ready=announce)
    except KeyboardInterrupt:
        click.echo("stopped")  # uvicorn re-raises Ctrl-C after its graceful shutdown


def _serve_with_workers(
    sandbox: Sandbox,
    host: str,
    port: int,
    workers: int,
    child_args: list[str],
    announce: Callable[[str], None],
) -> None:
    from payments_binance.sandbox.shared import SharedOrderBook
    from payments_binance.sandbox.workers import serve_workers
    from payments_core.serving import bind, url_of

    if isinstance(sandbox.book, SharedOrderBook):
        sandbox.book.disconnect()  # the parent only created the schema; the workers serve
    with bind(host, port) as sock:
        base_url = url_of(sock)
        try:
            serve_workers(sock, workers, child_args, on_ready=lambda: announce(base_url))
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from exc


def _serve_as_worker(sandbox: Sandbox, fd: int) -> None:
    import socket

    from payments_binance.sandbox.server import serve_forever

    sock = socket.socket(fileno=fd)
    # "ready" is what the parent waits for; a worker prints nothing else.
    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(sandbox, sock=sock, on_ready=lambda _: click.echo("ready: worker"))


def _child_args(context: click.Context, state: str | None, signing_key: Path | None) -> list[str]:
    """The options every worker gets: the parent's own, with the shared state and key."""
    args: list[str] = []
    skip = {"host", "port", "workers", "state", "signing_key", "listen_fd", "worker_index"}
    command = context.command
    for param in command.params:
        if param.name in skip or not isinstance(param, click.Option):
            continue
        value = context.params[param.name]
        source = context.get_parameter_source(param.name)
        if source is click.core.ParameterSource.DEFAULT or value is None:
            continue
        flag = param.opts[0]
        if param.is_flag:
            if value:
                args.append(flag)
        elif param.name == "webhook_retry_schedule":
            args += [flag, ",".join(str(delay) for delay in value)]
        else:
            args += [flag, str(value)]
    args += ["--state", str(state), "--signing-key", str(signing_key)]
    return args


def _shown(state: str | None) -> str:
    """``--state`` as printed: a database URL without its password."""
    if state is None:
        return "memory"
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", state)
