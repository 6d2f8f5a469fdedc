"""Which layers are pruned together, and the layer shapes a keep-ratio dict produces.

A :class:`ChannelPlan` is computed once per model from torch-pruning's dependency graph and
then answers "what are the (in, out) channels of every layer under these keep ratios?"
without touching the model, in well under a millisecond for the zoo models. The
environment and the cost model call it thousands of times per search; :func:`prune_channels`
(in :mod:`autoprune.compress.pruning`) derives the same plan from the same graph, so its real
shapes always equal :meth:`ChannelPlan.pruned_shapes`.

Coupling rule:
    A *group* is a set of Conv2d/Linear layers whose output channels must be removed
    together (residual adds, depthwise convolutions and the layer feeding them). The group's
    kept count is decided by its *controller*, the member that runs first in the forward pass;
    the keep ratios given for the other members are ignored. Depthwise convolutions are never
    controllers: they follow their producer.

Kept-count rule (:func:`kept_count`):
    ``round(ratio * channels)`` in units of ``lcm(groups, round_to)``, at least one unit,
    never more than the original count, and exactly the original count for ratio 1.

Frozen groups (never pruned): the classifier's group, a group that reaches the model output,
and a group whose index mapping torch-pruning cannot express as a per-channel count (for
example a concatenation feeding a grouped convolution).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning.pruner import function as tp_fn

from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.core.modes import eval_mode, restored_modes
from autoprune.core.specs import LayerSpec

LAYER_TYPES = (nn.Conv2d, nn.Linear)

Shape = tuple[int, int]


def kept_count(ratio: float, total: int, unit: int = 1) -> int:
    """Channels kept of ``total`` for a keep ``ratio``, in multiples of ``unit`` (or ``total``).

    Example:
        >>> kept_count(0.5, 16), kept_count(0.3, 64, unit=8), kept_count(0.01, 16)
        (8, 16, 1)
        >>> kept_count(1.0, 18, unit=8), kept_count(0.9, 18, unit=8)
        (18, 16)
    """
    if ratio >= 1.0 or unit >= total:
        return total
    units = math.floor(ratio * total / unit + 0.5)
    return min(total, max(1, units) * unit)


@dataclass(frozen=True)
class GroupInfo:
    """One dependency group of a model.

    Attributes:
        root: Name of the layer torch-pruning uses as the group's root.
        members: Conv2d/Linear layers whose output channels the group removes, in run order.
        controller: The member whose keep ratio decides the group (the first to run).
        size: Channels of the group (output channels of the root).
        channel_groups: Grouped-convolution constraint: kept channels are pruned symmetrically
            in this many equal blocks (1 when no grouped convolution takes part).
        frozen: Why the group is never pruned, or ``None`` when it is prunable.
    """

    root: str
    members: tuple[str, ...]
    controller: str
    size: int
    channel_groups: int = 1
    frozen: str | None = None


def execution_order(model: nn.Module, example_input: torch.Tensor) -> list[str]:
    """Names of the Conv2d/Linear layers in the order they first run on ``example_input``."""
    order: list[str] = []
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, LAYER_TYPES):

            def hook(mod: nn.Module, args: tuple, name: str = name) -> None:
                if name not in order:
                    order.append(name)

            hooks.append(module.register_forward_pre_hook(hook))
    try:
        with eval_mode(model), torch.no_grad():
            model(example_input)
    finally:
        for handle in hooks:
            handle.remove()
    return order


def build_graph(model: nn.Module, example_input: torch.Tensor) -> tp.DependencyGraph:
    """torch-pruning's dependency graph of ``model``; training modes are left as they were."""
    for name, module in model.named_modules():
        if isinstance(module, LAYER_TYPES) and nn.utils.parametrize.is_parametrized(module):
            raise AutopruneError(
                f"layer '{name}' carries a parametrization (sparsity or quantization); "
                "prune channels before adding sparsity or quantization"
            )
    with restored_modes(model), torch.enable_grad():
        try:
            return tp.DependencyGraph().build_dependency(model, example_input, verbose=False)
        except (ZeroDivisionError, IndexError) as exc:  # its channel-mapping inference
            raise AutopruneError(
                f"torch-pruning cannot map the channels of this model ({type(exc).__name__} in "
                "its index mapping, e.g. ShuffleNet's channel shuffle); it cannot be compressed "
                "yet: choose another model"
            ) from exc


def graph_groups(graph: tp.DependencyGraph) -> list[tp.Group]:
    """Every dependency group rooted at a Conv2d/Linear layer, with all channels as indices."""
    return list(graph.get_all_groups(root_module_types=LAYER_TYPES))


def _touch_kind(handler: object) -> str | None:
    """``out``, ``in`` or ``both`` (depthwise) for a group item on a Conv2d/Linear layer."""
    if handler == tp_fn.prune_depthwise_conv_out_channels:
        return "both"
    if handler in (tp_fn.prune_conv_out_channels, tp_fn.prune_linear_out_channels):
        return "out"
    if handler in (tp_fn.prune_conv_in_channels, tp_fn.prune_linear_in_channels):
        return "in"
    return None


def _multiplicity(root_idxs: Sequence[int | None], size: int) -> int | None:
    """Layer channels per root channel, or ``None`` when the mapping is not uniform."""
    counts = Counter(root_idxs)
    if None in counts or len(counts) != size:
        return None
    values = set(counts.values())
    return values.pop() if len(values) == 1 else None


class ChannelPlan:
    """Dependency groups of one model and the shapes that keep ratios produce.

    Build it once per model (it traces the model) and query :meth:`pruned_shapes` freely.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
        >>> plan = ChannelPlan.build(model, torch.zeros(1, 1, 8, 8))
        >>> plan.prunable, plan.classifier
        (('0',), '2')
        >>> plan.pruned_shapes({"0": 0.5})
        {'0': (1, 4), '2': (4, 4)}
    """

    def __init__(
        self,
        shapes: Mapping[str, Shape],
        groups: Sequence[GroupInfo],
        touches: Mapping[str, Sequence[tuple[int, str, int]]],
    ) -> None:
        """Use :meth:`build`; ``touches[name]`` lists ``(group, in|out|both, per_channel)``."""
        self.layers: tuple[str, ...] = tuple(shapes)
        self.shapes: dict[str, Shape] = dict(shapes)
        self.group_info: tuple[GroupInfo, ...] = tuple(groups)
        self.classifier: str = self.layers[-1]
        self._touches = {name: tuple(t) for name, t in touches.items()}
        self._controller_of: dict[str, str] = {}
        for info in self.group_info:
            if info.frozen is None:
                for member in info.members:
                    self._controller_of[member] = info.controller

    @classmethod
    def build(cls, model: nn.Module, example_input: torch.Tensor) -> ChannelPlan:
        """Trace ``model`` once on ``example_input`` (a batch, e.g. ``(1, 1, 28, 28)``)."""
        order = execution_order(model, example_input)
        graph = build_graph(model, example_input)
        return cls.from_graph(graph, graph_groups(graph), order)

    @classmethod
    def from_graph(
        cls, graph: tp.DependencyGraph, groups: Sequence[tp.Group], order: Sequence[str]
    ) -> ChannelPlan:
        """Analyse the groups of an already-built dependency graph (see :meth:`build`)."""
        if not order:
            raise AutopruneError("the model runs no Conv2d/Linear layer; nothing can be pruned")
        names = {module: name for name, module in graph.model.named_modules()}
        rank = {name: i for i, name in enumerate(order)}
        modules = {name: graph.model.get_submodule(name) for name in order}
        shapes = {name: _layer_shape(modules[name]) for name in order}
        infos: list[GroupInfo] = []
        touches: dict[str, list[tuple[int, str, int]]] = {name: [] for name in order}
        for index, group in enumerate(groups):
            info, group_touches = _analyse_group(graph, group, names, rank, order[-1])
            infos.append(info)
            for name, kind, per_channel in group_touches:
                touches[name].append((index, kind, per_channel))
        return cls(shapes, infos, touches)

    @property
    def groups(self) -> list[list[str]]:
        """Members of every prunable group (layers whose outputs are pruned together), run order."""
        rank = {name: i for i, name in enumerate(self.layers)}
        live = [g for g in self.group_info if g.frozen is None]
        return [list(g.members) for g in sorted(live, key=lambda g: rank[g.controller])]

    @property
    def prunable(self) -> tuple[str, ...]:
        """Controllers of the prunable groups, in run order: the layers whose ratio matters."""
        controllers = {g.controller for g in self.group_info if g.frozen is None}
        return tuple(name for name in self.layers if name in controllers)

    def controller(self, name: str) -> str | None:
        """The layer whose keep ratio decides ``name``'s outputs; ``None`` if never pruned."""
        if name not in self.shapes:
            raise unknown_name("layer", name, list(self.layers))
        return self._controller_of.get(name)

    @property
    def coupled(self) -> dict[str, str]:
        """Layers that follow another layer's keep ratio, mapped to that controller (run order).

        Their own keep ratios are ignored: :meth:`pruned_shapes` gives them their controller's
        kept count (see :meth:`autoprune.core.policy.Policy.effective`).
        """
        return {
            name: self._controller_of[name]
            for name in self.layers
            if self._controller_of.get(name, name) != name
        }

    def check_keep(self, keep: Mapping[str, float]) -> None:
        """Raise :class:`AutopruneError` on an unknown layer, a bad ratio or a pruned classifier."""
        for name, ratio in keep.items():
            if name not in self.shapes:
                raise unknown_name("layer", name, list(self.layers))
            if not 0.0 < ratio <= 1.0:  # also rejects NaN
                raise AutopruneError(
                    f"layer '{name}': keep ratio {ratio} is outside (0, 1]; "
                    "use a fraction of channels to keep such as 0.5"
                )
            if name == self.classifier and ratio < 1.0:
                raise AutopruneError(
                    f"layer '{name}' is the classifier: its outputs cannot be pruned "
                    f"(keep ratio {ratio}); set its keep ratio to 1.0"
                )

    def group_kept(self, keep: Mapping[str, float], round_to: int | None = None) -> list[int]:
        """Channels kept in every group (``size`` for frozen ones), after validating ``keep``."""
        self.check_keep(keep)
        if round_to is not None and (
            isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1
        ):
            raise AutopruneError(f"round_to={round_to!r} is invalid; use a positive int or None")
        kept = []
        for info in self.group_info:
            ratio = keep.get(info.controller, 1.0)
            if info.frozen is not None or ratio >= 1.0:
                kept.append(info.size)
                continue
            unit = math.lcm(info.channel_groups, round_to or 1)
            kept.append(kept_count(ratio, info.size, unit))
        return kept

    def pruned_shapes(
        self, keep: Mapping[str, float], round_to: int | None = None
    ) -> dict[str, Shape]:
        """``(in_channels, out_channels)`` of every layer after pruning by ``keep``.

        Args:
            keep: Keep ratio per layer name; missing layers keep everything. Only the ratios of
                :attr:`prunable` layers have an effect (see the module's coupling rule).
            round_to: Round kept counts to multiples of this (AMC uses 8), or ``None``.
        """
        kept = self.group_kept(keep, round_to)
        removed = [info.size - k for info, k in zip(self.group_info, kept, strict=True)]
        result = {}
        for name, (in_ch, out_ch) in self.shapes.items():
            for group, kind, per_channel in self._touches[name]:
                cut = removed[group] * per_channel
                if kind != "in":
                    out_ch -= cut
                if kind != "out":
                    in_ch -= cut
            result[name] = (in_ch, out_ch)
        return result


def _layer_shape(module: nn.Module) -> Shape:
    if isinstance(module, nn.Conv2d):
        return module.in_channels, module.out_channels
    assert isinstance(module, nn.Linear)  # the plan's layers are Conv2d/Linear
    return module.in_features, module.out_features


def _analyse_group(
    graph: tp.DependencyGraph,
    group: tp.Group,
    names: Mapping[nn.Module, str],
    rank: Mapping[str, int],
    classifier: str,
) -> tuple[GroupInfo, list[tuple[str, str, int]]]:
    """Members, controller, constraints and per-layer channel multiplicities of one group."""
    root = names[group[0].dep.target.module]
    size = len(group[0].idxs)
    touches: list[tuple[str, str, int]] = []
    frozen: str | None = None
    channel_groups = 1
    for item in group:
        target = item.dep.target
        if target.type == tp.ops.OPTYPE.OUTPUT:
            frozen = "reaches the model output"
        elif _reads_untraced_tensor(target):
            frozen = "is added to or concatenated with the model input or a constant tensor"
        elif target.type == tp.ops.OPTYPE.PARAMETER:  # ViT: its forward fixes the width
            frozen = "reaches a bare parameter (a class token, position embedding or scale)"
        module = target.module
        if not isinstance(module, LAYER_TYPES) or module not in names:
            continue
        kind = _touch_kind(item.dep.handler)
        if kind is None:
            continue
        per_channel = _multiplicity(item.root_idxs, size)
        if per_channel is None:
            frozen = f"channels of '{names[module]}' do not map one-to-one onto the group"
            continue
        touches.append((names[module], kind, per_channel))
        if isinstance(module, nn.Conv2d) and module.groups > 1:
            reason = _grouped_conv_problem(module, kind, item, size)
            if reason is not None:
                frozen = f"'{names[module]}' {reason}"
            elif kind != "both":
                channel_groups = math.lcm(channel_groups, module.groups)
    members = tuple(sorted((n for n, k, _ in touches if k != "in"), key=rank.__getitem__))
    if classifier in members:
        frozen = "contains the classifier"
    if not members:
        members, frozen = (root,), frozen or "has no Conv2d/Linear output to prune"
    controller = next((m for m in members if not _is_depthwise(graph, m)), members[0])
    info = GroupInfo(root, members, controller, size, channel_groups, frozen)
    return info, touches


def _reads_untraced_tensor(node: tp.Node) -> bool:
    """Whether an add/concat node also reads a tensor torch-pruning cannot prune."""
    if node.type not in (tp.ops.OPTYPE.ELEMENTWISE, tp.ops.OPTYPE.CONCAT):
        return False
    inputs = getattr(node.grad_fn, "next_functions", ())
    return len(inputs) > 1 and any(fn is None for fn, _ in inputs)


def _is_depthwise(graph: tp.DependencyGraph, name: str) -> bool:
    module = graph.model.get_submodule(name)
    return isinstance(module, nn.Conv2d) and 1 < module.groups == module.out_channels


def _grouped_conv_problem(module: nn.Conv2d, kind: str, item: object, size: int) -> str | None:
    """Why a grouped/depthwise conv stops the group from being pruned, or ``None``."""
    if kind == "both":
        if module.in_channels != module.out_channels:
            return "is a depthwise conv with a channel multiplier"
        if not item.dep.target.inputs:  # type: ignore[attr-defined]
            return "is a depthwise conv reading the model input"
        return None
    width = module.out_channels if kind == "out" else module.in_channels
    idxs = list(item.idxs)  # type: ignore[attr-defined]
    if width != size or idxs != list(item.root_idxs):  # type: ignore[attr-defined]
        return "is a grouped conv whose channels are shared with other groups"
    return None


def pruned_specs(
    specs: Sequence[LayerSpec],
    plan: ChannelPlan,
    keep: Mapping[str, float],
    round_to: int | None = None,
) -> list[LayerSpec]:
    """``specs`` with channels, groups, MACs and params recomputed for the pruned shapes.

    Layers the plan does not know are returned unchanged. Linear layers after a flatten get
    ``in_features = kept channels x spatial positions`` from the plan.
    """
    shapes = plan.pruned_shapes(keep, round_to)
    return [_resize_spec(s, *shapes[s.name]) if s.name in shapes else s for s in specs]


def _resize_spec(spec: LayerSpec, in_ch: int, out_ch: int) -> LayerSpec:
    if (in_ch, out_ch) == (spec.in_channels, spec.out_channels):
        return spec
    kh, kw = spec.kernel
    old_weights = spec.weight_count
    has_bias = spec.params > old_weights
    groups = out_ch if spec.kind == "depthwise" else spec.groups
    kind = spec.kind
    if kind == "grouped" and groups == in_ch == out_ch:
        kind = "depthwise"  # what discover_layers reports for the pruned layer
    weights = out_ch * (in_ch // groups) * kh * kw
    if spec.kind == "linear":
        positions = spec.macs // max(1, spec.in_channels * spec.out_channels)
        macs = in_ch * out_ch * positions
    else:
        macs = weights * spec.out_hw[0] * spec.out_hw[1]
    return replace(
        spec,
        kind=kind,
        in_channels=in_ch,
        out_channels=out_ch,
        groups=groups,
        macs=macs,
        params=weights + (out_ch if has_bias else 0),
    )
