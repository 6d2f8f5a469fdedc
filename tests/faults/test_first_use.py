"""Two first searches at once in one fresh folder: both succeed (no MLflow or Optuna schema
migration race, no clash of run names started in the same second)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_two_first_searches_in_one_fresh_folder_both_succeed(searches, tmp_path: Path) -> None:
    pair = [searches.start(tmp_path, episodes=3, seed=7) for _ in range(2)]

    codes = [search.wait() for search in pair]

    assert codes == [0, 0], "\n".join(search.output() for search in pair)
    runs = sorted((tmp_path / "runs" / "searches").iterdir())
    assert len(runs) == 2 and all((run / "result.json").is_file() for run in runs)
    mlflow = pair[0].mlflow_runs_all()
    assert sorted(r.info.run_name for r in mlflow) == [run.name for run in runs]
    assert {r.info.status for r in mlflow} == {"FINISHED"}
