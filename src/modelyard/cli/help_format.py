"""How ``--help`` names parameters: ``NAME`` and ``[NAME]``, a bare ``--json``.

typer 0.29 writes a required argument as ``{name}`` in the usage line and gives every flag
a ``<bool>`` value, as if ``--json`` took one. These command classes write what man pages
and click write instead: arguments in upper case (``NAME``; ``[NAME]`` when optional;
``NAME...`` when repeated) and flags with no value. ``cli/main.py`` builds every command of
the tree with them (see ``use_plain_help``), so a module's commands need no ``cls=``.

>>> import typer
>>> app = typer.Typer()
>>> @app.command()
... def show(name: str = typer.Argument(..., help="What to show.")) -> None: ...
>>> @app.callback()
... def root() -> None: ...
>>> command = typer.main.get_group(use_plain_help(app)).commands["show"]
>>> command.params[0].metavar
'NAME'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    import typer
    from typer import _click as click

#: The ways a metavar already says "one or more".
_REPEATED = ("...", "…")


def _tidy(param: Any) -> None:
    """An argument's metavar in upper case; a flag's empty, which hides ``<bool>``."""
    if isinstance(param, TyperArgument) and param.metavar is None:
        name = (param.name or "value").upper()
        param.metavar = name if param.nargs == 1 else f"{name}..."
    elif isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
        param.metavar = ""  # rich help shows the metavar in place of the type


def usage_name(argument: TyperArgument) -> str:
    """``NAME`` when required, ``[NAME]`` when optional, with ``...`` when repeated."""
    name = argument.metavar or (argument.name or "value").upper()
    if argument.nargs != 1 and not name.endswith(_REPEATED):
        name += "..."
    return name if argument.required else f"[{name}]"


class _PlainHelp:
    """What both command classes share: tidy parameters, a tidy help option, usage."""

    params: list[Any]
    options_metavar: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            _tidy(param)

    def get_help_option(self, ctx: click.Context) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            _tidy(option)
        return option

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            if isinstance(param, TyperArgument):
                pieces.append(usage_name(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class PlainHelpCommand(_PlainHelp, TyperCommand):
    """A command whose help writes ``NAME`` and a bare ``--flag``."""


class PlainHelpGroup(_PlainHelp, TyperGroup):
    """A command group whose help writes ``NAME`` and a bare ``--flag``."""

    subcommand_metavar: str

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [*super().collect_usage_pieces(ctx), self.subcommand_metavar]


def use_plain_help(app: typer.Typer) -> typer.Typer:
    """Build ``app``'s group and commands with the plain-help classes, unless they name
    another class than typer's own.

    Sets the class on typer's registration records, so it holds for every command the
    module defines, and returns ``app``. Calling it again changes nothing.
    """
    if not app.info.cls or app.info.cls is TyperGroup:  # unset is a falsy placeholder
        app.info.cls = PlainHelpGroup
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = PlainHelpCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            use_plain_help(group.typer_instance)
    return app
