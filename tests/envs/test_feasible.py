"""The ``scale`` wall (envs/_feasible.py): actions mapped into the feasible interval, not
clipped at its edge; and :meth:`CompressionEnv.actions_for`, its inverse."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
from torch import nn

from autoprune.core.budget import Budget
from autoprune.core.errors import AutopruneError
from autoprune.models import build_model
from envs import CompressionEnv

TIGHT = {
    "prune": ["flops=0.3"],
    "quantize": ["latency=0.3"],
    "sparse": ["size=0.03"],
    "joint": ["size=0.05"],
}


def _episode(env: CompressionEnv, actions: list[np.ndarray]) -> dict:
    env.reset()
    for action in actions:
        _, _, terminated, _, info = env.step(action)
    assert terminated
    return info


def _random_actions(env: CompressionEnv, rng: np.random.Generator) -> list[np.ndarray]:
    shape = env.action_space.shape
    return [rng.uniform(-1, 1, shape).astype(np.float32) for _ in env.layer_names]


@pytest.fixture(scope="module")
def lenet300() -> nn.Module:
    """LeNet-300-100 on 8x8 inputs (64-300-100-10): one layer holds most of the weights."""
    return build_model("lenet300", in_channels=1, num_classes=10, input_size=(8, 8)).eval()


@pytest.mark.parametrize("mode", ["prune", "quantize", "sparse", "joint"])
def test_without_a_binding_budget_scale_is_the_plain_decoding(
    make_fake_evaluator: Callable, mode: str
) -> None:
    env = CompressionEnv(make_fake_evaluator(), None, mode=mode)
    rng = np.random.default_rng(0)
    for _ in range(10):
        actions = _random_actions(env, rng)
        played = _episode(env, actions)["policy"]
        assert played.layers == env.requested_policy(actions).layers


def _first_step(env: CompressionEnv, action: list[float]) -> tuple[float, int]:
    env.reset()
    _, _, _, _, info = env.step(np.array(action, dtype=np.float32))
    assert info["layer"] == env.layer_names[0]
    return info["sparsity"], info["w_bits"]


def test_first_step_grows_with_each_action_component_under_a_tight_budget(
    make_fake_evaluator: Callable, lenet300: nn.Module
) -> None:
    env = CompressionEnv(make_fake_evaluator(lenet300), ["size=0.03"], mode="sparse")
    sweep = np.linspace(-1, 1, 41)
    densities = [1 - _first_step(env, [u, 0.0])[0] for u in sweep]
    bits = [_first_step(env, [0.0, u])[1] for u in sweep]
    assert densities == sorted(densities) and bits == sorted(bits)
    assert len(set(densities)) > 20 and len(set(bits)) > 1  # not one clipped setting
    clip = CompressionEnv(env.evaluator, ["size=0.03"], mode="sparse", wall="clip")
    assert _first_step(env, [1.0, 1.0]) == _first_step(clip, [1.0, 1.0])  # same top


@pytest.mark.parametrize("wall", ["scale", "clip"])
@pytest.mark.parametrize("mode", ["prune", "quantize", "sparse", "joint"])
def test_actions_for_replays_every_episode_policy(
    make_fake_evaluator: Callable, mode: str, wall: str
) -> None:
    env = CompressionEnv(make_fake_evaluator(), TIGHT[mode], mode=mode, wall=wall)
    rng = np.random.default_rng(1)
    for _ in range(15):
        policy = _episode(env, _random_actions(env, rng))["policy"]
        replayed = _episode(env, env.actions_for(policy))["policy"]
        assert replayed.layers == policy.layers


def test_actions_for_an_infeasible_policy_stays_within_the_budget(
    make_fake_evaluator: Callable,
) -> None:
    env = CompressionEnv(make_fake_evaluator(), ["size=0.05"], mode="sparse")
    dense = env.requested_policy(np.ones(2, dtype=np.float32))
    info = _episode(env, env.actions_for(dense))
    assert info["feasible"] and not info["repaired"]
    assert Budget.parse(["size=0.05"]).satisfied(info["metrics"], env.space.baseline)


def test_tight_budget_no_longer_collapses_onto_one_policy(
    make_fake_evaluator: Callable, lenet300: nn.Module
) -> None:
    """Issue 26: at 1/33 of LeNet-300-100's file, AMC's clip sent 90 of 100 random episodes
    to one policy (fc1 at its top, the rest at their minimum); scaling keeps them apart."""
    evaluator = make_fake_evaluator(lenet300)
    counts = {}
    for wall in ("clip", "scale"):
        env = CompressionEnv(evaluator, ["size=0.03"], mode="sparse", wall=wall)
        rng = np.random.default_rng(0)
        policies = Counter(
            tuple(_episode(env, _random_actions(env, rng))["policy"].layers.values())
            for _ in range(60)
        )
        counts[wall] = (len(policies), policies.most_common(1)[0][1])
    assert counts["clip"][0] <= 10 and counts["clip"][1] >= 45  # measured: 6 distinct, 55 alike
    assert counts["scale"][0] >= 57 and counts["scale"][1] <= 2  # measured: 60 distinct


def test_unknown_wall_is_refused(make_fake_evaluator: Callable) -> None:
    with pytest.raises(AutopruneError, match="unknown wall 'cut'; choose one of: scale, clip"):
        CompressionEnv(make_fake_evaluator(), ["flops=0.5"], wall="cut")  # type: ignore[arg-type]


def test_walls_match_the_config_keys() -> None:
    from autoprune.workflow.config import WALLS as CONFIG_WALLS
    from envs import WALLS

    assert WALLS == CONFIG_WALLS
