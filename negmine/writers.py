"""The write stage: a staging folder beside --out, published by rename when the run succeeds.

Guarantees (see the README): --out is either absent, the previous dataset, or the complete new one;
never half of one. Each file is written to a temporary name and renamed; the journal in the staging
folder is appended in step with the files, so an interrupted run (Ctrl-C, SIGKILL, power) can be
continued with --resume. Every path handed to the writer is checked to stay inside the staging folder.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path

from negmine.errors import NegmineError

RUN_RECORD = "negmine.json"
STATE = ".negmine"


def refuse_out_inside(out: Path, inputs: Iterable[tuple[str, object]]) -> None:
    """Raise NegmineError (one line) when --out is an input folder or inside one, or an input is
    inside --out. `inputs`: (option name, path or None); paths that do not exist locally (Hub repo
    ids, hf:// URLs) are ignored. An output inside an input changes the input, and the next run reads
    the previous output's files as input (its negatives as a positive class); an input inside the
    output is deleted by --overwrite. The staging folder sits beside --out, so this covers it too."""
    o = Path(out).expanduser().absolute()
    o = o.parent.resolve() / o.name                  # --out may not exist yet; its parent may be a link
    for option, given in inputs:
        if given is None or not isinstance(given, (str, os.PathLike)):
            continue
        p = Path(given).expanduser()
        if not p.exists():
            continue
        q = p.resolve()
        if q.is_dir() and (o == q or q in o.parents):
            raise NegmineError(f"--out {out} is inside {option} {given}: the output would become part of the input "
                               "(the next run would read it as input); choose a folder outside it")
        if o in q.parents:
            raise NegmineError(f"{option} {given} is inside --out {out}: --overwrite would delete it; "
                               "choose an output folder that holds none of the inputs")


class DatasetWriter:
    def __init__(self, out: Path, *, overwrite: bool = False, resume: bool = False):
        self.out = Path(out).expanduser().absolute()
        self.staging = self.out.parent / f".{self.out.name}.negmine-partial"
        self.resumed = False
        if self.staging.exists():
            if resume:
                self.resumed = True
            elif overwrite:
                shutil.rmtree(self.staging)
            else:
                raise NegmineError(f"an interrupted run was found ({self.staging}); pass --resume to continue "
                                   "it, or --overwrite to start over")
        elif resume:
            done = (self.out / RUN_RECORD).is_file()
            raise NegmineError(f"nothing to resume for {self.out}" + (": it is complete" if done else ""))
        if self.out.exists():
            if not self.out.is_dir():
                raise NegmineError(f"--out {self.out} exists and is not a folder")
            if any(self.out.iterdir()) and not self.resumed:
                if not overwrite:
                    raise NegmineError(f"--out {self.out} is not empty; pass --overwrite to replace it")
                if not (self.out / RUN_RECORD).is_file():
                    # --overwrite replaces a previous negmine output, never an arbitrary folder.
                    raise NegmineError(f"--out {self.out} is not empty and holds no {RUN_RECORD}: "
                                       "refusing to replace a folder negmine did not write")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        (self.staging / STATE).mkdir(parents=True, exist_ok=True)
        self._made: set[str] = set()
        self._staging = str(self.staging)
        self._folders: dict[str, str] = {}

    def path(self, rel: str) -> Path:
        """staging/rel, refusing anything that could leave the staging folder. Checked on the text
        (no '..', not absolute, no empty parts): names from data are made safe before they get here,
        and no file system call is needed per file."""
        return Path(self._fs_path(rel))

    def _fs_path(self, rel: str) -> str:
        # plain strings, not Path objects, and each folder checked once: per-file bookkeeping of
        # 100k files shows up in profiles
        rel = rel.replace("\\", "/")
        folder, _, name = rel.rpartition("/")
        base = self._folders.get(folder)
        if base is None:
            parts = folder.split("/") if folder else []
            if any(p in ("", ".", "..") for p in parts) or "\x00" in folder:
                raise NegmineError(f"refusing to write outside the output folder: {rel!r}")
            base = self._folders[folder] = os.path.join(self._staging, *parts)
        if rel.startswith("/") or name in ("", ".", "..") or "\x00" in name:
            raise NegmineError(f"refusing to write outside the output folder: {rel!r}")
        return os.path.join(base, name)

    def _mkdir(self, folder) -> None:
        folder = str(folder)
        if folder not in self._made:             # creating 100k files: one mkdir per folder, not per file
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)

    def write_bytes(self, rel: str, data: bytes) -> Path:
        """Write under a temporary name and rename."""
        target = self._fs_path(rel)
        self._mkdir(os.path.dirname(target))
        tmp = target + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
        return Path(target)

    def place(self, rel: str, source: Path, mode: str = "copy") -> Path:
        """Copy, hard-link or symlink a user's file; the source is only ever read."""
        target = self.path(rel)
        self._mkdir(target.parent)
        tmp = target.with_name(target.name + ".tmp")
        tmp.unlink(missing_ok=True)
        if mode == "copy":
            shutil.copyfile(source, tmp)
        elif mode == "hardlink":
            try:
                os.link(source, tmp)
            except OSError as exc:
                raise NegmineError(f"cannot hard-link {source} into {self.out} ({exc.strerror}); "
                                   "use --link copy or symlink") from None
        elif mode == "symlink":
            os.symlink(Path(source).absolute(), tmp)
        else:
            raise NegmineError(f"unknown link mode {mode!r}")
        os.replace(tmp, target)
        return target

    @property
    def scratch(self) -> str:
        """Where the draw's scratch packs go (see `ScratchPack`)."""
        return os.path.join(self._staging, ".work")

    def read_scratch(self, ref: list) -> bytes:
        """The bytes a `ScratchPack.append` stored under `ref`."""
        name, offset, length = ref
        with open(os.path.join(self.scratch, name), "rb") as f:
            return os.pread(f.fileno(), length, offset)

    def place_scratch(self, moves: Iterable[tuple[list, str]], distributor, batch: int = 256) -> None:
        """Write each (scratch ref, rel path) as a file, spread over the distributor's processes
        while `moves` is still being produced. Idempotent: a resumed run just places everything again."""
        def batches():
            out = []
            for ref, rel in moves:
                target = self._fs_path(rel)
                self._mkdir(os.path.dirname(target))
                out.append((os.path.join(self.scratch, ref[0]), ref[1], ref[2], target))
                if len(out) == batch:
                    yield out
                    out = []
            if out:
                yield out

        for _ in distributor.imap(copy_out, batches()):
            pass

    def close_scratch(self) -> None:
        """Close this process's scratch pack; its file stays for --resume."""
        pack = _PACKS.pop(self.scratch, None)
        if pack is not None:
            pack.close()

    def clear_scratch(self) -> None:
        """Remove what is left of the draw's scratch files (.work/) before publishing."""
        self.close_scratch()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def publish(self) -> Path:
        shutil.rmtree(self.staging / STATE, ignore_errors=True)
        old = self.out.parent / f".{self.out.name}.negmine-old"
        if self.out.exists():
            if old.exists():
                shutil.rmtree(old)
            if any(self.out.iterdir()):
                os.replace(self.out, old)
            else:
                self.out.rmdir()
        os.replace(self.staging, self.out)
        if old.exists():
            shutil.rmtree(old)
        return self.out

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


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

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


_PACKS: dict[str, ScratchPack] = {}


def scratch_pack(folder: str) -> ScratchPack:
    """This process's pack in `folder` (one per process and run)."""
    pack = _PACKS.get(folder)
    if pack is not None and not pack.alive():
        # a long-lived worker (a Ray worker serves many runs) whose pack went with an earlier run's
        # staging folder: appending to the removed file would lose what it writes
        pack.close()
        pack = None
    if pack is None:
        pack = _PACKS[folder] = ScratchPack(folder)
    return pack


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


_COMPACT = json.JSONEncoder(separators=(",", ":"))      # json.dumps builds an encoder per call


class Journal:
    """Append-only record of every decision, flushed an entry or a draw window at a time (a SIGKILL
    loses at most what was not flushed, and the torn last line is ignored on resume; the draw
    decides a lost window again, the same way)."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: list[dict] = []
        if path.exists():
            good = 0
            with open(path, "rb") as f:
                for raw in f:
                    try:
                        if not raw.endswith(b"\n"):
                            raise ValueError("torn line")
                        self.entries.append(json.loads(raw))
                    except ValueError:
                        break          # a torn last line from a kill: drop it and what follows
                    good += len(raw)
            with open(path, "r+b") as f:
                f.truncate(good)
        self._f = open(path, "a", encoding="utf-8")

    def append(self, entry: dict) -> None:
        self._f.write(_COMPACT.encode(entry) + "\n")
        self._f.flush()

    def extend(self, entries: list[dict]) -> None:
        """Many entries, one flush: a kill part-way keeps a prefix (the torn line is dropped)."""
        if entries:
            self._f.write("".join(_COMPACT.encode(e) + "\n" for e in entries))
            self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            os.fsync(self._f.fileno())
            self._f.close()


# Options that change how a run goes, not what it writes: a --resume may change them.
VOLATILE = ("workers", "overwrite", "resume", "progress", "dry_run", "report")


def plain_record(fields: dict) -> dict:
    """A run's options as JSON-ready values (paths as text)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in fields.items()}


def run_options(record: dict) -> dict:
    """The part of a run's options a --resume must match."""
    return {k: v for k, v in record.items() if k not in VOLATILE}


class Run:
    """A resumable run of any command: the staging writer, the journal, and the run key that a
    --resume must match. Used as a context manager: an interruption or crash keeps the staging
    folder for --resume; a deterministic error (bad input, too small a pool) removes it; the
    caller publishes when done."""

    def __init__(self, out: Path, key: dict, *, overwrite: bool = False, resume: bool = False):
        key = json.loads(json.dumps(key))        # compare as stored: tuples become lists
        self.writer = DatasetWriter(out, overwrite=overwrite, resume=resume)
        run_file = self.writer.staging / STATE / "run.json"
        if self.writer.resumed:
            stored = json.loads(run_file.read_text()) if run_file.is_file() else None
            if stored != key:
                opts, old = key.get("options", {}), (stored or {}).get("options", {})
                diff = sorted(k for k in opts if stored and old.get(k) != opts[k])
                raise NegmineError("cannot resume: the interrupted run used other "
                                   + (f"options ({', '.join(diff)})" if diff else "inputs or version")
                                   + "; rerun it with the same options, or pass --overwrite to start over")
        else:
            run_file.write_text(json.dumps(key, indent=2) + "\n", encoding="utf-8")
        self.journal = Journal(self.writer.staging / STATE / "journal.jsonl")

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.journal.close()
        self.writer.close_scratch()      # a library caller's failed run must not keep the file open
        if isinstance(exc, NegmineError):
            if not exc.resumable:
                self.writer.abort()      # resuming would fail the same way
                return False
            raise type(exc)(f"{exc}; what was done is kept: rerun with --resume") from None
        return False                      # success, or interrupted/crashed: staging stays for --resume


def stored_seed(out: Path) -> int | None:
    """The seed of an interrupted run, so --resume needs no --seed when the first run drew one."""
    out = Path(out).expanduser().absolute()
    run_file = out.parent / f".{out.name}.negmine-partial" / STATE / "run.json"
    try:
        return int(json.loads(run_file.read_text())["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
