from __future__ import annotations

import json
import os

import numpy as np
import pytest

from autoprune.coding import inspect_apz, write_apz


@pytest.fixture
def model(make_weight) -> tuple[dict, dict]:
    weights = {
        "conv": make_weight((8, 4, 3, 3), "kmeans", 8, 0.6, seed=1, skewed=True),
        "fc": make_weight((10, 50), "linear", 5, 0.9, seed=2),
        "head": make_weight((3, 10), "float", 32, seed=3),
    }
    extra = {"conv.bias": np.zeros(8, np.float32), "bn.num_batches_tracked": np.array(3)}
    return weights, extra


def test_total_bytes_is_the_file_size(model, tmp_path) -> None:
    path = tmp_path / "m.apz"
    plain = write_apz(path, *model)
    report = write_apz(path, *model, metadata={"note": np.arange(40).tolist()})
    size = os.path.getsize(path)
    assert report.total_bytes == report.file_bytes == size
    assert report.overhead_bytes > plain.overhead_bytes  # the metadata lives in the header
    assert report.extra_bytes == 8 * 4 + 8 and report.extra_count == 9
    again = inspect_apz(path)
    assert again.to_dict() == report.to_dict()


def test_fp32_baseline_counts_every_tensor(model, tmp_path) -> None:
    report = write_apz(tmp_path / "m.apz", *model)
    assert report.weights == 288 + 500 + 30
    assert report.fp32_bytes == 4 * (288 + 500 + 30 + 9)
    assert report.compression_ratio == pytest.approx(report.fp32_bytes / report.file_bytes)
    head = report.layers[2]
    assert (head.value_coding, head.code_bytes, head.bits_per_weight) == ("raw", 120, 32.0)


def test_fixed_width_accounting_by_hand(make_weight, tmp_path) -> None:
    dense = write_apz(
        tmp_path / "d.apz", {"fc": make_weight((8, 16), "kmeans", 4)}, huffman=False
    ).layers[0]
    assert (dense.layout, dense.code_bytes, dense.codebook_bytes) == ("dense", 64, 64)
    assert (dense.bits_per_weight, dense.bits_per_index, dense.table_bytes) == (4.0, 0.0, 0)
    assert dense.yang_bits == 4 * 128
    q = make_weight((8, 16), "kmeans", 4, 0.9)
    sparse = write_apz(
        tmp_path / "s.apz", {"fc": q}, index_bits=3, huffman=False, layout="relative"
    ).layers[0]
    assert sparse.kept == q.nonzeros and sparse.entries == q.nonzeros + sparse.fillers
    assert sparse.fillers > 0
    assert sparse.bits_per_index == pytest.approx(3 * sparse.entries / sparse.kept)
    # No centroid is zero, so fillers take the extra code 16 and codes need 5 bits.
    assert sparse.bits_per_weight == pytest.approx(5 * sparse.entries / sparse.kept)
    assert sparse.index_bytes == (3 * sparse.entries + 7) // 8


def test_sparse_kmeans_layer_beats_dense_fp32_twenty_fold(make_weight, tmp_path) -> None:
    q = make_weight((100, 300), "kmeans", 4, 0.9, skewed=True)
    report = write_apz(tmp_path / "m.apz", {"fc": q})
    assert report.compression_ratio > 20
    assert report.yang_bytes == 4 * q.nonzeros / 8
    assert report.yang_ratio > report.compression_ratio  # Yang et al. leave indices out


def test_huffman_shrinks_a_skewed_layer(make_weight, tmp_path) -> None:
    q = make_weight((40, 50), "linear", 6, skewed=True)
    fixed = write_apz(tmp_path / "f.apz", {"fc": q}, huffman=False)
    coded = write_apz(tmp_path / "h.apz", {"fc": q})
    assert coded.layers[0].value_coding == "huffman"
    assert coded.file_bytes < 0.8 * fixed.file_bytes
    assert coded.layers[0].bits_per_weight < 6


def test_rows_and_dict_are_printable(model, tmp_path) -> None:
    report = write_apz(tmp_path / "m.apz", *model)
    rows = report.to_rows()
    assert [row["layer"] for row in rows] == [
        "conv",
        "fc",
        "head",
        "(other tensors)",
        "(header)",
        "total",
    ]
    assert all(list(row) == list(rows[0]) for row in rows)
    assert rows[-1]["total B"] == report.file_bytes
    assert sum(row["total B"] for row in rows[:-1]) == report.file_bytes
    data = json.loads(json.dumps(report.to_dict()))
    assert data["total"]["file_bytes"] == report.file_bytes
    assert [layer["layout"] for layer in data["layers"]] == [r.layout for r in report.layers]
