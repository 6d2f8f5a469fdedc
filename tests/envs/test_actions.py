"""decode_action: every mode's layout, orientation and grid."""

from __future__ import annotations

import numpy as np
import pytest

from autoprune.core.errors import AutopruneError
from envs import ACTION_DIMS, DIMENSIONS, MODES, decode_action
from envs.actions import (
    SPARSITY_STEP,
    LayerAction,
    bits_action,
    encode_action,
    round_sparsity,
    sparsity_from_unit,
)

BOUNDS = {"min_keep": 0.2, "max_keep": 1.0, "min_bits": 2, "max_bits": 8, "max_sparsity": 0.9}


def _decode(values: list[float], mode: str) -> LayerAction:
    return decode_action(np.asarray(values, np.float32), mode, **BOUNDS)  # type: ignore[arg-type]


def test_modes_and_their_dimensions() -> None:
    assert MODES == ("prune", "quantize", "sparse", "joint")
    assert DIMENSIONS["sparse"] == ("sparsity", "w_bits")
    assert DIMENSIONS["joint"] == ("keep", "sparsity", "w_bits", "a_bits")
    assert ACTION_DIMS == {"prune": 1, "quantize": 2, "sparse": 2, "joint": 4}


def test_prune_decodes_the_keep_ratio_only() -> None:
    assert _decode([-1.0], "prune") == LayerAction(keep_ratio=0.2)
    assert _decode([0.0], "prune").keep_ratio == pytest.approx(0.6)
    assert _decode([1.0], "prune") == LayerAction()


def test_quantize_decodes_weight_then_activation_bits() -> None:
    assert _decode([-1.0, 1.0], "quantize") == LayerAction(w_bits=2, a_bits=8)
    assert _decode([1.0, -1.0], "quantize") == LayerAction(w_bits=8, a_bits=2)


def test_sparse_decodes_sparsity_and_weight_bits_with_float_activations() -> None:
    assert _decode([-1.0, -1.0], "sparse") == LayerAction(sparsity=0.9, w_bits=2)
    assert _decode([1.0, 1.0], "sparse") == LayerAction(sparsity=0.0, w_bits=8)
    half = _decode([0.0, 0.0], "sparse")
    assert (half.keep_ratio, half.sparsity, half.w_bits, half.a_bits) == (1.0, 0.45, 5, 32)


def test_joint_decodes_all_four_in_order() -> None:
    action = _decode([0.0, 0.5, -1.0, 1.0], "joint")
    assert action.keep_ratio == pytest.approx(0.6)
    assert action.sparsity == 0.225  # u = 0.75 -> (1 - 0.75) * 0.9
    assert (action.w_bits, action.a_bits) == (2, 8)
    assert _decode([-1.0] * 4, "joint") == LayerAction(0.2, 0.9, 2, 2)  # all cheapest
    assert _decode([1.0] * 4, "joint") == LayerAction(1.0, 0.0, 8, 8)  # all largest


def test_larger_actions_never_ask_for_fewer_resources() -> None:
    rng = np.random.default_rng(0)
    for value in np.sort(rng.uniform(-1, 1, 200)):
        low, high = _decode([value] * 4, "joint"), _decode([value + 1e-3] * 4, "joint")
        assert high.keep_ratio >= low.keep_ratio and high.sparsity <= low.sparsity
        assert high.w_bits >= low.w_bits and high.a_bits >= low.a_bits


def test_sparsity_lies_on_the_grid_within_range() -> None:
    rng = np.random.default_rng(1)
    for u in rng.uniform(0, 1, 500):
        sparsity = sparsity_from_unit(float(u), 0.98)
        assert 0.0 <= sparsity <= 0.98
        assert sparsity == round(sparsity, 3)  # the evaluator's cache key
        assert sparsity * 1000 == pytest.approx(round(sparsity / SPARSITY_STEP))
    assert round_sparsity(0.98765, 0.98) == 0.98 and round_sparsity(-0.2, 0.98) == 0.0
    assert _decode([5.0, 0.0], "sparse").sparsity == 0.0  # clipped to [-1, 1] first


@pytest.mark.parametrize("mode", MODES)
def test_wrong_length_is_refused(mode: str) -> None:
    with pytest.raises(AutopruneError, match=f"takes {ACTION_DIMS[mode]}"):
        _decode([0.0] * (ACTION_DIMS[mode] + 1), mode)


@pytest.mark.parametrize(("low", "high"), [(2, 8), (4, 4), (3, 6)])
def test_bits_action_decodes_back_to_its_bit_width(low: int, high: int) -> None:
    bounds = {**BOUNDS, "min_bits": low, "max_bits": high}
    for bits in range(low, high + 1):
        value = bits_action(bits, low, high)
        assert -1.0 < value < 1.0
        decoded = decode_action(np.array([value, value]), "quantize", **bounds)
        assert (decoded.w_bits, decoded.a_bits) == (bits, bits)


def test_encode_action_is_the_inverse_of_decode() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        wanted = LayerAction(
            keep_ratio=float(rng.uniform(0.2, 1.0)),
            sparsity=round_sparsity(float(rng.uniform(0.0, 0.9)), 0.9),
            w_bits=int(rng.integers(2, 9)),
            a_bits=int(rng.integers(2, 9)),
        )
        decoded = decode_action(encode_action(wanted, "joint", **BOUNDS), "joint", **BOUNDS)
        assert decoded.keep_ratio == pytest.approx(wanted.keep_ratio, abs=1e-6)
        assert (decoded.sparsity, decoded.w_bits, decoded.a_bits) == (
            wanted.sparsity,
            wanted.w_bits,
            wanted.a_bits,
        )
    assert encode_action(LayerAction(sparsity=0.0, w_bits=8), "sparse", **BOUNDS).tolist() == [
        1.0,
        pytest.approx(1 - 1 / 7),
    ]
