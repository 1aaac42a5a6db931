"""``payments doctor``: is the configuration complete, and does the provider accept it?

For each provider it lists the settings the provider reads (from ``describe_provider``) and
where each comes from, masking every credential, then runs the provider's
``check_connection`` hook once, without retries: a diagnosis reports each failure as it is,
with its classification (a missing setting is a ``configuration`` failure).

A provider none of whose settings is set is reported as "not configured" and not checked: an
installed provider the application does not use is not a fault. ``--provider NAME`` checks
that one whatever its settings. The command fails if a checked provider fails.
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
        failures = [
            failure
            for name in names
            if (failure := _check_provider(payments, name, always=provider is not None))
        ]
        if not provider and not any(_configured(payments, name) for name in names):
            click.echo("no provider is configured: set the settings of the one you use")
    if failures:
        raise click.ClickException("; ".join(failures))


def _database(url: str | None) -> str:
    from payments_core.ledger import DEFAULT_DATABASE_URL
    from payments_core.redaction import safe_url

    return safe_url(url) if url else f"{DEFAULT_DATABASE_URL} (default)"


def _configured(payments: Payments, name: str) -> bool:
    """Whether any setting of provider ``name`` is set, in the environment or the file."""
    settings = payments.config.for_provider(name)
    return any(
        settings.environ.get(env) or settings.values.get(key) is not None
        for key, env in payments.describe(name).settings.items()
    )


def _check_provider(payments: Payments, name: str, *, always: bool) -> str | None:
    """Report provider ``name``'s settings and check its connection (if it is configured,
    or ``always``); return the failure's one-line description, or ``None``."""
    import time

    from payments_core.errors import ConfigurationError, PaymentsError
    from payments_core.transport import HttpxSender, drive

    info = payments.describe(name)
    click.echo(f"{name} ({info.display_name})")
    settings = payments.config.for_provider(name)
    for key, env in sorted(info.settings.items()):
        click.echo(f"  {key:<26} {_shown(settings, key, env)}")
    if not always and not _configured(payments, name):
        click.echo("  connection                 not checked: not configured")
        return None
    sender = HttpxSender(payments.config.http)
    started = time.perf_counter()
    try:
        operation = payments.provider(name).check_connection()
        if operation is None:
            click.echo("  connection                 not checked: the provider offers no check")
            return None
        answer = drive(operation, lambda request: sender.send(request, name))
    except PaymentsError as error:
        # A missing setting is the operator's to fix, whatever the provider calls it.
        category = (
            "configuration"
            if isinstance(error, ConfigurationError)
            else payments.classify_error(error, name).category
        )
        click.echo(f"  connection                 failed ({category})")
        return f"{name}: connection check failed ({category}): {type(error).__name__}: {error}"
    finally:
        sender.close()
    elapsed_ms = (time.perf_counter() - started) * 1000
    click.echo(f"  connection                 ok: {answer} ({elapsed_ms:.0f} ms)")
    return None


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
