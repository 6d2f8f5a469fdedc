"""``evaluate_policy``: the one evaluation path shared by RL agents, Optuna and baselines.

A :class:`PolicyEvaluator` is built once per search. It knows the base model, the data,
the layer specs, the channel plan and the cost model; ``evaluate(policy)`` compresses a
copy of the model, recalibrates BatchNorm, optionally fine-tunes briefly, measures
validation accuracy and prices the result — cached by the discretised policy, so a
repeated policy costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from autoprune.compress import ChannelPlan, CompressionOptions, compress_model, pruned_specs
from autoprune.cost import CostModel, CostReport
from autoprune.data import DataSplits
from autoprune.errors import AutopruneError
from autoprune.policy import Policy
from autoprune.specs import LayerSpec
from autoprune.training import evaluate, finetune

COST_METRICS = ("macs", "params", "size", "latency", "energy")


@dataclass(frozen=True)
class EvaluatorConfig:
    """How each policy is scored.

    Example:
        >>> EvaluatorConfig(val_samples=1000).calib_batches
        4
    """

    val_samples: int | None = None
    """Validation images used for the reward (None: the whole validation split)."""
    calib_batches: int = 4
    """Training batches for BN recalibration, activation ranges and data criteria."""
    calib_batch_size: int = 128
    """Size of each calibration batch."""
    finetune_epochs: int = 0
    """Short fine-tune inside the search (HAQ used one epoch); 0 disables it."""
    finetune_lr: float = 0.01
    """Learning rate of that fine-tune."""
    compression: CompressionOptions = field(default_factory=CompressionOptions)
    """Pruning criterion, rounding and recovery."""
    seed: int = 0
    """Seed of the calibration batches."""

    def check(self) -> None:
        """Raise :class:`AutopruneError` on impossible settings."""
        if self.val_samples is not None and self.val_samples < 1:
            raise AutopruneError(f"val_samples {self.val_samples} must be at least 1 or None")
        if self.calib_batches < 1 or self.calib_batch_size < 1:
            raise AutopruneError("calib_batches and calib_batch_size must be at least 1")
        if self.finetune_epochs < 0:
            raise AutopruneError(f"finetune_epochs {self.finetune_epochs} must be >= 0")


@dataclass
class Evaluation:
    """The result of scoring one policy."""

    metrics: dict[str, float]
    cached: bool
    seconds: float
    eval_seconds: float = 0.0
    """Time spent compressing and running forward passes (the rest is bookkeeping)."""


def cost_metrics(report: CostReport) -> dict[str, float]:
    """The budgetable totals of a cost report, keyed like :mod:`autoprune.budget`."""
    return {
        "macs": float(report.macs),
        "params": float(report.params),
        "size": float(report.stored_bytes),
        "latency": float(report.latency_ms),
        "energy": float(report.energy_mj),
    }


class PolicyEvaluator:
    """Scores policies for one model, dataset and cost model.

    Example:
        >>> # evaluator = PolicyEvaluator(model, data, specs, cost_model)
        >>> # evaluator.evaluate(Policy.uniform(specs, keep_ratio=0.5)).metrics["accuracy"]
    """

    def __init__(
        self,
        model: nn.Module,
        data: DataSplits,
        specs: Sequence[LayerSpec],
        cost_model: CostModel,
        config: EvaluatorConfig | None = None,
    ) -> None:
        self.config = config or EvaluatorConfig()
        self.config.check()
        self.model = model.eval()
        self.data = data
        self.specs = list(specs)
        self.cost_model = cost_model
        self.example_input = torch.zeros((1, *data.input_shape))
        self.plan = ChannelPlan.build(self.model, self.example_input)
        self.calib = self._calibration_batches()
        n = self.config.val_samples
        self.x_val = data.x_val if n is None else data.x_val[:n]
        self.y_val = data.y_val if n is None else data.y_val[:n]
        self.cache: dict[str, dict[str, float]] = {}
        self.baseline_metrics = {
            "accuracy": evaluate(self.model, self.x_val, self.y_val),
            **self.costs(Policy.identity(self.specs)),
        }

    def _calibration_batches(self) -> list[torch.Tensor]:
        loader = self.data.loader(
            "train", self.config.calib_batch_size, shuffle=True, seed=self.config.seed
        )
        batches = []
        for x, _ in loader:
            batches.append(x)
            if len(batches) == self.config.calib_batches:
                break
        return batches

    def pruned_specs(self, policy: Policy) -> list[LayerSpec]:
        """Layer specs after the policy's structured pruning (no model is touched)."""
        return pruned_specs(
            self.specs, self.plan, policy.keep_ratios(), self.config.compression.round_to
        )

    def cost_report(self, policy: Policy) -> CostReport:
        """The cost model's per-layer report for ``policy``."""
        return self.cost_model.estimate(self.pruned_specs(policy), policy.layers)

    def costs(self, policy: Policy) -> dict[str, float]:
        """Predicted MACs, params, size, latency and energy of ``policy``."""
        return cost_metrics(self.cost_report(policy))

    def key(self, policy: Policy) -> str:
        """Cache key: kept channel counts per group, bits, sparsity (to 1e-3), quantizer."""
        counts = self.plan.group_kept(policy.keep_ratios(), self.config.compression.round_to)
        layers = {
            n: [lp.w_bits, lp.a_bits, round(lp.sparsity, 3), lp.quantizer]
            for n, lp in sorted(policy.layers.items())
        }
        blob = json.dumps({"groups": counts, "layers": layers}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def compress(self, policy: Policy) -> nn.Module:
        """The compressed (not fine-tuned) model for ``policy``."""
        policy.validate(self.specs)
        return compress_model(
            self.model, policy, self.example_input, self.calib, self.config.compression
        )

    def evaluate(self, policy: Policy) -> Evaluation:
        """Accuracy on the validation subset plus predicted costs, cached by :meth:`key`."""
        started = time.perf_counter()
        key = self.key(policy)
        if key in self.cache:
            return Evaluation(dict(self.cache[key]), True, time.perf_counter() - started)
        eval_start = time.perf_counter()
        compressed = self.compress(policy)
        if self.config.finetune_epochs:
            finetune(
                compressed,
                self.data,
                self.config.finetune_epochs,
                self.config.finetune_lr,
                seed=self.config.seed,
            )
        accuracy = evaluate(compressed, self.x_val, self.y_val)
        eval_seconds = time.perf_counter() - eval_start
        metrics = {"accuracy": accuracy, **self.costs(policy)}
        self.cache[key] = metrics
        return Evaluation(dict(metrics), False, time.perf_counter() - started, eval_seconds)

    def state_dict(self) -> dict[str, Any]:
        """The evaluation cache and config, for checkpoints."""
        return {"cache": self.cache, "config": asdict(self.config)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the cache written by :meth:`state_dict`."""
        self.cache.update({k: dict(v) for k, v in state["cache"].items()})


def evaluate_policy(evaluator: PolicyEvaluator, policy: Policy) -> Evaluation:
    """Score ``policy`` with ``evaluator`` (the shared path of every search method)."""
    return evaluator.evaluate(policy)
