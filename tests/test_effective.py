"""Effective per-layer values: coupled layers report the channels the pruned model has."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from autoprune.compress import ChannelPlan, CompressionOptions, prune_channels
from autoprune.core.effective import FOLLOW_MARK, EffectiveLayer
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.core.results import EpisodeRecord
from autoprune.core.specs import LayerSpec, discover_layers
from autoprune.models import build_model
from autoprune.tracking import LayerTable
from autoprune.tracking.plots import plot_policy
from autoprune.workflow.evaluation import Evaluation, EvaluatorConfig
from envs.scoring import PolicyScorer

torch.set_num_threads(1)
SHAPE = (1, 8, 8)
"""Tiny inputs: the zoo models run on digits-sized images."""


def _zoo(name: str) -> tuple[nn.Module, list[LayerSpec], ChannelPlan]:
    torch.manual_seed(0)
    model = build_model(name, in_channels=1, num_classes=10, input_size=SHAPE[1:]).eval()
    plan = ChannelPlan.build(model, torch.zeros((1, *SHAPE)))
    return model, discover_layers(model, SHAPE), plan


def _controllers_only(specs: list[LayerSpec], plan: ChannelPlan, keep: float) -> Policy:
    """What a search writes: a ratio on each controller, 1.0 on the coupled layers."""
    ratios = {s.name: keep if s.name in plan.prunable else 1.0 for s in specs}
    layers = {name: LayerPolicy(keep_ratio=r, w_bits=8) for name, r in ratios.items()}
    return Policy.for_specs(specs, layers)


def _out_channels(model: nn.Module, name: str) -> int:
    module = model.get_submodule(name)
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features


@pytest.mark.parametrize(
    ("model_name", "follower", "controller"),
    [
        ("resnet20", "layer1.0.conv2", "conv1"),  # residual branch tied to the stem
        ("mobilenetv2_small", "blocks.1.body.dw", "blocks.1.body.expand"),  # depthwise
        ("mobilenetv2_small", "blocks.2.body.project", "blocks.1.body.project"),  # add
    ],
)
def test_effective_keep_is_what_the_pruned_model_has(
    model_name: str, follower: str, controller: str
) -> None:
    model, specs, plan = _zoo(model_name)
    policy = _controllers_only(specs, plan, keep=0.55)
    assert policy.layers[follower].keep_ratio == 1.0  # the stored decision
    pruned = prune_channels(copy.deepcopy(model), torch.zeros((1, *SHAPE)), policy.keep_ratios())
    view = policy.effective(plan)
    for name, layer in view.items():
        kept, total = _out_channels(pruned, name), _out_channels(model, name)
        assert layer.channels == (kept, total), name
        assert layer.keep_ratio == pytest.approx(kept / total), name
        assert (layer.w_bits, layer.sparsity) == (8, 0.0)
    assert view[follower].keep_ratio < 1.0  # e.g. 16 -> 9 channels, not "keep 1.00"
    assert view[follower].follows == controller == plan.coupled[follower]
    assert view[follower].keep_ratio == view[view[follower].follows].keep_ratio
    assert all(view[n].follows is None for n in plan.prunable)


def test_the_record_round_trips_and_leaves_decisions_and_fingerprint_alone(tmp_path) -> None:
    _, specs, plan = _zoo("resnet20")
    policy = _controllers_only(specs, plan, keep=0.5)
    truth = policy.with_effective(plan)
    assert truth.layers == policy.layers and truth.fingerprint == policy.fingerprint
    assert truth.keep_ratios() == policy.keep_ratios()
    path = truth.save(tmp_path / "best_policy.json")
    stored = json.loads(path.read_text())["meta"]["effective"]
    assert stored["layer1.0.conv2"] == {
        "keep_ratio": 0.5,
        "sparsity": 0.0,
        "w_bits": 8,
        "a_bits": 32,
        "channels": [8, 16],
        "follows": "conv1",
    }
    loaded = Policy.load(path, specs)  # validation still passes
    assert loaded.effective_layers() == truth.effective(plan)
    assert "effective" not in loaded.without_effective().meta
    assert loaded.without_effective().to_dict() == policy.to_dict()


def test_an_old_or_damaged_record_shows_the_decisions() -> None:
    _, specs, plan = _zoo("resnet20")
    policy = _controllers_only(specs, plan, keep=0.5)
    old = policy.effective_layers()
    assert old["layer1.0.conv2"] == EffectiveLayer(1.0, 0.0, 8, 32)  # decided, no plan known
    policy.meta = {"effective": {"conv1": {"keep_ratio": "half"}, "fc": 3}}
    assert policy.effective_layers() == old


def _record(index: int, policy: Policy) -> EpisodeRecord:
    return EpisodeRecord(index=index, policy=policy, metrics={"accuracy": 0.5}, reward=0.5)


def test_layer_table_and_heatmap_show_effective_values_and_the_controller(tmp_path) -> None:
    _, specs, plan = _zoo("resnet20")
    records = [
        _record(i, _controllers_only(specs, plan, keep).with_effective(plan))
        for i, keep in enumerate((0.5, 0.75))
    ]
    table = LayerTable.from_records(records)
    row = table.layers.index("layer1.0.conv2")
    assert table.grids["keep_ratio"][row] == [0.5, 0.75]  # decided 1.0 in both episodes
    assert table.labels[row] == f"layer1.0.conv2 {FOLLOW_MARK} conv1"
    files = table.write(tmp_path)
    rows = list(csv.reader(files["layers/keep_ratio.csv"].read_text().splitlines()))
    assert rows[row + 1] == [f"layer1.0.conv2 {FOLLOW_MARK} conv1", "0.5", "0.75"]
    assert files["layers/keep_ratio.png"].read_bytes()[:4] == b"\x89PNG"
    image = plot_policy(records[0].policy, Path(tmp_path / "policy.png"))
    assert image.stat().st_size > 5_000


class _Evaluator:
    """The parts of a ``PolicyEvaluator`` that :class:`envs.scoring.PolicyScorer` reads."""

    def __init__(self, specs: list[LayerSpec], plan: ChannelPlan, round_to: int | None) -> None:
        self.specs, self.plan = specs, plan
        self.config = EvaluatorConfig(compression=CompressionOptions(round_to=round_to))
        self.baseline_metrics = {"accuracy": 0.9, "macs": 1.0}

    def evaluate(self, policy: Policy) -> Evaluation:
        return Evaluation({"accuracy": 0.8, "macs": 0.5}, cached=False, seconds=0.0)

    def record(self) -> dict[str, object]:
        return {"dataset": "none"}


def test_every_scored_policy_records_the_effective_view_with_the_rounding() -> None:
    _, specs, plan = _zoo("resnet20")
    scorer = PolicyScorer(_Evaluator(specs, plan, round_to=8), "flops=0.9")  # type: ignore[arg-type]
    policy = _controllers_only(specs, plan, keep=0.3)
    scorer.score(policy)
    view = policy.effective_layers()
    assert policy.layers["layer3.0.conv2"].keep_ratio == 1.0
    assert view["layer3.0.conv2"].channels == (16, 64)  # 0.3 x 64 rounded to 8s
    assert view["layer3.0.conv2"].follows == "layer3.0.downsample.conv"
    assert view["conv1"].channels == (8, 16) and view["fc"].channels == (10, 10)
