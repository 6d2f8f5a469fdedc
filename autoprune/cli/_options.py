"""Every option that more than one command takes, declared once: its flags, its help text
and its default, read from the library's configuration rather than restated."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from autoprune.workflow.config import SearchConfig


@dataclass(frozen=True)
class Flag:
    """One option of several commands, declared once; :attr:`option` is the Typer option.

    A command whose value a config file or a recorded run decides takes :attr:`unset` or
    :attr:`from_run` (None when not given); one with a default of its own takes
    ``flag.but(default=...).option``, assigned to a module-level name first.

    Example:
        >>> RUNS_DIR.option.default
        PosixPath('runs')
        >>> RUNS_DIR.unset.help
        'Root of runs. \\\\[default: runs]'
    """

    names: tuple[str, ...]
    """The flag and its short form, e.g. ``("--model", "-m")``."""
    help: str
    """The help text, the same in every command."""
    default: Any = None
    """The value when the flag is not given (None: the command decides)."""
    shown: str | None = None
    """Where a None default's value comes from, e.g. ``"the model's own"``."""

    def but(self, **changes: Any) -> Flag:
        """This flag with a command's own ``default`` or ``shown``."""
        return replace(self, **changes)

    @property
    def option(self) -> Any:
        """The Typer option; a None default shows :attr:`shown` as ``[default: ...]``."""
        text = self.help
        if self.default is None and self.shown is not None:
            text += " " + escape(f"[default: {self.shown}]")  # as Typer shows a real default
        return typer.Option(self.default, *self.names, help=text)

    @property
    def unset(self) -> Any:
        """The option as None when not given (a config file decides), showing the default."""
        return self.but(default=None, shown=self._usual).option

    @property
    def from_run(self) -> Any:
        """The option as None when not given: the recorded run's value, else the default."""
        usual = self._usual
        return self.but(
            default=None, shown="the run's" + (f", else {usual}" if usual else "")
        ).option

    @property
    def _usual(self) -> str | None:
        """The default as ``--help`` says it: the value, else :attr:`shown`."""
        return self.shown if self.default is None else str(self.default)


MODEL = Flag(("--model", "-m"), "Zoo name, file.py:fn or module:fn.", SearchConfig.model)
WEIGHTS = Flag(("--weights", "-w"), "Trained state dict.")
DATASET = Flag(
    ("--dataset", "-d"), "Dataset name, npz:PATH or file.py:fn.", shown="the model's own"
)
DATA_DIR = Flag(
    ("--data-dir",),
    "Where the dataset files are.",
    shown="$AUTOPRUNE_DATA_DIR, else the dataset's own",
)
PROFILE = Flag(("--profile", "-p"), "Hardware profile name or YAML path.", SearchConfig.profile)
SEED = Flag(("--seed",), "Random seed.", SearchConfig.seed)
LR = Flag(("--lr",), "Learning rate.")
RUNS_DIR = Flag(
    ("--runs-dir",), "Root of runs.", Path(SearchConfig.runs_dir), SearchConfig.runs_dir
)
TRACKING_URI = Flag(("--tracking-uri",), "MLflow URI.", shown="mlflow under --runs-dir")
STORAGE = Flag(("--storage",), "Optuna storage URL.", shown="sqlite under --runs-dir")
JSON_OUT = Flag(("--json",), "Print JSON instead of text.", False)
INPUT_SHAPE = Flag(
    ("--input-shape",),
    "Input C,H,W to price the model at (its deployment resolution, e.g. 3,224,224).",
    shown="the dataset's image shape",
)


DEVICE = Flag(
    ("--device",),
    "Where models train and evaluate: auto (CUDA when present) | cpu | cuda | cuda:N.",
    default="auto",
)
"""``--device`` of ``train`` and ``apply`` (``search`` sets the config key ``device``)."""
