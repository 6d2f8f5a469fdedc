"""SearchTracker: one MLflow run per search, metrics per episode, policy and plots as artifacts."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.core.results import EpisodeRecord, SearchResult
from autoprune.system.atomic_dir import write_atomic
from autoprune.system.critical import critical_section
from autoprune.system.database_url import drop_passwords
from autoprune.tracking._dashboard import (
    NOTE_TAG,
    VIEW_TAG,
    episode_values,
    run_description,
    runs_view_state,
    summary_tags,
)
from autoprune.tracking._layers import LAYERS_DIR, LayerTable
from autoprune.tracking._location import TrackingStore, make_client, store_lock
from autoprune.tracking._params import MAX_KEY_LENGTH, clean_key, clean_tags, flatten_params

BEST_POLICY_ARTIFACT = "best_policy.json"
SUMMARY_ARTIFACT = "summary.json"
PLOTS_DIR = "plots"
MODEL_DIR = "model"
PARENT_TAG = "mlflow.parentRunId"
_PARAMS_PER_BATCH = 100
_log = logging.getLogger(__name__)


class SearchTracker:
    """A thin MLflow client for searches; MLflow is imported on the first :meth:`start`.

    Logging goes to the innermost open run: the search run of :meth:`start`, or a child
    run of :meth:`start_child` while that block is open. A run that ends with an
    exception is marked FAILED (KILLED for Ctrl-C and SIGTERM), never left RUNNING by a
    process that lives to say so; :meth:`start` with ``run_id`` reopens a run (a resumed
    search continues its MLflow run, also one a killed process left RUNNING).

    Args:
        tracking_uri: A directory or ``.db`` file (local SQLite store, see
            :class:`TrackingStore`), a ``sqlite:///`` URI or an ``http(s)://`` server;
            None means ``runs/mlflow``.
        experiment: MLflow experiment name, created when missing.
        run_name: Name of the run opened by :meth:`start`.
        parent_run_id: Nest the run of :meth:`start` under this existing run.

    Example:
        A search with a result ``result`` (a :class:`SearchResult`)::

            tracker = SearchTracker("runs/mlflow", run_name="demo__ddpg__0")
            with tracker.start({"agent": {"name": "ddpg"}}, {"model": "demo"}) as run_id:
                best = -1.0
                for record in result.history:
                    best = max(best, record.metrics["accuracy"])
                    tracker.log_episode(record, best_so_far=best)
                tracker.log_result(result, Path("runs/demo"))
    """

    def __init__(
        self,
        tracking_uri: str | Path | None = None,
        experiment: str = "autoprune",
        run_name: str | None = None,
        parent_run_id: str | None = None,
    ) -> None:
        if not experiment.strip():
            raise AutopruneError("experiment name is empty; pass e.g. --experiment autoprune")
        self.store = TrackingStore.resolve(tracking_uri)
        self.experiment = experiment
        self.run_name = run_name
        self.parent_run_id = parent_run_id
        self._client: Any = None
        self._experiment_id: str | None = None
        self._runs: list[str] = []

    @property
    def tracking_uri(self) -> str:
        """The resolved MLflow tracking URI."""
        return self.store.uri

    @property
    def run_id(self) -> str:
        """The innermost open run."""
        if not self._runs:
            raise RuntimeError("no open run; log inside 'with tracker.start(...)'")
        return self._runs[-1]

    def start(
        self,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> contextlib.AbstractContextManager[str]:
        """Open the search run (context manager yielding its run id).

        Args:
            params: Configuration; nested mappings become ``a.b`` params.
            tags: e.g. model, dataset, agent, seed, ``git_sha`` (also written as
                ``mlflow.source.git.commit`` so the UI shows it).
            run_id: Reopen this run (set RUNNING again) instead of creating one, when it
                exists in the store and is not deleted. Params it already has keep their
                values; a changed value is written as the tag ``resumed.<param>``.

        Raises:
            AutopruneError: when the tracking server does not answer.
        """
        return self._open(self.run_name, self.parent_run_id, params, tags, run_id)

    def start_child(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> contextlib.AbstractContextManager[str]:
        """Open a run nested under the current one (one per method in ``compare``)."""
        return self._open(name, self.run_id, params, tags)

    @contextlib.contextmanager
    def _open(
        self,
        name: str | None,
        parent: str | None,
        params: Mapping[str, Any] | None,
        tags: Mapping[str, Any] | None,
        reopen: str | None = None,
    ) -> Iterator[str]:
        client = self._connect()
        all_tags = clean_tags(tags)
        if "git_sha" in all_tags:
            all_tags["mlflow.source.git.commit"] = all_tags["git_sha"]
        if parent is not None:
            all_tags[PARENT_TAG] = parent
        existing = self._reopen(reopen) if reopen is not None else None
        if existing is None:
            run = client.create_run(self._experiment_id, run_name=name, tags=all_tags)
        else:
            run = existing
        run_id = run.info.run_id
        self._runs.append(run_id)
        status = "FINISHED"
        try:
            if existing is None:
                self.log_params(params or {})
            else:
                self._update(run, params or {}, all_tags)
            yield run_id
        except Exception:
            status = "FAILED"
            raise
        except BaseException:  # KeyboardInterrupt, SystemExit
            status = "KILLED"
            raise
        finally:
            self._runs.pop()
            self._terminate(run_id, status)

    def _reopen(self, run_id: str) -> Any:
        """The run ``run_id`` set RUNNING again, or None when the store has no such run."""
        from mlflow.exceptions import MlflowException

        try:
            run = self._client.get_run(run_id)
        except MlflowException:
            return None
        if run.info.lifecycle_stage == "deleted":
            return None
        self._client.update_run(run_id, status="RUNNING")
        return run

    def _update(self, run: Any, params: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        """Params a reopened run lacks, tags, and ``resumed.<key>`` for changed params."""
        from mlflow.entities import Param, RunTag

        old = run.data.params
        new = flatten_params(params)
        items = [Param(k, v) for k, v in new.items() if k not in old]
        changed = {f"resumed.{k}": v for k, v in new.items() if k in old and old[k] != v}
        run_tags = [RunTag(k, v) for k, v in {**tags, **clean_tags(changed)}.items()]
        for start in range(0, max(len(items), 1), _PARAMS_PER_BATCH):
            batch = items[start : start + _PARAMS_PER_BATCH]
            self._client.log_batch(run.info.run_id, params=batch, tags=run_tags)
            run_tags = []

    def find_run(self, name: str) -> str | None:
        """The id of the newest run named ``name`` in the experiment, or None."""
        client = self._connect()
        quoted = name.replace("\\", "\\\\").replace("'", "\\'")
        runs = client.search_runs(
            [self._experiment_id],
            filter_string=f"attributes.run_name = '{quoted}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def run_status(self, run_id: str) -> str | None:
        """The MLflow status of ``run_id`` (``FINISHED``, ``RUNNING``, ``KILLED``...), or None
        when the store has no such run."""
        try:
            return str(self._connect().get_run(run_id).info.status)
        except Exception:  # MlflowException for an unknown id: a run this store lacks
            return None

    def logged_steps(self, metric: str = "reward") -> set[int]:
        """Steps at which the current run already has ``metric`` (episodes logged before)."""
        return {m.step for m in self._client.get_metric_history(self.run_id, metric)}

    def _connect(self) -> Any:
        if self._client is None:
            self.store.prepare()
            client = make_client(self.store.uri)
            with store_lock(self.store.uri):  # one process creates the experiment
                self._experiment_id = self._experiment(client)
            self._client = client
            self._share_runs_view()
        return self._client

    def _experiment(self, client: Any) -> str:
        """The experiment's id: created with the store's artifact root, or restored."""
        from mlflow.exceptions import MlflowException

        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                client.restore_experiment(found.experiment_id)
            return found.experiment_id
        try:
            return client.create_experiment(
                self.experiment, artifact_location=self.store.artifact_root
            )
        except MlflowException as exc:
            found = client.get_experiment_by_name(self.experiment)  # made by another process?
            if found is None:
                raise AutopruneError(
                    f"cannot create MLflow experiment '{self.experiment}' in {self.store.uri} "
                    f"({exc.message}); pass another --experiment name"
                ) from None
            return found.experiment_id

    def _share_runs_view(self) -> None:
        """Store the runs-table view (columns method, target, best accuracy, budget use...)
        as an experiment tag, which the UI loads with ``?viewStateShareKey=autoprune``."""
        value = runs_view_state()
        experiment = self._client.get_experiment(self._experiment_id)
        if experiment.tags.get(VIEW_TAG) != value:
            self._client.set_experiment_tag(self._experiment_id, VIEW_TAG, value)

    @property
    def experiment_id(self) -> str:
        """The MLflow experiment's id (connects on first use)."""
        self._connect()
        assert self._experiment_id is not None
        return self._experiment_id

    def _terminate(self, run_id: str, status: str) -> None:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # MLflow prints run URLs
                self._client.set_terminated(run_id, status=status)
        except Exception as exc:
            if status == "FINISHED":
                raise
            _log.warning("could not mark MLflow run %s %s: %s", run_id, status, exc)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log (flattened, truncated) params on the current run, 100 per request."""
        from mlflow.entities import Param

        run_id = self.run_id
        items = [Param(k, v) for k, v in flatten_params(params).items()]
        for start in range(0, len(items), _PARAMS_PER_BATCH):
            with critical_section():
                self._client.log_batch(run_id, params=items[start : start + _PARAMS_PER_BATCH])

    def log_metrics(self, values: Mapping[str, float], step: int) -> None:
        """Log several metrics at one step in a single request."""
        from mlflow.entities import Metric

        run_id, now = self.run_id, int(time.time() * 1000)
        metrics = [
            Metric(clean_key(k)[:MAX_KEY_LENGTH], float(v), now, step)
            for k, v in values.items()
            if v is not None
        ]
        if metrics:
            with critical_section():  # a stop mid-transaction would leave SQLite locked
                self._client.log_batch(run_id, metrics=metrics)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set (or overwrite) tags of the current run in one request."""
        from mlflow.entities import RunTag

        items = [RunTag(k, v) for k, v in clean_tags(tags).items()]
        if items:
            with critical_section():
                self._client.log_batch(self.run_id, tags=items)

    def log_episode(
        self,
        record: EpisodeRecord,
        best_so_far: float,
        baseline: Mapping[str, float] | None = None,
    ) -> None:
        """Log one evaluation at ``step=record.index`` (one request).

        Logged: reward, feasible (0/1), eval_seconds, ``best_accuracy`` (= ``best_so_far``
        when finite), the :data:`~autoprune.tracking.EPISODE_METRICS` present in
        ``record.metrics``, each ``budget_use_<metric>`` and, given the uncompressed
        model's ``baseline`` metrics, ``macs_ratio``, ``size_ratio``, ``latency_ratio``... (see
        :func:`~autoprune.tracking._dashboard.episode_values`).
        """
        self.log_metrics(episode_values(record, best_so_far, baseline), step=record.index)

    def log_layers(self, records: list[EpisodeRecord], out_dir: str | Path) -> dict[str, Path]:
        """Write and log the per-layer view of ``records``: ``layers/<field>.csv`` (layers ×
        episodes) and ``layers/<field>.png`` (its heat-map) for each policy field searched.
        Calling it again (at a checkpoint, then at the end) replaces the files."""
        files = LayerTable.from_records(records).write(Path(out_dir))
        for path in files.values():
            self.log_artifact(path, LAYERS_DIR)
        return files

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file or a folder to the current run (under ``artifact_path``)."""
        path, run_id = Path(path), self.run_id
        if not path.exists():
            raise AutopruneError(f"cannot log artifact {path}: it does not exist")
        if path.is_dir():
            self._client.log_artifacts(run_id, str(path), artifact_path)
        else:
            self._client.log_artifact(run_id, str(path), artifact_path)

    def log_model_file(self, path: str | Path) -> None:
        """Upload a compressed model file (``.pt``, ``.onnx``, coded weights) under ``model/``."""
        self.log_artifact(path, MODEL_DIR)

    def log_result(self, result: SearchResult, out_dir: str | Path) -> dict[str, Path]:
        """Write the search's outputs to ``out_dir`` and log them on the current run.

        Writes ``best_policy.json`` (when a feasible policy exists), ``summary.json``,
        ``plots/{policy,pareto,reward}.png`` and the per-layer view ``layers/<field>.{csv,png}``;
        logs each as an artifact at the same relative path. The one-off values (best
        episode's accuracy, reward and budget use, baseline metrics, evaluations, wall time)
        become run tags ``best.*``, ``baseline.*``, ``search.*`` (see
        :func:`~autoprune.tracking._dashboard.summary_tags`), not one-point metric charts.

        Returns:
            The written files keyed by artifact path.
        """
        files = write_result_files(result, Path(out_dir), self.run_id, self.tracking_uri)
        for rel, path in files.items():
            parent = str(Path(rel).parent)
            self.log_artifact(path, None if parent == "." else parent)
        targets = self._client.get_run(self.run_id).data.tags.get("targets")
        self.set_tags({**summary_tags(result), NOTE_TAG: run_description(result, targets)})
        return files


def best_policy(record: EpisodeRecord) -> Policy:
    """The record's policy with its measured metrics filled in (when it has none)."""
    policy = record.policy
    return policy if policy.metrics else replace(policy, metrics=dict(record.metrics))


def write_result_files(
    result: SearchResult, out_dir: Path, run_id: str | None = None, tracking_uri: str | None = None
) -> dict[str, Path]:
    """Write best policy, summary and plots under ``out_dir``; keys are relative paths."""
    from autoprune.tracking import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    best = result.best
    if best is not None:
        files[BEST_POLICY_ARTIFACT] = write_atomic(
            out_dir / BEST_POLICY_ARTIFACT, json.dumps(best_policy(best).to_dict(), indent=2)
        )
    uri = drop_passwords(tracking_uri) if tracking_uri else tracking_uri  # never a password
    summary = {"run_id": run_id, "tracking_uri": uri, **result.to_dict()}
    summary_path = out_dir / SUMMARY_ARTIFACT
    _write_atomic(summary_path, json.dumps(summary, indent=2, default=_json_default))
    files[SUMMARY_ARTIFACT] = summary_path
    plot_dir = out_dir / PLOTS_DIR
    if best is not None:
        files[f"{PLOTS_DIR}/policy.png"] = plots.plot_policy(
            best_policy(best), plot_dir / "policy.png"
        )
    files[f"{PLOTS_DIR}/pareto.png"] = plots.plot_pareto_grid(
        result.history, plot_dir / "pareto.png"
    )
    files[f"{PLOTS_DIR}/reward.png"] = plots.plot_reward_curve(
        result.history, plot_dir / "reward.png"
    )
    files.update(LayerTable.from_records(result.history).write(out_dir))
    return files


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` all-or-nothing (:func:`~autoprune.system.atomic_dir.write_atomic`)."""
    write_atomic(path, text)


def _json_default(value: Any) -> Any:
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)
