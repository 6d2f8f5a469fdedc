"""Scale-out through Ray: 2 Ray workers against 1 process, same budget, same seed.

One search method (default ``tpe``) on one model and budget (default ``vgg_small``,
``flops=0.5``, 40 evaluations) runs three times on one prepared session:

* ``local-1``: today's single process (``--backend local --workers 1``);
* ``ray-1``: one Ray worker (its history must equal ``local-1``'s: same quality);
* ``ray-N``: ``--workers`` Ray workers (default 2) on a local Ray cluster.

Reported: wall time of each search and the ratio ``local-1 / ray-N``; the best feasible
accuracy of each (quality); Ray's start-up (``ray.init`` and the actors' start, each
building its evaluator from the object store) and its per-episode overhead, the wall time
of ``ray-N`` beyond its start-up and the evaluations themselves, per ``N`` episodes, as a
share of an episode's evaluation time, the share of the workers' time after the start-up
that they spent evaluating, and Ray's own overhead: ``ray-N``'s wall time after the
start-up times ``N`` per episode, minus ``local-1``'s wall time per episode, as a share of
the latter (goal: at most 5%). Results go to
``<out>/ray_scaleout-<time>.json`` and ``.md``::

    python benchmarks/ray_scaleout.py                                 # the study (long)
    python benchmarks/ray_scaleout.py --model demo --evaluations 4    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass
class Row:
    """One search of the benchmark."""

    name: str
    backend: str
    workers: int
    wall_s: float
    best_accuracy: float | None
    episode_s: float
    """Mean evaluation time of an episode (the records' ``seconds``)."""
    rewards: list[float]


def _search(config: Any, session: Any, name: str) -> Row:
    from agents import run_search

    started = time.perf_counter()
    result = run_search(config, session=session, run_name=name)
    wall = time.perf_counter() - started
    best = result.best
    return Row(
        name=name.rsplit("__", 1)[-1],
        backend=config.backend,
        workers=config.workers,
        wall_s=wall,
        best_accuracy=best.metrics["accuracy"] if best is not None else None,
        episode_s=statistics.fmean(r.seconds for r in result.history),
        rewards=[r.reward for r in result.history],
    )


def _actor_start(config: Any, session: Any) -> float:
    """Seconds until ``config.workers`` actors answer (each builds its evaluator)."""
    import ray

    from agents._ray import start_workers

    started = time.perf_counter()
    workers = start_workers(ray, config, session)
    ray.get([actor.describe.remote() for actor in workers.actors])
    seconds = time.perf_counter() - started
    workers.kill(ray)
    return seconds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; the summary it wrote."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vgg_small")
    parser.add_argument("--dataset", default=None, help="default: the model's own")
    parser.add_argument("--target", default="flops=0.5")
    parser.add_argument("--agent", default="tpe")
    parser.add_argument("--evaluations", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", default="runs", help="where the baseline is cached")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)

    import ray
    import torch

    from autoprune.models import default_dataset
    from autoprune.workflow.config import SearchConfig
    from autoprune.workflow.session import prepare_search

    torch.set_num_threads(1)
    searches = tempfile.mkdtemp(prefix="ray-scaleout-")
    config = SearchConfig(
        model=args.model,
        dataset=args.dataset or default_dataset(args.model) or "digits",
        agent=args.agent,
        targets=(args.target,),
        episodes=args.evaluations,
        seed=args.seed,
        runs_dir=args.runs_dir,
        storage=f"sqlite:///{searches}/optuna.db",
    )
    session = prepare_search(config)  # trains or loads the cached baseline
    stamp = time.strftime("%Y%m%d-%H%M%S")
    local = config.replace(runs_dir=searches)

    rows = [_search(local, session, f"{stamp}__local-1")]
    started = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - started
    try:
        ray_n = local.replace(backend="ray", workers=args.workers)
        actors_s = _actor_start(ray_n, session)
        rows.append(_search(local.replace(backend="ray"), session, f"{stamp}__ray-1"))
        rows.append(_search(ray_n, session, f"{stamp}__ray-{args.workers}"))
    finally:
        ray.shutdown()

    one, many = rows[0], rows[-1]
    rounds = -(-args.evaluations // args.workers)
    overhead = (many.wall_s - actors_s) / rounds - many.episode_s
    busy = many.episode_s * args.evaluations  # seconds the workers spent evaluating
    utilization = busy / (args.workers * (many.wall_s - actors_s))
    # per episode, what N Ray workers spend beyond N times the single process's pace
    local_episode = one.wall_s / args.evaluations
    over_local = (many.wall_s - actors_s) * args.workers / args.evaluations - local_episode
    summary = {
        "config": {k: v for k, v in vars(args).items()},
        "rows": [asdict(r) for r in rows],
        "wall_ratio_local1_over_rayN": one.wall_s / many.wall_s,
        "ray_init_s": init_s,
        "ray_actor_start_s": actors_s,
        "ray_overhead_per_round_s": overhead,
        "ray_overhead_share_of_episode": overhead / one.episode_s if one.episode_s else None,
        "ray_worker_utilization": utilization,
        "ray_overhead_over_local_s": over_local,
        "ray_overhead_over_local_share": over_local / local_episode,
        "ray1_history_equals_local1": rows[1].rewards == one.rewards,
        "cpu_count": __import__("os").cpu_count(),
    }
    _write(Path(args.out), stamp, summary)
    return summary


def _write(out: Path, stamp: str, summary: dict[str, Any]) -> None:
    """The JSON summary and a Markdown table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"ray_scaleout-{stamp}.json").write_text(json.dumps(summary, indent=2))
    lines = [
        "| search | backend | workers | wall (s) | best accuracy | episode (s) |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        best = "-" if row["best_accuracy"] is None else f"{row['best_accuracy']:.4f}"
        lines.append(
            f"| {row['name']} | {row['backend']} | {row['workers']} | {row['wall_s']:.1f} | "
            f"{best} | {row['episode_s']:.2f} |"
        )
    share = summary["ray_overhead_share_of_episode"]
    lines += [
        "",
        f"- wall time local-1 / ray-N: {summary['wall_ratio_local1_over_rayN']:.2f}",
        f"- ray.init: {summary['ray_init_s']:.1f} s; actors ready: "
        f"{summary['ray_actor_start_s']:.1f} s",
        f"- Ray overhead per round beyond the evaluation: "
        f"{summary['ray_overhead_per_round_s']:.3f} s"
        + ("" if share is None else f" ({share:.1%} of an episode)"),
        f"- ray-N workers busy evaluating: {summary['ray_worker_utilization']:.1%} of their "
        "time after the start-up",
        f"- Ray's overhead over the single process, per episode after the start-up: "
        f"{summary['ray_overhead_over_local_s']:.3f} s "
        f"({summary['ray_overhead_over_local_share']:.1%} of local-1's episode)",
        f"- ray-1 history equals local-1: {summary['ray1_history_equals_local1']}",
    ]
    (out / f"ray_scaleout-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
