"""One check for the database URLs autoprune hands to SQLAlchemy (Optuna storage, MLflow)."""

from __future__ import annotations

from typing import Any

from autoprune.core.errors import AutopruneError


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
            f"{what} '{url}' needs a database driver that is not installed ({exc}); install "
            "it (for PostgreSQL: pip install psycopg2-binary)"
        ) from None
    except (ArgumentError, ValueError) as exc:
        hint = f"; write e.g. {example}" if example else ""
        raise AutopruneError(f"{what} '{url}' is malformed ({exc}){hint}") from None
    return parsed
