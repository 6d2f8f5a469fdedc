"""The ``.apz`` file: a whole compressed model in one file (Deep Compression storage).

Layout (little-endian)::

    8 bytes   magic b"\\x89APZ\\r\\n\\x1a\\n"
    uint16    format version (1)
    uint32    header length H
    uint32    CRC-32 of the header bytes
    H bytes   zlib-compressed JSON header: layers (name, shape, scheme, bits, layout,
              stream offsets and codings), other tensors (name, dtype, shape, offset),
              metadata, body size and body CRC-32
    body      the streams of every layer (codes, indices, codebook, Huffman tables), then
              the other tensors raw (biases, BatchNorm parameters and buffers)

The file alone rebuilds the full state dict (:func:`state_dict_from_apz`).
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from autoprune.coding._byte_counts import ApzReport, layer_report
from autoprune.coding._layer import (
    LAYOUTS,
    MAX_CODE_BITS,
    EncodedLayer,
    HuffmanMode,
    Layout,
    check_weight,
    decode_layer,
    encode_layer,
)
from autoprune.core.bounded import MAX_JSON_DEPTH, brief, depth
from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.core.qtensor import QuantizedWeight
from autoprune.system.atomic_dir import DiskFull, write_atomic

MAGIC = b"\x89APZ\r\n\x1a\n"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sHII")
PREFIX_BYTES = _PREFIX.size
"""Bytes before the header: magic, version, header length and header CRC-32."""
DEFAULT_INDEX_BITS = {4: 8, 2: 5}
"""Relative-index bits by weight rank: 8 for conv, 5 for linear (Han et al. 2016)."""
FALLBACK_INDEX_BITS = 8
"""Relative-index bits for weights of any other rank."""
MAX_HEADER_BYTES = 16 << 20
"""Most bytes a header may inflate to (a real one holds a few hundred bytes per layer)."""
MAX_WEIGHTS = 1 << 28
"""Most weights (coded and other tensors) one file may declare: 268 million, about twice
VGG-16; decoding takes about 13 bytes per weight."""


def _resolve_index_bits(
    weights: Mapping[str, QuantizedWeight], index_bits: Mapping[str, int] | int | None
) -> dict[str, int]:
    if isinstance(index_bits, Mapping):
        for name in index_bits:
            if name not in weights:
                raise unknown_name("layer in index_bits", str(name), list(weights))
    resolved = {}
    for name, q in weights.items():
        if isinstance(index_bits, int):
            bits = index_bits
        elif isinstance(index_bits, Mapping) and name in index_bits:
            bits = index_bits[name]
        else:
            bits = DEFAULT_INDEX_BITS.get(len(q.shape), FALLBACK_INDEX_BITS)
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_CODE_BITS:
            raise AutopruneError(
                f"index_bits {bits!r} for layer '{name}' is outside 1..{MAX_CODE_BITS}; "
                "use e.g. 8 for conv and 5 for linear layers"
            )
        resolved[name] = bits
    return resolved


def _as_array(name: str, value: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bfloat16:
            raise AutopruneError(f"extra tensor '{name}' is bfloat16; convert it with .float()")
        value = value.detach().cpu().numpy()
    array = np.asarray(value)  # not ascontiguousarray: it turns 0-d arrays into 1-d
    if array.dtype.kind not in "biufc":
        raise AutopruneError(
            f"extra tensor '{name}' has dtype {array.dtype}; pass numeric tensors only"
        )
    return array.astype(array.dtype.newbyteorder("<"), copy=False)


def _check_inputs(
    weights: Mapping[str, QuantizedWeight],
    extra: Mapping[str, np.ndarray | torch.Tensor],
    huffman: HuffmanMode,
    layout: str,
) -> None:
    if huffman not in (True, False, "always"):
        raise AutopruneError(f"huffman={huffman!r} is invalid; use True, False or 'always'")
    if layout not in LAYOUTS:
        raise unknown_name("layout", str(layout), LAYOUTS)
    for name, q in weights.items():
        if not isinstance(name, str) or not name:
            raise AutopruneError(f"layer name {name!r} is invalid; key weights by module name")
        check_weight(name, q)
        if f"{name}.weight" in extra:
            raise AutopruneError(
                f"'{name}.weight' is both a coded weight and an extra tensor; "
                "leave coded weights out of extra (see extras_from_state_dict)"
            )


def _assemble(
    layers: list[EncodedLayer], extras: dict[str, np.ndarray], metadata: dict
) -> tuple[dict, bytes]:
    """The JSON header and the body bytes."""
    chunks: list[bytes] = []
    offset = 0
    layer_metas = []
    for layer in layers:
        streams = {}
        for role, stream in layer.streams.items():
            streams[role] = stream.meta(offset)
            chunks += [stream.table, stream.payload]
            offset += stream.nbytes
        layer_metas.append(layer.meta | {"streams": streams})
    extra_metas = []
    for name, array in extras.items():
        data = array.tobytes()
        shape = [int(d) for d in array.shape]
        meta = {"name": name, "dtype": array.dtype.str, "shape": shape}
        extra_metas.append(meta | {"offset": offset, "length": len(data)})
        chunks.append(data)
        offset += len(data)
    body = b"".join(chunks)
    return build_header(layer_metas, extra_metas, metadata, len(body), zlib.crc32(body)), body


def build_header(
    layers: list[dict], extra: list[dict], metadata: dict, body_bytes: int, body_crc32: int
) -> dict:
    """The JSON header of a file from its layer and extra-tensor entries."""
    return {
        "format": "apz",
        "version": FORMAT_VERSION,
        "layers": layers,
        "extra": extra,
        "metadata": metadata,
        "body_bytes": body_bytes,
        "body_crc32": body_crc32,
    }


def encode_header(header: dict) -> bytes:
    """The header as the file stores it: compact JSON compressed by zlib (level 9).

    Raises:
        TypeError, ValueError: ``header`` (its metadata) is not JSON-serialisable.
    """
    text = json.dumps(header, separators=(",", ":"), allow_nan=False)
    return zlib.compress(text.encode(), 9)


def _write_atomic(path: Path, blob: bytes) -> None:
    """Write ``blob`` all-or-nothing (:func:`~autoprune.system.atomic_dir.write_atomic`)."""
    try:
        write_atomic(path, blob)
    except DiskFull:
        raise
    except OSError as exc:
        raise AutopruneError(f"cannot write apz file {path} ({exc}); pass a writable path") from exc


def write_apz(
    path: str | Path,
    weights: Mapping[str, QuantizedWeight],
    extra: Mapping[str, np.ndarray | torch.Tensor] | None = None,
    *,
    index_bits: Mapping[str, int] | int | None = None,
    huffman: HuffmanMode = True,
    layout: Layout = "auto",
    metadata: dict | None = None,
) -> ApzReport:
    """Write coded weights and the model's other tensors to one ``.apz`` file.

    The file is written to a temporary file and renamed into place, so ``path`` is either
    the complete new file or untouched; missing parent folders are created.

    Args:
        path: Destination file.
        weights: Coded weight per layer name; stored as ``"<name>.weight"``.
        extra: Every other state-dict tensor (biases, BatchNorm parameters and buffers),
            stored raw with its dtype.
        index_bits: Relative-index bits, for all layers or per layer name; default 8 for
            4-D (conv) weights, 5 for 2-D (linear) weights, 8 otherwise.
        huffman: True: each stream of codes or indices is Huffman-coded when that is
            smaller than fixed-width; ``"always"``: always Huffman; False: never.
        layout: ``auto`` (smallest per layer), ``dense``, ``bitmap`` or ``relative``.
        metadata: JSON-serialisable dict stored in the header and returned by
            :func:`read_apz`.

    Returns:
        The byte accounting of the written file.

    Raises:
        AutopruneError: A malformed weight, option or metadata, or an unwritable path.
    """
    path = Path(path)
    extra = {} if extra is None else extra
    _check_inputs(weights, extra, huffman, layout)
    bits = _resolve_index_bits(weights, index_bits)
    arrays = {str(name): _as_array(str(name), value) for name, value in extra.items()}
    layers = [
        encode_layer(name, q, index_bits=bits[name], huffman=huffman, layout=layout)
        for name, q in weights.items()
    ]
    header, body = _assemble(layers, arrays, {} if metadata is None else metadata)
    try:
        header_bytes = encode_header(header)
    except (TypeError, ValueError) as exc:
        raise AutopruneError(
            f"metadata is not JSON-serialisable ({exc}); pass plain str/int/float/list/dict"
        ) from exc
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes), zlib.crc32(header_bytes))
    blob = prefix + header_bytes + body
    _write_atomic(path, blob)
    return _report(path, header, _PREFIX.size + len(header_bytes))


def _report(path: Path, header: dict, overhead: int) -> ApzReport:
    return ApzReport(
        path=str(path),
        layers=tuple(layer_report(meta) for meta in header["layers"]),
        extra_count=sum(int(np.prod(meta["shape"])) for meta in header["extra"]),
        extra_bytes=sum(int(meta["length"]) for meta in header["extra"]),
        overhead_bytes=overhead,
        file_bytes=os.path.getsize(path),
    )


def _corrupt(path: Path, why: str) -> AutopruneError:
    return AutopruneError(f"apz file {path} is corrupt ({why}); write it again with write_apz")


def _load(path: Path) -> tuple[dict, bytes, int]:
    """The header, the body and the header's end offset, after every integrity check."""
    if not path.is_file():
        raise AutopruneError(f"apz file {path} does not exist; pass a file written by write_apz")
    data = path.read_bytes()
    if len(data) < _PREFIX.size or data[: len(MAGIC)] != MAGIC:
        raise AutopruneError(
            f"{path} is not an apz file (wrong magic bytes); pass a file written by write_apz"
        )
    _, version, header_length, header_crc = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise AutopruneError(
            f"apz file {path} has format version {version}; this autoprune reads version "
            f"{FORMAT_VERSION}, so use the autoprune release that wrote it"
        )
    start = _PREFIX.size + header_length
    if len(data) < start:
        raise _corrupt(path, "truncated inside the header")
    if zlib.crc32(data[_PREFIX.size : start]) != header_crc:
        raise _corrupt(path, "header checksum mismatch")
    header = _decode_header(path, data[_PREFIX.size : start])
    body = data[start:]
    if not isinstance(header, dict) or len(body) != header.get("body_bytes"):
        raise _corrupt(path, f"body has {len(body)} bytes, header expects another size")
    if zlib.crc32(body) != header.get("body_crc32"):
        raise _corrupt(path, "body checksum mismatch")
    _check_weight_count(path, header)
    return header, body, start


def _decode_header(path: Path, packed: bytes) -> dict:
    """The header JSON, inflated to at most :data:`MAX_HEADER_BYTES` (no zlib bomb) and
    nested at most :data:`~autoprune.core.bounded.MAX_JSON_DEPTH` levels deep."""
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(packed, MAX_HEADER_BYTES)
    except zlib.error:
        raise _corrupt(path, "unreadable header") from None
    if inflater.unconsumed_tail:
        raise _corrupt(path, f"header inflates beyond {MAX_HEADER_BYTES:,} bytes")
    try:
        header = json.loads(text.decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _corrupt(path, "unreadable header") from None
    if not isinstance(header, dict) or depth(header) > MAX_JSON_DEPTH:
        raise _corrupt(path, "header is not a mapping of a few levels")
    return header


def _check_weight_count(path: Path, header: dict) -> None:
    """Refuse a header declaring more weights than :data:`MAX_WEIGHTS` before any array of
    them is allocated (a forged 47 KB file could otherwise ask for 15 GiB)."""
    try:
        shapes = [[int(d) for d in meta["shape"]] for meta in (*header["layers"], *header["extra"])]
    except (KeyError, TypeError, ValueError) as exc:
        raise _corrupt(path, f"{type(exc).__name__}: {brief(str(exc))}") from None
    if any(d < 0 for shape in shapes for d in shape):
        raise _corrupt(path, "a tensor has a negative dimension")
    total = sum(math.prod(shape) for shape in shapes)
    if total > MAX_WEIGHTS:
        raise _corrupt(
            path,
            f"its header declares {total:,} weights, more than the {MAX_WEIGHTS:,} this "
            "reader decodes",
        )


def _read_extra(meta: dict, body: bytes) -> np.ndarray:
    dtype = np.dtype(meta["dtype"])
    if dtype.kind not in "biufc":
        raise ValueError(f"dtype {dtype} is not numeric")
    start, length = int(meta["offset"]), int(meta["length"])
    if start < 0 or length < 0 or start + length > len(body):
        raise ValueError("tensor lies outside the file body")
    shape = tuple(int(d) for d in meta["shape"])
    return np.frombuffer(body[start : start + length], dtype=dtype).reshape(shape).copy()


def read_apz(
    path: str | Path,
) -> tuple[dict[str, QuantizedWeight], dict[str, np.ndarray], dict]:
    """Read an ``.apz`` file written by :func:`write_apz`.

    Returns:
        ``(weights, extra, metadata)``: coded weights whose ``dequantize()`` equals the
        written ones bit for bit, the other tensors with their dtypes, and the metadata.

    Raises:
        AutopruneError: Missing file, wrong magic, unknown version, truncation or corruption.
    """
    path = Path(path)
    header, body, _ = _load(path)
    try:
        weights = {str(meta["name"]): decode_layer(meta, body) for meta in header["layers"]}
        extra = {str(meta["name"]): _read_extra(meta, body) for meta in header["extra"]}
        metadata = dict(header["metadata"])
    except AutopruneError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise _corrupt(path, f"{type(exc).__name__}: {brief(str(exc))}") from None
    return weights, extra, metadata


def inspect_apz(path: str | Path) -> ApzReport:
    """The byte accounting of an existing ``.apz`` file (reads the header, checks the CRC)."""
    path = Path(path)
    header, _, start = _load(path)
    try:
        return _report(path, header, start)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise _corrupt(path, f"{type(exc).__name__}: {brief(str(exc))}") from None


def state_dict_from_apz(path: str | Path) -> dict[str, torch.Tensor]:
    """The full state dict stored in an ``.apz`` file.

    ``"<layer>.weight"`` is the dequantized weight of each coded layer; every other entry is
    an extra tensor, with its original dtype.

    Example:
        >>> model.load_state_dict(state_dict_from_apz("model.apz"))  # doctest: +SKIP
    """
    weights, extra, _ = read_apz(path)
    state = {f"{name}.weight": torch.from_numpy(q.dequantize()) for name, q in weights.items()}
    state |= {name: torch.from_numpy(array) for name, array in extra.items()}
    return state


def extras_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], layer_names: Mapping[str, object] | list[str]
) -> dict[str, torch.Tensor]:
    """Every state-dict entry except the ``"<layer>.weight"`` of the coded layers.

    Example:
        >>> extra = extras_from_state_dict(model.state_dict(), weights)  # doctest: +SKIP
    """
    coded = {f"{name}.weight" for name in layer_names}
    for key in sorted(coded):
        if key not in state_dict:
            raise unknown_name("state-dict key", key, list(state_dict))
    return {key: value for key, value in state_dict.items() if key not in coded}
