"""Energy per operation and per bit moved, from the 45 nm table of Horowitz (ISSCC 2014).

Constants are the published picojoule figures; the bit-width fits between them are ours:

* Multiplier: energy grows with the product of the operand widths,
  ``E(w, a) = 0.2 pJ * (w * a / 64) ** GAMMA`` with ``GAMMA = ln(3.1 / 0.2) / ln(16)``
  (about 0.989), so the fit passes exactly through int8 (0.2 pJ) and int32 (3.1 pJ) and is
  close to "bits squared" for equal widths.
* Adder: linear in the width through int8 (0.03 pJ) and int32 (0.1 pJ). Integer MACs
  accumulate at 32 bits, so an integer MAC costs ``mult(w, a) + add(32)``.
* Float: when either operand is float (32 bits) the MAC is an fp32 multiply plus an fp32 add
  (3.7 + 0.9 pJ).
* Memory: SRAM 64-bit reads cost 10 / 20 / 100 pJ for 8 KB / 32 KB / 1 MB arrays; we
  interpolate per bit in log-log space by the profile's on-chip size (extrapolating with the
  end segments). DRAM costs 640 pJ per 32-bit access as in Han et al. (2016), i.e. 20 pJ/bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from autoprune.core.policy import FLOAT_BITS

MemoryLevel = Literal["sram", "dram"]

INT8_ADD_PJ = 0.03
"""Horowitz 2014, 8-bit integer add."""
INT16_ADD_PJ = 0.05
"""Horowitz 2014, 16-bit integer add (not used by the fit; pinned for reference)."""
INT32_ADD_PJ = 0.1
"""Horowitz 2014, 32-bit integer add."""
INT8_MULT_PJ = 0.2
"""Horowitz 2014, 8-bit integer multiply."""
INT32_MULT_PJ = 3.1
"""Horowitz 2014, 32-bit integer multiply."""
FP16_ADD_PJ = 0.4
"""Horowitz 2014, fp16 add (reference only)."""
FP16_MULT_PJ = 1.1
"""Horowitz 2014, fp16 multiply (reference only)."""
FP32_ADD_PJ = 0.9
"""Horowitz 2014, fp32 add."""
FP32_MULT_PJ = 3.7
"""Horowitz 2014, fp32 multiply."""
SRAM_READ_64B_PJ: tuple[tuple[int, float], ...] = (
    (8 * 1024, 10.0),
    (32 * 1024, 20.0),
    (1024**2, 100.0),
)
"""Horowitz 2014, 64-bit SRAM read by array size in bytes (8 KB, 32 KB, 1 MB)."""
DRAM_32B_ACCESS_PJ = 640.0
"""Han et al. 2016 (Deep Compression / EIE), one 32-bit DRAM access."""
DRAM_PJ_PER_BIT = DRAM_32B_ACCESS_PJ / 32
"""20 pJ per bit moved from DRAM."""
ACCUMULATOR_BITS = 32
"""Width of the integer accumulator of a MAC."""


@dataclass(frozen=True)
class EnergyTable:
    """Per-operation energies in picojoules; a hardware profile may override any field.

    Attributes:
        int8_mult_pj: 8-bit multiply (anchor of the multiplier fit).
        int32_mult_pj: 32-bit multiply (anchor of the multiplier fit).
        int8_add_pj: 8-bit add (anchor of the adder fit).
        int32_add_pj: 32-bit add (anchor of the adder fit).
        fp32_mult_pj: fp32 multiply.
        fp32_add_pj: fp32 add.
        dram_pj_per_bit: Energy per bit read from DRAM.
        sram_pj_per_bit: Energy per bit read from on-chip SRAM; ``None`` interpolates the
            Horowitz SRAM table by the profile's on-chip size.
        accumulator_bits: Width of the integer accumulator.

    Example:
        >>> table = EnergyTable()
        >>> round(table.mac_pj(8, 8), 3), round(table.mac_pj(32, 32), 3)
        (0.3, 4.6)
    """

    int8_mult_pj: float = INT8_MULT_PJ
    int32_mult_pj: float = INT32_MULT_PJ
    int8_add_pj: float = INT8_ADD_PJ
    int32_add_pj: float = INT32_ADD_PJ
    fp32_mult_pj: float = FP32_MULT_PJ
    fp32_add_pj: float = FP32_ADD_PJ
    dram_pj_per_bit: float = DRAM_PJ_PER_BIT
    sram_pj_per_bit: float | None = None
    accumulator_bits: int = ACCUMULATOR_BITS

    def mult_pj(self, w_bits: int, a_bits: int) -> float:
        """Integer multiply of a ``w_bits`` by an ``a_bits`` operand."""
        gamma = math.log(self.int32_mult_pj / self.int8_mult_pj) / math.log(16.0)
        return self.int8_mult_pj * (w_bits * a_bits / 64.0) ** gamma

    def add_pj(self, bits: int) -> float:
        """Integer add of ``bits``-wide operands (linear through the int8 and int32 anchors)."""
        slope = (self.int32_add_pj - self.int8_add_pj) / 24.0
        return self.int8_add_pj + (bits - 8) * slope

    def mac_pj(self, w_bits: int, a_bits: int) -> float:
        """One multiply-accumulate; float when either operand is float (32 bits)."""
        if w_bits >= FLOAT_BITS or a_bits >= FLOAT_BITS:
            return self.fp32_mult_pj + self.fp32_add_pj
        return self.mult_pj(w_bits, a_bits) + self.add_pj(self.accumulator_bits)

    def sram_bit_pj(self, sram_bytes: int) -> float:
        """Energy per bit read from an SRAM of ``sram_bytes`` (override or interpolation)."""
        if self.sram_pj_per_bit is not None:
            return self.sram_pj_per_bit
        return sram_read_64b_pj(sram_bytes) / 64.0

    def bit_pj(self, level: MemoryLevel, sram_bytes: int) -> float:
        """Energy per bit read from ``level``."""
        return self.sram_bit_pj(sram_bytes) if level == "sram" else self.dram_pj_per_bit


def sram_read_64b_pj(sram_bytes: int) -> float:
    """64-bit read energy of an SRAM of ``sram_bytes``, log-log interpolated in the table.

    Example:
        >>> sram_read_64b_pj(32 * 1024)
        20.0
    """
    assert sram_bytes > 0, "on-chip size must be positive"
    points = SRAM_READ_64B_PJ
    if sram_bytes <= points[1][0]:
        (s0, e0), (s1, e1) = points[0], points[1]
    else:
        (s0, e0), (s1, e1) = points[1], points[2]
    t = math.log(sram_bytes / s0) / math.log(s1 / s0)
    return e0 * (e1 / e0) ** t


def memory_level(stored_bytes: int, sram_bytes: int) -> MemoryLevel:
    """Where a model's weights live: on chip when they fit ``sram_bytes`` exactly or less."""
    return "sram" if stored_bytes <= sram_bytes else "dram"
