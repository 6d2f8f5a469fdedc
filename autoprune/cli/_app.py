"""Root Typer application, global options and the error contract (exit 2, one line)."""

from __future__ import annotations

import sys
import traceback
import warnings
from typing import TextIO

import typer
from rich.markup import escape

from autoprune.cli._console import err_console
from autoprune.cli._lazy import LazyGroup
from autoprune.cli._signals import StopSignals
from autoprune.cli._usage import click_message, is_help_request, is_usage_error, usage_message
from autoprune.core.errors import AutopruneError
from autoprune.system.atomic_dir import is_disk_full
from autoprune.system.verified import CacheWarning

app = typer.Typer(
    name="autoprune",
    help="Search per-layer pruning ratios and bit-widths for a trained PyTorch CNN.",
    epilog="Example: autoprune search (a demo search); autoprune COMMAND --help for more.",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    """``--version``: print ``autoprune X.Y.Z`` and stop."""
    if value:
        from autoprune import __version__

        print(f"autoprune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or tables."),
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="torch intra-op threads; 1 suits tiny models. " + escape("[default: torch's]"),
    ),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """autoprune: automatic pruning and mixed-precision search."""
    from autoprune.cli import _console

    _console.QUIET = quiet
    if threads is not None:
        if threads < 1:
            raise AutopruneError(f"--threads {threads} must be at least 1")
        import torch

        torch.set_num_threads(threads)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A cache that failed its check is one yellow line (other warnings as Python shows them)."""
    if issubclass(category, CacheWarning):
        text = f"[yellow]warning:[/] {escape(str(message))}"
        err_console.print(text, highlight=False, soft_wrap=True)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    warnings.showwarning = _show_warning
    debug = "--debug" in args
    stop = StopSignals()
    try:
        with stop:  # SIGINT / SIGTERM end the command through Interrupted (exit 130 / 143)
            code = app(args=args, prog_name="autoprune", standalone_mode=False)
    except AutopruneError as exc:
        if debug:
            traceback.print_exc()
        message = escape(str(exc))  # a message may hold [brackets] (lists, YAML examples)
        err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        return 2
    except typer.TyperException as exc:
        if is_help_request(exc):
            print(click_message(exc))
            return 0
        if debug:
            traceback.print_exc()
        usage = is_usage_error(exc)
        message = escape(usage_message(exc) if usage else click_message(exc))
        err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        return 2 if usage else int(getattr(exc, "exit_code", 1))
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:  # a signal outside the command (Typer catches those inside)
        code = 130
    except Exception as exc:  # a disk that filled up outside the atomic writers
        if debug or not is_disk_full(exc):
            raise
        name = getattr(exc, "filename", None)
        where = f" writing {name}" if name else ""
        err_console.print(
            f"[bold red]error:[/] no space left on the disk{where}; free some space (or write "
            "elsewhere: --runs-dir, --export) and run the command again",
            highlight=False,
            soft_wrap=True,
        )
        return 2
    return _exit_code(stop, code)


def _exit_code(stop: StopSignals, code: object) -> int:
    """The command's exit code; after SIGINT / SIGTERM 128 + the signal and one line saying
    so (with the command's note on how to continue)."""
    if stop.caught is not None:
        err_console.print(stop.message(), highlight=False, soft_wrap=True)
        return stop.caught.exit_code
    if code == 130:  # a KeyboardInterrupt that Typer turned into its exit code
        err_console.print("interrupted")
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
