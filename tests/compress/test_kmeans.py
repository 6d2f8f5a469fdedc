from __future__ import annotations

import pytest
import torch

from autoprune.compress.kmeans import kmeans_1d, linear_init
from autoprune.core.errors import AutopruneError


def test_linear_init_is_evenly_spaced_from_min_to_max() -> None:
    values = torch.tensor([0.3, -1.5, 2.5, 0.0, 1.1])
    centroids = linear_init(values, 5)
    assert centroids.tolist() == pytest.approx([-1.5, -0.5, 0.5, 1.5, 2.5])
    gaps = centroids[1:] - centroids[:-1]
    assert torch.allclose(gaps, torch.full_like(gaps, 1.0))


def test_converges_to_obvious_clusters_and_drops_the_empty_one() -> None:
    groups = [(-1.0, 40), (0.0, 30), (2.0, 20)]
    rows = [centre + torch.linspace(-0.05, 0.05, n) for centre, n in groups]
    values = torch.cat(rows)[torch.randperm(90, generator=torch.Generator().manual_seed(0))]
    centroids, assignments = kmeans_1d(values, bits=2)
    # linear init puts 4 centroids on [-1.05, 2.05]; the one near 1.0 gets no member
    assert centroids.dtype == torch.float32
    assert centroids.tolist() == pytest.approx([-1.0, 0.0, 2.0], abs=1e-6)
    expected = torch.bucketize(values, torch.tensor([-0.5, 1.0]))
    assert torch.equal(assignments, expected)


def test_result_is_a_lloyd_fixed_point_with_nearest_assignments() -> None:
    values = torch.randn(500, generator=torch.Generator().manual_seed(1))
    centroids, assignments = kmeans_1d(values, bits=3)
    assert 1 <= centroids.numel() <= 8
    assert torch.all(centroids[1:] > centroids[:-1])
    assert assignments.shape == values.shape and assignments.dtype == torch.int64
    distance = (values[:, None] - centroids[None, :]).abs()
    chosen = distance.gather(1, assignments[:, None]).squeeze(1)
    assert torch.all(chosen <= distance.min(1).values + 1e-6)
    for k in range(centroids.numel()):
        members = values[assignments == k]
        assert members.numel() > 0
        assert float(members.double().mean()) == pytest.approx(float(centroids[k]), abs=1e-5)


def test_is_deterministic() -> None:
    values = torch.randn(300, generator=torch.Generator().manual_seed(2))
    first = kmeans_1d(values, bits=4)
    second = kmeans_1d(values.clone(), bits=4)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_degenerate_inputs() -> None:
    centroids, assignments = kmeans_1d(torch.full((7,), 0.25), bits=3)
    assert centroids.tolist() == [0.25] and assignments.tolist() == [0] * 7
    centroids, assignments = kmeans_1d(torch.zeros(0), bits=3)
    assert centroids.tolist() == [0.0] and assignments.numel() == 0
    centroids, assignments = kmeans_1d(torch.tensor([3.0, -1.0]), bits=8)
    assert centroids.tolist() == [-1.0, 3.0] and assignments.tolist() == [1, 0]


@pytest.mark.parametrize("bits", [0, 9])
def test_bad_bits_raise(bits: int) -> None:
    with pytest.raises(AutopruneError, match="bits"):
        kmeans_1d(torch.randn(10), bits=bits)


def test_bad_max_iter_raises() -> None:
    with pytest.raises(AutopruneError, match="max_iter"):
        kmeans_1d(torch.randn(10), bits=2, max_iter=0)
