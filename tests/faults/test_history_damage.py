"""A damaged ``history.jsonl``: damage before the last line is reported with its line number
and the fix, and the file is left byte for byte; only a torn last line is dropped, after a
copy of the file is kept next to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def history(finished_search) -> Iterator[bytes]:
    """The finished search's history; put back as it was after the test."""
    path = finished_search.run_dir / "history.jsonl"
    original = path.read_bytes()
    yield original
    path.write_bytes(original)
    for copy in finished_search.run_dir.glob("history.jsonl.torn-*"):
        copy.unlink()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda lines: [lines[0], b'{"index": 1, "poli\x00cy"', *lines[2:]], "line 2 is damaged"),
        (lambda lines: [lines[0], lines[1], lines[1], *lines[3:]], "line 3 holds episode 1"),
    ],
    ids=["unreadable-line", "repeated-episode"],
)
def test_damage_in_the_middle_is_reported_and_the_file_left_as_it_was(
    finished_search, history: bytes, damage, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = finished_search.run_dir / "history.jsonl"
    damaged = b"\n".join(damage(history.split(b"\n")[:-1])) + b"\n"
    path.write_bytes(damaged)
    (run,) = finished_search.mlflow_runs()
    capsys.readouterr()

    assert finished_search.resume_here() == 2

    err = capsys.readouterr().err
    assert message in err and "left unchanged" in err and "by hand" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert path.read_bytes() == damaged
    assert not list(finished_search.run_dir.glob("history.jsonl.torn-*"))
    assert [r.info.run_id for r in finished_search.mlflow_runs()] == [run.info.run_id]


def test_a_torn_last_line_is_dropped_and_a_copy_kept(finished_search, history: bytes) -> None:
    path = finished_search.run_dir / "history.jsonl"
    tail = b'{"index": 4, "policy": {"lay'  # a crash while the last record was written
    path.write_bytes(history + tail)

    assert finished_search.resume_here() == 0

    assert path.read_bytes() == history
    (copy,) = finished_search.run_dir.glob("history.jsonl.torn-*")
    assert copy.read_bytes() == history + tail
