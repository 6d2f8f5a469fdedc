"""Find a recorded search by MLflow run id or by run name (its folder under runs/searches)."""

from __future__ import annotations

import json
from pathlib import Path

from autoprune.cli._tracking import tracking_location
from autoprune.core.errors import AutopruneError
from autoprune.searches.finished_search import RUN_ID
from autoprune.system.paths import is_child_name


def resolve_run(run: str, runs_dir: Path, tracking_uri: str | None) -> tuple[str, str]:
    """The MLflow run id and tracking store of ``run``, a run id or a search's run name.

    A run name is the folder ``runs_dir/searches/NAME`` that ``search --resume NAME`` uses
    (a ``compare`` method's is ``PARENT__METHOD``); its ``summary.json`` holds the run id
    and the store the search logged to, which ``--tracking-uri`` overrides.

    Raises:
        AutopruneError: when ``run`` is neither a run id nor a finished search's name.
    """
    folder = runs_dir / "searches" / run
    if is_child_name(runs_dir / "searches", run) and folder.is_dir():
        summary_path = folder / "summary.json"
        if not summary_path.is_file():
            raise AutopruneError(
                f"search '{run}' has not finished (no {summary_path}); continue it with "
                f"'autoprune search --resume {run}' and export it afterwards"
            )
        summary = json.loads(summary_path.read_text())
        if not summary.get("run_id"):
            raise AutopruneError(
                f"{summary_path} records no MLflow run id; export the policy file "
                f"{folder / 'best_policy.json'} directly instead"
            )
        store = tracking_uri or summary.get("tracking_uri")
        return summary["run_id"], store or tracking_location(None, runs_dir)
    if not RUN_ID.fullmatch(run):
        raise AutopruneError(
            f"'{run}' is neither an MLflow run id nor a search under {runs_dir / 'searches'}; "
            "pass the run id or run name that 'autoprune search' printed (and its --runs-dir)"
        )
    return run, tracking_location(tracking_uri, runs_dir)
