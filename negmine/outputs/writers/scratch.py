"""Scratch packs: where encoded images wait, on the worker that made them, until the draw has
decided which to keep, and the copy that writes the kept ones as files. Local packs are
append-only files; on an object store a pack is one object per job (`RemotePack`). `OutTakenOver`
is here too: the copy checks, before each batch, that no later run took --out over."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Any

from negmine.errors import NegmineError


class OutTakenOver(NegmineError):
    """Another run took over this run's --out (started later with --overwrite or --resume): this
    one stops, and must neither remove nor publish anything there."""

    @classmethod
    def of(cls, out: str) -> "OutTakenOver":
        return cls(f"another negmine run took over {out} (started later with --overwrite or --resume); "
                   "this run stopped and left it to that one")


class ScratchPack:
    """One process's append-only scratch file: encoded images wait here as (file, offset, length)
    until the draw has decided which to keep. Workers append to their own pack, so images never
    travel back through a pipe, and the main process creates a file only for what it keeps. Never
    rewritten: a worker still running after its main process was killed cannot damage what a
    resumed run reads, and a torn last append is never referred to (the journal only records
    results that came back)."""

    def __init__(self, folder: str):
        self.folder, self.fd, self.name, self.pos = folder, None, "", 0

    def append(self, data: bytes) -> list:
        if self.fd is None:
            os.makedirs(self.folder, exist_ok=True)
            self.name = f"{os.getpid()}-{secrets.token_hex(4)}.pack"
            self.fd = os.open(os.path.join(self.folder, self.name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        ref = [self.name, self.pos, len(data)]
        self.pos += len(data)
        return ref

    def alive(self) -> bool:
        """False when the open pack file was removed or replaced under it (see `scratch_pack`)."""
        if self.fd is None:
            return True
        try:
            return os.stat(os.path.join(self.folder, self.name)).st_ino == os.fstat(self.fd).st_ino
        except FileNotFoundError:
            return False

    def flush(self) -> None:
        """Nothing to do: every append is already in the file (see `RemotePack.flush`)."""

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@dataclass(frozen=True)
class RemoteScratch:
    """Where a run on an fsspec filesystem keeps its scratch packs: the filesystem (pickled to the
    workers with its storage options, so every worker writes where the driver reads) and a folder."""

    fs: Any
    folder: str

    @property
    def key(self) -> str:
        return f"{self.fs.protocol!r}:{self.folder}"


class RemotePack:
    """A scratch pack on an object store, which cannot append: a job's images are collected in
    memory and written as one object by `flush` (the draw calls it before a job's results go back,
    so every ref the driver sees names an object that exists). Each flush starts a new object; an
    object is written once and never changed, as a local pack's bytes are."""

    def __init__(self, where: RemoteScratch):
        self.fs, self.folder = where.fs, where.folder
        self.token, self.seq, self.name, self.buf = secrets.token_hex(4), 0, None, bytearray()

    def append(self, data: bytes) -> list:
        if self.name is None:
            self.name = f"{os.getpid()}-{self.token}-{self.seq:06d}.pack"
        ref = [self.name, len(self.buf), len(data)]
        self.buf += data
        return ref

    def flush(self) -> None:
        if self.name is not None:
            pipe_file(self.fs, f"{self.folder}/{self.name}", bytes(self.buf))
            self.buf.clear()
            self.name, self.seq = None, self.seq + 1

    def alive(self) -> bool:
        return True                      # nothing held open: a removed folder just gets new objects

    def close(self) -> None:
        self.flush()


_PACKS: dict[str, ScratchPack | RemotePack] = {}


def open_packs() -> list[str]:
    """The keys (folders or object prefixes) of the scratch packs this process holds open: empty
    once a run has closed them (no file descriptor or upload left behind)."""
    return sorted(_PACKS)


def scratch_pack(where: str | RemoteScratch) -> ScratchPack | RemotePack:
    """This process's pack in `where` (a local folder, or a `RemoteScratch`; one per process and
    run). Call its `flush()` before telling the driver about what was appended."""
    key = where if isinstance(where, str) else where.key
    pack = _PACKS.get(key)
    if pack is not None and not pack.alive():
        # a long-lived worker (a Ray worker serves many runs) whose pack went with an earlier run's
        # staging folder: appending to the removed file would lose what it writes
        pack.close()
        pack = None
    if pack is None:
        pack = _PACKS[key] = ScratchPack(where) if isinstance(where, str) else RemotePack(where)
    return pack


def close_pack(where: str | RemoteScratch) -> None:
    """Close this process's pack in `where`, if it has one (its data stays for --resume)."""
    pack = _PACKS.pop(where if isinstance(where, str) else where.key, None)
    if pack is not None:
        pack.close()


def copy_out(batch: list[tuple[str, int, int, str]]) -> int:
    """Worker: write (pack path, offset, length, target) as files. A pack already removed means a
    resumed run that had placed everything before it stopped: the target must then exist."""
    fds: dict[str, int] = {}
    try:
        for pack, offset, length, target in batch:
            if pack not in fds:
                try:
                    fds[pack] = os.open(pack, os.O_RDONLY)
                except FileNotFoundError:
                    fds[pack] = -1
            if fds[pack] < 0:
                if not os.path.exists(target):
                    raise NegmineError(f"scratch data for {target} is missing; rerun with --overwrite")
                continue
            data = memoryview(os.pread(fds[pack], length, offset))
            if len(data) != length:
                raise NegmineError(f"scratch data for {target} is truncated; rerun with --overwrite")
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            try:
                while data:
                    data = data[os.write(fd, data):]
            finally:
                os.close(fd)
    finally:
        for fd in fds.values():
            if fd >= 0:
                os.close(fd)
    return len(batch)


def copy_out_fs(batch: list[tuple[str, int, int, str]], fs, owner: tuple[str, str] | None = None) -> int:
    """Worker: `copy_out` on an fsspec filesystem. Each pack is read once per batch (one ranged GET
    over the refs this batch needs: a pack holds a job's images in draw order, and the ones not
    kept are few), and the files are written with one `pipe` call (s3fs and gcsfs send those
    concurrently). `owner`: (token object, this run's token), checked before the batch is written:
    a run another one took over writes nothing more there."""
    if owner is not None:
        try:
            token = fs.cat_file(owner[0]).decode("utf-8")
        except FileNotFoundError:
            token = None
        if token != owner[1]:
            raise OutTakenOver.of(owner[0].rsplit("/", 2)[0])
    spans: dict[str, list[int]] = {}
    for pack, offset, length, _ in batch:
        lo, hi = spans.get(pack, (offset, offset + length))
        spans[pack] = [min(lo, offset), max(hi, offset + length)]
    packs = list(spans)
    datas = fs.cat_ranges(packs, [spans[p][0] for p in packs], [spans[p][1] for p in packs], on_error="return")
    got = dict(zip(packs, datas))
    out: dict[str, bytes] = {}
    for pack, offset, length, target in batch:
        data = got[pack]
        if isinstance(data, FileNotFoundError):
            if not fs.exists(target):
                raise NegmineError(f"scratch data for {target} is missing; rerun with --overwrite")
            continue
        if isinstance(data, BaseException):
            raise data
        start = offset - spans[pack][0]
        piece = data[start:start + length]
        if len(piece) != length:
            raise NegmineError(f"scratch data for {target} is truncated; rerun with --overwrite")
        out[target] = piece
    if out:
        try:
            fs.pipe(out)
        except FileNotFoundError:      # a filesystem with real folders (sftp, ...): make them, once
            for target in {t.rsplit("/", 1)[0]: t for t in out}.values():
                make_parent(fs, target)
            fs.pipe(out)
    return len(batch)


def pipe_file(fs, path: str, data: bytes) -> None:
    """`fs.pipe_file`, making the parent folder on filesystems that have real folders."""
    try:
        fs.pipe_file(path, data)
    except FileNotFoundError:
        make_parent(fs, path)
        fs.pipe_file(path, data)


def put_file(fs, local: str, path: str) -> None:
    """`fs.put_file`, making the parent folder on filesystems that have real folders."""
    try:
        fs.put_file(local, path)
    except FileNotFoundError:
        make_parent(fs, path)
        fs.put_file(local, path)


def make_parent(fs, path: str) -> None:
    """Make the folders above `path`, but never its top level: on an object store that is a bucket
    (s3fs and gcsfs would create one), which must exist already. Raises FileNotFoundError naming
    it when it does not."""
    parent = path.rsplit("/", 1)[0]
    top = ("/" if parent.startswith("/") else "") + parent.lstrip("/").split("/", 1)[0]
    if not fs.exists(top):
        raise FileNotFoundError(f"{top} does not exist (negmine creates no bucket or top-level folder)")
    fs.makedirs(parent, exist_ok=True)
