"""Single-layer graphs for latency measurement, keyed by the layer's shape and precision.

fp32 layers are a plain ``Conv`` or ``Gemm``. int8 layers are written directly in QDQ form
(uint8 input → DequantizeLinear, int8 per-channel weights → DequantizeLinear, int32 bias →
DequantizeLinear, Conv/Gemm, QuantizeLinear → uint8 output), which ONNX Runtime fuses into
``QLinearConv`` / ``QGemm``. Input and output stay uint8, as they are between layers of an
int8 model, so the float↔int8 conversions at a model's boundary are not charged per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy
from autoprune.core.specs import LayerSpec
from autoprune.latency._epilogues import Epilogue, append_epilogue

Precision = Literal["int8", "fp32"]
OPSET = 17
SINK_PREFIX = "sink"
"""Name prefix of the nodes that consume a timed layer's outputs (not timed themselves)."""
IR_VERSION = 8


def derive_pads(
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
) -> tuple[int, int, int, int]:
    """Padding ``(top, left, bottom, right)`` that turns ``in_hw`` into ``out_hw``.

    Solves ``out = floor((in + P - k) / s) + 1`` for the smallest total ``P >= 0``, preferring
    an even total (symmetric, like PyTorch) when the stride leaves a choice.

    Example:
        >>> derive_pads((28, 28), (14, 14), (3, 3), (2, 2))
        (1, 1, 1, 1)
    """
    begin, end = [], []
    for size, out, k, s in zip(in_hw, out_hw, kernel, stride, strict=True):
        low = (out - 1) * s + k - size
        high = low + s - 1
        if high < 0 or out < 1:
            raise AutopruneError(
                f"layer shape is inconsistent: input {in_hw} cannot give output {out_hw} with "
                f"kernel {kernel} and stride {stride}; check the LayerSpec (dilation is not "
                "supported)"
            )
        total = max(low, 0)
        if total % 2 and total + 1 <= high:
            total += 1
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin[0], begin[1], end[0], end[1]


@dataclass(frozen=True)
class LayerKey:
    """Everything a single-layer latency depends on; ``str(key)`` is the cache key."""

    kind: str
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    groups: int
    in_hw: tuple[int, int]
    pads: tuple[int, int, int, int]
    precision: Precision
    batch_size: int
    epilogue: Epilogue | None = field(default=None, repr=False)

    @classmethod
    def from_spec(
        cls,
        spec: LayerSpec,
        policy: LayerPolicy,
        *,
        batch_size: int,
        int8: bool = True,
        epilogue: Epilogue | None = None,
    ) -> LayerKey:
        """Key of ``spec`` at ``policy``'s bits: int8 when both are <= 8 bits and ``int8``.

        ``epilogue`` (the operators after the layer in its model) is timed with the layer,
        in QDQ form (uint8 between the operators) for int8 layers.
        """
        low_bits = policy.w_bits <= 8 and policy.a_bits <= 8
        linear = spec.kind == "linear"
        precision: Precision = "int8" if (int8 and low_bits) else "fp32"
        return cls(
            kind=spec.kind,
            in_channels=spec.in_channels,
            out_channels=spec.out_channels,
            kernel=(1, 1) if linear else spec.kernel,
            stride=(1, 1) if linear else spec.stride,
            groups=1 if linear else spec.groups,
            in_hw=(1, 1) if linear else spec.in_hw,
            pads=(0, 0, 0, 0)
            if linear
            else derive_pads(spec.in_hw, spec.out_hw, spec.kernel, spec.stride),
            precision=precision,
            batch_size=batch_size,
            epilogue=epilogue if epilogue and epilogue.ops else None,
        )

    def __str__(self) -> str:
        return self.text

    @cached_property
    def text(self) -> str:
        """The cache key (computed once: a search looks keys up many times)."""

        def pair(values: tuple[int, ...]) -> str:
            return "x".join(str(v) for v in values)

        tail = f"|e{self.epilogue.signature}" if self.epilogue else ""
        return (
            f"{self.kind}|i{self.in_channels}|o{self.out_channels}|k{pair(self.kernel)}"
            f"|s{pair(self.stride)}|g{self.groups}|hw{pair(self.in_hw)}|p{pair(self.pads)}"
            f"|{self.precision}|b{self.batch_size}{tail}"
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of the layer's input including the batch."""
        if self.kind == "linear":
            return (self.batch_size, self.in_channels)
        return (self.batch_size, self.in_channels, *self.in_hw)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the layer's output including the batch."""
        if self.kind == "linear":
            return (self.batch_size, self.out_channels)
        top, left, bottom, right = self.pads
        padded = (self.in_hw[0] + top + bottom, self.in_hw[1] + left + right)
        dims = zip(padded, self.kernel, self.stride, strict=True)
        out_hw = [(size - k) // s + 1 for size, k, s in dims]
        return (self.batch_size, self.out_channels, *out_hw)


def _weights_shape(key: LayerKey) -> tuple[int, ...]:
    if key.kind == "linear":
        return (key.out_channels, key.in_channels)
    return (key.out_channels, key.in_channels // key.groups, *key.kernel)


def _layer_node(key: LayerKey, x: str, w: str, b: str, y: str) -> onnx.NodeProto:
    if key.kind == "linear":
        return helper.make_node("Gemm", [x, w, b], [y], transB=1)
    return helper.make_node(
        "Conv",
        [x, w, b],
        [y],
        kernel_shape=list(key.kernel),
        strides=list(key.stride),
        pads=list(key.pads),
        group=key.groups,
    )


def _model(nodes: list, inputs: list, outputs: list, inits: list) -> bytes:
    graph = helper.make_graph(nodes, "layer", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model.SerializeToString()


def _with_sinks(
    nodes: list, inputs: list, outputs: Sequence[str], inits: list, elem: int, flatten: bool
) -> bytes:
    """A model whose ``outputs`` feed a ``ReduceMax`` sink each (nodes named ``sink...``).

    Inside a model a layer writes into memory the runtime planned ahead; a graph output is
    allocated afresh on every call. The sinks keep the layer's outputs internal, and the
    profiler leaves the sink nodes out of the layer's time. With ``flatten`` a ``Reshape``
    to 1-D comes first: int8 layers run in NHWC, and ONNX Runtime would otherwise fold the
    conversion back to NCHW into the reduction instead of timing it at the graph's edge.
    """
    sinks = []
    if flatten:
        inits.append(numpy_helper.from_array(np.array([-1], np.int64), f"{SINK_PREFIX}_shape"))
    for index, name in enumerate(outputs):
        source, out = name, f"{SINK_PREFIX}_out{index}"
        if flatten:
            source = f"{SINK_PREFIX}_flat{index}"
            nodes.append(
                helper.make_node(
                    "Reshape",
                    [name, f"{SINK_PREFIX}_shape"],
                    [source],
                    name=f"{SINK_PREFIX}_r{index}",
                )
            )
        nodes.append(
            helper.make_node("ReduceMax", [source], [out], keepdims=0, name=f"{SINK_PREFIX}{index}")
        )
        sinks.append(helper.make_tensor_value_info(out, elem, []))
    return _model(nodes, inputs, sinks, inits)


def layer_onnx(key: LayerKey) -> bytes:
    """Serialized single-layer ONNX model for ``key`` (fp32 or int8 QDQ), random weights.

    The layer and its epilogue are followed by sink nodes (see
    :func:`_with_sinks`); time it with :func:`~autoprune.latency._kernels.measure_together`.
    """
    rng = np.random.default_rng(0)
    shape = _weights_shape(key)
    cout = key.out_channels
    elem = TensorProto.FLOAT if key.precision == "fp32" else TensorProto.UINT8
    x = helper.make_tensor_value_info("x", elem, list(key.input_shape))
    if key.precision == "fp32":
        inits = [
            numpy_helper.from_array((0.1 * rng.standard_normal(shape)).astype(np.float32), "w"),
            numpy_helper.from_array(np.zeros(cout, np.float32), "b"),
        ]
        nodes = [_layer_node(key, "x", "w", "b", "y")]
        inputs = [x]
        outputs = ["y"]
        if key.epilogue is not None:
            outputs = append_epilogue(nodes, inits, inputs, "y", key.output_shape, key.epilogue)
        return _with_sinks(nodes, inputs, outputs, inits, elem, flatten=False)
    scale = np.full(cout, 0.01, np.float32)
    inits = [
        numpy_helper.from_array(rng.integers(-127, 128, shape).astype(np.int8), "w_q"),
        numpy_helper.from_array(scale, "w_s"),
        numpy_helper.from_array(np.zeros(cout, np.int8), "w_z"),
        numpy_helper.from_array(rng.integers(-999, 1000, cout).astype(np.int32), "b_q"),
        numpy_helper.from_array(scale * 0.02, "b_s"),
        numpy_helper.from_array(np.zeros(cout, np.int32), "b_z"),
        numpy_helper.from_array(np.array(0.02, np.float32), "x_s"),
        numpy_helper.from_array(np.array(128, np.uint8), "x_z"),
        # range [0, 6] with zero point 0, as a quantizer gives a layer followed by ReLU(6):
        # ONNX Runtime can then fold the epilogue's ReLU/ReLU6 into the quantization
        numpy_helper.from_array(np.array(6 / 255, np.float32), "y_s"),
        numpy_helper.from_array(np.array(0, np.uint8), "y_z"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "x_s", "x_z"], ["xf"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["wf"], axis=0),
        helper.make_node("DequantizeLinear", ["b_q", "b_s", "b_z"], ["bf"], axis=0),
        _layer_node(key, "xf", "wf", "bf", "yf"),
        helper.make_node("QuantizeLinear", ["yf", "y_s", "y_z"], ["y"]),
    ]
    inputs, outputs = [x], ["y"]
    if key.epilogue is not None:
        outputs = append_epilogue(
            nodes, inits, inputs, "y", key.output_shape, key.epilogue, ("y_s", "y_z")
        )
    return _with_sinks(nodes, inputs, outputs, inits, elem, flatten=True)


def overhead_onnx(batch_size: int) -> bytes:
    """A one-``Relu`` graph on ``(batch_size, 1)``: the fixed cost of one runtime call."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch_size, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch_size, 1])
    return _model([helper.make_node("Relu", ["x"], ["y"])], [x], [y], [])


def layer_torch(key: LayerKey) -> nn.Module:
    """The fp32 PyTorch module for ``key`` (asymmetric padding as an explicit pad)."""
    if key.kind == "linear":
        return nn.Linear(key.in_channels, key.out_channels)
    top, left, bottom, right = key.pads
    symmetric = top == bottom and left == right
    conv = nn.Conv2d(
        key.in_channels,
        key.out_channels,
        key.kernel,
        stride=key.stride,
        padding=(top, left) if symmetric else 0,
        groups=key.groups,
    )
    if symmetric:
        return conv
    return nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)), conv)
