"""Search configuration: YAML, unknown keys, bad values."""

from __future__ import annotations

import pytest

from autoprune.core.errors import AutopruneError
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.config_file import load_config_file


def test_yaml_file_builds_a_config(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text(
        "model: demo\ntargets: latency=60%\nepisodes: 12\nagent_options:\n  noise: 0.3\n"
    )
    config = SearchConfig.from_mapping(load_config_file(path))
    assert config.targets == ("latency=60%",)
    assert config.episodes == 12 and config.agent_options == {"noise": 0.3}


def test_flags_override_and_none_keeps_file_value():
    config = SearchConfig.from_mapping({"episodes": 12, "agent": "tpe"})
    assert config.replace(episodes=None, agent="random").to_dict()["agent"] == "random"
    assert config.replace(episodes=None).episodes == 12


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"episode": 3}, r"unknown config key\(s\) \['episode'\]"),
        ({"mode": "both"}, "unknown mode 'both'"),
        ({"episodes": 0}, "episodes 0 must be a positive integer"),
        ({"min_keep": 0}, "min_keep"),
        ({"max_sparsity": 1.0}, r"max_sparsity 1.0 must be in \[0, 1\)"),
        ({"min_bits": 9}, "bits range"),
        ({"min_bits": 1}, "bits range"),
    ],
)
def test_bad_values(data, message):
    with pytest.raises(AutopruneError, match=message):
        SearchConfig.from_mapping(data)


def test_malformed_or_missing_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [demo\n")
    with pytest.raises(AutopruneError, match="not valid YAML at line"):
        load_config_file(bad)
    with pytest.raises(AutopruneError, match="does not exist"):
        load_config_file(tmp_path / "missing.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(AutopruneError, match="mapping"):
        load_config_file(listing)


def test_environment_settings_are_config_keys():
    config = SearchConfig.from_mapping(
        {"mode": "quantize", "pin_first_last": False, "max_keep": 0.9, "layers": ["conv1"]}
    )
    settings = config.env_settings()
    assert settings["pin_first_last"] is False and settings["max_keep"] == 0.9
    assert settings["layers"] == ("conv1",) and settings["mode"] == "quantize"
    assert SearchConfig.from_mapping(config.to_dict()) == config  # round trip through JSON


def test_the_old_env_kwargs_spelling_is_read_as_config_keys():
    old = {"agent_options": {"noise": 0.3, "env_kwargs": {"pin_first_last": False}}}
    config = SearchConfig.from_mapping(old)
    assert config.pin_first_last is False and config.agent_options == {"noise": 0.3}
    with pytest.raises(AutopruneError, match="unknown environment setting"):
        SearchConfig.from_mapping({"agent_options": {"env_kwargs": {"pin_first": False}}})
    with pytest.raises(AutopruneError, match="both as config keys"):
        SearchConfig.from_mapping(
            {"max_keep": 0.8, "agent_options": {"env_kwargs": {"max_keep": 0.9}}}
        )
    with pytest.raises(AutopruneError, match="write them as config keys"):
        SearchConfig(agent_options={"env_kwargs": {"max_keep": 0.9}}).check()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"min_keep": 0.6, "max_keep": 0.5}, "keep range 0.6..0.5"),
        ({"layers": "conv1", "pin_first_last": "no"}, "pin_first_last' must be true or false"),
        ({"layers": [1, 2]}, "layers' must be a list of strings"),
    ],
)
def test_bad_environment_settings(data, message):
    with pytest.raises(AutopruneError, match=message):
        SearchConfig.from_mapping(data)


def test_a_run_saved_before_the_scale_wall_resumes_with_the_clip_wall(tmp_path):
    """A run folder's config.json without ``wall`` was searched with AMC's clip."""
    import json

    saved = tmp_path / "searches" / "old__tpe__0__1" / "config.json"
    saved.parent.mkdir(parents=True)
    saved.write_text(json.dumps({"agent": "tpe", "episodes": 4}))
    assert SearchConfig.from_mapping(load_config_file(saved)).wall == "clip"
    user = tmp_path / "config.json"  # a user's own file keeps today's default
    user.write_text(json.dumps({"agent": "tpe"}))
    assert SearchConfig.from_mapping(load_config_file(user)).wall == "scale"
