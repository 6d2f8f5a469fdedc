"""``PolicyEvaluator``: the one evaluation path shared by RL agents, Optuna, baselines and apply.

A :class:`PolicyEvaluator` is built once per search. It knows the base model, the data,
the layer specs, the channel plan and the cost model; ``evaluate(policy)`` compresses a
copy of the model (:class:`~autoprune.compress.Compressor`: prune, one recovery pass of
BatchNorm statistics and least-squares reconstruction, quantize), optionally fine-tunes
briefly, measures validation accuracy and prices the result — cached by the discretised
policy, so a repeated policy costs nothing.

Accuracy is measured for speed: in inference mode, with BatchNorm folded into the
convolutions and channels-last tensors, on batches of 256. It counts the same correct
predictions as :func:`autoprune.core.training.top1_accuracy` of :meth:`PolicyEvaluator.compress`
(a test holds this); only the float rounding differs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch
from torch import nn

from autoprune.compress import CompressionOptions, Compressor, pruned_specs
from autoprune.compress.fold import batchnorm_pairs, fold_batchnorm
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.core.specs import LayerSpec
from autoprune.core.training import FINETUNE_LR, finetune, model_device
from autoprune.cost import ApzSizeModel, CostModel, CostReport
from autoprune.data import DataSplits
from autoprune.workflow.validation import ValidationSubset

COST_METRICS = ("macs", "params", "size", "bits", "latency", "energy")
MetricFn = Callable[[nn.Module], float]
"""A user's quality measure of a model (higher is better), replacing top-1 accuracy."""
FinetuneFn = Callable[[nn.Module, int], object]
"""A user's fine-tuning ``(model, epochs)``, in place, replacing the built-in loop."""


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
    """Training batches for BN recalibration, reconstruction, activation ranges and criteria."""
    calib_batch_size: int = 128
    """Size of each calibration batch."""
    finetune_epochs: int = 0
    """Short fine-tune inside the search (HAQ used one epoch); 0 disables it."""
    finetune_lr: float = FINETUNE_LR
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

    def to_dict(self) -> dict[str, Any]:
        """Plain form, as recorded in every policy the search scores."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluatorConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused with the valid ones."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        options = dict(data.get("compression", {}))
        unknown += sorted(set(options) - {f.name for f in fields(CompressionOptions)})
        if unknown:
            raise AutopruneError(
                f"evaluation record has unknown field(s) {unknown}; it was written by another "
                "autoprune version: search again or remove meta.evaluation from the policy"
            )
        values = {k: v for k, v in data.items() if k != "compression"}
        try:
            config = cls(**values, compression=CompressionOptions(**options))
        except TypeError as exc:
            raise AutopruneError(f"evaluation record is malformed ({exc})") from None
        config.check()
        return config


@dataclass
class Evaluation:
    """The result of scoring one policy."""

    metrics: dict[str, float]
    cached: bool
    seconds: float
    eval_seconds: float = 0.0
    """Time spent compressing and running forward passes (the rest is bookkeeping)."""


def cost_metrics(report: CostReport) -> dict[str, float]:
    """The budgetable totals of a cost report, keyed like :mod:`autoprune.core.budget`.

    ``size`` is the report's size (the predicted ``.apz`` bytes when it has them), ``bits``
    Yang et al.'s count in bits.
    """
    return {
        "macs": float(report.macs),
        "params": float(report.params),
        "size": float(report.size_bytes),
        "bits": float(report.yang_bits),
        "latency": float(report.latency_ms),
        "energy": float(report.energy_mj),
    }


def calibration_batches(
    data: DataSplits, config: EvaluatorConfig, device: torch.device | None = None
) -> list[torch.Tensor]:
    """The seeded training batches every evaluation of ``config`` recovers the model on."""
    loader = data.loader("train", config.calib_batch_size, shuffle=True, seed=config.seed)
    batches = []
    for x, _ in loader:
        batches.append(x if device is None else x.to(device))
        if len(batches) == config.calib_batches:
            break
    return batches


def user_score(metric: MetricFn, model: nn.Module) -> float:
    """The user's metric of ``model`` as a finite float, or a one-line error."""
    value = metric(model)
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise AutopruneError(
            f"evaluate(model) returned a {type(value).__name__}; return one number (higher "
            "is better)"
        ) from None
    if not math.isfinite(score):
        raise AutopruneError(
            f"evaluate(model) returned {score}; return a finite number (higher is better)"
        )
    return score


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
        *,
        metric: MetricFn | None = None,
        finetune_fn: FinetuneFn | None = None,
        source: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config or EvaluatorConfig()
        self.source = dict(source) if source is not None else None
        self.config.check()
        self.model = model.eval()
        self.data = data
        self.specs = list(specs)
        self.cost_model = cost_model
        self.metric, self.finetune_fn = metric, finetune_fn
        device = model_device(model)
        self.example_input = torch.zeros((1, *data.input_shape), device=device)
        self.calib = calibration_batches(data, self.config, device)
        self.compressor = Compressor(
            self.model, self.example_input, self.calib, self.config.compression
        )
        self.plan = self.compressor.pruner.plan
        self.validation = ValidationSubset(data, self.config.val_samples)
        self.size_model = ApzSizeModel(
            self.model,
            self.specs,
            self.compressor.pruner,
            round_to=self.config.compression.round_to,
            record=_shipped_record(self.record()),
        )
        self.cache: dict[str, dict[str, float]] = {}
        self.baseline_metrics = {
            "accuracy": self.accuracy(self.model, copy_model=True),
            **self.costs(Policy.identity(self.specs)),
        }

    @property
    def x_val(self) -> torch.Tensor:
        """The validation subset's inputs (read whole when streamed)."""
        return self.validation.tensors()[0]

    @property
    def y_val(self) -> torch.Tensor:
        """The validation subset's targets."""
        return self.validation.tensors()[1]

    def with_config(self, config: EvaluatorConfig) -> PolicyEvaluator:
        """An evaluator of the same model, data and cost model with other settings."""
        return PolicyEvaluator(
            self.model,
            self.data,
            self.specs,
            self.cost_model,
            config,
            metric=self.metric,
            finetune_fn=self.finetune_fn,
            source=self.source,
        )

    def record(self) -> dict[str, Any]:
        """How this evaluator scores a policy: settings plus the validation images used.

        Stored in every policy's ``meta["evaluation"]``, so ``apply`` can score the policy
        by exactly the same path.
        """
        return {
            **self.config.to_dict(),
            "dataset": self.data.name,
            "val_images": self.validation.count,
            "val_fingerprint": self.validation.fingerprint,
            **({"metric": "user"} if self.metric is not None else {}),
            **({"source": self.source} if self.source is not None else {}),
        }

    def pruned_specs(self, policy: Policy) -> list[LayerSpec]:
        """Layer specs after the policy's structured pruning (no model is touched)."""
        return pruned_specs(
            self.specs, self.plan, policy.keep_ratios(), self.config.compression.round_to
        )

    def cost_report(self, policy: Policy, *, file_size: bool = True) -> CostReport:
        """The cost model's per-layer report for ``policy``; its size is the predicted
        ``.apz`` unless ``file_size`` is false (then the analytic estimate, much cheaper)."""
        report = self.cost_model.estimate(self.pruned_specs(policy), policy.layers)
        if not file_size:
            return report
        return replace(report, apz_bytes=self.size_model.predict(policy.layers).total)

    def costs(self, policy: Policy, metrics: Collection[str] = COST_METRICS) -> dict[str, float]:
        """Predicted ``metrics`` of ``policy`` (default: MACs, params, size, bits, latency,
        energy). The file-size prediction runs only when ``size`` is asked for, so a search
        whose budget does not constrain size prices its candidates at the analytic speed."""
        values = cost_metrics(self.cost_report(policy, file_size="size" in metrics))
        return {metric: values[metric] for metric in metrics}

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
        """The compressed model for ``policy``, fine-tuned when the search fine-tunes."""
        policy.validate(self.specs)
        compressed = self.compressor.compress(policy)
        if self.config.finetune_epochs:
            if self.finetune_fn is not None:
                self.finetune_fn(compressed, self.config.finetune_epochs)
            else:
                finetune(
                    compressed,
                    self.data,
                    self.config.finetune_epochs,
                    self.config.finetune_lr,
                    seed=self.config.seed,
                )
            compressed.eval()
        return compressed

    def accuracy(self, model: nn.Module, *, copy_model: bool = False) -> float:
        """The validation score of an eval-mode model: the user's metric when one was
        given, else top-1 accuracy on the validation subset, measured the fast way.

        For top-1, BatchNorm is folded into the convolutions and the model moves to
        channels-last, in place unless ``copy_model``: the model is for scoring only
        afterwards. A user's metric receives the model as it is (a copy when asked).
        """
        if copy_model:
            model = copy.deepcopy(model)
        if self.metric is not None:
            return user_score(self.metric, model.eval())
        pairs = batchnorm_pairs(self.compressor.pruner.graph)
        fold_batchnorm(model, pairs)
        # Module.to accepts memory_format (see its docs); torch's overloads leave it out.
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return self.validation.top1(model.eval())

    def evaluate(self, policy: Policy) -> Evaluation:
        """Accuracy on the validation subset plus predicted costs, cached by :meth:`key`."""
        started = time.perf_counter()
        key = self.key(policy)
        if key in self.cache:
            return Evaluation(dict(self.cache[key]), True, time.perf_counter() - started)
        eval_start = time.perf_counter()
        score = self.accuracy(self.compress(policy))
        eval_seconds = time.perf_counter() - eval_start
        metrics = {"accuracy": score, **self.costs(policy)}
        self.cache[key] = metrics
        return Evaluation(dict(metrics), False, time.perf_counter() - started, eval_seconds)

    def state_dict(self) -> dict[str, Any]:
        """The evaluation cache and config, for checkpoints."""
        return {"cache": self.cache, "config": asdict(self.config)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the cache written by :meth:`state_dict`."""
        self.cache.update({k: dict(v) for k, v in state["cache"].items()})


def _shipped_record(evaluation: dict[str, Any]) -> dict[str, Any]:
    """What a search's policy carries besides its layers when ``apply`` writes it into the
    ``.apz`` header: the evaluation record and the measured metrics (stand-in values)."""
    keys = ("accuracy", *COST_METRICS, "accuracy_drop")
    metrics = {key: math.pi * (i + 1) for i, key in enumerate(keys)}
    return {"metrics": metrics, "meta": {"evaluation": evaluation}}
