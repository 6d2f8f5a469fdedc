"""Channel importance criteria: which channels of a dependency group to keep.

Each criterion is a tiny strategy object with one ``__call__(group) -> Tensor`` that returns
one score per channel of a torch-pruning :class:`~torch_pruning.Group` (higher = keep), so any
of them can also be handed to torch-pruning itself. Criteria that need data
(``needs_data = True``) get calibration batches through :meth:`calibrate` before scoring.

========== ===================================================================
name       criterion
========== ===================================================================
l1         L1 norm of the group's weights (Li et al. 2017; summed over coupled layers)
l2         L2 norm (squared) of the group's weights
bn_scale   |gamma| of the BatchNorm layers (network slimming, Liu et al. 2017)
fpgm       distance to the other filters, geometric median (He et al. 2019)
taylor     first-order Taylor |w * dL/dw| from calibration batches (Molchanov et al. 2019)
activation mean |input activation| of the consuming layers on calibration batches
apoz       1 - average percentage of zeros of those activations (Hu et al. 2016)
random     seeded random scores (a baseline)
========== ===================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice
from typing import TypeAlias

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn
from torch_pruning.pruner import function as tp_fn

from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.core.modes import eval_mode

# torch_pruning ships no type hints, so the alias stands for Any to mypy.
Importance: TypeAlias = tp.importance.Importance
"""The interface every criterion implements: ``__call__(group) -> Tensor | None``."""

Batch = torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]


def split_batch(batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(inputs, targets)`` of a batch given as a tensor or an ``(inputs, targets)`` pair."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        targets = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
        return batch[0], targets
    raise AutopruneError(
        f"calibration batch of type {type(batch).__name__} is not supported; "
        "pass tensors or (inputs, targets) pairs"
    )


class DataImportance(Importance):
    """Base of the criteria that score channels from calibration batches."""

    needs_data = True

    def calibrate(self, model: nn.Module, batches: Iterable[Batch], num_batches: int = 4) -> None:
        """Collect what :meth:`__call__` needs from up to ``num_batches`` batches."""
        raise NotImplementedError


class L1Importance(tp.importance.GroupMagnitudeImportance):
    """Sum of |w| over every coupled weight of a channel (filters, BN, next layer's inputs).

    Example:
        >>> L1Importance().p
        1
    """

    needs_data = False

    def __init__(self) -> None:
        super().__init__(p=1, group_reduction="mean", normalizer=None)


class L2Importance(tp.importance.GroupMagnitudeImportance):
    """Sum of w² over every coupled weight of a channel.

    Example:
        >>> L2Importance().p
        2
    """

    needs_data = False

    def __init__(self) -> None:
        super().__init__(p=2, group_reduction="mean", normalizer=None)


class BNScaleImportance(tp.importance.BNScaleImportance):
    """|gamma| of the group's BatchNorm layers; groups without BatchNorm score ``None``.

    Example:
        >>> BNScaleImportance().target_types[0].__name__
        '_BatchNorm'
    """

    needs_data = False

    def __init__(self) -> None:
        super().__init__(group_reduction="mean", normalizer=None)


class FPGMImportance(tp.importance.FPGMImportance):
    """Summed distance of each filter to the others: filters near the geometric median go first.

    Example:
        >>> FPGMImportance().p
        2
    """

    needs_data = False

    def __init__(self) -> None:
        super().__init__(p=2, group_reduction="mean", normalizer=None)


class TaylorImportance(tp.importance.TaylorImportance, DataImportance):
    """|w · dL/dw| with gradients of the cross-entropy on calibration batches.

    Batches without targets use the model's own predictions as targets. :meth:`calibrate`
    leaves the gradients in the parameters (pruning slices them with the weights).

    Example:
        >>> TaylorImportance().needs_data
        True
    """

    def __init__(self) -> None:
        super().__init__(group_reduction="mean", normalizer=None)

    def calibrate(self, model: nn.Module, batches: Iterable[Batch], num_batches: int = 4) -> None:
        """Accumulate parameter gradients of the loss (model in eval mode)."""
        model.zero_grad(set_to_none=True)
        device = next(model.parameters()).device
        seen = 0
        with eval_mode(model), torch.enable_grad():
            for batch in islice(batches, num_batches):
                inputs, targets = split_batch(batch)
                logits = model(inputs.to(device))
                if targets is None:
                    targets = logits.detach().argmax(dim=1)
                F.cross_entropy(logits, targets.to(device)).backward()
                seen += 1
        _require_batches(seen, "taylor")


class ActivationImportance(DataImportance):
    """Statistics of the activations that enter the layers consuming a group's channels.

    ``mode="mean"`` scores a channel by its mean absolute activation; ``mode="apoz"`` by the
    fraction of non-zero activations (1 - APoZ), which suits channels followed by a ReLU.

    Example:
        >>> ActivationImportance(mode="apoz").mode
        'apoz'
    """

    def __init__(self, mode: str = "mean") -> None:
        if mode not in ("mean", "apoz"):
            raise AutopruneError(f"activation mode '{mode}' is unknown; use 'mean' or 'apoz'")
        self.mode = mode
        self._stats: dict[nn.Module, torch.Tensor] = {}

    def calibrate(self, model: nn.Module, batches: Iterable[Batch], num_batches: int = 4) -> None:
        """Average the per-input-channel statistic of every Conv2d/Linear over the batches."""
        sums: dict[nn.Module, torch.Tensor] = {}
        counts: dict[nn.Module, int] = {}

        def hook(module: nn.Module, args: tuple) -> None:
            x = args[0].detach()
            stat = x.abs() if self.mode == "mean" else (x != 0).float()
            channel_dim = 1 if isinstance(module, nn.Conv2d) else stat.dim() - 1
            dims = [d for d in range(stat.dim()) if d != channel_dim]
            value = stat.mean(dim=dims).double()
            sums[module] = sums.get(module, 0) + value
            counts[module] = counts.get(module, 0) + 1

        layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        handles = [m.register_forward_pre_hook(hook) for m in layers]
        device = next(model.parameters()).device
        seen = 0
        try:
            with eval_mode(model), torch.no_grad():
                for batch in islice(batches, num_batches):
                    model(split_batch(batch)[0].to(device))
                    seen += 1
        finally:
            for handle in handles:
                handle.remove()
        _require_batches(seen, self.mode if self.mode == "apoz" else "activation")
        self._stats = {m: (sums[m] / counts[m]).float() for m in sums}

    @torch.no_grad()
    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        """Mean statistic over the consuming layers, one score per root channel."""
        size = len(group[0].idxs)
        total = torch.zeros(size)
        layers = 0
        for item in group:
            stats = self._stats.get(item.dep.target.module)
            if stats is None or item.dep.handler not in _INPUT_HANDLERS:
                continue
            if any(r is None for r in item.root_idxs):
                continue
            roots = torch.tensor(item.root_idxs)
            values = stats[torch.tensor(item.idxs)].cpu()
            per_root = torch.zeros(size).scatter_add_(0, roots, values)
            hits = torch.zeros(size).scatter_add_(0, roots, torch.ones_like(values))
            total += per_root / hits.clamp(min=1)
            layers += 1
        return total / layers if layers else None


_INPUT_HANDLERS = (
    tp_fn.prune_conv_in_channels,
    tp_fn.prune_linear_in_channels,
    tp_fn.prune_depthwise_conv_out_channels,
)


class RandomImportance(Importance):
    """Seeded uniform random scores: the baseline every criterion should beat.

    Example:
        >>> RandomImportance(seed=1).seed
        1
    """

    needs_data = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._generator = torch.Generator().manual_seed(seed)

    def __call__(self, group: tp.Group) -> torch.Tensor:
        """One random score per root channel."""
        return torch.rand(len(group[0].idxs), generator=self._generator)


def _require_batches(seen: int, name: str) -> None:
    if seen == 0:
        raise AutopruneError(
            f"importance '{name}' needs calibration batches but got none; "
            "pass calib_batches with at least one batch"
        )


_REGISTRY: dict[str, Callable[[], Importance]] = {
    "l1": L1Importance,
    "l2": L2Importance,
    "bn_scale": BNScaleImportance,
    "fpgm": FPGMImportance,
    "taylor": TaylorImportance,
    "activation": lambda: ActivationImportance("mean"),
    "apoz": lambda: ActivationImportance("apoz"),
    "random": RandomImportance,
}


def importance_names() -> list[str]:
    """Names accepted by :func:`make_importance`.

    Example:
        >>> importance_names()[:3]
        ['l1', 'l2', 'bn_scale']
    """
    return list(_REGISTRY)


def make_importance(name: str) -> Importance:
    """A fresh criterion by name (see :func:`importance_names`).

    Raises:
        AutopruneError: for an unknown name.
    """
    if name not in _REGISTRY:
        raise unknown_name("importance", name, importance_names())
    return _REGISTRY[name]()


def needs_data(importance: Importance) -> bool:
    """Whether ``importance`` must be calibrated on batches before scoring."""
    return bool(getattr(importance, "needs_data", False))
