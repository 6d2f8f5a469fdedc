"""Static int8 quantization of an exported ONNX model with ONNX Runtime.

Format: QDQ (QuantizeLinear/DequantizeLinear pairs around each quantized operator), which
ONNX Runtime fuses into integer kernels (QLinearConv, QLinearAdd, QGemm) when it loads the
model. Weights are symmetric int8, per output channel by default.

Activations default to uint8 ("U8S8"), measured on the 2-core AVX2 build machine (ORT 1.32,
1 thread, random-init zoo models, 28x28 input). With int8 activations ("S8S8") ONNX Runtime
converts activations to uint8 while optimising for x86 but skips tensors read by two
operators (residual branches), so the types around many Conv/Add nodes stop matching and
those stay float with a DequantizeLinear per run: ResNet-20 kept 12 of 21 convs in float and
ran slower than fp32 (batch 64: 133 ms vs 76 ms fp32), while U8S8 fused all 21 convs and 9
adds (41 ms, 1.8x faster than fp32; batch 1: 0.54 vs 0.92 ms). MobileNetV2-small: U8S8
18.6 ms vs fp32 40.2 ms at batch 64. On a plain chain (VGG-small) both fuse fully and run
alike. On CPUs without VNNI, U8S8 multiplies with VPMADDUBSW, whose 16-bit sums can
saturate; ``reduce_range=True`` (7-bit weights) avoids that if accuracy drops.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from autoprune.core.errors import AutopruneError
from autoprune.export._files import scratch_dir_beside

ARRAY_BATCH = 32
"""Batch size used to split a single calibration array into calibration batches."""

ActivationType = Literal["int8", "uint8"]


class BatchReader(CalibrationDataReader):
    """Feeds calibration batches to ONNX Runtime's calibrator, one ``get_next`` per batch.

    Example:
        >>> reader = BatchReader("input", [np.zeros((2, 1, 8, 8), np.float32)])
        >>> reader.get_next()["input"].shape, reader.get_next()
        ((2, 1, 8, 8), None)
    """

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self._input_name = input_name
        self._batches: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next batch as an input feed, or ``None`` when the batches are used up."""
        batch = next(self._batches, None)
        if batch is None:
            return None
        return {self._input_name: np.ascontiguousarray(batch, dtype=np.float32)}


def _calibration_batches(calibration: Iterable[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """Normalise the calibration argument to a non-empty list of float32 batches."""
    if isinstance(calibration, np.ndarray):
        starts = range(0, len(calibration), ARRAY_BATCH)
        batches = [calibration[i : i + ARRAY_BATCH] for i in starts]
    else:
        batches = [np.asarray(batch, dtype=np.float32) for batch in calibration]
    if not batches or any(batch.size == 0 for batch in batches):
        raise AutopruneError(
            "calibration is empty; pass a few batches of training inputs "
            "(e.g. 4 arrays of shape (32, 1, 28, 28)) or one array of samples"
        )
    return batches


def _check_nodes_exist(model: onnx.ModelProto, names: Sequence[str], path: Path) -> None:
    known = {node.name for node in model.graph.node}
    missing = [name for name in names if name not in known]
    if missing:
        raise AutopruneError(
            f"exclude_nodes names {missing} are not nodes of {path}; "
            "get them with onnx_node_names_for(model_path, layer_names)"
        )


def _preprocess(fp32_path: Path, prepared: Path) -> Path:
    """ONNX Runtime's pre-processing; the original model when it cannot handle the graph."""
    try:
        quant_pre_process(str(fp32_path), str(prepared))
    except Exception as exc:  # shape inference gaps only cost QDQ placement quality
        warnings.warn(
            f"quant_pre_process failed ({type(exc).__name__}: {exc}); quantizing without it",
            RuntimeWarning,
            stacklevel=3,
        )
        return fp32_path
    return prepared


def quantize_onnx_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    calibration: Iterable[np.ndarray] | np.ndarray,
    *,
    per_channel: bool = True,
    exclude_nodes: Sequence[str] = (),
    activation_type: ActivationType = "uint8",
    reduce_range: bool = False,
) -> Path:
    """Quantize an fp32 ONNX model to int8 (QDQ) with min/max calibration.

    The model first goes through ONNX Runtime's ``quant_pre_process`` (symbolic shape
    inference and graph clean-up), as ONNX Runtime recommends for QDQ; if that step
    fails the model is quantized as exported, with a warning. The result is written
    atomically.

    Args:
        fp32_path: The model from :func:`export_onnx`.
        out_path: Where to write the int8 model.
        calibration: Batches of inputs from the training distribution (each
            ``(batch, *sample_shape)``), or one array of samples split into batches of 32.
        per_channel: One weight scale per output channel (more accurate) instead of per tensor.
        exclude_nodes: ONNX node names kept in fp32, e.g. layers with more than 8 bits;
            see :func:`onnx_node_names_for`.
        activation_type: ``uint8`` (U8S8, default; fastest on x86 ONNX Runtime) or ``int8``.
        reduce_range: Quantize weights to 7 bits, against U8S8 saturation on CPUs without
            VNNI; costs a little accuracy.

    Returns:
        The path written.
    """
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if activation_type not in ("int8", "uint8"):
        raise AutopruneError(f"activation_type '{activation_type}' is unknown; use int8 or uint8")
    if not fp32_path.is_file():
        raise AutopruneError(f"fp32 model {fp32_path} does not exist; export it with export_onnx")
    model = onnx.load(str(fp32_path))
    _check_nodes_exist(model, exclude_nodes, fp32_path)
    reader = BatchReader(model.graph.input[0].name, _calibration_batches(calibration))
    with scratch_dir_beside(out_path) as scratch:
        prepared = _preprocess(fp32_path, scratch / "prepared.onnx")
        quantized = scratch / "quantized.onnx"
        quantize_static(
            str(prepared),
            str(quantized),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QInt8 if activation_type == "int8" else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=reduce_range,
            nodes_to_exclude=list(exclude_nodes),
            calibrate_method=CalibrationMethod.MinMax,
        )
        onnx.checker.check_model(str(quantized), full_check=True)
        quantized.replace(out_path)
    return out_path
