"""One-line messages for command-line usage errors (unknown option, bad value, missing
argument, unknown command), raised by Typer's parser (public :class:`typer.TyperException`)."""

from __future__ import annotations

from typing import Any

import typer


def is_help_request(exc: Exception) -> bool:
    """A group called without a command (``autoprune`` alone): its help is the answer."""
    return type(exc).__name__ == "NoArgsIsHelpError"


def is_usage_error(exc: Exception) -> bool:
    """Whether ``exc`` means "the command line is wrong" (exit 2).

    Typer's parser raises subclasses of the public :class:`typer.TyperException`; usage
    errors (unknown option or command, bad value, missing argument) carry exit code 2.

    Example:
        >>> is_usage_error(typer.BadParameter("no")), is_usage_error(ValueError("no"))
        (True, False)
    """
    return isinstance(exc, typer.TyperException) and getattr(exc, "exit_code", 1) == 2


def usage_message(exc: Exception) -> str:
    """``exc`` as one line naming the problem and where the valid choices are listed.

    Example:
        >>> usage_message(typer.BadParameter("'abc' is not a whole number"))
        "invalid value: 'abc' is not a whole number"
    """
    _reword_value_error(exc)
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


WORDING = {
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "float_parsing": "is not a number",
    "bool_parsing": "is not true or false",
}
"""Our words for the conversion errors Typer's parser reports in pydantic's."""


def _reword_value_error(exc: Exception) -> None:
    """A value the parser could not convert, in our words: ``'abc' is not a whole number``.

    Typer converts values with pydantic, whose error (``Input should be a valid integer,
    unable to parse string as an integer``) is the cause of the usage error.
    """
    errors = getattr(exc.__cause__, "errors", None)
    if not callable(errors) or not hasattr(exc, "message"):
        return
    try:
        first = errors()[0]
    except (TypeError, IndexError, KeyError):  # not pydantic's error list
        return
    wording = WORDING.get(first.get("type", ""))
    if wording is not None:
        exc.message = f"'{first.get('input')}' {wording}"


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
