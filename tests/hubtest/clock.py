"""A virtual clock for the client side: installed as `negmine.sources.budget.CLOCK`, its sleeps
move the test Hub's clock instead of waiting, so a 5-minute rate window passes in no time and no
outcome depends on the machine's speed."""

from __future__ import annotations

import threading


class VirtualClock:
    """now() starts at 0; sleep(s) adds s to it and to the hub's clock (`HubServer.advance`)."""

    def __init__(self, hub=None):
        self.t = 0.0
        self.slept: list[float] = []
        self.hub = hub
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            self.t += seconds
            self.slept.append(seconds)
        if self.hub is not None:
            self.hub.advance(seconds)
