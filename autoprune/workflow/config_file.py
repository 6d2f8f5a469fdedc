"""Config files: YAML read safely (no aliases, bounded size), and a run folder's saved
``config.json`` read with the settings it predates at their old values."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from autoprune.core.bounded import brief
from autoprune.core.errors import AutopruneError

MAX_CONFIG_BYTES = 1 << 20
"""Largest config file read (a real one is a few hundred bytes)."""


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases (``*name``): a few of them nested expand into
    billions of values (an alias bomb) wherever the config is printed or saved."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Refuse an alias; compose any other node as the safe loader does."""
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted; write the values out", mark
            )
        return super().compose_node(parent, index)


LEGACY_RUN_DEFAULTS: dict[str, Any] = {"wall": "clip"}
"""Settings whose default changed after runs were saved without them: a run folder's
``config.json`` that lacks one was searched the old way, and resumes that way."""


def saved_run_defaults(values: Mapping[str, Any]) -> dict[str, Any]:
    """A run's saved config with the settings it predates at their old values.

    Example:
        >>> saved_run_defaults({"agent": "tpe"})["wall"]
        'clip'
    """
    return {**{k: v for k, v in LEGACY_RUN_DEFAULTS.items() if k not in values}, **values}


def _is_run_config(path: Path) -> bool:
    """Whether ``path`` is the ``config.json`` of a run folder under ``searches/``."""
    return path.name == "config.json" and path.parent.parent.name == "searches"


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping; malformed YAML gets a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise AutopruneError(f"config file {path} does not exist; pass an existing YAML file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise AutopruneError(
            f"config file {path} is larger than {MAX_CONFIG_BYTES:,} bytes; a config holds "
            "a few keys, pass the right file"
        )
    try:
        data = yaml.load(path.read_text(), Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader)
    except RecursionError:
        raise AutopruneError(f"config file {path} nests values too deeply; flatten it") from None
    except UnicodeDecodeError:
        raise AutopruneError(
            f"config file {path} is not text (damaged?); fix or replace it"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or ""
        fix = "write the values out (no *aliases)" if "alias" in problem else "fix the syntax"
        raise AutopruneError(f"config file {path} is not valid YAML{where}; {fix}") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise AutopruneError(
            f"config file {path} holds a value that cannot be read ({brief(str(exc))}); fix it"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AutopruneError(f"config file {path} must hold a mapping of keys to values")
    return saved_run_defaults(data) if _is_run_config(path) else data
