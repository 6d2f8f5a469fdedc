"""Help that teaches: choices and defaults for every search flag, no ``<bool>`` on flags, an
example per command, and values the parser cannot convert reported in our words."""

from __future__ import annotations

import pytest

from agents import method_names
from autoprune.cli import main
from autoprune.cli._commands import LAZY
from autoprune.cli._search_flags import AGENTS, BACKENDS, OPTIONS, REWARDS
from envs import reward_names


def _help(capsys, monkeypatch, *args: str) -> str:
    monkeypatch.setenv("COLUMNS", "300")
    assert main([*args, "--help"]) == 0
    return capsys.readouterr().out


def test_listed_choices_are_the_registered_ones():
    from agents._ray import BACKENDS as RUNNER_BACKENDS

    assert list(AGENTS) == method_names()
    assert list(REWARDS) == reward_names()
    assert BACKENDS == RUNNER_BACKENDS


def test_search_help_lists_choices_defaults_and_an_example(capsys, monkeypatch):
    out = _help(capsys, monkeypatch, "search")
    lines = {line.split()[1]: line for line in out.splitlines() if line.strip().startswith("│ --")}
    assert "ddpg | td3" in lines["--agent"] and "[default: ddpg]" in lines["--agent"]
    assert "[default: flops=0.5]" in lines["--target"] and "-t flops=0.5" in lines["--target"]
    assert "[default: 60]" in lines["--episodes"]
    assert "prune | quantize | sparse | joint" in lines["--mode"]
    assert "[default: prune]" in lines["--mode"]
    for flag in ("--json", "--help"):
        assert "<bool>" not in lines[flag]
    for name in OPTIONS:
        flag = "--" + ("target" if name == "targets" else name.replace("_", "-"))
        flag = "--config" if name == "config_file" else flag
        assert "[default:" in lines[flag], flag
    assert "Example: autoprune search" in out


@pytest.mark.parametrize("command", sorted(set(LAZY) - {"models", "datasets"}))
def test_every_command_shows_an_example(command, capsys, monkeypatch):
    out = _help(capsys, monkeypatch, command)
    assert f"Example: autoprune {command}" in out
    assert "<bool>" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--episodes", "abc"], "'abc' is not a whole number"),
        (["search", "--worker-cpus", "many"], "'many' is not a number"),
    ],
)
def test_unconvertible_values_are_reported_in_our_words(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Input should be" not in err
