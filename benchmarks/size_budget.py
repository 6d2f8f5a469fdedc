"""Compression under a model-size budget, every method through the search pipeline (issue 13).

For each model and budget (a fraction 1/R of the uncompressed model's ``.apz`` file, i.e. of
its float32 weights, biases and header), every method searches with the target
``size=1/R`` exactly as ``autoprune search`` does (``agents.run_search``):

* RL agents and baselines (``ddpg``, ``sac``, ``tpe``, ``uniform``, ...) in ``--mode``
  (``sparse``: sparsity + weight bits; ``joint`` adds channels and activation bits), for
  ``--episodes`` evaluations;
* the one-shot methods ``deep-compression`` and ``admm``, one evaluation each, with their own
  retraining (``--dc-*`` / ``--admm-*`` epochs).

Then the best policy is applied as ``autoprune apply --finetune-epochs F`` does
(:func:`autoprune.deploy.apply.apply_policy`: same evaluation path, fine-tuning with distillation,
the coded ``.apz`` file trimmed to the target if needed) and its test accuracy and real
file bytes are reported. For the one-shot methods the row also gives their own retrained
model (``trained_model.apz`` in the run folder): its test accuracy and file bytes.

Usage:
    python benchmarks/size_budget.py [--models lenet300,lenet5] [--ratios 40,100,200]
        [--methods ddpg,sac,tpe,uniform,admm,deep-compression] [--mode sparse]
        [--episodes 60] [--finetune-epochs 3] [--weights lenet5=PATH]
        [--out benchmarks/results/size_budget.json]

Smoke run (a minute): ``--models lenet300 --dataset digits --ratios 40 --episodes 4
--finetune-epochs 1 --dc-prune-epochs 1 --dc-quant-epochs 1 --admm-epochs 1``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from agents import method_class, run_search
from autoprune.coding import inspect_apz, state_dict_from_apz
from autoprune.core.errors import AutopruneError
from autoprune.core.training import top1_accuracy
from autoprune.deploy.apply import apply_policy
from autoprune.workflow.baseline import build_for
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession, prepare_search


def _pct(value: float) -> float:
    return round(100 * value, 2)


def method_options(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """The one-shot methods' retraining epochs; nothing for the others."""
    if method == "deep-compression":
        return {"prune_epochs": args.dc_prune_epochs, "quant_epochs": args.dc_quant_epochs}
    if method == "admm":
        return {"epochs": args.admm_epochs, "finetune_epochs": args.admm_finetune_epochs}
    return {}


def search_config(model: str, method: str, ratio: float, args: argparse.Namespace) -> SearchConfig:
    """The search of ``method`` at ``size=1/ratio``, as the CLI would build it."""
    one_shot = method_class(method).fixed_evaluations
    return SearchConfig(
        model=model,
        weights=args.weights_by_model.get(model),
        dataset=args.dataset,
        agent=method,
        mode=args.mode,
        targets=(f"size={1 / ratio:.6g}",),
        episodes=one_shot or args.episodes,
        agent_options=method_options(method, args),
        runs_dir=args.runs_dir,
        seed=args.seed,
    )


def own_model(session: SearchSession, run_dir: Path) -> dict[str, Any]:
    """Test accuracy and bytes of a one-shot method's own retrained model, if it wrote one."""
    path = run_dir / "trained_model.apz"
    if not path.is_file():
        return {}
    model = build_for(session.config.model, session.data)
    model.load_state_dict(state_dict_from_apz(path))
    data = session.data
    return {
        "own_test_acc": _pct(top1_accuracy(model.eval(), data.x_test, data.y_test)),
        "own_apz_bytes": inspect_apz(path).file_bytes,
    }


def run_method(
    session: SearchSession, method: str, ratio: float, args: argparse.Namespace
) -> dict[str, Any]:
    """Search, apply with fine-tuning, and measure one method at one budget."""
    config = search_config(session.config.model, method, ratio, args)
    name = f"size_budget__{config.model}__{ratio:g}x__{method}__{config.mode}__{time.time():.0f}"
    started = time.perf_counter()
    try:
        result = run_search(config, session=session, run_name=name)
    except AutopruneError as exc:
        return {"method": method, "error": str(exc)}
    searched = time.perf_counter() - started
    if result.best is None:
        return {"method": method, "error": "no feasible policy"}
    limit = (1 / ratio) * result.baseline_metrics["size"]
    out = config.runs_path / "benchmarks" / "size_budget" / name
    applied = apply_policy(
        session.model,
        result.best.policy,
        session.data,
        session.evaluator.cost_model,
        out,
        finetune_epochs=args.finetune_epochs,
    )
    bytes_ = inspect_apz(applied.files["apz"]).file_bytes
    row = {
        "method": method,
        "mode": "sparse" if method_class(method).fixed_evaluations else config.mode,
        "evaluations": len(result.history),
        "search_val_acc": _pct(result.best.metrics["accuracy"]),
        "test_acc": _pct(applied.compressed["test_accuracy"]),
        "apz_bytes": bytes_,
        "within": bytes_ <= limit,
        "trimmed_weights": sum(applied.trimmed.values()),
        "bits": int(result.best.metrics["bits"]),
        "search_seconds": round(searched, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return row | own_model(session, config.runs_path / "searches" / name)


def run_model(model: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every method at every budget for one model (one session: data, baseline, evaluator)."""
    first = args.methods.split(",")[0]
    session = prepare_search(search_config(model, first, float(args.ratios.split(",")[0]), args))
    data = session.data
    base = {
        "model": model,
        "base_test_acc": _pct(top1_accuracy(session.model, data.x_test, data.y_test)),
        "base_val_acc": _pct(session.evaluator.baseline_metrics["accuracy"]),
        "base_apz_bytes": round(session.evaluator.baseline_metrics["size"]),
        "weights": str(session.weights_path),
    }
    rows = []
    for ratio in (float(r) for r in args.ratios.split(",")):
        budget = {"ratio": ratio, "budget_bytes": round(base["base_apz_bytes"] / ratio)}
        for method in args.methods.split(","):
            row = base | budget | run_method(session, method, ratio, args)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """One line per model, budget and method."""
    lines = [
        "| model | budget | method | test acc after apply+FT (base) | .apz bytes | "
        "own retrained test acc / bytes | search val acc | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        head = f"| {r['model']} | 1/{r['ratio']:g} ({r['budget_bytes']:,} B) | {r['method']} "
        if "error" in r:
            lines.append(head + f"| {r['error']} | | | | |")
            continue
        own = f"{r['own_test_acc']} / {r['own_apz_bytes']:,}" if "own_test_acc" in r else "-"
        flag = "" if r["within"] else " **over**"
        lines.append(
            head + f"({r['mode']}) | {r['test_acc']} ({r['base_test_acc']}) "
            f"| {r['apz_bytes']:,}{flag} | {own} | {r['search_val_acc']} | {r['seconds']} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet300,lenet5")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--ratios", default="40,100,200")
    parser.add_argument("--methods", default="ddpg,sac,tpe,uniform,admm,deep-compression")
    parser.add_argument("--mode", default="sparse", choices=("sparse", "joint"))
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--dc-prune-epochs", type=int, default=4)
    parser.add_argument("--dc-quant-epochs", type=int, default=2)
    parser.add_argument("--admm-epochs", type=int, default=6)
    parser.add_argument("--admm-finetune-epochs", type=int, default=3)
    parser.add_argument("--weights", action="append", default=[], help="MODEL=PATH")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default="benchmarks/results/size_budget.json")
    args = parser.parse_args()
    args.weights_by_model = dict(item.split("=", 1) for item in args.weights)
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
    rows = [row for model in args.models.split(",") for row in run_model(model, args)]
    table = markdown(rows)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "size_budget",
        "dataset": args.dataset,
        "args": {k: v for k, v in vars(args).items() if k != "weights_by_model"},
        "platform": platform.platform(),
        "torch": torch.__version__,
        "wall_seconds": round(time.time() - started, 1),
        "rows": rows,
        "markdown": table,
    }
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
