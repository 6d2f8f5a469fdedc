"""A process that imports autoprune once, then forks one ``autoprune`` process per request.

Each child is a real process (real signals, ``kill -9``, its own exit status) that starts
in milliseconds instead of paying ten seconds of imports on a 2-core machine.

Protocol: one JSON object per line on stdin, ``{"argv": [...], "cwd": ..., "log": ...}``;
the answer is the child's PID on a line of stdout. The child runs ``autoprune ARGV`` in
``cwd`` with stdout and stderr in ``log``; when it ends, its exit status (``N``, or ``-S``
for a signal, as ``subprocess`` reports it) is written to ``<log>.status``. At end of
input the remaining children are killed.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import traceback
from typing import Any, NoReturn

import matplotlib.pyplot  # noqa: F401
import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
import sklearn.datasets  # noqa: F401

import agents  # noqa: F401  (imported once here, for every child)
import autoprune.cli  # noqa: F401
import autoprune.tracking._tracker  # noqa: F401

CHILDREN: dict[int, str] = {}


def run_child(request: dict[str, Any]) -> NoReturn:
    """The body of a forked child: ``autoprune ARGV`` in ``cwd``, output to ``log``.

    It ends with ``os._exit`` (as ``multiprocessing`` children do): the C++ static
    destructors of a forked interpreter's libraries may abort at a normal exit.
    """
    from autoprune.cli import main

    os.chdir(request["cwd"])
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    code = 1
    try:
        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def reap(block: bool = False) -> None:
    """Write the exit status of every child that ended (with ``block``, wait for all)."""
    while CHILDREN:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        log = CHILDREN.pop(pid, None)
        if log is not None:
            with open(f"{log}.status.tmp", "w") as handle:
                handle.write(str(os.waitstatus_to_exitcode(status)))
            os.replace(f"{log}.status.tmp", f"{log}.status")


def serve() -> None:
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0.01)
        reap()
        if not ready:
            continue
        line = sys.stdin.readline()
        if not line:
            break
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run_child(request)
        CHILDREN[pid] = request["log"]
        print(pid, flush=True)
    for pid in CHILDREN:
        os.kill(pid, signal.SIGKILL)
    reap(block=True)


if __name__ == "__main__":
    serve()
    os._exit(0)  # skip the slow finalisation of torch, MLflow and friends
