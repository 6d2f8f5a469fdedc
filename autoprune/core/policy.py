"""Compression policies: per-layer keep ratio, bit-widths and sparsity, stored as JSON.

A policy is data keyed by module name (like ``torch.ao``'s ``tensor_fqn``) plus a
fingerprint of the architecture it was made for, so it can be applied to a fresh copy of
the same model and refused for any other.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from autoprune.core.bounded import brief, loads_json
from autoprune.core.effective import (
    EFFECTIVE_KEY,
    ChannelPlanLike,
    EffectiveLayer,
    effective_layers,
    recorded_layers,
)
from autoprune.core.errors import AutopruneError
from autoprune.core.specs import LayerSpec

SCHEMA_VERSION = 1
MAX_POLICY_BYTES = 16 << 20
"""Largest policy file read (a real one is a few KB)."""
FLOAT_BITS = 32
"""Bit-width meaning "not quantized" (fp32)."""

Quantizer = Literal["linear", "kmeans"]
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "keep_ratio": ((int, float), "a number such as 0.5"),
    "w_bits": ((int,), "an integer such as 8 (32 for float)"),
    "a_bits": ((int,), "an integer such as 8 (32 for float)"),
    "sparsity": ((int, float), "a number such as 0.9"),
    "quantizer": ((str,), "linear or kmeans"),
}
"""JSON types of the fields of a layer policy, and how to write them."""


@dataclass(frozen=True)
class LayerPolicy:
    """What to do to one layer.

    Attributes:
        keep_ratio: Fraction of output channels kept, in (0, 1].
        w_bits: Weight bits, 1..8, or 32 for float.
        a_bits: Bits of the layer's input activations, 2..8, or 32 for float.
        sparsity: Fraction of the remaining weights zeroed by magnitude, in [0, 1).
        quantizer: ``linear`` (symmetric per-channel) or ``kmeans`` (weight sharing).
    """

    keep_ratio: float = 1.0
    w_bits: int = FLOAT_BITS
    a_bits: int = FLOAT_BITS
    sparsity: float = 0.0
    quantizer: Quantizer = "linear"

    def check(self, name: str) -> None:
        """Raise :class:`AutopruneError` when a field is out of range."""
        if not (0.0 < self.keep_ratio <= 1.0) or math.isnan(self.keep_ratio):
            raise AutopruneError(
                f"layer {brief(name)}: keep_ratio {brief(self.keep_ratio)} is outside (0, 1]; "
                "use a fraction of channels to keep such as 0.5"
            )
        if self.w_bits != FLOAT_BITS and not 1 <= self.w_bits <= 8:
            raise AutopruneError(
                f"layer {brief(name)}: w_bits {brief(self.w_bits)} must be 1..8 or {FLOAT_BITS} "
                "(float)"
            )
        if self.a_bits != FLOAT_BITS and not 2 <= self.a_bits <= 8:
            raise AutopruneError(
                f"layer {brief(name)}: a_bits {brief(self.a_bits)} must be 2..8 or {FLOAT_BITS} "
                "(float)"
            )
        if not 0.0 <= self.sparsity < 1.0:
            raise AutopruneError(
                f"layer {brief(name)}: sparsity {brief(self.sparsity)} is outside [0, 1); "
                "use the fraction of weights to zero such as 0.9"
            )
        if self.quantizer not in ("linear", "kmeans"):
            raise AutopruneError(
                f"layer {brief(name)}: quantizer {brief(self.quantizer)} is unknown; use linear "
                "or kmeans"
            )


def _layer_from_dict(name: str, fields: object) -> LayerPolicy:
    """One layer of a policy document, with its fields' types checked (naming the layer)."""
    if not isinstance(fields, Mapping):
        raise AutopruneError(
            f"policy layer {brief(name)} is malformed: it must map fields (keep_ratio, w_bits, "
            f"...) to values, got {brief(fields)}; export the policy again with 'autoprune export'"
        )
    unknown = sorted(set(fields) - set(_FIELD_TYPES))
    if unknown:
        raise AutopruneError(
            f"policy layer {brief(name)} is malformed: unknown field(s) {brief(unknown)}; valid "
            "fields: "
            f"{', '.join(_FIELD_TYPES)}"
        )
    for key, value in fields.items():
        kinds, example = _FIELD_TYPES[key]
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise AutopruneError(
                f"policy layer {brief(name)} is malformed: {key} must be {example}, got "
                f"{brief(value)} "
                f"({type(value).__name__})"
            )
    return LayerPolicy(**fields)


def _check_same_layers(layers: Mapping[str, LayerPolicy], names: list[str]) -> None:
    """Refuse a policy (of the right architecture) with a layer deleted or added by hand."""
    missing = [n for n in names if n not in layers]
    if missing:
        raise AutopruneError(
            f"policy has no entry for layer(s) {brief(missing)} of the model it was made for "
            "(edited by hand?); add them back (keep_ratio 1.0 and w_bits/a_bits 32 leave a layer "
            "untouched) or export the policy again"
        )
    extra = [n for n in layers if n not in names]
    if extra:
        raise AutopruneError(
            f"policy names layer(s) {brief(extra)} that the model does not have; remove them or "
            f"export the policy again (the model's layers: {', '.join(names)})"
        )


def architecture_fingerprint(specs: Iterable[LayerSpec]) -> str:
    """A short hash of the layer structure (names, kinds, shapes), stable across runs."""
    rows = [
        [s.name, s.kind, s.in_channels, s.out_channels, list(s.kernel), list(s.stride), s.groups]
        for s in specs
    ]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


@dataclass
class Policy:
    """A per-layer compression policy for one architecture.

    Example:
        >>> from torch import nn
        >>> from autoprune.core.specs import discover_layers
        >>> specs = discover_layers(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)), (4,))
        >>> policy = Policy.uniform(specs, keep_ratio=0.5, w_bits=8)
        >>> policy.layers["0"].keep_ratio, policy.layers["1"].keep_ratio
        (0.5, 1.0)
    """

    layers: dict[str, LayerPolicy]
    fingerprint: str
    layer_names: list[str] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def identity(cls, specs: list[LayerSpec]) -> Policy:
        """The do-nothing policy (keep everything, float weights)."""
        return cls.uniform(specs)

    @classmethod
    def uniform(
        cls,
        specs: list[LayerSpec],
        keep_ratio: float = 1.0,
        w_bits: int = FLOAT_BITS,
        a_bits: int = FLOAT_BITS,
        sparsity: float = 0.0,
        quantizer: Quantizer = "linear",
    ) -> Policy:
        """The same settings on every layer; unprunable layers keep all channels."""
        layers = {
            s.name: LayerPolicy(
                keep_ratio=keep_ratio if s.prunable else 1.0,
                w_bits=w_bits,
                a_bits=a_bits,
                sparsity=sparsity,
                quantizer=quantizer,
            )
            for s in specs
        }
        return cls.for_specs(specs, layers)

    @classmethod
    def for_specs(cls, specs: list[LayerSpec], layers: Mapping[str, LayerPolicy]) -> Policy:
        """Build a policy for ``specs``; layers missing from ``layers`` are left untouched."""
        full = {s.name: layers.get(s.name, LayerPolicy()) for s in specs}
        policy = cls(
            layers=full,
            fingerprint=architecture_fingerprint(specs),
            layer_names=[s.name for s in specs],
        )
        policy.validate(specs)
        return policy

    def keep_ratios(self) -> dict[str, float]:
        """Keep ratio of every layer the policy prunes (ratio below 1)."""
        return {n: lp.keep_ratio for n, lp in self.layers.items() if lp.keep_ratio < 1.0}

    def effective(
        self, plan: ChannelPlanLike, round_to: int | None = None
    ) -> dict[str, EffectiveLayer]:
        """Every layer as the pruned model has it: coupled layers follow their controller.

        Args:
            plan: The model's :class:`autoprune.compress.ChannelPlan`.
            round_to: The rounding of kept channel counts (the evaluation's ``round_to``).
        """
        return effective_layers(self.layers, plan, round_to)

    def with_effective(self, plan: ChannelPlanLike, round_to: int | None = None) -> Policy:
        """A copy whose ``meta["effective"]`` records :meth:`effective` (decisions unchanged)."""
        view = {n: e.to_dict() for n, e in self.effective(plan, round_to).items()}
        return replace(self, meta={**self.meta, EFFECTIVE_KEY: view})

    def without_effective(self) -> Policy:
        """A copy without the recorded effective view (e.g. for a file's compact header)."""
        meta = {k: v for k, v in self.meta.items() if k != EFFECTIVE_KEY}
        return replace(self, meta=meta)

    def effective_layers(self) -> dict[str, EffectiveLayer]:
        """The effective view recorded in ``meta`` (layers it lacks: as decided)."""
        return recorded_layers(self.layers, self.meta)

    def replace_layer(self, name: str, **changes: Any) -> Policy:
        """A copy with one layer's fields changed."""
        layers = dict(self.layers)
        layers[name] = replace(layers[name], **changes)
        return replace(self, layers=layers)

    def validate(self, specs: list[LayerSpec]) -> None:
        """Check that this policy fits the architecture described by ``specs``.

        Raises:
            AutopruneError: naming the layers that differ, or the first bad field.
        """
        names = [s.name for s in specs]
        if self.fingerprint == architecture_fingerprint(specs):
            _check_same_layers(self.layers, names)
        else:
            missing = [n for n in self.layers if n not in names]
            extra = [n for n in names if n not in self.layers]
            if missing or extra:
                detail = f"layers only in the policy: {missing or 'none'}; only in the model: "
                detail += f"{extra or 'none'}"
            else:
                detail = "same layer names but different shapes (channels, kernel or stride)"
            raise AutopruneError(
                f"policy was made for another architecture ({detail}); "
                "search again for this model or load the model the policy was made for"
            )
        by_name = {s.name: s for s in specs}
        for name, layer in self.layers.items():
            layer.check(name)
            if not by_name[name].prunable and layer.keep_ratio < 1.0:
                raise AutopruneError(
                    f"layer '{name}' is the classifier: its outputs cannot be pruned "
                    f"(keep_ratio {layer.keep_ratio}); set keep_ratio 1.0 for it"
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (see :meth:`from_dict`)."""
        return {
            "schema_version": self.schema_version,
            "fingerprint": self.fingerprint,
            "layer_names": self.layer_names or list(self.layers),
            "layers": {name: asdict(layer) for name, layer in self.layers.items()},
            "budget": self.budget,
            "metrics": self.metrics,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Parse the JSON form; raise :class:`AutopruneError` on a malformed document."""
        if not isinstance(data, Mapping):
            raise AutopruneError(
                f"policy document is a {type(data).__name__}, not a JSON object; export it "
                "again with 'autoprune export'"
            )
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise AutopruneError(
                f"policy schema_version {brief(version)} is not supported (expected "
                f"{SCHEMA_VERSION}); re-export the policy with this autoprune version"
            )
        if not isinstance(data.get("layers"), Mapping):
            raise AutopruneError(
                "policy document has no 'layers' mapping of layer names to settings; export it "
                "again with 'autoprune export'"
            )
        layers = {name: _layer_from_dict(name, fields) for name, fields in data["layers"].items()}
        try:
            return cls(
                layers=layers,
                fingerprint=str(data["fingerprint"]),
                layer_names=list(data.get("layer_names", layers)),
                budget=dict(data.get("budget", {})),
                metrics=dict(data.get("metrics", {})),
                meta=dict(data.get("meta", {})),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise AutopruneError(
                f"policy document is malformed ({brief(exc)}); export it again with "
                "'autoprune export'"
            ) from None

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically (a temporary file renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".policy-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(self.to_dict(), handle, indent=2, sort_keys=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path, specs: list[LayerSpec] | None = None) -> Policy:
        """Read a policy file; when ``specs`` is given, validate it against that model."""
        path = Path(path)
        if not path.is_file():
            raise AutopruneError(
                f"policy file {path} does not exist; pass the path of a policy JSON"
            )
        if path.stat().st_size > MAX_POLICY_BYTES:
            raise AutopruneError(
                f"policy file {path} is larger than {MAX_POLICY_BYTES:,} bytes; pass a policy "
                "JSON written by autoprune"
            )
        fix = "export the policy again with 'autoprune export'"
        data = loads_json(path.read_bytes(), f"policy file {path}", fix)
        policy = cls.from_dict(data)
        if specs is not None:
            policy.validate(specs)
        return policy
