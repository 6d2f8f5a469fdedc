"""Byte accounting of an ``.apz`` file, per layer and in total."""

from __future__ import annotations

from dataclasses import asdict, dataclass

FP32_BYTES = 4


def yang_bits(bits: int, nonzeros: int) -> int:
    """Size count of Yang et al. 2020 for one layer: bits x nonzeros (no indices, codebook).

    Example:
        >>> yang_bits(4, 1000)
        4000
    """
    return int(bits) * int(nonzeros)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / denominator if denominator else 0.0


@dataclass(frozen=True)
class LayerReport:
    """Where one layer's bytes went.

    Attributes:
        name: Layer (module) name.
        shape: Weight shape.
        scheme: ``linear``, ``kmeans`` or ``float``.
        bits: Bits per weight code of the quantizer (32 for float).
        layout: ``dense``, ``bitmap`` or ``relative`` (sparse positions as gaps).
        index_bits: Bits per relative index (used by the ``relative`` layout).
        weights: Number of weights.
        kept: Unpruned weights.
        entries: Stored values (kept weights, plus fillers or pruned zeros when stored).
        fillers: Filler entries inserted where a relative gap overflowed.
        value_coding: ``fixed``, ``huffman`` or ``raw`` for the weight codes.
        index_coding: ``fixed``, ``huffman``, ``bitmap`` or ``none``.
        code_bytes: Bytes of weight codes (payload only).
        index_bytes: Bytes of indices or bitmap (payload only).
        codebook_bytes: Bytes of float32 scales or centroids.
        table_bytes: Bytes of Huffman tables (codes and indices).
        code_bits: Bits of weight codes actually used (no byte padding).
        index_bits_used: Bits of indices actually used (no byte padding).

    Example:
        >>> r = LayerReport("fc", (10, 10), "kmeans", 4, "dense", 5, 100, 100, 100, 0,
        ...                 "fixed", "none", 50, 0, 64, 0, 400, 0)
        >>> r.total_bytes, r.bits_per_weight, r.compression_ratio
        (114, 4.0, 3.508771929824561)
    """

    name: str
    shape: tuple[int, ...]
    scheme: str
    bits: int
    layout: str
    index_bits: int
    weights: int
    kept: int
    entries: int
    fillers: int
    value_coding: str
    index_coding: str
    code_bytes: int
    index_bytes: int
    codebook_bytes: int
    table_bytes: int
    code_bits: int
    index_bits_used: int

    @property
    def total_bytes(self) -> int:
        """All bytes of this layer's streams."""
        return self.code_bytes + self.index_bytes + self.codebook_bytes + self.table_bytes

    @property
    def kept_pct(self) -> float:
        """Percentage of weights kept."""
        return 100.0 * _ratio(self.kept, self.weights)

    @property
    def bits_per_weight(self) -> float:
        """Coded weight bits per kept weight (fillers and stored zeros included)."""
        return _ratio(self.code_bits, self.kept)

    @property
    def bits_per_index(self) -> float:
        """Index (or bitmap) bits per kept weight."""
        return _ratio(self.index_bits_used, self.kept)

    @property
    def fp32_bytes(self) -> int:
        """Bytes of this weight as dense float32."""
        return FP32_BYTES * self.weights

    @property
    def compression_ratio(self) -> float:
        """Dense float32 bytes over this layer's bytes in the file."""
        return _ratio(self.fp32_bytes, self.total_bytes)

    @property
    def yang_bits(self) -> int:
        """Bits x nonzeros, the size count of Yang et al. 2020 (no indices or codebook)."""
        return yang_bits(self.bits, self.kept)

    def to_dict(self) -> dict:
        """Plain-JSON form, derived figures included."""
        data = asdict(self)
        data["shape"] = list(self.shape)
        for key in ("total_bytes", "kept_pct", "bits_per_weight", "bits_per_index"):
            data[key] = getattr(self, key)
        for key in ("fp32_bytes", "compression_ratio", "yang_bits"):
            data[key] = getattr(self, key)
        return data


@dataclass(frozen=True)
class ApzReport:
    """Byte accounting of a whole ``.apz`` file.

    ``total_bytes`` adds up every section and equals ``file_bytes``, the size on disk.
    ``compression_ratio`` compares it with the dense float32 model: 4 bytes for every
    element of every stored tensor (coded weights and extras alike, buffers included).
    ``yang_bytes`` is the count of Yang et al. 2020, Σ bits x nonzeros / 8 over the coded
    weights, which leaves out indices, codebooks and the other tensors; ``yang_ratio``
    compares it with the coded weights as dense float32.

    Attributes:
        path: The file.
        layers: One report per coded weight, in file order.
        extra_count: Elements of the other tensors (biases, BatchNorm, buffers).
        extra_bytes: Bytes of the other tensors, stored raw.
        overhead_bytes: Magic, version and JSON header.
        file_bytes: Size of the file on disk.

    Example:
        >>> report = write_apz("model.apz", weights, extra)  # doctest: +SKIP
        >>> print(f"{report.compression_ratio:.1f}x, {report.file_bytes} bytes")  # doctest: +SKIP
    """

    path: str
    layers: tuple[LayerReport, ...]
    extra_count: int
    extra_bytes: int
    overhead_bytes: int
    file_bytes: int

    def _sum(self, key: str) -> int:
        return sum(getattr(layer, key) for layer in self.layers)

    @property
    def weights(self) -> int:
        """Weights of all coded layers."""
        return self._sum("weights")

    @property
    def kept(self) -> int:
        """Unpruned weights of all coded layers."""
        return self._sum("kept")

    @property
    def total_bytes(self) -> int:
        """Layer streams + other tensors + overhead (equals ``file_bytes``)."""
        return self._sum("total_bytes") + self.extra_bytes + self.overhead_bytes

    @property
    def fp32_bytes(self) -> int:
        """The same tensors as dense float32."""
        return FP32_BYTES * (self.weights + self.extra_count)

    @property
    def compression_ratio(self) -> float:
        """Dense float32 bytes over the file size."""
        return _ratio(self.fp32_bytes, self.file_bytes)

    @property
    def bits_per_weight(self) -> float:
        """Coded weight bits per kept weight over all layers."""
        return _ratio(self._sum("code_bits"), self.kept)

    @property
    def bits_per_index(self) -> float:
        """Index bits per kept weight over all layers."""
        return _ratio(self._sum("index_bits_used"), self.kept)

    @property
    def yang_bytes(self) -> float:
        """Σ bits x nonzeros / 8 over the coded weights (Yang et al. 2020)."""
        return self._sum("yang_bits") / 8

    @property
    def yang_ratio(self) -> float:
        """Coded weights as dense float32 over :attr:`yang_bytes`."""
        return _ratio(FP32_BYTES * self.weights, self.yang_bytes)

    def totals(self) -> dict:
        """File-level figures as a flat dict (e.g. for MLflow metrics)."""
        keys: tuple[str, ...]
        keys = ("weights", "kept", "total_bytes", "fp32_bytes", "compression_ratio")
        keys += ("bits_per_weight", "bits_per_index", "yang_bytes", "yang_ratio")
        data = {key: getattr(self, key) for key in keys}
        data["kept_pct"] = 100.0 * _ratio(self.kept, self.weights)
        for key in ("code_bytes", "index_bytes", "codebook_bytes", "table_bytes"):
            data[key] = self._sum(key)
        for key in ("extra_count", "extra_bytes", "overhead_bytes", "file_bytes"):
            data[key] = getattr(self, key)
        return data

    def to_dict(self) -> dict:
        """Plain-JSON form: the path, the totals and one entry per layer."""
        return {
            "path": self.path,
            "total": self.totals(),
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def to_rows(self) -> list[dict[str, str | int | float]]:
        """One row per layer, then other tensors, header and total, for printing a table.

        Every row has the same keys (the column names) in the same order.
        """
        rows = [_row(layer.name, layer.weights, layer.kept_pct, layer) for layer in self.layers]
        rows.append(_row("(other tensors)", self.extra_count, 100.0, None, self.extra_bytes))
        rows.append(_row("(header)", 0, 0.0, None, self.overhead_bytes))
        total = self.totals()
        row = _row("total", self.weights + self.extra_count, total["kept_pct"], None, 0)
        row |= {
            "bits/w": round(self.bits_per_weight, 3),
            "bits/idx": round(self.bits_per_index, 3),
            "codes B": total["code_bytes"],
            "index B": total["index_bytes"],
            "codebook B": total["codebook_bytes"],
            "tables B": total["table_bytes"],
            "total B": self.file_bytes,
            "ratio": round(self.compression_ratio, 2),
        }
        rows.append(row)
        return rows


def _row(
    label: str, weights: int, kept_pct: float, layer: LayerReport | None, raw_bytes: int = 0
) -> dict[str, str | int | float]:
    """A table row for a layer, or for raw bytes when ``layer`` is None."""
    return {
        "layer": label,
        "weights": weights,
        "kept %": round(kept_pct, 2),
        "layout": f"{layer.layout}/{layer.value_coding}" if layer else "",
        "bits/w": round(layer.bits_per_weight, 3) if layer else "",
        "bits/idx": round(layer.bits_per_index, 3) if layer else "",
        "codes B": layer.code_bytes if layer else 0,
        "index B": layer.index_bytes if layer else 0,
        "codebook B": layer.codebook_bytes if layer else 0,
        "tables B": layer.table_bytes if layer else 0,
        "total B": layer.total_bytes if layer else raw_bytes,
        "ratio": round(layer.compression_ratio, 2) if layer else "",
    }


def layer_report(meta: dict) -> LayerReport:
    """Build a :class:`LayerReport` from a layer's ``.apz`` header entry."""
    streams = meta["streams"]
    empty = {"length": 0, "table": 0, "bits": 0, "coding": "none"}
    values, index = streams["values"], streams.get("index", empty)
    codebook = streams.get("codebook", empty)
    return LayerReport(
        name=meta["name"],
        shape=tuple(int(d) for d in meta["shape"]),
        scheme=meta["scheme"],
        bits=int(meta["bits"]),
        layout=meta["layout"],
        index_bits=int(meta["index_bits"]),
        weights=int(_prod(meta["shape"])),
        kept=int(meta["kept"]),
        entries=int(meta["entries"]),
        fillers=int(meta["fillers"]),
        value_coding=values["coding"],
        index_coding=index["coding"],
        code_bytes=values["length"] - values["table"],
        index_bytes=index["length"] - index["table"],
        codebook_bytes=codebook["length"],
        table_bytes=values["table"] + index["table"],
        code_bits=int(values["bits"]),
        index_bits_used=int(index["bits"]),
    )


def _prod(shape: list[int]) -> int:
    total = 1
    for dim in shape:
        total *= int(dim)
    return total
