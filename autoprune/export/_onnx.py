"""Export a PyTorch model to ONNX and find the ONNX nodes of a torch layer.

The export uses PyTorch's TorchScript-based exporter (``dynamo=False``): it needs no extra
package (the torch.export-based exporter, the default since torch 2.9, needs ``onnxscript``),
it folds eval-mode BatchNorm into the preceding Conv, and it names every node after the
module scope it came from (``/layer1/layer1.0/conv1/Conv``), which is what
:func:`onnx_node_names_for` reads.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from pathlib import Path

import onnx
import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.modes import eval_mode
from autoprune.export._files import write_bytes_atomic

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
MIN_OPSET = 13
"""Per-channel QuantizeLinear/DequantizeLinear (int8 export) needs opset 13 or later."""

WEIGHT_OPS = ("Conv", "Gemm", "MatMul")
"""ONNX operators that carry the weight of a torch Conv2d or Linear layer."""


def export_onnx(
    model: nn.Module,
    example_input: torch.Tensor,
    path: str | Path,
    *,
    opset: int = 17,
    dynamic_batch: bool = True,
) -> Path:
    """Export ``model`` in eval mode to an ONNX file with input ``input`` and output ``logits``.

    The file is checked with ``onnx.checker`` (with shape inference) and written atomically:
    on any error an existing file at ``path`` is left untouched. Training flags of the model
    are restored afterwards.

    Args:
        model: The network (any ``nn.Module`` whose forward takes one tensor).
        example_input: A batch of inputs, e.g. shape ``(1, 1, 28, 28)``; its values are unused.
        path: Where to write the ``.onnx`` file; missing parent folders are created.
        opset: ONNX opset version, 13 or later.
        dynamic_batch: Make the batch axis of input and output symbolic (``batch``).

    Returns:
        The path written.
    """
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 1:
        raise AutopruneError(
            "example_input must be a torch.Tensor with a batch axis, e.g. torch.zeros(1, 1, 28, 28)"
        )
    if opset < MIN_OPSET:
        raise AutopruneError(f"opset {opset} is too old; use opset {MIN_OPSET} or later (e.g. 17)")
    path = Path(path)
    data = _export_bytes(model, example_input, opset, dynamic_batch)
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
    return path


def _export_bytes(
    model: nn.Module, example_input: torch.Tensor, opset: int, dynamic_batch: bool
) -> bytes:
    """Run the TorchScript-based exporter into memory, model in eval mode."""
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    device = next(model.parameters(), torch.empty(0)).device
    buffer = io.BytesIO()
    try:
        with eval_mode(model), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                (example_input.detach().to(device),),
                # torch annotates f as a path, but the TorchScript exporter writes to any file
                buffer,  # type: ignore[arg-type]
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
                opset_version=opset,
                do_constant_folding=True,
            )
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise AutopruneError(
            f"cannot export the model to ONNX ({type(exc).__name__}: {first_line}); "
            "replace the unsupported operation or remove training-only hooks before exporting"
        ) from exc
    return buffer.getvalue()


def _unqualified(module_path: str) -> str:
    """The scope label the exporter gives a module: its name from the last non-numeric atom.

    ``layer1`` -> ``layer1``; ``layer1.0`` -> ``layer1.0``; ``features.3.conv.0`` -> ``conv.0``.
    """
    atoms = module_path.split(".")
    for index in range(len(atoms) - 1, -1, -1):
        if not atoms[index].isnumeric():
            return ".".join(atoms[index:])
    return module_path


def _scope_of_layer(layer_name: str) -> tuple[str, ...]:
    """The scope labels of every module from the root down to ``layer_name``."""
    atoms = layer_name.split(".")
    return tuple(_unqualified(".".join(atoms[: i + 1])) for i in range(len(atoms)))


def _scope_of_node(node_name: str) -> tuple[str, ...]:
    """``/layer1/layer1.0/conv1/Conv`` -> ``("layer1", "layer1.0", "conv1")``."""
    return tuple(node_name.strip("/").split("/")[:-1])


def onnx_node_names_for(model_path: str | Path, layer_names: Iterable[str]) -> dict[str, list[str]]:
    """Map torch module names to the Conv/Gemm/MatMul nodes of a file from :func:`export_onnx`.

    A layer's node is found through the module scope in its name. Layers called more than
    once per forward pass, or called by a module other than their parent, get exporter-made
    names that cannot be matched reliably; they raise like unknown names.

    Args:
        model_path: The fp32 ONNX file.
        layer_names: Module names as in ``model.named_modules()`` (``LayerSpec.name``).

    Returns:
        ``{layer_name: [node names]}`` in graph order, one entry per requested layer.
    """
    nodes = [n for n in onnx.load(str(model_path)).graph.node if n.op_type in WEIGHT_OPS]
    by_scope: dict[tuple[str, ...], list[str]] = {}
    for node in nodes:
        by_scope.setdefault(_scope_of_node(node.name), []).append(node.name)
    found: dict[str, list[str]] = {}
    for layer in layer_names:
        names = by_scope.get(_scope_of_layer(layer))
        if not names:
            known = ", ".join(n.name for n in nodes[:6]) or "none"
            raise AutopruneError(
                f"layer '{layer}' has no {'/'.join(WEIGHT_OPS)} node in {model_path} "
                f"(nodes: {known}{', ...' if len(nodes) > 6 else ''}); "
                "use a Conv2d/Linear name from model.named_modules() of the exported model"
            )
        found[layer] = names
    return found
