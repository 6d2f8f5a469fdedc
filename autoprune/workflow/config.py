"""Search configuration: one dataclass, read from YAML and overridden by CLI flags.

Only the CLI parses files and flags into a :class:`SearchConfig`; library code receives it.
Unknown keys and bad values fail with an :class:`AutopruneError` naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoprune.core.bounded import brief
from autoprune.core.device import check_device_name
from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.core.specs import parse_input_shape

DEFAULT_MAX_SPARSITY = 0.995
"""Largest sparsity an action can choose by default: 0.5% of a layer's weights left, beyond
Deep Compression's 91-97% on the large fully connected layers, so that a ``size`` target of
1/100 of LeNet-300-100's float file is reachable (at 0.98 the smallest file is 1/73)."""
MODES = ("prune", "quantize", "sparse", "joint")
"""Search modes (the same as ``envs.MODES``; the core does not import the environments)."""
ENV_SETTINGS = (
    "reward",
    "mode",
    "min_keep",
    "max_keep",
    "max_sparsity",
    "min_bits",
    "max_bits",
    "pin_first_last",
    "reward_kwargs",
    "layers",
    "wall",
)
"""The config keys that are :class:`~envs.CompressionEnv` arguments (see
:meth:`SearchConfig.env_settings`)."""
WALLS = ("scale", "clip")
"""How an action meets the budget (the same as ``envs.WALLS``)."""
SEED_POLICIES = ("uniform", "deep-compression", "admm")
"""Heuristics whose policies a search can evaluate first (``seed_policies``)."""


@dataclass(frozen=True)
class SearchConfig:
    """Everything a search needs, as data.

    Example:
        >>> SearchConfig.from_mapping({"model": "demo", "targets": ["flops=0.5"]}).episodes
        60
    """

    model: str = "demo"
    """Zoo name, ``file.py:fn``, ``module:fn`` or ``torchvision:NAME``."""
    weights: str | None = None
    """State dict of the trained model; None trains (or loads the cached) baseline."""
    dataset: str = "digits"
    """Dataset name, ``npz:PATH`` or ``file.py:fn``."""
    data_dir: str | None = None
    """Folder of the dataset files."""
    agent: str = "ddpg"
    """Search method (``autoprune search --help`` lists them; ``agents.method_names()``)."""
    mode: str = "prune"
    """``prune`` (keep ratios), ``quantize`` (weight and activation bits), ``sparse``
    (fine-grained sparsity and weight bits: Deep Compression / Yang et al.) or ``joint``
    (keep ratio, sparsity, weight and activation bits per step)."""
    targets: tuple[str, ...] = ("flops=0.5",)
    """Hard budget constraints, e.g. ``flops=0.5``, ``latency=2ms``, ``size=50KB``."""
    reward: str = "accuracy"
    """Reward function: accuracy, amc, mnas or weighted."""
    episodes: int = 60
    """Evaluation budget: episodes (RL) or trials (Optuna) — equal cost across methods."""
    profile: str = "bitfusion"
    """Hardware profile for latency/energy: a packaged name or a YAML path."""
    input_shape: str | None = None
    """Input ``C,H,W`` the cost model prices the model at (its deployment resolution, e.g.
    ``3,224,224``); None: the dataset's image shape."""
    seed: int = 0
    """Seed of the search (agent, sampler, calibration batches)."""
    device: str = "auto"
    """Where models train and evaluate: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or
    ``cuda:N``; the agents' networks run there too."""
    val_samples: int | None = 5000
    """Validation images per evaluation (None: the whole validation split). 5,000 keeps the
    standard error of an accuracy near 0.4 pt, below the gaps between good policies."""
    calib_batches: int = 4
    """Training batches of 128 images for BN recalibration, reconstruction and activation
    ranges."""
    finetune_epochs: int = 0
    """Fine-tuning inside each evaluation (HAQ used 1)."""
    importance: str = "l1"
    """Channel importance criterion."""
    round_to: int | None = None
    """Round kept channels to a multiple (AMC used 8)."""
    reconstruct: bool = True
    """AMC's least-squares reconstruction of the layers whose inputs were pruned, in every
    evaluation (in the same pass as the BatchNorm recalibration); off saves about a tenth
    of an evaluation and loses several points of accuracy on pruned models."""
    min_keep: float = 0.2
    """Smallest keep ratio an action can choose."""
    max_sparsity: float = DEFAULT_MAX_SPARSITY
    """Largest fine-grained sparsity an action can choose (modes ``sparse`` and ``joint``)."""
    min_bits: int = 2
    """Smallest bit-width an action can choose."""
    max_bits: int = 8
    """Largest bit-width an action can choose."""
    max_keep: float = 1.0
    """Largest keep ratio an action can choose."""
    pin_first_last: bool | None = None
    """Keep the first and last layer at 8 bits (None: the mode's default, on in ``quantize``
    and ``joint`` as in HAQ)."""
    reward_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the reward function (e.g. ``{beta: -0.5}`` for ``amc``)."""
    layers: tuple[str, ...] | None = None
    """The only layers the search changes (None: every compressible layer)."""
    wall: str = "scale"
    """How an action meets the budget: ``scale`` maps it into the step's feasible interval
    (distinct actions stay distinct policies under a tight budget), ``clip`` cuts it at the
    interval's top (AMC's wall, which collapses most actions onto one policy there)."""
    seed_policies: tuple[str, ...] = ("uniform",)
    """Heuristics whose policies the search evaluates first (``uniform``,
    ``deep-compression``, ``admm``; at most a quarter of the episodes): Optuna enqueues them,
    RL replays them as its first warm-up episodes. The default, ``uniform``, costs only
    cost-model queries; ``deep-compression`` adds a sensitivity scan and ``admm`` needs a
    size target. Empty: none."""
    runs_dir: str = "runs"
    """Root of checkpoints, the default MLflow store and search state."""
    tracking_uri: str | None = None
    """MLflow tracking URI (None: a local store under ``runs_dir``)."""
    storage: str | None = None
    """Optuna storage URL (None: a SQLite file under ``runs_dir``)."""
    checkpoint_every: int = 5
    """Episodes between search checkpoints."""
    agent_options: dict[str, Any] = field(default_factory=dict)
    """Method-specific overrides (e.g. ``warmup_episodes``, ``noise``, ``n_workers``)."""
    workers: int = 1
    """Episodes evaluated at once: parallel environments (RL agents) or trials in flight
    (Optuna samplers); the budget ``episodes`` is the same for any number."""
    backend: str = "local"
    """Where ``workers`` run: ``local`` (processes of this machine) or ``ray`` (Ray actors,
    ``pip install 'autoprune[ray]'``)."""
    ray_address: str | None = None
    """Ray cluster to join (``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``); None starts
    Ray on this machine."""
    worker_cpus: float = 1.0
    """CPUs Ray reserves for each worker (also its torch threads)."""
    worker_gpus: float = 0.0
    """GPUs Ray reserves for each worker (fractions share a GPU)."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SearchConfig:
        """Build from a mapping, rejecting unknown keys and wrong types."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise AutopruneError(
                f"unknown config key(s) {brief(unknown)}; valid keys: {', '.join(sorted(names))}"
            )
        values = fold_legacy_env_kwargs(dict(data))
        if isinstance(values.get("layers"), (list, str)):
            layers = values["layers"]
            values["layers"] = (layers,) if isinstance(layers, str) else tuple(layers)
        if isinstance(values.get("input_shape"), (list, tuple)):  # YAML [3, 224, 224]
            values["input_shape"] = ",".join(str(v) for v in values["input_shape"])
        seeds = values.get("seed_policies")
        if isinstance(seeds, (list, str)):
            values["seed_policies"] = seed_policy_names(seeds)
        targets = values.get("targets")
        if isinstance(targets, str):
            values["targets"] = (targets,)
        elif isinstance(targets, Mapping):  # targets: {flops: 0.5, size: 50KB}
            values["targets"] = tuple(f"{k}={v}" for k, v in targets.items())
        elif isinstance(targets, (list, tuple)):
            values["targets"] = tuple(str(t) for t in targets)
        config = cls(**values)
        config.check()
        return config

    def replace(self, **changes: Any) -> SearchConfig:
        """A copy with ``changes`` applied (None values are ignored) and re-checked."""
        config = dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
        config.check()
        return config

    def check(self) -> None:
        """Raise :class:`AutopruneError` for a value no search can use (a wrong type first)."""
        _check_types(self)
        if self.mode not in MODES:
            raise AutopruneError(
                f"unknown mode {brief(self.mode)}; choose one of: {', '.join(MODES)}"
            )
        if not isinstance(self.episodes, int) or self.episodes < 1:
            raise AutopruneError(
                f"episodes {brief(self.episodes)} must be a positive integer; pass --episodes 20"
            )
        if not 0.0 < self.min_keep <= self.max_keep <= 1.0:
            raise AutopruneError(
                f"keep range {self.min_keep}..{self.max_keep} must satisfy 0 < min_keep <= "
                "max_keep <= 1"
            )
        if not 0.0 <= self.max_sparsity < 1.0:
            raise AutopruneError(f"max_sparsity {self.max_sparsity} must be in [0, 1), e.g. 0.995")
        if not 2 <= self.min_bits <= self.max_bits <= 8:
            raise AutopruneError(
                f"bits range {self.min_bits}..{self.max_bits} must satisfy 2 <= min <= max <= 8"
            )
        _check_search_space(self)
        if not isinstance(self.agent_options, dict):
            raise AutopruneError("agent_options must be a mapping of option names to values")
        if "env_kwargs" in self.agent_options:
            raise AutopruneError(
                "agent_options.env_kwargs holds environment settings, which are config keys; "
                f"write them as config keys ({', '.join(ENV_SETTINGS)})"
            )
        _check_importance(self.importance)
        parse_input_shape(self.input_shape)
        check_device_name(self.device)

    def env_settings(self) -> dict[str, Any]:
        """The keyword arguments of :class:`~envs.CompressionEnv` for this search.

        Example:
            >>> SearchConfig(mode="quantize").env_settings()["mode"]
            'quantize'
        """
        return {name: getattr(self, name) for name in ENV_SETTINGS}

    def to_dict(self) -> dict[str, Any]:
        """Plain form (for logging and YAML)."""
        out = dataclasses.asdict(self)
        out["targets"] = list(self.targets)
        out["seed_policies"] = list(self.seed_policies)
        if self.layers is not None:
            out["layers"] = list(self.layers)
        return out

    @property
    def runs_path(self) -> Path:
        """``runs_dir`` as a path."""
        return Path(self.runs_dir)


def fold_legacy_env_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """Read the old spelling ``agent_options: {env_kwargs: {...}}`` (configs and run folders
    written before environment settings became config keys) as config keys."""
    options = values.get("agent_options")
    if not isinstance(options, Mapping) or "env_kwargs" not in options:
        return values
    legacy = options["env_kwargs"]
    if not isinstance(legacy, Mapping):
        raise AutopruneError(
            "agent_options.env_kwargs must be a mapping; better, write its keys as config keys"
        )
    unknown = sorted(set(legacy) - set(ENV_SETTINGS))
    if unknown:
        raise AutopruneError(
            f"unknown environment setting(s) {unknown}; valid: {', '.join(ENV_SETTINGS)}"
        )
    clashes = sorted(k for k in legacy if k in values and values[k] != legacy[k])
    if clashes:
        raise AutopruneError(
            f"{clashes} given both as config keys and in agent_options.env_kwargs; keep the "
            "config keys only"
        )
    rest = {k: v for k, v in options.items() if k != "env_kwargs"}
    return {**values, **legacy, "agent_options": rest}


_KINDS: dict[type, str] = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    tuple: "a list of strings",
    dict: "a mapping",
}
_EXAMPLES = {
    "targets": "[flops=0.5]",
    "layers": "[conv1, conv2]",
    "reward_kwargs": "{beta: -0.5}",
    "agent_options": "{noise: 0.3}",
    "weights": "model.pt",
    "data_dir": "data",
    "round_to": "8",
    "tracking_uri": "runs/mlflow",
    "storage": "sqlite:///runs/optuna.db",
    "ray_address": "10.0.0.5:6379",
    "input_shape": "3,224,224",
    "seed_policies": "[uniform, deep-compression]",
}


def _accepts(kind: type, value: object) -> bool:
    """Whether ``value`` has the plain type ``kind`` (bools are not numbers; ints are floats)."""
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    if kind is tuple:
        return isinstance(value, tuple) and all(isinstance(v, str) for v in value)
    return isinstance(value, kind)


def _check_types(config: SearchConfig) -> None:
    """Refuse a field of the wrong type (a YAML ``seed: abc``), naming the key and the fix."""
    hints = typing.get_type_hints(SearchConfig)
    for item in dataclasses.fields(config):
        hint, value = hints[item.name], getattr(config, item.name)
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        kinds = [typing.get_origin(k) or k for k in options if k is not type(None)]
        if value is None and type(None) in options:
            continue
        if any(_accepts(kind, value) for kind in kinds):
            continue
        expected = " or ".join(_KINDS.get(k, k.__name__) for k in kinds)
        if type(None) in options:
            expected += " (or null)"
        default = item.default if item.default is not dataclasses.MISSING else None
        example = _EXAMPLES.get(item.name, str(default).lower() if bool in kinds else default)
        raise AutopruneError(
            f"config key '{item.name}' must be {expected}, got {brief(value)} "
            f"({type(value).__name__}); write e.g. {item.name}: {example}"
        )


def seed_policy_names(value: str | Sequence[object]) -> tuple[str, ...]:
    """``seed_policies`` from a YAML list or a comma-separated flag (``none``: no seeds).

    Example:
        >>> seed_policy_names("uniform, admm"), seed_policy_names("none")
        (('uniform', 'admm'), ())
    """
    items = value.split(",") if isinstance(value, str) else value
    names = (str(v).strip() for v in items)
    return tuple(n for n in names if n and n != "none")


def _check_search_space(config: SearchConfig) -> None:
    """Refuse an unknown ``wall`` or seed heuristic, and policy seeds of a mode they cannot
    express (Deep Compression and ADMM choose sparsities)."""
    if config.wall not in WALLS:
        raise unknown_name("wall", config.wall, list(WALLS))
    for name in config.seed_policies:
        if name not in SEED_POLICIES:
            raise unknown_name("seed policy", name, list(SEED_POLICIES))
        if name != "uniform" and config.mode not in ("sparse", "joint"):
            raise AutopruneError(
                f"seed policy '{name}' chooses sparsities, which mode '{config.mode}' does not "
                "search; use --mode sparse or joint, or --seed-policies uniform"
            )


def _check_importance(name: str) -> None:
    """Refuse an unknown channel criterion before any model is built."""
    from autoprune.compress.importance import importance_names  # imports torch-pruning

    if name not in importance_names():
        raise unknown_name("importance", name, importance_names())
