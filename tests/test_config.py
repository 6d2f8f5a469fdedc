"""Search configuration: YAML, unknown keys, bad values."""

from __future__ import annotations

import pytest

from autoprune.core.errors import AutopruneError
from autoprune.workflow.config import SearchConfig, load_config_file


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
