"""The narrow base class every search method implements, and its option parsing."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from autoprune.errors import AutopruneError

if TYPE_CHECKING:
    from agents._context import SearchContext


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """A method without options."""


def parse_options(cls: type[Any], options: Mapping[str, Any] | None, method: str) -> Any:
    """Build the options dataclass ``cls`` from ``options``, rejecting unknown keys.

    Raises:
        AutopruneError: Naming the unknown keys and listing the valid ones.
    """
    options = dict(options or {})
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise AutopruneError(
            f"agent option(s) {unknown} do not apply to method '{method}'; valid options: "
            f"{', '.join(valid) or '(none)'}"
        )
    return cls(**options)


class SearchMethod(ABC):
    """A search method: drives the runner's environment until the budget is spent.

    Subclasses set :attr:`name` and :attr:`Options` (a frozen dataclass of their options with
    defaults) and implement :meth:`run`. Methods that learn override :meth:`save_state` and
    :meth:`load_state` so that a killed search can resume.

    Example:
        >>> class Constant(SearchMethod):
        ...     name = "constant"
        ...     def run(self, ctx):
        ...         env = ctx.make_env()
        ...         while not ctx.exhausted:
        ...             env.reset()
        ...             done = False
        ...             while not done:
        ...                 _, reward, done, _, info = env.step(env.action_space.high)
        ...             ctx.record(info, reward)
        >>> Constant().options
        NoOptions()
    """

    name: ClassVar[str] = ""
    """Registry name (``SearchConfig.agent``)."""
    fixed_evaluations: ClassVar[int | None] = None
    """Set by one-shot methods (ADMM, Deep Compression) whose budget is always this many."""
    space_mode: ClassVar[str | None] = None
    """The environment mode whose space the method really searches, when it is not the
    config's ``mode`` (the one-shot methods sparsify and quantize: ``sparse``). A budget's
    feasibility is checked in that space before anything is written."""
    Options: ClassVar[type[Any]] = NoOptions
    """Frozen dataclass of the method's options (``SearchConfig.agent_options``)."""
    objectives: ClassVar[tuple[str, ...]] = ("accuracy", "latency")
    """Objectives of the Pareto front reported in the result."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = parse_options(self.Options, options, self.name or type(self).__name__)

    @abstractmethod
    def run(self, ctx: SearchContext) -> None:
        """Search until ``ctx.exhausted``.

        The hook contract:

        * build environments with ``ctx.make_env()`` (in this process, sharing the session's
          evaluator) or ``ctx.env_factory(rank)`` (a picklable factory for worker processes);
        * after every finished episode call ``ctx.record(info, reward)`` with the terminal
          ``info`` and reward; it returns None once the budget is spent (the episode is then
          not counted) — stop as soon as ``ctx.exhausted`` is true;
        * call ``ctx.maybe_checkpoint()`` at points where :meth:`save_state` describes the
          method completely (between episodes or updates); the runner writes a checkpoint
          when ``checkpoint_every`` episodes have passed.

        On resume, :meth:`load_state` has been called before ``run`` and ``ctx.history``
        holds the records already counted.
        """

    def save_state(self, folder: Path) -> None:
        """Write what :meth:`load_state` needs into the empty ``folder`` (default: nothing)."""
        del folder

    def load_state(self, folder: Path) -> None:
        """Restore the state written by :meth:`save_state` (called before :meth:`run`)."""
        del folder
