"""What the runner hands a search method: environments, the budget, recording, checkpoints."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from multiprocessing.context import ForkServerContext, SpawnContext
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import torch

from agents._rng import rng_state
from agents._run_store import RunStore, write_json_atomic
from autoprune.core.results import EpisodeRecord
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.evaluation import COST_METRICS, PolicyEvaluator
from autoprune.workflow.session import SearchSession, prepare_search
from envs.compression_env import CompressionEnv

RecordFn = Callable[[EpisodeRecord], None]


class MethodState(Protocol):
    """What the runner and the context use of a search method (:class:`~agents.SearchMethod`
    provides it); a protocol, so that ``_context`` and ``_base`` do not import each other."""

    @property
    def name(self) -> str:
        """Registry name."""

    @property
    def objectives(self) -> tuple[str, ...]:
        """Objectives of the Pareto front."""

    def run(self, ctx: SearchContext) -> None:
        """Search until ``ctx.exhausted``."""

    def save_state(self, folder: Path) -> None:
        """Write the method's state into ``folder``."""


def search_env(config: SearchConfig, session: SearchSession) -> CompressionEnv:
    """The environment of ``config`` (its :meth:`~SearchConfig.env_settings`) on ``session``."""
    return CompressionEnv(session.evaluator, session.budget, **config.env_settings())


def worker_env(config: SearchConfig, threads: int) -> gym.Env:
    """Build an environment in a worker process (calls ``prepare_search`` there).

    Args:
        config: The search config (the worker loads data and the cached baseline itself).
        threads: torch intra-op threads of the worker (so workers do not oversubscribe).
    """
    torch.set_num_threads(threads)
    return search_env(config, prepare_search(config))


def worker_processes() -> ForkServerContext | SpawnContext:
    """The multiprocessing context of worker processes.

    ``forkserver`` where available, with this package preloaded in the server, so that each
    worker forks with torch already imported instead of importing it again (seconds per
    worker); ``spawn`` elsewhere. Never plain ``fork``: the parent may hold threads and
    database connections.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["agents._context", "agents._optuna_study"])
    return context


def worker_threads(workers: int) -> int:
    """torch threads per worker process when ``workers`` share this machine."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class SearchContext:
    """The runner's side of a search: budget, environments, history and checkpoints.

    A method sees the environment only through the Gym API (``make_env``/``env_factory``);
    ``evaluator`` is exposed for cost predictions (the ``uniform`` bisection); a policy
    built outside an episode (the one-shot methods) is scored by the environment's own
    :class:`~envs.scoring.PolicyScorer`, so that its record is an episode's.

    Example:
        >>> # env = ctx.make_env(); ...; ctx.record(info, reward); ctx.maybe_checkpoint()
    """

    def __init__(
        self,
        config: SearchConfig,
        session: SearchSession,
        store: RunStore,
        method: MethodState,
        history: list[EpisodeRecord],
        *,
        on_record: RecordFn | None = None,
        resumed: bool = False,
        seconds_before: float = 0.0,
    ) -> None:
        self.session = session
        self.config = config
        self.store = store
        self.method = method
        self.history = history
        self.resumed = resumed
        self._on_record = on_record
        self._checkpointed = len(history) if resumed else 0
        self._started = time.perf_counter()
        self._seconds_before = seconds_before

    @property
    def evaluator(self) -> PolicyEvaluator:
        """The session's evaluator (for cost predictions only)."""
        return self.session.evaluator

    @property
    def run_dir(self) -> Path:
        """The run directory (methods may keep extra files under it)."""
        return self.store.path

    @property
    def budget(self) -> int:
        """Evaluations this search may record (``config.episodes``)."""
        return self.config.episodes

    @property
    def recorded(self) -> int:
        """Evaluations recorded so far (including those before a resume)."""
        return len(self.history)

    @property
    def remaining(self) -> int:
        """Evaluations left."""
        return max(0, self.budget - self.recorded)

    @property
    def exhausted(self) -> bool:
        """Whether the budget is spent."""
        return self.recorded >= self.budget

    @property
    def seconds(self) -> float:
        """Wall time of the search, across resumes."""
        return self._seconds_before + time.perf_counter() - self._started

    def make_env(self) -> CompressionEnv:
        """An environment in this process, on the session's (shared, cached) evaluator."""
        return search_env(self.config, self.session)

    def env_factory(self, workers: int) -> Callable[[], gym.Env]:
        """A picklable factory of environments for ``workers`` worker processes."""
        return partial(worker_env, self.config, worker_threads(workers))

    def record(
        self, info: Mapping[str, Any], reward: float, *, meta: Mapping[str, Any] | None = None
    ) -> EpisodeRecord | None:
        """Count one finished episode from its terminal ``info``; None once the budget is spent.

        The record is appended durably to ``history.jsonl`` before ``on_record`` sees it.
        ``meta`` is merged into the policy's ``meta`` (e.g. the Optuna trial number).
        """
        if self.exhausted:
            return None
        policy = info["policy"]
        if meta:
            policy = replace(policy, meta={**policy.meta, **meta})
        record = EpisodeRecord(
            index=self.recorded,
            policy=policy,
            reward=float(reward),
            metrics={k: float(v) for k, v in info["metrics"].items()},
            feasible=bool(info["feasible"]),
            seconds=float(info.get("seconds", 0.0)),
            cached=bool(info.get("cached", False)),
        )
        self.store.append(record)
        self.history.append(record)
        self.remember(record)
        if self._on_record is not None:
            self._on_record(record)
        return record

    def remember(self, record: EpisodeRecord) -> None:
        """Put a record's measured metrics into the evaluator cache (from workers, on resume)."""
        keys = ("accuracy", *COST_METRICS)
        if all(k in record.metrics for k in keys):
            metrics = {k: record.metrics[k] for k in keys}
            key = self.evaluator.key(record.policy)
            self.evaluator.load_state_dict({"cache": {key: metrics}})

    def maybe_checkpoint(self, *, force: bool = False) -> bool:
        """Write a checkpoint when ``checkpoint_every`` episodes passed (or ``force``)."""
        every = max(1, self.config.checkpoint_every)
        if not force and self.recorded - self._checkpointed < every:
            return False
        self.store.write_checkpoint(self.recorded, self._write_checkpoint)
        self._checkpointed = self.recorded
        return True

    def _write_checkpoint(self, folder: Path) -> None:
        write_json_atomic(
            folder / "runner.json",
            {"episodes": self.recorded, "seconds": self.seconds, "method": self.method.name},
        )
        write_json_atomic(folder / "rng.json", rng_state())
        write_json_atomic(folder / "evaluator.json", self.evaluator.state_dict())
        write_json_atomic(folder / "history.json", [r.to_dict() for r in self.history])
        (folder / "method").mkdir()
        self.method.save_state(folder / "method")
