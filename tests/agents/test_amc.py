"""AMC's DDPG details: truncated-normal noise, final-reward credit, the critic's own lr."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents import run_search
from agents._amc import CenteredReplayBuffer, TruncatedNormalNoise
from agents._sb3_state import load_replay
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession


def test_truncated_normal_noise_stays_in_bounds_and_decays_after_warmup() -> None:
    noise = TruncatedNormalNoise(size=3, sigma=0.5, decay=0.5, warmup_episodes=2, seed=1)
    samples = np.stack([noise.perturb(np.array([0.99, -0.99, 0.0])) for _ in range(500)])
    assert samples.min() >= -1.0 and samples.max() <= 1.0
    assert abs(float(samples[:, 2].mean())) < 0.1  # centred on the actor's action
    assert samples[:, 0].mean() < 0.99 < samples[:, 0].max() + 0.01  # truncated, not clipped

    sigmas = []
    for _ in range(4):
        sigmas.append(noise.sigma)
        noise.reset()
    assert sigmas == [1.0, 1.0, 1.0, 0.5]  # 0.5 of the range [-1, 1]; decay after 2 episodes
    again = TruncatedNormalNoise(size=3, sigma=0.5, seed=1)
    assert np.array_equal(
        TruncatedNormalNoise(size=3, sigma=0.5, seed=1).perturb(np.zeros(3)),
        again.perturb(np.zeros(3)),
    )


def test_ddpg_credits_every_transition_with_the_final_reward_minus_baseline(
    run_config: Callable[..., SearchConfig], session: SearchSession
) -> None:
    config = run_config("ddpg", episodes=4, agent_options={"warmup_episodes": 2})
    result = run_search(config, session=session, run_name="amc-credit")
    folder = Path(config.runs_dir) / "searches" / "amc-credit" / "checkpoint.json"
    latest = folder.parent / "checkpoints"
    (checkpoint,) = list(latest.iterdir())
    steps = 3  # conv1, conv2, conv3 of the demo CNN
    with np.load(checkpoint / "method" / "replay.npz", allow_pickle=False) as saved:
        obs, act = saved["observations"].shape[-1], saved["actions"].shape[-1]
    box = spaces.Box(-np.inf, np.inf, (obs,))
    buffer = CenteredReplayBuffer(100 * steps, box, spaces.Box(-1, 1, (act,)), alpha=0.5)
    load_replay(buffer, checkpoint / "method" / "replay.npz")
    assert buffer.baseline is not None  # restored with the buffer (AMC's moving average)

    assert [r.policy.meta.get("warmup", False) for r in result.history] == [
        True,
        True,
        False,
        False,
    ]
    assert result.history[-1].policy.meta["learned"]
    for episode, record in enumerate(result.history[:3]):  # the 4th is the learned policy
        rows = buffer.rewards[episode * steps : (episode + 1) * steps, 0]
        assert np.allclose(rows, record.reward, atol=1e-6)  # stored raw, all steps alike
        dones = buffer.dones[episode * steps : (episode + 1) * steps, 0]
        assert dones.tolist() == [0.0, 0.0, 1.0]
    # the baseline is applied when sampling: one moving average of batch means (AMC)
    assert isinstance(buffer, CenteredReplayBuffer) and buffer.alpha == 0.5
    assert min(r.reward for r in result.history[:3]) <= buffer.baseline
    assert buffer.baseline <= max(r.reward for r in result.history[:3])
    before = buffer.baseline
    batch = buffer.sample(64)
    raw_mean = float(batch.rewards.mean()) + buffer.baseline
    assert buffer.baseline == pytest.approx(before + 0.5 * (raw_mean - before))

    agent = torch.load(checkpoint / "method" / "agent.pt", weights_only=True)["params"]
    assert agent["actor.optimizer"]["param_groups"][0]["lr"] == 1e-4
    assert agent["critic.optimizer"]["param_groups"][0]["lr"] == 1e-3
    state = json.loads((checkpoint / "method" / "state.json").read_text())
    assert state["_episode_num"] == 3  # AmcDDPG's noise decays by this count
