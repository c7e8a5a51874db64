"""Exact range reads of files in Hub repos, under the Hub's request budget.

Every byte negmine downloads from a Hub repo goes through `RangeFile.read(ranges)`: the ranges a
plan needs (a footer, label column chunks, image pages or row groups), each fetched at most once
(what was fetched is kept in a sparse copy of the file under $NEGMINE_CACHE/ranges, per commit, so
a resumed or repeated run fetches nothing again), neighbouring ranges merged only when the gap
between them is under `MERGE_GAP`. No fsspec block cache, no read-ahead.

A file's ``/resolve/`` URL is asked once (a HEAD, as ``huggingface_hub.get_hf_file_metadata`` does);
the Hub answers large files with a redirect to its storage CDN, and the range reads go to that
location, as huggingface_hub's own accelerated downloads did. Only ``/resolve/`` and ``/api/`` URLs
count against the Hub's rate limits (hf.co/docs/hub/rate-limits: "Resolvers: all the URLs that
contain a /resolve/ segment"), so a draw costs one resolver request per shard, not one per range;
a location that expires (403 from the CDN) is asked again. Requests are counted and paced by
`budget` (the run's request budget).
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from negmine.errors import HubUnavailable, SourceNotFound
from negmine.sources import hub
from negmine.sources.budget import current as budget_now, retry_after

MERGE_GAP = 4 << 10           # bytes: two wanted ranges closer than this are fetched as one request
MAX_REQUEST = 1 << 30         # bytes: a merged request stops growing here (it is streamed to disk)
CONNECTIONS = int(os.environ.get("NEGMINE_HUB_CONNECTIONS", 8))   # range requests in flight per file
MAX_RATE_LIMITED = 100        # 429s waited out per range before giving up (each waits as the server says)


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
        self._location: str | None = None
        self._url: str | None = None               # the file's /resolve/ URL
        self._have = _Intervals()
        self._lock = threading.Lock()
        self._have_lock = threading.Lock()
        self._store, self._have_path = _store_paths(path)
        self._fd = os.open(self._store, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            with open(self._have_path, encoding="ascii") as f:
                for line in f:              # "start end" per fetched range; a torn last line is skipped
                    parts = line.split()
                    if len(parts) == 2 and all(x.isdigit() for x in parts) and line.endswith("\n"):
                        self._have.add(int(parts[0]), int(parts[1]))
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

    def __getstate__(self):
        raise TypeError("a RangeFile stays in the process that opened it")

    @property
    def size(self) -> int:
        if self._size is None:
            self._locate()
        return self._size

    def _resolve_url(self) -> str:
        if self._url is None:
            from huggingface_hub import HfFileSystem

            self._url = HfFileSystem().url(self.path.removeprefix("hf://"))
        return self._url

    def _locate(self) -> str:
        """One resolver request: where the bytes are (the CDN location for large files) and the size."""
        from huggingface_hub import get_hf_file_metadata
        from huggingface_hub import errors as hf_errors

        try:
            meta = hub.retrying(lambda: get_hf_file_metadata(self._resolve_url()))
        except hf_errors.EntryNotFoundError:
            raise SourceNotFound(f"{self.path} does not exist") from None
        self._location = meta.location
        if meta.size is not None:
            self._size = int(meta.size)
        return self._location

    def read(self, ranges: Sequence[tuple[int, int | None]]) -> list[bytes]:
        """The bytes of each [start, end) (negative: from the end of the file; end None: to the
        end). Only what was not fetched before in this run is requested, merged by `plan_requests`."""
        size = self.size
        spans = []
        for a, b in ranges:
            a = size + a if a < 0 else a
            b = size if b is None else (size + b if b < 0 else b)
            spans.append((max(0, a), min(size, b)))
        with self._lock:
            requests = self.missing(spans)
            # Fetch what is missing, several requests at once (each a round trip to the CDN).
            if len(requests) > 1 and CONNECTIONS > 1:
                with ThreadPoolExecutor(min(CONNECTIONS, len(requests))) as pool:
                    list(pool.map(self._fetch_into_store, requests))
            else:
                for req in requests:
                    self._fetch_into_store(req)
        return [os.pread(self._fd, b - a, a) if b > a else b"" for a, b in spans]

    def missing(self, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """The requests `read(ranges)` would send now: what is not here yet, merged, and never
        across bytes already here (no byte is fetched twice)."""
        merged = plan_requests([m for a, b in ranges for m in self._have.missing(a, b)])
        return [m for a, b in merged for m in self._have.missing(a, b)]

    def _fetch_into_store(self, req: tuple[int, int]) -> None:
        """GET bytes [a, b) into the scratch file, streamed (memory stays at one chunk however
        large the range), with retries: a 429 waits as the server says, 5xx and dropped connections
        back off ($NEGMINE_HUB_RETRIES, $NEGMINE_HUB_BACKOFF), an expired CDN location is asked
        again once."""
        from huggingface_hub.utils import build_hf_headers, get_session

        a, b = req
        retries = int(os.environ.get("NEGMINE_HUB_RETRIES", 4))
        backoff = float(os.environ.get("NEGMINE_HUB_BACKOFF", 1.0))
        b_ = budget_now()
        relocated = False
        attempt = limited = 0
        while True:
            location = self._location or self._locate()
            same_host = urlsplit(location).netloc == urlsplit(self._resolve_url()).netloc
            # the token goes to the Hub only, never to the storage host
            headers = build_hf_headers() if same_host else {}
            headers["Range"] = f"bytes={a}-{b - 1}"
            headers["Accept-Encoding"] = "identity"
            try:
                with get_session().stream("GET", location, headers=headers, follow_redirects=True) as r:
                    status, rheaders = r.status_code, r.headers
                    if status in (200, 206):
                        pos, skip = a, (a if status == 200 else 0)   # 200: a server that ignores Range
                        for chunk in r.iter_bytes(1 << 20):
                            if skip:
                                cut = min(skip, len(chunk))
                                chunk, skip = chunk[cut:], skip - cut
                            chunk = chunk[:b - pos]
                            if chunk:
                                os.pwrite(self._fd, chunk, pos)
                                pos += len(chunk)
                            if pos >= b:
                                break
                        if status == 200:
                            b_.add("whole_file_answers")
                        if pos != b:
                            raise HubUnavailable(f"{self.path}: asked for {b - a} bytes at {a}, got {pos - a}")
                        self._remember(a, b)
                        return
            except HubUnavailable:
                raise
            except Exception as exc:
                if hub.transient(exc) and attempt < retries:
                    attempt += 1
                    b_.add("retries")
                    time.sleep(backoff * 2 ** (attempt - 1))
                    continue
                raise HubUnavailable(f"cannot reach the Hub for {self.path} ({type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else ''}) after retries") from None
            if status in (401, 403, 404, 410) and not same_host and not relocated:
                relocated = True           # a signed CDN location that expired: ask the resolver again
                self._location = None
                continue
            if status == 416:
                raise SourceNotFound(f"{self.path}: bytes {a}-{b} are past its end (the file changed?)")
            if status == 429 and limited < MAX_RATE_LIMITED:
                # the server says how long to wait: waiting is the answer, not a failure to count
                limited += 1
                b_.add("retries")
                wait = retry_after(rheaders)
                time.sleep(wait + 1 if wait else backoff * 2 ** min(limited, 6))
                continue
            if status >= 500 and attempt < retries:
                attempt += 1
                b_.add("retries")
                time.sleep(backoff * 2 ** (attempt - 1))
                continue
            if status == 429:
                raise HubUnavailable(f"the Hub kept answering 429 (rate limited) for {self.path} after {limited} "
                                     "waits; lower --hub-rate, or try again later")
            if status in (401, 403) and not same_host:
                raise HubUnavailable(f"the Hub's storage refused {self.path} (HTTP {status}) even at a "
                                     "fresh location; try again later")
            if status in (401, 403):
                from negmine.errors import HubAuthError

                raise HubAuthError(f"{self.path}: access denied (HTTP {status}); log in with "
                                   "`hf auth login` or set HF_TOKEN")
            raise HubUnavailable(f"cannot read {self.path} (HTTP {status}) after retries; check the "
                                 "network, or set HF_HUB_OFFLINE=1 to use the local cache")

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
