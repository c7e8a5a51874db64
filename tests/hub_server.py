"""A local server that speaks the Hub's HTTP read API, for tests and benchmarks.

The real huggingface_hub client talks to it through ``HF_ENDPOINT``: repo info at a revision, tree
listing, paths-info, ``resolve`` (HEAD and GET, with Range), which redirects large files to a
second host (the storage CDN, as the real Hub does) where Range reads are served with 206 and a
range past the end gets 416. It answers with the Hub's error shapes (``X-Error-Code``
RepoNotFound / RevisionNotFound / GatedRepo / EntryNotFound, 401/403), limits resolver and API
requests over a sliding window with 429 + ``Retry-After`` + ``RateLimit`` headers, can inject 5xx
answers, and logs every request with the bytes it sent.

Repos are folders on disk in Hub layout, served as they are (files are read at request time).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

# The Hub stores files above this size in LFS/Xet and redirects their resolve URL to its CDN.
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
    t: float


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

    `token`: when set, gated and private repos need `Authorization: Bearer <token>`.
    `limits`: {"resolve": (n, seconds), "api": (n, seconds)} sliding-window request limits.
    `url_ttl`: seconds a CDN redirect stays valid (then 403, as an expired signed URL)."""

    def __init__(self, *, token: str | None = "hf_test_token", limits: dict | None = None, url_ttl: float = 3600):
        self.repos: dict[str, Repo] = {}
        self.token = token
        self.limits = dict(limits or {})
        self.url_ttl = url_ttl
        self.log: list[Logged] = []
        self.errors: list[str] = []              # exceptions while answering (hang-ups mostly)
        self._windows: dict[str, deque] = {}
        self._fail: list[list] = []              # [kind, status, remaining]
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

    def fail_next(self, n: int, status: int = 503, kind: str = "cdn") -> None:
        """Answer the next n requests of this kind ("api", "resolve", "cdn") with `status` (a 429 with
        the Hub's Retry-After and RateLimit headers, one second)."""
        with self._lock:
            self._fail.append([kind, status, n])

    def requests(self, kind: str | None = None) -> list[Logged]:
        with self._lock:
            return [e for e in self.log if kind is None or e.kind == kind]

    def bytes_sent(self, kind: str | None = None) -> int:
        return sum(e.bytes for e in self.requests(kind))

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def __enter__(self) -> "HubServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        handler = _handler(self)
        for _ in range(2):                        # the Hub, then its CDN on a second host
            srv = _Server(("127.0.0.1", 0), handler)
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

    # -- policy ---------------------------------------------------------------------------------
    def _limited(self, kind: str) -> float | None:
        """Seconds to wait when this request is over its sliding-window limit, else None."""
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

    def _injected(self, kind: str) -> int | None:
        with self._lock:
            for f in self._fail:
                if f[0] == kind and f[2] > 0:
                    f[2] -= 1
                    return f[1]
        return None

    def _sign(self, repo_id: str, sha: str, path: str) -> str:
        expires = int(time.time() + self.url_ttl)
        sig = hashlib.sha256(f"{repo_id}/{sha}/{path}/{expires}".encode()).hexdigest()[:16]
        return (f"{self.cdn}/cdn/{quote(repo_id)}/{sha}/{quote(path)}?Expires={expires}&Signature={sig}")


def _files(folder: Path, prefix: str = "") -> list[str]:
    base = folder / prefix if prefix else folder
    if base.is_file():
        return [prefix]
    return sorted(str(p.relative_to(folder)) for p in base.rglob("*") if p.is_file()) if base.is_dir() else []


def _entry(folder: Path, rel: str) -> dict:
    p = folder / rel
    if p.is_dir():
        return {"type": "directory", "path": rel, "oid": hashlib.sha1(rel.encode()).hexdigest()}
    size = p.stat().st_size
    oid = hashlib.sha1(f"{rel}:{size}".encode()).hexdigest()
    e = {"type": "file", "path": rel, "size": size, "oid": oid}
    if size > LFS_THRESHOLD:
        e["lfs"] = {"oid": hashlib.sha256(f"{rel}:{size}".encode()).hexdigest(), "size": size, "pointerSize": 134}
    return e


def _handler(hub: HubServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):             # the request log is hub.log
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None, kind: str = "api") -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            sent = 0
            if self.command != "HEAD":
                self.wfile.write(body)
                sent = len(body)
            with hub._lock:
                hub.log.append(Logged(self.command, kind, self.path, self.headers.get("Range"), status, sent,
                                      time.monotonic()))

        def _error(self, status: int, code: str | None, message: str, kind: str, extra: dict | None = None):
            headers = {"Content-Type": "application/json", "X-Error-Message": message, **(extra or {})}
            if code:
                headers["X-Error-Code"] = code
            self._send(status, json.dumps({"error": message}).encode(), headers, kind)

        def _json(self, data, kind: str = "api") -> None:
            self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"}, kind)

        def _authorised(self) -> bool:
            return hub.token is None or self.headers.get("Authorization") == f"Bearer {hub.token}"

        def _repo(self, repo_id: str, rev: str | None, kind: str):
            """(repo, sha, folder), or None after answering with the Hub's error."""
            repo = hub.repos.get(repo_id)
            if repo is None or (repo.private and not self._authorised()):
                self._error(401 if not self._authorised() else 404, "RepoNotFound",
                            "Repository not found", kind)
                return None
            if repo.gated and not self._authorised():
                self._error(401, "GatedRepo", f"Access to dataset {repo_id} is restricted. You must have access "
                            "to it and be authenticated to access it. Please log in.", kind)
                return None
            got = repo.folder(rev)
            if got is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", kind)
                return None
            return repo, got[0], got[1]

        def _gate(self, kind: str) -> bool:
            """Rate limits and injected failures; True when the request was answered here."""
            wait = hub._limited(kind)
            if wait is not None:
                n, window = hub.limits[kind]
                secs = max(1, int(wait + 0.999))
                self._error(429, None, "Too Many Requests", kind, {
                    "Retry-After": str(secs), "RateLimit": f'"{kind}";r=0;t={secs}',
                    "RateLimit-Policy": f'"fixed window";"{kind}";q={n};w={int(window)}'})
                return True
            status = hub._injected(kind)
            if status == 429:                    # as the Hub says it: wait a second, a fixed window
                self._error(429, None, "Too Many Requests", kind, {
                    "Retry-After": "1", "RateLimit": f'"{kind}";r=0;t=1'})
                return True
            if status is not None:
                self._error(status, None, "injected failure", kind)
                return True
            return False

        # -- routes -----------------------------------------------------------------------------
        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            url = urlsplit(self.path)
            parts = [unquote(p) for p in url.path.split("/")[1:]]
            query = parse_qs(url.query)
            try:
                if parts[:1] == ["cdn"]:
                    return self._cdn(parts[1:], query)
                if parts[:2] == ["api", "datasets"]:
                    return self._api(parts[2:], query)
                if parts[:1] == ["datasets"] and len(parts) > 4 and parts[3] == "resolve":
                    return self._resolve(f"{parts[1]}/{parts[2]}", parts[4], "/".join(parts[5:]))
            except (BrokenPipeError, ConnectionResetError):
                return
            self._error(404, None, f"no route {url.path}", "api")

        def do_POST(self):
            url = urlsplit(self.path)
            parts = [unquote(p) for p in url.path.split("/")[1:]]
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            if parts[:2] == ["api", "datasets"] and len(parts) >= 6 and parts[4] == "paths-info":
                if self._gate("api"):
                    return
                got = self._repo(f"{parts[2]}/{parts[3]}", parts[5], "api")
                if got is None:
                    return
                _, _, folder = got
                paths = form.get("paths", [])
                return self._json([_entry(folder, p) for p in paths if (folder / p).exists()])
            self._error(404, None, f"no route {url.path}", "api")

        def _api(self, parts: list[str], query: dict):
            if self._gate("api"):
                return
            repo_id = "/".join(parts[:2])
            rest = parts[2:]
            if not rest or rest[0] == "revision":
                rev = rest[1] if len(rest) > 1 else None
                got = self._repo(repo_id, rev, "api")
                if got is None:
                    return
                repo, sha, folder = got
                files = _files(folder)
                card = {}
                if (folder / "README.md").is_file():
                    import yaml

                    text = (folder / "README.md").read_text()
                    if text.startswith("---"):
                        card = yaml.safe_load(text.split("---")[1]) or {}
                return self._json({"_id": sha[:24], "id": repo_id, "author": repo_id.split("/")[0], "sha": sha,
                                   "private": repo.private, "gated": "auto" if repo.gated else False,
                                   "disabled": False, "downloads": 0, "likes": 0, "tags": [],
                                   "cardData": card, "siblings": [{"rfilename": f} for f in files],
                                   "lastModified": "2026-01-01T00:00:00.000Z",
                                   "createdAt": "2026-01-01T00:00:00.000Z"})
            if rest[0] == "tree" and len(rest) >= 2:
                got = self._repo(repo_id, rest[1], "api")
                if got is None:
                    return
                _, _, folder = got
                prefix = "/".join(rest[2:]).strip("/")
                base = folder / prefix if prefix else folder
                if prefix and not base.exists():
                    return self._error(404, "EntryNotFound", f"{prefix} does not exist", "api")
                recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
                if recursive:
                    entries = sorted(str(p.relative_to(folder)) for p in base.rglob("*"))
                else:
                    entries = sorted(str(p.relative_to(folder)) for p in base.iterdir())
                return self._json([_entry(folder, e) for e in entries])
            if rest[0] == "refs":
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(404, "RepoNotFound", "Repository not found", "api")
                branches = [{"name": r, "ref": f"refs/heads/{r}", "targetCommit": repo.shas[r]}
                            for r in repo.refs if not r.startswith("refs/")]
                converts = [{"name": r.rsplit("/", 1)[-1], "ref": r, "targetCommit": repo.shas[r]}
                            for r in repo.refs if r.startswith("refs/convert/")]
                return self._json({"branches": branches, "converts": converts, "tags": []})
            self._error(404, None, f"no route {'/'.join(parts)}", "api")

        def _resolve(self, repo_id: str, rev: str, path: str):
            if self._gate("resolve"):
                return
            got = self._repo(repo_id, rev, "resolve")
            if got is None:
                return
            _, sha, folder = got
            p = folder / path
            if not p.is_file():
                return self._error(404, "EntryNotFound", f"{path} does not exist on {rev}", "resolve")
            size = p.stat().st_size
            entry = _entry(folder, path)
            headers = {"X-Repo-Commit": sha, "ETag": f'"{entry["oid"]}"'}
            if size > LFS_THRESHOLD:
                headers.update({"Location": hub._sign(repo_id, sha, path), "X-Linked-Size": str(size),
                                "X-Linked-Etag": f'"{entry["lfs"]["oid"]}"'})
                return self._send(302, b"", headers, "resolve")
            self._serve_file(p, headers, "resolve")

        def _cdn(self, parts: list[str], query: dict):
            if self._gate("cdn"):
                return
            # /cdn/<owner>/<name>/<sha>/<path...>
            repo_id, sha, path = f"{parts[0]}/{parts[1]}", parts[2], "/".join(parts[3:])
            expires = int(query.get("Expires", ["0"])[0])
            sig = hashlib.sha256(f"{repo_id}/{sha}/{path}/{expires}".encode()).hexdigest()[:16]
            if query.get("Signature", [""])[0] != sig or expires < time.time():
                return self._error(403, None, "Request has expired", "cdn")
            repo = hub.repos.get(repo_id)
            got = repo.folder(sha) if repo else None
            if got is None or not (got[1] / path).is_file():
                return self._error(404, None, "NoSuchKey", "cdn")
            self._serve_file(got[1] / path, {"ETag": f'"{sha}"'}, "cdn")

        def _serve_file(self, p: Path, headers: dict, kind: str):
            size = p.stat().st_size
            rng = self.headers.get("Range")
            headers = {**headers, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
            if not rng:
                if self.command == "HEAD":
                    return self._head(size, headers, kind)
                return self._send(200, p.read_bytes(), headers, kind)
            try:
                unit, spec = rng.split("=", 1)
                a, _, b = spec.partition("-")
                if unit.strip() != "bytes" or "," in spec:
                    raise ValueError
                if a == "":                      # suffix range: the last b bytes
                    start, end = max(0, size - int(b)), size - 1
                else:
                    start, end = int(a), (int(b) if b else size - 1)
            except ValueError:
                return self._error(400, None, f"bad Range {rng}", kind)
            if start >= size or start > end:
                return self._error(416, None, "Requested Range Not Satisfiable", kind,
                                   {"Content-Range": f"bytes */{size}"})
            end = min(end, size - 1)
            with open(p, "rb") as f:
                body = os.pread(f.fileno(), end - start + 1, start)
            self._send(206, body, {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}, kind)

        def _head(self, size: int, headers: dict, kind: str):
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with hub._lock:
                hub.log.append(Logged("HEAD", kind, self.path, None, 200, 0, time.monotonic()))

    return Handler
