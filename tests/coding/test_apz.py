from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from autoprune.coding import (
    MAGIC,
    extras_from_state_dict,
    inspect_apz,
    read_apz,
    state_dict_from_apz,
    write_apz,
)
from autoprune.core.errors import AutopruneError
from autoprune.core.qtensor import QuantizedWeight


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("sparsity", [0.0, 0.8])
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("scheme", ["linear", "kmeans"])
def test_round_trip_is_bit_exact(make_weight, tmp_path, scheme, bits, sparsity) -> None:
    weights = {
        "conv": make_weight((6, 3, 3, 3), scheme, bits, sparsity, seed=bits),
        "fc": make_weight((10, 12), scheme, bits, sparsity, seed=bits + 10, skewed=True),
    }
    write_apz(tmp_path / "m.apz", weights, {})
    back, extra, metadata = read_apz(tmp_path / "m.apz")
    assert list(back) == ["conv", "fc"] and extra == {} and metadata == {}
    for name, q in weights.items():
        assert _bits_equal(back[name].dequantize(), q.dequantize())
        assert back[name].scheme == scheme and back[name].bits == bits


@pytest.mark.parametrize("huffman", [False, True, "always"])
@pytest.mark.parametrize("layout", ["auto", "dense", "bitmap", "relative"])
def test_every_coding_option_round_trips(make_weight, tmp_path, huffman, layout) -> None:
    weights = {
        "a": make_weight((8, 2, 3, 3), "float", 32, 0.6, seed=1),
        "b": make_weight((8, 2, 3, 3), "float", 32, seed=2),
        "c": make_weight((9, 40), "kmeans", 5, 0.97, seed=3, skewed=True),
    }
    report = write_apz(tmp_path / "m.apz", weights, huffman=huffman, layout=layout, index_bits=2)
    if huffman == "always":
        assert {r.value_coding for r in report.layers} == {"raw", "huffman"}
        if layout == "relative":
            assert report.layers[2].index_coding == "huffman"
    if huffman is False:
        assert "huffman" not in {r.value_coding for r in report.layers}
    back, _, _ = read_apz(tmp_path / "m.apz")
    for name, q in weights.items():
        assert _bits_equal(back[name].dequantize(), q.dequantize())


def test_extras_and_metadata_round_trip(make_weight, tmp_path) -> None:
    extra = {
        "fc.bias": torch.randn(10),
        "bn.num_batches_tracked": torch.tensor(7),
        "bn.running_var": np.arange(4, dtype=np.float64),
        "table": np.array([[1, 2], [3, 4]], dtype=np.int16),
    }
    metadata = {"model": "demo", "policy": {"fc": [4, 0.5]}}
    weights = {"fc": make_weight((10, 4), "linear", 4)}
    write_apz(tmp_path / "m.apz", weights, extra, metadata=metadata)
    _, back, meta = read_apz(tmp_path / "m.apz")
    assert meta == metadata
    assert list(back) == list(extra)
    for name, value in extra.items():
        expected = value.numpy() if isinstance(value, torch.Tensor) else value
        assert back[name].dtype == expected.dtype and back[name].shape == expected.shape
        assert np.array_equal(back[name], expected)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def _kmeans(weight: torch.Tensor, bits: int, keep: float) -> QuantizedWeight:
    """Magnitude-prune then quantize to evenly spaced centroids (a hand-made k-means)."""
    flat = weight.detach().numpy().ravel()
    mask = np.abs(flat) >= np.quantile(np.abs(flat), 1 - keep)
    centroids = np.linspace(flat.min(), flat.max(), 2**bits).astype(np.float32)
    codes = np.abs(flat[:, None] - centroids[None, :]).argmin(1).astype(np.int32)
    return QuantizedWeight(tuple(weight.shape), "kmeans", bits, codes, centroids, mask)


def _linear(weight: torch.Tensor, bits: int, keep: float) -> QuantizedWeight:
    flat = weight.detach().numpy().reshape(weight.shape[0], -1)
    half = 2 ** (bits - 1) - 1
    scales = (np.abs(flat).max(1) / half).astype(np.float32)
    codes = (np.round(flat / scales[:, None]) + half).astype(np.int32).ravel()
    mask = np.abs(flat.ravel()) >= np.quantile(np.abs(flat), 1 - keep)
    return QuantizedWeight(tuple(weight.shape), "linear", bits, codes, scales, mask)


def test_state_dict_rebuilds_the_compressed_model(tmp_path) -> None:
    torch.manual_seed(0)
    model = _Net()
    model.train()
    model(torch.randn(16, 1, 8, 8))  # give BatchNorm real running statistics
    model.eval()
    weights = {"conv": _kmeans(model.conv.weight, 3, 0.5), "fc": _linear(model.fc.weight, 4, 0.2)}
    with torch.no_grad():
        for name, q in weights.items():
            getattr(model, name).weight.copy_(torch.from_numpy(q.dequantize()))
    extra = extras_from_state_dict(model.state_dict(), weights)
    assert "conv.weight" not in extra and "bn.num_batches_tracked" in extra
    write_apz(tmp_path / "net.apz", weights, extra)

    fresh = _Net().eval()
    fresh.load_state_dict(state_dict_from_apz(tmp_path / "net.apz"), strict=True)
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))
    tracked = state_dict_from_apz(tmp_path / "net.apz")["bn.num_batches_tracked"]
    assert tracked.dtype == torch.int64 and tracked.shape == () and int(tracked) == 1


def test_index_bits_default_by_rank_and_overrides(make_weight, tmp_path) -> None:
    weights = {
        "conv": make_weight((4, 2, 3, 3), "kmeans", 4, 0.5),
        "fc": make_weight((6, 7), "kmeans", 4, 0.5),
    }
    path = tmp_path / "m.apz"
    assert [r.index_bits for r in write_apz(path, weights).layers] == [8, 5]
    assert [r.index_bits for r in write_apz(path, weights, index_bits=3).layers] == [3, 3]
    report = write_apz(path, weights, index_bits={"fc": 2})
    assert [r.index_bits for r in report.layers] == [8, 2]
    assert [r.index_bits for r in inspect_apz(path).layers] == [8, 2]
    with pytest.raises(AutopruneError, match="unknown layer in index_bits 'fc2'"):
        write_apz(path, weights, index_bits={"fc2": 2})
    with pytest.raises(AutopruneError, match="outside 1..16"):
        write_apz(path, weights, index_bits=0)


def test_bad_options_are_rejected(make_weight, tmp_path) -> None:
    weights = {"fc": make_weight((6, 7), "linear", 4)}
    with pytest.raises(AutopruneError, match="unknown layout 'sparse'"):
        write_apz(tmp_path / "m.apz", weights, layout="sparse")
    with pytest.raises(AutopruneError, match="huffman="):
        write_apz(tmp_path / "m.apz", weights, huffman="yes")
    with pytest.raises(AutopruneError, match="both a coded weight and an extra"):
        write_apz(tmp_path / "m.apz", weights, {"fc.weight": np.zeros(3)})
    with pytest.raises(AutopruneError, match="metadata is not JSON"):
        write_apz(tmp_path / "m.apz", weights, metadata={"x": object()})
    with pytest.raises(AutopruneError, match="pass numeric tensors"):
        write_apz(tmp_path / "m.apz", weights, {"names": np.array(["a", "b"])})
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def written(make_weight, tmp_path) -> Path:
    path = tmp_path / "m.apz"
    weights = {"fc": make_weight((20, 30), "kmeans", 4, 0.9, skewed=True)}
    write_apz(path, weights, {"fc.bias": np.ones(20, np.float32)})
    return path


@pytest.mark.parametrize("keep", [4, 20, 200, -100, -1])
def test_truncated_file_is_reported_with_its_name(written: Path, keep: int) -> None:
    written.write_bytes(written.read_bytes()[:keep])
    with pytest.raises(
        AutopruneError, match=f"{re.escape(str(written))}.*(corrupt|not an apz file)"
    ):
        read_apz(written)


def test_wrong_magic_and_flipped_byte_are_reported(written: Path) -> None:
    data = bytearray(written.read_bytes())
    written.write_bytes(b"PK\x03\x04" + bytes(data[4:]))
    with pytest.raises(AutopruneError, match="wrong magic"):
        read_apz(written)
    data[-30] ^= 0x10  # inside the body
    written.write_bytes(bytes(data))
    with pytest.raises(AutopruneError, match="checksum mismatch"):
        inspect_apz(written)
    data[-30] ^= 0x10
    data[40] ^= 0x01  # inside the JSON header
    written.write_bytes(bytes(data))
    with pytest.raises(AutopruneError, match="header checksum mismatch"):
        read_apz(written)
    with pytest.raises(AutopruneError, match="does not exist"):
        read_apz(written.with_name("missing.apz"))


def test_missing_folders_are_created(written: Path, tmp_path) -> None:
    _, extra, _ = read_apz(written)
    report = write_apz(tmp_path / "a" / "b" / "m.apz", {}, extra)
    assert (tmp_path / "a" / "b" / "m.apz").read_bytes().startswith(MAGIC)
    assert report.layers == ()


def test_failed_write_leaves_old_file_and_no_temporary(written, monkeypatch) -> None:
    before = written.read_bytes()
    _, extra, _ = read_apz(written)

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(AutopruneError, match="no space left on the disk writing .*m.apz"):
        write_apz(written, {}, extra)
    assert written.read_bytes() == before
    assert [p.name for p in written.parent.iterdir()] == [written.name]


def test_directory_as_target_raises_cleanly(tmp_path) -> None:
    (tmp_path / "out.apz").mkdir()
    with pytest.raises(AutopruneError, match="cannot write apz file"):
        write_apz(tmp_path / "out.apz", {}, {"b": np.zeros(2)})
    assert [p.name for p in tmp_path.iterdir()] == ["out.apz"]


def test_extras_from_state_dict_needs_every_weight() -> None:
    state = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).state_dict()
    extra = extras_from_state_dict(state, ["0"])
    assert list(extra) == [key for key in state if key != "0.weight"]
    with pytest.raises(AutopruneError, match="unknown state-dict key '2.weight'"):
        extras_from_state_dict(state, ["0", "2"])
