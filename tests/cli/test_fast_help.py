"""The CLI answers at once: help and usage errors import no heavy library, and the command
list shows each command's own summary without importing its module."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer

import autoprune
from autoprune.cli import app
from autoprune.cli._commands import LAZY
from autoprune.cli._lazy import LazyGroup, Placeholder

HEAVY = ("torch", "mlflow", "stable_baselines3", "ray", "optuna", "onnx", "onnxruntime")

PROBE = """
import json, sys
from autoprune.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "heavy": [m for m in HEAVY if m in sys.modules]}))
"""


def _probe(*args: str) -> dict:
    """Exit code of ``autoprune ARGS`` and the heavy modules it imported, in a fresh process."""
    source = f"HEAVY = {HEAVY!r}\n{PROBE}"
    done = subprocess.run(
        [sys.executable, "-c", source, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--help"], 0),
        (["search", "--help"], 0),
        (["serch"], 2),
        (["search", "--episodes", "abc"], 2),
        (["search", "--episode", "3"], 2),
    ],
)
def test_help_and_usage_errors_import_no_heavy_library(args, code):
    assert _probe(*args) == {"code": code, "heavy": []}


def test_building_the_app_imports_no_heavy_library():
    source = (
        "import sys, typer; from autoprune.cli import app; import autoprune; "
        "typer.main.get_command(app); autoprune.__version__; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_each_summary_is_the_commands_own_first_paragraph():
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    listed = {name: group.commands[name].help for name in LAZY}
    assert all(isinstance(group.commands[name], Placeholder) for name in LAZY)
    group.load_all()
    for name, summary in listed.items():
        real = group.commands[name]
        assert not isinstance(real, Placeholder)
        first = " ".join((real.help or "").split("\n\n")[0].split())
        assert summary == first, name


def test_a_command_is_loaded_when_used(capsys):
    from autoprune.cli import main

    assert main(["models"]) == 0
    assert "demo" in capsys.readouterr().out.split()


def test_the_package_lists_its_api_only():
    names = dir(autoprune)
    assert set(autoprune.__all__) <= set(names)
    leftovers = {"annotations", "import_module", "version", "Any", "TYPE_CHECKING"}
    assert not leftovers & set(names)
    assert all(not n.startswith("_") or n == "__version__" for n in names)
