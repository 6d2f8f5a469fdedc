"""uniform: bisection on predicted costs, then a sweep of smaller settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from agents import make_method, run_search
from agents._context import SearchContext
from agents._run_store import RunStore
from agents._uniform import TOLERANCE, Uniform, largest_feasible, schedule
from autoprune.core.budget import Budget
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession


def test_schedule_starts_at_the_best_value_and_sweeps_down_to_minus_one() -> None:
    assert schedule(0.2, 1) == [0.2]
    values = schedule(0.2, 4)
    assert values[0] == 0.2 and values[-1] == pytest.approx(-1.0)
    assert values == sorted(values, reverse=True)


@pytest.mark.parametrize("mode", ["prune", "quantize", "sparse", "joint"])
def test_uniform_picks_the_largest_setting_that_meets_the_budget(
    mode: str, run_config: Callable[..., SearchConfig], session: SearchSession
) -> None:
    targets = {"prune": ("flops=0.5",), "sparse": ("size=0.05",)}.get(mode, ("size=0.2",))
    config = run_config("uniform", episodes=3, mode=mode, targets=targets)
    result = run_search(config, session=session, run_name=f"uniform-{mode}")

    first = result.history[0]
    assert first.feasible
    conv2, conv3 = first.policy.layers["conv2"], first.policy.layers["conv3"]
    assert (conv2.w_bits, conv2.a_bits) == (conv3.w_bits, conv3.a_bits)
    assert abs(conv2.keep_ratio - conv3.keep_ratio) <= 1 / 32  # up to whole channels
    assert all(r.feasible for r in result.history)
    if mode == "prune":  # smaller settings later in the sweep
        keeps = [r.policy.layers["conv2"].keep_ratio for r in result.history]
        assert keeps == sorted(keeps, reverse=True)
    if mode in ("sparse", "joint"):  # per bit-width, the largest sparsity that fits
        for record in result.history:
            assert len({lp.sparsity for lp in record.policy.layers.values()}) == 1
        assert [r.policy.layers["conv2"].w_bits for r in result.history] == [8, 7, 6]
        sparsities = [r.policy.layers["conv2"].sparsity for r in result.history]
        keeps = [r.policy.layers["conv2"].keep_ratio for r in result.history]
        assert sparsities == sorted(sparsities, reverse=True)  # fewer bits: denser
        assert keeps == sorted(keeps)
    if mode == "sparse":
        assert {lp.a_bits for lp in first.policy.layers.values()} == {32}
        assert first.policy.layers["fc"].w_bits == 8 and first.policy.layers["fc"].sparsity > 0


def test_sparse_bisection_lands_on_the_size_budget(
    run_config: Callable[..., SearchConfig], session: SearchSession
) -> None:
    config = run_config("uniform", episodes=1, mode="sparse", targets=("size=0.05",))
    store = RunStore.create(Path(config.runs_dir) / "searches" / "bisect-sparse", config.to_dict())
    sized = replace(session, config=config, budget=Budget.parse(list(config.targets)))
    ctx = SearchContext(config, sized, store, make_method("uniform"), [])
    env = ctx.make_env()

    u = largest_feasible(ctx, env)

    limit = 0.05 * session.evaluator.baseline_metrics["size"]
    chosen = Uniform(u).policy(env)
    assert session.evaluator.costs(chosen)["size"] <= limit
    assert session.evaluator.costs(chosen)["size"] > 0.9 * limit  # sparsity grid is fine
    assert session.evaluator.costs(Uniform(u + 2 * TOLERANCE).policy(env))["size"] > limit


def test_bisection_stops_at_the_budget_boundary(
    run_config: Callable[..., SearchConfig], session: SearchSession
) -> None:
    config = run_config("uniform", episodes=1)
    store = RunStore.create(Path(config.runs_dir) / "searches" / "bisect", config.to_dict())
    ctx = SearchContext(config, session, store, make_method("uniform"), [])
    env = ctx.make_env()

    u = largest_feasible(ctx, env)

    limit = 0.5 * session.evaluator.baseline_metrics["macs"]
    assert -1.0 < u < 1.0
    assert session.evaluator.costs(Uniform(u).policy(env))["macs"] <= limit
    just_above = Uniform(u + 2 * TOLERANCE).policy(env)
    assert session.evaluator.costs(just_above)["macs"] > limit
