"""``RayVecEnv``: an SB3 vectorised environment whose copies live in Ray actors.

Every ``step`` sends each actor its action (with the episode's earlier actions, so that a
restarted actor can replay the episode) and waits for all of them: environments move in
lock-step, so the records of one round reach the runner in environment order and a rerun
with the same seed and number of workers gives the same history.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from agents._ray import RayWorkers


class RayVecEnv(VecEnv):
    """Environments in Ray actors (:class:`agents._ray.EnvWorker`), stepped in lock-step.

    Args:
        ray: The ``ray`` module.
        workers: The actors (one :class:`~agents._ray.EnvWorker` per environment).

    Example:
        >>> # env = RayVecEnv(ray, start_workers(ray, config, session))
    """

    def __init__(self, ray: Any, workers: RayWorkers) -> None:
        self.ray = ray
        self.workers = workers
        self.actors = list(workers.actors)
        spec = ray.get(self.actors[0].describe.remote())
        self.layer_names: list[str] = spec["layer_names"]
        self.episodes = [0] * len(self.actors)
        self.actions: list[list[np.ndarray]] = [[] for _ in self.actors]
        self.pending: list[Any] = []
        super().__init__(len(self.actors), spec["observation_space"], spec["action_space"])

    def reset(self) -> VecEnvObs:
        """Start a new episode in every actor (with the seeds given by ``seed``)."""
        for index in range(self.num_envs):
            self.episodes[index] += 1
            self.actions[index] = []
        calls = [
            actor.reset.remote(self.episodes[i], self._seeds[i])
            for i, actor in enumerate(self.actors)
        ]
        results = self.ray.get(calls)
        self._reset_seeds()
        self._reset_options()
        for index, (_, info) in enumerate(results):
            self.reset_infos[index] = info
        return np.stack([obs for obs, _ in results])

    def step_async(self, actions: np.ndarray) -> None:
        """Send each actor its action."""
        self.pending = []
        for index, actor in enumerate(self.actors):
            self.actions[index].append(np.asarray(actions[index]))
            self.pending.append(actor.step.remote(self.episodes[index], self.actions[index]))

    def step_wait(self) -> VecEnvStepReturn:
        """Collect the steps; a finished episode is followed by a reset of its actor."""
        results = self.ray.get(self.pending)
        observations, rewards, dones, infos = [], [], [], []
        restarts = {}
        for index, (obs, reward, terminated, truncated, info) in enumerate(results):
            done = bool(terminated or truncated)
            info["TimeLimit.truncated"] = bool(truncated and not terminated)
            if done:
                info["terminal_observation"] = obs
                self.episodes[index] += 1
                self.actions[index] = []
                restarts[index] = self.actors[index].reset.remote(self.episodes[index], None)
            observations.append(obs)
            rewards.append(reward)
            dones.append(done)
            infos.append(info)
        for index, call in restarts.items():
            observations[index], self.reset_infos[index] = self.ray.get(call)
        return (
            np.stack(observations),
            np.asarray(rewards, dtype=np.float32),
            np.asarray(dones, dtype=bool),
            infos,
        )

    def close(self) -> None:
        """End the actors."""
        self.workers.kill(self.ray)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """An attribute of each environment."""
        if attr_name == "layer_names":
            return [self.layer_names for _ in self._get_indices(indices)]
        if attr_name == "render_mode":
            return [None for _ in self._get_indices(indices)]
        actors = [self.actors[i] for i in self._get_indices(indices)]
        return self.ray.get([actor.get_attr.remote(attr_name) for actor in actors])

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Not supported: the environments' settings are fixed when the actors start."""
        raise NotImplementedError("RayVecEnv environments cannot be changed after the start")

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any
    ) -> list[Any]:
        """Not supported (the search drives environments only through reset and step)."""
        raise NotImplementedError("RayVecEnv supports reset and step only")

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """The actors' environments are never wrapped."""
        return [False for _ in self._get_indices(indices)]
