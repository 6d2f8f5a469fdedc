"""AMC's DDPG in one readable file (CleanRL style), for debugging the search environment.

Everything the registry's ``ddpg`` gets from Stable-Baselines3 is written out here: actor and
critic, replay memory, truncated-normal exploration, the moving-average reward baseline and
the soft target updates. It is NOT used by ``autoprune search``; read it next to
``agents/_amc.py`` when a search behaves oddly.

    python examples/ddpg_single_file.py --episodes 30 --warmup 10 --target flops=0.5

Reference: He et al., "AMC: AutoML for Model Compression and Acceleration on Mobile Devices",
ECCV 2018 (actor/critic 300-300, lr 1e-4 / 1e-3, tau 0.01, discount 1, batch 64, truncated
normal noise 0.5 decaying x0.95, replay 100 x layers, baseline alpha 0.5).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import truncnorm
from torch import nn

from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import prepare_search
from envs.compression_env import CompressionEnv


@dataclass
class Args:
    model: str = "demo"
    """Zoo model to compress."""
    dataset: str = "digits"
    """Dataset of the model."""
    target: str = "flops=0.5"
    """Budget constraint."""
    mode: str = "prune"
    """prune, quantize or joint."""
    episodes: int = 40
    """Episodes (= evaluations) in total."""
    warmup: int = 10
    """Episodes of uniform random actions before learning (AMC: 100)."""
    seed: int = 0
    """Seed of everything."""
    hidden: int = 300
    """Width of the two hidden layers of actor and critic."""
    lr_actor: float = 1e-4
    """Actor learning rate."""
    lr_critic: float = 1e-3
    """Critic learning rate."""
    tau: float = 0.01
    """Soft target update rate."""
    gamma: float = 1.0
    """Discount."""
    batch_size: int = 64
    """Mini-batch size."""
    replay_per_layer: int = 100
    """Replay capacity per layer (transitions)."""
    sigma: float = 0.5
    """Initial exploration sigma, as a fraction of the action range."""
    sigma_decay: float = 0.95
    """Sigma decay per episode after warm-up."""
    alpha: float = 0.5
    """Moving-average weight of the reward baseline."""
    val_samples: int = 500
    """Validation images per evaluation."""
    runs_dir: str = "runs"
    """Where the cached baseline lives."""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(Args):
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default
        )
    return Args(**vars(parser.parse_args()))


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, outputs),
    )  # fmt: skip


class Actor(nn.Module):
    def __init__(self, obs: int, act: int, hidden: int) -> None:
        super().__init__()
        self.net = mlp(obs, hidden, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x))  # actions in [-1, 1]


class Critic(nn.Module):
    def __init__(self, obs: int, act: int, hidden: int) -> None:
        super().__init__()
        self.net = mlp(obs + act, hidden, 1)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, a], dim=1))


class Replay:
    """Ring buffer of (obs, action, reward, next_obs, done)."""

    def __init__(self, capacity: int, obs: int, act: int) -> None:
        self.obs = np.zeros((capacity, obs), np.float32)
        self.next_obs = np.zeros((capacity, obs), np.float32)
        self.act = np.zeros((capacity, act), np.float32)
        self.rew = np.zeros(capacity, np.float32)
        self.done = np.zeros(capacity, np.float32)
        self.capacity, self.pos, self.full = capacity, 0, False

    def add(
        self, obs: np.ndarray, act: np.ndarray, rew: float, nxt: np.ndarray, done: bool
    ) -> None:
        i = self.pos
        self.obs[i], self.act[i], self.rew[i], self.next_obs[i], self.done[i] = (
            obs,
            act,
            rew,
            nxt,
            done,
        )
        self.pos = (self.pos + 1) % self.capacity
        self.full = self.full or self.pos == 0

    def sample(self, n: int, rng: np.random.Generator) -> list[torch.Tensor]:
        idx = rng.integers(0, self.capacity if self.full else self.pos, size=n)
        arrays = (self.obs, self.act, self.rew, self.next_obs, self.done)
        return [torch.as_tensor(a[idx]) for a in arrays]


def main() -> None:
    args = parse_args()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    config = SearchConfig(
        model=args.model, dataset=args.dataset, targets=(args.target,), mode=args.mode,
        seed=args.seed, val_samples=args.val_samples, runs_dir=args.runs_dir,
    )  # fmt: skip
    session = prepare_search(config)
    env = CompressionEnv(session.evaluator, session.budget, mode=args.mode)
    n_obs, n_act = env.observation_space.shape[0], env.action_space.shape[0]
    layers = len(env.layer_names)

    actor, critic = Actor(n_obs, n_act, args.hidden), Critic(n_obs, n_act, args.hidden)
    actor_target, critic_target = (
        Actor(n_obs, n_act, args.hidden),
        Critic(n_obs, n_act, args.hidden),
    )
    actor_target.load_state_dict(actor.state_dict())
    critic_target.load_state_dict(critic.state_dict())
    actor_opt = torch.optim.Adam(actor.parameters(), lr=args.lr_actor)
    critic_opt = torch.optim.Adam(critic.parameters(), lr=args.lr_critic)
    replay = Replay(args.replay_per_layer * layers, n_obs, n_act)
    baseline: float | None = None
    best = (-np.inf, None)
    start = time.time()

    for episode in range(args.episodes):
        # 1. play one episode: random in warm-up, then truncated normal around the actor
        obs, _ = env.reset(seed=args.seed + episode)
        sigma = 2 * args.sigma * args.sigma_decay ** max(0, episode - args.warmup)
        transitions = []
        done = False
        while not done:
            if episode < args.warmup:
                action = rng.uniform(-1, 1, n_act).astype(np.float32)
            else:
                with torch.no_grad():
                    mu = actor(torch.as_tensor(obs)[None])[0].numpy()
                a, b = (-1 - mu) / sigma, (1 - mu) / sigma
                action = truncnorm.rvs(a, b, loc=mu, scale=sigma, random_state=rng)
                action = np.clip(action, -1, 1).astype(np.float32)
            next_obs, reward, done, _, info = env.step(action)
            transitions.append((obs, action, next_obs, done))
            obs = next_obs

        # 2. credit every transition with the final reward minus a moving-average baseline
        baseline = reward if baseline is None else baseline + args.alpha * (reward - baseline)
        for o, a, nxt, d in transitions:
            replay.add(o, a, reward - baseline, nxt, d)
        if reward > best[0]:
            best = (reward, info["policy"])

        # 3. after warm-up: one gradient step per transition of the episode
        if episode >= args.warmup:
            for _ in transitions:
                o, a, r, nxt, d = replay.sample(args.batch_size, rng)
                with torch.no_grad():
                    target = r[:, None] + args.gamma * (1 - d[:, None]) * critic_target(
                        nxt, actor_target(nxt)
                    )
                critic_loss = nn.functional.mse_loss(critic(o, a), target)
                critic_opt.zero_grad()
                critic_loss.backward()
                critic_opt.step()
                actor_loss = -critic(o, actor(o)).mean()
                actor_opt.zero_grad()
                actor_loss.backward()
                actor_opt.step()
                for net, tgt in ((actor, actor_target), (critic, critic_target)):
                    for p, tp in zip(net.parameters(), tgt.parameters(), strict=True):
                        tp.data.mul_(1 - args.tau).add_(args.tau * p.data)

        metrics = info["metrics"]
        print(
            f"episode {episode:4d}  reward {reward:.4f}  acc {metrics['accuracy']:.4f}  "
            f"macs {metrics['macs']:.3g}  sigma {sigma if episode >= args.warmup else 0:.3f}  "
            f"best {best[0]:.4f}  {time.time() - start:.0f}s"
        )

    reward, policy = best
    print(f"best reward {reward:.4f}")
    for name, layer in policy.layers.items():
        print(f"  {name:20s} keep {layer.keep_ratio:.3f}  w{layer.w_bits} a{layer.a_bits}")


if __name__ == "__main__":
    main()
