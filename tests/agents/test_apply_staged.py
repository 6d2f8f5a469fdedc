"""``staged_finetune``: Deep Compression's order for policies that sparsify and quantize;
retraining that diverges is never shipped."""

from __future__ import annotations

from autoprune.compress import export_quantized
from autoprune.compress.sparsity import sparsity_of
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.deploy.apply import apply_policy
from autoprune.deploy.retraining import staged_finetune, staged_finetune_applies
from autoprune.workflow.session import SearchSession


def test_sparse_retraining_then_quantization_reaches_the_policy_exactly(
    session: SearchSession,
) -> None:
    evaluator = session.evaluator
    names = [s.name for s in evaluator.specs]
    layers = {n: LayerPolicy(w_bits=4, sparsity=0.8, quantizer="kmeans") for n in names}
    policy = Policy.for_specs(evaluator.specs, layers)
    assert staged_finetune_applies(policy)
    assert not staged_finetune_applies(Policy.uniform(evaluator.specs, w_bits=4))

    model, runs = staged_finetune(evaluator, policy, epochs=2, lr=0.01)
    assert len(runs) == 2  # the sparse float weights, then the codebooks

    coded = export_quantized(model, names)
    for name in names:
        weights = coded[name]
        assert (weights.scheme, weights.bits) == ("kmeans", 4), name
        assert abs(sparsity_of(model, name) - 0.8) <= 2 / weights.size + 1e-9, name
    assert evaluator.accuracy(model, copy_model=True) > 0.2  # trained, twice chance at least


def test_a_fine_tune_that_diverges_is_not_shipped(session: SearchSession, tmp_path) -> None:
    evaluator = session.evaluator
    policy = Policy.uniform(evaluator.specs, keep_ratio=0.75)
    result = apply_policy(
        session.model,
        policy,
        session.data,
        evaluator.cost_model,
        tmp_path / "out",
        finetune_epochs=1,
        lr=1e30,  # the loss becomes NaN
        latency_repeats=1,
    )
    before = result.compressed["val_accuracy"]
    assert result.finetune["kept"] is False and result.finetune["val_accuracy"] == before
    (run,) = result.finetune["retrain"]
    assert all(attempt["diverged"] for attempt in run["attempts"])  # each retried lower
    assert evaluator.accuracy(result.model, copy_model=True) == before  # the scored model
    assert result.compressed["test_accuracy"] > 0.2
