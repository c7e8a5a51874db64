"""The positives: a folder of class folders, or one class folder of images."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from negmine.errors import NegmineError
from negmine.naming import UniqueNames, safe_name
from negmine.images import IMAGE_EXTENSIONS, is_image_file

GENERIC = {"images", "image", "imgs", "img", "photos", "pictures", "pics", "data", "jpg", "jpeg", "jpegimages"}
# Folder names that trainers' loaders take for splits, never for classes.
SPLIT_LIKE = {"train", "training", "val", "valid", "validation", "dev", "test", "testing", "eval",
              "evaluation"}


@dataclass
class PositiveFile:
    path: Path        # absolute
    rel: str          # relative to the positives folder, as recorded in the manifest


@dataclass
class Positives:
    root: Path
    classes: dict[str, list[PositiveFile]] = field(default_factory=dict)   # safe class name -> files
    labels: dict[str, str] = field(default_factory=dict)                   # safe class name -> folder name
    skipped: list[dict] = field(default_factory=list)                      # {"file", "reason"}: not taken

    @property
    def sizes(self) -> list[int]:
        return [len(v) for v in self.classes.values()]

    @property
    def total(self) -> int:
        return sum(self.sizes)



def images_under(folder: Path, root: Path, follow_symlinks: bool, skipped: list[dict] | None = None) -> list[Path]:
    """Image files under `folder`, sorted, recognised by extension (any case) or else by content.
    What is left out is appended to `skipped` as {"file": path relative to root, "reason"}."""
    real_root = os.path.realpath(root)
    found = []
    skipped = [] if skipped is None else skipped

    def skip(p: Path, reason: str) -> None:
        skipped.append({"file": p.relative_to(root).as_posix(), "reason": reason})

    for dirpath, dirnames, filenames in os.walk(folder, followlinks=follow_symlinks):
        for d in sorted(d for d in dirnames if d.startswith(".")):
            skip(Path(dirpath) / d, "hidden folder (names starting with '.' are skipped)")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name.startswith("."):
                skip(p, "hidden file (names starting with '.' are skipped)")
            elif not follow_symlinks and not os.path.realpath(p).startswith(real_root + os.sep):
                # a link out of the positives folder is not the user's data to copy
                skip(p, "link to a file outside the folder (--follow-symlinks takes it)")
            elif not is_image_file(str(p)):
                skip(p, "not an image (neither its name nor its content)")
            else:
                found.append(p)
    return found


def scan_positives(root: Path, *, follow_symlinks: bool = False) -> Positives:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise NegmineError(f"--positives {root} is not a folder")
    root = root.resolve()
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    top = sorted(p for p in root.iterdir() if not p.is_dir() or p.name.startswith("."))
    loose = [p for p in top if p.is_file() and not p.name.startswith(".") and is_image_file(str(p))]
    skipped_in: dict[Path, list[dict]] = {d: [] for d in subdirs}
    per_class = {d: images_under(d, root, follow_symlinks, skipped_in[d]) for d in subdirs}
    per_class = {d: files for d, files in per_class.items() if files}
    if loose and per_class:
        raise NegmineError(f"--positives {root} holds both images and class folders; "
                           "move the loose images into a class folder")
    skipped: list[dict] = []
    if not per_class:
        if not loose:
            raise NegmineError(f"--positives {root} holds no images "
                               f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))}, and read the content of other files)")
        per_class = {root: images_under(root, root, follow_symlinks, skipped)}
    else:
        skipped += [s for d in subdirs for s in skipped_in[d]]
        skipped += [{"file": p.name, "reason": "not in a class folder"} for p in top
                    if not p.name.startswith(".")]
        skipped += [{"file": p.name, "reason": "hidden " + ("folder" if p.is_dir() else "file")
                     + " (names starting with '.' are skipped)"} for p in top if p.name.startswith(".")]
    split_like = sorted(d.name for d in per_class if d.name.lower() in SPLIT_LIKE and d != root)
    if split_like:
        raise NegmineError(f"--positives {root} has folders named like splits ({', '.join(split_like)}); "
                           "give a folder of class folders (negmine makes the splits itself)")
    positives = Positives(root, skipped=sorted(skipped, key=lambda x: x["file"]))
    names = UniqueNames()
    for folder, files in per_class.items():
        # one folder of images called "images" (raccoons/images): the class is what holds it
        label = folder.parent.name if folder == root and folder.name.lower() in GENERIC and folder.parent.name \
            else folder.name
        cls = names.take(safe_name(label, fallback="positive"))
        positives.labels[cls] = label
        positives.classes[cls] = [PositiveFile(p, p.relative_to(root).as_posix()) for p in files]
    return positives
