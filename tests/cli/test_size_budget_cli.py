"""Deep Compression's own budget from the CLI: 1/40 of the float LeNet-300-100 (issue 13).

``deep-compression`` and ``admm`` search a ``size`` target in their own space (sparsity and
k-means bits), and what ships — the search's ``best_model.apz`` and the file ``apply
--export`` writes after fine-tuning — is within the target.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from autoprune.cli import main
from autoprune.coding import inspect_apz

FAST = {
    "deep-compression": {"prune_epochs": 1, "quant_epochs": 1},
    "admm": {"epochs": 1, "finetune_epochs": 1},
}


def _search(folder: Path, agent: str, target: str) -> int:
    config = folder / f"{agent}.yaml"
    config.write_text(yaml.safe_dump({"agent_options": FAST[agent]}))
    args = ["--threads", "1", "search", "--config", str(config), "--model", "lenet300"]
    args += ["--dataset", "digits", "--agent", agent, "--target", target]
    return main([*args, "--runs-dir", str(folder / "runs")])


def _run(folder: Path, agent: str) -> Path:
    return next((folder / "runs" / "searches").glob(f"lenet300__{agent}__*"))


@pytest.fixture(scope="module")
def searches(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """Both one-shot methods at 1/40 of the float size, with their best models coded."""
    folder = tmp_path_factory.mktemp("size-budget")
    summaries = {}
    for agent in FAST:
        assert _search(folder, agent, "size=0.025") == 0, agent
        summaries[agent] = json.loads((_run(folder, agent) / "summary.json").read_text())
    return folder, summaries


@pytest.mark.parametrize("agent", list(FAST))
def test_one_shot_methods_ship_a_coded_model_within_the_paper_budget(searches, agent):
    folder, summaries = searches
    summary = summaries[agent]
    limit = 0.025 * summary["baseline_metrics"]["size"]
    assert summary["best"]["metrics"]["size"] <= limit
    assert inspect_apz(_run(folder, agent) / "best_model.apz").file_bytes <= limit


def test_apply_export_of_a_size_budgeted_policy_stays_within_the_target(searches, capsys, tmp_path):
    folder, summaries = searches
    run = _run(folder, "deep-compression")
    weights = next((folder / "runs" / "checkpoints").glob("lenet300__digits__*.pt"))
    out = tmp_path / "out"
    args = ["apply", str(run / "best_policy.json"), "--weights", str(weights)]
    args += ["--model", "lenet300", "--dataset", "digits"]
    args += ["--finetune-epochs", "2", "--export", str(out), "--runs-dir", str(folder / "runs")]
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    limit = 0.025 * summaries["deep-compression"]["baseline_metrics"]["size"]
    assert inspect_apz(out / "model.apz").file_bytes <= limit
    assert report["compressed"]["size_bytes"] <= limit


def test_a_truly_unreachable_size_is_refused_in_one_line_before_any_run(tmp_path, capsys):
    code = _search(tmp_path, "deep-compression", "size=200B")
    err = capsys.readouterr().err
    assert code == 2
    assert "infeasible" in err and "method 'deep-compression'" in err
    progress = re.compile(r"^[^:]+: \d+/\d+ \(\d+%\), \d+:\d\d:\d\d elapsed")  # lines, no bar
    messages = [line for line in err.strip().splitlines() if not progress.match(line)]
    assert "Traceback" not in err and len(messages) == 1
    assert not (tmp_path / "runs" / "searches").exists()
