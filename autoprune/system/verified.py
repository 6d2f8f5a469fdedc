"""Content hashes for cached files: written at save, checked on every read.

A cache (a baseline checkpoint, a latency table) is trusted only when its bytes still hash
to the digest recorded when it was written. A mismatch is a cache miss: the damaged file is
kept aside (renamed ``NAME.damaged-<time>``, never deleted) so the caller can make it again.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "cache.bin"
    ...     _ = path.write_bytes(b"measured")
    ...     digest = sha256_of(path)
    ...     _ = path.write_bytes(b"measurEd")
    ...     verify(path, digest) is None
    False
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from autoprune.system.paths import aside_path


class CacheWarning(UserWarning):
    """A cached file failed its check and is made again (the damaged one is kept aside)."""


DIGEST_KEY = "sha256"
"""The key of a side-car JSON that holds the content hash of the file it describes."""
_CHUNK = 1 << 20


def sha256_of(path: str | Path) -> str:
    """The hex SHA-256 of a file's bytes (read in chunks, any size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of_bytes(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def verify(path: str | Path, expected: object) -> str | None:
    """None when ``path``'s bytes hash to ``expected``; else what is wrong, in a few words.

    ``expected`` comes from an untrusted side-car, so anything but a 64-digit hex string is
    itself a problem.
    """
    if not isinstance(expected, str) or len(expected) != 64:
        return "its recorded content hash is missing or malformed"
    try:
        actual = sha256_of(path)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if actual != expected.lower():
        return f"its content hash {actual[:12]}... differs from the recorded {expected[:12]}..."
    return None


def set_aside(path: str | Path) -> Path | None:
    """Rename a damaged file to ``NAME.damaged-<time>`` beside it (never delete it).

    Returns:
        The new path, or None when ``path`` does not exist (nothing to keep).
    """
    path = Path(path)
    if not path.exists():
        return None
    target = aside_path(path, "damaged")
    os.replace(path, target)
    return target
