"""The search config a runner stores in its Optuna study, read back by joining workers."""

from __future__ import annotations

import optuna
import pytest

from agents._optuna_study import STUDY_CONFIG_ATTR, save_study_config, study_config
from autoprune.core.errors import AutopruneError
from autoprune.workflow.config import SearchConfig


def test_a_stored_config_reads_back_with_its_environment_settings():
    study = optuna.create_study()
    config = SearchConfig(agent="tpe", mode="quantize", pin_first_last=False, max_keep=0.9)
    save_study_config(study, config)
    assert study_config(study) == config


def test_a_study_stored_with_env_kwargs_reads_them_as_config_keys():
    study = optuna.create_study()
    saved = SearchConfig(agent="tpe").to_dict()
    for key in ("max_keep", "pin_first_last", "reward_kwargs", "layers"):  # not yet keys
        del saved[key]
    old = {"config": saved, "env_kwargs": {"max_keep": 0.7}}
    study.set_user_attr(STUDY_CONFIG_ATTR, old)
    assert study_config(study).max_keep == 0.7


def test_a_study_without_a_config_is_refused():
    with pytest.raises(AutopruneError, match="holds no autoprune search config"):
        study_config(optuna.create_study())
