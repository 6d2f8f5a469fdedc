"""Real ``autoprune search`` processes to crash, signal and race (the fault tests).

Every search runs the CLI in its own process, forked from a zygote process that imported
autoprune, MLflow, Optuna and scikit-learn once (``_zygote.py``): a real process with its
own PID, signals and exit status, which costs a fork instead of ten seconds of imports on
a 2-core machine.

Fixtures:
    weights: a demo CNN trained for one epoch on digits (a state dict file).
    shared_store: an MLflow store created once, so that searches skip its schema migrations.
    searches: ``searches.start(folder, ...)`` starts a small search (``--model demo
        --dataset digits``, ``--threads 1``) in ``folder`` and returns a :class:`Search`;
        every process still alive at the end of the test is killed.
    finished_search: a small search run to its end in the test process.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from autoprune.core.training import TrainConfig, train
from autoprune.data import DataSplits
from autoprune.workflow.baseline import build_for

ZYGOTE = Path(__file__).with_name("_zygote.py")
SEEDS = itertools.count(100)
"""Each process gets its own seed, so run names differ even within one second."""


class Zygote:
    """The forking process of ``_zygote.py`` (started once per test session)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ZYGOTE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lock = threading.Lock()

    def fork(self, argv: list[str], cwd: Path, log: Path) -> int:
        """Start ``autoprune ARGV`` in ``cwd``; its PID."""
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"argv": argv, "cwd": str(cwd), "log": str(log)}
        with self._lock:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            answer = self.process.stdout.readline()
        assert answer, "the zygote process died"
        return int(answer)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(60)


@dataclass
class Search:
    """One ``autoprune search`` (a process, or a run finished in the test process)."""

    pid: int
    folder: Path
    log: Path
    seed: int
    tracking: Path
    """The MLflow tracking directory the search logs to."""

    @property
    def status_file(self) -> Path:
        return self.log.with_name(f"{self.log.name}.status")

    def alive(self) -> bool:
        return not self.status_file.exists()

    def wait(self, timeout: float = 180.0) -> int:
        """The exit status (``-N`` when signal N killed the process)."""
        deadline = time.monotonic() + timeout
        while self.alive():
            assert time.monotonic() < deadline, f"process {self.pid} did not end"
            time.sleep(0.01)
        return int(self.status_file.read_text())

    def signal(self, signum: int) -> int:
        """Send ``signum`` and wait for the exit status."""
        os.kill(self.pid, signum)
        return self.wait()

    @property
    def run_dir(self) -> Path:
        """The search's run folder (the one under ``runs/searches`` named with its seed)."""
        (run,) = (self.folder / "runs" / "searches").glob(f"*__{self.seed}__*")
        return run

    def records(self) -> int:
        """Complete lines of the run's history so far (0 before the run folder exists)."""
        found = list((self.folder / "runs" / "searches").glob(f"*__{self.seed}__*/history.jsonl"))
        return found[0].read_bytes().count(b"\n") if found else 0

    def wait_records(self, count: int, timeout: float = 180.0) -> None:
        """Block until the history holds ``count`` records (fails if the process ends)."""
        deadline = time.monotonic() + timeout
        while self.records() < count:
            assert self.alive(), f"search ended early:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {count} records in {timeout} s"
            time.sleep(0.005)

    def output(self) -> str:
        return self.log.read_text() if self.log.is_file() else ""

    def history(self) -> bytes:
        return (self.run_dir / "history.jsonl").read_bytes()

    def indices(self) -> list[int]:
        """Episode index of every history line."""
        return [json.loads(line)["index"] for line in self.history().splitlines()]

    def resume_here(self, *args: str) -> int:
        """``autoprune search --resume RUN ARGS`` in this (the test's) process; the exit code."""
        from autoprune.cli import main

        cwd = Path.cwd()
        os.chdir(self.folder)
        try:
            return main(
                ["--threads", "1", "--quiet", "search", "--resume", self.run_dir.name, *args]
            )
        finally:
            os.chdir(cwd)

    def mlflow_runs(self) -> list[Any]:
        """The MLflow runs named after this search's run folder."""
        return self.mlflow_runs_all(f"attributes.run_name = '{self.run_dir.name}'")

    def mlflow_runs_all(self, filter_string: str = "") -> list[Any]:
        """The runs of the tracking store's ``autoprune`` experiment."""
        client = _client(self.tracking)
        experiment = client.get_experiment_by_name("autoprune")
        return client.search_runs([experiment.experiment_id], filter_string=filter_string)

    def logged_steps(self, run_id: str, metric: str = "reward") -> list[int]:
        """Every step at which ``run_id`` has ``metric``, sorted (repeats included)."""
        return sorted(m.step for m in _client(self.tracking).get_metric_history(run_id, metric))


def _client(tracking: Path) -> Any:
    from autoprune.tracking import TrackingStore
    from autoprune.tracking._location import make_client

    return make_client(TrackingStore.resolve(str(tracking)).uri)


@dataclass
class Searches:
    """Starts search processes and kills those left at the end of a test."""

    weights: Path
    zygote: Zygote | None = None
    started: list[Search] = field(default_factory=list)

    def start(
        self,
        folder: Path,
        *,
        episodes: int = 20,
        agent: str = "random",
        tracking: str | None = None,
        seed: int | None = None,
    ) -> Search:
        """``autoprune --threads 1 --quiet search --config <small config>`` in ``folder``
        (logging to ``tracking``, else to ``runs/mlflow`` there) in a new process."""
        assert self.zygote is not None
        seed = next(SEEDS) if seed is None else seed
        argv, store = self._command(folder, episodes, agent, tracking, seed)
        log = folder / f"output-{len(self.started)}-{seed}.txt"
        search = Search(self.zygote.fork(argv, folder, log), folder, log, seed, store)
        self.started.append(search)
        return search

    def resume(self, search: Search) -> Search:
        """``autoprune search --resume RUN`` of ``search``'s run, in a new process."""
        assert self.zygote is not None
        argv = ["--threads", "1", "--quiet", "search", "--resume", search.run_dir.name]
        log = search.folder / f"output-{len(self.started)}-{search.seed}.txt"
        pid = self.zygote.fork(argv, search.folder, log)
        resumed = Search(pid, search.folder, log, search.seed, search.tracking)
        self.started.append(resumed)
        return resumed

    def run_here(
        self, folder: Path, *, episodes: int, agent: str = "random", tracking: str | None = None
    ) -> Search:
        """The same search, run to its end in this (the test's) process."""
        from autoprune.cli import main

        seed = next(SEEDS)
        argv, store = self._command(folder, episodes, agent, tracking, seed)
        cwd = Path.cwd()
        os.chdir(folder)
        try:
            assert main(argv) == 0
        finally:
            os.chdir(cwd)
        return Search(0, folder, folder / "no-process", seed, store)

    def _command(
        self, folder: Path, episodes: int, agent: str, tracking: str | None, seed: int
    ) -> tuple[list[str], Path]:
        folder.mkdir(parents=True, exist_ok=True)
        config = write_config(folder, self.weights, episodes=episodes, agent=agent, seed=seed)
        argv = ["--threads", "1", "--quiet", "search", "--config", str(config)]
        if tracking is not None:
            argv += ["--tracking-uri", tracking]
        return argv, Path(tracking) if tracking is not None else folder / "runs" / "mlflow"

    def stop_all(self) -> None:
        for search in self.started:
            if search.alive():
                os.kill(search.pid, signal.SIGKILL)
                search.wait()


def write_config(folder: Path, weights: Path, *, episodes: int, agent: str, seed: int) -> Path:
    """A small search: all 144 validation images, one calibration batch, tiny RL nets."""
    options = {"warmup_episodes": 2, "net_arch": [8, 8]} if agent == "ddpg" else {}
    config = {
        "model": "demo",
        "dataset": "digits",
        "weights": str(weights),
        "agent": agent,
        "seed": seed,
        "episodes": episodes,
        "targets": ["flops=0.5"],
        "val_samples": 200,
        "calib_batches": 1,
        "checkpoint_every": 2,
        "agent_options": options,
    }
    path = folder / f"config-{seed}.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


@pytest.fixture(scope="session")
def zygote() -> Iterator[Zygote]:
    started = Zygote()  # imports while the other fixtures are set up
    yield started
    started.close()


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory, digits: DataSplits) -> Path:
    path = tmp_path_factory.mktemp("fault_weights") / "demo.pt"
    model = build_for("demo", digits)
    train(model, digits, TrainConfig(epochs=1, lr=0.05, batch_size=64))
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tracking directory whose MLflow database and experiment already exist."""
    from autoprune.tracking import SearchTracker

    folder = tmp_path_factory.mktemp("fault_mlflow")
    with SearchTracker(str(folder), run_name="setup").start():
        pass
    return str(folder)


@pytest.fixture
def searches(zygote: Zygote, weights: Path) -> Iterator[Searches]:
    started = Searches(weights, zygote)
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def finished_search(
    weights: Path, shared_store: str, tmp_path_factory: pytest.TempPathFactory
) -> Search:
    """A search of four episodes run to its end in this process."""
    folder = tmp_path_factory.mktemp("finished")
    return Searches(weights).run_here(folder, episodes=4, tracking=shared_store)


@pytest.fixture
def refused(capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """``refused(*argv)``: run ``autoprune --quiet ARGV``, assert exit 2 and one ``error:``
    line on stderr without a traceback (progress bars aside), and return that line."""
    from autoprune.cli import main

    def run(*argv: str) -> str:
        code = main(["--quiet", *argv])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip() and "━" not in line]
        assert code == 2, err
        assert "Traceback" not in err
        assert len(lines) == 1, err
        assert lines[0].startswith("error: ")
        return lines[0]

    return run
