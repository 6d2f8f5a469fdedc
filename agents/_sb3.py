"""The machinery of the Stable-Baselines3 search methods (``ddpg``, ``td3``, ``sac``, ``ppo``:
:mod:`agents._sb3_algorithms`; their options: :mod:`agents._sb3_options`).

Each method drives the runner's environment through SB3's ``learn``; a callback records every
finished episode with the runner (which stops learning once the budget is spent) and asks
for a checkpoint between rollouts, where the model, replay buffer, noise and random states
describe the agent completely.

Off-policy methods (ddpg, td3, sac) train after each episode (``train_freq`` one episode,
``gradient_steps=-1``: one gradient step per collected transition, as AMC) and credit every
transition with the episode's final reward minus a moving-average baseline
(:class:`~agents._amc.FinalRewardCallback`). Their warm-up is ``warmup_episodes`` of uniform
random actions (default ``min(100, episodes // 4)``: AMC's 100 when the budget allows, a
quarter of the budget otherwise). PPO is on-policy: the terminal reward with gamma 1 reaches
every step through its value estimates directly.

With ``n_envs > 1`` (``--workers``) episodes run in parallel worker processes
(``SubprocVecEnv``; each worker calls ``prepare_search``), or with ``--backend ray`` in Ray
actors (:class:`~agents._ray_vec_env.RayVecEnv`; each holds the session from Ray's object
store). Up to ``n_envs - 1`` episodes of the last round may be evaluated beyond the budget;
they are not recorded. An episode that a restarted Ray actor re-ran is recorded with
``meta["retried"] = 1``.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from agents._amc import (
    CenteredReplayBuffer,
    Demonstrations,
    FinalRewardCallback,
)
from agents._base import SearchMethod
from agents._context import SearchContext, worker_processes
from agents._ray import ray_cluster, start_workers
from agents._ray_vec_env import RayVecEnv
from agents._rng import rng_state, set_rng_state
from agents._run_store import read_json
from agents._sb3_options import OffPolicyOptions, SB3Options
from agents._sb3_state import (
    REPLAY_FILE,
    ShapeMismatch,
    load_agent,
    load_replay,
    noise_state,
    refuse_pickles,
    save_agent,
    save_replay,
    set_noise_state,
)
from agents._seeds import Seed, seeds_for
from autoprune.core.errors import AutopruneError

STATE_FILE = "state.json"
_STATE_KEYS = ("action_space_rng", "rng", "noise")


class RunnerCallback(BaseCallback):
    """Records finished episodes with the runner until ``reserve`` evaluations are left,
    checkpoints between rollouts.

    Off-policy methods (``stop_early=False``) are given exactly the steps of the episodes to
    record, so ``learn`` ends by itself after the last one was stored and trained on;
    on-policy rollouts are cut as soon as the budget is reached (``stop_early``). Episodes
    that parallel environments finish beyond the budget are not recorded.
    """

    def __init__(
        self,
        ctx: SearchContext,
        reserve: int = 0,
        stop_early: bool = True,
        seeds: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.reserve = reserve
        self.stop_early = stop_early
        self.seeds = list(seeds)
        """Heuristics of the demonstrations played first, in order (``meta["seed_policy"]``)."""

    def _on_rollout_start(self) -> None:
        self.ctx.maybe_checkpoint()

    def _on_step(self) -> bool:
        infos, rewards = self.locals["infos"], self.locals["rewards"]
        for index, done in enumerate(self.locals["dones"]):
            if done and self.ctx.remaining > self.reserve:
                meta: dict[str, Any] = {"warmup": True} if self._warming_up() else {}
                if infos[index].get("retried"):
                    meta["retried"] = int(infos[index]["retried"])
                if self.ctx.recorded < len(self.seeds):
                    meta["seed_policy"] = self.seeds[self.ctx.recorded]
                self.ctx.record(infos[index], float(rewards[index]), meta=meta or None)
        if self.stop_early:
            return self.ctx.remaining > self.reserve
        return self.ctx.remaining >= self.reserve

    def _warming_up(self) -> bool:
        """Whether the episode just finished was one of random warm-up actions."""
        learning_starts = getattr(self.model, "learning_starts", 0)
        return bool(self.model.num_timesteps <= learning_starts)


class SB3Method(SearchMethod):
    """Common driver of the SB3 methods (subclasses pick the algorithm and its arguments)."""

    algorithm: ClassVar[type[BaseAlgorithm]]
    Options: ClassVar[type[Any]] = SB3Options
    trains_per_episode: ClassVar[bool] = False
    """Off-policy methods store and train on every episode as it ends."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.options.check()
        self.model: BaseAlgorithm | None = None
        self._resume_from: Path | None = None
        self.seeds: list[Seed] = []
        """Seed policies played first as demonstrations (off-policy methods, fresh runs)."""

    def algorithm_kwargs(self, ctx: SearchContext, env: VecEnv, steps: int) -> dict[str, Any]:
        """Constructor arguments of :attr:`algorithm` for ``env`` and episodes of ``steps``."""
        opts = self.options
        kwargs: dict[str, Any] = {"policy_kwargs": {"net_arch": list(opts.net_arch)}}
        for key in ("learning_rate", "gamma", "batch_size"):
            if getattr(opts, key) is not None:
                kwargs[key] = getattr(opts, key)
        return kwargs

    def callbacks(self) -> list[BaseCallback]:
        """Extra callbacks of the method (run before the runner's)."""
        return []

    def run(self, ctx: SearchContext) -> None:
        """Learn until one evaluation is left, then spend it on the learned policy."""
        n_envs = self.options.n_envs
        with self._cluster(ctx) as ray:
            self._learn(ctx, self._vec_env(ctx, n_envs, ray), n_envs)
        if not ctx.exhausted:
            ctx.maybe_checkpoint(force=True)
            self.play_learned(ctx)

    def _learn(self, ctx: SearchContext, env: VecEnv, n_envs: int) -> None:
        """Learn on ``env`` until one evaluation is left (then close ``env``)."""
        reserve = 1 if ctx.budget > 1 else 0
        try:
            steps = len(env.get_attr("layer_names")[0])
            if self._resume_from is not None:
                self.model = self._load(ctx, env, steps, self._resume_from)
            else:
                self.model = self._build(ctx, env, steps)
                if isinstance(self.model, Demonstrations):  # a fresh search: seeds first
                    self.model.demonstrations = [seed.actions for seed in self.seeds]
            learning = ctx.remaining - reserve
            if learning > 0:
                rounds = -(-learning // n_envs)
                seeds = [seed.name for seed in self.seeds]
                runner = RunnerCallback(ctx, reserve, not self.trains_per_episode, seeds)
                callback = CallbackList([*self.callbacks(), runner])
                self.model.learn(
                    total_timesteps=rounds * n_envs * steps,
                    callback=callback,
                    reset_num_timesteps=self._resume_from is None,
                )
        finally:
            env.close()

    def play_learned(self, ctx: SearchContext) -> None:
        """One episode of the deterministic policy (the actor's mean action), recorded with
        ``meta["learned"] = True``: what the agent has learned, free of exploration noise."""
        assert self.model is not None
        env = ctx.make_env()
        obs, _ = env.reset()
        while True:
            action, _ = self.model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                ctx.record(info, float(reward), meta={"learned": True})
                return

    @staticmethod
    def _cluster(ctx: SearchContext) -> contextlib.AbstractContextManager[Any]:
        """The Ray cluster of ``--backend ray`` (None for local environments)."""
        if ctx.config.backend != "ray":
            return contextlib.nullcontext()
        return ray_cluster(ctx.config)

    def _vec_env(self, ctx: SearchContext, n_envs: int, ray: Any = None) -> VecEnv:
        if ray is not None:
            return RayVecEnv(ray, start_workers(ray, ctx.config, ctx.session))
        if n_envs == 1:
            return DummyVecEnv([ctx.make_env])
        start = worker_processes().get_start_method()
        return SubprocVecEnv([ctx.env_factory(n_envs) for _ in range(n_envs)], start)

    def _build(
        self, ctx: SearchContext, env: VecEnv, steps: int, saved: dict[str, Any] | None = None
    ) -> BaseAlgorithm:
        """The algorithm of the run's config (``saved``: settings a checkpoint fixed)."""
        kwargs = {
            **self.algorithm_kwargs(ctx, env, steps),
            **self.options.algo_kwargs,
            **(saved or {}),
            "device": self.options.device,
            "verbose": self.options.verbose,
            "seed": ctx.config.seed,
        }
        return self.algorithm("MlpPolicy", env, **kwargs)

    def _load(self, ctx: SearchContext, env: VecEnv, steps: int, folder: Path) -> BaseAlgorithm:
        """The algorithm built from the run's config, then given the checkpoint's weights,
        optimisers, counters, noise and random states (no pickle is ever loaded)."""
        refuse_pickles(folder)
        state = read_json(folder / STATE_FILE)
        if not isinstance(state, dict) or not all(key in state for key in _STATE_KEYS):
            raise AutopruneError(
                f"{folder / STATE_FILE} lacks the agent's random states; start a new search "
                "(its finished episodes stay readable in history.jsonl)"
            )
        model = self._build(ctx, env, steps, self.saved_settings(state, folder))
        try:
            load_agent(model, folder, state)
        except ShapeMismatch as exc:
            raise AutopruneError(
                f"the checkpoint in {folder} was saved by an older version of the search "
                f"environment ({exc}); it cannot be resumed, start a new search"
            ) from None
        set_noise_state(getattr(model, "action_noise", None), state["noise"], folder)
        model._last_obs = None  # the new environment must be reset by learn()
        try:
            model.action_space.np_random.bit_generator.state = state["action_space_rng"]
            set_rng_state(state["rng"])  # building the model re-seeded the global generators
        except (TypeError, ValueError, KeyError, RuntimeError) as exc:
            raise AutopruneError(
                f"{folder / STATE_FILE} holds damaged random states ({exc}); start a new search"
            ) from None
        return model

    def save_state(self, folder: Path) -> None:
        """Weights and optimisers (``agent.pt``), counters, noise and random states (JSON)."""
        assert self.model is not None
        counters = save_agent(self.model, folder)
        state = {
            "action_space_rng": self.model.action_space.np_random.bit_generator.state,
            "rng": rng_state(),
            "noise": noise_state(getattr(self.model, "action_noise", None)),
            **counters,
            **self.extra_state(),
        }
        (folder / STATE_FILE).write_text(json.dumps(state))

    def extra_state(self) -> dict[str, Any]:
        """More JSON state of a subclass."""
        return {}

    def saved_settings(self, state: dict[str, Any], folder: Path) -> dict[str, Any]:
        """Constructor arguments that :meth:`extra_state` fixed for a resume."""
        del state, folder
        return {}

    def load_state(self, folder: Path) -> None:
        """Remember the checkpoint; the model is loaded once ``run`` has an environment."""
        self._resume_from = folder


class OffPolicyMethod(SB3Method):
    """td3/sac/ddpg: per-episode training, final-reward credit, replay buffer checkpoints."""

    Options: ClassVar[type[Any]] = OffPolicyOptions
    trains_per_episode: ClassVar[bool] = True

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.reward_callback = FinalRewardCallback()

    def plant_seeds(self, ctx: SearchContext) -> None:
        """Keep the seed policies: their actions are the first warm-up episodes
        (:class:`~agents._amc.Demonstrations`), so they enter the replay buffer."""
        self.seeds = seeds_for(ctx)

    def warmup_episodes(self, ctx: SearchContext) -> int:
        """Episodes of random actions before learning starts.

        The default is AMC's 100 or a quarter of the budget, whichever is smaller; a chosen
        value above half the budget is lowered to half (with a warning), so a search never
        spends most of its evaluations on random actions.
        """
        chosen = self.options.warmup_episodes
        if chosen is not None and int(chosen) > ctx.budget // 2:
            warnings.warn(
                f"warmup_episodes={chosen} is more than half of the {ctx.budget} episodes; "
                f"using {ctx.budget // 2} so that the agent learns from the rest",
                stacklevel=2,
            )
        return self._warmup_for(ctx.budget)

    def _warmup_for(self, budget: int) -> int:
        chosen = self.options.warmup_episodes
        if chosen is None:
            return min(100, budget // 4)
        return min(int(chosen), budget // 2)

    def episodes_before_learning(self, budget: int) -> int | None:
        """The random warm-up, then one round of the untrained actor (with noise)."""
        return self._warmup_for(budget) + self.options.n_envs

    def buffer_size(self, ctx: SearchContext, steps: int) -> int:
        """Replay capacity in transitions per environment."""
        if self.options.buffer_size is not None:
            return int(self.options.buffer_size)
        return max(1, ctx.budget * steps)

    def noise(self, ctx: SearchContext, env: VecEnv) -> ActionNoise | None:
        """Exploration noise (None: the algorithm's own)."""
        return None

    def algorithm_kwargs(self, ctx: SearchContext, env: VecEnv, steps: int) -> dict[str, Any]:
        """Per-episode training and a warm-up of random episodes."""
        n_envs = self.options.n_envs
        kwargs = super().algorithm_kwargs(ctx, env, steps)
        kwargs.update(
            buffer_size=self.buffer_size(ctx, steps),
            learning_starts=self.warmup_episodes(ctx) * steps,
            train_freq=(1, "episode") if n_envs == 1 else (steps, "step"),
            gradient_steps=self._gradient_steps(steps),
            action_noise=self.noise(ctx, env),
            replay_buffer_class=CenteredReplayBuffer,
            replay_buffer_kwargs={"alpha": self.options.reward_alpha},
        )
        return kwargs

    def _gradient_steps(self, steps: int) -> int:
        """Gradient steps per training round (one round per episode and environment)."""
        chosen = self.options.updates_per_episode
        if chosen is None:
            return -1  # SB3: as many as transitions collected
        return max(1, int(chosen)) * self.options.n_envs

    def callbacks(self) -> list[BaseCallback]:
        """The final-reward credit runs before the runner's callback."""
        return [self.reward_callback]

    def extra_state(self) -> dict[str, Any]:
        """The replay size and warm-up the run started with (a longer resumed budget keeps
        them, as SB3's own checkpoints did)."""
        assert isinstance(self.model, OffPolicyAlgorithm)
        return {
            "buffer_size": self.model.buffer_size,
            "learning_starts": self.model.learning_starts,
        }

    def saved_settings(self, state: dict[str, Any], folder: Path) -> dict[str, Any]:
        """``buffer_size`` and ``learning_starts`` of the checkpoint's state."""
        settings = {key: state.get(key) for key in ("buffer_size", "learning_starts")}
        for key, value in settings.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise AutopruneError(
                    f"{folder / STATE_FILE} lacks '{key}'; start a new search (its finished "
                    "episodes stay readable in history.jsonl)"
                )
        return settings

    def _load(self, ctx: SearchContext, env: VecEnv, steps: int, folder: Path) -> BaseAlgorithm:
        model = super()._load(ctx, env, steps, folder)
        assert isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None
        try:
            load_replay(model.replay_buffer, folder / REPLAY_FILE)  # with its reward baseline
        except ShapeMismatch as exc:
            raise AutopruneError(
                f"the checkpoint in {folder} was saved by an older version of the search "
                f"environment ({exc}); it cannot be resumed, start a new search"
            ) from None
        return model

    def save_state(self, folder: Path) -> None:
        """Also the replay buffer (``replay.npz``)."""
        super().save_state(folder)
        assert isinstance(self.model, OffPolicyAlgorithm) and self.model.replay_buffer is not None
        save_replay(self.model.replay_buffer, folder / REPLAY_FILE)
