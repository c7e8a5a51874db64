"""Resolve a Hugging Face Hub dataset repo to a base path that fsspec can read.

Online the base is ``hf://datasets/OWNER/NAME@SHA`` (listed through HfFileSystem; bytes are read
through `remote.RangeFile` only). Offline (``HF_HUB_OFFLINE=1``, or no network) it is the repo's snapshot
folder in the local HF cache, found by huggingface_hub itself. Either way the parquet reading that
follows is the same code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from negmine.errors import HubAuthError, HubRateLimited, HubUnavailable, NegmineError, SourceNotFound
from negmine.sources import budget, transfer

_REPO = re.compile(r"^(?:hf://datasets/)?(?P<repo>[A-Za-z0-9][\w.\-]*/[\w.\-]+)(?:@(?P<rev>[^?#]+))?$")


@dataclass(frozen=True)
class HubRepo:
    repo_id: str
    sha: str             # resolved commit, recorded in the manifest
    base: str            # hf://datasets/OWNER/NAME@SHA, or a local snapshot folder
    card_text: str | None


def parse_repo(text: str) -> tuple[str, str | None] | None:
    """``hf://datasets/OWNER/NAME[@REV]`` or ``OWNER/NAME[@REV]`` -> (repo_id, revision)."""
    m = _REPO.match(text.strip())
    if not m:
        return None
    return m.group("repo"), m.group("rev")


_login_hint = transfer.login_hint


def _from_cache(repo_id: str, revision: str | None) -> HubRepo:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = snapshot_download(repo_id, repo_type="dataset", revision=revision, local_files_only=True)
    except LocalEntryNotFoundError:
        rev = f"@{revision}" if revision else ""
        raise HubUnavailable(
            f"{repo_id}{rev} is not in the local Hugging Face cache and the Hub cannot be reached "
            "(HF_HUB_OFFLINE is set or there is no network)") from None
    card = None
    try:
        with open(f"{path}/README.md", encoding="utf-8") as f:
            card = f.read()
    except OSError:
        pass
    return HubRepo(repo_id, path.rstrip("/").rsplit("/", 1)[-1], path, card)


transient = transfer.transient


def retrying(fn, *, retries: int | None = None):
    """Call fn, retrying transient Hub failures with exponential backoff
    ($NEGMINE_HUB_RETRIES, default 4; $NEGMINE_HUB_BACKOFF seconds, default 1); a 429 waits as long
    as its Retry-After / RateLimit headers say, when that is longer."""
    retries = int(os.environ.get("NEGMINE_HUB_RETRIES", 4)) if retries is None else retries
    backoff = float(os.environ.get("NEGMINE_HUB_BACKOFF", 1.0))
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == retries or not transient(exc):
                raise
            response = getattr(exc, "response", None)
            told = budget.retry_after(response.headers) if getattr(response, "status_code", 0) == 429 else None
            budget.CLOCK.sleep(max(backoff * 2 ** attempt, told or 0))


def unavailable(what: str, exc: BaseException) -> HubUnavailable:
    """The one-line error for a transient failure that outlasted its retries: HubRateLimited
    (exit 7) for 429s, else HubUnavailable (exit 5)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    detail = f"HTTP {status}" if status else (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if status == 429:
        return HubRateLimited(f"the Hub kept answering 429 (rate limited) for {what} after retries; wait for its "
                              "5-minute window, lower --hub-rate, or log in (higher limits)")
    return HubUnavailable(f"cannot reach the Hub for {what} ({detail}) after retries; check the network, "
                          "or set HF_HUB_OFFLINE=1 to use the local cache")


def refused_token(exc: BaseException) -> bool:
    """The Hub refused the token sent (401 "Invalid credentials in Authorization header")."""
    response = getattr(exc, "response", None)
    return (getattr(response, "status_code", None) == 401
            and (response.headers.get("X-Error-Message") or "") == transfer.INVALID_TOKEN)


def resolve(repo_id: str, revision: str | None = None) -> HubRepo:
    """Find the repo's commit and a readable base path, mapping Hub failures to one-line errors."""
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        return _from_cache(repo_id, revision)
    try:
        info = retrying(lambda: HfApi().dataset_info(repo_id, revision=revision))
    except Exception as exc:
        if refused_token(exc):             # before RepoNotFound: huggingface_hub maps some 401s to it
            raise transfer.token_refused(repo_id) from None
        return _not_resolved(repo_id, revision, exc)
    base = f"hf://datasets/{repo_id}@{info.sha}"
    card = None
    from negmine.sources.remote import RangeFile

    try:                                   # through the counted path, as every other byte
        card = RangeFile(f"{base}/README.md").read_all().decode("utf-8")
    except SourceNotFound:
        pass                               # no card: licence and features come from elsewhere
    except UnicodeDecodeError:
        raise SourceNotFound(f"the dataset card (README.md) of {repo_id} is not UTF-8 text") from None
    return HubRepo(repo_id, info.sha, base, card)


def _not_resolved(repo_id: str, revision: str | None, exc: BaseException) -> HubRepo:
    """Map a failed repo lookup to its one-line error, or fall back to the local cache."""
    from huggingface_hub import errors as hf_errors

    if isinstance(exc, hf_errors.GatedRepoError):
        raise HubAuthError(f"{repo_id} is gated: {_login_hint(repo_id)}") from None
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        raise SourceNotFound(f"{repo_id} has no revision {revision!r}") from None
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        raise SourceNotFound(
            f"no dataset repo {repo_id} on the Hub (if it is private, {_login_hint(repo_id)})") from None
    if isinstance(exc, hf_errors.HfHubHTTPError) and getattr(exc.response, "status_code", 0) in (401, 403):
        raise HubAuthError(f"{repo_id}: access denied; {_login_hint(repo_id)}") from None
    if not (transient(exc) or isinstance(exc, (OSError, hf_errors.HfHubHTTPError))):
        raise exc
    # No network: a repo already in the cache still works, as huggingface_hub does for downloads.
    try:
        return _from_cache(repo_id, revision)
    except NegmineError:
        raise unavailable(repo_id, exc) from None
