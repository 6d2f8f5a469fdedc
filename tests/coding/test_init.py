from __future__ import annotations

import doctest

import pytest

import autoprune.coding as coding
from autoprune.coding import _bits, _byte_counts, _huffman, _sparse


def test_public_names_exist() -> None:
    assert sorted(coding.__all__) == sorted(set(coding.__all__))
    for name in coding.__all__:
        assert getattr(coding, name) is not None


@pytest.mark.parametrize("module", [_bits, _huffman, _byte_counts, _sparse])
def test_docstring_examples_hold(module) -> None:
    result = doctest.testmod(module, extraglobs={"np": __import__("numpy")})
    assert result.failed == 0 and result.attempted > 0
