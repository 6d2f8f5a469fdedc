"""The Python API: search, apply and load compressed models without the command line.

Each call runs exactly what the matching command runs: :func:`search` is ``autoprune
search`` (checks, MLflow run, ``summary.json``, ``best_policy.json``, ``best_model.apz``),
:func:`apply` is ``autoprune apply``, and :func:`load_compressed` rebuilds a model from the
``.apz`` / ``model.pt`` files they write. Models and datasets are named as on the command
line (zoo names, ``file.py:fn``, ``module:fn``; dataset names, ``npz:PATH``,
``file.py:fn``); an ``nn.Module`` object is not accepted (wrap it in a function and pass
``file.py:fn``).

Example:
    >>> import autoprune
    >>> run = autoprune.search("demo", "digits", agent="tpe", episodes=8)  # doctest: +SKIP
    >>> out = autoprune.apply(run, export_dir="out")  # doctest: +SKIP
    >>> model = autoprune.load_compressed("out/model.apz")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.core.training import FINETUNE_LR
from autoprune.searches.finished_search import FinishedSearch, find_search
from autoprune.searches.search_run import SearchHooks, SearchRun, tracked_search
from autoprune.workflow.config import SearchConfig

if TYPE_CHECKING:
    from autoprune.core.training import ProgressFn
    from autoprune.data import DataSplits
    from autoprune.deploy.apply import ApplyResult

__all__ = ["SearchHooks", "SearchRun", "apply", "load_compressed", "search"]


def search(
    model: str = "demo",
    data: str = "digits",
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
    **config: Any,
) -> SearchRun:
    """Search a per-layer policy under a budget, as ``autoprune search`` does.

    Args:
        model: Zoo name, ``file.py:fn`` or ``module:fn``.
        data: Dataset name, ``npz:PATH`` or ``file.py:fn``.
        target: One budget ``KEY=VALUE`` or several (``["flops=0.5", "size=20KB"]``).
        agent: Search method (``autoprune agents``).
        episodes: Evaluations (default: 60, or a one-shot method's own number).
        mode: ``prune`` (default), ``quantize``, ``sparse`` or ``joint``.
        runs_dir: Root of checkpoints, run folders and the default MLflow store.
        tracking_uri: MLflow URI (default: the store under ``runs_dir``).
        seed: Search seed.
        weights: Trained state dict (default: the cached baseline, trained when missing).
        data_dir: Folder of the dataset files.
        resume: Name of an earlier run (``run.run_name``) to continue.
        hooks: Progress and warnings (default: silent; warnings as ``UserWarning``).
        **config: Any other :class:`~autoprune.workflow.config.SearchConfig` field, e.g.
            ``val_samples=500``, ``reward="amc"``, ``agent_options={"noise": 0.3}``.

    Returns:
        The run: ``best_policy``, ``history``, ``run_dir``, ``run_id``, ``weights``...

    Raises:
        AutopruneError: For a bad setting or unusable data, before any slow work.
    """
    targets = (target,) if isinstance(target, str) else tuple(target)
    values = {
        "model": model,
        "dataset": data,
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
    folder = Path(data_dir) if data_dir is not None else None
    return tracked_search(
        search_config,
        episodes_given=episodes is not None,
        data_dir=folder,
        resume=resume,
        hooks=hooks,
    )


def apply(
    policy: Policy | SearchRun | str | Path,
    model: str | None = None,
    data: str | None = None,
    weights: str | Path | None = None,
    finetune_epochs: int = 0,
    export_dir: str | Path | None = None,
    *,
    lr: float = FINETUNE_LR,
    profile: str | None = None,
    runs_dir: str | Path = "runs",
    data_dir: str | Path | None = None,
    on_batch: ProgressFn | None = None,
) -> ApplyResult:
    """Compress, fine-tune and export a trained model under ``policy``, as ``autoprune
    apply`` does (``.pt``, ``.onnx``, ``.int8.onnx`` when bits <= 8, ``.apz``, a report).

    Also reachable as ``autoprune.apply(...)``; :func:`autoprune.deploy.apply.apply_policy`
    is the same step on model objects.

    Args:
        policy: A :class:`Policy`, a policy JSON file, a :class:`SearchRun`, or the run
            name / MLflow run id of a finished search under ``runs_dir`` (for a run: its
            best policy, and ``model``/``data``/``weights``/``profile``/``data_dir``
            default to the run's).
        model: The zoo name (or ``file.py:fn``) the policy was searched on (default:
            the run's, else ``demo``).
        data: Its dataset (default: the run's, else ``digits``).
        weights: The trained state dict the policy was searched on (``run.weights``).
        finetune_epochs: Fine-tuning epochs after compression (distilled from the original).
        export_dir: Output folder (default: ``runs_dir/exports/<policy name>``).
        lr: Fine-tuning learning rate.
        profile: Hardware profile of the predicted latency and energy (default: the
            search's, else ``bitfusion``).
        runs_dir: Root of runs (latency lookup tables, default export folder).
        data_dir: Folder of the dataset files.
        on_batch: Called after each fine-tuning batch with ``(step, total, loss)``.

    Raises:
        AutopruneError: Without weights, with negative epochs, or for a policy made for
            another model.
    """
    from autoprune.core.specs import discover_layers
    from autoprune.cost import load_profile
    from autoprune.deploy.apply import apply_policy, evaluation_config
    from autoprune.latency import build_cost_model, fit_latency_model
    from autoprune.models import load_weights
    from autoprune.workflow.baseline import build_for

    name = "policy"
    finished: FinishedSearch | None = None
    if isinstance(policy, SearchRun):
        config = policy.session.config
        model, data = model or config.model, data or config.dataset
        profile = profile or config.profile
        weights = weights if weights is not None else policy.weights
        name = policy.run_name
        policy = _best_policy(policy)
    elif not isinstance(policy, Policy):
        finished = _finished_search(policy, Path(runs_dir))
        if finished is not None:
            config = finished.config
            model, data = model or config.model, data or config.dataset
            profile = profile or config.profile
            data_dir = data_dir if data_dir is not None else config.data_dir
            policy = finished.policy_path
        name = finished.name if finished is not None else Path(policy).stem
    model, data, profile = model or "demo", data or "digits", profile or "bitfusion"
    if finetune_epochs < 0:
        raise AutopruneError(f"finetune_epochs {finetune_epochs} must be 0 or more")
    if weights is None and finished is None:
        raise AutopruneError(
            "weights is required: pass the trained state dict the policy was searched on "
            "(run.weights of the search, or the checkpoint printed by 'autoprune train'), "
            "or apply the search's run name instead of its policy file"
        )
    load_profile(profile)  # an unknown profile fails before the data is read
    splits = _open_data(data, data_dir)
    if weights is None and finished is not None:
        weights = finished.weights(splits, Path(runs_dir))
    assert weights is not None  # refused above when neither weights nor finished is given
    net = load_weights(build_for(model, splits), weights)
    specs = discover_layers(net, splits.input_shape)
    policy = policy if isinstance(policy, Policy) else Policy.load(policy, specs)
    cost_model = fit_latency_model(
        build_cost_model(load_profile(profile), lut_cache_dir=Path(runs_dir) / "latency_lut"),
        net,
        splits.x_val[:1],
        specs,
    )
    out_dir = Path(export_dir) if export_dir is not None else Path(runs_dir) / "exports" / name
    return apply_policy(
        net,
        policy,
        splits,
        cost_model,
        out_dir,
        finetune_epochs=finetune_epochs,
        lr=lr,
        evaluation=evaluation_config(policy),
        on_batch=on_batch,
    )


def load_compressed(
    path: str | Path,
    model: str | None = None,
    data: str | None = None,
    *,
    data_dir: str | Path | None = None,
) -> nn.Module:
    """The compressed model stored in a ``.apz`` file or an exported ``model.pt``.

    The architecture is rebuilt from the policy (in the ``.apz`` metadata, or the
    ``policy.json`` that ``apply`` writes next to ``model.pt``): the zoo model is built for
    the dataset, its channels pruned to the policy's keep ratios, then the stored weights
    loaded. Quantized and sparse weights come back dequantized (float), as ONNX exports them.

    Args:
        path: A ``.apz`` file (``best_model.apz`` of a search, ``model.apz`` of ``apply``)
            or an exported ``model.pt``.
        model: The model name (default: the search's ``config.json`` next to the file, else
            the zoo model whose layers match the policy's fingerprint).
        data: The dataset name (default: the one the policy was scored on).
        data_dir: Folder of the dataset files.

    Raises:
        AutopruneError: A missing or damaged file, no policy beside a ``.pt``, or no model
            matching the policy.
    """
    from autoprune.compress import prune_channels
    from autoprune.core.specs import discover_layers
    from autoprune.workflow.baseline import build_for

    path = Path(path)
    policy, state = _read_compressed(path)
    saved = _saved_search_config(path)
    record = policy.meta.get("evaluation")
    recorded = record if isinstance(record, dict) else {}
    data = data or saved.get("dataset") or recorded.get("dataset")
    if not data:
        raise AutopruneError(f"{path} does not record its dataset; pass data='digits' or the like")
    splits = _open_data(str(data), data_dir)
    model = model or saved.get("model") or _model_for(policy, splits)
    net = build_for(model, splits).eval()
    policy.validate(discover_layers(net, splits.input_shape))
    keep = {n: r for n, r in policy.keep_ratios().items() if r < 1.0}
    if keep:
        compression = recorded.get("compression")
        round_to = compression.get("round_to") if isinstance(compression, dict) else None
        example = torch.zeros(1, *splits.input_shape)
        prune_channels(net, example, keep, round_to=round_to)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise AutopruneError(
            f"{path} does not fit model '{model}' pruned by its policy ({exc}); pass the "
            "model= and data= it was compressed with"
        ) from None
    return net.eval()


def _finished_search(policy: str | Path, runs_dir: Path) -> FinishedSearch | None:
    """The search ``policy`` names when it is no policy file; an error when it is neither."""
    if Path(policy).is_file():
        return None
    found = find_search(str(policy), runs_dir)
    if found is None:
        raise AutopruneError(
            f"policy file {policy} does not exist and no search under "
            f"{runs_dir / 'searches'} is named so; pass a policy JSON, or the run name or "
            "run id that 'autoprune search' printed (with the --runs-dir it used)"
        )
    return found


def _best_policy(run: SearchRun) -> Policy:
    policy = run.best_policy
    if policy is None:
        raise AutopruneError(
            f"search {run.run_name} found no policy within its budget; search longer or "
            "loosen the target"
        )
    return policy


def _open_data(name: str, data_dir: str | Path | None) -> DataSplits:
    from autoprune.data import load_dataset

    return load_dataset(name, data_dir=Path(data_dir) if data_dir is not None else None)


def _read_compressed(path: Path) -> tuple[Policy, dict[str, torch.Tensor]]:
    """The policy and the state dict of a ``.apz`` file or an exported ``.pt``."""
    from autoprune.coding import read_apz, state_dict_from_apz

    if not path.is_file():
        raise AutopruneError(f"{path} does not exist; pass a .apz file or an exported model.pt")
    if path.suffix == ".apz":
        metadata = read_apz(path)[2]
        if not isinstance(metadata.get("policy"), dict):
            raise AutopruneError(f"{path} records no policy; it was not written by autoprune")
        return Policy.from_dict(metadata["policy"]), state_dict_from_apz(path)
    policy_path = path.with_name("policy.json")
    if not policy_path.is_file():
        raise AutopruneError(
            f"no policy.json next to {path}; load the model.apz of the same export instead"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    return Policy.load(policy_path), state


def _saved_search_config(path: Path) -> dict[str, Any]:
    """The ``config.json`` of the search run folder holding ``path`` (empty if none)."""
    config = path.with_name("config.json")
    try:
        data = json.loads(config.read_text()) if config.is_file() else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _model_for(policy: Policy, data: DataSplits) -> str:
    """The zoo model whose layers, built for ``data``, match the policy's fingerprint."""
    from autoprune.core.policy import architecture_fingerprint
    from autoprune.core.specs import discover_layers
    from autoprune.models import model_names
    from autoprune.workflow.baseline import build_for

    for name in model_names():
        try:
            with torch.random.fork_rng():
                net = build_for(name, data)
        except (AutopruneError, ValueError, RuntimeError):
            continue  # too small an input for this architecture
        specs = discover_layers(net, data.input_shape)
        if architecture_fingerprint(specs) == policy.fingerprint:
            return name
    raise AutopruneError(
        f"no zoo model matches the policy's layers on {data.name}; pass model= (the name "
        "or file.py:fn it was searched on)"
    )
