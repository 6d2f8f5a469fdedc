"""Deep Compression storage: the ``.apz`` file of coded weights (Han, Mao, Dally 2016).

Per layer: weight codes (fixed-width or canonical Huffman), sparse positions (dense,
bitmap, or relative indices with fillers) and the float32 codebook; plus the model's other
tensors raw, so the file alone rebuilds the state dict. :class:`ApzReport` accounts for
every byte.

Example:
    >>> extra = extras_from_state_dict(model.state_dict(), weights)  # doctest: +SKIP
    >>> report = write_apz("lenet5.apz", weights, extra)  # doctest: +SKIP
    >>> model.load_state_dict(state_dict_from_apz("lenet5.apz"))  # doctest: +SKIP
"""

from __future__ import annotations

from autoprune.coding._apz import (
    DEFAULT_INDEX_BITS,
    FALLBACK_INDEX_BITS,
    FORMAT_VERSION,
    MAGIC,
    PREFIX_BYTES,
    build_header,
    encode_header,
    extras_from_state_dict,
    inspect_apz,
    read_apz,
    state_dict_from_apz,
    write_apz,
)
from autoprune.coding._bits import pack_bits, unpack_bits
from autoprune.coding._byte_counts import ApzReport, LayerReport, yang_bits
from autoprune.coding._huffman import canonical_codes, code_lengths, huffman_decode, huffman_encode
from autoprune.coding._layer import HuffmanMode, Layout
from autoprune.coding._sparse import relative_decode, relative_encode

__all__ = [
    "DEFAULT_INDEX_BITS",
    "FALLBACK_INDEX_BITS",
    "FORMAT_VERSION",
    "MAGIC",
    "PREFIX_BYTES",
    "ApzReport",
    "HuffmanMode",
    "LayerReport",
    "Layout",
    "build_header",
    "canonical_codes",
    "code_lengths",
    "encode_header",
    "extras_from_state_dict",
    "huffman_decode",
    "huffman_encode",
    "inspect_apz",
    "pack_bits",
    "read_apz",
    "relative_decode",
    "relative_encode",
    "state_dict_from_apz",
    "unpack_bits",
    "write_apz",
    "yang_bits",
]
