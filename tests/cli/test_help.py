"""``--help`` of every command reads well, and the README's command list matches the CLI.

The whole tree is walked: each name in ``COMMANDS`` is loaded as
``modelyard`` loads it, then every subcommand. A command added without help, a flag shown as
``--json <bool>``, an argument shown as ``{name}``, or a command missing from the README's
*Command line* section fails here.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from rich.text import Text
from typer.core import TyperArgument, TyperGroup
from typer.main import get_command

from modelyard.cli.main import COMMANDS, _load_command, app

README = Path(__file__).parents[2] / "README.md"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: A typer-style argument placeholder: ``{name}``, ``{MODEL_URI}``.
BRACED_NAME = re.compile(r"\{[A-Za-z_][A-Za-z0-9_ …]*\}")


def walk() -> Iterator[tuple[tuple[str, ...], click.Command, click.Context]]:
    """Every command of the tree as ``(path, command, its context)``, groups included."""
    root_ctx = click.Context(get_command(app), info_name="modelyard")

    def below(
        path: tuple[str, ...], command: click.Command, parent: click.Context
    ) -> Iterator[tuple[tuple[str, ...], click.Command, click.Context]]:
        ctx = click.Context(command, info_name=path[-1], parent=parent)
        yield path, command, ctx
        if isinstance(command, TyperGroup):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, f"{' '.join(path)} lists {name!r} but cannot load it"
                yield from below((*path, name), sub, ctx)

    for name in COMMANDS:
        yield from below((name,), _load_command(name), root_ctx)


TREE = list(walk())
IDS = [" ".join(path) for path, _, _ in TREE]


def rendered_help(command: click.Command, ctx: click.Context) -> str:
    """What ``modelyard … --help`` prints (rich writes to stdout), without colours."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        command.get_help(ctx)
    return ANSI.sub("", out.getvalue())


def readme_commands() -> dict[str, set[str]]:
    """The README's *Command line* block as ``{command: the words that follow it}``."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    documented: dict[str, set[str]] = {}
    for line in block.splitlines():
        for segment in line.split("#", 1)[0].split(";"):
            words = segment.split()
            if len(words) > 1 and words[0] == "modelyard" and words[1].islower():
                following = {w for word in words[2:] for w in word.split("|") if w}
                documented.setdefault(words[1], set()).update(following)
    return documented


def test_every_command_and_subcommand_is_in_the_readme_command_list() -> None:
    documented = readme_commands()
    missing = [
        " ".join(path)
        for path, _, _ in TREE
        if path[0] not in documented or (len(path) > 1 and path[1] not in documented[path[0]])
    ]
    assert not missing, f"add these to README.md's 'Command line' section: {missing}"


def test_the_readme_command_list_names_only_real_commands() -> None:
    assert set(readme_commands()) <= set(COMMANDS)


@pytest.mark.parametrize(("path", "command", "ctx"), TREE, ids=IDS)
def test_every_command_and_parameter_has_help(path, command, ctx) -> None:
    assert command.help, f"{' '.join(path)} has no help: give it a docstring"
    unhelped = [param.name for param in command.get_params(ctx) if not getattr(param, "help", "")]
    assert not unhelped, f"{' '.join(path)}: give these parameters help=…: {unhelped}"


@pytest.mark.parametrize(("path", "command", "ctx"), TREE, ids=IDS)
def test_help_shows_plain_flags_and_upper_case_arguments(path, command, ctx) -> None:
    shown = rendered_help(command, ctx)
    assert f"modelyard {' '.join(path)}" in shown  # the usage line
    assert "<bool>" not in shown
    assert not BRACED_NAME.findall(shown)
    for param in command.get_params(ctx):
        if isinstance(param, TyperArgument):
            assert param.metavar and param.metavar == param.metavar.upper(), param.name
            assert param.metavar in shown


@pytest.mark.parametrize(("path", "command", "ctx"), TREE, ids=IDS)
def test_no_help_text_is_eaten_as_rich_markup(path, command, ctx) -> None:
    """``[serving]`` in help would vanish as a rich style tag: write it some other way."""
    texts = [command.help or ""] + [getattr(p, "help", "") or "" for p in command.params]
    for text in texts:
        assert Text.from_markup(text).plain == text.replace("\\[", "["), text


def test_flags_and_arguments_render_as_in_man_pages() -> None:
    canary = dict((" ".join(path), (command, ctx)) for path, command, ctx in TREE)["deploy canary"]
    shown = rendered_help(*canary)
    assert "Usage: modelyard deploy canary [OPTIONS] NAME MODEL_URI" in shown
    assert re.search(r"--auto-promote +Promote at the last step", shown)
    assert "Example" in shown  # longer commands show how they are used
