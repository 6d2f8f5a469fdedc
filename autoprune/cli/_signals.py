"""SIGINT and SIGTERM stop a command cleanly: exit code 128 + the signal, one line on stderr.

While :class:`StopSignals` is active, the first SIGINT (Ctrl-C) or SIGTERM raises
:class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so every ``finally`` and
``except BaseException`` on the way out runs: MLflow marks the run KILLED, half-written
temporary files are removed, the run's lock is released. A command may add a note on how to
continue (``exc.add_note(...)``), which :meth:`StopSignals.message` prints. A second signal
while the command is stopping gets the default behaviour (ends the process at once).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

from autoprune.system.critical import defer

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
REDELIVERY_DELAY_S = 0.05
"""Delay before a stop that Python dropped (see :meth:`StopSignals._redeliver`) is resent."""


class Interrupted(KeyboardInterrupt):
    """Raised by :class:`StopSignals` when SIGINT or SIGTERM arrives.

    Attributes:
        signum: The signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class StopSignals:
    """Context manager turning the first SIGINT/SIGTERM into :class:`Interrupted`.

    Outside the main thread (where Python cannot install handlers) it does nothing.

    Example:
        >>> with StopSignals() as stop:
        ...     pass
        >>> stop.caught is None
        True
    """

    def __init__(self) -> None:
        self.caught: Interrupted | None = None
        self._previous: dict[int, Any] = {}
        self._unraisable = sys.unraisablehook

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
            self._unraisable = sys.unraisablehook
            sys.unraisablehook = self._redeliver
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if self._previous:
            sys.unraisablehook = self._unraisable
        self._previous.clear()

    def _redeliver(self, unraisable: Any) -> None:
        """A stop raised where Python can only drop it (a ``__del__`` or weakref callback,
        e.g. inside SQLAlchemy) is sent again, to land in ordinary code; others as before."""
        stop = unraisable.exc_value
        if not isinstance(stop, Interrupted) or stop is not self.caught:
            self._unraisable(unraisable)
            return
        self.caught = None
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)
        # sent again a moment later from another thread, once this hook has returned
        resend = threading.Timer(REDELIVERY_DELAY_S, os.kill, (os.getpid(), stop.signum))
        resend.daemon = True
        resend.start()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.caught is not None:
            return
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.caught = Interrupted(signum)
        if not defer(self.caught):  # else raised when the tracking write in progress ends
            raise self.caught

    def message(self) -> str:
        """One line: which signal stopped the command, and its notes (how to continue)."""
        assert self.caught is not None
        notes = getattr(self.caught, "__notes__", [])
        return "; ".join([f"interrupted by {self.caught.args[0]}", *notes])


def hide_interrupted(logger_name: str) -> None:
    """Drop the records of ``logger_name`` that carry a ``KeyboardInterrupt`` traceback.

    Optuna logs a trial stopped by Ctrl-C or SIGTERM as failed, with the traceback; the one
    line that :class:`StopSignals` prints says all there is to say.
    """
    logging.getLogger(logger_name).addFilter(_not_interrupted)


def _not_interrupted(record: logging.LogRecord) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, KeyboardInterrupt)
