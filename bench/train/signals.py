"""Stopping on a signal: Ctrl-C (SIGINT) and SIGTERM stop training at an iteration boundary after
a checkpoint, SIGTERM outside the loop acts like Ctrl-C, and the exit status names the signal."""
from __future__ import annotations

import contextlib
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped training at an iteration boundary, after a checkpoint
    was written; ``signum``: which (for the exit status, :func:`exit_code`)."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = signum


class Terminated(KeyboardInterrupt):
    """SIGTERM outside the training loop: raised where Ctrl-C raises KeyboardInterrupt."""

    signum = signal.SIGTERM


def signal_name(signum: int) -> str:
    """How a stop message names the signal that caused it: nothing for Ctrl-C (or none),
    ``SIGTERM`` for it."""
    return "" if signum in (0, signal.SIGINT) else signal.Signals(signum).name


def stopped_by(stop: KeyboardInterrupt) -> str:
    """`` by SIGTERM`` for a stop SIGTERM caused, nothing for Ctrl-C: for the one-line message."""
    name = signal_name(getattr(stop, "signum", signal.SIGINT))
    return f" by {name}" if name else ""


def exit_code(stop: KeyboardInterrupt) -> int:
    """128 + the stopping signal's number (130 Ctrl-C, 143 SIGTERM): what shells, torchrun and
    SLURM report for a process that a signal ended, so a launcher sees why it stopped."""
    return 128 + getattr(stop, "signum", signal.SIGINT)


class StopOnSignal:
    """While training: the first Ctrl-C (SIGINT) or SIGTERM asks the loop to stop at the end of
    the iteration (it checkpoints, then raises :class:`Interrupted`); a second one of the same
    kind acts at once (the handler before this one: KeyboardInterrupt, or :class:`Terminated`).

    SIGTERM is what torchrun sends every worker when one fails or the launcher is stopped, and
    what SLURM sends on preemption or at the time limit; both follow with SIGKILL after a grace
    period (torchrun 30 s, SLURM's KillWait, 30 s by default), which one iteration and one
    checkpoint must fit in.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = 0  # the signal that asked to stop; 0: none
        self._previous = {}

    @property
    def by(self) -> str:
        """How the stop message names the signal: nothing for Ctrl-C, ``SIGTERM`` for it."""
        return signal_name(self.signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._request) for s in self.SIGNALS}
        return self

    def _request(self, signum, frame):
        self.signum = max(self.signum, signum)
        _restore(signum, self._previous[signum])

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            _restore(signum, previous)
        return False


def _restore(signum: int, previous) -> None:
    """Puts back the handler ``signal.signal`` returned (None: one not set from Python)."""
    if previous is None:
        previous = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
    signal.signal(signum, previous)


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """While a run lasts (in the main thread): SIGTERM raises :class:`Terminated` wherever
    Ctrl-C would raise KeyboardInterrupt, so that outside the training loop too it ends the run
    with one line and exit status 143 instead of killing the process silently."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        _restore(signal.SIGTERM, previous)
