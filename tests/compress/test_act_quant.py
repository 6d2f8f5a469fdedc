from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from autoprune.compress.act_quant import (
    ActivationFakeQuant,
    attach_activation_quant,
    calibrate_activations,
    remove_activation_quant,
)
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy


def _model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 4)
    )


def _batches(count: int = 3) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return [torch.randn(4, 3, 6, 6, generator=generator) for _ in range(count)]


def _capture_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input each layer actually receives (after the pre-hooks)."""
    seen: dict[str, torch.Tensor] = {}
    handles = [
        model.get_submodule(name).register_forward_hook(
            lambda mod, args, out, name=name: seen.__setitem__(name, args[0].detach())
        )
        for name in ("0", "4")
    ]
    model(x)
    for handle in handles:
        handle.remove()
    return seen


@pytest.mark.parametrize("bits", [2, 4])
def test_calibrated_inputs_take_at_most_two_to_the_bits_values(bits: int) -> None:
    model = _model().eval()
    policy = LayerPolicy(a_bits=bits)
    handles = attach_activation_quant(model, {"0": policy, "4": policy})
    assert len(handles) == 2
    calibrate_activations(model, _batches())
    inputs = _capture_inputs(model, torch.randn(8, 3, 6, 6) * 3)
    for name in ("0", "4"):
        assert len(inputs[name].unique()) <= 2**bits
    assert len(inputs["0"].unique()) > 2 ** (bits - 1)


def test_eight_bit_error_is_within_half_a_step() -> None:
    model = _model().eval()
    attach_activation_quant(model, {"4": LayerPolicy(a_bits=8)})
    calibrate_activations(model, _batches())
    quant = model[4].input_quant
    x = torch.rand(1000) * float(quant.max_val)
    error = (quant(x) - x).abs()
    assert float(error.max()) <= float(quant.scale) / 2 + 1e-6
    assert float(quant.scale) == pytest.approx(float(quant.max_val) / 255, rel=1e-6)
    assert int(quant.zero_point) == 0  # the input follows a ReLU


def test_straight_through_gradient_inside_the_range_only() -> None:
    quant = ActivationFakeQuant(4)
    quant.observe(torch.tensor([-1.0, 2.0]))
    quant.freeze()
    x = torch.tensor([-3.0, -0.4, 0.33, 1.9, 5.0], requires_grad=True)
    quant(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_gradients_reach_the_weights_through_a_quantized_model() -> None:
    model = _model()
    attach_activation_quant(model, {"0": LayerPolicy(a_bits=4), "4": LayerPolicy(a_bits=4)})
    calibrate_activations(model, _batches())
    model(_batches(1)[0]).pow(2).sum().backward()
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0


def test_uncalibrated_quantizer_passes_through() -> None:
    model = _model().eval()
    x = _batches(1)[0]
    reference = model(x)
    attach_activation_quant(model, {"0": LayerPolicy(a_bits=2)})
    assert torch.equal(model(x), reference)


def test_calibration_keeps_batchnorm_and_the_training_flag() -> None:
    model = _model().train()
    attach_activation_quant(model, {"0": LayerPolicy(a_bits=4)})
    running = model[1].running_mean.clone()
    calibrate_activations(model, [(x, torch.zeros(4)) for x in _batches()])
    assert model.training
    assert torch.equal(model[1].running_mean, running)
    assert model[0].input_quant.calibrated
    observed = torch.cat(_batches()).aminmax()
    assert float(model[0].input_quant.min_val) == float(observed.min)
    assert float(model[0].input_quant.max_val) == float(observed.max)


def test_deepcopy_and_state_dict_round_trip() -> None:
    model = _model().eval()
    policies = {"0": LayerPolicy(a_bits=3), "4": LayerPolicy(a_bits=6)}
    attach_activation_quant(model, policies)
    calibrate_activations(model, _batches())
    x = torch.randn(2, 3, 6, 6)
    clone = copy.deepcopy(model)
    assert torch.equal(clone(x), model(x))
    calibrate_activations(clone, [torch.randn(2, 3, 6, 6) * 10])
    assert not torch.equal(clone[0].input_quant.scale, model[0].input_quant.scale)
    fresh = _model().eval()
    attach_activation_quant(fresh, policies)
    fresh.load_state_dict(model.state_dict())
    assert fresh[0].input_quant.calibrated
    assert torch.equal(fresh(x), model(x))


def test_remove_restores_the_float_model() -> None:
    model = _model().eval()
    x = _batches(1)[0]
    reference = model(x)
    attach_activation_quant(model, {"0": LayerPolicy(a_bits=2), "4": LayerPolicy(a_bits=2)})
    calibrate_activations(model, _batches())
    assert not torch.equal(model(x), reference)
    remove_activation_quant(model)
    assert torch.equal(model(x), reference)
    assert not any(isinstance(m, ActivationFakeQuant) for m in model.modules())
    assert len(model[0]._forward_pre_hooks) == 0
    attach_activation_quant(model, {"0": LayerPolicy(a_bits=2)})  # attaching again is allowed


@pytest.mark.parametrize("bits", [4, 8])
def test_onnx_export_matches_onnxruntime(bits: int) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = _model().eval()
    attach_activation_quant(model, {"0": LayerPolicy(a_bits=bits), "4": LayerPolicy(a_bits=bits)})
    calibrate_activations(model, _batches())
    x = _batches(1)[0]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=17)
    session = ort.InferenceSession(buffer.getvalue())
    (output,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(output, model(x).detach().numpy(), atol=1e-4)


def test_bad_inputs_raise() -> None:
    model = _model()
    with pytest.raises(AutopruneError, match="a_bits"):
        attach_activation_quant(model, {"0": LayerPolicy(a_bits=1)})
    with pytest.raises(AutopruneError, match="unknown layer 'fc'"):
        attach_activation_quant(model, {"fc": LayerPolicy(a_bits=4)})
    with pytest.raises(AutopruneError, match="2..8"):
        ActivationFakeQuant(9)
    attach_activation_quant(model, {"0": LayerPolicy(a_bits=4)})
    with pytest.raises(AutopruneError, match="already has an activation quantizer"):
        attach_activation_quant(model, {"0": LayerPolicy(a_bits=4)})
    with pytest.raises(AutopruneError, match="no calibration batches"):
        calibrate_activations(model, [])
    assert not model[0].input_quant.observing


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_activation_quant_on_cuda() -> None:
    model = _model().cuda().eval()
    attach_activation_quant(model, {"0": LayerPolicy(a_bits=4), "4": LayerPolicy(a_bits=8)})
    calibrate_activations(model, [b.cuda() for b in _batches()])
    inputs = _capture_inputs(model, torch.randn(8, 3, 6, 6, device="cuda"))
    assert len(inputs["0"].unique()) <= 16 and inputs["0"].is_cuda
    x = _batches(1)[0].cuda()
    assert torch.equal(copy.deepcopy(model)(x), model(x))
