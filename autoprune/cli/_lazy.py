"""Commands loaded when used: ``autoprune --help`` and a mistyped command import no command
module (nor torch, MLflow, SB3, Ray, Optuna or ONNX behind them).

The root group holds a light stand-in per command (its name and one-line summary, enough
for the command list and for "did you mean"); the first time a command is resolved its
module is imported, registered on a Typer app of its own, and the stand-in replaced.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from autoprune.cli._commands import LAZY


class Placeholder(TyperCommand):
    """Stands in for a command whose module is not imported yet."""


def plain_flags(command: Any, ctx: Any) -> None:
    """Boolean flags (``--json``, ``--help``) show no ``<bool>`` type: they take no value."""
    for option in [*command.params, command.get_help_option(ctx)]:
        if option is not None and getattr(option, "is_flag", False):
            option.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        plain_flags(sub, ctx)


def load_module(module: str) -> dict[str, Any]:
    """The click commands that ``autoprune.cli.<module>``'s ``register`` adds, by name."""
    sub = typer.Typer()
    import_module(f"autoprune.cli.{module}").register(sub)
    return dict(typer.main.get_group(sub).commands)


class LightConversion:
    """Converts the root group's flags and whole numbers without pydantic.

    Typer converts every value it processes (a flag not given included) with a pydantic
    adapter, importing pydantic (about 0.1 s of CPU); the root's options are processed
    before any command runs, ``search --help`` included, so they convert here instead.
    """

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def coerce(self, value: Any, *, param: Any, ctx: Any) -> Any:
        """``value`` as :attr:`kind` (None stays None)."""
        if value is None or isinstance(value, self.kind):
            return value
        if self.kind is bool:
            return bool(value)
        try:
            return int(value)
        except ValueError:
            raise typer.BadParameter(
                f"'{value}' is not a whole number", ctx=ctx, param=param
            ) from None


def convert_lightly(param: Any) -> Any:
    """Give ``param`` (a bool or int option) a :class:`LightConversion`; others unchanged."""
    kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if kind in (bool, int) and getattr(param, "_runtime_param", False) is None:
        param._runtime_param = LightConversion(kind)  # Typer's converter, built on first use
    return param


class LazyGroup(TyperGroup):
    """The root group: placeholders for :data:`LAZY` commands until one is used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, lazy in LAZY.items():
            self.commands.setdefault(name, Placeholder(name=name, help=lazy.summary))
        for param in self.params:
            convert_lightly(param)

    def get_help_option(self, ctx: Any) -> Any:
        return convert_lightly(super().get_help_option(ctx))

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[Any, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, Placeholder) and name is not None:
            command = self.load(name)
            plain_flags(command, ctx)
        return name, command, rest

    def format_help(self, ctx: Any, formatter: Any) -> None:
        plain_flags(self, ctx)
        super().format_help(ctx, formatter)

    def load(self, name: str) -> Any:
        """Import the module of command ``name`` and put its real commands in place, each
        with its example (:attr:`LazyCommand.example`) closing its help."""
        for loaded_name, command in load_module(LAZY[name].module).items():
            example = LAZY[loaded_name].example if loaded_name in LAZY else ""
            if example and not command.epilog:
                command.epilog = f"Example: {example}"
            self.commands[loaded_name] = command
        return self.commands[name]

    def load_all(self) -> LazyGroup:
        """Every command loaded (for tests that walk the whole tree)."""
        for name in LAZY:
            if isinstance(self.commands.get(name), Placeholder):
                self.load(name)
        return self
