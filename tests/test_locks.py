"""autoprune/system/locks.py: one holder across processes, counted within one, freed by death."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from autoprune.system.locks import FileLock

HOLD = """
import fcntl, os, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
handle.truncate(0); handle.write(f"{os.getpid()}\\n"); handle.flush()
print("locked", flush=True)
time.sleep(60)
"""


def test_another_process_holds_the_lock_until_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "writer.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        lock = FileLock(path)
        assert not lock.acquire(wait=False)
        assert lock.holder() == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock.acquire(wait=False) and lock.holder() is not None
    lock.release()


def test_the_lock_is_counted_within_one_process(tmp_path: Path) -> None:
    path = tmp_path / "writer.lock"
    first, second = FileLock(path), FileLock(path)
    assert first.acquire(wait=False) and second.acquire(wait=False)
    first.release()
    probe = subprocess.run(
        [sys.executable, "-c", HOLD.replace("LOCK_EX)", "LOCK_EX | fcntl.LOCK_NB)"), str(path)],
        capture_output=True,
    )
    assert probe.returncode != 0 and b"BlockingIOError" in probe.stderr  # still held
    second.release()
    assert FileLock(path).acquire(wait=False)
