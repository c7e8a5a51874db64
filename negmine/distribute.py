"""Distributors: run a pure function over a stream of inputs, in order, serially or on processes.

Swappable like img2dataset's: the pipeline only calls ``imap``. The process version keeps a bounded
number of tasks in flight, so a stream of a million images never sits in memory at once.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any


def _ignore_sigint() -> None:
    # Ctrl-C is the main process's to handle (it keeps the run resumable); workers just stop.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class SerialDistributor:
    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return map(fn, items)

    def close(self) -> None:
        pass


class ProcessDistributor:
    def __init__(self, workers: int, in_flight_per_worker: int = 8):
        # forkserver: pyarrow and tqdm start threads, and fork() with live threads can deadlock.
        ctx = multiprocessing.get_context("forkserver")
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_ignore_sigint)
        self._limit = workers * in_flight_per_worker

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        pending: deque = deque()
        for item in items:
            pending.append(self._pool.submit(fn, item))
            if len(pending) >= self._limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


def make_distributor(workers: int | None) -> SerialDistributor | ProcessDistributor:
    """workers=None: one per core (serial on one core); 0 or 1: in this process."""
    n = (os.cpu_count() or 1) if workers is None else workers
    return ProcessDistributor(n) if n > 1 else SerialDistributor()


__all__ = ["SerialDistributor", "ProcessDistributor", "make_distributor", "partial"]
