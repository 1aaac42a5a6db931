"""docs/cli.md keeps up with the command line: every command and every option is documented."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from payments_core.cli import cli
from payments_core.plugins import PluginHost

CLI_DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def all_commands() -> dict[str, click.Command]:
    """The built-in commands and those the installed providers add."""
    host = PluginHost()
    host.load_entry_points()
    group = click.Group(commands=dict(cli.commands))
    host.pm.hook.register_commands(cli=group)
    return dict(group.commands)


def sections() -> dict[str, str]:
    """Each ``## payments NAME`` section of docs/cli.md, by command name."""
    parts = re.split(r"^## payments (\S+)$", CLI_DOC.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("name", sorted(all_commands()))
def test_every_command_and_option_is_documented(name: str) -> None:
    section = sections().get(name)
    assert section is not None, f"docs/cli.md has no '## payments {name}' section"
    for param in all_commands()[name].params:
        for option in getattr(param, "opts", ()):
            if option.startswith("--") and option != "--help":
                assert f"`{option}" in section, f"payments {name} {option} is not in docs/cli.md"
