"""Coding of one layer's :class:`QuantizedWeight` into byte streams and back.

A layer becomes up to three streams: ``values`` (weight codes, fixed-width or Huffman; raw
float32 for the ``float`` scheme), ``index`` (where the values go: nothing for the dense
layout, one bit per weight for ``bitmap``, gaps for ``relative``) and ``codebook`` (float32
scales or centroids). ``auto`` keeps the layout with the fewest bytes.

Pruned positions must decode to an exact zero. They are either left out (bitmap, relative)
or, where the layout stores them (dense; fillers of the relative layout), written as the
layer's *zero code*: a real code that dequantizes to +0.0 when the codebook has one, else
the extra code ``alphabet`` that the decoder turns back into a pruned position.
The decoded mask is True wherever the file stores a real code, so it may mark stored
zeros as kept; the dequantized weight is identical either way. The extra code costs one
more bit per fixed-width code (a full k-means codebook without a 0.0 centroid, or 1-bit
linear); Huffman coding absorbs most of it, and a quantizer that keeps a 0.0 centroid or
fewer than ``2**bits`` centroids avoids it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from autoprune.coding._bits import pack_bits, unpack_bits, width_for
from autoprune.coding._huffman import huffman_decode, huffman_encode
from autoprune.coding._sparse import (
    bitmap_decode,
    bitmap_encode,
    relative_decode,
    relative_encode,
)
from autoprune.core.errors import AutopruneError
from autoprune.core.qtensor import QuantizedWeight

Layout = Literal["auto", "dense", "bitmap", "relative"]
HuffmanMode = bool | Literal["always"]
LAYOUTS = ("auto", "dense", "bitmap", "relative")
MAX_CODE_BITS = 16
"""Widest weight code (and index) the format accepts."""


@dataclass(frozen=True)
class Stream:
    """One coded byte section: the Huffman table (if any) followed by the payload."""

    coding: Literal["fixed", "huffman", "raw", "bitmap"]
    payload: bytes
    count: int
    bits: int
    width: int = 0
    table: bytes = b""

    @property
    def nbytes(self) -> int:
        """Bytes this stream takes in the file."""
        return len(self.table) + len(self.payload)

    def meta(self, offset: int) -> dict:
        """Header entry of this stream when it starts at ``offset`` in the body."""
        return {
            "coding": self.coding,
            "offset": offset,
            "length": self.nbytes,
            "count": self.count,
            "bits": self.bits,
            "width": self.width,
            "table": len(self.table),
        }


@dataclass(frozen=True)
class EncodedLayer:
    """A layer's header entry (without stream offsets) and its streams by role."""

    meta: dict
    streams: dict[str, Stream]

    @property
    def nbytes(self) -> int:
        """Bytes of all streams."""
        return sum(stream.nbytes for stream in self.streams.values())


def _fail(name: str, problem: str, fix: str) -> AutopruneError:
    return AutopruneError(f"layer '{name}': {problem}; {fix}")


def check_weight(name: str, q: object) -> None:
    """Raise :class:`AutopruneError` unless ``q`` is a well-formed :class:`QuantizedWeight`."""
    if not isinstance(q, QuantizedWeight):
        raise _fail(
            name, f"got {type(q).__name__}", "pass an autoprune.core.qtensor.QuantizedWeight"
        )
    if len(q.shape) == 0 or q.size < 1:
        raise _fail(name, f"shape {q.shape} has no weights", "pass the weight's real shape")
    if q.mask is not None and np.asarray(q.mask).size != q.size:
        problem = f"mask has {np.asarray(q.mask).size} entries for {q.size} weights"
        raise _fail(name, problem, "pass one flag per weight or None")
    if q.scheme not in ("linear", "kmeans", "float"):
        raise _fail(name, f"unknown scheme {q.scheme!r}", "use 'linear', 'kmeans' or 'float'")
    _check_codebook(name, q)
    if q.scheme != "float":
        _check_codes(name, q)


def _check_codebook(name: str, q: QuantizedWeight) -> None:
    count = np.asarray(q.codebook).size
    if q.scheme == "float":
        if count != q.size:
            problem = f"float codebook has {count} values for {q.size} weights"
            raise _fail(name, problem, "store every weight in flat order")
        return
    if not 1 <= q.bits <= MAX_CODE_BITS:
        raise _fail(name, f"bits {q.bits} is outside 1..{MAX_CODE_BITS}", "use fewer bits")
    if q.scheme == "linear" and count != q.shape[0]:
        problem = f"linear codebook has {count} scales for {q.shape[0]} output channels"
        raise _fail(name, problem, "pass one scale per output channel")
    if q.scheme == "kmeans" and not 1 <= count <= 1 << q.bits:
        problem = f"kmeans codebook has {count} centroids at {q.bits} bits"
        raise _fail(name, problem, f"pass 1..{1 << q.bits} centroids")


def _check_codes(name: str, q: QuantizedWeight) -> None:
    codes = np.asarray(q.codes)
    if codes.size != q.size or codes.dtype.kind not in "iu":
        problem = f"codes hold {codes.size} {codes.dtype} values for {q.size} weights"
        raise _fail(name, problem, "pass one integer code per weight in flat order")
    top = alphabet_size(q) - 1
    if codes.min() < 0 or int(codes.max()) > top:
        problem = f"codes span {codes.min()}..{codes.max()}"
        raise _fail(name, problem, f"keep them in 0..{top}")


def alphabet_size(q: QuantizedWeight) -> int:
    """Number of real weight codes (0 for the float scheme)."""
    if q.scheme == "linear":
        return 1 << q.bits
    if q.scheme == "kmeans":
        return int(np.asarray(q.codebook).size)
    return 0


def zero_code(q: QuantizedWeight) -> int:
    """A code that dequantizes to +0.0, or ``alphabet_size(q)`` (the extra code) if none does."""
    codebook = np.asarray(q.codebook, dtype=np.float32)
    finite_positive = np.all(np.isfinite(codebook)) and not np.any(np.signbit(codebook))
    if q.scheme == "linear" and q.bits >= 2 and finite_positive:
        return (1 << (q.bits - 1)) - 1
    if q.scheme == "kmeans":
        zeros = np.flatnonzero((codebook == 0) & ~np.signbit(codebook))
        if zeros.size:
            return int(zeros[0])
    return alphabet_size(q)


def _symbol_stream(symbols: np.ndarray, width: int, huffman: HuffmanMode) -> Stream:
    """Fixed-width or Huffman stream, whichever is smaller (or as ``huffman`` forces)."""
    count = int(symbols.size)
    fixed = Stream("fixed", pack_bits(symbols, width), count, count * width, width=width)
    if huffman is False or count == 0:
        return fixed
    table, payload, bits = huffman_encode(symbols)
    coded = Stream("huffman", payload, count, bits, table=table)
    return coded if huffman == "always" or coded.nbytes < fixed.nbytes else fixed


def _value_stream(q: QuantizedWeight, values: np.ndarray, huffman: HuffmanMode) -> Stream:
    if q.scheme == "float":
        return Stream("raw", values.astype("<f4").tobytes(), values.size, 32 * values.size)
    top = int(values.max()) + 1 if values.size else 0
    return _symbol_stream(values, width_for(max(alphabet_size(q), top)), huffman)


def _per_position(q: QuantizedWeight) -> tuple[np.ndarray, int | float]:
    """What each position stores (codes or float32 values) and the filler value."""
    if q.scheme == "float":
        return np.asarray(q.codebook, dtype=np.float32).ravel(), 0.0
    return np.asarray(q.codes, dtype=np.int64).ravel(), zero_code(q)


def _encode_as(
    q: QuantizedWeight, layout: str, index_bits: int, huffman: HuffmanMode
) -> tuple[dict[str, Stream], int]:
    """Streams of ``q`` in one layout, and the number of filler entries."""
    stored, fill = _per_position(q)
    mask = np.ones(q.size, bool) if q.mask is None else np.asarray(q.mask, bool).ravel()
    streams: dict[str, Stream] = {}
    fillers = 0
    if layout == "dense":
        values = np.where(mask, stored, fill).astype(stored.dtype)
    elif layout == "bitmap":
        values = stored[mask]
        streams["index"] = Stream("bitmap", bitmap_encode(mask), q.size, q.size)
    else:
        positions = np.flatnonzero(mask)
        gaps, source = relative_encode(positions, index_bits)
        values = np.where(source >= 0, stored[positions[np.maximum(source, 0)]], fill)
        values = values.astype(stored.dtype)
        fillers = int(np.sum(source < 0))
        streams["index"] = _symbol_stream(gaps, index_bits, huffman)
    streams["values"] = _value_stream(q, values, huffman)
    if q.scheme != "float":
        codebook = np.asarray(q.codebook, dtype="<f4").ravel()
        streams["codebook"] = Stream("raw", codebook.tobytes(), codebook.size, 32 * codebook.size)
    return streams, fillers


def encode_layer(
    name: str, q: QuantizedWeight, *, index_bits: int, huffman: HuffmanMode, layout: Layout
) -> EncodedLayer:
    """Code one layer in ``layout`` (``auto``: the layout with the fewest bytes)."""
    if layout == "auto":
        pruned = q.mask is not None and not np.asarray(q.mask, bool).all()
        candidates = ("relative", "bitmap", "dense") if pruned else ("dense",)
    else:
        candidates = (layout,)
    options = []
    for candidate in candidates:
        streams, fillers = _encode_as(q, candidate, index_bits, huffman)
        meta = {
            "name": name,
            "shape": [int(d) for d in q.shape],
            "scheme": q.scheme,
            "bits": int(q.bits),
            "layout": candidate,
            "index_bits": int(index_bits),
            "alphabet": alphabet_size(q),
            "kept": q.nonzeros,
            "entries": streams["values"].count,
            "fillers": fillers,
        }
        options.append(EncodedLayer(meta, streams))
    return min(options, key=lambda option: option.nbytes)  # first of equals wins


def _section(body: bytes, meta: dict) -> bytes:
    start, length = int(meta["offset"]), int(meta["length"])
    if start < 0 or length < 0 or start + length > len(body):
        raise ValueError("stream lies outside the file body")
    return body[start : start + length]


def _read_symbols(meta: dict, body: bytes) -> np.ndarray:
    data, count = _section(body, meta), int(meta["count"])
    if meta["coding"] == "fixed":
        return unpack_bits(data, int(meta["width"]), count)
    if meta["coding"] == "huffman":
        table = int(meta["table"])
        return huffman_decode(data[:table], data[table:], count)
    raise ValueError(f"unknown symbol coding {meta['coding']!r}")


def _read_floats(meta: dict, body: bytes) -> np.ndarray:
    data, count = _section(body, meta), int(meta["count"])
    if meta["coding"] != "raw" or len(data) != 4 * count:
        raise ValueError("float stream has the wrong size or coding")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def _positions(meta: dict, body: bytes, size: int) -> np.ndarray:
    layout = meta["layout"]
    if layout == "dense":
        return np.arange(size)
    index = meta["streams"]["index"]
    if layout == "bitmap":
        return np.flatnonzero(bitmap_decode(_section(body, index), size))
    if layout == "relative":
        return relative_decode(_read_symbols(index, body))
    raise ValueError(f"unknown layout {layout!r}")


def _mask(size: int, stored: np.ndarray) -> np.ndarray | None:
    if stored.size == size:
        return None
    mask = np.zeros(size, dtype=bool)
    mask[stored] = True
    return mask


def decode_layer(meta: dict, body: bytes) -> QuantizedWeight:
    """Rebuild a layer from its header entry and the file body.

    Raises:
        ValueError: The streams are inconsistent (a corrupt file).
    """
    shape = tuple(int(d) for d in meta["shape"])
    size, scheme, bits = int(np.prod(shape)), meta["scheme"], int(meta["bits"])
    streams = meta["streams"]
    if scheme == "float":
        values = _read_floats(streams["values"], body)
    else:
        values = _read_symbols(streams["values"], body)
    if meta["layout"] == "dense" and values.size != size:
        raise ValueError("dense layout needs one value per weight")
    positions = _positions(meta, body, size)
    if positions.size != values.size or (positions.size and not 0 <= positions[-1] < size):
        raise ValueError("positions and values disagree")
    if scheme == "float":
        flat = np.zeros(size, dtype=np.float32)
        flat[positions] = values
        return QuantizedWeight(
            shape, "float", bits, np.zeros(0, np.int32), flat, _mask(size, positions)
        )
    if scheme not in ("linear", "kmeans") or not 1 <= bits <= MAX_CODE_BITS:
        raise ValueError(f"bad scheme {scheme!r} or bits {bits}")
    alphabet = int(meta["alphabet"])
    codebook = _read_floats(streams["codebook"], body)
    if scheme == "linear" and codebook.size != shape[0]:
        raise ValueError("linear codebook does not have one scale per output channel")
    expected = 1 << bits if scheme == "linear" else codebook.size
    if alphabet != expected or (values.size and int(values.max()) > alphabet):
        raise ValueError("codes do not fit the codebook")
    real = values < alphabet
    codes = np.zeros(size, dtype=np.int32)
    codes[positions[real]] = values[real]
    return QuantizedWeight(shape, scheme, bits, codes, codebook, _mask(size, positions[real]))
