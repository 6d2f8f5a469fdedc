"""The flags ``search`` and ``compare`` share, as one :class:`SearchFlags` argument."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import typer

from autoprune.cli._config_args import resolve_config
from autoprune.cli._options import (
    DATA_DIR,
    DATASET,
    MODEL,
    PROFILE,
    RUNS_DIR,
    SEED,
    STORAGE,
    TRACKING_URI,
    WEIGHTS,
)
from autoprune.workflow.config import SearchConfig

R = TypeVar("R")


def _flag(option: Any) -> Any:
    """A :class:`SearchFlags` field and the Typer option that sets it."""
    return field(metadata={"option": option})


@dataclass(frozen=True)
class SearchFlags:
    """The search flags one command line gave, in ``--help`` order; each None when not
    given (the config file, else :class:`SearchConfig`, decides)."""

    config_file: Path | None = _flag(
        typer.Option(None, "--config", "-c", help="YAML config; flags override it.")
    )
    model: str | None = _flag(MODEL.but(default=None).option)
    weights: str | None = _flag(WEIGHTS.but(shown="baseline").option)
    dataset: str | None = _flag(DATASET.option)
    mode: str | None = _flag(
        typer.Option(None, "--mode", help="prune | quantize | sparse | joint.")
    )
    targets: list[str] | None = _flag(
        typer.Option(None, "--target", "-t", help="Budget KEY=VALUE (repeatable).")
    )
    reward: str | None = _flag(
        typer.Option(None, "--reward", help="accuracy | amc | mnas | weighted.")
    )
    episodes: int | None = _flag(
        typer.Option(None, "--episodes", "-n", help="Evaluations (episodes / trials).")
    )
    profile: str | None = _flag(PROFILE.but(default=None).option)
    seed: int | None = _flag(SEED.but(default=None).option)
    data_dir: Path | None = _flag(DATA_DIR.option)
    runs_dir: str | None = _flag(RUNS_DIR.unset)
    tracking_uri: str | None = _flag(TRACKING_URI.option)
    storage: str | None = _flag(STORAGE.option)
    workers: int | None = _flag(
        typer.Option(
            None, "--workers", help="Episodes evaluated at once (environments / trials in flight)."
        )
    )
    backend: str | None = _flag(
        typer.Option(None, "--backend", help="Where workers run: local | ray.")
    )
    ray_address: str | None = _flag(
        typer.Option(
            None, "--ray-address", help="Ray cluster to join (HOST:PORT, ray://HOST:PORT, auto)."
        )
    )
    worker_cpus: float | None = _flag(
        typer.Option(None, "--worker-cpus", help="CPUs Ray reserves per worker.")
    )
    worker_gpus: float | None = _flag(
        typer.Option(None, "--worker-gpus", help="GPUs Ray reserves per worker.")
    )

    def config(self, **more: Any) -> SearchConfig:
        """The ``--config`` file's values overridden by these flags and ``more``."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "config_file"}
        values["data_dir"] = str(self.data_dir) if self.data_dir else None
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
