"""A compressed model frozen into plain weights plus their coded form, ready for ``.apz``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from autoprune.coding import ApzReport, HuffmanMode, Layout, extras_from_state_dict, write_apz
from autoprune.compress import export_quantized, squash
from autoprune.core.qtensor import QuantizedWeight


def effective_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict ``model`` will have once squashed, without changing it.

    Parametrized tensors appear under their plain key with their effective value; the
    parametrizations' own entries (latent weights, masks, codebooks) are left out. Unlike
    squashing a deep copy, this never touches the parametrized class ``model`` shares.
    """
    state = {k: v for k, v in model.state_dict().items() if "parametrizations." not in k}
    for prefix, module in model.named_modules():
        if parametrize.is_parametrized(module):
            for tensor_name in module.parametrizations:
                key = f"{prefix}.{tensor_name}" if prefix else tensor_name
                state[key] = getattr(module, tensor_name).detach()
    return state


@dataclass
class CodedModel:
    """A model whose coded layers equal ``weights[name].dequantize()`` bit for bit.

    Attributes:
        model: The model: squashed by :meth:`freeze` (plain parameters), or still
            parametrized when built directly from :func:`export_quantized` output.
        weights: The coded weight of every compressed layer, by module name.

    Example:
        >>> coded = CodedModel.freeze(model, ["fc1", "fc2"])  # doctest: +SKIP
        >>> coded.write_apz("model.apz").compression_ratio  # doctest: +SKIP
        41.7
    """

    model: nn.Module
    weights: dict[str, QuantizedWeight]

    @classmethod
    def freeze(cls, model: nn.Module, layer_names: Iterable[str]) -> CodedModel:
        """Export the named layers' coded weights, then squash ``model`` in place."""
        weights = export_quantized(model, list(layer_names))
        return cls(squash(model), weights)

    @property
    def yang_bits(self) -> int:
        """Σ bits × nonzeros over the coded layers (Yang et al. 2020), in bits."""
        return sum(q.bits * q.nonzeros for q in self.weights.values())

    def write_apz(
        self,
        path: str | Path,
        *,
        huffman: HuffmanMode = True,
        layout: Layout = "auto",
        metadata: dict | None = None,
    ) -> ApzReport:
        """Write the coded weights and every other tensor of the model to ``path``.

        ``huffman`` and ``layout`` are those of :func:`autoprune.coding.write_apz`.
        """
        extra = extras_from_state_dict(effective_state_dict(self.model), list(self.weights))
        return write_apz(
            path, self.weights, extra, huffman=huffman, layout=layout, metadata=metadata
        )
