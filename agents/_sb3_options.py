"""Options (``agent_options``) of the Stable-Baselines3 search methods."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autoprune.core.errors import AutopruneError


@dataclass(frozen=True)
class SB3Options:
    """Options shared by the SB3 methods (``agent_options``)."""

    n_envs: int = 1
    """Episodes evaluated in parallel worker processes (1: in this process)."""
    net_arch: tuple[int, ...] = (64, 64)
    """Hidden layers of the actor and the critic."""
    learning_rate: float | None = None
    """Learning rate (the actor's for ddpg); None: the method's default."""
    gamma: float | None = None
    """Discount; None: the method's default."""
    batch_size: int | None = None
    """Mini-batch size; None: the method's default."""
    device: str = "cpu"
    """torch device of the networks."""
    verbose: int = 0
    """SB3 verbosity."""
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments of the SB3 constructor."""

    def check(self) -> None:
        """Raise :class:`AutopruneError` on an unusable value."""
        if not isinstance(self.n_envs, int) or self.n_envs < 1:
            raise AutopruneError(f"agent option n_envs={self.n_envs!r} must be an integer >= 1")


@dataclass(frozen=True)
class OffPolicyOptions(SB3Options):
    """Options of td3 and sac."""

    warmup_episodes: int | None = None
    """Episodes of uniform random actions (None: ``min(100, episodes // 4)``)."""
    buffer_size: int | None = None
    """Replay transitions (None: every transition of the search)."""
    reward_alpha: float = 0.5
    """Moving-average weight of the reward baseline (AMC: 0.5)."""
    updates_per_episode: int | None = None
    """Gradient steps after each episode (None: one per transition, as AMC)."""
    noise_sigma: float = 0.1
    """Exploration noise (td3: Gaussian sigma in action units; unused by sac)."""


@dataclass(frozen=True)
class DDPGOptions(OffPolicyOptions):
    """Options of ddpg; the defaults are AMC's."""

    net_arch: tuple[int, ...] = (300, 300)
    learning_rate: float | None = 1e-4
    critic_learning_rate: float = 1e-3
    """Learning rate of the critic."""
    tau: float = 0.01
    """Soft target update rate."""
    gamma: float | None = 1.0
    batch_size: int | None = 64
    buffer_size_per_layer: int = 100
    """Replay size per layer when ``buffer_size`` is None (AMC: 100 x layers)."""
    noise_sigma: float = 0.5
    """Truncated-normal sigma as a fraction of the action range (AMC: 0.5)."""
    noise_decay: float = 0.95
    """Sigma decay per episode after warm-up (AMC: 0.95)."""


@dataclass(frozen=True)
class PPOOptions(SB3Options):
    """Options of ppo."""

    gamma: float | None = 1.0
    episodes_per_update: int = 4
    """Episodes per environment collected between PPO updates (``n_steps`` / layers)."""
