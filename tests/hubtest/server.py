"""The test Hub's state: repos, the request log, the switches, two listening hosts (the Hub and
its storage host). See README.md beside this file."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from hubtest.faults import Faults

# The Hub stores files above this size in LFS/Xet and redirects their resolve URL to its storage host.
LFS_THRESHOLD = 1024


@dataclass
class Repo:
    repo_id: str
    refs: dict[str, Path]                       # revision name -> folder ("main", "refs/convert/parquet")
    gated: bool = False
    private: bool = False
    shas: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        for ref, folder in self.refs.items():
            h = hashlib.sha1(f"{self.repo_id}@{ref}".encode())
            for p in sorted(folder.rglob("*")):
                if p.is_file():              # content-addressed, as a commit is: a cache keyed by it stays right
                    h.update(str(p.relative_to(folder)).encode() + hashlib.sha1(p.read_bytes()).digest())
            self.shas[ref] = h.hexdigest()

    def folder(self, rev: str | None) -> tuple[str, Path] | None:
        rev = rev or "main"
        if rev in self.refs:
            return self.shas[rev], self.refs[rev]
        for ref, sha in self.shas.items():
            if rev == sha:
                return sha, self.refs[ref]
        return None


@dataclass
class Logged:
    method: str
    kind: str            # "api", "resolve" or "cdn"
    path: str
    range: str | None
    status: int
    bytes: int           # body bytes sent
    t: float             # time.monotonic() (for the pacing tests only: no outcome depends on it)
    answer: str | None = None   # the injected storage answer, if any (faults.ANSWERS)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    errors: list

    def handle_error(self, request, client_address):
        """A client that hangs up mid-answer (it read the status of an error and closed) is normal
        for a server; keep the rest for the tests to see, off stderr."""
        import sys

        self.errors.append(repr(sys.exc_info()[1]))


class HubServer:
    """`with HubServer() as hub: hub.add_repo(...); os.environ["HF_ENDPOINT"] = hub.endpoint`.

    `token`: the one token the Hub accepts; any other ``Authorization`` is answered 401 "Invalid
    credentials in Authorization header" (an expired HF_TOKEN), on public repos too; gated and
    private repos need it. `limits`: {"resolve"|"api"|"cdn": (n, seconds)} sliding-window limits in
    real time (pacing tests); `faults.hub_limits` turns on the Hub's own fixed windows instead, on
    the virtual clock. `url_ttl`: virtual seconds a signed storage URL stays valid."""

    def __init__(self, *, token: str | None = "hf_test_token", limits: dict | None = None, url_ttl: float = 3600):
        self.repos: dict[str, Repo] = {}
        self.renamed: dict[str, str] = {}        # old repo id -> new one (answered with a relative 307)
        self.token = token
        self.limits = dict(limits or {})
        self.url_ttl = url_ttl
        self.faults = Faults()
        self.clock = 0.0                         # virtual seconds: moved only by advance()
        self.log: list[Logged] = []
        self.errors: list[str] = []              # exceptions while answering (hang-ups mostly)
        self._windows: dict[str, deque] = {}
        self._fail: list[list] = []              # [kind, status, remaining]
        self._uses: dict[str, int] = {}          # signature -> requests it answered
        self._expired: set[str] = set()          # signatures expired by expire_urls()
        self._lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []

    # -- set-up ---------------------------------------------------------------------------------
    def add_repo(self, repo_id: str, folder: Path | None = None, *, refs: dict[str, Path] | None = None,
                 gated: bool = False, private: bool = False) -> Repo:
        refs = dict(refs or {})
        if folder is not None:
            refs["main"] = Path(folder)
        repo = Repo(repo_id, refs, gated, private)
        self.repos[repo_id] = repo
        return repo

    def rename(self, old: str, new: str) -> None:
        """Requests naming `old` get a relative 307 to `new` (a renamed or transferred repo)."""
        self.renamed[old] = new

    def fail_next(self, n: int, status: int = 503, kind: str = "cdn") -> None:
        """Answer the next n requests of this kind ("api", "resolve", "cdn") with `status` (a 429 with
        the Hub's Retry-After and RateLimit headers, one second)."""
        with self._lock:
            self._fail.append([kind, status, n])

    def advance(self, seconds: float) -> None:
        """Move the virtual clock (rate windows, signed-URL expiry)."""
        with self._lock:
            self.clock += max(0.0, float(seconds))

    def expire_urls(self) -> None:
        """Every signed storage URL handed out so far answers 403 from now on."""
        with self._lock:
            self._expired.update(self._uses)

    def spend(self, kind: str, n: int, authenticated: bool = True) -> None:
        """n requests of `kind` already used in this rate window (`faults.hub_limits`)."""
        self.faults.spend(kind, n, self.clock, authenticated)

    # -- the log --------------------------------------------------------------------------------
    def requests(self, kind: str | None = None) -> list[Logged]:
        with self._lock:
            return [e for e in self.log if kind is None or e.kind == kind]

    def bytes_sent(self, kind: str | None = None) -> int:
        """Body bytes of 200 and 206 answers (what a client downloads; error bodies are not data)."""
        return sum(e.bytes for e in self.requests(kind) if e.status in (200, 206))

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def __enter__(self) -> "HubServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        from hubtest.routes import handler

        for _ in range(2):                        # the Hub, then its storage host on a second host
            srv = _Server(("127.0.0.1", 0), handler(self))
            srv.errors = self.errors
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            self._servers.append(srv)
        self.endpoint = f"http://127.0.0.1:{self._servers[0].server_port}"
        self.cdn = f"http://localhost:{self._servers[1].server_port}"

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        self._servers.clear()

    # -- policy (used by routes) ----------------------------------------------------------------
    def lookup(self, repo_id: str) -> tuple[Repo | None, str | None]:
        """(the repo, None), or (None, the name to redirect to) for a renamed or re-cased repo."""
        if repo_id in self.repos:
            return self.repos[repo_id], None
        if repo_id in self.renamed:
            return None, self.renamed[repo_id]
        same = [r for r in self.repos if r.lower() == repo_id.lower()]
        return (None, same[0]) if same else (None, None)

    def sliding_limited(self, kind: str) -> float | None:
        """Seconds to wait when this request is over its real-time sliding-window limit, else None."""
        if kind not in self.limits:
            return None
        n, window = self.limits[kind]
        now = time.monotonic()
        with self._lock:
            q = self._windows.setdefault(kind, deque())
            while q and q[0] <= now - window:
                q.popleft()
            if len(q) >= n:
                return q[0] + window - now
            q.append(now)
        return None

    def injected(self, kind: str) -> int | None:
        with self._lock:
            for f in self._fail:
                if f[0] == kind and f[2] > 0:
                    f[2] -= 1
                    return f[1]
        return None

    def sign(self, repo_id: str, sha: str, path: str) -> str:
        """A new signed storage URL (each resolve hands out its own, as the Hub's carry a date)."""
        expires = int(self.clock + self.url_ttl)
        with self._lock:
            serial = len(self._uses)
            sig = self.signature(repo_id, sha, path, expires, serial)
            self._uses[sig] = 0
        return (f"{self.cdn}/cdn/{quote(repo_id)}/{sha}/{quote(path)}?X-Amz-Date={serial}&X-Amz-Expires={expires}"
                f"&X-Amz-Signature={sig}")

    @staticmethod
    def signature(repo_id: str, sha: str, path: str, expires: int, serial: int) -> str:
        return hashlib.sha256(f"{repo_id}/{sha}/{path}/{expires}/{serial}".encode()).hexdigest()[:16]

    def signed_ok(self, sig: str, expires: int) -> bool:
        """A signed URL is valid until its expiry (virtual clock), its use count, or expire_urls()."""
        with self._lock:
            if sig not in self._uses or sig in self._expired or expires < self.clock:
                return False
            uses = self.faults.url_uses
            if uses is not None and self._uses[sig] >= uses:
                return False
            self._uses[sig] += 1
            return True

    def record(self, entry: Logged) -> None:
        with self._lock:
            self.log.append(entry)
