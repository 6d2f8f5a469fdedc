"""Which weights and other tensors survive structured pruning, found without pruning the model.

Channel pruning removes, per dependency group, the channels its ranking puts last
(:meth:`ChannelPruner.dropped`). torch-pruning's dependency graph says which output and
input indices of every Conv2d/Linear weight that removes (flattened inputs included); this
module asks the graph once per (group, kept count) and remembers the answer.

For the other tensors of the state dict (biases, BatchNorm parameters and buffers) one real
pruning of a copy per group shows how many elements each dimension loses per removed
channel; a tensor's pruned shape is its shape minus those losses, group by group.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch_pruning.pruner import function as tp_fn

from autoprune.compress.channel_plan import kept_count
from autoprune.compress.pruning import ChannelPruner
from autoprune.compress.sparsity import tensor_attr
from autoprune.core.policy import LayerPolicy

_OUT = (
    tp_fn.prune_conv_out_channels,
    tp_fn.prune_linear_out_channels,
    tp_fn.prune_depthwise_conv_out_channels,
)
_IN = (tp_fn.prune_conv_in_channels, tp_fn.prune_linear_in_channels)

Removed = dict[str, dict[int, np.ndarray]]
"""Per layer name, the removed indices by weight dimension (0: outputs, 1: inputs)."""
GroupKey = tuple[tuple[int, int], ...]
"""The (group, kept count) pairs of the groups that prune a layer or tensor."""


class ChannelSurvivors:
    """Survivors of channel pruning for a model traced by a :class:`ChannelPruner`.

    Args:
        model: The unpruned model (the one ``pruner`` traced); never changed.
        layers: Names of the coded (Conv2d/Linear) layers.
        pruner: The pruner the compressor uses (its ranking decides the survivors).
        round_to: Rounding of kept channel counts, as in the compressor's options.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 3))
        >>> pruner = ChannelPruner(net.eval(), torch.zeros(1, 1, 8, 8))
        >>> survivors = ChannelSurvivors(net, ["0", "2"], pruner)
        >>> kept = survivors.group_kept({"0": LayerPolicy(keep_ratio=0.5)})
        >>> survivors.extra_shapes(kept)["1.weight"], survivors.weight_shape("2", kept)
        ((2,), (2, 2, 3, 3))
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str],
        pruner: ChannelPruner,
        round_to: int | None = None,
    ) -> None:
        self._model = model
        self._pruner = pruner
        self._round_to = round_to
        self._layers = tuple(layers)
        self._modules = {module: name for name, module in pruner.graph.model.named_modules()}
        self._shapes = {
            n: tuple(tensor_attr(model.get_submodule(n), "weight").shape) for n in self._layers
        }
        coded = {f"{name}.weight" for name in self._layers}
        state = model.state_dict()
        self.extras: dict[str, tuple[tuple[int, ...], np.dtype]] = {
            key: (tuple(value.shape), _numpy_dtype(value))
            for key, value in state.items()
            if key not in coded
        }
        self._removed: dict[tuple[int, int], Removed] = {}
        self._extra_loss: dict[int, dict[str, dict[int, float]]] = {}

    def group_kept(self, layers: Mapping[str, LayerPolicy]) -> list[int]:
        """Channels each dependency group keeps under the per-layer settings ``layers``."""
        keep = {name: lp.keep_ratio for name, lp in layers.items() if lp.keep_ratio < 1.0}
        return self._pruner.plan.group_kept(keep, self._round_to)

    def _pruned_groups(self, kept: Sequence[int]) -> list[tuple[int, int]]:
        infos = self._pruner.plan.group_info
        return [
            (g, k) for g, (info, k) in enumerate(zip(infos, kept, strict=True)) if k < info.size
        ]

    def removed(self, group: int, kept: int) -> Removed:
        """Indices of every coded weight that group ``group`` removes to keep ``kept``."""
        key = (group, kept)
        if key not in self._removed:
            self._removed[key] = self._query(group, kept)
        return self._removed[key]

    def _query(self, group: int, kept: int) -> Removed:
        graph = self._pruner.graph
        root = graph.model.get_submodule(self._pruner.plan.group_info[group].root)
        handler = graph.get_pruner_of_module(root).prune_out_channels
        items = graph.get_pruning_group(root, handler, self._pruner.dropped(group, kept))
        removed: dict[str, dict[int, set[int]]] = {}
        for item in items:
            name = self._modules.get(item.dep.target.module)
            if name not in self._shapes:
                continue
            if item.dep.handler in _OUT:
                dim = 0
            elif item.dep.handler in _IN and _plain_inputs(self._model.get_submodule(name)):
                dim = 1
            else:
                continue
            removed.setdefault(name, {}).setdefault(dim, set()).update(int(i) for i in item.idxs)
        return {
            name: {dim: np.array(sorted(idxs), dtype=np.int64) for dim, idxs in dims.items()}
            for name, dims in removed.items()
        }

    def layer_key(self, name: str, kept: Sequence[int]) -> GroupKey:
        """The pruned groups that touch layer ``name`` under ``kept`` (its memo key)."""
        return tuple(gk for gk in self._pruned_groups(kept) if name in self.removed(*gk))

    def kept_indices(self, name: str, key: GroupKey) -> tuple[np.ndarray, np.ndarray]:
        """Surviving output and input indices of layer ``name``'s weight."""
        shape = self._shapes[name]
        lost: dict[int, list[np.ndarray]] = {0: [], 1: []}
        for group, kept in key:
            for dim, idxs in self.removed(group, kept).get(name, {}).items():
                lost[dim].append(idxs)
        return tuple(  # type: ignore[return-value]
            np.setdiff1d(np.arange(shape[dim]), np.concatenate(lost[dim] or [np.zeros(0, int)]))
            for dim in (0, 1)
        )

    def weight_shape(self, name: str, kept: Sequence[int]) -> tuple[int, ...]:
        """Shape of layer ``name``'s weight after pruning."""
        out_idx, in_idx = self.kept_indices(name, self.layer_key(name, kept))
        return (out_idx.size, in_idx.size, *self._shapes[name][2:])

    def extra_shapes(self, kept: Sequence[int]) -> dict[str, tuple[int, ...]]:
        """Shape of every other state-dict tensor after pruning (state-dict order)."""
        shapes = {key: list(shape) for key, (shape, _) in self.extras.items()}
        infos = self._pruner.plan.group_info
        for group, k in self._pruned_groups(kept):
            removed = infos[group].size - k
            for key, losses in self._losses(group).items():
                for dim, per_channel in losses.items():
                    shapes[key][dim] -= round(per_channel * removed)
        return {key: tuple(shape) for key, shape in shapes.items()}

    def _losses(self, group: int) -> dict[str, dict[int, float]]:
        """Elements each tensor dimension loses per channel group ``group`` removes."""
        if group not in self._extra_loss:
            self._extra_loss[group] = self._probe(group)
        return self._extra_loss[group]

    def _probe(self, group: int) -> dict[str, dict[int, float]]:
        """Prune a copy of the model by group ``group`` alone and compare tensor shapes."""
        info = self._pruner.plan.group_info[group]
        kept = kept_count(0.5, info.size, info.channel_groups)
        if kept >= info.size:
            return {}
        target = copy.deepcopy(self._model).eval()
        self._pruner.prune(target, {info.controller: kept / info.size}, None)
        removed = info.size - kept
        pruned = target.state_dict()
        losses: dict[str, dict[int, float]] = {}
        for key, (shape, _) in self.extras.items():
            after = tuple(pruned[key].shape)
            for dim, (old, new) in enumerate(zip(shape, after, strict=True)):
                if old != new:
                    losses.setdefault(key, {})[dim] = (old - new) / removed
        return losses


def _plain_inputs(module: nn.Module) -> bool:
    """Whether the weight's dimension 1 indexes the layer's input channels one to one."""
    return not isinstance(module, nn.Conv2d) or module.groups == 1


def _numpy_dtype(value: torch.Tensor) -> np.dtype:
    """The numpy dtype the writer stores a tensor with (little-endian)."""
    return np.dtype(str(value.dtype).removeprefix("torch.")).newbyteorder("<")
