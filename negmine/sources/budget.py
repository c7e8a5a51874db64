"""The Hub's request budget for one run: every HTTP request huggingface_hub sends in this process
is counted (an httpx event hook on its shared client, installed through its public
`set_client_factory`), resolver and API requests are paced under sliding-window limits, and a 429's
``Retry-After`` / ``RateLimit`` headers pause the kind of request it answered.

Limits, per 5 minutes, from hf.co/docs/hub/rate-limits: resolvers ("all the URLs that contain a
/resolve/ segment") 5,000 logged in / 3,000 anonymous; Hub API 1,000 / 500. Requests to the storage
CDN a resolver redirects to are not rate limited there, and are counted apart.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from negmine.errors import NegmineError

WINDOW_S = 300.0              # the Hub's rate-limit window


class Clock:
    """Time as the budget and the Hub readers see it: `now()` for pacing windows, `sleep()` for every
    wait (backoff, Retry-After, pacing). Tests replace `budget.CLOCK` with one that moves a virtual
    clock instead of sleeping, so no outcome depends on how fast the machine is."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


CLOCK = Clock()
RESOLVER_LIMIT = {True: 5000, False: 3000}    # per window, with / without a token
API_LIMIT = {True: 1000, False: 500}


def _token_present() -> bool:
    try:
        from huggingface_hub import get_token

        return bool(get_token())
    except Exception:
        return False


def parse_rate(text: str) -> tuple[int, float]:
    """``"5000/300"`` (requests per seconds) or ``"5000"`` (per 300 s) -> (requests, seconds).

    Raises NegmineError on anything else."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:/\s*(\d+(?:\.\d+)?)\s*s?)?\s*", text or "")
    if not m or int(m.group(1)) < 1 or (m.group(2) is not None and float(m.group(2)) <= 0):
        raise NegmineError(f"--hub-rate must be REQUESTS[/SECONDS] (e.g. 5000/300), got {text!r}")
    return int(m.group(1)), float(m.group(2) or WINDOW_S)


class _Window:
    """A sliding-window limit: at most n events in any `window` seconds."""

    def __init__(self, n: int, window: float):
        self.n, self.window = n, window
        self.times: deque[float] = deque()
        self.lock = threading.Lock()
        self.paused_until = 0.0

    def acquire(self) -> float:
        """Block until one more event fits; returns the seconds waited."""
        waited = 0.0
        while True:
            with self.lock:
                now = CLOCK.now()
                while self.times and self.times[0] <= now - self.window:
                    self.times.popleft()
                wait = max(self.paused_until - now,
                           (self.times[0] + self.window - now) if len(self.times) >= self.n else 0.0)
                if wait <= 0:
                    self.times.append(now)
                    return waited
            CLOCK.sleep(min(wait, 5.0))
            waited += min(wait, 5.0)

    def pause(self, seconds: float) -> None:
        """The server said to wait (429): no event of this kind before then."""
        with self.lock:
            self.paused_until = max(self.paused_until, CLOCK.now() + seconds)


@dataclass
class Budget:
    """Request counts and pacing for one run (one per process: every worker thread shares it)."""

    resolver: _Window
    api: _Window
    counts: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def kind(self, url: str) -> str:
        path = urlsplit(str(url)).path
        if "/resolve/" in path:
            return "resolve"
        return "api" if path.startswith("/api/") else "cdn"

    def before(self, request) -> None:
        kind = self.kind(request.url)
        window = self._window(kind)
        waited = window.acquire() if window is not None else 0.0
        with self.lock:
            self.counts[f"{kind}_requests"] += 1
            if waited:
                self.counts["paced_ms"] += int(waited * 1000)

    def after(self, response) -> None:
        kind = self.kind(response.request.url)
        with self.lock:
            # answers a reader streams count their bytes as they arrive (`add_bytes`); the rest are read whole
            counted = response.request.extensions.get("negmine.counted")
            if not counted and response.request.method != "HEAD" and response.status_code in (200, 206):
                self.counts[f"{kind}_bytes"] += int(response.headers.get("Content-Length") or 0)
            if response.status_code == 429:
                self.counts["rate_limited"] += 1
            elif response.status_code >= 500:
                self.counts["server_errors"] += 1
        if response.status_code == 429:
            wait = retry_after(response.headers)
            window = self._window(kind)
            if wait and window is not None:      # the storage CDN's 429s are waited out by the reader
                window.pause(wait)

    def _window(self, kind: str) -> "_Window | None":
        """The limit a kind of request is paced under; the storage CDN has none."""
        return {"resolve": self.resolver, "api": self.api}.get(kind)

    def add_bytes(self, kind: str, n: int) -> None:
        """Body bytes received of a streamed answer to a request of `kind` (resolve, api, cdn)."""
        with self.lock:
            self.counts[f"{kind}_bytes"] += int(n)

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def summary(self) -> dict:
        """Requests by kind, bytes downloaded, retries, 429s, seconds spent waiting for the limit."""
        c = self.counts
        return {"requests": c["api_requests"] + c["resolve_requests"] + c["cdn_requests"],
                "api_requests": c["api_requests"], "resolver_requests": c["resolve_requests"],
                "cdn_requests": c["cdn_requests"],
                "bytes": c["api_bytes"] + c["resolve_bytes"] + c["cdn_bytes"], "cdn_bytes": c["cdn_bytes"],
                "retries": c["retries"], "rate_limited": c["rate_limited"], "server_errors": c["server_errors"],
                "whole_file_answers": c["whole_file_answers"],
                "paced_seconds": round(c["paced_ms"] / 1000, 1)}


def retry_after(headers) -> float | None:
    """Seconds to wait from ``Retry-After`` (delay-seconds) or ``RateLimit: "..";r=0;t=S``."""
    value = headers.get("Retry-After")
    if value and value.strip().isdigit():
        return float(value.strip())
    m = re.search(r"r\s*=\s*0\s*;\s*t\s*=\s*(\d+)", headers.get("RateLimit") or "")
    return float(m.group(1)) if m else None


_BUDGET: Budget | None = None
_RATE: str | None = None


def current() -> Budget:
    """This process's budget, made and installed on huggingface_hub's HTTP client on first use:
    the resolver limit is `--hub-rate` (see `configure`), else $NEGMINE_HUB_RATE, else the Hub's
    published limit for a logged-in or an anonymous user."""
    global _BUDGET
    if _BUDGET is None:
        rate = _RATE or os.environ.get("NEGMINE_HUB_RATE")
        token = _token_present()
        n, window = parse_rate(rate) if rate else (RESOLVER_LIMIT[token], WINDOW_S)
        _BUDGET = Budget(_Window(n, window), _Window(API_LIMIT[token], WINDOW_S))
        _install_hooks()
    return _BUDGET


def configure(rate: str | None = None) -> None:
    """Start a run: counts from zero, resolver limit `rate` ("REQUESTS[/SECONDS]"; checked here,
    NegmineError if malformed). Nothing is imported until the Hub is used."""
    global _BUDGET, _RATE
    if rate:
        parse_rate(rate)
    _RATE, _BUDGET = rate, None


def used() -> dict | None:
    """The run's Hub requests so far (`Budget.summary`), or None when it never touched the Hub."""
    return _BUDGET.summary() if _BUDGET is not None else None


def min_seconds(resolver_requests: int) -> float:
    """The least time this many resolver requests take under the run's limit (a full window for
    each limit's worth beyond the first), in seconds."""
    if resolver_requests <= 0:
        return 0.0
    win = current().resolver
    return (resolver_requests - 1) // win.n * win.window


_INSTALLED = False


def _install_hooks() -> None:
    """Count and pace every request huggingface_hub sends, through its public client factory."""
    global _INSTALLED
    if _INSTALLED:
        return
    import huggingface_hub
    from huggingface_hub.utils import _http

    default = getattr(_http, "default_client_factory", None)
    if default is None:                      # an unknown huggingface_hub: count our own requests only
        return

    def factory():
        client = default()
        client.event_hooks = {"request": list(client.event_hooks.get("request", [])) + [lambda r: current().before(r)],
                              "response": list(client.event_hooks.get("response", [])) + [lambda r: current().after(r)]}
        return client

    huggingface_hub.set_client_factory(factory)
    _INSTALLED = True

