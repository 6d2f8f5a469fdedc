"""One check for the database URLs autoprune hands to SQLAlchemy (Optuna storage, MLflow),
and the masking that keeps their passwords out of files, MLflow and messages.

A password is never stored or logged: ``config.json`` keeps the URL without it, MLflow
params, tags and every message show ``***``. Give it through the environment
(``PGPASSWORD``) or a password file (``~/.pgpass``), which the database driver reads itself,
or give the URL again when resuming.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from autoprune.core.errors import AutopruneError

_USERINFO = re.compile(r"(\b[A-Za-z][\w+.-]*://[^:/@\s'\"]*):[^\s'\"]*@")
"""``scheme://user:password@``: the password runs to the last ``@`` of the word."""
_QUERY = re.compile(r"([?&](?:password|passwd|pwd)=)[^&\s'\"]*", re.IGNORECASE)
"""A ``?password=...`` query parameter (libpq's connection URIs accept one)."""
_QUERY_PARAM = re.compile(r"([?&])(?:password|passwd|pwd)=[^&\s'\"]*(&?)", re.IGNORECASE)
"""The same parameter with its separators, for removing it."""


def hide_passwords(text: str) -> str:
    """``text`` with every URL password shown as ``***`` (for messages and MLflow).

    Example:
        >>> hide_passwords("postgresql://ann:s3cret@db:5432/optuna")
        'postgresql://ann:***@db:5432/optuna'
    """
    return _QUERY.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))


def drop_passwords(text: str) -> str:
    """``text`` with every URL password removed (for files: the driver then reads
    ``PGPASSWORD`` or ``~/.pgpass`` itself).

    Example:
        >>> drop_passwords("postgresql://ann:s3cret@db/optuna?sslmode=require&password=x")
        'postgresql://ann@db/optuna?sslmode=require'
    """
    return _QUERY_PARAM.sub(_rejoin, _USERINFO.sub(r"\1@", text))


def _rejoin(match: re.Match[str]) -> str:
    """Keep the separator of a dropped query parameter when another one follows it."""
    return match.group(1) if match.group(2) else ""


def without_passwords(value: Any, hide: bool = False) -> Any:
    """``value`` (a string, or mappings and lists of them) with URL passwords dropped, or
    shown as ``***`` with ``hide``; other values are returned as they are."""
    if isinstance(value, str):
        return hide_passwords(value) if hide else drop_passwords(value)
    if isinstance(value, Mapping):
        return {k: without_passwords(v, hide) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(without_passwords(v, hide) for v in value)
    return value


def parse_database_url(url: str, what: str, example: str = "") -> Any:
    """The parsed SQLAlchemy URL of ``url``, its driver importable.

    Args:
        url: ``dialect[+driver]://...``.
        what: How the message names the URL (``"storage"``, ``"tracking URI"``).
        example: A well-formed URL to show when ``url`` is malformed.

    Raises:
        AutopruneError: One line when the URL is malformed or its driver is not installed.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        parsed.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError) as exc:
        raise AutopruneError(
            f"{what} '{hide_passwords(url)}' needs a database driver that is not installed "
            f"({exc}); install it (for PostgreSQL: pip install psycopg2-binary)"
        ) from None
    except (ArgumentError, ValueError) as exc:
        hint = f"; write e.g. {example}" if example else ""
        reason = hide_passwords(str(exc))
        raise AutopruneError(
            f"{what} '{hide_passwords(url)}' is malformed ({reason}){hint}"
        ) from None
    return parsed
