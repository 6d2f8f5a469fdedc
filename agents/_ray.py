"""Ray as the engine of evaluations: the cluster, environment actors, and checks.

``--backend ray`` puts the session's data and model weights into Ray's object store once
(``ray.put``); each of ``workers`` actors builds the evaluator and a
:class:`~envs.CompressionEnv` from them (as every local worker does) and plays episodes
for the driver, which keeps the agent or the sampler, the budget and the history (so
records go through the same run store as local searches, and resume alike).

Fault tolerance is Ray's: actors are created with ``max_restarts=1`` and
``max_task_retries=1``, so a worker whose process dies is restarted (its constructor runs
again on the data and weights in the object store) and the call it was serving is retried once. An
actor that is a restart replays the interrupted episode from its start (the actions are
re-sent with every call) and marks its result ``retried: 1``; the runner stores that mark in
the record's ``policy.meta``.

Ray is an optional dependency (``pip install 'autoprune[ray]'``), imported on first use.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from agents._context import search_env
from autoprune.core.errors import AutopruneError
from autoprune.workflow.config import SearchConfig

if TYPE_CHECKING:
    from autoprune.workflow.session import SearchSession
    from envs.compression_env import CompressionEnv

BACKENDS = ("local", "ray")
"""Where evaluations run: ``local`` (this machine's processes) or ``ray`` (Ray actors)."""
INSTALL_RAY = "pip install 'autoprune[ray]'"
_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9_.\-]+:\d{1,5})$")
"""``auto``, ``local``, ``HOST:PORT`` (a head node's GCS) or ``ray://HOST:PORT`` (Ray Client)."""


def check_scale_out(config: SearchConfig) -> None:
    """Refuse scale-out settings no search can use, before any slow work or write.

    Raises:
        AutopruneError: For ``workers`` < 1, an unknown backend, a malformed Ray address,
            negative resources, Ray settings without ``backend: ray``, or a missing ``ray``.
    """
    if isinstance(config.workers, bool) or not isinstance(config.workers, int):
        raise AutopruneError(f"workers {config.workers!r} must be an integer; pass --workers 2")
    if config.workers < 1:
        raise AutopruneError(f"--workers {config.workers} must be at least 1; pass --workers 2")
    if config.backend not in BACKENDS:
        raise AutopruneError(
            f"unknown backend '{config.backend}'; choose one of: {', '.join(BACKENDS)}"
        )
    if config.worker_cpus <= 0 or config.worker_gpus < 0:
        raise AutopruneError(
            f"--worker-cpus {config.worker_cpus} must be > 0 and --worker-gpus "
            f"{config.worker_gpus} >= 0; pass e.g. --worker-cpus 1 --worker-gpus 0"
        )
    address = config.ray_address
    if address is not None and not _ADDRESS.match(address):
        raise AutopruneError(
            f"--ray-address '{address}' is not a Ray address; write HOST:PORT (the head "
            "node, e.g. 10.0.0.5:6379), ray://HOST:10001 or auto"
        )
    if config.backend != "ray":
        if address is not None:
            raise AutopruneError("--ray-address needs --backend ray; add --backend ray")
        return
    if importlib.util.find_spec("ray") is None:
        raise AutopruneError(f"--backend ray needs the ray package; {INSTALL_RAY}")


def _ray() -> Any:
    """The ``ray`` module (imported here, on first use)."""
    try:
        import ray
    except ModuleNotFoundError:
        raise AutopruneError(f"--backend ray needs the ray package; {INSTALL_RAY}") from None
    return ray


class _DropDefaultTokenAuthNotice(logging.Filter):
    """Drops Ray's notice that a cluster it starts has token authentication on (its secure
    default); every other record of Ray's logger passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled")


@contextmanager
def _quiet_default_token_auth() -> Iterator[None]:
    """Keep Ray's notice about its default token authentication off the user's terminal."""
    logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
    notice = _DropDefaultTokenAuthNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


@contextmanager
def ray_cluster(config: SearchConfig) -> Iterator[Any]:
    """Join ``config.ray_address`` or start a local Ray with ``workers x worker_cpus`` CPUs.

    A Ray this process had already initialised is used as it is and left running; one
    started here is shut down on exit.

    Yields:
        The ``ray`` module.
    """
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        if config.ray_address is None:
            kwargs["num_cpus"] = max(1, int(np.ceil(config.workers * config.worker_cpus)))
            if config.worker_gpus:
                kwargs["num_gpus"] = int(np.ceil(config.workers * config.worker_gpus))
        else:
            kwargs["address"] = config.ray_address
        try:
            with _quiet_default_token_auth():
                ray.init(**kwargs)
        except ConnectionError as exc:
            raise AutopruneError(
                f"cannot join the Ray cluster at {config.ray_address} ({exc}); start it with "
                "`ray start --head` or leave --ray-address out to start Ray locally"
            ) from None
    try:
        yield ray
    except ray.exceptions.RayActorError as exc:
        raise AutopruneError(
            f"a Ray worker died again after its restart ({type(exc).__name__}); every "
            "finished episode is saved: resume the search (autoprune search --resume RUN)"
        ) from exc
    finally:
        if started:
            ray.shutdown()


class EnvWorker:
    """A Ray actor holding one :class:`CompressionEnv` on the session from the object store.

    ``step`` receives every action of the current episode so far (the last one is the
    step's): an actor that was restarted after its process died replays the episode from
    its start, so the retried call returns what the lost one would have.

    Args:
        config: The search config.
        shared: The name of the :class:`SharedData` actor that holds the reference to the
            driver's data and model weights in the object store (see :func:`start_workers`).
        threads: torch intra-op threads of this worker.
    """

    def __init__(self, config: SearchConfig, shared: str, threads: int) -> None:
        import ray

        torch.set_num_threads(max(1, threads))
        boxed: list[Any] = ray.get(ray.get_actor(shared).reference.remote())
        self.env: CompressionEnv = search_env(config, worker_session(config, ray.get(boxed[0])))
        self.episode: int | None = None
        self.steps: int = 0
        self.retried: int = 0

    def pid(self) -> int:
        """Process id of the actor (tests kill it)."""
        import os

        return os.getpid()

    def describe(self) -> dict[str, Any]:
        """Spaces, the layers an episode walks and the action dimensions."""
        env = self.env
        return {
            "observation_space": env.observation_space,
            "action_space": env.action_space,
            "layer_names": env.layer_names,
            "dims": tuple(env.space.dims),
        }

    def get_attr(self, name: str) -> Any:
        """An attribute of the environment."""
        return getattr(self.env, name)

    def reset(self, episode: int, seed: int | None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start episode number ``episode``."""
        self.episode, self.steps, self.retried = episode, 0, 0
        return self.env.reset(seed=seed)

    def step(
        self, episode: int, actions: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Play ``actions[-1]`` in episode ``episode`` (after ``actions[:-1]``)."""
        if self.episode != episode or self.steps != len(actions) - 1:
            self.reset(episode, None)
            for action in actions[:-1]:
                self.env.step(action)
            self.steps, self.retried = len(actions) - 1, 1
        obs, reward, terminated, truncated, info = self.env.step(actions[-1])
        self.steps += 1
        if terminated or truncated:
            info["retried"] = self.retried
        return obs, reward, terminated, truncated, info

    def episode_of(self, actions: Sequence[np.ndarray]) -> tuple[float, dict[str, Any]]:
        """A whole episode of ``actions`` (one per step); its reward and terminal info.

        The first call served by a restarted actor is the retry of the lost one (``retried``).
        """
        import ray

        retried = int(self.episode is None and _reconstructed(ray))
        self.episode = -1
        self.env.reset()
        for action in actions:
            _, reward, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                return float(reward), {**info, "retried": retried}
        raise AssertionError("the episode did not end after one action per layer")


def _reconstructed(ray: Any) -> bool:
    """Whether this actor is a restart of one whose process died."""
    with warnings.catch_warnings():  # Ray 2.60 warns inside its own property
        warnings.simplefilter("ignore", DeprecationWarning)
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)


def worker_session(config: SearchConfig, shared: dict[str, Any]) -> SearchSession:
    """The session of ``config`` on the driver's data and weights (``shared``).

    The weights are written to a temporary file of this worker (the evaluator is built from
    them as in every local worker) and removed once loaded; nothing is read from the
    driver's disk.
    """
    import ray

    from autoprune.workflow.session import prepare_search

    # The GPU Ray gave this actor (its CUDA_VISIBLE_DEVICES), else the CPU: a driver's
    # cuda:N names another process's device.
    device = "cuda" if ray.get_gpu_ids() else "cpu"
    with tempfile.TemporaryDirectory(prefix="autoprune-ray-") as folder:
        path = Path(folder) / "weights.pt"
        torch.save(shared["weights"], path)
        with warnings.catch_warnings():  # arrays from the object store are read-only
            warnings.filterwarnings("ignore", message=".*not writable.*")
            worker = config.replace(weights=str(path), device=device)
            return prepare_search(worker, data=shared["data"])


@dataclass
class RayWorkers:
    """The actors of a search and the :class:`SharedData` actor that keeps their data and
    weights referenced (so that a restarted actor can rebuild itself from them)."""

    actors: list[Any]
    shared: Any

    def kill(self, ray: Any) -> None:
        """End every actor."""
        for actor in [*self.actors, self.shared]:
            ray.kill(actor)


class SharedData:
    """A Ray actor holding the reference to the session's data and weights.

    Environment actors get this actor's name, neither the reference nor a handle: Ray warns
    about (and cannot promise the restart of) a restartable actor whose constructor
    arguments are references, while this actor keeps the object alive for every restart.
    """

    def __init__(self, boxed: list[Any]) -> None:
        self.boxed = boxed

    def reference(self) -> list[Any]:
        """The reference, boxed in a list so that Ray hands it over unresolved."""
        return self.boxed


def start_workers(ray: Any, config: SearchConfig, session: SearchSession) -> RayWorkers:
    """``config.workers`` :class:`EnvWorker` actors, each with ``worker_cpus`` CPUs and
    ``worker_gpus`` GPUs; the session's data and weights are put into the object store once
    and shared by all of them."""
    remote = ray.remote(
        num_cpus=config.worker_cpus,
        num_gpus=config.worker_gpus,
        max_restarts=1,
        max_task_retries=1,
    )(EnvWorker)
    data = ray.put({"data": session.data, "weights": session.model.state_dict()})
    name = f"autoprune-shared-{uuid.uuid4().hex}"
    shared = ray.remote(num_cpus=0)(SharedData).options(name=name).remote([data])
    threads = max(1, int(config.worker_cpus))
    actors = [remote.remote(config, name, threads) for _ in range(config.workers)]
    return RayWorkers(actors, shared)
