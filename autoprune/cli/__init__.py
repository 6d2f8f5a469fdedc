"""The ``autoprune`` command line: the only place that reads argv and wires objects."""

from autoprune.cli._app import app, main

__all__ = ["app", "main"]
