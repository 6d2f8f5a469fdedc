"""The operators that follow each layer in a model's ONNX graph, so layers are timed in context.

A lone ``Conv`` times differently from the same convolution inside a model: ONNX Runtime fuses
the ReLU and the residual ``Add`` into it, and the pooling, activation and flatten operators
between layers cost time too. So every compressible layer gets an :class:`Epilogue`: the
nodes of the exported model that run after the layer and before the next one (by graph
order, owned by the latest layer they depend on). Pruning changes channel counts, not these
operators, so one epilogue per layer is found once per model and reused for every policy.

Only shape-preserving operators (activations, element-wise arithmetic with a same-shape or
scalar operand, pooling, flatten) are kept; an epilogue stops at the first other operator,
which is then left to the model's calibrated fixed overhead.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from onnx import TensorProto, helper
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.specs import LayerSpec
from autoprune.export import export_onnx, onnx_node_names_for

SHAPE_PRESERVING = frozenset(
    {
        "Relu",
        "Clip",
        "LeakyRelu",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Elu",
        "Identity",
        "Dropout",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "Flatten",
    }
)
"""Operators an epilogue may hold: they keep working whatever the channel count."""

LAYER_OUTPUT = "layer_out"
"""Name of the layer's output tensor inside an epilogue."""


@dataclass(frozen=True)
class Epilogue:
    """Nodes that run after one layer, ready to be appended to a single-layer graph.

    Attributes:
        signature: Short hash of the nodes and constants; part of the lookup-table key.
        ops: Operator types in order, for display.
        nodes: Serialized ``NodeProto`` objects reading :data:`LAYER_OUTPUT`.
        constants: Serialized ``TensorProto`` initializers the nodes read (scalars only).
        side_inputs: Names of tensors the nodes read from elsewhere in the model (a residual
            branch); the graph declares each with the shape of the tensor it is combined with.
    """

    signature: str
    ops: tuple[str, ...]
    nodes: tuple[bytes, ...]
    constants: tuple[bytes, ...]
    side_inputs: tuple[str, ...]


def _is_scalar(tensor: onnx.TensorProto) -> bool:
    count = 1
    for dim in tensor.dims:
        count *= dim
    return count <= 1


def _owner_of_nodes(graph: onnx.GraphProto, layer_nodes: dict[str, str]) -> list[str | None]:
    """For each node, the layer whose epilogue it belongs to (``None``: none)."""
    produced_by: dict[str, int] = {}
    position: dict[str, int] = {}  # layer -> graph position of its weight node
    owners: list[str | None] = []
    owner: str | None
    for index, node in enumerate(graph.node):
        if node.name in layer_nodes:
            owner = layer_nodes[node.name]
            position[owner] = index
        else:
            candidates = [owners[produced_by[t]] for t in node.input if t in produced_by]
            known = [c for c in candidates if c is not None]
            owner = max(known, key=position.__getitem__) if known else None
        owners.append(owner)
        for tensor in node.output:
            produced_by[tensor] = index
    return owners


def _epilogue(
    graph: onnx.GraphProto, weight_index: int, owned: Sequence[int], scalars: set[str]
) -> Epilogue:
    """The shape-preserving nodes after ``graph.node[weight_index]``, renamed to read
    :data:`LAYER_OUTPUT` instead of the layer's own output."""
    layer_output = graph.node[weight_index].output[0]
    inside = {layer_output}
    kept: list[onnx.NodeProto] = []
    constants: dict[str, onnx.TensorProto] = {}
    side: list[str] = []
    init_by_name = {t.name: t for t in graph.initializer}
    for index in owned:
        node = graph.node[index]
        if node.op_type not in SHAPE_PRESERVING:
            break
        reads_inside = any(t in inside for t in node.input)
        others = [t for t in node.input if t and t not in inside]
        if not reads_inside or any(t in init_by_name and t not in scalars for t in others):
            break
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        del copy.input[:]
        for tensor in node.input:
            copy.input.append(LAYER_OUTPUT if tensor == layer_output else tensor)
            if tensor in init_by_name:
                constants[tensor] = init_by_name[tensor]
            elif tensor and tensor not in inside and tensor not in side:
                side.append(tensor)
        kept.append(copy)
        inside.update(node.output)
    payload = hashlib.sha256()
    for node in kept:
        plain = onnx.NodeProto()
        plain.CopyFrom(node)
        plain.name = ""
        payload.update(plain.SerializeToString())
    for name in sorted(constants):
        payload.update(constants[name].SerializeToString())
    return Epilogue(
        signature=payload.hexdigest()[:10] if kept else "",
        ops=tuple(node.op_type for node in kept),
        nodes=tuple(node.SerializeToString() for node in kept),
        constants=tuple(constants[name].SerializeToString() for name in sorted(constants)),
        side_inputs=tuple(side),
    )


def _constant_nodes_to_initializers(graph: onnx.GraphProto) -> None:
    """Turn ``Constant`` nodes with a tensor value into initializers (what exporters emit)."""
    keep = []
    for node in graph.node:
        value = next((a for a in node.attribute if a.name == "value"), None)
        if node.op_type == "Constant" and value is not None and value.type == value.TENSOR:
            tensor = onnx.TensorProto()
            tensor.CopyFrom(value.t)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)


def graph_epilogues(
    model_proto: onnx.ModelProto, layer_nodes: dict[str, str]
) -> dict[str, Epilogue]:
    """Epilogue of every layer in ``layer_nodes`` (``{onnx node name: layer name}``).

    Example:
        >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
        >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
        >>> from onnx import numpy_helper
        >>> w = numpy_helper.from_array(__import__("numpy").ones((2, 4), "float32"), "w")
        >>> nodes = [helper.make_node("Gemm", ["x", "w"], ["h"], transB=1, name="fc"),
        ...          helper.make_node("Relu", ["h"], ["y"], name="act")]
        >>> graph = helper.make_graph(nodes, "g", [x], [y], [w])
        >>> graph_epilogues(helper.make_model(graph), {"fc": "fc"})["fc"].ops
        ('Relu',)
    """
    model = onnx.ModelProto()
    model.CopyFrom(model_proto)
    graph = model.graph
    _constant_nodes_to_initializers(graph)
    scalars = {t.name for t in graph.initializer if _is_scalar(t)}
    owners = _owner_of_nodes(graph, layer_nodes)
    result: dict[str, Epilogue] = {}
    for index, node in enumerate(graph.node):
        layer = layer_nodes.get(node.name)
        if layer is None or layer in result:
            continue
        owned = [i for i, o in enumerate(owners) if o == layer and i > index]
        result[layer] = _epilogue(graph, index, owned, scalars)
    return result


def model_epilogues(
    model: nn.Module, example_input: torch.Tensor, specs: Sequence[LayerSpec]
) -> dict[str, Epilogue]:
    """Export ``model`` once and find the epilogue of every layer in ``specs``.

    Layers whose ONNX node cannot be matched (called twice, or exported as several nodes)
    get an empty epilogue and are timed alone.
    """
    with tempfile.TemporaryDirectory(prefix="autoprune-epilogue-") as tmp:
        path = export_onnx(model, example_input[:1], Path(tmp) / "model.onnx")
        layer_nodes: dict[str, str] = {}
        for spec in specs:
            try:
                names = onnx_node_names_for(path, [spec.name])[spec.name]
            except AutopruneError:
                continue
            if len(names) == 1:
                layer_nodes[names[0]] = spec.name
        proto = onnx.load(str(path))
    return graph_epilogues(proto, layer_nodes)


def append_epilogue(
    nodes: list[onnx.NodeProto],
    inits: list[onnx.TensorProto],
    inputs: list[onnx.ValueInfoProto],
    layer_output: str,
    layer_shape: Sequence[int],
    epilogue: Epilogue,
    quantization: tuple[str, str] | None = None,
) -> list[str]:
    """Add ``epilogue`` after a layer whose output is ``layer_output``; return the new outputs.

    Side inputs are declared with ``layer_shape`` (a residual operand has the layer's shape).
    With ``quantization`` (names of a scale and a uint8 zero point) the activations are uint8
    between operators, each operator wrapped in DequantizeLinear / QuantizeLinear as an int8
    QDQ model has them, which ONNX Runtime fuses into its integer kernels.
    """
    rename = {LAYER_OUTPUT: layer_output}
    produced: list[str] = []
    consumed: set[str] = set()
    activations = {layer_output}
    elem = TensorProto.FLOAT if quantization is None else TensorProto.UINT8
    for data in epilogue.constants:
        tensor = onnx.TensorProto()
        tensor.ParseFromString(data)
        inits.append(tensor)
    for side in epilogue.side_inputs:
        inputs.append(helper.make_tensor_value_info(side, elem, list(layer_shape)))
        activations.add(side)
    for data in epilogue.nodes:
        node = onnx.NodeProto()
        node.ParseFromString(data)
        renamed = [rename.get(t, t) for t in node.input]
        consumed.update(renamed)
        if quantization is not None:
            renamed = [
                _dequantized(t, nodes, quantization) if t in activations else t for t in renamed
            ]
        del node.input[:]
        node.input.extend(renamed)
        outputs = list(node.output)
        if quantization is not None:
            del node.output[:]
            node.output.extend(f"{t}_float" for t in outputs)
        nodes.append(node)
        if quantization is not None:
            scale, zero = quantization
            for t in outputs:
                nodes.append(helper.make_node("QuantizeLinear", [f"{t}_float", scale, zero], [t]))
        activations.update(outputs)
        produced.extend(outputs)
    if not produced:
        return [layer_output]
    return [t for t in produced if t not in consumed] or [produced[-1]]


def _dequantized(tensor: str, nodes: list[onnx.NodeProto], quantization: tuple[str, str]) -> str:
    """A DequantizeLinear of uint8 ``tensor`` appended to ``nodes``; its float output's name."""
    scale, zero = quantization
    name = f"{tensor}_dq{len(nodes)}"
    nodes.append(helper.make_node("DequantizeLinear", [tensor, scale, zero], [name]))
    return name
