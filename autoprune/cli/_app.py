"""Root Typer application, global options and the error contract (exit 2, one line)."""

from __future__ import annotations

import sys
import traceback

import click
import typer

from autoprune.cli import _apply, _compare, _cost, _inspect, _search, _train, _ui
from autoprune.cli._console import err_console
from autoprune.errors import AutopruneError

app = typer.Typer(
    name="autoprune",
    help="Search per-layer pruning ratios and bit-widths for a trained PyTorch CNN.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or tables."),
    threads: int | None = typer.Option(
        None, "--threads", help="torch intra-op threads (default: torch's; 1 suits tiny models)."
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


_search.register(app)
_compare.register(app)
_train.register(app)
_inspect.register(app)
_cost.register(app)
_apply.register(app)
_ui.register(app)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        app(args=args, prog_name="autoprune", standalone_mode=False)
    except AutopruneError as exc:
        if debug:
            traceback.print_exc()
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    except click.exceptions.UsageError as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
