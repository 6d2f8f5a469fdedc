"""How :func:`autoprune.apply` finds what it compresses: the policy, model, data, weights and
profile, from the arguments or from the search run the policy came from (arguments win)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.core.training import model_device
from autoprune.data import DataSplits
from autoprune.searches.finished_search import FinishedSearch, find_search
from autoprune.searches.search_run import SearchRun
from autoprune.workflow.arguments import check_model_arg
from autoprune.workflow.inputs import UserObjects


class ApplyPlan:
    """What :func:`apply` compresses: the policy, model, data and weights, from a run or the
    arguments (arguments win)."""

    def __init__(self, policy: Policy | str | Path, model: str | nn.Module, data: object) -> None:
        self.policy, self.model, self.data = policy, model, data
        self.weights: str | Path | None = None
        self.finished: FinishedSearch | None = None
        self.session_model: nn.Module | None = None
        self.objects: UserObjects | None = None
        self.profile = "bitfusion"
        self.runs_dir = Path("runs")
        self.data_dir: str | Path | None = None
        self.trained: Path | None = None
        """A one-shot method's retrained model (:data:`TRAINED_MODEL` of its run folder)."""

    def resolve(self) -> tuple[nn.Module, DataSplits, Policy]:
        """The trained model, the data and the validated policy."""
        from autoprune.core.specs import discover_layers
        from autoprune.models import load_weights
        from autoprune.workflow.baseline import build_for

        objects = self.objects
        splits = objects.data if objects is not None and objects.data is not None else None
        if splits is None:
            splits = open_data(str(self.data), self.data_dir)
        if isinstance(self.model, nn.Module):
            net = self.model
        elif self.session_model is not None:
            net = self.session_model
        else:
            weights = self.weights
            if weights is None and self.finished is not None:
                weights = self.finished.weights(splits, self.runs_dir)
            if weights is None:
                raise AutopruneError(_NO_WEIGHTS)
            net = load_weights(build_for(str(self.model), splits), weights)
        specs = discover_layers(net, splits.input_shape)
        policy = self.policy if isinstance(self.policy, Policy) else Policy.load(self.policy, specs)
        return net, splits, policy


_NO_WEIGHTS = (
    "weights is required: pass the trained state dict the policy was searched on (run.weights "
    "of the search, or the checkpoint printed by 'autoprune train'), pass the trained "
    "nn.Module as model=, or apply the search's run name instead of its policy file"
)


def apply_plan(
    policy: Policy | SearchRun | str | Path,
    model: str | nn.Module | None,
    data: object,
    weights: str | Path | None,
    profile: str | None,
    runs_dir: str | Path,
    data_dir: str | Path | None,
) -> ApplyPlan:
    """Fill what :func:`apply` was not given from the search run the policy came from."""
    from autoprune.cost import load_profile

    if model is not None:
        check_model_arg(model)
    session_model, objects, finished = None, None, None
    run_dir: Path | None = None
    given_weights = weights  # other weights than the search's: its retrained model is moot
    if isinstance(policy, SearchRun):
        run_dir = policy.run_dir
        config, session = policy.session.config, policy.session
        model, data = model or config.model, data if data is not None else config.dataset
        profile, weights = profile or config.profile, weights or policy.weights
        if session.objects is not None:
            objects = session.objects
            session_model = session.model if not isinstance(model, nn.Module) else None
            data = data if not isinstance(data, str) or objects.data is None else objects.data
        policy = best_policy_of(policy)
    elif not isinstance(policy, Policy):
        finished = _finished_search(policy, Path(runs_dir))
        if finished is not None:
            config = finished.config
            model, data = model or config.model, data if data is not None else config.dataset
            profile = profile or config.profile
            data_dir = data_dir if data_dir is not None else config.data_dir
            policy, run_dir = finished.policy_path, finished.folder
    if isinstance(model, str) and model.startswith("object:") and session_model is None:
        raise AutopruneError(
            f"the search ran on a Python object ({model[7:]}); pass the trained nn.Module "
            "as model= (and its data as data=)"
        )
    given = isinstance(model, nn.Module) or session_model is not None
    if weights is None and finished is None and not given:
        raise AutopruneError(_NO_WEIGHTS)
    plan = ApplyPlan(policy, model or "demo", data if data is not None else "digits")
    plan.weights, plan.finished, plan.session_model = weights, finished, session_model
    plan.objects, plan.runs_dir, plan.data_dir = objects, Path(runs_dir), data_dir
    plan.profile = profile or "bitfusion"
    load_profile(plan.profile)  # an unknown profile fails before the data is read
    plan.trained = _trained_model(run_dir, given_weights)
    return plan


def _trained_model(run_dir: Path | None, weights: str | Path | None) -> Path | None:
    """The one-shot method's retrained model in a run folder (None without one, or when
    other weights than the search's were given)."""
    from autoprune.deploy.shipped import TRAINED_MODEL

    if run_dir is None or weights is not None:
        return None
    path = run_dir / TRAINED_MODEL
    return path if path.is_file() else None


def priced_cost_model(
    profile: str, runs_dir: Path, net: nn.Module, splits: DataSplits, policy: Policy
) -> Any:
    """The cost model of ``profile`` fitted to ``net`` at the shape ``policy`` was priced at."""
    from autoprune.core.specs import discover_layers
    from autoprune.cost import load_profile
    from autoprune.latency import build_cost_model, fit_latency_model
    from autoprune.workflow.inputs import priced_shape

    shape = priced_shape(policy.meta.get("evaluation"), splits.input_shape)
    specs = discover_layers(net, shape)
    device = model_device(net)
    example = splits.head("val", 1)[0] if shape == splits.input_shape else torch.zeros(1, *shape)
    return fit_latency_model(
        build_cost_model(load_profile(profile), lut_cache_dir=runs_dir / "latency_lut"),
        net,
        example.to(device),
        specs,
    )


def _finished_search(policy: str | Path, runs_dir: Path) -> FinishedSearch | None:
    """The search ``policy`` names when it is no policy file; an error when it is neither."""
    if Path(policy).is_file():
        return None
    found = find_search(str(policy), runs_dir)
    if found is None:
        raise AutopruneError(
            f"no policy file or search run is named '{policy}' (searched "
            f"{runs_dir / 'searches'}); pass a policy JSON, or the run name or run id that "
            "'autoprune search' printed (with the --runs-dir it used)"
        )
    return found


def best_policy_of(run: SearchRun) -> Policy:
    """The best feasible policy of a search run, or a one-line error without one."""
    policy = run.best_policy
    if policy is None:
        raise AutopruneError(
            f"search {run.run_name} found no policy within its budget; search longer or "
            "loosen the target"
        )
    return policy


def open_data(name: str, data_dir: str | Path | None) -> DataSplits:
    """A dataset by name."""
    from autoprune.data import load_dataset

    return load_dataset(name, data_dir=Path(data_dir) if data_dir is not None else None)
