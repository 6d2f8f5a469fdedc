"""Tests for autoprune/tracking/plots.py: real PNG files from hand-made search records."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import matplotlib
import pytest
from matplotlib.image import imread
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.core.results import EpisodeRecord, SearchResult
from autoprune.core.specs import discover_layers
from autoprune.tracking import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.is_file()
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000  # a drawn chart, not an empty canvas


@pytest.fixture(scope="module")
def records(fake_records) -> list[EpisodeRecord]:
    """Five evaluations; the two least compressed ones break the budget."""
    return fake_records([1.0, 0.75, 0.5, 0.25, 0.6], alternate_float=True)


def test_plot_policy_writes_png_in_new_folder(records: list[EpisodeRecord], tmp_path: Path) -> None:
    policy = records[3].policy.replace_layer("0", sparsity=0.5)
    out = plots.plot_policy(policy, tmp_path / "a" / "b" / "policy.png")
    assert out == tmp_path / "a" / "b" / "policy.png"
    assert_png(out)


def test_plot_policy_width_grows_with_layers(tmp_path: Path, records) -> None:
    wide = nn.Sequential(*[nn.Linear(4, 4) for _ in range(30)])
    narrow_png = plots.plot_policy(records[0].policy, tmp_path / "narrow.png")
    wide_png = plots.plot_policy(
        Policy.uniform(discover_layers(wide, (4,)), keep_ratio=0.5), tmp_path / "wide.png"
    )
    assert imread(wide_png).shape[1] > imread(narrow_png).shape[1]


@pytest.mark.parametrize("x", ["latency", "macs"])
def test_plot_pareto_each_cost(records: list[EpisodeRecord], tmp_path: Path, x: str) -> None:
    assert_png(plots.plot_pareto(records, tmp_path / f"{x}.png", x=x))


def test_plot_pareto_unknown_cost_names_choices(
    records: list[EpisodeRecord], tmp_path: Path
) -> None:
    with pytest.raises(AutopruneError, match="latency, energy, size, macs"):
        plots.plot_pareto(records, tmp_path / "bad.png", x="flops_per_watt")
    assert not (tmp_path / "bad.png").exists()


def test_plot_pareto_grid_has_three_panels(records: list[EpisodeRecord], tmp_path: Path) -> None:
    single = imread(plots.plot_pareto(records, tmp_path / "one.png"))
    grid = imread(plots.plot_pareto_grid(records, tmp_path / "grid.png"))
    assert grid.shape[1] > 2 * single.shape[1]


def test_plot_reward_curve_and_comparison(records: list[EpisodeRecord], tmp_path: Path) -> None:
    assert_png(plots.plot_reward_curve(records, tmp_path / "reward.png"))
    results = {
        "ddpg": SearchResult("ddpg", records, baseline_metrics={"accuracy": 0.95}),
        "random": SearchResult("random", records[::-1]),
    }
    assert_png(plots.plot_comparison(results, tmp_path / "compare.png"))


def test_plots_accept_empty_history(tmp_path: Path) -> None:
    assert_png(plots.plot_reward_curve([], tmp_path / "reward.png"))
    assert_png(plots.plot_pareto_grid([], tmp_path / "grid.png"))
    assert_png(plots.plot_comparison({}, tmp_path / "compare.png"))


def test_plot_pareto_skips_records_without_the_cost(
    records: list[EpisodeRecord], tmp_path: Path
) -> None:
    no_energy = [
        EpisodeRecord(r.index, r.policy, r.reward, {"accuracy": r.metrics["accuracy"]}, r.feasible)
        for r in records
    ]
    assert_png(plots.plot_pareto_grid(no_energy, tmp_path / "grid.png"))


def test_best_so_far_ignores_missing_values() -> None:
    curve = plots._best_so_far([None, 0.2, None, 0.1, 0.5])
    assert math.isnan(curve[0])
    assert curve[1:] == [0.2, 0.2, 0.2, 0.5]


def test_plotting_leaves_pyplot_and_backend_alone(
    records: list[EpisodeRecord], tmp_path: Path
) -> None:
    backend = matplotlib.get_backend()
    plots.plot_reward_curve(records, tmp_path / "reward.png")
    assert matplotlib.get_backend() == backend
    pyplot = sys.modules.get("matplotlib.pyplot")
    assert pyplot is None or pyplot.get_fignums() == []


def test_policy_plot_has_no_bits_panel_in_prune_mode(tmp_path):
    """A float policy (prune mode) draws only the keep panel: a shorter figure."""
    from PIL import Image

    from autoprune.core.specs import discover_layers
    from autoprune.tracking.plots import plot_policy

    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    specs = discover_layers(model, (1, 8, 8))
    pruned = plot_policy(Policy.uniform(specs, keep_ratio=0.5), tmp_path / "prune.png")
    quantized = plot_policy(Policy.uniform(specs, w_bits=4, a_bits=8), tmp_path / "quant.png")
    with Image.open(pruned) as one, Image.open(quantized) as two:
        assert one.height < two.height - 100
