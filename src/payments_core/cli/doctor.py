"""``payments doctor``: is the configuration complete, and does the provider accept it?

For each provider it lists the settings the provider reads (from ``describe_provider``) and
where each comes from, masking every credential, then runs the provider's
``check_connection`` hook once, without retries: a diagnosis reports the first failure as it
is, with its classification.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import click

if TYPE_CHECKING:
    from payments_core.config import ProviderSettings
    from payments_core.facade import Payments

__all__ = ["commands"]

#: A setting whose name contains one of these is a credential: its value is never printed.
SECRET_WORDS: Final = ("secret", "key", "token", "password", "private")


@click.command("doctor")
@click.option("--provider", help="Check this provider only (default: every loaded provider).")
def doctor_command(provider: str | None) -> None:
    """Check the configuration and reach each provider with its credentials.

    Never prints a credential: those that are set show as "set (masked)".
    """
    from payments_core import Payments

    with Payments() as payments:
        config = payments.config
        click.echo("payments")
        click.echo(f"  PAYMENTS_CONFIG            {config.environ.get('PAYMENTS_CONFIG') or '-'}")
        allowed = ", ".join(config.providers) if config.providers is not None else "all"
        click.echo(f"  providers allowed          {allowed}")
        click.echo(f"  providers loaded           {', '.join(payments.provider_names) or '-'}")
        click.echo(f"  default provider           {config.default_provider or '-'}")
        click.echo(f"  database URL               {_database(config.database_url)}")
        names = [provider] if provider else payments.provider_names
        if not names:
            raise click.ClickException("no provider is loaded: run 'payments providers' to see why")
        for name in names:
            _check_provider(payments, name)


def _database(url: str | None) -> str:
    from payments_core.ledger import DEFAULT_DATABASE_URL
    from payments_core.redaction import safe_url

    return safe_url(url) if url else f"{DEFAULT_DATABASE_URL} (default)"


def _check_provider(payments: Payments, name: str) -> None:
    import time

    from payments_core.errors import PaymentsError
    from payments_core.transport import HttpxSender, drive

    info = payments.describe(name)
    click.echo(f"{name} ({info.display_name})")
    settings = payments.config.for_provider(name)
    for key, env in sorted(info.settings.items()):
        click.echo(f"  {key:<26} {_shown(settings, key, env)}")
    operation = payments.provider(name).check_connection()
    if operation is None:
        click.echo("  connection                 not checked: the provider offers no check")
        return
    sender = HttpxSender(payments.config.http)
    started = time.perf_counter()
    try:
        answer = drive(operation, lambda request: sender.send(request, name))
    except PaymentsError as error:
        category = payments.classify_error(error, name).category
        raise click.ClickException(
            f"{name}: connection check failed ({category}): {type(error).__name__}: {error}"
        ) from None
    finally:
        sender.close()
    elapsed_ms = (time.perf_counter() - started) * 1000
    click.echo(f"  connection                 ok: {answer} ({elapsed_ms:.0f} ms)")


def _shown(settings: ProviderSettings, key: str, env: str) -> str:
    """Where setting ``key`` comes from, and its value unless it is a credential."""
    if settings.environ.get(env):
        source, value = env, settings.environ[env]
    elif settings.values.get(key) is not None:
        source, value = "config file", settings.values[key]
    else:
        return f"not set ({env})"
    if any(word in key.lower() for word in SECRET_WORDS):
        return f"set (masked), from {source}"
    return f"{value}, from {source}"


commands = [doctor_command]
