"""Run code on a model and give every module its training flag back afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def restored_modes(*models: nn.Module) -> Iterator[None]:
    """Restore each module's ``training`` flag on exit, whatever the block changed.

    ``model.train(flag)`` would reset every submodule (a frozen BatchNorm included), so the
    flags are saved and restored module by module.

    Example:
        >>> net = nn.Sequential(nn.BatchNorm1d(2), nn.BatchNorm1d(2)); _ = net[1].eval()
        >>> with restored_modes(net):
        ...     _ = net.train()
        >>> net[0].training, net[1].training
        (True, False)
    """
    modes = {module: module.training for model in models for module in model.modules()}
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


@contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Put ``models`` in eval mode for the block, then restore every module's flag."""
    with restored_modes(*models):
        for model in models:
            model.eval()
        yield
