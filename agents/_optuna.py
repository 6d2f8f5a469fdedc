"""Optuna search methods: ``tpe``, ``gp``, ``cmaes``, ``random`` and ``nsga2``.

Each trial is one episode of the environment: for the layer of each step the trial suggests
one float in ``[-1, 1]`` per action dimension (``trial.suggest_float("conv1.keep", -1, 1)``);
the environment clips, repairs and evaluates, and the trial's value is the episode reward
(``nsga2``: accuracy to maximise, latency, energy and size to minimise). The evaluated policy
is a user attribute of the trial, so the study alone holds the whole history.

The study is named after the run and lives in ``config.storage`` (any SQLAlchemy URL;
default ``sqlite:///<runs_dir>/optuna.db``); a resumed run loads it by name. With
``n_workers > 1``, ``n_workers - 1`` processes (each calling ``prepare_search``) optimise the
same study next to this one; the budget is shared exactly (see :mod:`agents._optuna_study`).
Records enter the history in the order their trials complete. With ``--backend ray``
the trials run on Ray actors, ``workers`` at a time, asked and told by this process
(:mod:`agents._ray_optuna`), and enter the history in trial-number order. Samplers are
re-seeded from ``(seed, worker, finished trials)`` so that workers and resumed runs do not
repeat samples.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import optuna
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from agents._base import SearchMethod
from agents._context import SearchContext, worker_processes, worker_threads
from agents._optuna_study import (
    EpisodeObjective,
    episode_info,
    fail_running,
    make_storage,
    sampler_seed,
    save_study_config,
    storage_url,
    worker_main,
)
from agents._seeds import Seed, seeds_for
from autoprune.core.errors import AutopruneError
from envs.compression_env import CompressionEnv

PARETO_OBJECTIVES = ("accuracy", "latency", "energy", "size")
SEED_ATTR = "seed_policy"
"""User attribute of an enqueued seed trial: the heuristic whose policy it plays."""


@dataclass(frozen=True)
class OptunaOptions:
    """Options of the Optuna methods (``agent_options``)."""

    n_workers: int = 1
    """Processes optimising the study, this one included."""
    sampler_kwargs: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments of the sampler's constructor."""

    def check(self) -> None:
        """Raise :class:`AutopruneError` on an unusable value."""
        if not isinstance(self.n_workers, int) or self.n_workers < 1:
            raise AutopruneError(f"agent option n_workers={self.n_workers!r} must be >= 1")


class TrialRecorder:
    """Records finished trials with the runner, in completion order, each exactly once.

    Used as an Optuna callback (after each trial of this process) and polled while worker
    processes run.
    """

    def __init__(self, ctx: SearchContext, study: optuna.Study) -> None:
        self.ctx = ctx
        self.study = study
        self.seen = {r.policy.meta.get("trial_number") for r in ctx.history}

    def sync(self) -> None:
        """Record every COMPLETE trial not recorded yet (up to the budget)."""
        trials = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        for trial in sorted(trials, key=lambda t: (t.datetime_complete, t.number)):
            if trial.number in self.seen or self.ctx.exhausted:
                continue
            info, reward = episode_info(trial)
            meta: dict[str, Any] = {"trial_number": trial.number}
            if SEED_ATTR in trial.user_attrs:
                meta["seed_policy"] = trial.user_attrs[SEED_ATTR]
            if info.get("retried"):
                meta["retried"] = int(info["retried"])
            self.ctx.record(info, reward, meta=meta)
            self.seen.add(trial.number)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.sync()
        self.ctx.maybe_checkpoint()


class OptunaMethod(SearchMethod):
    """Common driver of the Optuna methods (subclasses pick the sampler)."""

    Options: ClassVar[type[Any]] = OptunaOptions
    directions: ClassVar[tuple[Literal["minimize", "maximize"], ...]] = ("maximize",)
    startup_trials: ClassVar[int | None] = None
    """The sampler's default ``n_startup_trials`` (random trials before it models the
    results; Optuna's defaults); None for samplers that never model them."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.options.check()
        self.seeds: list[Seed] = []

    def plant_seeds(self, ctx: SearchContext) -> None:
        """Keep the seed policies; :meth:`run` enqueues them as the study's first trials."""
        self.seeds = seeds_for(ctx)

    def episodes_before_learning(self, budget: int) -> int | None:
        """The sampler's random start-up trials (``n_startup_trials`` may override them)."""
        if self.startup_trials is None:
            return None
        return int(self.options.sampler_kwargs.get("n_startup_trials", self.startup_trials))

    def make_sampler(self, seed: int, budget: int) -> BaseSampler:
        """The sampler of one worker."""
        raise NotImplementedError

    def values(self, reward: float, metrics: dict[str, float]) -> float | Sequence[float]:
        """The trial value(s) of an episode."""
        return reward

    def run(self, ctx: SearchContext) -> None:
        """Rounds of workers until the study holds ``budget`` COMPLETE trials."""
        url = storage_url(ctx.config)
        storage = make_storage(url)
        study = self._create_study(ctx, storage, url)
        if self.seeds and not study.trials:
            enqueue_seeds(study, ctx.make_env(), self.seeds)
        recorder = TrialRecorder(ctx, study)
        while True:
            fail_running(study, storage)
            recorder.sync()
            if ctx.exhausted:
                return
            if ctx.config.backend == "ray":
                from agents._ray_optuna import optimize_on_ray

                optimize_on_ray(self, ctx, recorder, storage)
                continue
            before = ctx.recorded
            self._round(ctx, storage, url, recorder)
            recorder.sync()
            if ctx.recorded == before:
                raise RuntimeError(f"no trial of study '{study.study_name}' finished in a round")

    def _create_study(self, ctx: SearchContext, storage: BaseStorage, url: str) -> optuna.Study:
        name = ctx.run_dir.name
        try:
            study = optuna.create_study(
                study_name=name,
                storage=storage,
                directions=list(self.directions),
                load_if_exists=ctx.resumed,
            )
        except optuna.exceptions.DuplicatedStudyError:
            raise AutopruneError(
                f"study '{name}' already exists in {url}; resume it or choose another run name"
            ) from None
        save_study_config(study, ctx.config)
        return study

    def _round(
        self, ctx: SearchContext, storage: BaseStorage, url: str, recorder: TrialRecorder
    ) -> None:
        """This process and ``n_workers - 1`` worker processes optimise until the budget."""
        workers = self.options.n_workers
        done = ctx.recorded
        seed = ctx.config.seed
        processes = [
            worker_processes().Process(
                target=worker_main,
                args=(
                    ctx.config,
                    recorder.study.study_name,
                    url,
                    sampler_seed(seed, rank, done),
                    worker_threads(workers),
                    os.getpid(),
                ),
                daemon=True,
            )
            for rank in range(1, workers)
        ]
        for process in processes:
            process.start()
        try:
            study = optuna.load_study(
                study_name=recorder.study.study_name,
                storage=storage,
                sampler=self.make_sampler(sampler_seed(seed, 0, done), ctx.budget),
            )
            study.optimize(
                EpisodeObjective(ctx.make_env(), ctx.budget, self.values), callbacks=[recorder]
            )
            for process in processes:
                while process.is_alive():
                    process.join(timeout=0.5)
                    recorder.sync()
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
                process.join()


def seed_params(env: CompressionEnv, seed: Seed) -> dict[str, float]:
    """The trial parameters (:func:`~agents._optuna_study.run_episode`'s names) that play
    ``seed``'s actions."""
    dims = env.space.dims
    return {
        f"{layer}.{dim}": float(value)
        for layer, action in zip(env.layer_names, seed.actions, strict=True)
        for dim, value in zip(dims, action, strict=True)
    }


def enqueue_seeds(study: optuna.Study, env: CompressionEnv, seeds: Sequence[Seed]) -> None:
    """Enqueue ``seeds`` (``Study.enqueue_trial``): the sampler asks them first, and learns
    from their results like from any trial's."""
    for seed in seeds:
        study.enqueue_trial(seed_params(env, seed), user_attrs={SEED_ATTR: seed.name})


class TPEMethod(OptunaMethod):
    """``tpe``: Optuna's tree-structured Parzen estimator."""

    name = "tpe"

    startup_trials = 10

    def make_sampler(self, seed: int, budget: int) -> BaseSampler:
        """``TPESampler`` with ``sampler_kwargs``."""
        return optuna.samplers.TPESampler(seed=seed, **self.options.sampler_kwargs)


class GPMethod(OptunaMethod):
    """``gp``: Optuna's Gaussian-process Bayesian optimisation."""

    name = "gp"

    startup_trials = 10

    def make_sampler(self, seed: int, budget: int) -> BaseSampler:
        """``GPSampler`` with ``sampler_kwargs``."""
        return optuna.samplers.GPSampler(seed=seed, **self.options.sampler_kwargs)


class CmaEsMethod(OptunaMethod):
    """``cmaes``: Optuna's CMA-ES sampler (needs the ``cmaes`` package)."""

    name = "cmaes"

    startup_trials = 1

    def make_sampler(self, seed: int, budget: int) -> BaseSampler:
        """``CmaEsSampler`` with ``sampler_kwargs``."""
        try:
            import cmaes  # noqa: F401
        except ModuleNotFoundError:
            raise AutopruneError(
                "agent 'cmaes' needs the cmaes package; pip install cmaes"
            ) from None
        return optuna.samplers.CmaEsSampler(seed=seed, **self.options.sampler_kwargs)


class RandomMethod(OptunaMethod):
    """``random``: uniform random actions (Optuna's ``RandomSampler``)."""

    name = "random"

    def make_sampler(self, seed: int, budget: int) -> BaseSampler:
        """``RandomSampler``."""
        return optuna.samplers.RandomSampler(seed=seed, **self.options.sampler_kwargs)


class NSGA2Method(OptunaMethod):
    """``nsga2``: multi-objective NSGA-II over accuracy, latency, energy and size.

    The population defaults to ``min(50, max(4, episodes // 4))`` so that small budgets
    still see several generations.
    """

    name = "nsga2"
    objectives = PARETO_OBJECTIVES
    directions = ("maximize", "minimize", "minimize", "minimize")

    def make_sampler(self, seed: int, budget: int) -> BaseSampler:
        """``NSGAIISampler`` with ``sampler_kwargs``."""
        kwargs = {"population_size": self._population(budget), **self.options.sampler_kwargs}
        return optuna.samplers.NSGAIISampler(seed=seed, **kwargs)

    def episodes_before_learning(self, budget: int) -> int | None:
        """The first generation is random."""
        return int(self.options.sampler_kwargs.get("population_size", self._population(budget)))

    @staticmethod
    def _population(budget: int) -> int:
        return min(50, max(4, budget // 4))

    def values(self, reward: float, metrics: dict[str, float]) -> Sequence[float]:
        """Accuracy, latency, energy, size."""
        return [float(metrics[key]) for key in PARETO_OBJECTIVES]
