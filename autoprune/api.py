"""The Python API: search, apply, train and load compressed models without the command line.

Each call runs exactly what the matching command runs: :func:`search` is ``autoprune
search`` (checks, MLflow run, ``summary.json``, ``best_policy.json``, ``best_model.apz``),
:func:`apply` is ``autoprune apply``, :func:`train` is ``autoprune train``, and
:func:`load_compressed` rebuilds a model from the ``.apz`` / ``model.pt`` files they write.

Models and data come as objects or as names. A model is an ``nn.Module`` (trained; it is
never changed) or a name (zoo names, ``file.py:fn``, ``module:fn``, ``torchvision:NAME``).
Data is a ``DataLoader``, a ``Dataset``, an ``(x, y)`` pair, a dict of those per split, or
a name (``digits``, ``fashion-mnist``, ``folder:PATH``, ``npz:PATH``, ``file.py:fn``). An
optional ``evaluate(model) -> float`` (higher is better) replaces top-1 accuracy, and
``finetune(model, epochs)`` the built-in fine-tuning, for any task.

Example:
    >>> import autoprune
    >>> run = autoprune.search(my_net, {"train": train_loader, "val": val_loader},
    ...                        target="flops=0.5", agent="tpe", episodes=8)  # doctest: +SKIP
    >>> small = autoprune.apply(run).model  # the compressed nn.Module  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from autoprune.core.device import resolve_device
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.core.training import FINETUNE_LR
from autoprune.searches.apply_plan import apply_plan, open_data, priced_cost_model
from autoprune.searches.search_run import SearchHooks, SearchRun, tracked_search
from autoprune.workflow.arguments import check_model_arg, names_for, resolve_data, user_objects
from autoprune.workflow.config import SearchConfig

if TYPE_CHECKING:
    from autoprune.core.training import ProgressFn
    from autoprune.deploy.apply import ApplyResult
    from autoprune.workflow.inputs import UserObjects

__all__ = ["SearchHooks", "SearchRun", "apply", "load_compressed", "search", "train"]

MetricFn = Callable[[nn.Module], float]
FinetuneFn = Callable[[nn.Module, int], object]


def search(
    model: str | nn.Module = "demo",
    data: object = "digits",
    target: str | Sequence[str] = "flops=0.5",
    agent: str = "ddpg",
    episodes: int | None = None,
    mode: str | None = None,
    runs_dir: str | Path = "runs",
    tracking_uri: str | None = None,
    seed: int = 0,
    *,
    weights: str | Path | None = None,
    data_dir: str | Path | None = None,
    resume: str | None = None,
    hooks: SearchHooks | None = None,
    evaluate: MetricFn | None = None,
    finetune: FinetuneFn | None = None,
    num_classes: int | None = None,
    **config: Any,
) -> SearchRun:
    """Search a per-layer policy under a budget, as ``autoprune search`` does.

    Args:
        model: The trained ``nn.Module`` to compress (never changed: the search works on a
            copy), or a name: zoo name, ``file.py:fn``, ``module:fn``, ``torchvision:NAME``.
        data: A ``DataLoader``, ``Dataset`` or ``(x, y)`` pair (the training data: a
            validation split is carved from it), a dict of those per split
            (``{"train": ..., "val": ..., "test": ...}``), or a dataset name.
        target: One budget ``KEY=VALUE`` or several (``["flops=0.5", "size=20KB"]``).
        agent: Search method (``autoprune search --help`` lists them).
        episodes: Evaluations (default: 60, or a one-shot method's own number).
        mode: ``prune`` (default), ``quantize``, ``sparse`` or ``joint``.
        runs_dir: Root of checkpoints, run folders and the default MLflow store.
        tracking_uri: MLflow URI (default: the store under ``runs_dir``).
        seed: Search seed.
        weights: Trained state dict of a named model (default: the cached baseline,
            trained when missing).
        data_dir: Folder of a named dataset's files.
        resume: Name of an earlier run (``run.run_name``) to continue; a run searched on
            objects resumes only with the same model, weights and data objects.
        hooks: Progress and warnings (default: silent; warnings as ``UserWarning``).
        evaluate: ``evaluate(model) -> float``, higher is better (mAP, F1, negative loss):
            the reward's quality term instead of top-1 accuracy. Calibration still uses the
            training data.
        finetune: ``finetune(model, epochs)`` training in place with your loss, data and
            optimiser, wherever autoprune would fine-tune.
        num_classes: Classes of a classifier whose data objects do not tell (default: the
            labels in memory, a dataset's ``classes``, or the model's output width).
        **config: Any other :class:`~autoprune.workflow.config.SearchConfig` field, e.g.
            ``val_samples=500``, ``reward="amc"``, ``agent_options={"noise": 0.3}``.

    Returns:
        The run: ``best_policy``, ``history``, ``run_dir``, ``run_id``, ``weights``...

    Raises:
        AutopruneError: For a bad setting or unusable data, before any slow work.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(),
        ...                     nn.Linear(8 * 6 * 6, 10))  # doctest: +SKIP
        >>> run = search(net, (x, y), target="flops=0.5", agent="tpe")  # doctest: +SKIP
    """
    objects = user_objects(
        model, data, evaluate=evaluate, finetune=finetune, num_classes=num_classes, seed=seed
    )
    if isinstance(model, nn.Module) and weights is not None:
        raise AutopruneError(
            "weights= loads a state dict into a named model; with an nn.Module, load them "
            "first (model.load_state_dict(torch.load(PATH))) and leave weights= out"
        )
    targets = (target,) if isinstance(target, str) else tuple(target)
    values = {
        **names_for(model, data, objects),
        "targets": targets,
        "agent": agent,
        "episodes": episodes,
        "mode": mode,
        "runs_dir": str(runs_dir),
        "tracking_uri": tracking_uri,
        "seed": seed,
        "weights": None if weights is None else str(weights),
        "data_dir": None if data_dir is None else str(data_dir),
        **config,
    }
    optional = ("episodes", "mode", "tracking_uri", "weights", "data_dir")
    values = {k: v for k, v in values.items() if k not in optional or v is not None}
    search_config = SearchConfig.from_mapping(values)
    _refuse_untrainable(search_config, objects)
    folder = Path(data_dir) if data_dir is not None else None
    return tracked_search(
        search_config,
        episodes_given=episodes is not None,
        data_dir=folder,
        resume=resume,
        hooks=hooks,
        objects=objects,
    )


def _refuse_untrainable(config: SearchConfig, objects: UserObjects | None) -> None:
    """A named model on data objects needs weights: its baseline cannot be cached by name."""
    if objects is None or objects.data is None or objects.model is not None:
        return
    if config.weights is None:
        raise AutopruneError(
            f"model '{config.model}' has no trained weights for these data objects; pass "
            "weights= (its state dict), or train it first with autoprune.train(model, data) "
            "and pass the trained nn.Module"
        )


def train(
    model: str | nn.Module,
    data: object,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    num_classes: int | None = None,
    save_to: str | Path | None = None,
    on_batch: ProgressFn | None = None,
    device: str = "auto",
) -> nn.Module:
    """Train a classifier with autoprune's loop (SGD, cosine schedule), streaming the data.

    Args:
        model: An ``nn.Module`` (trained in place and returned) or a model name (built for
            the data, then trained).
        data: As for :func:`search` (with class labels).
        epochs: Passes over the training split (default: the zoo model's schedule, else 8).
        lr: Peak learning rate (default: the schedule's).
        batch_size: Mini-batch size (default: the schedule's).
        seed: Seed of the initialisation and the data order.
        num_classes: Classes, when the data does not tell.
        save_to: Also save the state dict here (written whole or not at all).
        on_batch: Called after each batch with ``(step, total, loss)``.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``; the model
            stays there.

    Returns:
        The trained model, in eval mode.
    """
    from dataclasses import replace

    from autoprune.core.training import DEFAULT_TRAIN, TrainConfig
    from autoprune.core.training import train as train_loop
    from autoprune.system.atomic_dir import atomic_file
    from autoprune.workflow.baseline import build_for

    check_model_arg(model)
    where = resolve_device(device)
    splits = resolve_data(data, num_classes=num_classes, seed=seed) or open_data(str(data), None)
    if isinstance(model, nn.Module):
        objects = user_objects(model, splits, num_classes=num_classes, seed=seed)
        splits = objects.data if objects is not None and objects.data is not None else splits
        net, schedule = model, TrainConfig()
    else:
        net, schedule = build_for(model, splits), DEFAULT_TRAIN.get(model, TrainConfig())
    config = replace(
        schedule,
        seed=seed,
        epochs=schedule.epochs if epochs is None else epochs,
        lr=schedule.lr if lr is None else lr,
        batch_size=schedule.batch_size if batch_size is None else batch_size,
    )
    train_loop(net.to(where), splits, config, on_batch=on_batch, stop_on_nonfinite=True)
    if save_to is not None:  # device-neutral: CPU tensors load anywhere
        with atomic_file(save_to) as tmp:
            torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, tmp)
    return net.eval()


def apply(
    policy: Policy | SearchRun | str | Path,
    model: str | nn.Module | None = None,
    data: object = None,
    weights: str | Path | None = None,
    finetune_epochs: int = 0,
    export_dir: str | Path | None = None,
    *,
    lr: float = FINETUNE_LR,
    profile: str | None = None,
    runs_dir: str | Path = "runs",
    data_dir: str | Path | None = None,
    on_batch: ProgressFn | None = None,
    evaluate: MetricFn | None = None,
    finetune: FinetuneFn | None = None,
    num_classes: int | None = None,
    reapply_policy: bool = False,
    device: str = "auto",
) -> ApplyResult:
    """Compress (and fine-tune) a trained model under ``policy`` by the search's own
    evaluation path, as ``autoprune apply`` does; ``result.model`` is the compressed
    ``nn.Module``. Files (``.pt``, ``.onnx``, ``.int8.onnx`` when bits <= 8, ``.apz``, a
    report) are written only into ``export_dir``.

    Args:
        policy: A :class:`Policy`, a policy JSON file, a :class:`SearchRun`, or the run
            name / MLflow run id of a finished search under ``runs_dir`` (for a run: its
            best policy, and its model, data, weights, metric and profile by default).
        model: The trained ``nn.Module`` the policy was searched on, or its name (default:
            the run's, else ``demo``).
        data: Its data, as for :func:`search` (default: the run's, else ``digits``).
        weights: The trained state dict of a named model (``run.weights``).
        finetune_epochs: Fine-tuning epochs after compression (distilled from the original).
        export_dir: Output folder, written whole or not at all (None: no files).
        lr: Fine-tuning learning rate.
        profile: Hardware profile of the predicted latency and energy (default: the
            search's, else ``bitfusion``).
        runs_dir: Root of runs (latency lookup tables).
        data_dir: Folder of a named dataset's files.
        on_batch: Called after each fine-tuning batch with ``(step, total, loss)``.
        evaluate: ``evaluate(model) -> float`` scoring instead of top-1 (default: the
            search run's).
        finetune: ``finetune(model, epochs)`` instead of the built-in loop (default: the
            search run's).
        num_classes: Classes of a classifier whose data objects do not tell.
        reapply_policy: For a ``deep-compression`` or ``admm`` search, apply its policy to
            the original weights instead of shipping the method's own retrained model
            (``trained_model.apz``, whose accuracy the search printed).
        device: Where to compress, score and fine-tune (``auto``: CUDA when present);
            files are written from CPU copies.

    Raises:
        AutopruneError: Without weights, with negative epochs, or for a policy made for
            another model.
    """
    from autoprune.deploy.apply import apply_policy, evaluation_config
    from autoprune.workflow.inputs import model_source

    if finetune_epochs < 0:
        raise AutopruneError(f"finetune_epochs {finetune_epochs} must be 0 or more")
    where = resolve_device(device)
    plan = apply_plan(policy, model, data, weights, profile, runs_dir, data_dir)
    given = evaluate is not None or finetune is not None
    if given or isinstance(model, nn.Module) or not isinstance(data, str | None):
        run = plan.objects  # a search run's callbacks stand unless replaced
        plan.objects = user_objects(
            plan.model,
            plan.data,
            evaluate=evaluate if evaluate is not None or run is None else run.evaluate,
            finetune=finetune if finetune is not None or run is None else run.finetune,
            num_classes=num_classes,
        )
    net, splits, policy = plan.resolve()
    net = net.to(where)
    objects = plan.objects
    cost_model = priced_cost_model(plan.profile, Path(runs_dir), net, splits, policy)
    label = objects.model_label if objects is not None and objects.model is not None else None
    with tempfile.TemporaryDirectory() as scratch:
        out_dir = Path(export_dir) if export_dir is not None else Path(scratch) / "export"
        result = apply_policy(
            net,
            policy,
            splits,
            cost_model,
            out_dir,
            finetune_epochs=finetune_epochs,
            lr=lr,
            evaluation=evaluation_config(policy),
            on_batch=on_batch,
            metric=objects.evaluate if objects is not None else None,
            finetune_fn=objects.finetune if objects is not None else None,
            source=model_source(label or str(plan.model), splits),
            trained=None if reapply_policy else plan.trained,
        )
        if export_dir is None:
            result.files = {}
    return result


def load_compressed(
    path: str | Path,
    model: str | nn.Module | None = None,
    data: str | None = None,
    *,
    data_dir: str | Path | None = None,
) -> nn.Module:
    """The compressed model stored in a ``.apz`` file or an exported ``model.pt``.

    The architecture is rebuilt from what the file records (the model's name, input shape
    and classes), its channels pruned to the policy's keep ratios, then the stored weights
    loaded. Quantized and sparse weights come back dequantized (float), as ONNX exports them.

    Args:
        path: A ``.apz`` file (``best_model.apz`` of a search, ``model.apz`` of ``apply``)
            or an exported ``model.pt`` (with its ``policy.json``).
        model: Only for a model that was a Python object: an instance of the same class
            (untrained is fine). A name overrides the recorded one.
        data: The dataset name, for files that do not record their input shape.
        data_dir: Folder of that dataset's files.

    Raises:
        AutopruneError: A missing or damaged file, no policy beside a ``.pt``, or a model
            object needed and not given.
    """
    from autoprune.compress import prune_channels
    from autoprune.deploy.loading import read_compressed, uncompressed_model

    path = Path(path)
    policy, state = read_compressed(path)
    net, input_shape = uncompressed_model(path, policy, model, data, data_dir)
    from autoprune.core.specs import discover_layers

    policy.validate(discover_layers(net, input_shape))
    keep = {n: r for n, r in policy.keep_ratios().items() if r < 1.0}
    if keep:
        record = policy.meta.get("evaluation")
        compression = record.get("compression") if isinstance(record, dict) else None
        round_to = compression.get("round_to") if isinstance(compression, dict) else None
        example = torch.zeros(1, *input_shape)
        prune_channels(net, example, keep, round_to=round_to)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise AutopruneError(
            f"{path} does not fit the model pruned by its policy ({str(exc)[:200]}); pass "
            "the model= it was compressed from"
        ) from None
    return net.eval()
