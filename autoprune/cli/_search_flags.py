"""The flags ``search`` and ``compare`` share, as one :class:`SearchFlags` argument."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import typer
from rich.markup import escape

from autoprune.cli._config_args import resolve_config
from autoprune.cli._options import (
    DATA_DIR,
    DATASET,
    DEVICE,
    INPUT_SHAPE,
    MODEL,
    PROFILE,
    RUNS_DIR,
    SEED,
    STORAGE,
    TRACKING_URI,
    WEIGHTS,
    Flag,
)
from autoprune.core.budget import METRICS
from autoprune.workflow.config import MODES, SearchConfig, seed_policy_names

R = TypeVar("R")


AGENTS = (
    "ddpg",
    "td3",
    "sac",
    "ppo",
    "tpe",
    "gp",
    "cmaes",
    "random",
    "nsga2",
    "uniform",
    "admm",
    "deep-compression",
)
"""The search methods ``--agent`` lists (a test holds them to ``agents.method_names()``,
which imports the methods)."""
REWARDS = ("accuracy", "amc", "mnas", "weighted")
"""The rewards ``--reward`` lists (a test holds them to ``envs.reward_names()``)."""
BACKENDS = ("local", "ray")
"""Where ``--workers`` run (a test holds them to the runner's)."""


def _one_of(choices: tuple[str, ...]) -> str:
    """``a | b | c``, as a help text lists choices."""
    return " | ".join(choices)


def _config_flag(key: str, names: tuple[str, ...], help: str) -> Any:
    """An option that is None when not given, showing :class:`SearchConfig`'s default."""
    default = getattr(SearchConfig, key)
    shown = ", ".join(default) if isinstance(default, tuple) else str(default)
    return Flag(names, help, shown=shown).option


AGENT = _config_flag("agent", ("--agent", "-a"), f"Search method: {_one_of(AGENTS)}.")
"""``search --agent``: one method, the config's default when not given."""


def _flag(option: Any) -> Any:
    """A :class:`SearchFlags` field and the Typer option that sets it."""
    return field(metadata={"option": option})


@dataclass(frozen=True)
class SearchFlags:
    """The search flags one command line gave, in ``--help`` order; each None when not
    given (the config file, else :class:`SearchConfig`, decides)."""

    config_file: Path | None = _flag(
        Flag(("--config", "-c"), "YAML config; flags override it.", shown="none").option
    )
    model: str | None = _flag(MODEL.unset)
    weights: str | None = _flag(WEIGHTS.but(shown="baseline").option)
    dataset: str | None = _flag(DATASET.option)
    mode: str | None = _flag(
        _config_flag(
            "mode",
            ("--mode",),
            f"What each layer's action sets: {_one_of(MODES)} (keep ratios, bits, "
            "sparsity + weight bits, all four).",
        )
    )
    targets: list[str] | None = _flag(
        _config_flag(
            "targets",
            ("--target", "-t"),
            "Budget KEY=VALUE, repeatable; KEY is flops, "
            + ", ".join(METRICS[1:])
            + "; VALUE a fraction of the original (0.5, 60%) or absolute (10M, 50KB, 2ms, "
            "0.3mJ). E.g. -t flops=0.5 -t latency=2ms.",
        )
    )
    reward: str | None = _flag(
        _config_flag("reward", ("--reward",), f"Reward: {_one_of(REWARDS)}.")
    )
    episodes: int | None = _flag(
        _config_flag("episodes", ("--episodes", "-n"), "Evaluations (RL episodes / Optuna trials).")
    )
    seed_policies: str | None = _flag(
        _config_flag(
            "seed_policies",
            ("--seed-policies",),
            "Heuristics whose policies are evaluated first, comma-separated: uniform, "
            "deep-compression, admm; none for no seeds.",
        )
    )
    profile: str | None = _flag(PROFILE.unset)
    input_shape: str | None = _flag(INPUT_SHAPE.option)
    seed: int | None = _flag(SEED.unset)
    device: str | None = _flag(DEVICE.unset)
    data_dir: Path | None = _flag(DATA_DIR.option)
    runs_dir: str | None = _flag(RUNS_DIR.unset)
    tracking_uri: str | None = _flag(TRACKING_URI.option)
    storage: str | None = _flag(STORAGE.option)
    workers: int | None = _flag(
        _config_flag(
            "workers", ("--workers",), "Episodes evaluated at once (environments / trials)."
        )
    )
    backend: str | None = _flag(
        _config_flag("backend", ("--backend",), f"Where workers run: {_one_of(BACKENDS)}.")
    )
    ray_address: str | None = _flag(
        typer.Option(
            None,
            "--ray-address",
            help="Ray cluster to join: HOST:PORT, ray://HOST:PORT or auto. "
            + escape("[default: start Ray here]"),
        )
    )
    worker_cpus: float | None = _flag(
        _config_flag("worker_cpus", ("--worker-cpus",), "CPUs Ray reserves per worker.")
    )
    worker_gpus: float | None = _flag(
        _config_flag("worker_gpus", ("--worker-gpus",), "GPUs Ray reserves per worker.")
    )

    def config(self, **more: Any) -> SearchConfig:
        """The ``--config`` file's values overridden by these flags and ``more``."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "config_file"}
        values["data_dir"] = str(self.data_dir) if self.data_dir else None
        if self.seed_policies is not None:
            values["seed_policies"] = seed_policy_names(self.seed_policies)
        return resolve_config(self.config_file, **values, **more)


OPTIONS: dict[str, Any] = {f.name: f.metadata["option"] for f in fields(SearchFlags)}
"""The Typer option of each :class:`SearchFlags` field, in the order ``--help`` lists them."""


def with_search_flags(command: Callable[..., R]) -> Callable[..., R]:
    """``command`` with the search flags in place of its ``flags: SearchFlags`` parameter.

    Typer sees one parameter per flag; ``command`` receives them as one :class:`SearchFlags`.
    """
    hints, types = get_type_hints(command), get_type_hints(SearchFlags)
    keyword = inspect.Parameter.KEYWORD_ONLY  # Typer passes every value by name
    params: list[inspect.Parameter] = []
    for param in inspect.signature(command).parameters.values():
        if param.name != "flags":
            params.append(param.replace(kind=keyword, annotation=hints[param.name]))
            continue
        for name, option in OPTIONS.items():
            params.append(inspect.Parameter(name, keyword, default=option, annotation=types[name]))

    @functools.wraps(command)
    def parsed(**values: Any) -> R:
        flags = SearchFlags(**{name: values.pop(name) for name in OPTIONS})
        return command(flags=flags, **values)

    parsed.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    parsed.__annotations__ = {p.name: p.annotation for p in params}
    return parsed
