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
    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any], batch: int = 1) -> Iterator[Any]:
        return map(fn, items)

    def close(self) -> None:
        pass


def _run_batch(fn: Callable[[Any], Any], batch: list) -> list:
    return [fn(x) for x in batch]


class ProcessDistributor:
    """`imap(fn, items, batch=N)` sends items in batches of up to N (and up to `batch_bytes` of
    bytes items): for cheap work, such as hashing a small JPEG, a task per item costs more in
    pickling and locking than the work. The default, one item a task, suits heavy items (a cutout
    of a large photo), whose results should not pile up in a batch."""

    def __init__(self, workers: int, in_flight_per_worker: int = 8, batch_bytes: int = 2 << 20):
        # forkserver: pyarrow and tqdm start threads, and fork() with live threads can deadlock.
        ctx = multiprocessing.get_context("forkserver")
        # the fork server imports the worker code once; each worker then starts as a fork of it
        # instead of importing numpy, Pillow and negmine again (~0.4 s of CPU each)
        ctx.set_forkserver_preload(["negmine.draw", "negmine.synthetic"])
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_ignore_sigint)
        self._workers, self._per_worker, self._bytes = workers, in_flight_per_worker, batch_bytes

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any], batch: int = 1) -> Iterator[Any]:
        # tasks in flight: enough to keep every worker busy, few enough to bound memory
        limit = self._workers * (self._per_worker if batch == 1 else 3)
        pending: deque = deque()
        chunk: list = []
        size = 0
        for item in items:
            chunk.append(item)
            size += len(item) if isinstance(item, (bytes, bytearray, memoryview)) else 0
            if len(chunk) < batch and size < self._bytes:
                continue
            pending.append(self._pool.submit(_run_batch, fn, chunk))
            chunk, size = [], 0
            if len(pending) >= limit:
                yield from pending.popleft().result()
        if chunk:
            pending.append(self._pool.submit(_run_batch, fn, chunk))
        while pending:
            yield from pending.popleft().result()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


def make_distributor(workers: int | None) -> SerialDistributor | ProcessDistributor:
    """workers=None: one per core (serial on one core); 0 or 1: in this process."""
    n = (os.cpu_count() or 1) if workers is None else workers
    return ProcessDistributor(n) if n > 1 else SerialDistributor()


__all__ = ["SerialDistributor", "ProcessDistributor", "make_distributor", "partial"]
