"""Where MLflow runs are stored: local SQLite stores, servers, and the ``mlflow ui`` command.

MLflow 3.17 refuses its old file store (``./mlruns`` directories, ``file:`` URIs) unless an
environment opt-out is set, and its documentation names SQLite as the default backend.
A local *directory* given to autoprune therefore becomes a SQLite store inside it::

    runs/mlflow/mlflow.db      run metadata (params, metrics, tags)
    runs/mlflow/artifacts/     artifacts (policies, plots, models) of experiments made here

Everything works offline; no server is needed to log, and ``mlflow ui`` reads the database
directly. ``http(s)://`` URIs point at a tracking server and are checked with a short
request before a run starts, so an unreachable server fails in seconds rather than after
MLflow's retries. Opening a local store holds ``mlflow.db.lock`` next to it, so that two
processes using a new store at once do not both run MLflow's schema migrations (one of
them would fail).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import sys
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from autoprune.core.errors import AutopruneError
from autoprune.system.database_url import hide_passwords, parse_database_url
from autoprune.system.locks import exclusive

DEFAULT_TRACKING_DIR = "runs/mlflow"
"""Store used when no tracking URI is given (relative to the working directory)."""
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
HEALTH_TIMEOUT_S = 3.0
_NOISY_LOGGERS = ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration")


@dataclass(frozen=True)
class TrackingStore:
    """A resolved tracking location.

    Attributes:
        uri: The MLflow tracking URI (``sqlite:////abs/path.db``, ``http://host:5000``, ...).
        artifact_root: ``file:`` URI for the artifacts of experiments created in a local
            store; None when the server or database decides.
        db_path: The SQLite file of a local store, else None.

    Example:
        >>> store = TrackingStore.resolve("/tmp/runs")
        >>> store.uri, store.artifact_root
        ('sqlite:////tmp/runs/mlflow.db', 'file:///tmp/runs/artifacts')
    """

    uri: str
    artifact_root: str | None = None
    db_path: Path | None = None

    @classmethod
    def resolve(cls, location: str | Path | None) -> TrackingStore:
        """Turn a user's ``--tracking-uri`` (directory, ``.db`` file or URI) into a store.

        Raises:
            AutopruneError: for ``file:`` URIs and legacy ``mlruns`` directories, which
                MLflow 3.17 no longer writes to.
        """
        text = str(location if location is not None else DEFAULT_TRACKING_DIR).strip()
        lowered = text.lower()
        if lowered.startswith(("http://", "https://")):
            return cls(uri=text.rstrip("/"))
        if lowered.startswith("sqlite:///"):
            return cls._local(Path(text[len("sqlite:///") :]))
        if lowered.startswith("file:"):
            raise AutopruneError(
                f"tracking URI '{hide_passwords(text)}' uses MLflow's retired file store; pass a "
                "directory (autoprune keeps a SQLite store in it) or a sqlite:/// URI instead"
            )
        if "://" in text:
            _check_database_uri(text)
            return cls(uri=text)  # another database (postgresql://...)
        path = Path(text).expanduser()
        if path.suffix.lower() in SQLITE_SUFFIXES:
            return cls._local(path)
        _refuse_file_store(path)
        return cls._local(path / "mlflow.db")

    @classmethod
    def _local(cls, db_path: Path) -> TrackingStore:
        db_path = db_path.expanduser().resolve()
        artifacts = db_path.parent / "artifacts"
        return cls(f"sqlite:///{db_path.as_posix()}", artifacts.as_uri(), db_path)

    @property
    def is_remote(self) -> bool:
        """Whether the store is an HTTP(S) tracking server."""
        return self.uri.lower().startswith(("http://", "https://"))

    def prepare(self) -> None:
        """Create a local store's folder, or check that a server answers (see :meth:`check`)."""
        if self.db_path is not None:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.check()

    def check(self, timeout: float = HEALTH_TIMEOUT_S) -> None:
        """Raise :class:`AutopruneError` when a tracking server does not answer in ``timeout`` s.

        Any HTTP answer (even an error status) counts as reachable, and so does a TLS
        handshake failure: MLflow's own client settings decide those cases. A database
        (``postgresql://``...) must accept a connection.
        """
        if not self.is_remote:
            if self.db_path is None:
                _check_database_answers(self.uri, timeout)
            return
        request = urllib.request.Request(f"{self.uri}/health", method="GET")
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                return
        except urllib.error.HTTPError:
            return
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLError):
                return
            reason = exc.reason
        except OSError as exc:  # refused, timed out, DNS failure
            reason = exc
        raise AutopruneError(
            f"MLflow tracking server {hide_passwords(self.uri)} is not reachable "
            f"({hide_passwords(str(reason))}); start it "
            "(mlflow server --host 127.0.0.1 --port 5000) or drop --tracking-uri to log "
            "to the local store"
        )

    def require_existing(self) -> None:
        """For reading: a local store must already exist (reading never creates one)."""
        if self.db_path is not None and not self.db_path.is_file():
            raise AutopruneError(
                f"no MLflow store at {self.db_path}; pass the --tracking-uri that the search used"
            )
        self.check()


DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")
"""SQLAlchemy databases MLflow can keep runs in (besides SQLite); ``+driver`` may follow."""


def _check_database_uri(uri: str) -> None:
    """Refuse a URI scheme MLflow cannot log to, or a database whose driver is missing."""
    scheme = uri.split("://", 1)[0].lower()
    if scheme.split("+", 1)[0] not in DATABASE_SCHEMES:
        raise AutopruneError(
            f"tracking URI '{hide_passwords(uri)}' has scheme '{scheme}', which MLflow cannot "
            "log to; pass a directory (autoprune keeps a SQLite store in it), a sqlite:/// "
            "file, an http(s):// MLflow server, or a postgresql:// or mysql:// database"
        )
    parse_database_url(uri, "tracking URI")


def _check_database_answers(uri: str, timeout: float) -> None:
    """Refuse a tracking database that does not accept a connection within ``timeout`` s."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    url = make_url(uri)
    wait = {"mssql": "timeout"}.get(url.get_backend_name(), "connect_timeout")
    engine = create_engine(url, connect_args={wait: max(1, round(timeout))})
    try:
        with engine.connect():
            return
    except (SQLAlchemyError, OSError) as exc:
        reason = hide_passwords(" ".join(str(getattr(exc, "orig", None) or exc).split())[:200])
        shown = url.render_as_string(hide_password=True)
        raise AutopruneError(
            f"tracking database {shown} does not answer ({reason}); start it, fix the URI, "
            "or drop --tracking-uri to log to the local store"
        ) from None
    finally:
        engine.dispose()


def _refuse_file_store(directory: Path) -> None:
    """Refuse a directory that holds MLflow's old file store (numbered experiment folders)."""
    if not directory.is_dir():
        return
    legacy = [p for p in directory.iterdir() if p.name.isdigit() and (p / "meta.yaml").exists()]
    if legacy:
        raise AutopruneError(
            f"{directory} holds an MLflow file store, which MLflow 3.17 no longer writes; "
            f"migrate it (mlflow migrate-filestore --source {directory} --target "
            f"sqlite:///{(directory / 'mlflow.db').resolve().as_posix()}) or pick another "
            "directory"
        )


def load_mlflow() -> ModuleType:
    """Import MLflow (slow: seconds) on first use and silence its INFO logging."""
    import mlflow

    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def make_client(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri``, without the deprecation warnings of its SQL store.

    For a local SQLite store the client is built (and the schema created or migrated) while
    holding ``<db>.lock``, one process at a time.
    """
    mlflow = load_mlflow()
    with store_lock(uri), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return mlflow.MlflowClient(tracking_uri=uri)  # builds the store (runs migrations)


def store_lock(uri: str) -> contextlib.AbstractContextManager[None]:
    """Hold ``<db>.lock`` next to a SQLite database file (nothing for other stores)."""
    prefix = "sqlite:///"
    path = uri[len(prefix) :] if uri.lower().startswith(prefix) else ""
    if not path or path.startswith(":memory:"):
        return contextlib.nullcontext()
    db = Path(path)
    return exclusive(db.with_name(f"{db.name}.lock"))


def ui_command(
    tracking_uri: str | Path | None = None, port: int = 5000, host: str = "127.0.0.1"
) -> list[str]:
    """The argv that serves the MLflow UI on a local store (for ``autoprune ui``).

    Example:
        >>> ui_command("/tmp/runs", port=5001)[1:7]
        ['-m', 'mlflow', 'ui', '--backend-store-uri', 'sqlite:////tmp/runs/mlflow.db', '--host']

    Raises:
        AutopruneError: for a tracking server (open its URL instead) or a bad port.
    """
    store = TrackingStore.resolve(tracking_uri)
    if store.is_remote:
        raise AutopruneError(
            f"{store.uri} is already an MLflow server; open it in a browser instead of "
            "starting a UI"
        )
    if not 1 <= port <= 65535:
        raise AutopruneError(f"port {port} is outside 1..65535; pass e.g. --port 5000")
    argv = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store.uri]
    argv += ["--host", host, "--port", str(port), "--workers", "1"]
    if store.artifact_root is not None:
        argv += ["--default-artifact-root", store.artifact_root]
    return argv


def tracking_location(tracking_uri: str | None, runs_dir: Path) -> str:
    """``tracking_uri``, else the local store under ``runs_dir``.

    Example:
        >>> tracking_location(None, Path("runs"))
        'runs/mlflow'
    """
    return tracking_uri or str(runs_dir / "mlflow")
