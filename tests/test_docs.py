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


def test_commands_in_readme_exist():
    known = {" ".join(path) for path, _ in all_commands(cli)}
    blocks = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", README.read_text(), re.DOTALL))
    for match in re.finditer(r"^mlops-nb ((?:[a-z]+ ?){1,2})", blocks, re.MULTILINE):
        words = match.group(1).split()
        assert " ".join(words) in known or words[0] in known, f"README mentions unknown command {match.group(0)!r}"
