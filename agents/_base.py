"""The narrow base class every search method implements, and its option parsing."""

from __future__ import annotations

import dataclasses
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from autoprune.core.errors import AutopruneError

if TYPE_CHECKING:
    from agents._context import SearchContext
    from autoprune.core.budget import Budget
    from autoprune.workflow.evaluation import PolicyEvaluator


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
    _check_scalar_types(cls, options, method)
    return cls(**options)


_SCALARS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _check_scalar_types(cls: type[Any], options: Mapping[str, Any], method: str) -> None:
    """Refuse an option of a scalar field (int, float, str, bool, or one of them or None)
    given a value of another type, e.g. ``warmup_episodes: abc``."""
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation that cannot be resolved here: no check
        return
    for name, value in options.items():
        hint = hints.get(name)
        kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        if value is None and type(None) in kinds:
            continue
        scalars = [k for k in kinds if k in _SCALARS]
        if not scalars or len(scalars) != len([k for k in kinds if k is not type(None)]):
            continue  # containers and other types are the method's to check
        if isinstance(value, bool):
            ok = bool in scalars
        else:
            ok = any(
                isinstance(value, k) or (k is float and isinstance(value, int)) for k in scalars
            )
        if not ok:
            expected = " or ".join(_SCALARS[k] for k in scalars)
            expected += " (or null)" if type(None) in kinds else ""
            raise AutopruneError(
                f"agent option '{name}' of method '{method}' must be {expected}, got {value!r} "
                f"({type(value).__name__})"
            )


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

    def plant_seeds(self, ctx: SearchContext) -> None:
        """Take the seed policies of ``ctx.config.seed_policies`` (:mod:`agents._seeds`);
        called once by the runner before :meth:`run` of a fresh search.

        The default evaluates and records them as the first episodes; methods that learn
        from episodes override it to learn from them too, heuristics to ignore them.
        """
        from agents._seeds import record_seeds, seeds_for

        record_seeds(ctx, seeds_for(ctx))

    def check_budget(self, evaluator: PolicyEvaluator, budget: Budget) -> bool:
        """Refuse (one-line :class:`AutopruneError`) a budget the method's own space cannot
        reach, naming the smallest value it reaches; called before anything is written.

        Returns:
            False when the method searches the environment's space (the default): the runner
            then checks the budget by building the environment once.
        """
        del evaluator, budget
        return False

    def episodes_before_learning(self, budget: int) -> int | None:
        """Episodes played before the method's first update, for a search of ``budget``.

        The CLI warns when a search ends before this (every action was then random).

        Returns:
            None for methods that do not learn from episodes (the default).
        """
        del budget
        return None

    def save_state(self, folder: Path) -> None:
        """Write what :meth:`load_state` needs into the empty ``folder`` (default: nothing)."""
        del folder

    def load_state(self, folder: Path) -> None:
        """Restore the state written by :meth:`save_state` (called before :meth:`run`)."""
        del folder
