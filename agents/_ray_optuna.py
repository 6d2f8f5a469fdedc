"""Optuna trials evaluated on Ray actors: ask/tell with ``workers`` trials in flight.

The driver owns the sampler. It keeps every actor busy with one trial (never more trials
than the budget left, counting COMPLETE and RUNNING trials of the study, so a joined
``autoprune worker`` shares the budget); each trial's actions are suggested up front (the
layers an episode walks and their action dimensions are fixed). Trials are told and
recorded in the order they were asked, and each tell frees its actor for the next ask:
after the first ``workers`` asks the sampler always sees *tell, ask, tell, ask, ...*,
whatever order the actors finish in, so the same seed and number of workers give the same
history; a worker that finished waits only for the trials asked before its own, never for
a whole round. The first episode a restarted actor plays (after its process died) is
recorded with ``retried: 1``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import optuna
from optuna.storages import BaseStorage
from optuna.trial import Trial, TrialState

from agents._optuna_study import EPISODE_ATTR, episode_attr, fail_running, sampler_seed
from agents._ray import ray_cluster, start_workers

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

    from agents._context import SearchContext


class OptunaMethod(Protocol):
    """What the Ray driver uses of an Optuna method (:class:`agents._optuna.OptunaMethod`);
    protocols here, so that ``_optuna`` (which calls :func:`optimize_on_ray`) and this module
    do not import each other."""

    def make_sampler(self, seed: int, budget: int) -> BaseSampler:
        """The sampler of one worker."""

    def values(self, reward: float, metrics: dict[str, float]) -> float | Sequence[float]:
        """The trial value(s) of an episode."""


class TrialRecorder(Protocol):
    """What the Ray driver uses of :class:`agents._optuna.TrialRecorder`."""

    study: optuna.Study
    seen: set[Any]

    def sync(self) -> None:
        """Record every COMPLETE trial not recorded yet."""


JOINED_TRIAL_TIMEOUT = 3600.0
"""Seconds the runner waits for the trials of joined workers (``autoprune worker``) that
hold the rest of the budget before it fails them and evaluates their slots itself."""


def trial_actions(trial: Trial, layers: list[str], dims: tuple[str, ...]) -> list[np.ndarray]:
    """One action per layer, each dimension ``trial.suggest_float("LAYER.DIM", -1, 1)``
    (the names of :func:`agents._optuna_study.run_episode`)."""
    return [
        np.asarray([trial.suggest_float(f"{layer}.{dim}", -1.0, 1.0) for dim in dims], np.float32)
        for layer in layers
    ]


def optimize_on_ray(
    method: OptunaMethod, ctx: SearchContext, recorder: TrialRecorder, storage: BaseStorage
) -> None:
    """Spend the rest of the budget on Ray actors (``ctx.config.workers`` of them)."""
    config = ctx.config
    study = optuna.load_study(
        study_name=recorder.study.study_name,
        storage=storage,
        sampler=method.make_sampler(sampler_seed(config.seed, 0, ctx.recorded), ctx.budget),
    )
    env = ctx.make_env()  # only for the layers and dimensions; it evaluates nothing
    layers, dims = env.layer_names, tuple(env.space.dims)
    with ray_cluster(config) as ray:
        workers = start_workers(ray, config, ctx.session)
        try:
            _keep_busy(ray, workers.actors, method, ctx, study, recorder, storage, layers, dims)
        finally:
            workers.kill(ray)


@dataclass
class _InFlight:
    """A trial an actor is playing."""

    trial: Trial
    actor: int
    result: Any
    """Ray's reference to ``(reward, info)``."""


def _keep_busy(
    ray: Any,
    actors: list[Any],
    method: OptunaMethod,
    ctx: SearchContext,
    study: optuna.Study,
    recorder: TrialRecorder,
    storage: BaseStorage,
    layers: list[str],
    dims: tuple[str, ...],
) -> None:
    """Ask a trial for every idle actor, then tell the oldest when it is done, give its actor
    the next trial, and only then record it (so the actor does not wait for the disk)."""
    idle = list(range(len(actors)))
    flight: deque[_InFlight] = deque()
    waiting_since: float | None = None

    def top_up() -> None:
        if not idle:  # every actor busy: no need to read the study
            return
        free = ctx.budget - _holding(study)
        while idle and free > 0 and not ctx.exhausted:
            trial, actor = study.ask(), idle.pop(0)
            call = actors[actor].episode_of.remote(trial_actions(trial, layers, dims))
            flight.append(_InFlight(trial, actor, call))
            free -= 1

    while True:
        recorder.sync()
        top_up()
        if not flight:
            if ctx.exhausted:
                return
            # trials of joined workers hold the rest of the budget
            waiting_since = waiting_since or time.monotonic()
            if time.monotonic() - waiting_since > JOINED_TRIAL_TIMEOUT:
                fail_running(study, storage, joined=True)  # a joined worker died in its trial
            time.sleep(0.5)
            continue
        waiting_since = None
        oldest = flight.popleft()
        reward, info = ray.get(oldest.result)
        _tell(method, study, oldest, reward, info)
        idle.append(oldest.actor)
        top_up()
        _record(ctx, recorder, oldest.trial, reward, info)
        ctx.maybe_checkpoint()


def _holding(study: optuna.Study) -> int:
    """Trials that hold a slot of the budget (COMPLETE or RUNNING)."""
    states = (TrialState.COMPLETE, TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states))


def _tell(
    method: OptunaMethod, study: optuna.Study, done: _InFlight, reward: float, info: dict[str, Any]
) -> None:
    """Tell the study ``done``'s result."""
    trial = done.trial
    trial.set_user_attr(EPISODE_ATTR, episode_attr(reward, info, f"ray-{done.actor}"))
    study.tell(trial, method.values(reward, info["metrics"]))


def _record(
    ctx: SearchContext, recorder: TrialRecorder, trial: Trial, reward: float, info: dict[str, Any]
) -> None:
    """Record a told trial with the runner."""
    meta: dict[str, Any] = {"trial_number": trial.number}
    if info.get("retried"):
        meta["retried"] = int(info["retried"])
    if ctx.record(info, reward, meta=meta) is not None:
        recorder.seen.add(trial.number)
