"""Resolve a Hugging Face Hub dataset repo to a base path that fsspec can read.

Online the base is ``hf://datasets/OWNER/NAME@SHA`` (HfFileSystem: range reads, nothing downloaded
but the bytes asked for). Offline (``HF_HUB_OFFLINE=1``, or no network) it is the repo's snapshot
folder in the local HF cache, found by huggingface_hub itself. Either way the parquet reading that
follows is the same code.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from negmine.errors import HubAuthError, HubUnavailable, NegmineError, SourceNotFound

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


def _login_hint(repo_id: str) -> str:
    return (f"accept its terms at https://huggingface.co/datasets/{repo_id} if it is gated, then log in "
            "with `hf auth login` or set HF_TOKEN")


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


def transient(exc: BaseException) -> bool:
    """Worth another try: rate limits, server errors, dropped connections (not offline mode)."""
    from huggingface_hub import errors as hf_errors

    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return False
    if isinstance(exc, hf_errors.HfHubHTTPError):
        status = getattr(exc.response, "status_code", None)
        return status == 429 or (status is not None and status >= 500)
    return isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__module__.startswith(_TRANSPORT)


_TRANSPORT = ("httpx", "httpcore", "requests", "urllib3", "aiohttp")


def retrying(fn, *, retries: int | None = None):
    """Call fn, retrying transient Hub failures with exponential backoff
    ($NEGMINE_HUB_RETRIES, default 4; $NEGMINE_HUB_BACKOFF seconds, default 1)."""
    retries = int(os.environ.get("NEGMINE_HUB_RETRIES", 4)) if retries is None else retries
    backoff = float(os.environ.get("NEGMINE_HUB_BACKOFF", 1.0))
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == retries or not transient(exc):
                raise
            time.sleep(backoff * 2 ** attempt)


def unavailable(what: str, exc: BaseException) -> HubUnavailable:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    detail = f"HTTP {status}" if status else (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return HubUnavailable(f"cannot reach the Hub for {what} ({detail}) after retries; check the network, "
                          "or set HF_HUB_OFFLINE=1 to use the local cache")


def resolve(repo_id: str, revision: str | None = None) -> HubRepo:
    """Find the repo's commit and a readable base path, mapping Hub failures to one-line errors."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub import errors as hf_errors

    if constants.HF_HUB_OFFLINE:
        return _from_cache(repo_id, revision)
    try:
        info = retrying(lambda: HfApi().dataset_info(repo_id, revision=revision))
    except hf_errors.GatedRepoError:
        raise HubAuthError(f"{repo_id} is gated: {_login_hint(repo_id)}") from None
    except hf_errors.RevisionNotFoundError:
        raise SourceNotFound(f"{repo_id} has no revision {revision!r}") from None
    except hf_errors.RepositoryNotFoundError:
        raise SourceNotFound(
            f"no dataset repo {repo_id} on the Hub (if it is private, {_login_hint(repo_id)})") from None
    except Exception as exc:
        if isinstance(exc, hf_errors.HfHubHTTPError) and getattr(exc.response, "status_code", 0) in (401, 403):
            raise HubAuthError(f"{repo_id}: access denied; {_login_hint(repo_id)}") from None
        if not (transient(exc) or isinstance(exc, (OSError, hf_errors.HfHubHTTPError))):
            raise
        # No network: a repo already in the cache still works, as huggingface_hub does for downloads.
        try:
            return _from_cache(repo_id, revision)
        except NegmineError:
            raise unavailable(repo_id, exc) from None
    base = f"hf://datasets/{repo_id}@{info.sha}"
    card = None
    try:
        from huggingface_hub import HfFileSystem

        with HfFileSystem().open(f"{base}/README.md", "r", encoding="utf-8") as f:
            card = f.read()
    except Exception:
        pass
    return HubRepo(repo_id, info.sha, base, card)
