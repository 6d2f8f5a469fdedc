"""Bounds on what untrusted input can make autoprune do: error messages that show a user's
value at a bounded length (a YAML alias bomb or a 2 MB list stays one short line), and JSON
read with a limit on its size and nesting.
"""

from __future__ import annotations

import json
import reprlib
from typing import Any

from autoprune.core.errors import AutopruneError

SHOWN_CHARS = 100
"""Most characters of a user's value that an error message shows."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of lists and objects a JSON file autoprune reads may have."""

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 6
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = SHOWN_CHARS


def brief(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` cut to at most ``limit`` characters, never expanding nested values.

    Example:
        >>> brief(list(range(10**6)))
        '[0, 1, 2, 3, 4, 5, ...]'
        >>> len(brief("x" * 10**6)) <= 100
        True
    """
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int of more than 4,300 digits has no str
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def depth(value: Any) -> int:
    """The nesting depth of lists, tuples and mappings in ``value``, without recursion.

    Example:
        >>> depth({"a": [1, [2]]}), depth(3)
        (3, 0)
    """
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, (dict, list, tuple)):
            deepest = max(deepest, level)
            todo.extend((child, level + 1) for child in children)
    return deepest


def loads_json(
    text: str | bytes,
    what: str,
    fix: str,
    max_depth: int = MAX_JSON_DEPTH,
    problem: str = "is not valid JSON",
) -> Any:
    """Parse JSON whose nesting is at most ``max_depth``; anything else is a one-line error.

    Args:
        text: The JSON text.
        what: How the message names the source (``"policy file p.json"``).
        fix: What the user should do about a bad file.
        max_depth: Deepest nesting accepted.
        problem: How the message calls malformed JSON.

    Raises:
        AutopruneError: for malformed or too deeply nested JSON.
    """
    try:
        data = json.loads(text)
    except RecursionError:
        data = None
        deep = True
    except (ValueError, UnicodeDecodeError) as exc:
        reason = brief(" ".join(str(exc).split()), 120)
        raise AutopruneError(f"{what} {problem} ({reason}); {fix}") from None
    else:
        deep = depth(data) > max_depth
    if deep:
        raise AutopruneError(
            f"{what} nests lists or objects more than {max_depth} levels deep; {fix}"
        )
    return data
