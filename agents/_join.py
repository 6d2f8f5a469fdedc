"""Join a running Optuna search from another process or machine (``autoprune worker``).

The runner of an Optuna search stores its config in the study; a worker needs only the
study's storage (the same URL as the search's, e.g. a team's PostgreSQL server) and
evaluates trials of the same study until the shared budget is spent. Its trials are
recorded by the runner, in the run's history, like those of the runner's own workers.
"""

from __future__ import annotations

import os
from pathlib import Path

from agents._optuna_study import check_storage, join_study, sampler_seed, storage_url, study_config
from autoprune.core.errors import AutopruneError
from autoprune.workflow.config import SearchConfig


def join_search(
    run: str,
    storage: str | None = None,
    runs_dir: str | None = None,
    weights: str | None = None,
    data_dir: Path | None = None,
) -> int:
    """Evaluate trials of the running Optuna search ``run`` until its budget is spent.

    Args:
        run: The search's run name (its Optuna study).
        storage: The search's Optuna storage URL (default: ``runs_dir/optuna.db``).
        runs_dir: Root of runs on this machine (default ``runs``).
        weights: The model's weights on this machine, when the path differs.
        data_dir: The dataset's folder on this machine, when it differs.

    Returns:
        The number of trials evaluated here.

    Raises:
        AutopruneError: When there is no such storage or no such search in it.
    """
    import optuna

    if storage is None:
        database = Path(runs_dir or "runs") / "optuna.db"
        if not database.is_file():
            raise AutopruneError(
                f"no Optuna storage at {database}; pass the search's --storage (or the "
                "--runs-dir it was started with)"
            )
    url = storage or storage_url(SearchConfig(runs_dir=runs_dir or "runs"))
    check_storage(url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=run, storage=url)
    except KeyError:
        raise AutopruneError(
            f"no search named '{run}' in the storage {url.split('://', 1)[0]}; pass the run "
            "name of a running Optuna search and its --storage"
        ) from None
    config = study_config(study).replace(
        weights=weights,
        data_dir=str(data_dir) if data_dir else None,
        runs_dir=runs_dir,
    )
    seed = sampler_seed(config.seed, os.getpid(), len(study.trials))
    return join_study(config, run, url, seed, joined=True)
