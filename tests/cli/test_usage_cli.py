"""The command-line contract: usage errors exit 2 with one line, ``--version`` exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import autoprune
from autoprune.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--episode", "5"], "no such option '--episode'; did you mean '--episodes'?"),
        (["search", "--episodes", "abc"], "invalid value for '--episodes'"),
        (["--threads", "two", "layers"], "invalid value for '--threads'"),
        (["export"], "missing argument 'RUN'; see 'autoprune export --help'"),
        (["apply"], "missing argument 'POLICY|RUN'"),
        (["frobnicate"], "no such command 'frobnicate'; see 'autoprune --help'"),
        (["serch"], "no such command 'serch'; did you mean 'search'?"),
        (["cost", "validate", "--sample", "3"], "did you mean '--samples'?"),
        (["search", "--target"], "option '--target' requires an argument"),
        (["compare", "--workers", "0"], "--workers 0 must be at least 1"),
        (["compare", "--ray-address", "h:1"], "--ray-address needs --backend ray"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args, message, capsys):
    assert main(args) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and message in err, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and captured.out == ""


def test_usage_error_traceback_only_with_debug(capsys):
    assert main(["--debug", "search", "--episode", "5"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "no such option '--episode'" in err


def _console_script() -> list[str]:
    """The installed ``autoprune`` script, or the same entry point through ``python -c``."""
    script = Path(sys.executable).with_name("autoprune")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from autoprune.cli import main; sys.exit(main())"]


def test_console_script_usage_error_and_version():
    base = _console_script()
    wrong = subprocess.run([*base, "search", "--episode", "5"], capture_output=True, text=True)
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.strip().splitlines() == [
        "error: no such option '--episode'; did you mean '--episodes'?"
    ]
    version = subprocess.run([*base, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stderr == ""
    assert version.stdout.strip() == f"autoprune {autoprune.__version__}"


def test_version_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    assert autoprune.__version__ == version("autoprune")
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"autoprune {autoprune.__version__}"


def test_no_command_prints_the_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "Usage" in out and "search" in out
