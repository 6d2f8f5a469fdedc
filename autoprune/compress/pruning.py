"""Structured channel pruning: physically remove output channels, keeping the model consistent.

Channels are removed from real Conv2d/Linear/BatchNorm tensors (a smaller, faster model, not
masks). torch-pruning's dependency graph keeps residual adds, depthwise convolutions,
concatenations, grouped convolutions and flatten→linear layers consistent. Which layers are
pruned together, and how many channels each keeps, follows :mod:`autoprune.compress.channel_plan`
exactly (the controller of each group decides), so :meth:`ChannelPlan.pruned_shapes` predicts
the result without pruning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from autoprune.compress.channel_plan import (
    ChannelPlan,
    GroupInfo,
    build_graph,
    execution_order,
    graph_groups,
)
from autoprune.compress.importance import (
    Batch,
    DataImportance,
    Importance,
    L1Importance,
    make_importance,
    needs_data,
)
from autoprune.core.errors import AutopruneError
from autoprune.core.modes import eval_mode

_OUT_HANDLERS = (
    tp.prune_conv_out_channels,
    tp.prune_linear_out_channels,
    tp.prune_depthwise_conv_out_channels,
)


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune_channels_report` did.

    Attributes:
        shapes: ``(in_channels, out_channels)`` of every Conv2d/Linear layer after pruning.
        kept_out: For each layer whose outputs shrank, the original output-channel indices
            that remain (ascending); feed it to
            :func:`autoprune.compress.recovery.reconstruct_next_layer`.
        input_pruned: Layers whose input channels shrank, in run order (the layers worth
            reconstructing).
        plan: The channel plan the pruning followed.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
        >>> report = prune_channels_report(model, torch.zeros(1, 1, 8, 8), {"0": 0.5})
        >>> report.shapes, report.input_pruned, len(report.kept_out["0"])
        ({'0': (1, 2), '2': (2, 2)}, ('2',), 2)
    """

    shapes: dict[str, tuple[int, int]]
    kept_out: dict[str, tuple[int, ...]]
    input_pruned: tuple[str, ...]
    plan: ChannelPlan


def prune_channels(
    model: nn.Module,
    example_input: torch.Tensor,
    keep: Mapping[str, float],
    *,
    importance: str | Importance = "l1",
    round_to: int | None = None,
    calib_batches: Iterable[Batch] | None = None,
) -> nn.Module:
    """Remove output channels of ``model`` in place and return it (callers deep-copy first).

    Args:
        model: The network; it is traced once on ``example_input``.
        example_input: One input batch, e.g. ``torch.zeros(1, 1, 28, 28)``.
        keep: Keep ratio in (0, 1] per Conv2d/Linear name; missing layers keep everything.
            Only group controllers' ratios count (see :class:`ChannelPlan`); the classifier
            must keep 1.0.
        importance: A criterion name (:func:`~autoprune.compress.importance.importance_names`)
            or a torch-pruning style importance object.
        round_to: Round kept channel counts to multiples of this (AMC used 8); at least one.
        calib_batches: Batches (tensors or ``(inputs, targets)``) for data-driven criteria.

    Raises:
        AutopruneError: for an unknown layer, a ratio outside (0, 1], a pruned classifier, or
            a data-driven criterion without batches.
    """
    prune_channels_report(
        model,
        example_input,
        keep,
        importance=importance,
        round_to=round_to,
        calib_batches=calib_batches,
    )
    return model


def prune_channels_report(
    model: nn.Module,
    example_input: torch.Tensor,
    keep: Mapping[str, float],
    *,
    importance: str | Importance = "l1",
    round_to: int | None = None,
    calib_batches: Iterable[Batch] | None = None,
) -> PruneReport:
    """Like :func:`prune_channels`, returning a :class:`PruneReport` of what was removed."""
    pruner = ChannelPruner(model, example_input, importance=importance, calib_batches=calib_batches)
    return pruner.prune(model, keep, round_to)


class ChannelPruner:
    """Prunes a model, or copies of it, by many keep-ratio dicts while tracing it only once.

    The dependency graph (torch-pruning), the :class:`ChannelPlan` and every group's channel
    ranking are computed from ``model`` at construction. :meth:`prune` then removes channels
    from any model with the same module names and shapes (``model`` itself or a deep copy)
    by calling torch-pruning's handlers on that model's modules, with the indices the graph
    gives for the original channel numbering. All indices of a module are removed in one
    call, so groups never see each other's renumbering.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
        >>> pruner = ChannelPruner(net, torch.zeros(1, 1, 8, 8))
        >>> import copy
        >>> pruner.prune(copy.deepcopy(net), {"0": 0.5}).shapes
        {'0': (1, 2), '2': (2, 2)}
        >>> net[0].out_channels
        4
    """

    def __init__(
        self,
        model: nn.Module,
        example_input: torch.Tensor,
        *,
        importance: str | Importance = "l1",
        calib_batches: Iterable[Batch] | None = None,
    ) -> None:
        self.example_input = example_input
        self.graph = build_graph(model, example_input)
        self.groups = graph_groups(self.graph)
        order = execution_order(model, example_input)
        self.plan = ChannelPlan.from_graph(self.graph, self.groups, order)
        self._modules = {m: n for n, m in model.named_modules()}
        self._params = {p: n for n, p in model.named_parameters()}
        self._ranking = self._rank(_criterion(importance, calib_batches), model, calib_batches)
        self._spent = False

    def _rank(
        self, criterion: Importance, model: nn.Module, calib_batches: Iterable[Batch] | None
    ) -> dict[int, torch.Tensor]:
        """Per prunable group, its channel blocks from most to least important."""
        live = [i for i, info in enumerate(self.plan.group_info) if info.frozen is None]
        if not live:
            return {}
        if needs_data(criterion):
            criterion.calibrate(model, calib_batches)
        ranking = {}
        for i in live:
            info = self.plan.group_info[i]
            scores = _scores(criterion, self.groups[i], info)
            per_block = scores.view(info.channel_groups, -1).mean(dim=0)
            ranking[i] = torch.argsort(per_block, descending=True, stable=True)
        if isinstance(criterion, DataImportance):
            model.zero_grad(set_to_none=True)
        return ranking

    def dropped(self, group: int, kept: int) -> list[int]:
        """Root-channel indices group ``group`` removes to keep ``kept`` channels (ascending)."""
        info = self.plan.group_info[group]
        width = info.size // info.channel_groups
        per_block = kept // info.channel_groups
        dropped = sorted(int(i) for i in self._ranking[group][per_block:])
        return [d + b * width for b in range(info.channel_groups) for d in dropped]

    def prune(
        self, target: nn.Module, keep: Mapping[str, float], round_to: int | None = None
    ) -> PruneReport:
        """Remove channels of ``target`` (the traced model or a copy of it) in place.

        Raises:
            AutopruneError: for an unknown layer, a ratio outside (0, 1] or a pruned
                classifier.
        """
        if self._spent:
            raise AutopruneError(
                "this ChannelPruner already pruned the model it traced; build a new one"
            )
        plan = self.plan
        kept = plan.group_kept(keep, round_to)
        calls: dict[tuple[str, object], _Call] = {}
        tracks = {name: list(range(out)) for name, (_, out) in plan.shapes.items()}
        for i, info in enumerate(plan.group_info):
            if kept[i] < info.size:
                self._collect(i, self.dropped(i, kept[i]), calls, tracks)
        modules = dict(target.named_modules())
        self._spent = calls != {} and target is self.graph.model
        for call in calls.values():
            call.run(target, modules)
        shapes = {name: _shape(modules[name]) for name in plan.layers}
        assert shapes == plan.pruned_shapes(keep, round_to), "channel plan and pruning disagree"
        _check_runs(target, self.example_input)
        return PruneReport(
            shapes=shapes,
            kept_out={n: tuple(t) for n, t in tracks.items() if len(t) < plan.shapes[n][1]},
            input_pruned=tuple(n for n in plan.layers if shapes[n][0] < plan.shapes[n][0]),
            plan=plan,
        )

    def _collect(
        self,
        group: int,
        drop: list[int],
        calls: dict[tuple[str, object], _Call],
        tracks: dict[str, list[int]],
    ) -> None:
        """Add the handler calls of one group (original channel numbering) to ``calls``."""
        root = self.graph.model.get_submodule(self.plan.group_info[group].root)
        pruner = self.graph.get_pruner_of_module(root)
        items = self.graph.get_pruning_group(root, pruner.prune_out_channels, drop)
        for item in items:
            target = item.dep.target
            if isinstance(target.module, nn.Parameter):
                name, is_param = self._params.get(target.module), True
            else:
                name, is_param = self._modules.get(target.module), False
            if name is None:
                continue  # an operation node (add, concat, flatten): nothing to slice
            key = (name, item.dep.handler)
            call = calls.setdefault(
                key, _Call(name, is_param, item.dep.handler, target.pruning_dim, set())
            )
            call.idxs.update(int(i) for i in item.idxs)
            if name in tracks and item.dep.handler in _OUT_HANDLERS:
                removed = set(int(i) for i in item.idxs)
                tracks[name] = [c for c in tracks[name] if c not in removed]


@dataclass
class _Call:
    """One torch-pruning handler call on a module (or parameter) of the target model."""

    name: str
    is_param: bool
    handler: Any  # a bound method of a torch-pruning pruner (untyped); see run()
    pruning_dim: int
    idxs: set[int]

    def run(self, target: nn.Module, modules: Mapping[str, nn.Module]) -> None:
        self.handler.__self__.pruning_dim = self.pruning_dim
        if not self.is_param:
            self.handler(modules[self.name], sorted(self.idxs))
            return
        owner, _, attr = self.name.rpartition(".")
        parent = modules[owner] if owner else target
        setattr(parent, attr, self.handler(getattr(parent, attr), sorted(self.idxs)))


def channel_scores(
    model: nn.Module,
    example_input: torch.Tensor,
    layer: str,
    importance: str | Importance = "l1",
    calib_batches: Iterable[Batch] | None = None,
) -> torch.Tensor:
    """Importance of each channel of the group that prunes ``layer``'s outputs (model untouched).

    Scores are indexed like the output channels of the group's root layer (``layer`` itself
    unless it is coupled to an earlier layer); higher means more important.
    """
    graph = build_graph(model, example_input)
    groups = graph_groups(graph)
    plan = ChannelPlan.from_graph(graph, groups, execution_order(model, example_input))
    plan.controller(layer)  # raises for an unknown name
    index = next((i for i, g in enumerate(plan.group_info) if layer in g.members), None)
    if index is None:
        raise AutopruneError(f"layer '{layer}' has no output channels to score")
    criterion = _criterion(importance, calib_batches)
    if needs_data(criterion):
        criterion.calibrate(model, calib_batches)
    scores = _scores(criterion, groups[index], plan.group_info[index])
    if isinstance(criterion, DataImportance):
        model.zero_grad(set_to_none=True)
    return scores


def _criterion(importance: str | Importance, calib_batches: Iterable[Batch] | None) -> Importance:
    """The criterion object; raise early when it needs data and none was given."""
    criterion = make_importance(importance) if isinstance(importance, str) else importance
    if needs_data(criterion) and calib_batches is None:
        name = importance if isinstance(importance, str) else type(importance).__name__
        raise AutopruneError(
            f"importance '{name}' needs calibration data; pass calib_batches "
            "(a few training batches) or use a weight-based criterion such as 'l1'"
        )
    return criterion


def _scores(criterion: Importance, group: tp.Group, info: GroupInfo) -> torch.Tensor:
    """One finite score per root channel; magnitude (L1) when the criterion has no opinion."""
    scores = criterion(group)
    if scores is None:
        scores = L1Importance()(group)
    scores = torch.nan_to_num(scores.detach().float().cpu().flatten(), nan=0.0)
    assert scores.numel() == info.size, f"importance gave {scores.numel()} scores for {info.size}"
    return scores


def _shape(module: nn.Module) -> tuple[int, int]:
    if isinstance(module, nn.Conv2d):
        return module.in_channels, module.out_channels
    assert isinstance(module, nn.Linear)  # the plan's layers are Conv2d/Linear
    return module.in_features, module.out_features


def _check_runs(model: nn.Module, example_input: torch.Tensor) -> None:
    try:
        with eval_mode(model), torch.no_grad():
            model(example_input)
    except RuntimeError as exc:
        raise AutopruneError(
            f"the pruned model no longer runs ({str(exc).splitlines()[0]}); this architecture "
            "has a dependency torch-pruning cannot follow: keep the layers involved at 1.0"
        ) from exc
