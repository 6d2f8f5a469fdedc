"""Hardware profiles: declared (roofline) or measured targets, read from YAML files.

Packaged profiles live in ``autoprune/profiles/<name>.yaml``; users may pass the path of
their own YAML file with the same fields. A measured profile's timing settings
(:class:`MeasurementSettings`) are defined here once: :mod:`autoprune.latency` times layers
with that object as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml

from autoprune.core.defaults import MEASURED_PROFILE as MEASURED_PROFILE  # re-exported
from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.cost._energy import EnergyTable

ProfileKind = Literal["measured", "roofline"]
BitScaling = Literal["brick", "int8"]
Runtime = Literal["onnxruntime", "torch"]

_REQUIRED = ("name", "kind", "source", "description", "sram_bytes")
_REQUIRED_BY_KIND = {
    "roofline": ("peak_macs_per_s", "bit_scaling", "dram_bandwidth_gbps", "sram_bandwidth_gbps"),
    "measured": ("runtime",),
}
_CHOICES = {
    "kind": ("measured", "roofline"),
    "bit_scaling": ("brick", "int8"),
    "runtime": ("onnxruntime", "torch"),
}
_INTS = ("sram_bytes", "batch_size", "brick_bits", "threads", "warmup", "repeats", "rounds")
_FLOATS = (
    "overhead_ms",
    "peak_macs_per_s",
    "float_slowdown",
    "dram_bandwidth_gbps",
    "sram_bandwidth_gbps",
    "quantile",
    "min_seconds",
    "model_seconds",
)
_MAY_BE_ZERO = ("warmup", "overhead_ms", "min_seconds", "model_seconds")


@dataclass(frozen=True)
class MeasurementSettings:
    """How a measured profile times layers and whole models on this machine.

    Attributes:
        runtime: ``onnxruntime`` (fp32 or int8 QDQ graphs) or ``torch`` (fp32 eager).
        threads: Intra-op threads.
        warmup: Untimed calls before timing.
        repeats: Timed calls per round.
        rounds: Interleaved passes over all graphs measured together, so a slowdown of the
            machine meanwhile touches them alike.
        quantile: Which quantile of the timed calls is kept: 0.5 is the median; a low one
            (0.1) is steadier on a machine shared with other work.
        min_seconds: Keep adding rounds until a measurement window lasts this long.
        model_seconds: The same for windows that time whole models (calibration, validation).

    Example:
        >>> settings = MeasurementSettings(repeats=3)
        >>> settings.runtime, settings.repeats, settings.quantile
        ('onnxruntime', 3, 0.5)
    """

    runtime: Runtime = "onnxruntime"
    threads: int = 1
    warmup: int = 3
    repeats: int = 10
    rounds: int = 1
    quantile: float = 0.5
    min_seconds: float = 0.0
    model_seconds: float = 10.0


@dataclass(frozen=True)
class HardwareProfile:
    """A target the cost model prices latency and energy for.

    Attributes:
        name: Short identifier (the packaged file's stem).
        kind: ``measured`` (latency from a lookup table measured on this machine) or
            ``roofline`` (latency modelled from declared peak throughput and bandwidth).
        source: Where the numbers come from, and whether they are measured or assumed.
        description: One or two sentences for humans.
        sram_bytes: On-chip memory (SRAM or last-level cache); weights that fit it are read
            from there, which also picks the SRAM read energy.
        batch_size: Samples per forward pass priced or measured.
        overhead_ms: Fixed time per forward pass (roofline; measured profiles measure it).
        peak_macs_per_s: Roofline peak at 8-bit weights and 8-bit activations.
        bit_scaling: ``brick`` (bit-flexible array: throughput ``(8/w) * (8/a)`` of the peak
            with bits rounded up to ``brick_bits * 2**k``) or ``int8`` (8-bit SIMD: no gain
            below 8 bits, float ``float_slowdown`` times slower than int8).
        brick_bits: Smallest operand width of a ``brick`` array.
        float_slowdown: How many times slower a float MAC is than an int8 one (``int8``).
        dram_bandwidth_gbps: Off-chip bandwidth in GB/s.
        sram_bandwidth_gbps: On-chip bandwidth in GB/s.
        measurement: Measured profiles: how layers and models are timed. In the YAML its
            fields (``runtime``, ``threads``, ``warmup``, ...) sit at the top level.
        energy: Per-operation energies (Horowitz 45 nm unless overridden).

    Example:
        >>> profile = load_profile("bitfusion")
        >>> profile.kind, profile.bit_scaling
        ('roofline', 'brick')
        >>> load_profile("cpu").measurement.runtime
        'onnxruntime'
    """

    name: str
    kind: ProfileKind
    source: str
    description: str
    sram_bytes: int
    batch_size: int = 1
    overhead_ms: float = 0.0
    peak_macs_per_s: float | None = None
    bit_scaling: BitScaling = "int8"
    brick_bits: int = 2
    float_slowdown: float = 1.0
    dram_bandwidth_gbps: float | None = None
    sram_bandwidth_gbps: float | None = None
    measurement: MeasurementSettings = field(default_factory=MeasurementSettings)
    energy: EnergyTable = field(default_factory=EnergyTable)

    @classmethod
    def from_dict(cls, data: Any, where: str = "<dict>") -> HardwareProfile:
        """Validate and build a profile; errors name ``where`` and the offending field."""
        if not isinstance(data, dict):
            raise AutopruneError(
                f"hardware profile {where} must be a YAML mapping of fields, "
                f"got {type(data).__name__}; see autoprune/profiles/*.yaml for examples"
            )
        timing = [f.name for f in fields(MeasurementSettings)]
        allowed = [
            n for f in fields(cls) for n in (timing if f.name == "measurement" else [f.name])
        ]
        for key in data:
            if key not in allowed:
                raise AutopruneError(
                    f"hardware profile {where}: unknown field '{key}'; "
                    f"allowed fields: {', '.join(allowed)}"
                )
        values = {key: _check_field(key, value, where) for key, value in data.items()}
        for key in (*_REQUIRED, *_REQUIRED_BY_KIND.get(str(values.get("kind")), ())):
            if values.get(key) is None:
                raise AutopruneError(
                    f"hardware profile {where}: missing field '{key}'"
                    + (f" (needed for kind '{values['kind']}')" if key not in _REQUIRED else "")
                    + "; add it to the YAML"
                )
        if "energy" in values:
            values["energy"] = _energy_table(values["energy"], where)
        measurement = MeasurementSettings(**{k: values.pop(k) for k in timing if k in values})
        return cls(**values, measurement=measurement)


def _check_field(key: str, value: Any, where: str) -> Any:
    """Coerce and range-check one scalar field."""
    if value is None or key == "energy":
        return value
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise AutopruneError(
                f"hardware profile {where}: field '{key}' is {value!r}; "
                f"use one of: {', '.join(_CHOICES[key])}"
            )
        return value
    if key in _INTS or key in _FLOATS:
        number = _number(value)
        floor_ok = key in _MAY_BE_ZERO
        if number is None or number < 0 or (number == 0 and not floor_ok):
            need = "a non-negative" if floor_ok else "a positive"
            raise AutopruneError(
                f"hardware profile {where}: field '{key}' must be {need} number, got {value!r}"
            )
        if key == "quantile" and number > 1:
            raise AutopruneError(
                f"hardware profile {where}: field 'quantile' must be in (0, 1] "
                f"(0.5 is the median), got {value!r}"
            )
        if key in _INTS:
            if number != int(number):
                raise AutopruneError(
                    f"hardware profile {where}: field '{key}' must be a whole number, got {value!r}"
                )
            return int(number)
        return number
    return str(value)


def _number(value: Any) -> float | None:
    """A float from a YAML scalar (PyYAML reads ``1e9`` as a string), or None."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _energy_table(data: Any, where: str) -> EnergyTable:
    """Build the energy overrides of a profile."""
    allowed = [f.name for f in fields(EnergyTable)]
    if not isinstance(data, dict):
        raise AutopruneError(
            f"hardware profile {where}: field 'energy' must be a mapping of {', '.join(allowed)}"
        )
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in allowed:
            raise AutopruneError(
                f"hardware profile {where}: unknown energy field '{key}'; "
                f"allowed: {', '.join(allowed)}"
            )
        number = None if value is None else _number(value)
        if (value is not None and number is None) or (number is not None and number <= 0):
            raise AutopruneError(
                f"hardware profile {where}: energy field '{key}' must be a positive number, "
                f"got {value!r}"
            )
        values[key] = int(number) if key == "accumulator_bits" and number else number
    return EnergyTable(**values)


def _profile_dir() -> Any:
    return files("autoprune") / "profiles"


def profile_names() -> list[str]:
    """Names of the packaged hardware profiles, sorted."""
    names = [p.name[: -len(".yaml")] for p in _profile_dir().iterdir() if p.name.endswith(".yaml")]
    return sorted(names)


def load_profile(name_or_path: str | Path) -> HardwareProfile:
    """Load a packaged profile by name, or a user profile from a YAML path.

    Raises:
        AutopruneError: unknown name (listing the packaged ones), missing file, malformed
            YAML, or a missing / bad field (named).
    """
    text_name = str(name_or_path)
    if text_name in profile_names():
        where = f"'{text_name}'"
        text = (_profile_dir() / f"{text_name}.yaml").read_text()
    else:
        path = Path(name_or_path)
        looks_like_path = path.suffix in (".yaml", ".yml") or len(path.parts) > 1
        if not looks_like_path and not path.is_file():
            raise unknown_name("hardware profile", text_name, profile_names())
        if not path.is_file():
            raise AutopruneError(
                f"hardware profile file {path} does not exist; pass an existing YAML path "
                f"or one of: {', '.join(profile_names())}"
            )
        where = str(path)
        text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
        raise AutopruneError(
            f"hardware profile {where} is not valid YAML ({problem}); fix the file's syntax"
        ) from None
    return HardwareProfile.from_dict(data, where)
