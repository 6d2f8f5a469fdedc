"""Without ``--dataset``, a zoo model runs on its own dataset in every command."""

from __future__ import annotations

import pytest

from autoprune.cli._common import dataset_for
from autoprune.cli._config_args import resolve_config
from autoprune.core.errors import AutopruneError


def test_a_zoo_model_without_a_dataset_gets_its_own(tmp_path):
    assert resolve_config(None, model="vgg_small").dataset == "fashion-mnist"
    assert resolve_config(None).dataset == "digits"  # the default demo model
    assert resolve_config(None, model="lenet5", dataset="digits").dataset == "digits"
    config = tmp_path / "search.yaml"
    config.write_text("model: lenet5\ndataset: digits\n")
    assert resolve_config(config).dataset == "digits"  # the file's choice is kept
    assert resolve_config(config, model="vgg_small").dataset == "digits"
    config.write_text("model: lenet5\n")
    assert resolve_config(config).dataset == "fashion-mnist"


def test_a_model_without_a_known_dataset_needs_one():
    assert dataset_for("vgg_small", None) == "fashion-mnist"
    assert dataset_for("vgg_small", "digits") == "digits"
    with pytest.raises(AutopruneError, match="unknown model 'nope'"):
        dataset_for("nope", None)
    with pytest.raises(AutopruneError, match="--dataset is required for model 'net.py:build'"):
        dataset_for("net.py:build", None)
