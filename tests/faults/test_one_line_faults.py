"""Faults that used to end in a traceback or in advice that does not apply: a full disk
(a real, small tmpfs where the machine lets a user namespace mount one, else a stubbed
ENOSPC), a mistyped SQLite URL for ``autoprune worker``, a budget too large for a float,
and the advice for a chance-level model that came from the cache."""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from autoprune.core.errors import AutopruneError
from autoprune.data import DataSplits
from autoprune.system import atomic_dir as atomic
from autoprune.workflow.config import SearchConfig
from tests.faults.conftest import Search

CLI = "import sys; from autoprune.cli import main; sys.exit(main())"


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = "mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null || mount -t tmpfs tmpfs /tmp"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", probe], capture_output=True)
    return done.returncode == 0


needs_tmpfs = pytest.mark.skipif(
    not _can_mount_tmpfs(), reason="no user namespace to mount a small tmpfs"
)


def _on_small_disk(folder: Path, size: str, *commands: list[str] | str, cwd: Path) -> list[str]:
    """Run commands (autoprune's arguments, or a shell line) one after the other with
    ``folder`` a fresh tmpfs of ``size``; the combined output of each, its status last."""
    folder.mkdir()
    script = [f"mount -t tmpfs -o size={size} tmpfs {folder} || exit 99"]
    for command in commands:
        if not isinstance(command, str):  # autoprune's arguments
            command = f"'{sys.executable}' -c '{CLI}' " + " ".join(f"'{w}'" for w in command)
        script.append(f"{command} 2>&1; echo \"rc=$?\"; echo '@@'")
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "\n".join(script)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split("@@\n")[:-1]


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines[-1] == "rc=2", output
    assert "Traceback" not in output, output
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and len(lines) == 2, output
    return errors[0]


@needs_tmpfs
def test_apply_on_a_full_disk_is_one_line_and_keeps_the_export(
    finished_search: Search, tmp_path: Path
) -> None:
    """The first export fits the 300 KB disk, the second cannot be staged beside it."""
    disk = tmp_path / "disk"
    runs = str(finished_search.folder / "runs")
    argv = ["--threads", "1", "--quiet", "apply", finished_search.run_dir.name,
            "--runs-dir", runs, "--export", str(disk / "out")]  # fmt: skip
    listing = f"cd {disk} && find . | sort | xargs md5sum"
    first, files, second, after = _on_small_disk(
        disk, "300k", argv, listing, argv, listing, cwd=finished_search.folder
    )
    assert first.splitlines()[-1] == "rc=0", first
    assert "./out/model.apz" in files and "./out/report.json" in files
    line = _one_error_line(second)
    assert "no space left on the disk" in line and str(disk / "out") in line
    assert after == files  # the export that was there is whole, and nothing else is left


@needs_tmpfs
def test_search_on_a_full_disk_is_one_line(weights: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    argv = ["--threads", "1", "--quiet", "search", "--model", "demo", "--dataset", "digits",
            "--weights", str(weights), "--agent", "random", "--episodes", "30",
            "--target", "flops=0.5", "--runs-dir", str(disk / "runs")]  # fmt: skip
    (output,) = _on_small_disk(disk, "200k", argv, cwd=tmp_path)
    assert "no space left on the disk" in _one_error_line(output)


def test_stubbed_enospc_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no tmpfs can be mounted: the rename of a full disk fails with ENOSPC."""
    target = tmp_path / "summary.json"
    target.write_text("old")

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(atomic.DiskFull, match="no space left on the disk writing .*summary"):
        atomic.write_atomic(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_worker_with_a_mistyped_sqlite_url_creates_nothing(
    tmp_path: Path, refused: Callable[..., str]
) -> None:
    typo = tmp_path / "optuan.db"
    line = refused("worker", "demo__tpe__0__20261207-100000", "--storage", f"sqlite:///{typo}")
    assert f"no SQLite database at {typo}" in line and "--storage" in line
    assert not typo.exists()


def test_budget_too_large_for_a_float_says_so(tmp_path: Path, refused: Callable[..., str]) -> None:
    line = refused(
        "search", "--model", "demo", "--dataset", "digits", "--target", "params=1e400",
        "--runs-dir", str(tmp_path),
    )  # fmt: skip
    assert "params=1e400 is not a finite number" in line and "must be positive" not in line


@pytest.mark.parametrize("given", [None, "trained.pt"])
def test_chance_level_advice_fits_where_the_weights_came_from(
    digits: DataSplits, given: str | None
) -> None:
    from autoprune.workflow.session import _refuse_chance_level

    session = SimpleNamespace(
        config=SearchConfig(weights=given),
        data=digits,
        weights_path=Path(given or "runs/checkpoints/demo.pt"),
        evaluator=SimpleNamespace(baseline_metrics={"accuracy": 0.05}, metric=None),
    )
    with pytest.raises(AutopruneError) as caught:
        _refuse_chance_level(session)  # type: ignore[arg-type]
    message = str(caught.value)
    assert ("omit --weights" in message) == (given is not None)
    assert ("autoprune train --force" in message) == (given is None)
