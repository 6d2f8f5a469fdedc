"""Named datasets as deterministic train / validation / test splits.

Split rules:

* **test** is the dataset's official test set and is used only to report final numbers;
  nothing in a search may look at it. ``digits`` has no official test set, so a fixed
  stratified 20% is set aside with a fixed seed: the test set never changes.
* **val** is carved from the training set (stratified by class when every class has at least
  two samples) with ``seed``: the same seed always gives the same split, another seed
  another one. ``val_size`` is a sample count or a fraction of the training set.
* **train** is the rest of the training set. Images are float32 ``(N, C, H, W)``,
  normalised per channel with the mean and standard deviation of the train split only
  (stored in ``DataSplits.mean`` / ``std``); the same constants are applied to val and test.

Datasets:

* ``digits``: scikit-learn's 8x8 digits (1797 images, 10 classes), embedded, pixels 0..16
  scaled to [0, 1].
* ``fashion-mnist`` / ``mnist``: the four IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, raw
  or ``.gz``) in ``data_dir`` or its ``fashion-mnist`` / ``mnist`` sub-folder; Fashion-MNIST
  defaults to the Debian package folder ``/usr/share/datasets/fashion-mnist``.
* ``cifar10``: the ``cifar-10-batches-py`` folder (pickled batches), or its parent.
* ``npz:PATH``: a ``.npz`` file with ``x_train, y_train, x_test, y_test``; images
  ``(N, H, W)`` or ``(N, C, H, W)`` (channels-last must be transposed first), uint8 scaled
  to [0, 1]; labels ``0..K-1`` and ``num_classes = max label + 1``.

Every dataset is checked when it loads (``autoprune.data._checks``): NaN or infinite
pixels, a class without training images (a stray label 1000 among 0..9), a test label no
training image has, or fewer than 5 training images of a class are refused with a one-line
:class:`~autoprune.core.errors.AutopruneError` naming the problem and the fix.
* ``folder:PATH``: image folders ``PATH/train/<class>/*.png|jpg`` (optional ``val/`` and
  ``test/``), decoded batch by batch, never held in memory (``autoprune.data._folder``).
* Objects from Python (``autoprune.data._objects``): ``DataLoader``s, ``Dataset``s or
  ``(x, y)`` pairs per split, streamed as given.
* ``path/to/file.py:function`` or ``package.module:function``: a function called with no
  arguments that returns a :class:`DataSplits` (used as is) or a tuple
  ``(x_train, y_train, x_test, y_test)`` handled like an ``npz`` file.

Nothing is cached on disk.

Example:
    >>> splits = load_dataset("digits", seed=0)
    >>> xb, yb = next(iter(splits.loader("train", batch_size=32, shuffle=True, seed=0)))
    >>> xb.shape, yb.dtype
    (torch.Size([32, 1, 8, 8]), torch.int64)
"""

from __future__ import annotations

from autoprune.core.splits import DataSplits
from autoprune.data._objects import (
    ACCEPTED,
    OBJECT_PREFIX,
    is_data_object,
    splits_from_objects,
)
from autoprune.data._paths import DEFAULT_DATA_DIRS
from autoprune.data._registry import dataset_names, load_dataset

__all__ = [
    "ACCEPTED",
    "DEFAULT_DATA_DIRS",
    "OBJECT_PREFIX",
    "DataSplits",
    "dataset_names",
    "is_data_object",
    "load_dataset",
    "splits_from_objects",
]
