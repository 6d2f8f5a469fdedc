"""What each layer really gets under a policy, once coupled layers follow their controller.

A policy stores one *decision* per layer, but layers whose output channels are removed
together (a residual branch and its add partner, a depthwise conv and its producer) keep
the channels their group's *controller* decides, whatever their own keep ratio says. The
*effective* view holds the truth: the keep ratio the pruned model has (kept / original
output channels), the layer's sparsity and bits, and the controller it follows.

A search records this view in every policy's ``meta["effective"]`` (a mapping of layer name
to :meth:`EffectiveLayer.to_dict`); readers that do not know it ignore it, so the stored
decisions, their validation and the architecture fingerprint are unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from autoprune.core.policy import LayerPolicy

EFFECTIVE_KEY = "effective"
"""Key of a policy's ``meta`` that holds the effective view of its layers."""
FOLLOW_MARK = "↳"
"""Marker put before the controller's name in tables (``layer1.0.conv2 ↳ conv1``)."""


class ChannelPlanLike(Protocol):
    """What :func:`effective_layers` needs of :class:`autoprune.compress.ChannelPlan`."""

    shapes: dict[str, tuple[int, int]]

    def pruned_shapes(
        self, keep: Mapping[str, float], round_to: int | None = None
    ) -> dict[str, tuple[int, int]]:
        """``(in, out)`` channels of every layer after pruning by ``keep``."""
        ...

    def controller(self, name: str) -> str | None:
        """The layer whose keep ratio decides ``name``'s outputs (``None``: never pruned)."""
        ...


@dataclass(frozen=True)
class EffectiveLayer:
    """One layer as the compressed model has it.

    Attributes:
        keep_ratio: Output channels kept over the original output channels.
        sparsity: Fraction of the kept weights zeroed (the layer's own decision).
        w_bits: Weight bits (32: float).
        a_bits: Input activation bits (32: float).
        follows: The controller whose keep ratio decided this layer's channels, or ``None``
            when the layer decides for itself (or is never pruned).
        channels: ``(kept, original)`` output channels, when known.

    Example:
        >>> layer = EffectiveLayer(0.5, 0.0, 32, 32, follows="conv1", channels=(8, 16))
        >>> layer.to_dict()["follows"], EffectiveLayer.from_dict(layer.to_dict()) == layer
        ('conv1', True)
    """

    keep_ratio: float
    sparsity: float
    w_bits: int
    a_bits: int
    follows: str | None = None
    channels: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form; ``follows`` and ``channels`` only when set."""
        data: dict[str, Any] = {
            "keep_ratio": round(self.keep_ratio, 6),
            "sparsity": self.sparsity,
            "w_bits": self.w_bits,
            "a_bits": self.a_bits,
        }
        if self.channels is not None:
            data["channels"] = list(self.channels)
        if self.follows is not None:
            data["follows"] = self.follows
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EffectiveLayer:
        """Parse :meth:`to_dict`'s form; raise ``ValueError``/``TypeError``/``KeyError``."""
        channels = data.get("channels")
        follows = data.get("follows")
        return cls(
            keep_ratio=float(data["keep_ratio"]),
            sparsity=float(data["sparsity"]),
            w_bits=int(data["w_bits"]),
            a_bits=int(data["a_bits"]),
            follows=None if follows is None else str(follows),
            channels=None if channels is None else (int(channels[0]), int(channels[1])),
        )

    def label(self, name: str) -> str:
        """``name`` with the follow marker when the layer follows a controller."""
        return name if self.follows is None else f"{name} {FOLLOW_MARK} {self.follows}"


def decided(layer: LayerPolicy) -> EffectiveLayer:
    """The effective view of a decision alone (no channel plan known)."""
    return EffectiveLayer(layer.keep_ratio, layer.sparsity, layer.w_bits, layer.a_bits)


def effective_layers(
    layers: Mapping[str, LayerPolicy], plan: ChannelPlanLike, round_to: int | None = None
) -> dict[str, EffectiveLayer]:
    """Every layer of ``layers`` as the plan prunes it (see :class:`EffectiveLayer`).

    Args:
        layers: A policy's decisions, keyed by layer name.
        plan: The model's channel plan (:class:`autoprune.compress.ChannelPlan`).
        round_to: The rounding of kept channel counts the evaluation uses.
    """
    keep = {n: lp.keep_ratio for n, lp in layers.items() if lp.keep_ratio < 1.0}
    shapes = plan.pruned_shapes(keep, round_to)
    out: dict[str, EffectiveLayer] = {}
    for name, layer in layers.items():
        if name not in shapes:
            out[name] = decided(layer)
            continue
        kept, total = shapes[name][1], plan.shapes[name][1]
        controller = plan.controller(name)
        follows = controller if controller not in (None, name) else None
        out[name] = EffectiveLayer(
            kept / total, layer.sparsity, layer.w_bits, layer.a_bits, follows, (kept, total)
        )
    return out


def recorded_layers(
    layers: Mapping[str, LayerPolicy], meta: Mapping[str, Any]
) -> dict[str, EffectiveLayer]:
    """The effective view recorded in ``meta`` for every layer of ``layers``.

    A layer the record lacks (or cannot be read for: an older or hand-edited policy) is
    shown as decided.
    """
    record = meta.get(EFFECTIVE_KEY)
    record = record if isinstance(record, Mapping) else {}
    return {name: _read(record.get(name)) or decided(lp) for name, lp in layers.items()}


def _read(entry: object) -> EffectiveLayer | None:
    """One recorded entry, or ``None`` when it is missing or malformed."""
    if not isinstance(entry, Mapping):
        return None
    try:
        return EffectiveLayer.from_dict(entry)
    except (KeyError, TypeError, ValueError, IndexError):
        return None
