"""Distributors: run a pure function over a stream of inputs, in order, serially, on processes or
on a Ray cluster.

Swappable like img2dataset's: the pipeline only calls ``imap``. The process and Ray versions keep a
bounded number of tasks in flight, so a stream of a million images never sits in memory at once.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

from negmine.errors import NegmineError


def _worker_init(main_pid: int) -> None:
    # Ctrl-C is the main process's to handle (it keeps the run resumable); workers just stop.
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(main_pid,), daemon=True, name="negmine-orphan-watch").start()


def _exit_with(main_pid: int, every: float = 1.0) -> None:
    """Exit this worker once the main process is gone (SIGKILL, OOM killer). Nothing else tells it:
    a worker's parent is the fork server, and each worker holds both ends of the pool's queues, so
    it would wait forever on a full result pipe nobody reads, holding its memory and the caller's
    stderr. A dead main that its own parent has not reaped yet is a zombie: that counts as gone."""
    import time

    while True:
        time.sleep(every)
        try:
            with open(f"/proc/{main_pid}/stat", "rb") as f:
                gone = f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
        except FileNotFoundError:
            gone = True
        except OSError:                  # no /proc (not Linux): whether the pid exists at all
            try:
                os.kill(main_pid, 0)
                gone = False
            except ProcessLookupError:
                gone = True
            except OSError:
                gone = False
        if gone:
            os._exit(1)


class SerialDistributor:
    """Runs everything in this process (one core, or --workers 1)."""

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any], batch: int = 1) -> Iterator[Any]:
        return map(fn, items)

    def close(self) -> None:
        pass


def _run_batch(fn: Callable[[Any], Any], batch: list) -> list:
    return [fn(x) for x in batch]


def _result(future) -> list:
    """A batch's results; a worker process that died (the OOM killer, a crash in a native decoder)
    ends the run as one line, resumable as a dead Ray worker does, not with the pool's traceback.
    The task's own exceptions come through as themselves (the draw's tasks turn per-image failures
    into reasons, so they raise only for what should end a run)."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise EngineFailed(f"a worker process died ({str(exc).splitlines()[0] or 'killed'}); a signal or an "
                           "out-of-memory kill ends one, so would a crash in an image decoder") from None


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
        ctx.set_forkserver_preload(["negmine.sampling.draw", "negmine.synthetic.command"])
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                                         initargs=(os.getpid(),))
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
                yield from _result(pending.popleft())
        if chunk:
            pending.append(self._pool.submit(_run_batch, fn, chunk))
        while pending:
            yield from _result(pending.popleft())

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


ENGINES = ("local", "ray")
# a run's options that choose the engine: where the work runs, never what is written (the output is
# byte-identical), so they stay out of negmine.json and of the run key a --resume must match
ENGINE_OPTIONS = ("engine", "ray_address")


class EngineFailed(NegmineError):
    """A worker or node of the engine died: not the input's fault, so the run stays resumable."""

    resumable = True


class RayDistributor:
    """`imap` on Ray tasks: the same batching, ordering and bound on tasks in flight as
    ProcessDistributor, so the pipeline cannot tell them apart. Connects to `address` (or
    $RAY_ADDRESS); without one it starts a local Ray with `workers` CPUs (default: every core).
    A Ray this process had already started (a library caller's own `ray.init`) is used as it is and
    left running; one started here is shut down by `close()`.

    The workers get the function's arguments by value and write where the function says (the run's
    staging folder): on one machine that is the local disk; on a cluster it must be storage every
    node sees at the same path (see docs/guide/scale-out.md)."""

    def __init__(self, workers: int | None = None, address: str | None = None, in_flight_per_worker: int = 8,
                 batch_bytes: int = 2 << 20):
        ray = _import_ray()
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._owned = not ray.is_initialized()
        if self._owned:
            # quiet: worker logs stay in Ray's log folder (negmine's own errors come back as exceptions),
            # no dashboard process; a library user who wants either starts Ray first
            kw: dict[str, Any] = dict(log_to_driver=False, include_dashboard=False, logging_level="ERROR",
                                      configure_logging=True)
            if address:
                _check_reachable(address)
                kw["address"] = address
            else:
                kw["num_cpus"] = workers or os.cpu_count() or 1
                kw["address"] = "local"      # never join a cluster by accident ($RAY_ADDRESS was empty)
            try:
                ray.init(**kw)
            except Exception as exc:         # ConnectionError, RuntimeError, ValueError: one line either way
                raise NegmineError(f"cannot start Ray{' at ' + address if address else ''}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        self._ray = ray
        self._task = ray.remote(_run_batch).options(max_retries=0)   # a failed batch is an error, not a retry
        self._workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._per_worker, self._bytes = in_flight_per_worker, batch_bytes

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any], batch: int = 1) -> Iterator[Any]:
        """fn over items on Ray tasks, results in input order (batches as ProcessDistributor's);
        a task's exception is raised here as itself."""
        ray = self._ray
        fn_ref = ray.put(fn)                 # shipped once, not with every task
        limit = self._workers * (self._per_worker if batch == 1 else 3)
        pending: deque = deque()
        chunk: list = []
        size = 0
        try:
            for item in items:
                chunk.append(item)
                size += len(item) if isinstance(item, (bytes, bytearray, memoryview)) else 0
                if len(chunk) < batch and size < self._bytes:
                    continue
                pending.append(self._task.remote(fn_ref, chunk))
                chunk, size = [], 0
                if len(pending) >= limit:
                    yield from self._get(pending.popleft())
            if chunk:
                pending.append(self._task.remote(fn_ref, chunk))
            while pending:
                yield from self._get(pending.popleft())
        finally:
            for ref in pending:              # an error, or a caller that stopped early: drop the rest
                try:
                    ray.cancel(ref)
                except Exception:            # noqa: BLE001 - Ray already shut down (a generator closed late): nothing runs
                    break

    def _get(self, ref: Any) -> list:
        from ray.exceptions import RayError, RayTaskError

        try:
            return self._ray.get(ref)
        except RayTaskError as exc:          # the worker's own exception, as the local engines raise it
            if isinstance(exc.cause, BaseException):
                raise exc.cause from None
            raise EngineFailed(f"a Ray task failed: {str(exc).splitlines()[0]}") from None
        except RayError as exc:              # a worker or node died
            raise EngineFailed(f"a Ray worker failed: {str(exc).splitlines()[0]}") from None

    def close(self) -> None:
        """Shut down the local Ray this distributor started, or leave the cluster it joined (the
        cluster keeps running); a Ray the caller had initialised is left as it is."""
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


def _import_ray():
    try:
        import ray
    except ImportError:
        raise NegmineError("--engine ray needs Ray: pip install 'negmine[ray]'") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds with one line when a host:port address does not answer: ray.init itself
    retries an unreachable cluster for minutes, printing warnings. 'auto' and the like are Ray's
    to resolve (it fails fast when no cluster is running)."""
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise NegmineError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


@contextmanager
def engine_session(engine: str, workers: int | None = None, address: str | None = None) -> Iterator[None]:
    """Hold the engine for a command that makes several distributors in turn: with "ray", Ray is
    started (or joined) once here, the distributors made inside reuse it, and it is shut down on
    leaving; "local" needs nothing held (a process pool is cheap to start again)."""
    if engine != "ray":
        yield
        return
    held = RayDistributor(workers, address)
    try:
        yield
    finally:
        held.close()


def make_distributor(workers: int | None, engine: str = "local", address: str | None = None
                     ) -> SerialDistributor | ProcessDistributor | RayDistributor:
    """engine "local": workers=None one process per core (serial on one core), 0 or 1 in this
    process. engine "ray": Ray tasks, on the cluster at `address` (or $RAY_ADDRESS), else on a
    local Ray with `workers` CPUs (default every core)."""
    if engine == "ray":
        return RayDistributor(workers, address)
    if engine != "local":
        raise NegmineError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    n = (os.cpu_count() or 1) if workers is None else workers
    return ProcessDistributor(n) if n > 1 else SerialDistributor()


__all__ = ["SerialDistributor", "ProcessDistributor", "RayDistributor", "ENGINES", "ENGINE_OPTIONS", "EngineFailed",
           "engine_session", "make_distributor", "partial"]
