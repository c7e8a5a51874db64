"""One HTTP request for bytes of a Hub file, and what its answer means.

`locate` asks a file's ``/resolve/`` URL where its bytes are (a HEAD, following the relative
redirects of renamed or re-cased repos, stopping at the absolute 302 to the storage host that the
Hub answers for LFS/Xet files); `get_range` fetches [a, b) from there and checks the answer before
a byte of it is kept: a 206 must carry a ``Content-Range`` naming exactly the range asked for, of a
file of the size known, and as many bytes as it names; a 200 (a server ignoring Range) is used
only when the range starts within `WHOLE_SKIP` bytes of the file's start, and is closed after the
range's end. Anything else is a `Transient` fault (retried by the caller), a `Expired` location
(ask the resolver again), a `RateLimited` answer (wait as it says) or a one-line NegmineError.

Every request goes through huggingface_hub's shared HTTP client, so `budget` counts it; the bytes
of these streamed answers are counted here, as they arrive (`budget.Budget.add_bytes`), not from
their Content-Length (an answer cut short or closed early sends fewer).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from negmine.errors import HubAuthError, NegmineError, SourceNotFound
from negmine.sources import budget

WHOLE_SKIP = 1 << 20       # bytes: a 200 answer is read up to a range starting this far in, no further
MAX_REDIRECTS = 5
COUNTED = "negmine.counted"    # request extension: the bytes of this answer are counted by the reader
INVALID_TOKEN = "Invalid credentials in Authorization header"     # the Hub's X-Error-Message for a bad token
_CONTENT_RANGE = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*")


class Transient(Exception):
    """A fault worth another try; the text says what came back."""


class Expired(Exception):
    """The storage host refused a signed location (expired, or revoked): ask the resolver again."""


class Redirected(Exception):
    """A resolve URL read directly answered with a redirect: the bytes are at `location`."""

    def __init__(self, location: Location):
        super().__init__(location.url)
        self.location = location


class RateLimited(Exception):
    """A 429; `wait` is the seconds the server asked for (None: it did not say)."""

    def __init__(self, what: str, wait: float | None):
        super().__init__(what)
        self.wait = wait


@dataclass
class Location:
    """Where a file's bytes are: the signed storage URL, or the resolve URL itself (small files)."""

    url: str
    size: int | None          # None: the Hub did not say (a 302 without X-Linked-Size)
    same_host: bool           # on the Hub itself: the token goes with the request (never to storage)


def token_refused(what: str) -> HubAuthError:
    """The Hub refused the token that was sent (expired, revoked, mistyped)."""
    return HubAuthError(f"the Hub refused your token for {what} (401 {INVALID_TOKEN}): check it with "
                        "`hf auth whoami` (or `huggingface-cli whoami`); log in again with `hf auth login`, or "
                        "unset HF_TOKEN to read public repos anonymously")


def login_hint(repo_id: str) -> str:
    return (f"accept its terms at https://huggingface.co/datasets/{repo_id} if it is gated, then log in "
            "with `hf auth login` or set HF_TOKEN")


def repo_of(path: str) -> str:
    """``hf://datasets/OWNER/NAME@REV/...`` -> ``OWNER/NAME``."""
    rest = path.removeprefix("hf://").removeprefix("datasets/")
    return "/".join(rest.split("/")[:2]).split("@")[0]


def hub_error(status: int, headers, what: str) -> NegmineError:
    """The one-line error of a Hub answer that is no fault of the network: a refused token, a gated
    repo, a missing repo, revision or file, other denials. `what` is the hf:// path asked for."""
    code, message = headers.get("X-Error-Code"), headers.get("X-Error-Message") or ""
    repo_id = repo_of(what)
    if status == 401 and message == INVALID_TOKEN:
        return token_refused(repo_id)
    if code == "GatedRepo":
        return HubAuthError(f"{repo_id} is gated: {login_hint(repo_id)}")
    if code == "RepoNotFound":
        return SourceNotFound(f"no dataset repo {repo_id} on the Hub (if it is private, {login_hint(repo_id)})")
    if code == "RevisionNotFound":
        return SourceNotFound(f"{repo_id} has no revision named in {what}")
    if code == "EntryNotFound" or status in (404, 410):
        return SourceNotFound(f"{what} does not exist")
    if status in (401, 403):
        return HubAuthError(f"{what}: access denied (HTTP {status}{': ' + message if message else ''}); "
                            f"{login_hint(repo_id)}")
    return NegmineError(f"cannot read {what}: the Hub answered HTTP {status}{': ' + message if message else ''}")


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``bytes A-B/TOTAL`` -> (A, B + 1, TOTAL or None for ``*``); None when absent or malformed."""
    m = _CONTENT_RANGE.fullmatch(value or "")
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)) + 1, None if m.group(3) == "*" else int(m.group(3))


def _status_fault(status: int, headers, what: str, same_host: bool) -> Exception:
    """What a non-2xx answer means, as the exception the caller acts on."""
    if status == 429:
        return RateLimited("HTTP 429 (rate limited)", budget.retry_after(headers))
    if status >= 500:
        return Transient(f"HTTP {status}")
    if status in (401, 403) and not same_host:
        return Expired(f"HTTP {status} from the storage host")
    if status == 416:
        return SourceNotFound(f"{what}: the range asked for is past its end (HTTP 416; the file changed?)")
    return hub_error(status, headers, what)


def locate(resolve_url: str, what: str) -> Location:
    """One resolver request (HEAD, as huggingface_hub's `get_hf_file_metadata`): the storage URL and
    size of an LFS/Xet file (an absolute redirect to another host, X-Linked-Size when the Hub sends
    it), or the resolve URL and Content-Length of a small file. Relative redirects (a renamed or
    re-cased repo) are followed, each one more resolver request. Raises Transient, RateLimited,
    NegmineError (`hub_error`)."""
    from huggingface_hub.utils import build_hf_headers, get_session

    url = resolve_url
    for _ in range(MAX_REDIRECTS):
        headers = build_hf_headers()
        headers["Accept-Encoding"] = "identity"
        r = get_session().head(url, headers=headers, follow_redirects=False)
        if r.status_code in (301, 302, 303, 307, 308) and r.headers.get("Location"):
            target = urljoin(url, r.headers["Location"])
            if urlsplit(target).netloc != urlsplit(url).netloc:
                size = r.headers.get("X-Linked-Size")
                return Location(target, int(size) if size and size.isdigit() else None, False)
            url = target
            continue
        if r.status_code == 200:
            size = r.headers.get("Content-Length")
            return Location(url, int(size) if size and size.isdigit() else None, True)
        raise _status_fault(r.status_code, r.headers, what, True)
    raise Transient(f"more than {MAX_REDIRECTS} redirects")


def get_range(loc: Location, a: int, b: int | None, size: int | None, write: Callable[[int, bytes], None],
              what: str) -> int | None:
    """GET bytes [a, b) from `loc` (b None: to the end, the size the answer gives), calling
    write(offset, chunk) for exactly those bytes, only once the answer is known to hold them
    (streamed: memory stays at a chunk). Returns the file's total size as the answer gives it
    (Content-Range, or a 200's Content-Length), or None. A redirect (a resolve URL read directly)
    raises Redirected with where the bytes are (relative ones stay on the Hub).

    Raises Transient (short or empty body, another range than asked, no Content-Range, another file
    size than `size`, a 200 to a range far into the file, 5xx, a dropped connection), Expired,
    RateLimited, NegmineError. A failed answer may have written some bytes; the caller keeps none
    of them (it records a range only after this returns)."""
    from huggingface_hub.utils import build_hf_headers, get_session

    headers = build_hf_headers() if loc.same_host else {}     # the token never goes to the storage host
    headers["Range"] = f"bytes={a}-{'' if b is None else b - 1}"
    headers["Accept-Encoding"] = "identity"       # CloudFront answers gzip requests whole, ignoring Range
    b_ = budget.current()
    kind = b_.kind(loc.url)
    got = 0
    try:
        with get_session().stream("GET", loc.url, headers=headers, follow_redirects=False,
                                  extensions={COUNTED: True}) as r:
            try:
                status = r.status_code
                if status in (301, 302, 303, 307, 308) and r.headers.get("Location"):
                    target = urljoin(loc.url, r.headers["Location"])
                    same = urlsplit(target).netloc == urlsplit(loc.url).netloc
                    linked = r.headers.get("X-Linked-Size")
                    raise Redirected(Location(target, int(linked) if linked and linked.isdigit() else None,
                                              same and loc.same_host))
                if status in (200, 206) and r.headers.get("Content-Encoding", "identity").lower() != "identity":
                    # compressed: its bytes are not the file's bytes at these offsets
                    raise Transient(f"a {r.headers['Content-Encoding']}-encoded answer (asked for identity)")
                if status == 206:
                    cr = parse_content_range(r.headers.get("Content-Range"))
                    if cr is None:
                        raise Transient("a 206 answer without a Content-Range")
                    if b is None and cr[2] is not None and cr[1] == cr[2]:
                        b = cr[2]                 # to the end: the answer says where that is
                    if size is not None and cr[2] is not None and cr[2] != size:
                        raise Transient(f"a file of {cr[2]} bytes where it had {size}")
                    if cr[:2] != (a, b):
                        raise Transient(f"bytes {cr[0]}-{cr[1] - 1} where bytes {a}-{b - 1} were asked")
                    total, skip = cr[2], 0
                elif status == 200:
                    b_.add("whole_file_answers")
                    length = r.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    if size is not None and total is not None and total != size:
                        raise Transient(f"a file of {total} bytes where it had {size}")
                    if b is None:
                        if total is None:
                            raise Transient("a 200 answer without a Content-Length")
                        b = total
                    if a > WHOLE_SKIP:
                        raise Transient(f"the whole file (HTTP 200{f', {total} bytes' if total else ''}) to a "
                                        f"request for bytes {a}-{b - 1}; not downloaded")
                    skip = a
                elif status == 416 and a == 0 and b is None and (parse_content_range(
                        r.headers.get("Content-Range", "").replace("*", "0-0")) or (0, 0, None))[2] == 0:
                    return 0                      # an empty file read whole: "bytes */0"
                else:
                    raise _status_fault(status, r.headers, what, loc.same_host)
                pos = a
                for chunk in r.iter_raw(1 << 20):
                    got += len(chunk)
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                    chunk = chunk[:b - pos]
                    if chunk:
                        write(pos, chunk)
                        pos += len(chunk)
                    if pos >= b:
                        break
                if pos != b:
                    raise Transient(f"{pos - a} of the {b - a} bytes asked for at {a}"
                                    + (" (an empty answer)" if pos == a else ""))
                return total
            finally:
                b_.add_bytes(kind, r.num_bytes_downloaded)
    except (Transient, Expired, RateLimited, Redirected, NegmineError):
        raise
    except Exception as exc:
        if transient(exc):
            raise Transient(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "))
        raise


_TRANSPORT = ("httpx", "httpcore", "requests", "urllib3", "aiohttp")


def transient(exc: BaseException) -> bool:
    """Worth another try: rate limits, server errors, dropped connections (not offline mode)."""
    from huggingface_hub import errors as hf_errors

    if isinstance(exc, (Transient, RateLimited)):
        return True
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return False
    if isinstance(exc, hf_errors.HfHubHTTPError):
        status = getattr(exc.response, "status_code", None)
        return status == 429 or (status is not None and status >= 500)
    return isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__module__.startswith(_TRANSPORT)
