"""Tests for autoprune/tracking: a fake search logged to a local SQLite store, read back.

Creating an MLflow database runs its migrations (seconds), so one store is shared by the
whole module and every test looks only at its own runs.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.core.results import SearchResult
from autoprune.tracking import (
    SearchTracker,
    TrackingStore,
    flatten_params,
    git_sha,
    read_best_policy,
    ui_command,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Tracked:
    store_dir: Path
    out_dir: Path
    result: SearchResult
    run_id: str
    child_id: str
    client: object


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory, fake_records) -> Tracked:
    """Log a fake search with one child run (an infeasible-only search) and open a client."""
    root = tmp_path_factory.mktemp("tracking")
    records = fake_records([1.0, 0.5, 0.25, 0.6])  # the least compressed breaks the budget
    result = SearchResult("ddpg", records, baseline_metrics={"accuracy": 0.95}, seconds=2.0)
    tracker = SearchTracker(root / "store", run_name="tiny__ddpg__0")
    params = {"agent": {"name": "ddpg", "lr": 1e-4}, "budget": ["flops=0.5"]}
    tags = {"model": "tiny", "dataset": "digits", "seed": 0, "git_sha": "abc123"}
    with tracker.start(params, tags) as run_id:
        best = 0.0
        for record in records:
            best = max(best, record.metrics["accuracy"] if record.feasible else 0.0)
            tracker.log_episode(record, best_so_far=best)
        tracker.log_result(result, root / "out")
        with tracker.start_child("infeasible", params={"method": "random"}) as child_id:
            bad = SearchResult("random", [records[0]])
            tracker.log_episode(records[0], best_so_far=0.0)
            tracker.log_result(bad, root / "out_child")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracker.tracking_uri)
    return Tracked(root / "store", root / "out", result, run_id, child_id, client)


def test_search_run_finished_with_params_and_tags(tracked: Tracked) -> None:
    run = tracked.client.get_run(tracked.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "tiny__ddpg__0"
    assert run.data.params == {
        "agent.name": "ddpg",
        "agent.lr": "0.0001",
        "budget": '["flops=0.5"]',
    }
    assert run.data.tags["model"] == "tiny"
    assert run.data.tags["seed"] == "0"
    assert run.data.tags["mlflow.source.git.commit"] == "abc123"
    assert (tracked.store_dir / "mlflow.db").is_file()


def test_episode_metrics_history(tracked: Tracked) -> None:
    history = tracked.client.get_metric_history(tracked.run_id, "accuracy")
    by_step = {m.step: m.value for m in history}
    assert by_step == {
        r.index: pytest.approx(r.metrics["accuracy"]) for r in tracked.result.history
    }
    feasible = {
        m.step: m.value for m in tracked.client.get_metric_history(tracked.run_id, "feasible")
    }
    assert feasible == {0: 0.0, 1: 1.0, 2: 1.0, 3: 1.0}
    best = sorted(
        tracked.client.get_metric_history(tracked.run_id, "best_accuracy"), key=lambda m: m.step
    )
    values = [m.value for m in best]
    assert values == sorted(values)  # best so far never drops
    for key in ("reward", "latency", "energy", "size", "macs", "budget_use_macs"):
        assert len(tracked.client.get_metric_history(tracked.run_id, key)) == 4


def test_result_tags_name_the_best_policy(tracked: Tracked) -> None:
    run = tracked.client.get_run(tracked.run_id)
    tags, best = run.data.tags, tracked.result.best
    assert best is not None and best.index == 3
    assert float(tags["best.accuracy"]) == pytest.approx(best.metrics["accuracy"])
    assert float(tags["best.latency"]) == pytest.approx(best.metrics["latency"])
    assert float(tags["best.budget_use_macs"]) == pytest.approx(best.metrics["budget_use_macs"])
    assert tags["best.episode"] == "3"
    assert tags["search.evaluations"] == "4"
    assert float(tags["baseline.accuracy"]) == pytest.approx(0.95)
    for key in ("best_index", "evaluations", "search_seconds", "baseline_accuracy"):
        assert key not in run.data.metrics  # one-off values are not one-dot charts


def test_artifacts_logged_and_written_to_out_dir(tracked: Tracked, tmp_path: Path) -> None:
    root = {f.path for f in tracked.client.list_artifacts(tracked.run_id)}
    assert root == {"best_policy.json", "summary.json", "plots", "layers"}
    pngs = {f.path for f in tracked.client.list_artifacts(tracked.run_id, "plots")}
    assert pngs == {"plots/policy.png", "plots/pareto.png", "plots/reward.png"}
    local = Path(tracked.client.download_artifacts(tracked.run_id, "plots", str(tmp_path)))
    for name in ("policy.png", "pareto.png", "reward.png"):
        for path in (local / name, tracked.out_dir / "plots" / name):
            data = path.read_bytes()
            assert data[:8] == PNG_MAGIC and len(data) > 5_000
    summary = (tracked.out_dir / "summary.json").read_text()
    assert tracked.run_id in summary


def test_read_best_policy_round_trips(tracked: Tracked) -> None:
    policy = read_best_policy(tracked.run_id, tracked.store_dir)
    expected = tracked.result.best.policy
    assert policy.layers == expected.layers
    assert policy.fingerprint == expected.fingerprint
    assert policy.metrics["accuracy"] == pytest.approx(tracked.result.best.metrics["accuracy"])
    assert Policy.load(tracked.out_dir / "best_policy.json").layers == expected.layers


def test_read_best_policy_unknown_run(tracked: Tracked) -> None:
    with pytest.raises(AutopruneError, match="not in the tracking store"):
        read_best_policy("0123456789abcdef0123456789abcdef", tracked.store_dir)


def test_child_run_is_nested_and_has_no_best_policy(tracked: Tracked) -> None:
    child = tracked.client.get_run(tracked.child_id)
    assert child.data.tags["mlflow.parentRunId"] == tracked.run_id
    assert child.info.run_name == "infeasible"
    assert child.info.status == "FINISHED"
    assert child.data.params == {"method": "random"}
    assert child.data.tags["best.found"] == "false"
    with pytest.raises(AutopruneError, match="no best_policy.json"):
        read_best_policy(tracked.child_id, tracked.store_dir)


@pytest.mark.parametrize(
    ("error", "status"), [(RuntimeError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED")]
)
def test_exception_ends_run_with_status(
    tracked: Tracked, error: BaseException, status: str
) -> None:
    tracker = SearchTracker(tracked.store_dir, run_name=f"crash-{status}")
    started: list[str] = []
    with pytest.raises(type(error)), tracker.start({"x": 1}) as run_id:
        started.append(run_id)
        raise error
    assert tracked.client.get_run(started[0]).info.status == status


def test_parent_run_id_nests_a_separate_tracker(tracked: Tracked) -> None:
    tracker = SearchTracker(tracked.store_dir, run_name="worker", parent_run_id=tracked.run_id)
    with tracker.start() as run_id:
        tracker.log_metrics({"reward": 1.0}, step=0)
    assert tracked.client.get_run(run_id).data.tags["mlflow.parentRunId"] == tracked.run_id


def test_logging_outside_a_run_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no open run"):
        SearchTracker(tmp_path / "store").log_metrics({"reward": 1.0}, step=0)
    assert not (tmp_path / "store").exists()  # constructing a tracker touches nothing


def test_log_artifact_missing_file(tracked: Tracked, tmp_path: Path) -> None:
    tracker = SearchTracker(tracked.store_dir)
    with pytest.raises(AutopruneError, match="does not exist"), tracker.start():
        tracker.log_model_file(tmp_path / "model.pt")


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_fails_with_fix() -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    tracker = SearchTracker(uri)
    with pytest.raises(AutopruneError, match="not reachable") as info, tracker.start():
        pass
    assert uri in str(info.value) and "--tracking-uri" in str(info.value)
    with pytest.raises(AutopruneError, match="not reachable"):
        read_best_policy("abc", uri)


def test_read_from_missing_store_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(AutopruneError, match="no MLflow store"):
        read_best_policy("abc", tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_resolve_local_paths_to_sqlite(tmp_path: Path) -> None:
    tmp_path = tmp_path.resolve()
    store = TrackingStore.resolve(tmp_path / "runs")
    assert store.uri == f"sqlite:///{(tmp_path / 'runs' / 'mlflow.db').as_posix()}"
    assert store.artifact_root == (tmp_path / "runs" / "artifacts").as_uri()
    assert not store.is_remote
    db = TrackingStore.resolve(tmp_path / "x.db")
    assert db.db_path == tmp_path / "x.db"
    assert TrackingStore.resolve(f"sqlite:///{tmp_path}/y.db").db_path == tmp_path / "y.db"


def test_resolve_relative_sqlite_uri_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path = tmp_path.resolve()
    monkeypatch.chdir(tmp_path)
    assert TrackingStore.resolve("sqlite:///rel/m.db").db_path == tmp_path / "rel" / "m.db"
    assert TrackingStore.resolve(None).db_path == tmp_path / "runs" / "mlflow" / "mlflow.db"


def test_resolve_servers_and_refusals(tmp_path: Path) -> None:
    server = TrackingStore.resolve("https://mlflow.example.org/")
    assert server.is_remote and server.uri == "https://mlflow.example.org"
    assert server.artifact_root is None and server.db_path is None
    with pytest.raises(AutopruneError, match="file store"):
        TrackingStore.resolve(f"file://{tmp_path}")
    legacy = tmp_path / "mlruns"
    (legacy / "0").mkdir(parents=True)
    (legacy / "0" / "meta.yaml").write_text("name: Default\n")
    with pytest.raises(AutopruneError, match="migrate-filestore"):
        TrackingStore.resolve(legacy)


def test_flatten_params_nests_and_truncates() -> None:
    flat = flatten_params({"a": {"b": {"c": 1}, "d": None}, "long": "x" * 50, "e f/g?": 2}, 10)
    assert flat == {"a.b.c": "1", "a.d": "None", "long": "x" * 10, "e f/g_": "2"}


def test_git_sha(tmp_path: Path) -> None:
    assert git_sha(tmp_path) is None
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "init"], check=True)
    sha = git_sha(repo)
    assert sha is not None and len(sha) == 40 and int(sha, 16) >= 0


def test_ui_command(tmp_path: Path) -> None:
    argv = ui_command(tmp_path / "runs", port=5001)
    assert argv[1:4] == ["-m", "mlflow", "ui"]
    joined = " ".join(argv)
    assert f"--backend-store-uri sqlite:///{tmp_path.as_posix()}/runs/mlflow.db" in joined
    assert "--host 127.0.0.1 --port 5001" in joined
    with pytest.raises(AutopruneError, match="already an MLflow server"):
        ui_command("http://127.0.0.1:5000")
    with pytest.raises(AutopruneError, match="port"):
        ui_command(tmp_path, port=0)


def test_a_killed_run_is_reopened_with_its_history(tracked: Tracked, fake_records) -> None:
    tracker = SearchTracker(tracked.store_dir, run_name="tiny__ddpg__resumed")
    record, later = fake_records([0.5, 0.25])
    with pytest.raises(KeyboardInterrupt), tracker.start({"episodes": 2}) as run_id:
        tracker.log_episode(record, best_so_far=0.7)
        raise KeyboardInterrupt  # Ctrl-C / SIGTERM
    assert tracked.client.get_run(run_id).info.status == "KILLED"
    assert tracker.find_run("tiny__ddpg__resumed") == run_id

    with tracker.start({"episodes": 4}, run_id=run_id) as reopened:
        assert reopened == run_id and tracker.logged_steps() == {0}
        assert tracked.client.get_run(run_id).info.status == "RUNNING"
        tracker.log_episode(later, best_so_far=0.7)

    run = tracked.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["episodes"] == "2" and run.data.tags["resumed.episodes"] == "4"
    with tracker.start({}, run_id="0" * 32) as fresh:  # gone from the store: a new run
        assert fresh != run_id
