"""AMC's DDPG on Stable-Baselines3: separate critic learning rate, truncated-normal exploration
and every transition of an episode credited with the episode's final reward.

AMC (He et al. 2018) trains DDPG with actor/critic 300-300, lr 1e-4 (actor) / 1e-3 (critic),
tau 0.01, discount 1, batch 64, 100 warm-up episodes of uniform random actions, exploration
noise from a normal distribution around the actor's action truncated to the action bounds
(sigma 0.5 of the action range, decaying x0.95 per episode after the warm-up), a replay
memory of 100 x layers transitions, and rewards shifted by a moving-average baseline
(alpha 0.5). The pieces here add exactly those details to SB3's DDPG:

* :class:`AmcDDPG` — SB3's ``DDPG`` whose critic optimiser follows its own learning rate
  (SB3 has one learning rate for every network) and whose exploration, once warm-up is over,
  samples from :class:`TruncatedNormalNoise` around the actor's action. During warm-up it
  takes SB3's uniform random actions without noise, as AMC did.
* :class:`TruncatedNormalNoise` — an SB3 ``ActionNoise`` whose ``reset()`` (called by SB3 at
  the end of every episode) counts episodes and so decays sigma.
* :class:`FinalRewardCallback` — after each episode, rewrites the reward of every transition
  of that episode in the replay buffer to the episode's final reward ``R``. Done flags stay
  as stored (only the last step is terminal), so with gamma 1 the critic learns
  ``Q(s_t) = (steps left) x (R - b)``, as in AMC.
* :class:`CenteredReplayBuffer` — subtracts AMC's moving-average baseline when a batch is
  *sampled*: ``b <- b + alpha (mean(batch rewards) - b)`` (started at the first batch's
  mean), then every reward of the batch becomes ``r - b``. All transitions of a batch share
  one baseline, so the critic's targets stay consistent with each other; baking a
  per-episode baseline into the stored rewards (which AMC does not do) gives every episode
  its own offset and the critic fits that noise.
* :class:`Demonstrations` — not AMC: plays the actions of given episodes first (the seed
  policies of :mod:`agents._seeds`), so that the warm-up's replay memory starts with what
  the shipped heuristics know (:class:`SeededDDPG`, :class:`SeededTD3`, :class:`SeededSAC`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import truncnorm
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise, VectorizedActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import update_learning_rate
from torch.optim import Optimizer


class TruncatedNormalNoise(ActionNoise):
    """Normal exploration noise truncated to the action bounds, decaying per episode.

    Args:
        size: Action dimensions.
        sigma: Initial standard deviation as a fraction of the action range (AMC: 0.5).
        decay: Factor applied per episode after the warm-up (AMC: 0.95).
        warmup_episodes: Episodes before the decay starts.
        seed: Seed of the noise's own generator.
        low: Lower action bound (SB3 scales actions to ``[-1, 1]``).
        high: Upper action bound.

    Example:
        >>> noise = TruncatedNormalNoise(2, sigma=0.5, seed=0)
        >>> bool(np.all(np.abs(noise.perturb(np.array([0.9, -0.9]))) <= 1.0))
        True
        >>> noise.reset(); round(noise.sigma, 3)
        0.95
    """

    def __init__(
        self,
        size: int,
        sigma: float = 0.5,
        decay: float = 0.95,
        warmup_episodes: int = 0,
        seed: int | Sequence[int] | None = None,
        low: float = -1.0,
        high: float = 1.0,
    ) -> None:
        super().__init__()
        self.size = size
        self.sigma0 = sigma
        self.decay = decay
        self.warmup_episodes = warmup_episodes
        self.low, self.high = low, high
        self.episodes = 0
        self.rng = np.random.default_rng(seed)

    @property
    def sigma(self) -> float:
        """Current standard deviation in action units."""
        steps = max(0, self.episodes - self.warmup_episodes)
        return self.sigma0 * (self.high - self.low) * self.decay**steps

    def perturb(self, mean: np.ndarray) -> np.ndarray:
        """A sample of ``N(mean, sigma)`` truncated to ``[low, high]`` (AMC's exploration)."""
        mean = np.clip(np.asarray(mean, dtype=np.float64), self.low, self.high)
        scale = max(self.sigma, 1e-8)
        a, b = (self.low - mean) / scale, (self.high - mean) / scale
        sample = truncnorm.rvs(a, b, loc=mean, scale=scale, random_state=self.rng)
        return np.clip(np.asarray(sample, dtype=np.float32), self.low, self.high)

    def __call__(self) -> np.ndarray:
        """Additive zero-mean noise (truncated to the bounds around 0), for plain SB3 use."""
        return self.perturb(np.zeros(self.size))

    def reset(self) -> None:
        """Called by SB3 when an episode ends (and when ``learn`` starts): one more episode.

        :class:`AmcDDPG` overwrites :attr:`episodes` with its own episode count before each
        sample, so its decay is exact across ``learn`` calls and resumes.
        """
        self.episodes += 1

    def __repr__(self) -> str:
        return f"TruncatedNormalNoise(sigma={self.sigma:.4f}, episodes={self.episodes})"


def vectorized_noise(base: TruncatedNormalNoise, n_envs: int, seed: int) -> ActionNoise:
    """``base`` for ``n_envs`` environments, each copy with its own generator and warm-up."""
    if n_envs == 1:
        return base
    noise = VectorizedActionNoise(base, n_envs)
    for rank, copy in enumerate(noise.noises):
        assert isinstance(copy, TruncatedNormalNoise)  # VectorizedActionNoise deep-copies base
        copy.rng = np.random.default_rng([seed, rank])
        copy.warmup_episodes = -(-base.warmup_episodes // n_envs)
    return noise


def truncated_noises(noise: ActionNoise | None) -> list[TruncatedNormalNoise] | None:
    """The per-environment truncated-normal noises inside ``noise`` (None for other noises)."""
    if isinstance(noise, TruncatedNormalNoise):
        return [noise]
    if isinstance(noise, VectorizedActionNoise):
        noises = [n for n in noise.noises if isinstance(n, TruncatedNormalNoise)]
        if len(noises) == len(noise.noises):
            return noises
    return None


class AmcDDPG(DDPG):
    """SB3 DDPG with AMC's critic learning rate and truncated-normal exploration.

    Args:
        *args: As :class:`stable_baselines3.DDPG`; ``learning_rate`` is the actor's.
        critic_learning_rate: Learning rate of the critic's optimiser (AMC: 1e-3).
        **kwargs: As :class:`stable_baselines3.DDPG`.

    Example:
        >>> # AmcDDPG("MlpPolicy", env, learning_rate=1e-4, critic_learning_rate=1e-3)
    """

    def __init__(self, *args: Any, critic_learning_rate: float = 1e-3, **kwargs: Any) -> None:
        self.critic_learning_rate = critic_learning_rate
        super().__init__(*args, **kwargs)

    def _update_learning_rate(self, optimizers: list[Optimizer] | Optimizer) -> None:
        """The schedule for the actor (SB3's behaviour), a constant rate for the critic."""
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        critic = self.critic.optimizer
        super()._update_learning_rate([o for o in optimizers if o is not critic])
        if any(o is critic for o in optimizers):
            update_learning_rate(critic, self.critic_learning_rate)

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Uniform random actions in warm-up; then truncated normal around the actor."""
        noises = truncated_noises(action_noise)
        if noises is None:
            return super()._sample_action(learning_starts, action_noise, n_envs)
        if self.num_timesteps < learning_starts:
            return super()._sample_action(learning_starts, None, n_envs)
        for noise in noises:  # SB3 also resets noise when learn() starts: count episodes here
            noise.episodes = self._episode_num // len(noises)
        assert self._last_obs is not None  # set by learn() before any sampling, as in SB3
        action, _ = self.predict(self._last_obs, deterministic=True)
        scaled = self.policy.scale_action(action)
        scaled = np.stack([noise.perturb(row) for noise, row in zip(noises, scaled, strict=True)])
        return self.policy.unscale_action(scaled), scaled


class Demonstrations(OffPolicyAlgorithm):
    """Mixin of an SB3 off-policy algorithm: plays given episodes' actions first.

    Put it first among the bases (``class Seeded(Demonstrations, TD3)``). While fewer than
    ``len(demonstrations)`` episodes were played, the action of environment ``i`` at step
    ``t`` of round ``r`` is ``demonstrations[r * n_envs + i][t]`` (environments move in
    lock-step: every episode has ``demonstration_steps`` steps); the transitions enter the
    replay buffer as any warm-up episode's. Demonstrations are not saved with the model.
    """

    demonstrations: Sequence[Sequence[np.ndarray]] = ()
    """Episodes of environment actions (one per step); set on the instance."""

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """The algorithm's own action, replaced by a demonstration's where one is due."""
        action, buffer_action = super()._sample_action(learning_starts, action_noise, n_envs)
        episodes = self.demonstrations
        if not episodes:
            return action, buffer_action
        steps = len(episodes[0])
        round_, step = divmod(self.num_timesteps // n_envs, steps)
        for env_index in range(n_envs):
            episode = round_ * n_envs + env_index
            if episode < len(episodes):
                action[env_index] = episodes[episode][step]
                buffer_action[env_index] = self.policy.scale_action(action[env_index])
        return action, buffer_action

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "demonstrations"]


class FinalRewardCallback(BaseCallback):
    """Credit every transition of a finished episode with the episode's final reward.

    Works for any SB3 off-policy algorithm with a plain ``ReplayBuffer`` that trains only
    between rollouts of whole episodes (``train_freq`` of one episode, or of one episode's
    steps with several environments). Positions are noted in ``_on_step`` (SB3 stores the
    transition right after it) and rewritten in ``_on_rollout_end`` (before training). The
    baseline is subtracted at sampling time (:class:`CenteredReplayBuffer`).
    """

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[int, list[int]] = {}
        self._pending: list[tuple[list[int], int, float]] = []

    def _replay_buffer(self) -> ReplayBuffer:
        model = self.model
        # Used with off-policy algorithms only (see above), which own their buffer in learn().
        assert isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None
        return model.replay_buffer

    def _on_step(self) -> bool:
        buffer = self._replay_buffer()
        for env_index, done in enumerate(self.locals["dones"]):
            self._rows.setdefault(env_index, []).append(buffer.pos)
            if done:
                final = float(self.locals["rewards"][env_index])
                self._pending.append((self._rows.pop(env_index), env_index, final))
        return True

    def _on_rollout_end(self) -> None:
        rewards = self._replay_buffer().rewards
        for rows, env_index, value in self._pending:
            rewards[rows, env_index] = value
        self._pending.clear()


class CenteredReplayBuffer(ReplayBuffer):
    """A replay buffer whose sampled rewards are centred by AMC's moving-average baseline.

    Args:
        *args: As :class:`stable_baselines3.common.buffers.ReplayBuffer`.
        alpha: Weight of the newest batch mean in the baseline (AMC: 0.5).
        **kwargs: As :class:`~stable_baselines3.common.buffers.ReplayBuffer`.

    Example:
        >>> from gymnasium import spaces
        >>> box = spaces.Box(-1, 1, (1,))
        >>> buffer = CenteredReplayBuffer(8, box, box, alpha=0.5)
        >>> for r in (1.0, 3.0):
        ...     buffer.add(np.zeros(1), np.zeros(1), np.zeros(1), np.array([r]), np.array([0.0]),
        ...                [{}])
        >>> batch = buffer.sample(64)  # the first batch: the baseline is its mean
        >>> abs(float(batch.rewards.mean())) < 1e-6, 1.0 <= buffer.baseline <= 3.0
        (True, True)
    """

    def __init__(self, *args: Any, alpha: float = 0.5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.baseline: float | None = None

    def sample(self, batch_size: int, env: Any = None) -> ReplayBufferSamples:
        """A batch with ``reward - baseline``; the baseline first moves toward its mean."""
        batch = super().sample(batch_size, env=env)
        mean = float(batch.rewards.mean())
        if self.baseline is None:
            self.baseline = mean
        else:
            self.baseline += self.alpha * (mean - self.baseline)
        return batch._replace(rewards=batch.rewards - self.baseline)


class SeededDDPG(Demonstrations, AmcDDPG):
    """:class:`AmcDDPG` that plays :attr:`demonstrations` first (``ddpg``'s algorithm)."""


class SeededTD3(Demonstrations, TD3):
    """SB3's TD3 that plays :attr:`demonstrations` first (``td3``'s algorithm)."""


class SeededSAC(Demonstrations, SAC):
    """SB3's SAC that plays :attr:`demonstrations` first (``sac``'s algorithm)."""
