"""The switches of the test Hub: which of the real Hub's answers the next requests get.

Nothing here depends on wall-clock time. Signed URLs expire by use count (`url_uses`) or when a
test says so (`HubServer.expire_urls`); rate windows are fixed 5-minute windows of a virtual clock
that only `HubServer.advance` moves (a client's injected sleep can move it).

Sources of the behaviours (read, not measured here: no internet):
- resolve of an LFS/Xet file: an absolute 302 to a signed storage URL (cas-bridge.xethub.hf.co,
  X-Amz-Expires=3600) with X-Linked-Size, X-Linked-Etag, X-Xet-Hash; the 302's Content-Length is
  its own body (huggingface_hub file_download.get_hf_file_metadata reads X-Linked-Size and ignores
  Content-Length on redirects);
- renamed or re-cased repos: a relative 307 to the new name (huggingface_hub follows redirects
  that stay on the Hub: utils/_http._httpx2_follow_hub_redirects_with_backoff);
- 401 "Invalid credentials in Authorization header" for any request with a refused token, even on
  a public repo (utils/_http.hf_raise_for_status treats that message apart from RepoNotFound);
- rate limits (hf.co/docs/hub/rate-limits): fixed 5-minute windows, resolvers 5,000 per window
  logged in and 3,000 anonymous, the API 1,000 / 500; a 429 carries Retry-After, ``RateLimit:
  "resolvers";r=0;t=S`` and ``RateLimit-Policy: "fixed window";"resolvers";q=N;w=300``
  (utils/_http.parse_ratelimit_headers);
- storage edges: CloudFront may ignore Range and answer 200 with the whole file; some edges
  answered 206 with zero bytes (a 2026 incident note); a connection cut mid-body.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

WINDOW_S = 300
# per fixed window, logged in / anonymous (hf.co/docs/hub/rate-limits)
HUB_LIMITS = {"resolve": {True: 5000, False: 3000}, "api": {True: 1000, False: 500}}
RESOURCE = {"resolve": "resolvers", "api": "api"}

# what a storage answer to a range request can be made to do (`Faults.answer_next`)
ANSWERS = (
    "short",        # 206, Content-Range as asked, but only the first half of the bytes (Content-Length says so)
    "empty",        # 206 with Content-Length 0
    "whole",        # 200 with the whole file, as an edge that ignores Range
    "other-range",  # 206 with the bytes (and Content-Range) of the range one byte later (earlier at the end)
    "no-range",     # 206 without a Content-Range header
    "bigger-file",  # 206, Content-Range's total says the file is 1 byte larger than it was
    "cut",          # 206, Content-Length of the whole range, the connection closed after half of it
    "503",          # a server error
)


@dataclass
class Faults:
    """Per-test switches; all off (a well-behaved Hub) by default."""

    linked_size: bool = True            # X-Linked-Size on the 302 of an LFS file
    xet: bool = True                    # X-Xet-Hash on LFS files (a Xet-backed repo)
    url_uses: int | None = None         # a signed URL answers this many requests, then 403 "expired"
    hub_limits: bool = False            # the Hub's documented fixed-window limits on resolve and API
    _queue: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    used: Counter = field(default_factory=Counter)      # (kind, window, authenticated) -> requests

    def answer_next(self, answer: str, n: int = 1) -> None:
        """The next n storage answers to range requests are `answer` (one of ANSWERS), in order."""
        if answer not in ANSWERS:
            raise ValueError(f"unknown answer {answer!r}; one of {', '.join(ANSWERS)}")
        with self._lock:
            self._queue.extend([answer] * n)

    def take_answer(self) -> str | None:
        with self._lock:
            return self._queue.pop(0) if self._queue else None

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def over_limit(self, kind: str, clock: float, authenticated: bool) -> tuple[int, int, int] | None:
        """Count one request of `kind` in the current fixed window; (limit, remaining, seconds to
        the window's end) when it is over the Hub's limit (the request is then answered 429),
        else None. Kinds other than resolve and api are not limited."""
        if not self.hub_limits or kind not in HUB_LIMITS:
            return None
        window = int(clock // WINDOW_S)
        limit = HUB_LIMITS[kind][authenticated]
        reset = max(1, int((window + 1) * WINDOW_S - clock))
        with self._lock:
            key = (kind, window, authenticated)
            if self.used[key] >= limit:
                return limit, 0, reset
            self.used[key] += 1
        return None

    def spend(self, kind: str, n: int, clock: float, authenticated: bool = True) -> None:
        """Count n requests of `kind` in the current window, as if other clients of the same user
        had sent them (a test reaches the limit without sending thousands of requests)."""
        with self._lock:
            self.used[(kind, int(clock // WINDOW_S), authenticated)] += n


def ratelimit_headers(kind: str, limit: int, remaining: int, reset: int) -> dict:
    """The Hub's rate-limit headers (IETF draft as huggingface_hub parses them)."""
    name = RESOURCE.get(kind, kind)
    return {"RateLimit": f'"{name}";r={remaining};t={reset}',
            "RateLimit-Policy": f'"fixed window";"{name}";q={limit};w={WINDOW_S}'}
