"""Options that several commands take are declared once: one help text, library defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from autoprune.cli import app, main
from autoprune.cli._search_flags import OPTIONS, SearchFlags
from autoprune.core.training import TrainConfig
from autoprune.workflow.config import SearchConfig

SHOWN_DEFAULT = re.compile(r" \\?\[default: [^\]]*\]$")


def _commands(command: Any, path: str = "autoprune") -> dict[str, Any]:
    """Every command and subcommand by its path (Typer's own click classes)."""
    found = {path: command}
    for name, sub in getattr(command, "commands", {}).items():
        found.update(_commands(sub, f"{path} {name}"))
    return found


COMMANDS = _commands(typer.main.get_command(app).load_all())  # type: ignore[attr-defined]


def _option(command: str, name: str) -> Any:
    [param] = [p for p in COMMANDS[command].params if p.name == name]
    assert param.param_type_name == "option"
    return param


def test_a_flag_has_one_help_text_in_every_command():
    helps: dict[str, set[str]] = {}
    for command in COMMANDS.values():
        for param in command.params:
            if param.param_type_name == "option" and param.help:
                for flag in param.opts:
                    helps.setdefault(flag, set()).add(SHOWN_DEFAULT.sub("", param.help))
    shared = {flag: texts for flag, texts in helps.items() if len(texts) > 1}
    assert shared == {}
    assert helps["--runs-dir"] == {"Root of runs."}


@pytest.mark.parametrize(
    ("command", "name", "default"),
    [
        ("autoprune train", "model", SearchConfig().model),
        ("autoprune train", "seed", TrainConfig().seed),
        ("autoprune train", "runs_dir", Path(SearchConfig().runs_dir)),
        ("autoprune cost", "profile", SearchConfig().profile),
        ("autoprune ui", "runs_dir", Path(SearchConfig().runs_dir)),
        ("autoprune search", "runs_dir", None),
        ("autoprune worker", "runs_dir", None),
    ],
)
def test_defaults_come_from_the_library_config(command, name, default):
    assert _option(command, name).default == default


def test_search_and_compare_take_the_same_search_flags():
    for command in ("autoprune search", "autoprune compare"):
        names = [p.name for p in COMMANDS[command].params]
        assert [n for n in names if n in OPTIONS] == list(OPTIONS)
    assert set(OPTIONS) == set(SearchFlags.__dataclass_fields__)


def test_search_flags_become_a_config(tmp_path):
    values = dict.fromkeys(OPTIONS)
    values.update(model="demo", targets=["flops=0.4"], data_dir=tmp_path, episodes=3)
    config = SearchFlags(**values).config(agent="random")
    assert (config.targets, config.data_dir) == (("flops=0.4",), str(tmp_path))
    assert (config.agent, config.episodes, config.runs_dir) == ("random", 3, "runs")


def test_a_default_from_elsewhere_reads_like_typers_own(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["apply", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Zoo name, file.py:fn or module:fn. [default: the run's, else demo]" in out
    assert "Learning rate. [default: 0.01]" in out
