"""What the commands share: their common options, their output, and how they find the ledger
and the orders it holds (see :mod:`payments_core.cli.ledger` for where the ledger's URL comes
from)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from payments_core.config import Config
    from payments_core.facade import Payments
    from payments_core.ledger import Ledger, OrderRecord

__all__ = [
    "database_url_option",
    "echo_fields",
    "echo_json",
    "json_option",
    "ledger_url",
    "load_plugins",
    "open_existing_ledger",
    "order_record",
    "orders_for",
    "plugins_option",
    "serving_payments",
]

database_url_option = click.option(
    "--database-url",
    metavar="URL",
    help="The ledger: sqlite:///path or postgresql://... (default: PAYMENTS_DATABASE_URL, "
    "else sqlite:///payments.sqlite3 in the working directory).",
)
plugins_option = click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE[:NAME]",
    envvar="PAYMENTS_PLUGINS",
    help="An application plugin to register (its payment_status_changed hook hears of "
    "every committed change): a module, or an object in it; a class is instantiated. "
    "Repeatable; PAYMENTS_PLUGINS holds several, separated by spaces.",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as one JSON object."
)


# -- output -----------------------------------------------------------------------------------


def echo_json(data: object) -> None:
    """Print ``data``, unstructured, as one JSON object: indented, its keys sorted."""
    import json

    from payments_core.serialization import converter

    click.echo(json.dumps(converter.unstructure(data), indent=2, sort_keys=True))


def echo_fields(*fields: tuple[str, object]) -> None:
    """Echo each ``(label, value)`` as an indented line, the values aligned; a ``None`` value is
    left out."""
    for label, value in fields:
        if value is not None:
            click.echo(f"  {label:<17} {value}")


# -- the ledger and the application's plugins ------------------------------------------------


def load_plugins(specs: tuple[str, ...]) -> tuple[object, ...]:
    """The plugin objects named ``module`` or ``module:name`` (a class is instantiated)."""
    from importlib import import_module

    loaded = []
    for spec in specs:
        module_name, _, name = spec.partition(":")
        try:
            found: object = import_module(module_name)
            for part in filter(None, name.split(".")):
                found = getattr(found, part)
        except (ImportError, AttributeError) as error:
            message = f"cannot load {spec!r}: {error}"
            raise click.BadParameter(message, param_hint="--plugin") from None
        loaded.append(found() if isinstance(found, type) else found)
    return tuple(loaded)


def ledger_url(database_url: str | None, config: Config) -> str:
    """The ledger's URL: ``database_url``, else the configuration's, else the default."""
    from payments_core.ledger import DEFAULT_DATABASE_URL

    return database_url or config.database_url or DEFAULT_DATABASE_URL


def open_existing_ledger(url: str) -> Ledger:
    """Open the ledger at ``url``, refusing to create an SQLite file that is not there.

    :raises click.ClickException: if ``url`` names an SQLite file that does not exist.
    """
    from pathlib import Path
    from urllib.parse import unquote, urlsplit

    from payments_core.ledger import open_ledger
    from payments_core.redaction import safe_url

    if url.lower().startswith("sqlite:///"):
        path = Path(unquote(urlsplit(url).path[1:]))
        if not path.is_file():
            raise click.ClickException(
                f"no ledger at {safe_url(url)}: nothing is recorded there "
                "(--database-url or PAYMENTS_DATABASE_URL names the ledger)"
            )
    return open_ledger(url)


def order_record(ledger: Ledger, url: str, reference: str, provider: str | None) -> OrderRecord:
    """The one order the ledger at ``url`` holds for ``reference`` (at ``provider``, if given).

    :raises click.ClickException: if it holds none, or orders at several providers and
        ``provider`` does not say which.
    """
    records = orders_for(ledger, url, reference, provider)
    if len(records) > 1:
        names = ", ".join(sorted(record.order.provider for record in records))
        raise click.ClickException(
            f"reference {reference!r} has orders at several providers ({names}): "
            "choose one with --provider NAME"
        )
    return records[0]


def orders_for(ledger: Ledger, url: str, reference: str, provider: str | None) -> list[OrderRecord]:
    """The orders the ledger at ``url`` holds for ``reference`` (at ``provider``, if given).

    :raises click.ClickException: if it holds none.
    """
    from payments_core.redaction import safe_url

    records = [
        record
        for record in ledger.find_orders(reference)
        if provider is None or record.order.provider == provider
    ]
    if not records:
        at = f" at provider {provider!r}" if provider else ""
        raise click.ClickException(
            f"no order for reference {reference!r}{at} in the ledger at {safe_url(url)}"
        )
    return records


def serving_payments(url: str, plugins: tuple[str, ...], config: Config) -> Payments:
    """The facade ``payments serve`` and ``payments console`` serve: the ledger at ``url`` and
    the application plugins.

    :raises click.BadParameter: if a plugin cannot be loaded.
    """
    from payments_core import Payments
    from payments_core.ledger import open_ledger

    application = load_plugins(plugins)
    ledger = open_ledger(url)
    try:
        return Payments(config, ledger=ledger, plugins=application)
    except BaseException:
        ledger.close()
        raise
