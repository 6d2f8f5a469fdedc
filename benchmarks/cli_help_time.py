"""CPU time of the command lines that should answer at once: help and usage errors.

Runs each command line ``--repeat`` times as a fresh process and reports the median CPU
time (user + system) it cost, read from ``resource.getrusage(RUSAGE_CHILDREN)`` before and
after each run, and its median wall time. Goal (issue 29): under 0.3 s of CPU each.

``--source DIR`` runs the ``autoprune`` package found in DIR instead of the installed one
(e.g. ``git archive HEAD autoprune agents envs | tar -x -C DIR`` for the tree before a
change), so that both are measured in one run under the same load::

    python benchmarks/cli_help_time.py --repeat 5 --source /tmp/before
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS: dict[str, list[str]] = {
    "autoprune --help": ["--help"],
    "autoprune search --help": ["search", "--help"],
    "autoprune serch (typo)": ["serch"],
}
"""What each row measures: the words after ``autoprune``."""


ENTRY = "import sys; from autoprune.cli import main; sys.exit(main())"
"""The console script's entry point, for ``--source``."""


def autoprune_argv(source: Path | None = None) -> list[str]:
    """The ``autoprune`` console script of this environment, else the module; with
    ``source``, the entry point run with ``source`` first on ``sys.path``."""
    if source is not None:
        return [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(source)!r}); {ENTRY}"]
    script = Path(sys.executable).with_name("autoprune")
    if script.is_file():
        return [str(script)]
    found = shutil.which("autoprune")
    return [found] if found else [sys.executable, "-m", "autoprune.cli._app"]


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_once(argv: list[str]) -> tuple[float, float, int]:
    """CPU seconds, wall seconds and exit code of one run of ``argv``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="100")
    cpu, wall = children_cpu(), time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env, check=False)
    return children_cpu() - cpu, time.perf_counter() - wall, done.returncode


def measure(repeat: int, source: Path | None = None) -> list[dict[str, object]]:
    """One row per command line: median CPU and wall seconds over ``repeat`` runs."""
    base, rows = autoprune_argv(source), []
    for label, words in COMMANDS.items():
        runs = [time_once(base + words) for _ in range(repeat)]
        rows.append(
            {
                "tree": str(source) if source else "installed",
                "command": label,
                "cpu_s": round(statistics.median(r[0] for r in runs), 3),
                "wall_s": round(statistics.median(r[1] for r in runs), 3),
                "exit_codes": sorted({r[2] for r in runs}),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="Runs per command line.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the rows here.")
    parser.add_argument("--source", type=Path, default=None, help="Also time this tree.")
    args = parser.parse_args(argv)
    rows = measure(args.repeat, args.source) if args.source else []
    rows += measure(args.repeat)
    print(f"{'tree':<12} {'command':<26} {'cpu s':>7} {'wall s':>7}  exit")
    for row in rows:
        tree, command, codes = str(row["tree"])[-12:], row["command"], row["exit_codes"]
        print(f"{tree:<12} {command:<26} {row['cpu_s']:>7.3f} {row['wall_s']:>7.3f}  {codes}")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
