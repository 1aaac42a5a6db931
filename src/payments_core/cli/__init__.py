"""The ``payments`` command line.

Each group of commands lives in its own module and is added here; providers add their own
commands (``payments sandbox``) through the ``register_commands`` hook. Heavy imports happen
inside the commands, so ``payments --help`` stays fast.

Expected failures (:class:`~payments_core.errors.PaymentsError`) print one line and exit
non-zero, without a traceback.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Final

import click

from payments_core import __version__

__all__ = ["cli", "main"]

# Modules that each define the commands of one concern, as ``commands: list[click.Command]``.
COMMAND_MODULES: Final = (
    "payments_core.cli.providers",
    "payments_core.cli.checkout",
    "payments_core.cli.doctor",
    "payments_core.cli.ledger",
    "payments_core.cli.demo",
    "payments_core.cli.sandbox",
    "payments_core.cli.console",
)


class PaymentsGroup(click.Group):
    """The root group: turns expected errors into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> object:
        from payments_core.errors import PaymentsError

        try:
            return super().invoke(ctx)
        except PaymentsError as error:
            text = " ".join(str(error).split())
            raise click.ClickException(f"{type(error).__name__}: {text}") from None


@click.group(cls=PaymentsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="payments")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    envvar="PAYMENTS_LOG_FORMAT",
    help="Log the core's records to stderr, as text or one JSON object a line, each with the "
    "trace and span ids of the operation (env PAYMENTS_LOG_FORMAT).",
)
def cli(log_format: str | None) -> None:
    """Take payments through pluggable providers (Binance Pay built in)."""
    if log_format is not None:
        from payments_core.telemetry.logs import configure_logging

        configure_logging(log_format)


def _add_commands() -> None:
    for module_name in COMMAND_MODULES:
        for command in import_module(module_name).commands:
            cli.add_command(command)


_add_commands()


def _add_plugin_commands() -> None:
    # Provider plugins add their commands (e.g. ``payments sandbox``) through a hook; loading
    # them costs an entry-point scan, so it happens only when a subcommand is not built in.
    from payments_core.plugins import PluginHost

    host = PluginHost()
    host.load_entry_points()
    host.pm.hook.register_commands(cli=cli)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    wanted = next((a for a in args if not a.startswith("-")), None)
    if wanted is not None and wanted not in cli.commands:
        _add_plugin_commands()
    cli.main(args=args, prog_name="payments")
