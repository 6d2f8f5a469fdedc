"""The fixed validation samples a search scores every policy on, and apply scores again.

They are the first ``count`` samples of the validation split, fixed by position, so the
search and ``apply`` score the same images. Small subsets are held in memory (in the
channels-last layout the folded convolutions run fastest on); a subset larger than
:data:`RESIDENT_BYTES` is streamed from the dataset for every evaluation, so memory does not
grow with the data.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.splits import Batch, DataSplits
from autoprune.core.training import batches_accuracy, model_device

RESIDENT_BYTES = 256 * 2**20
"""Largest validation subset (its float32 inputs) held in memory between evaluations."""
EVAL_BATCH = 256
"""Images per forward pass when measuring accuracy (fastest on the 2-core reference CPU)."""


class ValidationSubset:
    """The first ``count`` validation samples (all when None), in memory or streamed.

    Example:
        >>> x, y = torch.zeros(6, 1, 2, 2), torch.arange(6) % 2
        >>> data = DataSplits.from_tensors("toy", x, y, x, y, x, y, 2)
        >>> subset = ValidationSubset(data, 4)
        >>> subset.count, subset.resident, len(subset.fingerprint)
        (4, True, 16)
    """

    def __init__(self, data: DataSplits, count: int | None) -> None:
        self.data = data
        self.limit = count
        size = data.size("val")
        sample_bytes = 4 * math.prod(data.input_shape)
        expected = count if size is None else (size if count is None else min(count, size))
        self.resident = data.in_memory("val") or (
            expected is not None and expected * sample_bytes <= RESIDENT_BYTES
        )
        self._x: torch.Tensor | None = None
        self._y: torch.Tensor | None = None
        if self.resident:
            x, y = data.head("val", count)
            self._x, self._y = _fast_layout(x), torch.as_tensor(y)
            self.count, self.fingerprint = len(x), data_fingerprint(x, self._y)
        else:
            self.count, self.fingerprint = self._stream_fingerprint()
        if self.count == 0:
            raise AutopruneError(
                f"dataset '{data.name}': the validation split is empty; give it samples"
            )

    def _stream_fingerprint(self) -> tuple[int, str]:
        """Samples and content hash of a streamed subset, equal to :func:`data_fingerprint`
        of the same samples held in memory (one pass; two for a stream of unknown length)."""
        size = self.data.size("val")
        count = None if size is None else (size if self.limit is None else min(size, self.limit))
        if count is None:
            count = sum(len(xb) for xb, _ in self.data.loader("val", EVAL_BATCH, limit=self.limit))
        digest = hashlib.sha256(str((count, *self.data.input_shape)).encode())
        targets = []
        for xb, yb in self.data.loader("val", EVAL_BATCH, limit=self.limit):
            digest.update(xb.detach().cpu().contiguous().numpy().tobytes())
            targets.append(torch.as_tensor(yb).detach().cpu().contiguous())
        for target in targets:  # targets are small: labels, or a user's per-sample values
            digest.update(target.numpy().tobytes())
        return count, digest.hexdigest()[:16]

    def batches(self, device: torch.device | None = None) -> Iterator[Batch]:
        """``(inputs, targets)`` in order, inputs channels-last and on ``device``."""
        if self._x is not None and self._y is not None:
            x, y = self._x, self._y
            if device is not None and x.device != device:
                self._x, self._y = x.to(device), y.to(device)  # kept there for the next call
                x, y = self._x, self._y
            for start in range(0, len(x), EVAL_BATCH):
                yield x[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH]
            return
        for xb, yb in self.data.loader("val", EVAL_BATCH, limit=self.limit):
            xb = _fast_layout(xb)
            yield (xb, yb) if device is None else (xb.to(device), torch.as_tensor(yb).to(device))

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The subset as tensors (read from the dataset when streamed: it must fit)."""
        if self._x is not None and self._y is not None:
            return self._x, self._y
        x, y = self.data.head("val", self.limit)
        return x, torch.as_tensor(y)

    def top1(self, model: nn.Module) -> float:
        """Top-1 accuracy of an eval-mode ``model`` in inference mode."""
        return batches_accuracy(model, self.batches(model_device(model)))


def data_fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    """A short hash of inputs and targets: tells whether two runs scored the same samples."""
    digest = hashlib.sha256(str(tuple(x.shape)).encode())
    digest.update(x.detach().cpu().contiguous().numpy().tobytes())
    digest.update(y.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _fast_layout(x: torch.Tensor) -> torch.Tensor:
    """Images in channels-last memory (what the folded convolutions run fastest on)."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
