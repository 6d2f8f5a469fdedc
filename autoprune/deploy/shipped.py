"""A one-shot method's own retrained model, read back from its coded file to be shipped.

Deep Compression and ADMM retrain the model while they compress it; the result is their
``trained_model.apz`` in the search's run folder, and the accuracy the search prints is that
model's. ``autoprune apply RUN`` ships it (``--reapply-policy`` applies the policy to the
original weights instead). :func:`load_trained` rebuilds it with its masks and codebooks as
parametrizations, so that it can be retrained further, trimmed and coded again exactly like
a model the evaluator compressed: each k-means layer gets its stored centroids and codes
(:class:`~autoprune.compress.quantize.KMeansWeightQuant`), so its effective weight equals the
file's decoded weight bit for bit.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from autoprune.coding import read_apz, state_dict_from_apz
from autoprune.compress.quantize import KMeansWeightQuant, LinearWeightQuant
from autoprune.compress.sparsity import SparsityMask, compressible_layer
from autoprune.core.errors import AutopruneError
from autoprune.core.qtensor import QuantizedWeight

TRAINED_MODEL = "trained_model.apz"
"""The one-shot method's own retrained model, coded, in the search's run folder."""


def _parametrize(module: nn.Module, coded: QuantizedWeight) -> None:
    """Mask and quantizer on ``module.weight`` reproducing ``coded`` exactly."""
    mask = None if coded.mask is None else torch.from_numpy(coded.mask).reshape(coded.shape)
    if mask is not None:
        parametrize.register_parametrization(module, "weight", SparsityMask(mask))
    if coded.scheme == "kmeans":
        centroids = torch.from_numpy(coded.codebook.astype("float32"))
        codes = torch.from_numpy(coded.codes.astype("int64")).reshape(coded.shape)
        quant: nn.Module = KMeansWeightQuant(centroids, codes, mask, coded.bits)
        parametrize.register_parametrization(module, "weight", quant)
    elif coded.scheme == "linear":
        parametrize.register_parametrization(module, "weight", LinearWeightQuant(coded.bits, mask))


def parametrized_from_coded(model: nn.Module, weights: Mapping[str, QuantizedWeight]) -> None:
    """Put each coded layer's mask and quantizer on ``model`` (its weights already loaded)."""
    for name, coded in weights.items():
        _parametrize(compressible_layer(model, name), coded)


def load_trained(model: nn.Module, path: Path) -> nn.Module:
    """A copy of ``model`` holding the coded model in ``path``, masks and codebooks attached.

    Raises:
        AutopruneError: When the file does not fit the model (another architecture).
    """
    weights, _, _ = read_apz(path)
    trained = copy.deepcopy(model).eval()
    try:
        trained.load_state_dict(state_dict_from_apz(path))
    except RuntimeError as exc:
        raise AutopruneError(
            f"{path} does not fit the model ({exc}); pass the model the search compressed, "
            "or --reapply-policy to compress the original weights again"
        ) from None
    parametrized_from_coded(trained, weights)
    return trained.eval()
