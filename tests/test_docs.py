"""Every command has help text, and the README's commands exist."""

import re
from pathlib import Path

import click
from click.testing import CliRunner

from mlops_nb.cli import cli

README = Path(__file__).parent.parent / "README.md"


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from all_commands(command, prefix + (name,))


def test_every_command_and_option_has_help():
    for path, command in all_commands(cli):
        assert command.help and command.help.strip(), f"`mlops-nb {' '.join(path)}` has no help text"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"option {param.opts} of `mlops-nb {' '.join(path)}` has no help"
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0 and "Usage: " in result.output


def test_readme_starts_with_the_two_setup_commands():
    lines = [line for line in README.read_text().splitlines() if line.strip()]
    assert lines[1] == "```sh"
    assert lines[2].startswith("make demo") and lines[3].startswith("make test")


def unknown_commands(text: str) -> list[str]:
    """The `mlops-nb ...` lines of ``text``'s code blocks that name no command: a group's second word
    must be one of its subcommands; after a plain command, words are its arguments."""
    blocks = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL))
    unknown = []
    for match in re.finditer(r"^mlops-nb ([a-z]+)(?: ([a-z]+))?", blocks, re.MULTILINE):
        command = cli.commands.get(match.group(1))
        if command is None or (isinstance(command, click.Group) and match.group(2) is not None
                               and match.group(2) not in command.commands):
            unknown.append(match.group(0))
    return unknown


def test_commands_in_readme_exist():
    assert unknown_commands(README.read_text()) == []


def test_the_readme_check_catches_unknown_commands():
    text = "```sh\nmlops-nb runs frobnicate\nmlops-nb frob\nmlops-nb runs ls\nmlops-nb run pipeline\n```\n"
    assert unknown_commands(text) == ["mlops-nb runs frobnicate", "mlops-nb frob"]
