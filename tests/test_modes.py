"""Training flags are restored module by module, also when the block raises."""

from __future__ import annotations

import pytest
from torch import nn

from autoprune.core.modes import eval_mode, restored_modes


def _net() -> nn.Sequential:
    net = nn.Sequential(nn.BatchNorm1d(2), nn.BatchNorm1d(2)).train()
    net[1].eval()  # a frozen BatchNorm inside a training model
    return net


def test_eval_mode_sets_eval_and_restores_mixed_flags():
    net = _net()
    with eval_mode(net):
        assert not any(m.training for m in net.modules())
    assert (net.training, net[0].training, net[1].training) == (True, True, False)


def test_flags_come_back_after_an_exception():
    net = _net()
    with pytest.raises(RuntimeError), restored_modes(net):
        net.train()
        raise RuntimeError("boom")
    assert net[1].training is False
