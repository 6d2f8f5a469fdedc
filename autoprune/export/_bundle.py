"""Write every deployment file of a compressed model in one all-or-nothing step.

What the bundle holds, and why:

- ``{stem}.pt``: the state dict (``torch.save(model.state_dict())``). A pickle of the whole
  module would tie the file to the exact Python classes and import paths; the state dict loads
  into the architecture rebuilt from the policy (``Policy`` applied to a fresh model).
- ``{stem}.onnx``: fp32 ONNX with a dynamic batch axis (see :func:`export_onnx`).
- ``{stem}.int8.onnx`` (``int8=True``): static int8 QDQ model (see :func:`quantize_onnx_int8`).
- ``{stem}.pt2`` (``exported_program=True``): a ``torch.export`` program with a dynamic batch
  axis, loadable without the model's Python code (``torch.export.load(p).module()``). It is
  opt-in: exporting takes seconds and the format is tied to the torch version. TorchScript
  (``torch.jit.trace``) is not written: it is deprecated in torch 2.13.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.modes import eval_mode
from autoprune.export._int8 import quantize_onnx_int8
from autoprune.export._onnx import export_onnx
from autoprune.system.atomic_dir import atomic_dir


def _save_exported_program(model: nn.Module, example_input: torch.Tensor, path: Path) -> None:
    """``torch.export`` the eval-mode model with a dynamic batch axis and save it."""
    device = next(model.parameters(), torch.empty(0)).device
    # torch.export specialises a dimension of size 1, so trace with at least two samples
    x = example_input.detach().to(device)
    x = x.repeat(2, *([1] * (x.dim() - 1))) if x.shape[0] == 1 else x
    with eval_mode(model):
        batch = torch.export.Dim("batch", min=1)
        program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(path))


def _write_all(
    model: nn.Module,
    example_input: torch.Tensor,
    folder: Path,
    stem: str,
    calibration: Iterable[np.ndarray] | np.ndarray | None,
    exclude_nodes: Sequence[str],
    exported_program: bool,
) -> dict[str, Path]:
    """Write the bundle's files into ``folder``; returns ``{kind: path}``."""
    paths = {"state_dict": folder / f"{stem}.pt", "onnx": folder / f"{stem}.onnx"}
    torch.save(model.state_dict(), paths["state_dict"])
    export_onnx(model, example_input, paths["onnx"])
    if calibration is not None:
        paths["int8_onnx"] = folder / f"{stem}.int8.onnx"
        quantize_onnx_int8(
            paths["onnx"], paths["int8_onnx"], calibration, exclude_nodes=exclude_nodes
        )
    if exported_program:
        paths["exported_program"] = folder / f"{stem}.pt2"
        _save_exported_program(model, example_input, paths["exported_program"])
    return paths


def export_bundle(
    model: nn.Module,
    example_input: torch.Tensor,
    out_dir: str | Path,
    *,
    calibration: Iterable[np.ndarray] | np.ndarray | None = None,
    int8: bool = False,
    stem: str = "model",
    exclude_nodes: Sequence[str] = (),
    exported_program: bool = False,
) -> dict[str, Path]:
    """Write ``{stem}.pt``, ``{stem}.onnx`` and optionally ``{stem}.int8.onnx``/``.pt2``.

    The folder is written whole (:func:`~autoprune.system.atomic_dir.atomic_dir`): on any
    error ``out_dir`` is as it was (a folder it had to create is not created). This stem's
    earlier files are replaced (also an ``.int8.onnx`` not written this time); other files
    in the folder are kept.

    Args:
        model: The compressed model (plain modules, quantization hooks removed).
        example_input: A batch of inputs, e.g. ``torch.zeros(1, 1, 28, 28)``.
        out_dir: Destination folder; created if missing.
        calibration: Input batches for int8 calibration (required when ``int8``).
        int8: Also write the static int8 ONNX model.
        stem: File name stem.
        exclude_nodes: ONNX node names kept in fp32 in the int8 model.
        exported_program: Also write a ``torch.export`` program (``.pt2``).

    Returns:
        ``{"state_dict", "onnx"[, "int8_onnx"][, "exported_program"]: path}`` inside ``out_dir``.
    """
    if not stem or Path(stem).name != stem or stem.startswith("."):
        raise AutopruneError(f"stem '{stem}' must be a plain file name such as 'model'")
    if int8 and calibration is None:
        raise AutopruneError("int8=True needs calibration batches; pass calibration=...")
    out_dir = Path(out_dir)
    replaced = [f"{stem}{suffix}" for suffix in (".pt", ".onnx", ".int8.onnx", ".pt2")]
    with atomic_dir(out_dir, replaces=replaced) as staging:
        staged = _write_all(
            model,
            example_input,
            staging,
            stem,
            calibration if int8 else None,
            exclude_nodes,
            exported_program,
        )
    return {kind: out_dir / path.name for kind, path in staged.items()}
