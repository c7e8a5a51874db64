"""The write stage: a staging folder beside --out, published by rename when the run succeeds.

A run that fails or is interrupted leaves --out as it was (absent, or the previous dataset).
Every path handed to the writer is checked to stay inside the staging folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from negmine.errors import NegmineError

RUN_RECORD = "negmine.json"


class DatasetWriter:
    def __init__(self, out: Path, *, overwrite: bool = False):
        self.out = Path(out).expanduser().absolute()
        if self.out.exists():
            if not self.out.is_dir():
                raise NegmineError(f"--out {self.out} exists and is not a folder")
            if any(self.out.iterdir()):
                if not overwrite:
                    raise NegmineError(f"--out {self.out} is not empty; pass --overwrite to replace it")
                if not (self.out / RUN_RECORD).is_file():
                    # --overwrite replaces a previous negmine output, never an arbitrary folder.
                    raise NegmineError(f"--out {self.out} is not empty and holds no {RUN_RECORD}: "
                                       "refusing to replace a folder negmine did not write")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.staging = self.out.parent / f".{self.out.name}.negmine-partial"
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir()

    def path(self, rel: str) -> Path:
        target = (self.staging / rel).resolve()
        root = self.staging.resolve()
        if target == root or root not in target.parents:
            raise NegmineError(f"refusing to write outside the output folder: {rel!r}")
        return target

    def write_bytes(self, rel: str, data: bytes) -> Path:
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
        return target

    def place(self, rel: str, source: Path, mode: str = "copy") -> Path:
        """Copy, hard-link or symlink a user's file; the source is only ever read."""
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "copy":
            shutil.copyfile(source, target)
        elif mode == "hardlink":
            try:
                os.link(source, target)
            except OSError as exc:
                raise NegmineError(f"cannot hard-link {source} into {self.out} ({exc.strerror}); "
                                   "use --link copy or symlink") from None
        elif mode == "symlink":
            os.symlink(Path(source).absolute(), target)
        else:
            raise NegmineError(f"unknown link mode {mode!r}")
        return target

    def move(self, old_rel: str, new_rel: str) -> None:
        target = self.path(new_rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(old_rel), target)

    def publish(self) -> Path:
        old = None
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.negmine-old"
            if old.exists():
                shutil.rmtree(old)
            if any(self.out.iterdir()):
                os.replace(self.out, old)
            else:
                self.out.rmdir()
        os.replace(self.staging, self.out)
        if old is not None and old.exists():
            shutil.rmtree(old)
        return self.out

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
