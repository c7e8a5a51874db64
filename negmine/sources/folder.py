"""A folder of image files (local, or any fsspec file system); class = the parent folder's name, or
for images no folder names, the ImageNet wnid their file names start with (negmine.sources.wnids)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from negmine.sources import hub
from negmine.images import is_image_file
from negmine.sources.base import GENERIC_FOLDERS, Item, Source, SourceSpec, short_name
from negmine.sources.labels import codes_from_values
from negmine.sources.wnids import labelled_by_wnid, wnid_file_labels, wnid_misfits

LINK_REASON = "link out of the folder (--follow-symlinks follows it)"


def links_line(where: str, links: list[str]) -> str:
    """One line naming the links out of a pool folder that are skipped, and the option that follows them."""
    shown = ", ".join(links[:3]) + (" ..." if len(links) > 3 else "")
    return (f"{where}: {len(links)} {'file is a link' if len(links) == 1 else 'files are links'} out of the folder, "
            f"skipped ({shown}); --follow-symlinks follows them")


class FolderSource(Source):
    """Image files under a folder, recursively; the class of a file is its parent folder's name, else
    (a file at the top or in `images/`) the wnid its name starts with where its whole folder is
    named so (`wnids.wnid_file_labels`); files with neither have no label (code -1)."""

    def __init__(self, root: str, spec: SourceSpec, *, id: str | None = None, revision: str | None = None,
                 licence: str | None = None, follow_symlinks: bool = False):
        from fsspec.core import url_to_fs

        self._fs, self._root = url_to_fs(root)
        self._root = self._root.rstrip("/")
        protocols = self._fs.protocol if isinstance(self._fs.protocol, tuple) else (self._fs.protocol,)
        self.is_remote = "file" not in protocols
        super().__init__(id=id or root, short=short_name(Path(self._root).name), revision=revision,
                         licence=licence, weight=spec.weight, split=spec.split)
        self.downloads = self.is_remote
        # by name, or (local files) by content: a camera's .JPE, a download saved without extension;
        # every file left out is accounted for in `skipped` (negmine.json lists it with the source)
        self.skipped: list[tuple[str, str]] = []
        files = []
        real_root = os.path.realpath(self._root)
        for p in sorted(self._fs.find(self._root)):
            rel = p[len(self._root) + 1:]
            if _hidden(p, self._root):
                self.skipped.append((rel, "hidden file"))
            elif not is_image_file(p, sniff=not self.is_remote):
                self.skipped.append((rel, "not an image"))
            elif not follow_symlinks and not self.is_remote and not os.path.realpath(p).startswith(real_root + os.sep):
                # a link out of the folder would let a pool read files its owner never meant to share
                self.skipped.append((rel, LINK_REASON))
            else:
                files.append(p)
        self.paths = [p[len(self._root) + 1:] for p in files]
        labels = [str(Path(p).parent) if str(Path(p).parent) != "." else None for p in self.paths]
        # a folder called "images" says nothing about what is in it: no label rather than a fake class
        labels = [Path(lab).name if lab and Path(lab).name.lower() not in GENERIC_FOLDERS else None
                  for lab in labels]
        named = wnid_file_labels(self.paths, labels)
        self.labelled_by_wnid = labelled_by_wnid(labels, named)
        # only for a source refused as unlabelled (a second pass over every name: not on a labelled pool's path)
        self.wnid_misfits = wnid_misfits(self.paths, named) if not any(named) else []
        self.classes, self.codes = codes_from_values(named, None)

    def _on_hub(self) -> bool:
        protocols = self._fs.protocol if isinstance(self._fs.protocol, tuple) else (self._fs.protocol,)
        return "hf" in protocols

    @property
    def skipped_links(self) -> list[str]:
        """Files skipped as links out of the folder (followed with --follow-symlinks)."""
        return [f for f, r in self.skipped if r == LINK_REASON]

    def describe(self) -> dict:
        d = super().describe()
        if self.labelled_by_wnid:
            d["labels_from"] = ("wnid file names" if self.labelled_by_wnid == len(self.paths)
                                else f"folders, and wnid file names for {self.labelled_by_wnid} images")
        if self.skipped:
            d["skipped"] = {"files": len(self.skipped), "first": [{"file": f, "reason": r} for f, r in self.skipped[:20]]}
        return d

    def read(self, rows: Sequence[int]) -> Iterator[Item]:
        for r in sorted(set(int(r) for r in rows)):
            rel = self.paths[r]
            def once():
                if self._on_hub():            # counted, checked, cached per commit
                    from negmine.sources.remote import RangeFile

                    return RangeFile(f"hf://{self._root}/{rel}").read_all()
                with self._fs.open(f"{self._root}/{rel}", "rb") as f:
                    return f.read()

            try:
                data = hub.retrying(once) if self.is_remote else once()
            except OSError as exc:
                yield Item(r, None, {"file": rel}, f"cannot read file: {exc}")
                continue
            except Exception as exc:
                if hub.transient(exc):
                    raise hub.unavailable(self.id, exc) from None
                raise
            yield Item(r, data, {"file": rel})


def _hidden(path: str, root: str) -> bool:
    return any(part.startswith(".") for part in Path(path[len(root) + 1:]).parts)

