"""``payments providers``: what is installed and loaded."""

from __future__ import annotations

import click

__all__ = ["commands"]


@click.command("providers")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def providers_command(as_json: bool) -> None:
    """List the payment providers found through the payments.providers entry points."""
    import json

    from payments_core.plugins import PluginHost
    from payments_core.serialization import converter

    host = PluginHost()
    host.load_entry_points()
    infos = [host.provider(name).describe_provider() for name in host.provider_names]
    if as_json:
        data = {
            "providers": [converter.unstructure(info) for info in infos if info is not None],
            "skipped": host.skipped,
        }
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    for name, info in zip(host.provider_names, infos, strict=True):
        title = info.display_name if info is not None else name
        capabilities = ", ".join(sorted(info.capabilities)) if info is not None else ""
        click.echo(f"{name}\t{title}\t{capabilities}")
    if not host.provider_names:
        reasons = "; ".join(f"{name}: {why}" for name, why in sorted(host.skipped.items()))
        click.echo(f"no providers loaded ({reasons or 'none installed'})", err=True)


commands = [providers_command]
