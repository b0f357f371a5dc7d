"""The command tree loads each command's module on first use, and every listed command
resolves: a command added to a module but not to the command table would silently vanish."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from modelyard.cli.main import COMMANDS, app
from modelyard.errors import MissingExtra, NotFound


def test_every_command_in_the_table_is_loadable_and_listed_by_its_own_help() -> None:
    root = get_command(app)
    ctx = click.Context(root)
    for name, (_, _, listed) in COMMANDS.items():
        command = root.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.help is not None and command.help.split("\n\n")[0] == listed, name


def test_the_root_help_imports_no_command_module() -> None:
    script = (
        "import sys; from modelyard.cli.main import main; sys.argv = ['modelyard', '--help']\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('modelyard.cli.')))"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert "Commands" in loaded.stdout and "experiments" in loaded.stdout
    assert loaded.stdout.strip().splitlines()[-1] == (
        "['modelyard.cli.help_format', 'modelyard.cli.main']"
    )


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


def failing_app(error: BaseException) -> typer.Typer:
    """A root group like the real one, with one command ``fail`` that raises ``error``."""
    from modelyard.cli.main import ModelyardGroup, root

    failing = typer.Typer(cls=ModelyardGroup)
    failing.callback()(root)

    @failing.command("fail")
    def fail() -> None:
        raise error

    return failing


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            ModuleNotFoundError("No module named 'duckdb'", name="duckdb"),
            "error: modelyard fail needs the 'duckdb' package: pip install 'modelyard[features]'",
        ),
        (
            MissingExtra("pyarrow", "data", "Dataset snapshots"),
            "error: Dataset snapshots needs the 'pyarrow' package: pip install 'modelyard[data]'",
        ),
        (NotFound("no run with id 'x'"), "error: no run with id 'x'"),
        (
            FileNotFoundError(2, "No such file or directory", "eval.csv"),
            "error: No such file or directory: eval.csv",
        ),
    ],
)
def test_errors_of_usage_or_environment_are_one_line_and_exit_2(error, line) -> None:
    result = CliRunner().invoke(failing_app(error), ["fail"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [line]
    assert "Traceback" not in result.output


def test_an_import_error_that_is_no_missing_extra_is_a_bug_shown_in_full() -> None:
    bug = ModuleNotFoundError("No module named 'modelyard.gone'", name="modelyard.gone")
    result = CliRunner().invoke(failing_app(bug), ["fail"])
    assert result.exception is bug
