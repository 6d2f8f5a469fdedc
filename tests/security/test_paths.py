"""A user-given run name never becomes a path outside ``runs/searches``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents import run_search
from autoprune.cli import main
from autoprune.core.errors import AutopruneError
from autoprune.searches.finished_search import find_search
from autoprune.system.paths import child_path, is_child_name
from autoprune.workflow.config import SearchConfig

HOSTILE = ["../victim", "../../victim", "/tmp/victim", "", ".", "..", "a/b", "a\\b", "a\0b"]


@pytest.mark.parametrize("name", HOSTILE)
def test_child_path_refuses_anything_but_one_plain_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(AutopruneError, match="not a plain name of a folder"):
        child_path(tmp_path, name)
    assert not is_child_name(tmp_path, name)
    assert child_path(tmp_path, "demo__ddpg__0__1") == tmp_path / "demo__ddpg__0__1"


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "searches", tmp_path / "victim"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(AutopruneError, match="links outside"):
        child_path(root, "link")


def _victim(tmp_path: Path) -> Path:
    """A folder outside runs/searches that holds a config.json (what --resume wants)."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "config.json").write_text("{}")
    return victim


def test_resume_outside_runs_searches_writes_nothing_there(
    tiny_config: SearchConfig, tmp_path: Path
) -> None:
    victim = _victim(tmp_path)
    relative = str(Path("..") / ".." / Path(*victim.parts[1:]))  # ../../tmp/.../victim
    for name in (relative, "../../victim", str(victim)):
        with pytest.raises(AutopruneError, match="not a plain name"):
            run_search(tiny_config, resume=name)
        with pytest.raises(AutopruneError, match="not a plain name"):
            run_search(tiny_config, run_name=name)
    assert sorted(p.name for p in victim.iterdir()) == ["config.json"]


def test_cli_resume_with_a_path_is_one_line_exit_2(
    tiny_config: SearchConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = _victim(tmp_path)
    code = main(["search", "--resume", str(victim), "--runs-dir", tiny_config.runs_dir])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "not a plain name of a folder" in err
    assert sorted(p.name for p in victim.iterdir()) == ["config.json"]


def test_apply_and_export_names_do_not_reach_a_parent_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "searches").mkdir(parents=True)
    (runs / "best_policy.json").write_text("{}")  # '..' from searches/ is runs/
    (runs / "config.json").write_text(json.dumps({"model": "demo"}))
    assert find_search("..", runs) is None
    assert find_search("../runs", runs) is None
