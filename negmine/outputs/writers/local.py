"""The write stage on a local folder: a staging folder beside --out, published by rename when the
run succeeds.

Guarantees (see docs/guide/guarantees.md): --out is either absent, the previous dataset, or the complete new one;
never half of one. Each file is written to a temporary name and renamed; the journal in the staging
folder is appended in step with the files, so an interrupted run (Ctrl-C, SIGKILL, power) can be
continued with --resume. Every path handed to the writer is checked to stay inside the staging folder.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from negmine.engine import hold
from negmine.errors import NegmineError
from negmine.outputs.writers.scratch import close_pack, copy_out

RUN_RECORD = "negmine.json"
STATE = ".negmine"


def checked_rel(rel: str, seen: dict | None = None) -> tuple[str, str]:
    """(folder, name) of an output-relative path, refusing anything that could leave the output
    folder: checked on the text (no '..', not absolute, no empty parts, no NUL), so names from data
    never escape and no filesystem call is needed per file. `seen`: folders already checked."""
    rel = rel.replace("\\", "/")
    folder, _, name = rel.rpartition("/")
    if seen is None or folder not in seen:
        parts = folder.split("/") if folder else []
        if any(p in ("", ".", "..") for p in parts) or "\x00" in folder:
            raise NegmineError(f"refusing to write outside the output folder: {rel!r}")
    if rel.startswith("/") or name in ("", ".", "..") or "\x00" in name:
        raise NegmineError(f"refusing to write outside the output folder: {rel!r}")
    return folder, name


class DatasetWriter:
    """The write stage on a local (or mounted) folder: a staging folder beside --out, published by
    rename. `RemoteWriter` has the same methods for fsspec URLs."""

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
        """staging/rel, refusing anything that could leave the staging folder (see `checked_rel`)."""
        return Path(self._fs_path(rel))

    def _fs_path(self, rel: str) -> str:
        # plain strings, not Path objects, and each folder checked once: per-file bookkeeping of
        # 100k files shows up in profiles
        folder, name = checked_rel(rel, self._folders)
        base = self._folders.get(folder)
        if base is None:
            base = self._folders[folder] = os.path.join(self._staging, *(folder.split("/") if folder else []))
        return os.path.join(base, name)

    def exists(self, rel: str) -> bool:
        """Whether staging/rel was written (a symlink counts, even to a file since moved)."""
        return os.path.lexists(self._fs_path(rel))

    def read_bytes(self, rel: str) -> bytes:
        with open(self._fs_path(rel), "rb") as f:
            return f.read()

    def size(self, rel: str) -> int:
        """Bytes of staging/rel (of the file a symlink points to)."""
        return os.path.getsize(self._fs_path(rel))

    @contextmanager
    def open_write(self, rel: str) -> Iterator[BinaryIO]:
        """A binary file to write staging/rel through; it appears under its name only when the block
        ends without an error (written as .tmp, then renamed)."""
        target = self._fs_path(rel)
        self._mkdir(os.path.dirname(target))
        tmp = target + ".tmp"
        with open(tmp, "wb") as f:
            yield f
        os.replace(tmp, target)

    def read_state(self, name: str) -> str | None:
        """A run-state file (.negmine/name in the staging folder), None when absent."""
        p = self.staging / STATE / name
        return p.read_text(encoding="utf-8") if p.is_file() else None

    def write_state(self, name: str, text: str) -> None:
        (self.staging / STATE / name).write_text(text, encoding="utf-8")

    def open_journal(self) -> "Journal":
        return Journal(self.staging / STATE / "journal.jsonl")

    def check_link(self, mode: str) -> None:
        """Every --link mode works on a local folder."""

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
        close_pack(self.scratch)

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
        hold.reached("journal")

    def extend(self, entries: list[dict]) -> None:
        """Many entries, one flush: a kill part-way keeps a prefix (the torn line is dropped)."""
        if entries:
            self._f.write("".join(_COMPACT.encode(e) + "\n" for e in entries))
            self._f.flush()
            hold.reached("journal")

    def close(self) -> None:
        if not self._f.closed:
            os.fsync(self._f.fileno())
            self._f.close()

    def discard(self) -> None:
        """Close without writing more (everything appended is already in the file)."""
        self.close()
