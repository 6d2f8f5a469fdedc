"""Non-terminal progress, safe run names, and the messages of failed commands."""

from __future__ import annotations

import re

import pytest

from agents import run_name_for
from autoprune.cli import _console, main
from autoprune.cli._progress_lines import EVERY_SECONDS, ProgressLines
from autoprune.cli._units import energy_note
from autoprune.cost import load_profile
from autoprune.workflow.config import SearchConfig

SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@pytest.mark.parametrize(
    "model",
    ["demo", "/work/models/build.py:tiny", "torchvision:resnet18", "../x y/é.py:f", "/", "a" * 99],
)
def test_run_names_are_safe_on_a_command_line(model):
    name = run_name_for(SearchConfig(model=model, agent="deep-compression"), when=0)
    assert SAFE.fullmatch(name), name
    assert len(name) <= 80


def test_a_model_path_names_the_run_by_its_file_and_function():
    name = run_name_for(SearchConfig(model="/work/models/build.py:tiny", agent="tpe"), when=0)
    assert name.startswith("build-tiny__tpe__0__")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_every_tenth_and_every_30_seconds():
    lines: list[str] = []
    clock = _Clock()
    progress = ProgressLines(lines.append, clock=clock, title="search tpe")
    task = progress.add_task("search", total=100, info="")
    for episode in range(1, 101):
        clock.now += 1.0
        progress.update(task, completed=episode, info=f"best acc {episode / 100:.2%}")
    assert len(lines) == 10
    assert lines[0] == "search tpe: 10/100 (10%), 0:00:10 elapsed, best acc 10.00%"
    assert lines[-1].startswith("search tpe: 100/100 (100%), 0:01:40 elapsed")
    slow = ProgressLines(lines.append, clock=clock)
    task = slow.add_task("train", total=None, info="", visible=False)
    slow.update(task, completed=1, info="loss 2.0")
    clock.now += EVERY_SECONDS
    slow.update(task, completed=2, info="loss 1.0")  # invisible: nothing
    slow.update(task, visible=True, completed=3, total=None, info="loss 0.5")
    assert lines[-1] == "train: 3, 0:00:30 elapsed, loss 0.5"
    assert len(lines) == 11


def test_progress_bar_writes_lines_where_stderr_is_no_terminal(capsys, monkeypatch):
    monkeypatch.setattr(_console, "QUIET", False)
    with _console.progress_bar("search random") as progress:
        task = progress.add_task("search", total=4, info="")
        for episode in range(1, 5):
            progress.update(task, completed=episode, info="")
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("search random: 4/4 (100%)") and "━" not in "".join(err)


def test_a_failed_search_leaves_no_runs_folder(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["search", "--model", "nosuch", "--runs-dir", str(runs)]) == 2
    assert "unknown model 'nosuch'" in capsys.readouterr().err
    assert not runs.exists()


def test_apply_of_an_unknown_run_says_so_first(tmp_path, capsys):
    assert main(["apply", "nosuch_run", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no such run or file 'nosuch_run'") and "--weights" not in err


def test_an_energy_drop_from_dram_to_sram_is_explained():
    chip = load_profile("bitfusion")
    before = {"macs": 1e6, "energy": 1.0, "size": 2.0 * chip.sram_bytes}
    after = {"macs": 5e5, "energy": 0.05, "size": 0.5 * chip.sram_bytes}
    note = energy_note(before, after, chip)
    assert note is not None and "on-chip memory" in note and "DRAM" in note
    assert energy_note(before, {**after, "size": before["size"]}, chip) is None
