"""The Stable-Baselines3 search methods: ``ddpg`` (AMC's settings), ``td3``, ``sac`` and ``ppo``."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise
from stable_baselines3.common.vec_env import VecEnv

from agents._amc import SeededDDPG, SeededSAC, SeededTD3, TruncatedNormalNoise, vectorized_noise
from agents._context import SearchContext
from agents._sb3 import OffPolicyMethod, SB3Method
from agents._sb3_options import DDPGOptions, PPOOptions


class DDPGMethod(OffPolicyMethod):
    """``ddpg``: AMC's DDPG (see :mod:`agents._amc`)."""

    name = "ddpg"
    algorithm = SeededDDPG
    Options = DDPGOptions

    def buffer_size(self, ctx: SearchContext, steps: int) -> int:
        """AMC: 100 x layers transitions unless ``buffer_size`` is given."""
        if self.options.buffer_size is not None:
            return int(self.options.buffer_size)
        return self.options.buffer_size_per_layer * steps

    def noise(self, ctx: SearchContext, env: VecEnv) -> ActionNoise | None:
        """AMC's truncated normal, one generator per environment."""
        opts = self.options
        shape = env.action_space.shape
        assert shape is not None  # the compression env's actions are a Box
        base = TruncatedNormalNoise(
            size=shape[0],
            sigma=opts.noise_sigma,
            decay=opts.noise_decay,
            warmup_episodes=self.warmup_episodes(ctx),
            seed=ctx.config.seed,
        )
        return vectorized_noise(base, opts.n_envs, ctx.config.seed)

    def algorithm_kwargs(self, ctx: SearchContext, env: VecEnv, steps: int) -> dict[str, Any]:
        """AMC's tau and critic learning rate on top of the off-policy settings."""
        kwargs = super().algorithm_kwargs(ctx, env, steps)
        kwargs.update(tau=self.options.tau, critic_learning_rate=self.options.critic_learning_rate)
        return kwargs


class TD3Method(OffPolicyMethod):
    """``td3``: SB3's TD3 with Gaussian exploration noise."""

    name = "td3"
    algorithm = SeededTD3

    def noise(self, ctx: SearchContext, env: VecEnv) -> ActionNoise | None:
        """Gaussian noise of ``noise_sigma`` (SB3's TD3 has none by default)."""
        shape = env.action_space.shape
        assert shape is not None  # the compression env's actions are a Box
        size = shape[0]
        return NormalActionNoise(np.zeros(size), np.full(size, self.options.noise_sigma))


class SACMethod(OffPolicyMethod):
    """``sac``: SB3's SAC (a stochastic policy explores by itself)."""

    name = "sac"
    algorithm = SeededSAC


class PPOMethod(SB3Method):
    """``ppo``: SB3's PPO, updated every ``episodes_per_update`` episodes per environment."""

    name = "ppo"
    algorithm = PPO
    Options = PPOOptions

    def algorithm_kwargs(self, ctx: SearchContext, env: VecEnv, steps: int) -> dict[str, Any]:
        """Rollouts of whole episodes, one full-batch mini-batch by default."""
        kwargs = super().algorithm_kwargs(ctx, env, steps)
        n_steps = max(1, self.options.episodes_per_update) * steps
        kwargs["n_steps"] = n_steps
        kwargs.setdefault("batch_size", max(2, n_steps * self.options.n_envs))
        return kwargs

    def episodes_before_learning(self, budget: int) -> int | None:
        """The first rollout is played by the untrained (random) policy."""
        del budget
        return max(1, self.options.episodes_per_update) * self.options.n_envs
