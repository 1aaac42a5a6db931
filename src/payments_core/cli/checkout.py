"""``payments checkout``: create one order with the configured credentials.

The order goes wherever the provider's configuration points; ``--base-url`` overrides only
that one setting, so the same command (and the same code) creates an order in a local sandbox
or at the real provider. It is recorded in the ledger that ``payments serve`` applies the
order's callbacks to.
"""

from __future__ import annotations

import click

from payments_core.cli._common import database_url_option, echo_fields, echo_json, ledger_url

__all__ = ["commands"]


@click.command("checkout")
@click.option(
    "--provider",
    help="The provider to use (default: PAYMENTS_DEFAULT_PROVIDER, or the only one loaded).",
)
@click.option("--amount", required=True, help="The price, a plain decimal such as 1.00.")
@click.option("--currency", default="USD", show_default=True, help="The price's currency code.")
@click.option(
    "--reference",
    required=True,
    help="Your reference (a booking id); the same one never creates a second order.",
)
@click.option("--callback-url", required=True, help="Where the provider sends its callbacks.")
@click.option(
    "--base-url",
    help="The provider API's base URL, overriding the configuration (a sandbox, say). "
    "Needs --provider.",
)
@click.option("--description", default="", help="What is being paid for, shown to the payer.")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the order as one JSON object.")
def checkout_command(
    provider: str | None,
    amount: str,
    currency: str,
    reference: str,
    callback_url: str,
    base_url: str | None,
    description: str,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Create an order and print its checkout URL.

    Credentials come from the environment or the configuration file (for Binance Pay:
    BINANCE_PAY_API_KEY and BINANCE_PAY_API_SECRET).
    """
    from payments_core import Config, Money, OrderRequest, Payments
    from payments_core.ledger import open_ledger

    if base_url is not None and provider is None:
        raise click.UsageError("--base-url needs --provider: say whose base URL it is")
    request = OrderRequest(
        reference=reference,
        price=Money(amount, currency),
        callback_url=callback_url,
        description=description,
    )
    overrides = {provider: {"base_url": base_url}} if provider and base_url else {}
    config = Config.load()
    with (
        open_ledger(ledger_url(database_url, config)) as ledger,
        Payments(config, ledger=ledger, provider_settings=overrides) as payments,
    ):
        order = payments.create_order(request, provider=provider)
    if as_json:
        echo_json(order)
        return
    click.echo(f"order created for {order.reference}: {order.amount.plain} {order.amount.currency}")
    echo_fields(
        ("provider", order.provider),
        ("provider order id", order.provider_order_id),
        ("provider reference", order.provider_reference),
        ("status", order.status),
        ("expires at", None if order.expires_at is None else order.expires_at.isoformat()),
        ("checkout URL", order.checkout_url),
    )


commands = [checkout_command]
