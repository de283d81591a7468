"""Every asked-for backend at once: a backend whose call fails (a full disk, a lost network)
gives one warning and is left out for the rest of the cell; the cell's training goes on."""
from __future__ import annotations

from . import registry


class FanOut:
    """``backends``: name -> backend (bench.track.base.Backend); ``log``: where the warning goes."""

    def __init__(self, backends: dict, log=print):
        self.backends, self.log = dict(backends), log
        self.identity: dict[str, dict] = {}  # name -> what its start returned

    @classmethod
    def create(cls, names: list[str], log=print) -> FanOut:
        """The backends of ``names``; one whose creation fails is left out (one warning)."""
        fan = cls({}, log)
        for name in names:
            fan.call_one(name, lambda name=name: fan.backends.__setitem__(name, registry.create(name)))
        return fan

    def start(self, run, previous: dict, resume_step: int) -> None:
        for name, backend in list(self.backends.items()):
            identity = self.call_one(name, lambda b=backend, n=name: b.start(
                run, previous.get(n), resume_step))
            if name in self.backends:
                self.identity[name] = identity

    def call(self, method: str, *args) -> None:
        """``backend.method(*args)`` on every backend still in."""
        for name, backend in list(self.backends.items()):
            self.call_one(name, lambda b=backend: getattr(b, method)(*args), method)

    def call_one(self, name: str, work, what: str = "start"):
        try:
            return work()
        except Exception as error:  # a tracker never fails the cell
            self.backends.pop(name, None)
            self.log(f"   warning: tracker {name} failed ({what}: {type(error).__name__}: {error}); "
                     "it logs nothing more for this cell, training goes on")
            return None
