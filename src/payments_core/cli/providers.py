"""``payments providers``: what is installed and loaded."""

from __future__ import annotations

import click

from payments_core.cli._common import echo_json, json_option

__all__ = ["commands"]


@click.command("providers")
@json_option
def providers_command(as_json: bool) -> None:
    """List the payment providers found through the payments.providers entry points."""
    from payments_core.plugins import PluginHost

    host = PluginHost()
    host.load_entry_points()
    infos = [host.provider(name).describe_provider() for name in host.provider_names]
    if as_json:
        providers = [info for info in infos if info is not None]
        echo_json({"providers": providers, "skipped": host.skipped})
        return
    for name, info in zip(host.provider_names, infos, strict=True):
        title = info.display_name if info is not None else name
        capabilities = ", ".join(sorted(info.capabilities)) if info is not None else ""
        click.echo(f"{name}\t{title}\t{capabilities}")
    if not host.provider_names:
        reasons = "; ".join(f"{name}: {why}" for name, why in sorted(host.skipped.items()))
        click.echo(f"no providers loaded ({reasons or 'none installed'})", err=True)


commands = [providers_command]
