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

import torch
import torch_pruning as tp
from torch import nn

from autoprune.compress.channel_plan import (
    LAYER_TYPES,
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
from autoprune.errors import AutopruneError
from autoprune.modes import eval_mode

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
    graph = build_graph(model, example_input)
    groups = graph_groups(graph)
    plan = ChannelPlan.from_graph(graph, groups, execution_order(model, example_input))
    kept = plan.group_kept(keep, round_to)
    criterion = _criterion(importance, calib_batches)
    todo = [i for i, info in enumerate(plan.group_info) if kept[i] < info.size]
    tracks = {name: list(range(out)) for name, (_, out) in plan.shapes.items()}
    if todo:
        if needs_data(criterion):
            criterion.calibrate(model, calib_batches)
        drops = {i: _select(criterion, groups[i], plan.group_info[i], kept[i]) for i in todo}
        for i in todo:
            _prune_group(graph, plan.group_info[i], drops[i], tracks)
        if isinstance(criterion, DataImportance):
            model.zero_grad(set_to_none=True)
    shapes = {name: _shape(model.get_submodule(name)) for name in plan.layers}
    assert shapes == plan.pruned_shapes(keep, round_to), "channel plan and pruning disagree"
    _check_runs(model, example_input)
    return PruneReport(
        shapes=shapes,
        kept_out={n: tuple(t) for n, t in tracks.items() if len(t) < plan.shapes[n][1]},
        input_pruned=tuple(n for n in plan.layers if shapes[n][0] < plan.shapes[n][0]),
        plan=plan,
    )


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


def _select(criterion: Importance, group: tp.Group, info: GroupInfo, kept: int) -> list[int]:
    """Root-channel indices to remove: the lowest scores, symmetric across conv groups."""
    blocks = info.channel_groups
    width = info.size // blocks
    per_block = _scores(criterion, group, info).view(blocks, width).mean(dim=0)
    ranking = torch.argsort(per_block, descending=True, stable=True)
    dropped = sorted(int(i) for i in ranking[kept // blocks :])
    return [d + b * width for b in range(blocks) for d in dropped]


def _prune_group(
    graph: tp.DependencyGraph, info: GroupInfo, drop: list[int], tracks: dict[str, list[int]]
) -> None:
    """Prune one group and record which original output channels each member keeps."""
    root = graph.model.get_submodule(info.root)
    pruner = graph.get_pruner_of_module(root)
    group = graph.get_pruning_group(root, pruner.prune_out_channels, drop)
    names = {m: n for n, m in graph.model.named_modules() if isinstance(m, LAYER_TYPES)}
    for item in group:
        name = names.get(item.dep.target.module)
        if name is not None and item.dep.handler in _OUT_HANDLERS:
            removed = set(item.idxs)
            tracks[name] = [c for pos, c in enumerate(tracks[name]) if pos not in removed]
    group.prune()


def _shape(module: nn.Module) -> tuple[int, int]:
    if isinstance(module, nn.Conv2d):
        return module.in_channels, module.out_channels
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
