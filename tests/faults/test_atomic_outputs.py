"""Outputs are all-or-nothing: a process killed while writing a folder or a file leaves the
previous output as it was (the user's other files too), and the next write cleans up after it.

Every fault is real: a subprocess is killed with SIGKILL (or SIGINT) at the named point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from autoprune.system.atomic_dir import atomic_dir, clean_stale
from tests.faults.conftest import Search

KILL_INSIDE = """
import os, signal, sys
from pathlib import Path
import autoprune.system.atomic_dir as ad
{patch}
with ad.atomic_dir(Path(sys.argv[1]), replaces={{"stale.txt"}}) as staging:
    (staging / "a.txt").write_text("new a")
    {inside}
    (staging / "b.txt").write_text("new b")
"""


def _old_folder(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old a")
    (out / "b.txt").write_text("old b")
    (out / "stale.txt").write_text("old stale")
    (out / "mine").mkdir()
    (out / "mine" / "notes.txt").write_text("the user's")
    return out


def _contents(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _run_killed(out: Path, inside: str = "pass", patch: str = "") -> int:
    """Run the writer of ``KILL_INSIDE`` in a real process; its exit status."""
    script = KILL_INSIDE.format(patch=textwrap.dedent(patch), inside=inside)
    done = subprocess.run([sys.executable, "-c", script, str(out)], timeout=60)
    return done.returncode


def test_kill9_between_files_leaves_the_old_folder(tmp_path: Path) -> None:
    out = _old_folder(tmp_path)
    before = _contents(out)
    code = _run_killed(out, "os.kill(os.getpid(), signal.SIGKILL)")
    assert code == -signal.SIGKILL
    assert _contents(out) == before  # nothing of the new output, nothing of the old lost
    leftovers = [p for p in tmp_path.iterdir() if p.name != "out"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".out.")  # the dead staging
    with atomic_dir(out, replaces={"stale.txt"}) as staging:
        (staging / "a.txt").write_text("new a")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the next write cleaned it
    assert _contents(out) == {"a.txt": "new a", "b.txt": "old b", "mine/notes.txt": "the user's"}


def test_kill9_between_the_two_renames_is_undone(tmp_path: Path) -> None:
    """Without an atomic exchange the swap is two renames; a kill between them leaves no
    folder at the target, and the next writer puts the old one back first."""
    out = _old_folder(tmp_path)
    before = _contents(out)
    patch = """
    ad._EXCHANGE = None
    real = os.replace
    def replace(a, b):
        real(a, b)
        if str(b).endswith("-old.d"):
            os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace
    """
    assert _run_killed(out, patch=patch) == -signal.SIGKILL
    assert not out.exists()
    clean_stale(out)
    assert _contents(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_kill9_after_the_exchange_keeps_the_new_folder(tmp_path: Path) -> None:
    out = _old_folder(tmp_path)
    patch = """
    import shutil
    shutil.rmtree = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    """
    assert _run_killed(out, patch=patch) == -signal.SIGKILL
    new = {"a.txt": "new a", "b.txt": "new b", "mine/notes.txt": "the user's"}
    assert _contents(out) == new
    clean_stale(out)  # the old folder left at the staging name goes; the user's file stays
    assert _contents(out) == new and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_error_inside_leaves_target_and_no_temporary(tmp_path: Path) -> None:
    out = _old_folder(tmp_path)
    before = _contents(out)
    with pytest.raises(RuntimeError), atomic_dir(out) as staging:
        (staging / "a.txt").write_text("half")
        raise RuntimeError("export failed")
    assert _contents(out) == before and [p.name for p in tmp_path.iterdir()] == ["out"]


APPLY_KILLED = """
import os, signal, sys
import autoprune.deploy.apply as apply
original = apply.export_bundle
def export_then_die(*args, **kwargs):
    files = original(*args, **kwargs)  # model.apz, original.onnx, model.pt, model.onnx written
    os.kill(os.getpid(), int(sys.argv[1]))
    return files
apply.export_bundle = export_then_die
from autoprune.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _apply_args(search: Search, out: Path) -> list[str]:
    runs = str(search.folder / "runs")
    return ["--threads", "1", "--quiet", "apply", search.run_dir.name, "--runs-dir", runs,
            "--export", str(out)]  # fmt: skip


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_ino, p.read_bytes()) for p in folder.iterdir()}


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_apply_killed_mid_export_keeps_the_previous_export(
    finished_search: Search, tmp_path: Path, signum: int
) -> None:
    from autoprune import load_compressed
    from autoprune.cli import main

    out = tmp_path / "export"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    assert main(_apply_args(finished_search, out)) == 0
    before = _snapshot(out)
    assert {"model.apz", "model.pt", "policy.json", "report.json", "notes.txt"} <= set(before)
    args = [
        sys.executable,
        "-c",
        APPLY_KILLED,
        str(int(signum)),
        *_apply_args(finished_search, out),
    ]
    done = subprocess.run(args, cwd=finished_search.folder, timeout=300, capture_output=True)
    assert done.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 130), done.stderr
    assert _snapshot(out) == before  # same files, same inodes: the export folder was not touched
    report = json.loads((out / "report.json").read_text())
    assert Path(report["files"]["apz"]) == out / "model.apz"
    assert load_compressed(out / "model.pt") is not None
    if signum == signal.SIGINT:  # an orderly stop also removes its staging folder
        assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_export_onto_a_folder_is_one_line_and_leaves_nothing(
    finished_search: Search, tmp_path: Path, refused: Callable[..., str]
) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    runs = str(finished_search.folder / "runs")
    name = finished_search.run_dir.name
    line = refused("export", name, "--runs-dir", runs, "-o", str(folder))
    assert "is a folder" in line and "policy.json" in line
    assert list(tmp_path.rglob("*")) == [folder]  # no stray temporary
    from autoprune.cli import main

    target = folder / "best.json"
    assert main(["--quiet", "export", name, "--runs-dir", runs, "-o", str(target)]) == 0
    assert json.loads(target.read_text())["layers"]
    assert sorted(p.name for p in folder.iterdir()) == ["best.json"]


def test_resume_of_a_finished_search_does_nothing(
    finished_search: Search, capsys: pytest.CaptureFixture[str]
) -> None:
    """No finishing stage again (it rewrote the result files, and a Ctrl-C meanwhile marked
    the finished MLflow run KILLED): one line says so and how to go on."""
    (run,) = finished_search.mlflow_runs()
    assert run.info.status == "FINISHED"
    files = ("best_model.apz", "best_policy.json", "summary.json")
    before = {f: os.stat(finished_search.run_dir / f).st_ino for f in files}
    capsys.readouterr()
    assert finished_search.resume_here() == 0
    err = capsys.readouterr().err
    assert "already finished its 4 episodes" in err and "--episodes 8" in err
    assert len(err.strip().splitlines()) == 1
    assert {f: os.stat(finished_search.run_dir / f).st_ino for f in files} == before
    (run,) = finished_search.mlflow_runs()
    assert run.info.status == "FINISHED"


def test_resume_finishes_a_search_that_died_before_mlflow_heard_of_its_end(
    finished_search: Search,
) -> None:
    """Results written but the MLflow run not marked FINISHED (killed in between): the
    resume runs the finishing stage again and ends the MLflow run."""
    from tests.faults.conftest import _client

    (run,) = finished_search.mlflow_runs()
    _client(finished_search.tracking).set_terminated(run.info.run_id, "KILLED")
    before = os.stat(finished_search.run_dir / "best_model.apz").st_ino
    assert finished_search.resume_here() == 0
    (run,) = finished_search.mlflow_runs()
    assert run.info.status == "FINISHED"
    assert os.stat(finished_search.run_dir / "best_model.apz").st_ino != before
