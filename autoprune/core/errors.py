"""User-facing errors.

Every mistake a user can make (bad name, bad file, bad budget) raises an
:class:`AutopruneError` whose message names the problem and the fix in one line.
The CLI turns it into exit code 2 without a traceback.
"""

from __future__ import annotations


class AutopruneError(ValueError):
    """A user error: the message says what is wrong and how to fix it."""


def unknown_name(kind: str, name: str, choices: list[str] | tuple[str, ...]) -> AutopruneError:
    """Build the standard error for an unknown registry name.

    Example:
        >>> str(unknown_name("model", "vgg", ["lenet5", "vgg_small"]))
        "unknown model 'vgg'; choose one of: lenet5, vgg_small"
    """
    return AutopruneError(f"unknown {kind} '{name}'; choose one of: {', '.join(sorted(choices))}")
