"""Resuming a run folder never unpickles what is in it (SB3's model.zip and replay.pkl were
pickles: a planted one ran a command on --resume)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

import autoprune
from agents import run_search
from agents._sb3_state import AGENT_FILE, REPLAY_FILE
from autoprune.cli import main
from autoprune.core.errors import AutopruneError
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession

Plant = Callable[[Path, Path], None]


def _method_folder(config: SearchConfig, name: str) -> Path:
    (checkpoint,) = (Path(config.runs_dir) / "searches" / name / "checkpoints").iterdir()
    return checkpoint / "method"


def test_planted_pickles_beside_the_checkpoint_are_never_loaded(
    tiny_config: SearchConfig,
    tiny_session: SearchSession,
    marker_pickle: Plant,
    tmp_path: Path,
) -> None:
    run_search(tiny_config, session=tiny_session, run_name="planted")
    method = _method_folder(tiny_config, "planted")
    assert sorted(p.name for p in method.iterdir()) == [AGENT_FILE, REPLAY_FILE, "state.json"]
    marker = tmp_path / "owned"
    for name in ("model.zip", "replay.pkl"):
        marker_pickle(method / name, marker)

    longer = run_search(tiny_config.replace(episodes=5), session=tiny_session, resume="planted")

    assert [r.index for r in longer.history] == [0, 1, 2, 3, 4]
    assert not marker.exists()


def test_a_checkpoint_of_pickles_only_is_refused_without_loading_them(
    tiny_config: SearchConfig,
    tiny_session: SearchSession,
    marker_pickle: Plant,
    tmp_path: Path,
) -> None:
    run_search(tiny_config, session=tiny_session, run_name="pickles-only")
    method = _method_folder(tiny_config, "pickles-only")
    (method / AGENT_FILE).unlink()
    (method / REPLAY_FILE).unlink()
    marker = tmp_path / "owned"
    for name in ("model.zip", "replay.pkl"):
        marker_pickle(method / name, marker)

    with pytest.raises(AutopruneError, match="pickles, which can run code and are never loaded"):
        run_search(tiny_config.replace(episodes=5), session=tiny_session, resume="pickles-only")
    assert not marker.exists()


@pytest.mark.parametrize("as_torch_zip", [False, True])
def test_a_pickle_inside_agent_pt_is_refused(
    tiny_config: SearchConfig,
    tiny_session: SearchSession,
    marker_pickle: Plant,
    tmp_path: Path,
    as_torch_zip: bool,
) -> None:
    name = f"evil-agent-{as_torch_zip}"
    run_search(tiny_config, session=tiny_session, run_name=name)
    method = _method_folder(tiny_config, name)
    marker = tmp_path / "owned"
    marker_pickle(tmp_path / "payload.pkl", marker)
    if as_torch_zip:  # torch.save's zip whose data.pkl calls os.system when unpickled
        torch.save(_Unpickled(tmp_path / "payload.pkl"), method / AGENT_FILE)
    else:  # a bare pickle (torch.load's legacy format)
        (method / AGENT_FILE).write_bytes((tmp_path / "payload.pkl").read_bytes())

    with pytest.raises(AutopruneError, match=r"agent\.pt is damaged"):
        run_search(tiny_config.replace(episodes=5), session=tiny_session, resume=name)
    assert not marker.exists()


class _Unpickled:
    """Pickles as ``pickle.loads(PAYLOAD)``: unpickling it runs the payload."""

    def __init__(self, payload: Path) -> None:
        self.payload = payload.read_bytes()

    def __reduce__(self) -> tuple[object, tuple[bytes]]:
        return pickle.loads, (self.payload,)


def test_a_forged_replay_header_is_refused_before_allocation(
    tiny_config: SearchConfig, tiny_session: SearchSession
) -> None:
    run_search(tiny_config, session=tiny_session, run_name="forged-replay")
    path = _method_folder(tiny_config, "forged-replay") / REPLAY_FILE
    with np.load(path, allow_pickle=False) as saved:
        arrays = {name: saved[name] for name in saved.files}
    arrays["observations"] = np.zeros((1, 1), np.float32)  # another shape than the buffer's
    np.savez(path, **arrays)

    with pytest.raises(AutopruneError, match="does not fit the search environment"):
        run_search(tiny_config.replace(episodes=5), session=tiny_session, resume="forged-replay")


def test_a_checkpoint_pointer_cannot_leave_the_checkpoints_folder(
    tiny_config: SearchConfig, tiny_session: SearchSession
) -> None:
    run_search(tiny_config, session=tiny_session, run_name="pointer")
    run = Path(tiny_config.runs_dir) / "searches" / "pointer"
    (run / "checkpoint.json").write_text('{"name": "../../../elsewhere", "episodes": 3}')

    with pytest.raises(AutopruneError, match="not a plain name of a folder"):
        run_search(tiny_config.replace(episodes=5), session=tiny_session, resume="pointer")


def test_a_damaged_agent_file_is_one_line_exit_2_and_leaves_the_mlflow_run(
    tiny_config: SearchConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    options = {"warmup_episodes": 1, "net_arch": [8, 8]}
    run = autoprune.search(
        "demo", "digits", agent="ddpg", episodes=3, runs_dir=runs, weights=tiny_config.weights,
        val_samples=200, calib_batches=1, checkpoint_every=1, agent_options=options,
    )  # fmt: skip
    method = next((run.run_dir / "checkpoints").iterdir()) / "method"
    (method / AGENT_FILE).write_bytes((method / AGENT_FILE).read_bytes()[:100])  # torn

    code = main(["search", "--resume", run.run_dir.name, "--runs-dir", str(runs), "-n", "5"])

    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "agent.pt is damaged" in err and "Traceback" not in err
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{runs / 'mlflow' / 'mlflow.db'}")
    assert client.get_run(run.run_id).info.status == "FINISHED"  # not FAILED
