"""Cached files are checked against the content hash written at save: a damaged baseline
checkpoint or side-car is a cache miss (one warning line, the damaged files kept aside,
trained again), a damaged user-given checkpoint a one-line error."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from autoprune.core.training import top1_accuracy
from autoprune.data import DataSplits
from autoprune.models import load_weights
from autoprune.workflow.baseline import build_for

TRAIN = ["--threads", "1", "--quiet", "train", "--model", "demo", "--dataset", "digits",
         "--epochs", "1"]  # fmt: skip


def _train(runs: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, list[str]]:
    """``autoprune train --json`` of the demo model; its summary and its stderr lines."""
    from autoprune.cli import main

    assert main([*TRAIN, "--runs-dir", str(runs), "--json"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip() and "━" not in line]
    return json.loads(captured.out), lines


def _flip(path: Path, count: int = 64) -> bytes:
    """Invert ``count`` bytes in the middle of ``path`` (tensor data); the damaged bytes."""
    blob = bytearray(path.read_bytes())
    start = len(blob) // 2
    for i in range(start, start + count):
        blob[i] ^= 0xFF
    path.write_bytes(bytes(blob))
    return bytes(blob)


def test_flipped_checkpoint_is_retrained_and_kept_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = _train(tmp_path, capsys)
    weights = Path(first["weights"])
    assert first["cached"] is False and len(first["sha256"]) == 64
    damaged = _flip(tmp_path / weights)
    again, err = _train(tmp_path, capsys)
    assert again["cached"] is False  # not reported as a cached 98% model
    assert len(err) == 1 and err[0].startswith("warning: cached baseline")
    assert "content hash" in err[0] and "kept as" in err[0]
    (kept,) = (tmp_path / "checkpoints").glob("*.pt.damaged-*")
    assert kept.read_bytes() == damaged  # the user's file is kept as it was
    third, err = _train(tmp_path, capsys)
    assert third["cached"] is True and err == []


def test_checkpoint_without_hash_is_scored_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], digits: DataSplits
) -> None:
    """A side-car written before hashes were recorded: intact weights that still score
    their recorded accuracy are trusted (and get a hash), damaged ones are trained again."""
    first, _ = _train(tmp_path, capsys)
    weights = tmp_path / first["weights"]
    side = weights.with_suffix(".json")
    legacy = {k: v for k, v in json.loads(side.read_text()).items() if k != "sha256"}
    side.write_text(json.dumps(legacy))
    again, err = _train(tmp_path, capsys)
    assert again["cached"] is True and err == []
    assert json.loads(side.read_text())["sha256"] == first["sha256"]  # upgraded
    side.write_text(json.dumps(legacy))
    _flip(weights)
    model = load_weights(build_for("demo", digits), weights)
    assert top1_accuracy(model, digits.x_val, digits.y_val) < legacy["val_accuracy"] - 0.01
    third, err = _train(tmp_path, capsys)
    assert third["cached"] is False and "no longer scores" in err[0]


def test_damaged_side_car_is_a_cache_miss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = _train(tmp_path, capsys)
    side = (tmp_path / first["weights"]).with_suffix(".json")
    side.write_bytes(side.read_bytes()[:40])  # torn
    again, err = _train(tmp_path, capsys)
    assert again["cached"] is False and "side-car" in err[0]
    assert len(list((tmp_path / "checkpoints").glob("*.json.damaged-*"))) == 1


def test_damaged_user_weights_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], refused: Callable[..., str]
) -> None:
    """The cached checkpoint passed as --weights: its side-car's hash is checked."""
    first, _ = _train(tmp_path, capsys)
    weights = tmp_path / first["weights"]
    _flip(weights)
    line = refused(
        "search", "--model", "demo", "--dataset", "digits", "--weights", str(weights),
        "--agent", "random", "--episodes", "1", "--target", "flops=0.5",
        "--runs-dir", str(tmp_path / "runs"),
    )  # fmt: skip
    assert "is damaged" in line and "content hash" in line and "autoprune train" in line
