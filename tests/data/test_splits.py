"""DataSplits: checks on construction, loaders, describe."""

from __future__ import annotations

import pytest
import torch

from autoprune.core.errors import AutopruneError
from autoprune.data import DataSplits


def _splits(n: int = 10, **changes: object) -> DataSplits:
    x = torch.arange(n * 4, dtype=torch.float32).reshape(n, 1, 2, 2)
    y = torch.arange(n) % 3
    fields: dict[str, object] = {
        "name": "toy",
        "x_train": x,
        "y_train": y,
        "x_val": x[:3],
        "y_val": y[:3],
        "x_test": x[:4],
        "y_test": y[:4],
        "num_classes": 3,
    }
    fields.update(changes)
    return DataSplits.from_tensors(**fields)  # type: ignore[arg-type]


def test_input_shape_and_describe() -> None:
    splits = _splits()
    assert splits.input_shape == (1, 2, 2)
    info = splits.describe()
    assert info["train"] == 10 and info["val"] == 3 and info["test"] == 4
    assert info["num_classes"] == 3 and info["input_shape"] == [1, 2, 2]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"x_val": torch.zeros(3, 1, 2, 2, dtype=torch.float64)}, "float32"),
        ({"y_val": torch.zeros(3, dtype=torch.int32)}, "int64"),
        ({"y_test": torch.zeros(3, dtype=torch.int64)}, "4 inputs and 3 targets"),
        ({"x_test": torch.zeros(4, 1, 3, 3)}, "same shape"),
        ({"num_classes": 2}, "num_classes is 2"),
        ({"num_classes": 0}, "positive int"),
    ],
)
def test_bad_contents_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(AutopruneError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _splits(**changes)


def test_loader_batches_cover_split_in_order() -> None:
    splits = _splits()
    batches = list(splits.loader("train", batch_size=4))
    assert [len(yb) for _, yb in batches] == [4, 4, 2]
    xb, _ = batches[0]
    assert xb.shape == (4, 1, 2, 2)
    assert torch.equal(torch.cat([xb for xb, _ in batches]), splits.x_train)
    assert len(splits.loader("val", batch_size=2)) == 2


def test_shuffle_is_deterministic_per_seed() -> None:
    splits = _splits(n=40)

    def order(seed: int) -> list[int]:
        loader = splits.loader("train", batch_size=8, shuffle=True, seed=seed)
        return torch.cat([xb[:, 0, 0, 0] for xb, _ in loader]).long().tolist()

    first = order(3)
    assert first == order(3)
    assert first != order(4)
    assert sorted(first) == sorted(splits.x_train[:, 0, 0, 0].long().tolist())
    assert first != sorted(first)


def test_shuffled_labels_stay_with_images() -> None:
    splits = _splits(n=30)
    for xb, yb in splits.loader("train", batch_size=7, shuffle=True, seed=1):
        index = (xb[:, 0, 0, 0] / 4).long()
        assert torch.equal(yb, index % 3)


def test_limit_takes_first_samples() -> None:
    splits = _splits()
    ((xb, yb),) = list(splits.loader("test", batch_size=10, limit=2))
    assert torch.equal(xb, splits.x_test[:2]) and torch.equal(yb, splits.y_test[:2])
    assert sum(len(y) for _, y in splits.loader("test", batch_size=10, limit=99)) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "dev", "batch_size": 2}, "unknown split 'dev'"),
        ({"split": "train", "batch_size": 0}, "batch_size"),
        ({"split": "train", "batch_size": 2, "limit": 0}, "limit"),
    ],
)
def test_loader_arguments_are_checked(kwargs: dict, message: str) -> None:
    with pytest.raises(AutopruneError, match=message):
        _splits().loader(**kwargs)
