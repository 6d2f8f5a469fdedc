"""scikit-learn's 8x8 digits, with a fixed test split carved once and for all."""

from __future__ import annotations

import numpy as np

from autoprune.data._prepare import carve

TEST_FRACTION = 0.2
"""Share of the 1797 digits held out as the test split."""
TEST_SEED = 0
"""Seed of the test carve-out; independent of the user's seed so the test set never changes."""


def read_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits as ``(x_train, y_train, x_test, y_test)``; images float32 in [0, 1], (N, 8, 8).

    scikit-learn ships no test split, so a stratified :data:`TEST_FRACTION` of the samples
    is set aside with :data:`TEST_SEED`; the validation split is later carved from the rest.
    """
    from sklearn.datasets import load_digits  # slow import: only when digits are read

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    kept, held = carve(labels, TEST_FRACTION, TEST_SEED)
    return images[kept], labels[kept], images[held], labels[held]
