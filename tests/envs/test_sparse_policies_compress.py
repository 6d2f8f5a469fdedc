"""Policies of the sparse and joint modes, compressed for real: sparsity lands inside the kept
channels, with and without weight quantization."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from autoprune.compress import compress_model
from autoprune.compress.act_quant import ActivationFakeQuant
from autoprune.compress.sparsity import sparsity_mask
from envs import CompressionEnv


def _episode(env: CompressionEnv, rng: np.random.Generator) -> dict:
    env.reset()
    for _ in env.layer_names:
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        _, _, done, _, info = env.step(action)
    assert done
    return info


@pytest.mark.parametrize(("mode", "budget"), [("sparse", "size=0.05"), ("joint", "size=0.01")])
def test_sparsity_is_applied_inside_the_kept_channels(
    make_fake_evaluator: Callable, demo_model: torch.nn.Module, mode: str, budget: str
) -> None:
    evaluator = make_fake_evaluator()
    env = CompressionEnv(evaluator, [budget], mode=mode)
    rng = np.random.default_rng(0)
    example = torch.zeros(1, 1, 8, 8)
    calib = [torch.randn(32, 1, 8, 8)]
    for _ in range(3):
        policy = _episode(env, rng)["policy"]
        compressed = compress_model(demo_model, policy, example, calib)
        pruned = {s.name: s for s in evaluator.pruned_specs(policy)}
        for name, layer in policy.layers.items():
            module = compressed.get_submodule(name)
            assert module.weight.numel() == pruned[name].weight_count  # channels removed first
            mask = sparsity_mask(module)
            kept = module.weight.numel()
            if layer.sparsity == 0:
                assert mask is None
                continue
            assert int((~mask).sum()) == round(layer.sparsity * kept)  # of the kept weights
            assert bool((module.weight.detach()[~mask] == 0).all())  # pruned stay zero
        quantizers = [m for m in compressed.modules() if isinstance(m, ActivationFakeQuant)]
        assert bool(quantizers) == (mode == "joint")  # sparse mode keeps activations float


def test_float_weights_with_sparsity_keep_the_unpruned_values(
    make_fake_evaluator: Callable, demo_model: torch.nn.Module
) -> None:
    evaluator = make_fake_evaluator()
    env = CompressionEnv(
        evaluator, mode="sparse", pin_first_last=False, min_bits=8, max_sparsity=0.98
    )
    env.reset()
    for _ in env.layer_names:  # sparsity 0.49, 8 bits everywhere
        _, _, _, _, info = env.step(np.array([0.0, 1.0], np.float32))
    policy = info["policy"]
    float_policy = policy.replace_layer("conv2", w_bits=32)
    compressed = compress_model(demo_model, float_policy, torch.zeros(1, 1, 8, 8), [])
    weight = compressed.conv2.weight.detach()
    assert float((weight == 0).float().mean()) == pytest.approx(0.49, abs=1e-3)
    original = demo_model.conv2.weight.detach()
    nonzero = weight != 0
    assert torch.equal(weight[nonzero], original[nonzero])  # no quantization on float weights
    threshold = original[nonzero].abs().min()
    assert bool((original[~nonzero].abs() <= threshold).all())  # the smallest were pruned
