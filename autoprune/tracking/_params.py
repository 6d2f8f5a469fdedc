"""Turning configuration into MLflow params and tags: flattening, limits, git revision."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autoprune.system.database_url import hide_passwords

MAX_KEY_LENGTH = 250
"""MLflow's limit on param, metric and tag names."""
MAX_PARAM_LENGTH = 6000
"""MLflow's limit on a param value (MLflow >= 2.4)."""
MAX_TAG_LENGTH = 8000
"""MLflow's limit on a tag value."""
_BAD_KEY_CHARS = re.compile(r"[^\w\-./ :]")


def clean_key(key: str) -> str:
    """A name MLflow accepts: letters, digits, ``_-./ :``, at most 250 characters."""
    return _BAD_KEY_CHARS.sub("_", key)[:MAX_KEY_LENGTH]


def _text(value: Any) -> str:
    """The MLflow string of ``value``; a URL's password shows as ``***``, never in clear."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple)):
        text = json.dumps(list(value), default=str)
    elif isinstance(value, Path):
        text = value.as_posix()
    else:
        text = str(value)
    return hide_passwords(text)


def flatten_params(
    params: Mapping[str, Any], max_length: int = MAX_PARAM_LENGTH, prefix: str = ""
) -> dict[str, str]:
    """Flatten nested mappings into ``"a.b"`` keys with string values cut to ``max_length``.

    Example:
        >>> flatten_params({"agent": {"name": "ddpg", "lr": 1e-4}, "budget": ["flops=0.5"]})
        {'agent.name': 'ddpg', 'agent.lr': '0.0001', 'budget': '["flops=0.5"]'}
    """
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten_params(value, max_length, name))
        else:
            out[clean_key(name)] = _text(value)[:max_length]
    return out


def clean_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Tags as MLflow strings; None values are dropped."""
    return {
        clean_key(str(k)): _text(v)[:MAX_TAG_LENGTH]
        for k, v in (tags or {}).items()
        if v is not None
    }


def git_sha(path: str | Path = ".") -> str | None:
    """The commit checked out in the git work tree containing ``path``, or None.

    None when git is missing, ``path`` is not inside a repository, or git takes over 5 s.
    Nothing is printed.
    """
    try:
        done = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and sha else None
