"""uniform: bisection on predicted costs, then a sweep of smaller settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agents import make_method, run_search
from agents._context import SearchContext
from agents._store import RunStore
from agents._uniform import TOLERANCE, largest_feasible, predicted_policy, schedule
from autoprune.config import SearchConfig
from autoprune.session import SearchSession


def test_schedule_starts_at_the_best_value_and_sweeps_down_to_minus_one() -> None:
    assert schedule(0.2, 1) == [0.2]
    values = schedule(0.2, 4)
    assert values[0] == 0.2 and values[-1] == pytest.approx(-1.0)
    assert values == sorted(values, reverse=True)


@pytest.mark.parametrize("mode", ["prune", "quantize", "joint"])
def test_uniform_picks_the_largest_setting_that_meets_the_budget(
    mode: str, run_config: Callable[..., SearchConfig], session: SearchSession
) -> None:
    targets = ("size=0.2",) if mode != "prune" else ("flops=0.5",)
    config = run_config("uniform", episodes=3, mode=mode, targets=targets)
    result = run_search(config, session=session, run_name=f"uniform-{mode}")

    first = result.history[0]
    assert first.feasible
    conv2, conv3 = first.policy.layers["conv2"], first.policy.layers["conv3"]
    assert (conv2.w_bits, conv2.a_bits) == (conv3.w_bits, conv3.a_bits)
    assert abs(conv2.keep_ratio - conv3.keep_ratio) <= 1 / 32  # up to whole channels
    assert all(r.feasible for r in result.history)
    if mode != "quantize":  # smaller settings later in the sweep
        keeps = [r.policy.layers["conv2"].keep_ratio for r in result.history]
        assert keeps == sorted(keeps, reverse=True)


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
    assert session.evaluator.costs(predicted_policy(ctx, env, u))["macs"] <= limit
    just_above = predicted_policy(ctx, env, u + 2 * TOLERANCE)
    assert session.evaluator.costs(just_above)["macs"] > limit
