"""What makes a CLI search resumable: the note on how to continue (the MLflow run to reopen
and the episodes it lacks are :mod:`autoprune.searches.search_run`'s)."""

from __future__ import annotations

import shlex


def resume_command(run_name: str, runs_dir: str | None) -> str:
    """The command line that continues ``run_name``.

    Example:
        >>> resume_command("demo__ddpg__0__20261130-043839", None)
        'autoprune search --resume demo__ddpg__0__20261130-043839'
    """
    words = ["autoprune", "search", "--resume", run_name]
    if runs_dir is not None:
        words += ["--runs-dir", runs_dir]
    return shlex.join(words)


class ContinueNote:
    """Adds one note to a Ctrl-C / SIGTERM leaving the block: how to continue the search.

    Set :attr:`run_name` once the run folder exists; before that the note says that nothing
    was recorded.

    Example:
        >>> with ContinueNote(None) as note:
        ...     note.run_name = "demo__ddpg__0__20261130-043839"
    """

    def __init__(self, runs_dir: str | None) -> None:
        self.runs_dir = runs_dir
        self.run_name: str | None = None

    def __enter__(self) -> ContinueNote:
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if not isinstance(exc, KeyboardInterrupt):
            return
        if self.run_name is None:
            exc.add_note("no search run was recorded yet; run the same command again")
        else:
            command = resume_command(self.run_name, self.runs_dir)
            exc.add_note(f"every finished episode is saved; continue with: {command}")
