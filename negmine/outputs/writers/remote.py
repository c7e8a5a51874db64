"""The write stage on an fsspec filesystem: --out s3://bucket/ds (or gs://, az://, hdfs://, ...).

The same contract as the local writer, what an object store allows of it:
- files are written in place under --out (an object store cannot rename a folder, and copying
  every object once more at the end would double the writes); each object appears whole or not
  at all, since a PUT is atomic;
- negmine.json is written last, after the scratch objects and the run state are gone: an output
  without it is not finished (an interrupted run keeps its state in --out/.negmine/ for --resume);
- --overwrite deletes the previous output when the run starts, not when it ends (there is no
  atomic swap of a prefix), and still only a folder that holds a negmine.json;
- the journal is a series of objects (objects cannot be appended to), one every FLUSH_SECONDS at
  most: a kill loses at most that much of the decisions, which a resumed run takes again the same way.

Workers get the filesystem object itself (fsspec pickles it with its storage options), so on a
cluster every worker writes where the driver reads, with no shared mount. Credentials and
endpoints come the way fsspec's own config gives them (AWS_* / GOOGLE_* variables, or
FSSPEC_S3_ENDPOINT_URL and the like, see docs/guide/scale-out.md).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import BinaryIO

from negmine.engine import hold
from negmine.errors import NegmineError
from negmine.outputs.writers.local import RUN_RECORD, STATE, checked_rel
from negmine.outputs.writers.scratch import OutTakenOver, RemoteScratch, close_pack, copy_out_fs, pipe_file, put_file

LINK_MODES_REMOTE = ("copy",)
# fsspec protocols whose first path part is a bucket (container): an --out must name a prefix in it
BUCKET_STORES = {"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "adl", "oss", "r2"}


def is_url(out: object) -> bool:
    """True for an fsspec URL other than file:// (those are local paths)."""
    return isinstance(out, str) and "://" in out and out.split("://", 1)[0] not in ("file", "local")


def filesystem(url: str):
    """(fsspec filesystem, path on it without the protocol) for `url`. Raises NegmineError (one
    line) when the protocol's package is missing or the URL is not one fsspec can open."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise NegmineError(f"--out {url}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:       # a malformed URL, bad storage options: whatever the backend raises
        raise NegmineError(f"--out {url}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    return fs, path.rstrip("/")


def refuse_whole_bucket(fs, root: str, url: str) -> None:
    """Raise NegmineError when `url` names a whole bucket of an object store rather than a prefix
    in one: negmine replaces or removes what it writes, and that must never be a bucket."""
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    if protocols & BUCKET_STORES and "/" not in root.strip("/"):
        raise NegmineError(f"--out {url} is a whole bucket; name a folder in it ({url}/NAME)")


def remote_state(url: str, name: str) -> str | None:
    """The run-state file `name` of an interrupted run at `url`, None when there is none."""
    fs, root = filesystem(url)
    try:
        return fs.cat_file(f"{root}/{STATE}/{name}").decode("utf-8")
    except FileNotFoundError:
        return None


def _one_line(url: str, action: str, exc: BaseException) -> NegmineError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return NegmineError(f"cannot {action} {url}: {text}")


class RemoteWriter:
    """`DatasetWriter`'s methods on an fsspec filesystem (see the module docstring for what differs).
    `out` and `staging` are the URL; files go to their final place as they are written."""

    def __init__(self, out: str, *, overwrite: bool = False, resume: bool = False):
        self.out = self.staging = out.rstrip("/")
        self.fs, self.root = filesystem(self.out)
        refuse_whole_bucket(self.fs, self.root, self.out)   # --overwrite and a failed run remove --out
        self.resumed = False
        self._record: bytes | None = None
        self._written: set[str] = set()          # rel paths this process wrote (publish keeps only these
        self._checked = 0.0                      # and the manifest's: see `_sweep`)
        fs, state = self.fs, f"{self.root}/{STATE}"
        try:
            fs.invalidate_cache()
            complete = fs.exists(f"{self.root}/{RUN_RECORD}")
            interrupted = fs.exists(f"{state}/run.json")
            if interrupted and complete:
                # stopped between writing negmine.json and removing the state: the output is whole
                fs.rm(state, recursive=True)
                interrupted = False
            if interrupted:
                if resume:
                    self.resumed = True
                elif overwrite:
                    fs.rm(self.root, recursive=True)
                else:
                    raise NegmineError(f"an interrupted run was found in {self.out} ({STATE}/); pass --resume "
                                       "to continue it, or --overwrite to start over")
            elif resume:
                raise NegmineError(f"nothing to resume for {self.out}" + (": it is complete" if complete else ""))
            elif self._listing():
                if not overwrite:
                    raise NegmineError(f"--out {self.out} is not empty; pass --overwrite to replace it")
                if not complete:
                    raise NegmineError(f"--out {self.out} is not empty and holds no {RUN_RECORD}: "
                                       "refusing to replace a folder negmine did not write")
                fs.rm(self.root, recursive=True)
        except NegmineError:
            raise
        except Exception as exc:       # no bucket, no credentials, no permission: one line, before any work
            raise _one_line(self.out, "open", exc) from None
        # An object store has no lock: a second run on the same --out (--overwrite, --resume) writes
        # its own token here, and this run checks it before it places files and before it publishes.
        self._token = secrets.token_hex(8)
        self.write_state("owner", self._token)

    def owns(self) -> bool:
        """Whether --out is still this run's (no later run wrote its own token)."""
        try:
            return self.read_state("owner") == self._token
        except Exception:                  # the store cannot be read: do not claim it is lost
            return True

    def check_owner(self) -> None:
        """Raise OutTakenOver when another run has taken --out over since this one started."""
        self._checked = time.monotonic()
        if self.read_state("owner") != self._token:
            raise OutTakenOver.of(self.out)

    def _check_now_and_then(self) -> None:
        # writes of single files (positives, cutouts, format files): one owner check a second at most
        if time.monotonic() - self._checked >= 1.0:
            self.check_owner()

    def _listing(self) -> list[str]:
        try:
            return self.fs.ls(self.root, detail=False)
        except FileNotFoundError:
            return []

    def _path(self, rel: str) -> str:
        folder, name = checked_rel(rel)
        return f"{self.root}/{folder}/{name}" if folder else f"{self.root}/{name}"

    def write_bytes(self, rel: str, data: bytes) -> str:
        """One PUT: the object appears whole or not at all. negmine.json is held until `publish`."""
        path = self._path(rel)
        if rel == RUN_RECORD:
            self._record = bytes(data)
        else:
            self._check_now_and_then()
            pipe_file(self.fs, path, data)
            self._written.add(rel)
        return path

    def place(self, rel: str, source, mode: str = "copy") -> str:
        """Upload a user's file (only ever read). Links cannot point from an object store to a local
        file: --link hardlink/symlink is refused before a run starts (`check_link`)."""
        self.check_link(mode)
        path = self._path(rel)
        self._check_now_and_then()
        self._written.add(rel)
        put_file(self.fs, os.fspath(source), path)
        return path

    def check_link(self, mode: str) -> None:
        if mode not in LINK_MODES_REMOTE:
            raise NegmineError(f"--link {mode} needs a local --out; files in {self.out} are copies (--link copy)")

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self._path(rel))

    def read_bytes(self, rel: str) -> bytes:
        if rel == RUN_RECORD and self._record is not None:
            return self._record
        return self.fs.cat_file(self._path(rel))

    def size(self, rel: str) -> int:
        return int(self.fs.size(self._path(rel)))

    @contextmanager
    def open_write(self, rel: str) -> Iterator[BinaryIO]:
        """A binary file to write `rel` through, uploaded only when the block ends without an error
        (staged in a local temporary file, so a failed write leaves no half object and a large
        parquet shard never sits in memory)."""
        path = self._path(rel)
        if rel == RUN_RECORD:
            buf = io.BytesIO()
            yield buf
            self._record = buf.getvalue()
            return
        with tempfile.NamedTemporaryFile(prefix="negmine-", suffix=".part") as tmp:
            yield tmp
            tmp.flush()
            self._check_now_and_then()
            self._written.add(rel)
            put_file(self.fs, tmp.name, path)

    # run state: --out/.negmine/
    def read_state(self, name: str) -> str | None:
        try:
            return self.fs.cat_file(f"{self.root}/{STATE}/{name}").decode("utf-8")
        except FileNotFoundError:
            return None

    def write_state(self, name: str, text: str) -> None:
        try:
            pipe_file(self.fs, f"{self.root}/{STATE}/{name}", text.encode("utf-8"))
        except Exception as exc:       # the first write of a run: a missing bucket or a read-only key shows here
            raise _one_line(self.out, "write to", exc) from None

    def open_journal(self) -> "SegmentJournal":
        return SegmentJournal(self.fs, f"{self.root}/{STATE}/journal", before_write=self.check_owner)

    # scratch packs: --out/.work/
    @property
    def scratch(self) -> RemoteScratch:
        return RemoteScratch(self.fs, f"{self.root}/.work")

    def read_scratch(self, ref: list) -> bytes:
        name, offset, length = ref
        return self.fs.cat_file(f"{self.root}/.work/{name}", start=offset, end=offset + length)

    def place_scratch(self, moves: Iterable[tuple[list, str]], distributor, batch: int = 256) -> None:
        """Write each (scratch ref, rel path) as an object, on the distributor's workers (each reads
        the packs and writes the files itself: nothing goes through the driver)."""
        work = f"{self.root}/.work"
        self.check_owner()

        def batches():
            out = []
            for ref, rel in moves:
                self._written.add(rel)
                out.append((f"{work}/{ref[0]}", ref[1], ref[2], self._path(rel)))
                if len(out) == batch:
                    yield out
                    out = []
            if out:
                yield out

        owner = (f"{self.root}/{STATE}/owner", self._token)       # each worker batch checks it too
        for _ in distributor.imap(partial(copy_out_fs, fs=self.fs, owner=owner), batches()):
            pass

    def close_scratch(self) -> None:
        close_pack(self.scratch)

    def clear_scratch(self) -> None:
        """Remove the scratch packs; only while --out is still this run's (another run's packs are
        there once it has taken over)."""
        self.close_scratch()
        self.check_owner()
        try:
            self.fs.rm(f"{self.root}/.work", recursive=True)
        except FileNotFoundError:
            pass

    def publish(self) -> str:
        """Remove the scratch objects, write negmine.json, then remove the run state (in that order:
        a stop in between leaves either a resumable run or a complete output)."""
        self.check_owner()
        self.clear_scratch()
        self._sweep()
        if self._record is not None:
            pipe_file(self.fs, f"{self.root}/{RUN_RECORD}", self._record)
        try:
            self.fs.rm(f"{self.root}/{STATE}", recursive=True)
        except FileNotFoundError:
            pass
        return self.out

    def _sweep(self) -> None:
        """Remove objects under --out that this run did not write and its manifest does not list:
        what a run this one took over wrote in the seconds before it noticed (there is no lock)."""
        try:
            listed = {json.loads(line)["path"] for line in self.read_bytes("manifest.jsonl").decode("utf-8").splitlines()
                      if line.strip()}
        except FileNotFoundError:
            listed = set()
        self.fs.invalidate_cache()
        keep = listed | self._written | {RUN_RECORD}
        stray = [p for p in self.fs.find(self.root)
                 if (rel := p[len(self.root) + 1:]) not in keep and not rel.startswith((f"{STATE}/", "report/"))]
        if stray:
            self.fs.rm(stray)

    def abort(self) -> None:
        """A run that cannot succeed as given (bad input): remove what it wrote, unless another run
        has taken --out over meanwhile (then everything there is that run's)."""
        if not self.owns():
            return
        try:
            self.fs.rm(self.root, recursive=True)
        except FileNotFoundError:
            pass


class SegmentJournal:
    """`Journal` on an object store: entries are buffered and written as a new numbered object at
    most every FLUSH_SECONDS (and on close); a resumed run reads the objects in order."""

    FLUSH_SECONDS = 2.0

    def __init__(self, fs, folder: str, before_write=None):
        """`before_write`: called before each object is written (the writer's `check_owner`, so a
        run another one took over stops instead of writing into that one's journal)."""
        self.fs, self.folder, self._before_write = fs, folder, before_write
        self.entries: list[dict] = []
        try:
            names = sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".jsonl"))
        except FileNotFoundError:
            names = []
        texts = fs.cat(names) if names else {}
        self.seq = 0
        for k, name in enumerate(names):
            try:
                self.entries += [json.loads(line) for line in texts[name].decode("utf-8").splitlines() if line]
            except ValueError:
                # a segment a non-atomic filesystem left torn: drop it and what follows, so what
                # this run appends is read in order next time
                fs.rm(names[k:])
                break
            self.seq = int(os.path.basename(name).split(".")[0]) + 1
        self._buf: list[str] = []
        self._last = time.monotonic()

    def append(self, entry: dict) -> None:
        self._buf.append(json.dumps(entry, separators=(",", ":")) + "\n")
        self._maybe_flush()

    def extend(self, entries: list[dict]) -> None:
        self._buf += [json.dumps(e, separators=(",", ":")) + "\n" for e in entries]
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last >= self.FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            if self._before_write is not None:
                self._before_write()
            pipe_file(self.fs, f"{self.folder}/{self.seq:08d}.jsonl", "".join(self._buf).encode("utf-8"))
            self.seq += 1
            self._buf = []
            hold.reached("journal segment")
        self._last = time.monotonic()

    def close(self) -> None:
        self.flush()

    def discard(self) -> None:
        """Drop what is not written yet (the run lost --out to another)."""
        self._buf = []


__all__ = ["OutTakenOver", "RemoteWriter", "SegmentJournal", "filesystem", "is_url", "refuse_whole_bucket", "remote_state"]
