"""Exact range reads of files in Hub repos, under the Hub's request budget.

Every byte negmine downloads from a Hub repo goes through `RangeFile` (parquet footers, pages
and row groups, zip central directories and members, whole tar shards, loose images, metadata
files, dataset cards): the ranges a plan needs, each fetched at most once (what was fetched is
kept in a sparse copy of the file under $NEGMINE_CACHE/ranges, per commit, so a resumed or
repeated run fetches nothing again), neighbouring ranges merged only when the gap between them is
under `MERGE_GAP`. No fsspec block cache, no read-ahead, and no `hf_hub_download`: with hf_xet
installed that downloads Xet files through its own client, outside the request budget and its
counts (see docs/guide/pools.md, "Every byte through one counted path").

A file's ``/resolve/`` URL is asked once (`transfer.locate`, a HEAD); the Hub answers LFS/Xet
files with a redirect to a signed storage URL, and the range reads go there. Only ``/resolve/``
and ``/api/`` URLs count against the Hub's rate limits (hf.co/docs/hub/rate-limits: "Resolvers:
all the URLs that contain a /resolve/ segment"), so a draw costs one resolver request per file,
not one per range. A signed location the storage host refuses (it expires after an hour) is asked
again; a redirect without X-Linked-Size leaves the size to the first range answer's Content-Range.
Faults are retried with backoff ($NEGMINE_HUB_RETRIES, default 4; $NEGMINE_HUB_BACKOFF seconds,
default 1; a 429 waits as its headers say), then refused in one line naming the file and what
came back (`transfer.get_range` says what counts as a fault).
"""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

from negmine.errors import HubRateLimited, HubUnavailable
from negmine.sources import budget, transfer

MERGE_GAP = 4 << 10           # bytes: two wanted ranges closer than this are fetched as one request
MAX_REQUEST = 1 << 30         # bytes: a merged request stops growing here (it is streamed to disk)
CONNECTIONS = int(os.environ.get("NEGMINE_HUB_CONNECTIONS", 8))   # range requests in flight per file
MAX_RELOCATIONS = 3           # expired locations asked again per request (each a resolver request)
MAX_RATE_LIMITED = 100        # 429s waited out per request before giving up (each waits as the server says)


def plan_requests(ranges: Sequence[tuple[int, int]], gap: int = MERGE_GAP, limit: int = MAX_REQUEST
                  ) -> list[tuple[int, int]]:
    """Merge sorted byte ranges [start, end) into requests: neighbours closer than `gap` bytes join,
    up to `limit` bytes a request (one range larger than that stays one request)."""
    out: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in ranges if b > a):
        if out and a - out[-1][1] < gap and max(b, out[-1][1]) - out[-1][0] <= limit:
            out[-1][1] = max(out[-1][1], b)
        elif out and a < out[-1][1]:          # overlapping but too large to merge: the rest only
            if b > out[-1][1]:
                out.append([out[-1][1], b])
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


class _Intervals:
    """Sorted, disjoint [start, end) intervals: what of a file is already here."""

    def __init__(self):
        self.starts: list[int] = []
        self.ends: list[int] = []

    def missing(self, a: int, b: int) -> list[tuple[int, int]]:
        out, pos = [], a
        k = max(0, bisect.bisect_right(self.starts, a) - 1)
        while k < len(self.starts) and self.starts[k] < b:
            s, e = self.starts[k], self.ends[k]
            if e > pos:
                if s > pos:
                    out.append((pos, s))
                pos = max(pos, e)
            k += 1
        if pos < b:
            out.append((pos, b))
        return out

    def add(self, a: int, b: int) -> None:
        lo = bisect.bisect_left(self.ends, a)          # first interval that ends at or after a
        hi = bisect.bisect_right(self.starts, b)       # intervals starting after b stay
        if lo < hi:
            a, b = min(a, self.starts[lo]), max(b, self.ends[hi - 1])
        self.starts[lo:hi] = [a]
        self.ends[lo:hi] = [b]


def _store_paths(path: str) -> tuple[str, str]:
    """Where the bytes fetched of a file at a commit are kept: a sparse copy of the file and the
    list of the ranges it holds, in $NEGMINE_CACHE/ranges (a commit's files never change, so
    whatever was fetched stays right: a resumed or repeated run downloads nothing twice)."""
    import hashlib

    from negmine.cache import cache_dir

    key = hashlib.sha256(path.encode()).hexdigest()[:32]
    folder = cache_dir("ranges")
    return str(folder / f"{key}.part"), str(folder / f"{key}.have")


class RangeFile:
    """One file of a Hub repo at a commit, read by exact byte ranges.

    `path`: ``hf://datasets/OWNER/NAME@SHA/PATH`` (what HfFileSystem and `datasets` list)."""

    def __init__(self, path: str, size: int | None = None):
        self.path = path
        self._size = size
        self._location: transfer.Location | None = None
        self._url: str | None = None               # the file's /resolve/ URL
        self._have = _Intervals()
        self._lock = threading.Lock()
        self._have_lock = threading.Lock()
        self._where_lock = threading.Lock()
        self._locating = threading.Lock()
        self._store, self._have_path = _store_paths(path)
        self._fd = os.open(self._store, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            with open(self._have_path, encoding="ascii") as f:
                for line in f:              # "start end" per fetched range; a torn last line is skipped
                    parts = line.split()
                    if len(parts) == 2 and all(x.isdigit() for x in parts) and line.endswith("\n"):
                        self._have.add(int(parts[0]), int(parts[1]))
                    elif len(parts) == 2 and parts[0] == "size" and parts[1].isdigit() and self._size is None:
                        self._size = int(parts[1])
        except OSError:
            pass

    def __del__(self):
        try:
            os.close(self._fd)
        except (OSError, AttributeError):
            pass

    def _remember(self, a: int, b: int) -> None:
        """Record [a, b) as here, after its bytes are written (a crash in between loses the range,
        never claims bytes that are not there)."""
        with self._have_lock:               # the fetches of one read() run on several threads
            self._have.add(a, b)
            with open(self._have_path, "a", encoding="ascii") as f:
                f.write(f"{a} {b}\n")

    def _learn_size(self, total: int | None) -> None:
        if total is not None and self._size is None:
            self._size = total
            with self._have_lock, open(self._have_path, "a", encoding="ascii") as f:
                f.write(f"size {total}\n")

    def __getstate__(self):
        raise TypeError("a RangeFile stays in the process that opened it")

    @property
    def size(self) -> int:
        """Bytes in the file: from the resolver (X-Linked-Size, or a small file's Content-Length),
        else from the Content-Range of a first one-byte range read."""
        if self._size is None and self._location is None:
            self._locate()
        if self._size is None:              # a redirect without X-Linked-Size: the storage host says it
            self._fetch_into_store((0, 1))
        return self._size

    def _resolve_url(self) -> str:
        if self._url is None:
            from huggingface_hub import hf_hub_url

            rest = self.path.removeprefix("hf://").removeprefix("datasets/")
            owner, name_rev, *file = rest.split("/")
            name, _, revision = name_rev.partition("@")
            self._url = hf_hub_url(f"{owner}/{name}", "/".join(file), repo_type="dataset",
                                   revision=unquote(revision) or None)
        return self._url

    def _locate(self) -> transfer.Location:
        """One resolver request (retried like any other): where the bytes are, and the size."""
        loc = self._retrying(lambda: transfer.locate(self._resolve_url(), self.path), "locating it")
        with self._where_lock:
            self._location = loc
        if loc.size is not None and self._size is None:
            self._learn_size(loc.size)
        return loc

    def read(self, ranges: Sequence[tuple[int, int | None]]) -> list[bytes]:
        """The bytes of each [start, end) (negative: from the end of the file; end None: to the
        end). Only what was not fetched before in this run is requested, merged by `plan_requests`."""
        spans = self._spans(ranges)
        self.fetch(spans)
        return [os.pread(self._fd, b - a, a) if b > a else b"" for a, b in spans]

    def _spans(self, ranges) -> list[tuple[int, int]]:
        size = self.size
        spans = []
        for a, b in ranges:
            a = size + a if a < 0 else a
            b = size if b is None else (size + b if b < 0 else b)
            spans.append((max(0, a), min(size, b)))
        return spans

    def fetch(self, spans: Sequence[tuple[int, int]]) -> None:
        """Have these [start, end) ranges here (fetched now unless they already are)."""
        with self._lock:
            requests = self.missing(spans)
            # Fetch what is missing, several requests at once (each a round trip to the storage host).
            if len(requests) > 1 and CONNECTIONS > 1:
                with ThreadPoolExecutor(min(CONNECTIONS, len(requests))) as pool:
                    list(pool.map(self._fetch_into_store, requests))
            else:
                for req in requests:
                    self._fetch_into_store(req)

    def local_copy(self) -> str:
        """A local path holding the whole file (fetched in as few requests as `MAX_REQUEST` allows,
        once per commit): for tar shards, read start to end and then by offset."""
        self.fetch([(0, self.size)])
        return self._store

    def read_all(self) -> bytes:
        """The whole file (a metadata file, a card, a loose image): one GET of its resolve URL
        when nothing of it is known yet (a small file is answered there; an LFS/Xet file's
        redirect is followed to the storage host), so a small file costs one resolver request."""
        if self._size is None and self._location is None:
            self._retrying(self._fetch_whole, "reading it whole")
        return self.read([(0, None)])[0]

    def _fetch_whole(self) -> None:
        loc = transfer.Location(self._resolve_url(), None, True)
        for _ in range(transfer.MAX_REDIRECTS):
            got = {}

            def keep(pos: int, chunk: bytes) -> None:
                os.pwrite(self._fd, chunk, pos)
                got["end"] = pos + len(chunk)

            try:
                total = transfer.get_range(loc, 0, None, None, keep, self.path)
            except transfer.Redirected as moved:
                # a renamed or re-cased repo (ask there), or an LFS/Xet file: read it whole from storage
                loc = moved.location
                self._learn_size(loc.size)
                continue
            with self._where_lock:
                self._location = loc
            self._learn_size(total)
            self._remember(0, got.get("end", 0))
            return
        raise transfer.Transient(f"more than {transfer.MAX_REDIRECTS} redirects")

    def missing(self, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """The requests `read(ranges)` would send now: what is not here yet, merged, and never
        across bytes already here (no byte is fetched twice)."""
        merged = plan_requests([m for a, b in ranges for m in self._have.missing(a, b)])
        return [m for a, b in merged for m in self._have.missing(a, b)]

    def _retrying(self, attempt, doing: str):
        """attempt(), retried on transient faults with backoff and on 429s as the server says; then
        one line naming the file and what came back (HubUnavailable, HubRateLimited)."""
        retries = int(os.environ.get("NEGMINE_HUB_RETRIES", 4))
        backoff = float(os.environ.get("NEGMINE_HUB_BACKOFF", 1.0))
        b_ = budget.current()
        faults = limited = 0
        while True:
            try:
                return attempt()
            except transfer.RateLimited as exc:
                limited += 1
                if limited > MAX_RATE_LIMITED:
                    raise HubRateLimited(f"the Hub kept answering 429 (rate limited) for {self.path} after "
                                         f"{MAX_RATE_LIMITED} waits; lower --hub-rate, or try again later") from None
                b_.add("retries")
                # the server says how long to wait: waiting is the answer, not a failure to count
                budget.CLOCK.sleep(exc.wait if exc.wait else backoff * 2 ** min(limited, 6))
            except (transfer.Transient, transfer.Expired) as exc:
                faults += 1
                if faults > retries:
                    raise HubUnavailable(f"cannot read {self.path} ({doing}): the Hub answered {exc} "
                                         f"{faults} times; check the network, or set HF_HUB_OFFLINE=1 "
                                         "to use the local cache") from None
                b_.add("retries")
                budget.CLOCK.sleep(backoff * 2 ** (faults - 1))
            except Exception as exc:
                if type(exc).__name__ == "OfflineModeIsEnabled":
                    raise HubUnavailable(f"cannot read {self.path}: HF_HUB_OFFLINE is set and it is not in the "
                                         "local cache") from None
                if not transfer.transient(exc):
                    raise
                faults += 1
                if faults > retries:
                    raise HubUnavailable(f"cannot reach the Hub for {self.path} ({type(exc).__name__}) after "
                                         f"{retries} retries; check the network, or set HF_HUB_OFFLINE=1 to "
                                         "use the local cache") from None
                b_.add("retries")
                budget.CLOCK.sleep(backoff * 2 ** (faults - 1))

    def _fetch_into_store(self, req: tuple[int, int]) -> None:
        """GET bytes [a, b) into the sparse copy, streamed, checked (`transfer.get_range`), retried.
        A location the storage host refuses is asked again from the resolver; refused again right
        after, it is an error (no loop)."""
        a, b = req

        def once():
            with self._locating:            # the fetches of one read() share one resolver request
                with self._where_lock:
                    loc = self._location
                fresh = loc is None
                if fresh:
                    loc = self._locate()
            relocated = 0
            while True:
                try:
                    total = transfer.get_range(loc, a, b, self._size,
                                               lambda pos, chunk: os.pwrite(self._fd, chunk, pos), self.path)
                    break
                except transfer.Expired:
                    relocated += 1
                    if fresh or relocated > MAX_RELOCATIONS:
                        raise HubUnavailable(f"the Hub's storage refused {self.path} even at a fresh location "
                                             "(HTTP 401/403 right after the resolver gave it); try again later"
                                             ) from None
                    with self._locating:
                        with self._where_lock:
                            if self._location is loc:      # else another thread asked already
                                self._location = None
                            current = self._location
                        # one this request asked for itself must work; another thread's may be used up
                        loc, fresh = (current, False) if current is not None else (self._locate(), True)
            self._learn_size(total)
            self._remember(a, b)

        self._retrying(once, f"bytes {a}-{b - 1}")

    def open(self) -> "SparseReader":
        return SparseReader(self)


class SparseReader:
    """A seekable binary file over a RangeFile, for pyarrow: every read is an exact range read
    (served from what was fetched before when it can be)."""

    def __init__(self, rf: RangeFile):
        self.rf = rf
        self.pos = 0
        self.closed = False

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else (self.pos + offset if whence == 1 else self.rf.size + offset)
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.rf.size if n is None or n < 0 else min(self.rf.size, self.pos + n)
        if end <= self.pos:
            return b""
        data = self.rf.read([(self.pos, end)])[0]
        self.pos = end
        return data

    def size(self) -> int:
        return self.rf.size

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
