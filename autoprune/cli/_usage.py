"""One-line messages for command-line usage errors (unknown option, bad value, missing
argument, unknown command), raised by Typer's vendored click or by click itself."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import click

_typer_click: ModuleType | None
try:  # Typer >= 0.16 vendors click as typer._click; older Typer raises click's own classes
    from typer._click import exceptions as _typer_click
except ImportError:  # pragma: no cover - depends on the installed Typer
    _typer_click = None

USAGE_ERRORS: tuple[type[Exception], ...] = (click.exceptions.UsageError,) + (
    (_typer_click.UsageError,) if _typer_click is not None else ()
)
"""Exception classes that mean "the command line is wrong" (exit 2)."""
NO_ARGS_IS_HELP: tuple[type[Exception], ...] = tuple(
    cls
    for module in (click.exceptions, _typer_click)
    if module is not None
    for cls in (getattr(module, "NoArgsIsHelpError", None),)
    if cls is not None
)
"""Raised when a group is called without a command: the help is shown instead."""


def usage_message(exc: Exception) -> str:
    """``exc`` as one line naming the problem and where the valid choices are listed.

    Example:
        >>> usage_message(click.exceptions.NoSuchOption("--episode", possibilities=["--episodes"]))
        "no such option '--episode'; did you mean '--episodes'?"
    """
    option = getattr(exc, "option_name", None)
    possibilities = list(getattr(exc, "possibilities", None) or [])  # closest first
    if option and type(exc).__name__ == "NoSuchOption":
        message = f"no such option '{option}'"
    else:
        message = _one_line(click_message(exc)).rstrip(".")
        message = message[:1].lower() + message[1:]
    if possibilities:
        return f"{message}; did you mean '{possibilities[0]}'?"
    if message.endswith("?"):  # Typer already suggested a command
        return message.replace(". Did you mean", "; did you mean")
    command = _command_path(exc)
    return f"{message}; see '{command} --help'" if command else message


def click_message(exc: Exception) -> str:
    """A click exception's own message (``format_message()``), else ``str(exc)``."""
    format_message = getattr(exc, "format_message", None)
    return format_message() if callable(format_message) else str(exc)


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines)


def _command_path(exc: Any) -> str | None:
    """The command whose ``--help`` lists the valid input (None when click did not say)."""
    ctx = getattr(exc, "ctx", None)
    return ctx.command_path if ctx is not None and ctx.command_path else None
