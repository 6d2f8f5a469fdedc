"""Small hostile files never make autoprune allocate or format huge values: every reader
bounds what it allocates before allocating it, and messages show user values briefly."""

from __future__ import annotations

import io
import json
import pickle
import struct
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from autoprune.cli import main
from autoprune.coding import read_apz, write_apz
from autoprune.coding._apz import MAGIC, encode_header
from autoprune.coding._huffman import huffman_decode
from autoprune.core.bounded import brief
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.core.qtensor import QuantizedWeight
from autoprune.data._checks import check_labels
from autoprune.data._cifar import read_batch
from autoprune.data._npz import read_npz
from autoprune.workflow.config_file import load_config_file

PEAK_LIMIT = 64 << 20
"""Most bytes any refused input may make the reader allocate (64 MiB)."""


@contextmanager
def bounded_work(seconds: float = 5.0) -> Iterator[None]:
    """Assert that the block allocates under :data:`PEAK_LIMIT` and ends within ``seconds``."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        yield
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"peak {peak:,} bytes"
    assert time.monotonic() - start < seconds


def test_a_stray_label_of_10_to_the_12_is_refused_at_once() -> None:
    y_train = np.repeat(np.arange(10), 10)
    y_train[0] = 10**12
    with bounded_work(), pytest.raises(AutopruneError) as caught:
        check_labels("npz", y_train, np.arange(10), None)
    message = str(caught.value)
    assert "classes 10..999999999999" in message and len(message) < 400


def _forged_npy(shape: tuple[int, ...]) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    return header.getvalue() + b"\0" * 64


def test_an_npz_header_claiming_gigabytes_is_refused_before_allocation(tmp_path: Path) -> None:
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", _forged_npy((100_000, 100_000)))
        for name in ("y_train", "x_test", "y_test"):
            archive.writestr(f"{name}.npy", _forged_npy((2,)))
    with bounded_work(), pytest.raises(AutopruneError, match="claims 40,000,000,000 bytes"):
        read_npz(path)


def test_an_npz_of_pickled_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.npz"
    objects = np.array([{"a": 1}, None], dtype=object)
    np.savez(path, x_train=objects, y_train=np.arange(2), x_test=np.zeros((1, 8, 8)), y_test=[0])
    with pytest.raises(AutopruneError, match="Python objects"):
        read_npz(path)


def _small_apz(path: Path) -> None:
    flat = np.zeros(64, np.float32)
    flat[::9] = 1.0
    weight = QuantizedWeight((8, 8), "float", 32, np.zeros(0, np.int32), flat, flat != 0)
    write_apz(path, {"fc": weight}, {}, layout="relative")


def _repack(path: Path, header_bytes: bytes, body: bytes) -> None:
    prefix = struct.pack("<8sHII", MAGIC, 1, len(header_bytes), zlib.crc32(header_bytes))
    path.write_bytes(prefix + header_bytes + body)


def test_an_apz_header_declaring_15_gib_is_refused_before_allocation(tmp_path: Path) -> None:
    path = tmp_path / "forged.apz"
    _small_apz(path)
    data = path.read_bytes()
    length = struct.unpack_from("<8sHII", data)[2]
    start = struct.calcsize("<8sHII")
    header = json.loads(zlib.decompress(data[start : start + length]))
    header["layers"][0]["shape"] = [100_000, 40_000]  # 4e9 float32 weights: 14.9 GiB
    _repack(path, encode_header(header), data[start + length :])
    with bounded_work(), pytest.raises(AutopruneError, match="declares 4,000,000,000 weights"):
        read_apz(path)


def test_an_apz_header_zlib_bomb_is_not_inflated(tmp_path: Path) -> None:
    deflate = zlib.compressobj(9)
    chunks = [deflate.compress(b" " * (1 << 20)) for _ in range(1024)]  # 1 GiB of spaces
    bomb = b"".join(chunks) + deflate.flush()
    assert len(bomb) < 2 << 20
    path = tmp_path / "bomb.apz"
    _repack(path, bomb, b"")
    with bounded_work(), pytest.raises(AutopruneError, match="header inflates beyond"):
        read_apz(path)


def test_a_huffman_count_beyond_its_payload_is_refused_before_allocation() -> None:
    with bounded_work(), pytest.raises(ValueError, match="cannot fit"):
        huffman_decode(b"\x01\x01", b"\x00" * 8, 10**12)


def _alias_bomb(levels: int = 9) -> str:
    """``seed: [&a0 [lol x9], &a1 [*a0 x9], ...]``: 9**10 values once expanded."""
    items = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    items += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return f"seed: [{', '.join(items)}]\n"


def test_a_yaml_alias_bomb_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb())
    with bounded_work(), pytest.raises(AutopruneError, match="no \\*aliases"):
        load_config_file(path)
    assert main(["search", "--config", str(path), "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and len(err) < 300, err


@pytest.mark.parametrize("text", ["seed: " + "9" * 100_000, "seed: " + "[" * 50_000 + "]" * 50_000])
def test_huge_or_deep_yaml_values_are_one_short_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text + "\n")
    assert main(["search", "--config", str(path), "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and len(err) < 400, err


def test_a_900_kb_config_value_is_shown_briefly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"seed: [{', '.join(['12345678'] * 90_000)}]\n")  # 900 KB, under the cap
    assert main(["search", "--config", str(path), "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "config key 'seed'" in err and len(err) < 500, err
    path.write_text("seed: " + "1" * (2 << 20) + "\n")  # 2 MB: refused by its size
    assert main(["search", "--config", str(path), "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "larger than 1,048,576 bytes" in err and len(err) < 500, err


def test_a_deeply_nested_policy_is_one_error_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"layers": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(AutopruneError, match="more than 64 levels deep"):
        Policy.load(path)
    path.write_text('{"layers": ' + "[" * 500 + "]" * 500 + "}")  # under the parser's limit
    with pytest.raises(AutopruneError, match="more than 64 levels deep"):
        Policy.load(path)


def test_policy_errors_show_a_huge_layer_name_briefly(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    document = {"schema_version": 1, "fingerprint": "x", "layers": {"c" * 2_000_000: 5}}
    path.write_text(json.dumps(document))
    with pytest.raises(AutopruneError) as caught:
        Policy.load(path)
    assert len(str(caught.value)) < 400


def test_brief_never_expands_shared_references() -> None:
    value: list = ["lol"]
    for _ in range(30):
        value = [value] * 9  # 9**30 leaves if expanded
    with bounded_work(1.0):
        assert len(brief(value)) <= 100


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_planted_cifar_batch_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "owned"
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": _Payload(marker), b"labels": [0]}, protocol=2))
    with pytest.raises(AutopruneError, match="never holds"):
        read_batch(batch)
    assert not marker.exists()
    good = tmp_path / "good_batch"
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    good.write_bytes(pickle.dumps({b"data": data, b"labels": [3, 4]}, protocol=2))
    images, labels = read_batch(good)
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [3, 4]


def test_deeply_nested_run_files_are_one_line_errors(tmp_path: Path) -> None:
    from agents._run_store import RunStore, read_json

    path = tmp_path / "checkpoint.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(AutopruneError, match="more than 64 levels deep"):
        read_json(path)
    with RunStore.create(tmp_path / "run", {}) as store:
        deep = "[" * 100_000 + "]" * 100_000
        (store.path / "history.jsonl").write_text(f"{deep}\n{{}}\n")
        with pytest.raises(AutopruneError, match="line 1 is damaged"):
            store.read_history()
