"""A stop signal is never lost or cut into a tracking write (``StopSignals``, ``critical``)."""

from __future__ import annotations

import os
import signal
import time
import weakref

import pytest

from autoprune.cli._signals import Interrupted, StopSignals
from autoprune.system.critical import critical_section


class _Object:
    pass


def test_a_stop_inside_a_critical_section_waits_for_its_end() -> None:
    done = []
    with pytest.raises(Interrupted), StopSignals() as stop, critical_section():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("the write finished")
    assert done == ["the write finished"] and stop.caught is not None


def test_a_stop_dropped_in_a_weakref_callback_is_delivered_again() -> None:
    after = []
    with pytest.raises(Interrupted) as raised, StopSignals():
        target = _Object()
        ref = weakref.ref(target, lambda _: os.kill(os.getpid(), signal.SIGTERM))
        del target  # the callback runs here; Python drops what it raises
        for step in range(300):  # up to 3 s of ordinary code
            time.sleep(0.01)
            after.append(step)
    assert raised.value.signum == signal.SIGTERM and ref() is None
    assert len(after) < 300, "the stop must land in ordinary code, not be lost"
