"""``folder:PATH``: an image-folder dataset, decoded batch by batch (never held in memory).

The layout is the common one: ``PATH/train/<class>/*.png|jpg``, optionally ``PATH/val/``
and ``PATH/test/`` with the same class folders. Classes are the sorted folder names of
``train``. Without ``val`` a seeded share of ``train`` is held out; without ``test`` the
validation split stands in for it. Every image is converted to the first training image's
mode (grayscale or RGB) and size (bilinear resize), scaled to [0, 1] and normalised per
channel with the mean and standard deviation of a fixed sample of training images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from autoprune.core.errors import AutopruneError
from autoprune.core.splits import DataSplits
from autoprune.data._prepare import random_hold_out

FOLDER_PREFIX = "folder:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
STATS_SAMPLE = 512
"""Training images whose pixels give the normalisation constants."""
MAX_PIXELS = 4096 * 4096
"""Largest image decoded (a bigger one is refused before it is decoded)."""


class ImageFiles(Dataset):
    """Image files with class indices, decoded on access as ``(C, H, W)`` float32 tensors.

    Example:
        >>> files = ImageFiles([], [], size=(8, 8), channels=1)
        >>> len(files)
        0
    """

    def __init__(
        self,
        files: list[str],
        labels: list[int],
        *,
        size: tuple[int, int],
        channels: int,
        mean: tuple[float, ...] = (),
        std: tuple[float, ...] = (),
    ) -> None:
        self.files, self.labels = files, np.asarray(labels, dtype=np.int64)
        self.size, self.channels = size, channels
        shape = (channels, 1, 1)
        self.mean = torch.tensor(mean or (0.0,) * channels).view(shape)
        self.std = torch.tensor(std or (1.0,) * channels).view(shape)

    def __len__(self) -> int:
        return len(self.files)

    def pixels(self, index: int) -> torch.Tensor:
        """Image ``index`` scaled to [0, 1], before normalisation."""
        from PIL import Image

        path = self.files[index]
        try:
            with Image.open(path) as opened:
                if opened.width * opened.height > MAX_PIXELS:
                    raise AutopruneError(f"image {path} is larger than {MAX_PIXELS} pixels")
                image = opened.convert("L" if self.channels == 1 else "RGB")
            if image.size != (self.size[1], self.size[0]):
                image = image.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / np.float32(255.0)
        except (OSError, ValueError) as exc:
            raise AutopruneError(f"image {path} cannot be read ({exc}); fix or remove it") from None
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(array))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = (self.pixels(index) - self.mean) / self.std
        return x, int(self.labels[index])


def read_folder(path: str, *, val_size: int | float, seed: int) -> DataSplits:
    """The splits of an image folder (see the module docstring)."""
    root = Path(path).expanduser()
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise AutopruneError(
            f"folder:{path} has no train/ folder; lay images out as PATH/train/<class>/*.png "
            "(optionally PATH/val/ and PATH/test/ with the same class folders)"
        )
    classes = sorted(e.name for e in os.scandir(train_dir) if e.is_dir())
    if not classes:
        raise AutopruneError(f"folder:{path}: train/ has no class folders; add train/<class>/")
    train = _listing(train_dir, classes, path)
    val = _listing(root / "val", classes, path) if (root / "val").is_dir() else None
    test = _listing(root / "test", classes, path) if (root / "test").is_dir() else None
    if val is None:
        train, val = _carve(train, val_size, seed, path)
    size, channels = _geometry(train[0][0])
    probe = ImageFiles(train[0], train[1], size=size, channels=channels)
    mean, std = _statistics(probe, seed)

    def files(listing: tuple[list[str], list[int]]) -> ImageFiles:
        return ImageFiles(*listing, size=size, channels=channels, mean=mean, std=std)

    val_files = files(val)
    return DataSplits(
        FOLDER_PREFIX + path,
        files(train),
        val_files,
        files(test) if test is not None else val_files,
        num_classes=len(classes),
        mean=mean,
        std=std,
    )


def _listing(folder: Path, classes: list[str], path: str) -> tuple[list[str], list[int]]:
    """Image paths and class indices under ``folder/<class>/``, in a sorted order."""
    files: list[str] = []
    labels: list[int] = []
    extra = sorted(e.name for e in os.scandir(folder) if e.is_dir() and e.name not in classes)
    if extra:
        raise AutopruneError(
            f"folder:{path}: {folder.name}/ has class folder(s) {extra[:5]} that train/ lacks; "
            "give every class training images"
        )
    for index, name in enumerate(classes):
        sub = folder / name
        if not sub.is_dir():
            continue
        names = sorted(e.name for e in os.scandir(sub) if e.name.lower().endswith(IMAGE_SUFFIXES))
        files.extend(str(sub / n) for n in names)
        labels.extend([index] * len(names))
    if not files:
        raise AutopruneError(
            f"folder:{path}: {folder.name}/ holds no .png/.jpg images in its class folders"
        )
    return files, labels


def _carve(
    listing: tuple[list[str], list[int]], val_size: int | float, seed: int, path: str
) -> tuple[tuple[list[str], list[int]], tuple[list[str], list[int]]]:
    """Hold out a seeded share of the training images for validation."""
    files, labels = listing
    split = random_hold_out(len(files), val_size, seed)
    if split is None:
        raise AutopruneError(
            f"folder:{path}: {len(files)} training images are too few to hold out {val_size}; "
            "add a val/ folder or more images"
        )
    kept, held = split
    return ([files[i] for i in kept], [labels[i] for i in kept]), (
        [files[i] for i in held],
        [labels[i] for i in held],
    )


def _geometry(first: str) -> tuple[tuple[int, int], int]:
    """``((height, width), channels)`` of the first training image."""
    from PIL import Image

    try:
        with Image.open(first) as image:
            size, mode = (image.height, image.width), image.mode
    except (OSError, ValueError) as exc:
        raise AutopruneError(f"image {first} cannot be read ({exc}); fix or remove it") from None
    if size[0] * size[1] > MAX_PIXELS:
        raise AutopruneError(f"image {first} is larger than {MAX_PIXELS} pixels")
    return size, 1 if mode in ("1", "L", "I", "I;16", "F") else 3


def _statistics(files: ImageFiles, seed: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of a seeded sample of training images."""
    count = min(len(files), STATS_SAMPLE)
    picks = np.random.default_rng(seed).choice(len(files), size=count, replace=False)
    total = torch.zeros(files.channels, dtype=torch.float64)
    squares = torch.zeros(files.channels, dtype=torch.float64)
    pixels = 0
    for index in np.sort(picks):
        x = files.pixels(int(index)).double()
        total += x.sum(dim=(1, 2))
        squares += (x * x).sum(dim=(1, 2))
        pixels += x.shape[1] * x.shape[2]
    mean = total / pixels
    std = (squares / pixels - mean * mean).clamp_min(0).sqrt()
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return tuple(mean.tolist()), tuple(std.tolist())
