"""The command tree loads each command's module on first use, and every listed command
resolves: a command added to a module but not to the lazy tables would silently vanish."""

from __future__ import annotations

import subprocess
import sys

import click
from typer.main import get_command

from modelyard.cli.main import COMMAND_ORDER, LAZY_COMMANDS, LAZY_GROUPS, app


def test_every_command_in_the_help_order_is_loadable() -> None:
    assert set(COMMAND_ORDER) == set(LAZY_GROUPS) | set(LAZY_COMMANDS)
    root = get_command(app)
    ctx = click.Context(root)
    for name in COMMAND_ORDER:
        command = root.get_command(ctx, name)
        assert command is not None and command.name == name


def test_a_command_imports_only_its_own_module() -> None:
    script = (
        "import sys; from modelyard.cli.main import main; sys.argv = ['modelyard', 'gc', "
        "'--help']\ntry: main()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('modelyard.cli.')))"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert loaded.stdout.strip().splitlines()[-1] == (
        "['modelyard.cli.gc', 'modelyard.cli.help_format', 'modelyard.cli.main']"
    )
