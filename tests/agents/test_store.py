"""RunStore: durable history lines, torn-line recovery, atomic checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

from agents._run_store import RunStore
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.core.results import EpisodeRecord
from autoprune.core.specs import discover_layers


def _record(index: int) -> EpisodeRecord:
    specs = discover_layers(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)), (4,))
    policy = Policy.uniform(specs, keep_ratio=0.5)
    return EpisodeRecord(index, policy, reward=0.1 * index, metrics={"accuracy": 0.5})


@pytest.mark.parametrize("tail", ['{"index": 3, "rew', '{"index": 3, "rew\x00\n'])
def test_history_survives_a_torn_last_line(tmp_path: Path, tail: str) -> None:
    store = RunStore.create(tmp_path / "run", {"agent": "x"})
    for index in range(3):
        store.append(_record(index))
    with open(store.path / "history.jsonl", "a") as handle:
        handle.write(tail)  # a crash in the middle of a write

    reopened = RunStore.open(store.path)
    records = reopened.read_history()

    assert [r.index for r in records] == [0, 1, 2]
    assert (store.path / "history.jsonl").read_text().endswith("\n")
    (copy,) = store.path.glob("history.jsonl.torn-*")  # the file as it was is kept
    assert copy.read_text().endswith(tail)
    reopened.append(_record(3))
    assert [r.index for r in reopened.read_history()] == [0, 1, 2, 3]


def test_history_with_a_gap_is_refused(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", {})
    store.append(_record(0))
    store.append(_record(2))
    before = (store.path / "history.jsonl").read_bytes()
    with pytest.raises(AutopruneError, match="line 2 holds episode 2, expected 1"):
        store.read_history()
    assert (store.path / "history.jsonl").read_bytes() == before


def test_checkpoints_are_published_only_when_complete(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", {})
    assert store.latest_checkpoint() is None
    store.write_checkpoint(2, lambda folder: (folder / "a.json").write_text("2"))

    def crash(folder: Path) -> None:
        (folder / "a.json").write_text("4")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.write_checkpoint(4, crash)
    latest = store.latest_checkpoint()
    assert latest is not None and (latest / "a.json").read_text() == "2"
    assert json.loads((store.path / "checkpoint.json").read_text())["episodes"] == 2

    store.write_checkpoint(6, lambda folder: (folder / "a.json").write_text("6"))
    assert [p.name for p in (store.path / "checkpoints").iterdir()] == [
        store.latest_checkpoint().name
    ]


def test_an_existing_run_is_not_overwritten(tmp_path: Path) -> None:
    RunStore.create(tmp_path / "run", {})
    with pytest.raises(AutopruneError, match="resume="):
        RunStore.create(tmp_path / "run", {})


def test_damage_before_the_last_line_is_reported_and_left_alone(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", {})
    for index in range(3):
        store.append(_record(index))
    path = store.path / "history.jsonl"
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([lines[0], b"{not json", *lines[2:]]))
    before = path.read_bytes()
    with pytest.raises(AutopruneError, match="line 2 is damaged.*left unchanged"):
        store.read_history()
    assert path.read_bytes() == before and not list(store.path.glob("history.jsonl.torn-*"))


def test_a_second_process_is_refused_with_the_pid(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", {})
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store.path / "writer.lock")], stdout=subprocess.PIPE
    )
    store.close()
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        with pytest.raises(AutopruneError, match=f"being written by PID {holder.pid}"):
            RunStore.open(store.path)
        with pytest.raises(AutopruneError, match=f"running under PID {holder.pid}"):
            RunStore.create(store.path, {})
    finally:
        holder.kill()
        holder.wait()
    with RunStore.open(store.path) as reopened:  # the dead holder's lock is gone
        assert reopened.read_history() == []


HOLD = """
import fcntl, os, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
handle.truncate(0); handle.write(f"{os.getpid()}\\n"); handle.flush()
print("locked", flush=True)
time.sleep(60)
"""
