"""A finished search's run folder: its best policy and what it was searched on.

``autoprune apply RUN`` (and ``autoprune.apply("RUN")``) takes the model, dataset, weights
and profile from the run instead of asking for them again. ``RUN`` is a run name (the
folder ``runs/searches/NAME`` that ``search --resume NAME`` uses) or the MLflow run id the
search printed (found in the folders' ``summary.json``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autoprune.core.errors import AutopruneError
from autoprune.system.paths import is_child_name
from autoprune.workflow.config import SearchConfig

if TYPE_CHECKING:
    from autoprune.data import DataSplits

RUN_ID = re.compile(r"[0-9a-f]{32}")
"""MLflow run ids are 32 lowercase hex digits."""


@dataclass(frozen=True)
class FinishedSearch:
    """One search's run folder and the configuration it ran with.

    Attributes:
        folder: ``runs_dir/searches/NAME``.
        config: The search's ``config.json``.
    """

    folder: Path
    config: SearchConfig

    @property
    def name(self) -> str:
        """The run name (``--resume NAME``)."""
        return self.folder.name

    @property
    def policy_path(self) -> Path:
        """The best policy the search wrote."""
        return self.folder / "best_policy.json"

    def weights(self, data: DataSplits, runs_dir: Path) -> Path:
        """The state dict the search compressed: its ``--weights`` or its cached baseline.

        Raises:
            AutopruneError: When that file is gone (pass ``--weights`` then).
        """
        from autoprune.workflow.baseline import load_baseline
        from autoprune.workflow.session import baseline_request

        if self.config.weights is not None:
            path = Path(self.config.weights)
            if not path.is_file():
                raise AutopruneError(
                    f"search '{self.name}' compressed {path}, which no longer exists; pass "
                    "--weights with the same trained state dict"
                )
            return path
        root = runs_dir / "checkpoints"
        baseline = load_baseline(baseline_request(self.config, data), data, root)
        if baseline is None:
            raise AutopruneError(
                f"the baseline search '{self.name}' compressed is no longer in {root}; pass "
                "--weights with the checkpoint it used (or --runs-dir of that search)"
            )
        return baseline.weights_path


def refuse_finished(run_dir: Path, config: SearchConfig, recorded: int, status: str | None) -> None:
    """Raise :class:`SearchFinished` for a search that recorded all its episodes and wrote
    its results, and whose MLflow run (``status``) is ``FINISHED``.

    Running its finishing stage again would only rewrite the same files (and a Ctrl-C
    meanwhile would mark the finished MLflow run KILLED). A search that died while writing
    its results (no ``summary.json`` of every episode, its best model missing, its MLflow
    run not marked FINISHED) is finished by the resume.
    """
    summary = run_dir / "summary.json"
    if recorded < config.episodes or status != "FINISHED" or not summary.is_file():
        return
    try:
        written = json.loads(summary.read_text())
        complete = written["evaluations"] == recorded
        best_missing = written["best"] is not None and not (run_dir / "best_model.apz").is_file()
    except (OSError, ValueError, TypeError, KeyError):
        return  # a damaged summary: write the results again
    if not complete or best_missing:
        return
    name = run_dir.name
    raise SearchFinished(
        f"search '{name}' already finished its {recorded} episodes; its results in {run_dir} "
        f"are left as they are: apply it with 'autoprune apply {name}', or extend it with "
        f"'--resume {name} --episodes {2 * recorded}'"
    )


class SearchFinished(AutopruneError):
    """A resume of a search that has nothing left to do (``autoprune search`` prints the
    message and exits 0)."""


def find_search(ref: str, runs_dir: Path) -> FinishedSearch | None:
    """The finished search named ``ref`` or logged under MLflow run id ``ref``.

    Returns:
        None when ``ref`` names no search under ``runs_dir/searches``.

    Raises:
        AutopruneError: For a search that has not finished (no best policy yet) or whose
            ``config.json`` cannot be read.
    """
    searches = runs_dir / "searches"
    folder = searches / ref
    if not is_child_name(searches, ref) or not folder.is_dir():
        found = _folder_of_run_id(ref, searches) if RUN_ID.fullmatch(ref) else None
        if found is None:
            return None
        folder = found
    if not (folder / "best_policy.json").is_file():
        raise AutopruneError(
            f"search '{folder.name}' has no best policy yet; continue it with 'autoprune "
            f"search --resume {folder.name}' (or loosen its target) and apply it afterwards"
        )
    try:
        config = SearchConfig.from_mapping(json.loads((folder / "config.json").read_text()))
    except (OSError, ValueError, TypeError, AutopruneError) as exc:
        raise AutopruneError(
            f"cannot read {folder / 'config.json'} ({exc}); apply {folder / 'best_policy.json'} "
            "with --model, --dataset and --weights instead"
        ) from None
    return FinishedSearch(folder, config)


def _folder_of_run_id(run_id: str, searches: Path) -> Path | None:
    """The run folder whose ``summary.json`` records ``run_id``."""
    for summary in sorted(searches.glob("*/summary.json")):
        try:
            if json.loads(summary.read_text()).get("run_id") == run_id:
                return summary.parent
        except (OSError, ValueError, AttributeError):
            continue
    return None
