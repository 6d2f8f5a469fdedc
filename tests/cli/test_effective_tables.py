"""The CLI tells the truth about coupled layers: ``layers``, the search report and ``apply``
show what each layer of the pruned model really keeps and which controller it follows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from autoprune.cli import _console, main
from autoprune.cli._apply_report import print_apply_report, report_json
from autoprune.cli._search_report import print_result
from autoprune.coding import read_apz
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.core.results import EpisodeRecord, SearchResult
from autoprune.core.specs import discover_layers
from autoprune.cost import load_profile
from autoprune.data import load_dataset
from autoprune.deploy.apply import apply_policy
from autoprune.latency import build_cost_model
from autoprune.workflow.baseline import build_for

torch.set_num_threads(1)
ARROW = "↳"


def _rows(out: str) -> dict[str, list[str]]:
    """Table rows keyed by their first word, cells stripped."""
    rows = {}
    for line in out.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            rows[cells[0].split()[0]] = cells
    return rows


def test_layers_marks_coupled_layers_and_names_their_controller(capsys, monkeypatch) -> None:
    monkeypatch.setattr(_console.console, "_width", 200)
    assert main(["layers", "--model", "resnet20", "--dataset", "digits"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["layer1.0.conv2"][0] == f"layer1.0.conv2 {ARROW} conv1"
    assert rows["layer2.1.conv2"][0] == f"layer2.1.conv2 {ARROW} layer2.0.downsample.conv"
    assert rows["layer1.0.conv1"][0] == "layer1.0.conv1" and rows["fc"][0] == "fc (fixed)"
    assert main(["layers", "--model", "mobilenetv2_small", "--dataset", "digits", "--json"]) == 0
    follows = {row["name"]: row["follows"] for row in json.loads(capsys.readouterr().out)}
    assert follows["blocks.1.body.dw"] == "blocks.1.body.expand"  # depthwise
    assert follows["blocks.2.body.project"] == "blocks.1.body.project"  # residual add
    assert follows["blocks.1.body.expand"] is None and follows["fc"] is None


@pytest.fixture(scope="module")
def applied(tmp_path_factory) -> tuple:
    """resnet20 (untrained) on digits under a policy that prunes only the controllers."""
    torch.manual_seed(0)
    data = load_dataset("digits")
    model = build_for("resnet20", data).eval()
    specs = discover_layers(model, data.input_shape)
    coupled = {f"layer1.{i}.conv2" for i in range(3)}
    layers = {s.name: LayerPolicy(keep_ratio=0.5 if s.name == "conv1" else 1.0) for s in specs}
    assert all(layers[n].keep_ratio == 1.0 for n in coupled)
    policy = Policy.for_specs(specs, layers)
    out = tmp_path_factory.mktemp("applied") / "out"
    cost = build_cost_model(load_profile("bitfusion"))
    result = apply_policy(model, policy, data, cost, out, latency_repeats=1)
    return result, out, specs


def _channels(model: nn.Module, name: str) -> int:
    module = model.get_submodule(name)
    assert isinstance(module, nn.Conv2d)
    return module.out_channels


def test_apply_writes_and_prints_what_the_pruned_model_has(applied, capsys, monkeypatch):
    result, out, specs = applied
    kept = _channels(result.model, "layer1.0.conv2")
    assert kept == 8  # conv1 decided 16 -> 8; the residual branch had to follow
    written = json.loads((out / "policy.json").read_text())
    assert written["layers"]["layer1.0.conv2"]["keep_ratio"] == 1.0  # the decision stays
    effective = written["meta"]["effective"]["layer1.0.conv2"]
    assert effective["channels"] == [kept, 16] and effective["keep_ratio"] == kept / 16
    assert effective["follows"] == "conv1"
    assert Policy.load(out / "policy.json", specs).layers["conv1"].keep_ratio == 0.5
    header = read_apz(out / "model.apz")[2]["policy"]
    assert "effective" not in header["meta"]  # the file stays as small as predicted
    monkeypatch.setattr(_console.console, "_width", 200)
    print_apply_report(result, "resnet20", load_profile("bitfusion"))
    rows = _rows(capsys.readouterr().out)
    assert rows["layer1.0.conv2"][:2] == [f"layer1.0.conv2 {ARROW} conv1", "0.50"]
    assert rows["layer1.0.conv1"][:2] == ["layer1.0.conv1", "1.00"]
    layers = report_json(result, load_profile("bitfusion"))["layers"]
    assert layers["layer2.0.conv2"] == {
        "keep_ratio": 1.0,
        "sparsity": 0.0,
        "w_bits": 32,
        "a_bits": 32,
        "channels": [32, 32],
        "follows": "layer2.0.downsample.conv",
    }


def test_search_report_prints_effective_keep_and_the_controller(applied, capsys, monkeypatch):
    result, out, _ = applied
    truth = Policy.load(out / "policy.json")
    record = EpisodeRecord(index=3, policy=truth, reward=1.0, metrics={"accuracy": 0.1})
    search = SearchResult("tpe", [record], {"accuracy": 0.1})
    files = {"best_policy.json": Path("best_policy.json")}
    monkeypatch.setattr(_console.console, "_width", 200)
    profile = load_profile("bitfusion")
    print_result(search, files, "run", False, weights=None, profile=profile)
    printed = capsys.readouterr().out
    rows = _rows(printed)
    assert rows["layer1.2.conv2"] == [
        f"layer1.2.conv2 {ARROW} conv1",
        "0.50",
        "fp32",
        "fp32",
        "0.00",
    ]
    assert rows["conv1"][:2] == ["conv1", "0.50"] and f"{ARROW} X: channels follow" in printed
    print_result(search, files, "run", True, weights=None, profile=profile)
    best = json.loads(capsys.readouterr().out)["best"]
    assert best["policy"]["layer1.2.conv2"]["keep_ratio"] == 1.0
    assert best["effective"]["layer1.2.conv2"]["follows"] == "conv1"
    assert best["effective"]["layer1.2.conv2"]["keep_ratio"] == 0.5
