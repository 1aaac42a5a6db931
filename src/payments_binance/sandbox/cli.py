"""``payments sandbox``: run the Binance Pay sandbox on loopback until Ctrl-C.

It prints ``key: value`` lines (base URL, accepted credentials, webhook certificate serial,
fault profile) and then ``ready: ...``, which ``SandboxProcess`` waits for. Heavy imports
happen inside the command, so mounting it in a CLI costs only click.
An unreadable ``--signing-key`` file or an unknown ``--faults`` name is a usage error.
"""

from __future__ import annotations

from pathlib import Path

import click

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
) -> None:
    """Run a local Binance Pay Merchant API simulator (the sandbox) until Ctrl-C."""
    from payments_binance.sandbox.config import SandboxConfig
    from payments_binance.sandbox.faults import PROFILES
    from payments_binance.sandbox.sandbox import Sandbox
    from payments_binance.sandbox.server import serve_forever

    options: dict[str, object] = {
        "seed": seed,
        "deliver_webhooks": not no_webhooks,
        "strict": strict,
        "default_webhook_url": default_webhook_url,
        "faults": None if faults == "none" else PROFILES[faults],
    }
    if api_key is not None:
        options["api_key"] = api_key
    if api_secret is not None:
        options["api_secret"] = api_secret
    if timestamp_window_ms is not None:
        options["timestamp_window_ms"] = timestamp_window_ms
    if webhook_retry_schedule is not None:
        options["webhook_retry_schedule"] = webhook_retry_schedule
    if signing_key is not None:
        options["signing_key_pem"] = signing_key.read_bytes()
    try:
        config = SandboxConfig(**options)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    sandbox = Sandbox(config)

    def announce(base_url: str) -> None:
        click.echo("Binance Pay sandbox: a local simulator, no real money moves")
        click.echo(f"base_url: {base_url}")
        click.echo(f"api_key: {config.api_key}")
        click.echo(f"api_secret: {config.api_secret}")
        click.echo(f"certificate_serial: {', '.join(sandbox.certificate_serials)}")
        click.echo(f"timestamp_window_ms: {config.effective_timestamp_window_ms}")
        click.echo(f"faults: {faults} (seed {seed})")
        click.echo(f"webhooks: {'off' if no_webhooks else 'on'}")
        click.echo("ready: serving until Ctrl-C", nl=True)

    try:
        serve_forever(sandbox, host, port, on_ready=announce)
    except KeyboardInterrupt:
        click.echo("stopped")  # uvicorn re-raises Ctrl-C after its graceful shutdown
