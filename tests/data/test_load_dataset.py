"""load_dataset dispatch and dataset_names."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoprune.core.errors import AutopruneError
from autoprune.data import DEFAULT_DATA_DIRS, dataset_names, load_dataset


def test_dataset_names() -> None:
    assert dataset_names() == ["cifar10", "digits", "fashion-mnist", "mnist"]
    assert set(DEFAULT_DATA_DIRS) <= set(dataset_names())


def test_unknown_name_lists_choices_and_forms() -> None:
    with pytest.raises(AutopruneError) as info:
        load_dataset("imagenet")
    message = str(info.value)
    assert "unknown dataset 'imagenet'" in message
    assert "cifar10, digits, fashion-mnist, mnist" in message
    assert "npz:PATH" in message and "file.py:function" in message


def test_names_are_case_and_underscore_insensitive(tmp_path: Path) -> None:
    assert load_dataset("DIGITS").name == "digits"
    with pytest.raises(AutopruneError, match="dataset 'fashion-mnist': cannot find"):
        load_dataset("Fashion_MNIST", data_dir=tmp_path)


@pytest.mark.parametrize("name", ["", "   ", None])
def test_empty_name(name: object) -> None:
    with pytest.raises(AutopruneError, match="non-empty string"):
        load_dataset(name)  # type: ignore[arg-type]


def test_arguments_checked_before_reading() -> None:
    with pytest.raises(AutopruneError, match="val_size"):
        load_dataset("mnist", data_dir="/nonexistent", val_size=-3)
