"""HTTP answers of the test Hub: the read API (repo info, tree, paths-info, refs), ``resolve``
(HEAD and GET, with Range; LFS files redirected to the storage host) and the storage host's signed
URLs, with the Hub's error shapes and the faults `Faults` switches on."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from hubtest.faults import ratelimit_headers
from hubtest.server import LFS_THRESHOLD, HubServer, Logged

INVALID_TOKEN = "Invalid credentials in Authorization header"


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
        e["xetHash"] = hashlib.sha256(f"xet:{rel}:{size}".encode()).hexdigest()
    return e


def handler(hub: HubServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):             # the request log is hub.log
            pass

        def _log(self, status: int, sent: int, kind: str, answer: str | None = None) -> Logged:
            # logged before the body goes out: a client that has read the answer finds it logged
            entry = Logged(self.command, kind, self.path, self.headers.get("Range"), status, sent,
                           time.monotonic(), answer)
            hub.record(entry)
            return entry

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None, kind: str = "api",
                  answer: str | None = None, length: int | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            entry = self._log(status, len(body) if self.command != "HEAD" else 0, kind, answer)
            self.end_headers()
            if self.command != "HEAD":
                sent = 0
                try:
                    for k in range(0, len(body), 1 << 16):     # a client that hangs up early stops the count
                        self.wfile.write(body[k:k + (1 << 16)])
                        sent += len(body[k:k + (1 << 16)])
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                    entry.bytes = sent

        def _error(self, status: int, code: str | None, message: str, kind: str, extra: dict | None = None):
            headers = {"Content-Type": "application/json", "X-Error-Message": message, **(extra or {})}
            if code:
                headers["X-Error-Code"] = code
            self._send(status, json.dumps({"error": message}).encode(), headers, kind)

        def _json(self, data, kind: str = "api") -> None:
            self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"}, kind)

        def _auth(self) -> bool | None:
            """True: the valid token; False: none; None: a token the Hub refuses."""
            got = self.headers.get("Authorization")
            if not got:
                return False
            return True if hub.token is not None and got == f"Bearer {hub.token}" else None

        def _repo(self, repo_id: str, rev: str | None, kind: str):
            """(repo, sha, folder), or None after answering with the Hub's error (or a redirect)."""
            auth = self._auth()
            repo, moved = hub.lookup(repo_id)
            if moved is not None:
                # renamed or re-cased: a relative 307 to the same path under the new name
                location = re.sub(f"/{re.escape(repo_id)}(?=/|$|\\?)", f"/{moved}", self.path, count=1)
                self._send(307, b"", {"Location": location}, kind)
                return None
            if repo is None or (repo.private and not auth):
                self._error(401 if not auth else 404, "RepoNotFound", "Repository not found", kind)
                return None
            if repo.gated and not auth:
                self._error(401, "GatedRepo", f"Access to dataset {repo_id} is restricted. You must have access "
                            "to it and be authenticated to access it. Please log in.", kind)
                return None
            got = repo.folder(rev)
            if got is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", kind)
                return None
            return repo, got[0], got[1]

        def _gate(self, kind: str) -> bool:
            """Token check, rate limits and injected failures; True when the request was answered here."""
            auth = self._auth()
            if auth is None and kind != "cdn":
                self._error(401, None, INVALID_TOKEN, kind)
                return True
            over = hub.faults.over_limit(kind, hub.clock, bool(auth))
            if over is not None:
                limit, remaining, reset = over
                self._error(429, None, "Too Many Requests", kind,
                            {"Retry-After": str(reset), **ratelimit_headers(kind, limit, remaining, reset)})
                return True
            wait = hub.sliding_limited(kind)
            if wait is not None:
                n, window = hub.limits[kind]
                secs = max(1, int(wait + 0.999))
                self._error(429, None, "Too Many Requests", kind, {
                    "Retry-After": str(secs), "RateLimit": f'"{kind}";r=0;t={secs}',
                    "RateLimit-Policy": f'"fixed window";"{kind}";q={n};w={int(window)}'})
                return True
            status = hub.injected(kind)
            if status == 429:                    # as the Hub says it: wait a second
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
                return self._json({"_id": sha[:24], "id": repo.repo_id, "author": repo.repo_id.split("/")[0],
                                   "sha": sha, "private": repo.private, "gated": "auto" if repo.gated else False,
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
            if rest[0] == "xet-read-token" and len(rest) >= 2:
                got = self._repo(repo_id, rest[1], "api")
                if got is None:
                    return
                return self._send(200, json.dumps({"casUrl": f"{hub.cdn}/xet-cas", "accessToken": "xet_test",
                                                   "exp": 4102444800}).encode(),
                                  {"Content-Type": "application/json", "X-Xet-Cas-Url": f"{hub.cdn}/xet-cas",
                                   "X-Xet-Access-Token": "xet_test", "X-Xet-Token-Expiration": "4102444800"}, "api")
            if rest[0] == "refs":
                repo, _ = hub.lookup(repo_id)
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
            repo, sha, folder = got
            p = folder / path
            if not p.is_file():
                return self._error(404, "EntryNotFound", f"{path} does not exist on {rev}", "resolve")
            size = p.stat().st_size
            entry = _entry(folder, path)
            headers = {"X-Repo-Commit": sha, "ETag": f'"{entry["oid"]}"'}
            if size > LFS_THRESHOLD:
                location = hub.sign(repo.repo_id, sha, path)
                headers.update({"Location": location, "X-Linked-Etag": f'"{entry["lfs"]["oid"]}"'})
                if hub.faults.linked_size:
                    headers["X-Linked-Size"] = str(size)
                if hub.faults.xet:
                    # what sends huggingface_hub (with hf_xet installed) down the Xet path: a read-token
                    # route (an API request) and then the CAS protocol, which this test Hub does not
                    # serve; negmine reads by HTTP range requests instead (see README.md)
                    route = f"{hub.endpoint}/api/datasets/{repo.repo_id}/xet-read-token/{sha}"
                    headers.update({"X-Xet-Hash": entry["xetHash"], "X-Xet-Refresh-Route": route,
                                    "Link": f'<{route}>; rel="xet-auth"'})
                # the redirect's own body (and Content-Length), as the Hub sends it: not the file's size
                return self._send(302, f"Found. Redirecting to {location}".encode(), headers, "resolve")
            self._serve_file(p, headers, "resolve")

        def _cdn(self, parts: list[str], query: dict):
            if self._gate("cdn"):
                return
            # /cdn/<owner>/<name>/<sha>/<path...>
            repo_id, sha, path = f"{parts[0]}/{parts[1]}", parts[2], "/".join(parts[3:])
            expires = int(query.get("X-Amz-Expires", ["0"])[0])
            serial = int(query.get("X-Amz-Date", ["-1"])[0])
            sig = query.get("X-Amz-Signature", [""])[0]
            if sig != hub.signature(repo_id, sha, path, expires, serial) or not hub.signed_ok(sig, expires):
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
                    return self._send(200, b"", headers, kind, length=size)
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
            answer = hub.faults.take_answer() if kind == "cdn" and self.command == "GET" else None
            if answer == "503":
                return self._send(503, b'{"error": "injected failure"}', {"Content-Type": "application/json"},
                                  kind, answer)
            if answer == "whole":
                return self._send(200, p.read_bytes(), headers, kind, answer)
            if answer == "other-range":          # one byte later, or earlier for a range at the end
                start, end = (start + 1, end + 1) if end + 1 < size else (start - 1, end - 1)
            with open(p, "rb") as f:
                body = os.pread(f.fileno(), end - start + 1, start)
            crange = {"Content-Range": f"bytes {start}-{end}/{size + (answer == 'bigger-file')}"}
            if answer == "no-range":
                crange = {}
            if answer == "short":
                body = body[:len(body) // 2]
            elif answer == "empty":
                body = b""
            elif answer == "cut":
                return self._cut(body, {**headers, **crange}, kind)
            self._send(206, body, {**headers, **crange}, kind, answer)

        def _cut(self, body: bytes, headers: dict, kind: str):
            """Headers promise the whole range; half of it comes, then the connection is closed."""
            self.send_response(206)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            half = body[:len(body) // 2]
            self._log(206, len(half), kind, "cut")
            self.end_headers()
            self.wfile.write(half)
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    return Handler
