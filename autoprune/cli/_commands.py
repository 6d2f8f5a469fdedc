"""The commands of ``autoprune``, named before their modules are imported: the module that
defines each, the summary ``autoprune --help`` lists and an example for its own help."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LazyCommand:
    """A command of the root group, named before its module is imported.

    Example:
        >>> LAZY["models"].module
        '_inspect'
    """

    module: str
    """Module of :mod:`autoprune.cli` whose ``register(app)`` adds the command."""
    summary: str
    """The first paragraph of the command's help (a test holds it to the docstring)."""
    example: str = ""
    """A command line that uses it, shown at the end of its ``--help``."""


LAZY: dict[str, LazyCommand] = {
    "search": LazyCommand(
        "_search",
        "Search per-layer pruning ratios / bit-widths under a budget (default: a demo search).",
        "autoprune search --model vgg_small --agent tpe -t latency=60% --episodes 200",
    ),
    "compare": LazyCommand(
        "_compare",
        "Run several search methods on the same evaluation path and budget; compare them.",
        "autoprune compare --agents ddpg,tpe,uniform -t flops=0.5 --episodes 100",
    ),
    "train": LazyCommand(
        "_train",
        "Train a baseline (SGD + cosine) and cache it; the same request reuses the checkpoint.",
        "autoprune train --model vgg_small --epochs 8",
    ),
    "layers": LazyCommand(
        "_inspect",
        "List the compressible layers of a model (shapes, MACs, params, coupling).",
        "autoprune layers --model resnet20",
    ),
    "models": LazyCommand("_inspect", "List the model zoo.", "autoprune models"),
    "datasets": LazyCommand(
        "_inspect",
        "List the named datasets (plus the npz:PATH and file.py:fn forms).",
        "autoprune datasets",
    ),
    "apply": LazyCommand(
        "_apply",
        "Apply a policy to a trained model: compress, fine-tune, export .pt/.onnx/.apz, report.",
        "autoprune apply RUN --finetune-epochs 2 --export out/",
    ),
    "export": LazyCommand(
        "_apply",
        "Print (or write) the best policy of a recorded search, by run id or run name.",
        "autoprune export RUN --format yaml -o policy.yaml",
    ),
    "ui": LazyCommand(
        "_ui",
        "Start the MLflow UI on the local store (Ctrl-C stops it).",
        "autoprune ui --port 5000",
    ),
    "worker": LazyCommand(
        "_worker",
        "Join the running Optuna search RUN: evaluate its trials until its budget is spent.",
        "autoprune worker RUN --storage postgresql+psycopg2://autoprune@db/autoprune",
    ),
    "cost": LazyCommand(
        "_cost",
        "Price a model (and a policy) on a hardware profile; validate the latency model.",
        "autoprune cost --model vgg_small --profile cpu",
    ),
}
"""Every command, in ``--help`` order (a command's module is imported when it is used)."""
