"""Datasets from user functions: ``file.py:function`` and ``package.module:function``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from autoprune.core.errors import AutopruneError
from autoprune.data import DataSplits, load_dataset

SOURCE = textwrap.dedent(
    """
    import numpy as np
    import torch

    from autoprune.data import DataSplits


    def arrays():
        x = np.arange(20 * 9, dtype=np.float32).reshape(20, 3, 3)
        return x, np.arange(20) % 2, x[:6], np.arange(6) % 2


    def ready():
        x, y = torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1])
        return DataSplits.from_tensors("mine", x, y, x, y, x, y, num_classes=2)


    def wrong():
        return {"x": 1}


    not_callable = 3
    """
)


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_data.py"
    path.write_text(SOURCE)
    return path


def test_file_function_returning_arrays(user_file: Path) -> None:
    splits = load_dataset(f"{user_file}:arrays", val_size=4, seed=0)
    assert splits.name == f"{user_file}:arrays"
    assert splits.input_shape == (1, 3, 3) and splits.num_classes == 2
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (16, 4, 6)
    assert float(splits.x_train.mean()) == pytest.approx(0.0, abs=1e-5)


def test_file_function_returning_datasplits_is_used_as_is(user_file: Path) -> None:
    splits = load_dataset(f"{user_file}:ready")
    assert isinstance(splits, DataSplits) and splits.name == "mine"
    assert torch.equal(splits.x_val, torch.zeros(4, 1, 2, 2))


def test_package_module_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "userpkg_for_autoprune_tests"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "sets.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    splits = load_dataset("userpkg_for_autoprune_tests.sets:arrays", val_size=0.25)
    assert len(splits.y_val) == 5


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{dir}/absent.py:arrays", "does not exist"),
        ("{file}:missing", "has no function 'missing'"),
        ("{file}:not_callable", "has no function 'not_callable'"),
        ("{file}:wrong", "returned dict; return a DataSplits or a tuple"),
        (
            "no_such_module_for_autoprune:fn",
            "dataset module 'no_such_module_for_autoprune' is not importable",
        ),
        ("{file}:", "not a function reference"),
    ],
)
def test_bad_references(user_file: Path, target: str, message: str) -> None:
    name = target.format(dir=user_file.parent, file=user_file)
    with pytest.raises(AutopruneError, match=message):
        load_dataset(name)
