"""Reading finished searches back from MLflow (for ``autoprune export RUN_ID``)."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.tracking._location import TrackingStore, make_client
from autoprune.tracking._tracker import BEST_POLICY_ARTIFACT


def read_best_policy(run_id: str, tracking_uri: str | Path | None = None) -> Policy:
    """Download and parse the best policy that a search logged.

    Args:
        run_id: The MLflow run id of the search.
        tracking_uri: The store the search logged to (see :class:`TrackingStore`).

    Raises:
        AutopruneError: when the store or the run does not exist, or the run has no
            ``best_policy.json`` (no feasible policy, or a ``compare`` parent run).
    """
    store = TrackingStore.resolve(tracking_uri)
    store.require_existing()
    client = make_client(store.uri)
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException:
        raise AutopruneError(
            f"run '{run_id}' is not in the tracking store {store.uri}; copy the run id from "
            "the search output or 'autoprune ui', and pass the --tracking-uri it used"
        ) from None
    with tempfile.TemporaryDirectory(prefix="autoprune-export-") as tmp:
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # MLflow's progress bar
                local = client.download_artifacts(run_id, BEST_POLICY_ARTIFACT, dst_path=tmp)
        except (MlflowException, OSError):
            raise AutopruneError(
                f"run '{run_id}' has no {BEST_POLICY_ARTIFACT} (the search found no feasible "
                "policy, or it is a compare run: export one of its child runs)"
            ) from None
        return Policy.load(local)
