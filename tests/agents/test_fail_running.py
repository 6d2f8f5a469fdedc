"""Between rounds the runner fails the RUNNING trials its dead workers left, never those of
workers that joined with ``autoprune worker``, and a trial finished meanwhile is no error."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from agents._optuna_study import JOINED_ATTR, fail_running, make_storage


def _study(tmp_path: Path) -> tuple[optuna.Study, optuna.storages.BaseStorage]:
    storage = make_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    return optuna.create_study(study_name="s", storage=storage), storage


def test_a_joined_workers_running_trial_is_left_to_run(tmp_path: Path) -> None:
    study, storage = _study(tmp_path)
    own, theirs = study.ask(), study.ask()
    theirs.set_user_attr(JOINED_ATTR, 4242)
    assert fail_running(study, storage) == 1
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {own.number: TrialState.FAIL, theirs.number: TrialState.RUNNING}
    assert fail_running(study, storage, joined=True) == 1  # a joined worker that timed out
    assert study.get_trials()[theirs.number].state == TrialState.FAIL


def test_a_trial_that_finishes_while_failing_is_left_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study, storage = _study(tmp_path)
    racing, stale = study.ask(), study.ask()
    set_state = storage.set_trial_state_values

    def finish_first(trial_id: int, state: TrialState, values: object = None) -> bool:
        if trial_id == racing._trial_id:  # its worker prunes it just before the runner
            set_state(trial_id, TrialState.PRUNED)
        return set_state(trial_id, state, values)

    monkeypatch.setattr(storage, "set_trial_state_values", finish_first)
    assert fail_running(study, storage) == 1
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {racing.number: TrialState.PRUNED, stale.number: TrialState.FAIL}
