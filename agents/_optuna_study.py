"""Optuna plumbing: storage URLs, one episode per trial, the shared trial budget, workers.

Budget without lost or duplicated trials. Optuna numbers the trials of a study in creation
order, atomically in the storage. Before evaluating, a trial counts the COMPLETE or RUNNING
trials with a smaller number (:func:`slot`); only trials whose slot is below the budget
evaluate, the others are marked PRUNED and stop their worker. So COMPLETE trials never
exceed the budget, whatever the number of workers. A worker that dies leaves a RUNNING trial
that holds a slot; between rounds (when none of its own workers is alive) the runner marks
such trials FAIL (:func:`fail_running`) and starts another round for the slots still free.
Trials of workers that joined with ``autoprune worker`` carry :data:`JOINED_ATTR` and are
left to run.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial, Trial, TrialState

from agents._context import search_env
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.system.database_url import (
    hide_passwords,
    parse_database_url,
    without_passwords,
)
from autoprune.system.locks import exclusive
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import prepare_search
from envs.compression_env import CompressionEnv

ValuesFn = Callable[[float, dict[str, float]], float | Sequence[float]]
EPISODE_ATTR = "episode"
"""User attribute of a trial holding the evaluated (repaired) policy and its metrics."""


def storage_url(config: SearchConfig) -> str:
    """``config.storage`` or ``sqlite:///<runs_dir>/optuna.db`` (absolute, folder created)."""
    if config.storage:
        return config.storage
    config.runs_path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(config.runs_path / 'optuna.db').resolve()}"


def make_storage(url: str) -> BaseStorage:
    """An RDB storage for ``url`` (SQLite waits up to 60 s on a lock held by a worker).

    A SQLite file is opened while holding ``<file>.lock``: two processes creating its tables
    at once would otherwise collide.
    """
    kwargs: dict[str, Any] = {}
    lock: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if url.startswith("sqlite:"):
        kwargs = {"connect_args": {"timeout": 60}}
        path = url[len("sqlite:///") :]
        if path and not path.startswith(":memory:"):
            lock = exclusive(Path(path).with_name(f"{Path(path).name}.lock"))
    try:
        with lock:
            return RDBStorage(url, engine_kwargs=kwargs)
    except ModuleNotFoundError as exc:
        raise AutopruneError(
            f"storage {url.split(':', 1)[0]} needs the Python driver '{exc.name}'; install it "
            "(for PostgreSQL: pip install psycopg2-binary)"
        ) from None


STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "oracle")
"""SQLAlchemy databases an Optuna RDB storage can live in (``+driver`` may follow)."""


def check_storage(url: str) -> None:
    """Refuse, before any work, a storage URL that is malformed, of an unsupported scheme,
    lacks its driver, or does not answer (opening it also creates Optuna's tables)."""
    from sqlalchemy.exc import SQLAlchemyError

    example = "sqlite:///runs/optuna.db or postgresql+psycopg2://user@host/db"
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme.split("+", 1)[0] not in STORAGE_SCHEMES:
        raise AutopruneError(
            f"storage '{hide_passwords(url)}' is not a database URL Optuna can use (scheme "
            f"'{scheme or 'none'}'); write e.g. {example}"
        )
    parsed = parse_database_url(url, "storage", example)
    shown = parsed.render_as_string(hide_password=True)
    try:
        make_storage(url)
    except AutopruneError:
        raise
    except (SQLAlchemyError, OSError) as exc:
        reason = hide_passwords(" ".join(str(getattr(exc, "orig", None) or exc).split())[:200])
        raise AutopruneError(
            f"storage {shown} cannot be opened ({reason}); start the database, fix the URL, "
            "or leave storage out to use a SQLite file under runs_dir"
        ) from None


def sampler_seed(seed: int, rank: int, done: int) -> int:
    """Distinct sampler seeds per worker ``rank`` and per resume point ``done``."""
    return int(np.random.SeedSequence([seed, rank, done]).generate_state(1)[0])


def slot(trial: Trial) -> int:
    """How many COMPLETE or RUNNING trials were created before ``trial``."""
    states = (TrialState.COMPLETE, TrialState.RUNNING)
    earlier = trial.study.get_trials(deepcopy=False, states=states)
    return sum(1 for t in earlier if t.number < trial.number)


JOINED_ATTR = "joined_worker"
"""Trial attribute: process id of the joined worker (``autoprune worker``) playing the trial;
absent on the trials of the runner's own processes and Ray actors."""


def fail_running(study: optuna.Study, storage: BaseStorage, *, joined: bool = False) -> int:
    """Mark FAIL the RUNNING trials of ``study`` but those of joined workers (call only while
    none of the runner's own workers is alive), and with ``joined`` those too.

    A trial that finishes meanwhile is left as it is.

    Returns:
        The trials marked FAIL.
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    stale = [
        trial
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if joined or JOINED_ATTR not in trial.user_attrs
    ]
    failed = 0
    for trial in stale:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # its worker finished it since the list was read
        failed += 1
    return failed


def run_episode(env: CompressionEnv, trial: Trial) -> tuple[float, dict[str, Any]]:
    """One episode whose action for layer ``L`` is one ``trial.suggest_float("L.dim", -1, 1)``
    per dimension of the mode (``conv1.keep``, ``conv1.sparsity``, ``conv1.w_bits``, ...):
    parameters are named by what they mean, so a study never mixes two meanings."""
    _, info = env.reset()
    dims = env.space.dims
    while True:
        layer = info["next_layer"]
        action = [trial.suggest_float(f"{layer}.{dim}", -1.0, 1.0) for dim in dims]
        _, reward, terminated, truncated, info = env.step(np.asarray(action, dtype=np.float32))
        if terminated or truncated:
            return float(reward), info


class EpisodeObjective:
    """The objective of every worker: claim a budget slot, run one episode, store it.

    Args:
        env: The worker's environment.
        budget: Total evaluations of the study.
        values: Trial value(s) from ``(reward, metrics)``.
        joined: Whether this is a joined worker (its trials are marked :data:`JOINED_ATTR`).
    """

    def __init__(
        self, env: CompressionEnv, budget: int, values: ValuesFn, *, joined: bool = False
    ) -> None:
        self.env = env
        self.budget = budget
        self.values = values
        self.joined = joined

    def __call__(self, trial: Trial) -> float | Sequence[float]:
        if self.joined:
            trial.set_user_attr(JOINED_ATTR, os.getpid())
        if slot(trial) >= self.budget:
            trial.study.stop()
            raise optuna.TrialPruned("the evaluation budget is spent")
        reward, info = run_episode(self.env, trial)
        trial.set_user_attr(EPISODE_ATTR, episode_attr(reward, info, os.getpid()))
        return self.values(reward, info["metrics"])


def episode_attr(reward: float, info: dict[str, Any], worker: int | str) -> dict[str, Any]:
    """The trial attribute :data:`EPISODE_ATTR` of an episode (read by :func:`episode_info`)."""
    attr = {
        "reward": float(reward),
        "policy": info["policy"].to_dict(),
        "metrics": {k: float(v) for k, v in info["metrics"].items()},
        "feasible": bool(info["feasible"]),
        "cached": bool(info["cached"]),
        "seconds": float(info["seconds"]),
        "worker": worker,
    }
    if info.get("retried"):
        attr["retried"] = int(info["retried"])
    return attr


def episode_info(trial: FrozenTrial) -> tuple[dict[str, Any], float]:
    """The terminal ``info`` and reward a finished trial stored."""
    data = trial.user_attrs[EPISODE_ATTR]
    info = {**data, "policy": Policy.from_dict(data["policy"])}
    return info, float(data["reward"])


def exit_with(parent: int, every: float = 1.0) -> threading.Thread:
    """End this process soon after process ``parent`` is gone (a killed runner's workers
    would otherwise go on filling the study while it is being resumed)."""

    def watch() -> None:
        while True:
            time.sleep(every)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(1)

    thread = threading.Thread(target=watch, name="exit-with-runner", daemon=True)
    thread.start()
    return thread


def worker_main(
    config: SearchConfig,
    study_name: str,
    url: str,
    seed: int,
    threads: int,
    runner: int,
) -> None:
    """Entry point of an Optuna worker process: its own session, environment and sampler.

    Args:
        config: The search config (the worker calls ``prepare_search`` with it).
        study_name: The study to optimise.
        url: Its storage URL.
        seed: Seed of this worker's sampler.
        threads: torch threads of this worker.
        runner: Process id of the runner; the worker exits when it is gone.
    """
    exit_with(runner)
    torch.set_num_threads(threads)
    join_study(config, study_name, url, seed)


def join_study(
    config: SearchConfig, study_name: str, url: str, seed: int, *, joined: bool = False
) -> int:
    """Optimise the study ``study_name`` next to its runner until the budget is spent.

    Used by the runner's worker processes and, with ``joined``, by ``autoprune worker`` on
    another machine.

    Returns:
        The trials this worker completed.
    """
    from agents._registry import make_method

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    session = prepare_search(config)
    env = search_env(config, session)
    method = make_method(config.agent, dict(config.agent_options))
    sampler = method.make_sampler(seed, config.episodes)  # type: ignore[attr-defined]
    study = optuna.load_study(study_name=study_name, storage=make_storage(url), sampler=sampler)
    values = method.values  # type: ignore[attr-defined]
    objective = EpisodeObjective(env, config.episodes, values, joined=joined)
    mine = os.getpid()
    study.optimize(objective)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sum(1 for t in done if t.user_attrs.get(EPISODE_ATTR, {}).get("worker") == mine)


STUDY_CONFIG_ATTR = "autoprune_config"
"""Study attribute holding the search config, so that ``autoprune worker RUN`` needs only
the storage to join."""


def save_study_config(study: optuna.Study, config: SearchConfig) -> None:
    """Store ``config`` in ``study`` (see :data:`STUDY_CONFIG_ATTR`)."""
    config_data = without_passwords(config.to_dict())  # a password is never stored
    study.set_user_attr(STUDY_CONFIG_ATTR, {"config": config_data})


def study_config(study: optuna.Study) -> SearchConfig:
    """The config a runner stored in ``study``.

    Raises:
        AutopruneError: For a study that autoprune did not create.
    """
    saved = study.user_attrs.get(STUDY_CONFIG_ATTR)
    if not isinstance(saved, dict):
        raise AutopruneError(
            f"study '{study.study_name}' holds no autoprune search config; join a study that "
            "`autoprune search` created"
        )
    data = dict(saved["config"])
    if saved.get("env_kwargs"):  # stored before environment settings were config keys
        options = dict(data.get("agent_options") or {})
        data["agent_options"] = {**options, "env_kwargs": saved["env_kwargs"]}
    return SearchConfig.from_mapping(data)
