"""WebDataset tar shards (a local folder of ``*.tar``, or a Hub repo whose split files are tars,
e.g. ``timm/imagenet-1k-wds``: 1,024 train shards of ~1,250 samples).

A sample is the run of members sharing a key (the member name up to the first dot of its base
name): ``KEY.jpg`` (or .jpeg/.png/.webp, any case) and its label. Which member is the label:

- ``?label=cls``, ``?label=txt``, ``?label=json`` or ``?label=FIELD`` (a field of ``KEY.json``)
  names it; nothing else is read as the label;
- else ``KEY.cls`` (an int: a ClassLabel code, named by the dataset card when it declares the
  names): the class key of the ecosystem (timm's WebDataset reader reads its target from `cls` by
  default; webdataset decodes `.cls` as an int);
- else a label field of ``KEY.json`` named as in imagefolder metadata (`label`, `class`, ...,
  `objects`, `tags`: archive.LABEL_FIELDS); a record with several is refused naming them;
- ``KEY.txt`` never by default: img2dataset (LAION, CC3M/12M, DataComp) writes the caption
  there, and a caption taken as a class name would keep no positive out. A sample with only a
  caption has no label (the unlabelled-pool refusal applies; ?label=txt reads it as the name).

Tars have no index and their samples were shuffled when the shards were written, so reading
scattered members would mean reading (or downloading) nearly every shard. Instead the source
takes WHOLE shards in a seeded order until it holds twice its share of the draw (room for
excluded classes, duplicates and bad images) and offers only their samples to the draw. Each
chosen shard is streamed once to index it (member offsets, labels); drawn images are then read
by offset from the same local file (the HF cache copy for a Hub repo), never fetched again.
A Hub shard is one download, one resolver request: its label members are spread through it, and
range-reading them would cost a request or two per sample (~2,500 per ImageNet shard, against
the Hub's 5,000 per 5 minutes). Planning (and so `--dry-run`) downloads the chosen shards.
Class coverage is what the chosen shards hold: on shuffled shards with S samples over C classes
a shard misses a class with probability about exp(-S/C) (ImageNet-1k: one shard sees ~71% of the
1,000 classes, two ~92%, four ~99%); the plan reports shards read and classes seen.

The stdlib `tarfile` rather than the `webdataset` package: the draw needs each member's byte
offset to re-read a few members later, which `tarfile` gives (`TarInfo.offset_data`) and
webdataset's streaming pipeline does not; and it is no new dependency.
"""

from __future__ import annotations

import json
import math
import os
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from negmine.errors import SourceNotFound
from negmine.sources.archive import (LABEL_FIELDS, card_class_names, hub_local_copy, json_label, json_label_list,
                                     label_codes, list_label_codes, unusable_summary)
from negmine.sources.base import Item, Source, SourceSpec, short_name
from negmine.sources.columns import one_of

WDS_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
_LABEL_EXTENSIONS = ("cls", "txt", "json")
MARGIN = 2.0           # chosen shards hold this many times the source's share of the draw
_LABEL_MAX = 1 << 16   # a label member larger than this is not a label


@dataclass
class _Shard:
    rel: str                  # path relative to the source (what the manifest records)
    local: str                # where its bytes are read from
    size: int
    samples: int = 0
    truncated: str | None = None


def split_key(name: str) -> tuple[str, str]:
    """WebDataset's rule: ``dir/KEY.EXT`` -> (``dir/KEY``, ``ext`` lowercased), EXT being
    everything after the first dot of the base name ('' when there is none)."""
    path = PurePosixPath(name)
    stem, dot, ext = path.name.partition(".")
    parent = str(path.parent)
    return (stem if parent == "." else f"{parent}/{stem}"), ext.lower() if dot else ""


class WebDatasetSource(Source):
    """Samples of a few seeded whole shards of a WebDataset (see the module docstring).

    `files`: every shard of the split (local paths or ``hf://`` URLs under `base`); `want`: rows
    this source should supply to the draw (None: one shard, enough to list classes); `seed`
    chooses the shards. Raises SourceNotFound when no chosen shard holds a sample with an image."""

    def __init__(self, *, id: str, base: str, files: Sequence[str], split: str | None, spec: SourceSpec,
                 revision: str | None = None, licence: str | None = None, card_text: str | None = None,
                 seed: int | None = None, want: int | None = None, progress: bool = False):
        from negmine.progress import bar
        from negmine.seeds import rng_for

        name = base.rstrip("/").rsplit("/", 1)[-1].split("@")[0]
        super().__init__(id=id, short=short_name(name), revision=revision, licence=licence,
                         weight=spec.weight, split=split)
        self._base = base.rstrip("/")
        rels = sorted(_relative(f, self._base) for f in files)
        if not rels:
            raise SourceNotFound(f"{id} has no tar shards")
        self.shard_count = len(rels)
        order = rng_for(0 if seed is None else seed, "wds-shards").permutation(len(rels))
        need = 1 if want is None else max(1, math.ceil(want * MARGIN))
        self._label_field = spec.label_column
        self._image_ext = spec.image_column.lower() if spec.image_column else None     # ?image=png
        names = card_class_names(card_text, tuple(x for x in (spec.label_column, "cls", "label") if x), spec.config)
        self.shards: list[_Shard] = []
        self._members: list[tuple[int, str, int, int]] = []       # (shard, member, offset, size) per row
        values: list = []
        self._errors: dict[int, str] = {}
        with bar(total=need, show=progress, desc=f"indexing {name} shards", unit="sample") as pbar:
            for k in order.tolist():
                if len(self._members) >= need:
                    break
                rel = rels[k]
                local = hub_local_copy(self._base, rel)
                if not os.path.isfile(local):       # removed since the split was listed
                    raise SourceNotFound(f"cannot read shard {rel}: no such file")
                shard = _Shard(rel, local, os.path.getsize(local))
                before = len(self._members)
                for member, offset, size, value, error in self._index(shard):
                    if error:
                        self._errors[len(self._members)] = error
                    self._members.append((len(self.shards), member, offset, size))
                    values.append(value)
                shard.samples = len(self._members) - before
                self.shards.append(shard)
                pbar.update(shard.samples)
        if not self._members:
            raise SourceNotFound(f"{id}: the chosen shards ({', '.join(s.rel for s in self.shards)}) "
                                 "hold no samples with an image member")
        if any(isinstance(v, list) for v in values):
            bad = {}
            self.set_label_lists(list_label_codes(values, names, f"the sample labels of {id}"))
        else:
            self.classes, self.codes, bad = label_codes(values, names)
        # .cls ints with no names on the card are class ids, not names (sources.columns.has_class_ids)
        self.class_ids = names is None and any(
            isinstance(x, int) and not isinstance(x, bool) for v in values for x in (v if isinstance(v, list) else [v]))
        for i, reason in bad.items():
            self._errors.setdefault(i, reason)
        if any(v is not None for v in values):
            # a labelled dataset: a sample without its label is a broken sample, not "unlabelled"
            for i, v in enumerate(values):
                if v is None:
                    self._errors.setdefault(i, "sample has no label (.cls, or a label field in .json; "
                                               "a .txt is a label only with ?label=txt)")

    def _index(self, shard: _Shard) -> Iterator[tuple[str, int, int, object, str | None]]:
        """Stream the shard once: per sample with an image, (member, data offset, size, label value,
        reason it cannot be used or None). A truncated or corrupt tail ends the shard early; what was
        complete before it is kept and the shard is noted as truncated.

        A member name that occurs twice (an appended tar, a bad merge) makes its sample unusable:
        GNU tar extracts the last copy, while webdataset (`group_by_keys`), `datasets` and Ray raise
        on a repeated suffix within a sample, so no copy is what every reader would see. Neither is
        used; the sample is recorded with the reason and the rest of the shard is read as usual
        (its other members are read by their own offsets, which the repeat does not touch)."""
        samples: dict[str, dict[str, tuple[str, int, int, bytes | None]]] = {}
        repeats: dict[str, list[str]] = {}       # key -> names of its members that occur more than once
        broken: dict[str, str] = {}              # key -> why one of its label members could not be read
        try:
            f = open(shard.local, "rb")
        except OSError as exc:
            raise SourceNotFound(f"cannot read shard {shard.rel}: {exc.strerror or exc}") from None
        with f:
            try:
                tf = tarfile.open(fileobj=f, mode="r:")
            except tarfile.TarError as exc:
                raise SourceNotFound(f"shard {shard.rel} is not a readable tar: {exc}") from None
            while True:
                try:
                    info = tf.next()
                except tarfile.TarError as exc:
                    shard.truncated = str(exc) or type(exc).__name__
                    break
                if info is None:
                    break
                if not info.isfile() or info.issparse():
                    # a sparse member's data is not its bytes as stored: nothing a reader by offset can use
                    if info.issparse() and split_key(info.name)[1] in WDS_IMAGE_EXTENSIONS + _LABEL_EXTENSIONS:
                        broken.setdefault(split_key(info.name)[0], f"member {info.name} is a sparse file")
                    continue
                if info.offset_data + info.size > shard.size:
                    shard.truncated = f"member {info.name} ends past the end of the file"
                    break
                key, ext = split_key(info.name)
                if ext not in WDS_IMAGE_EXTENSIONS and ext not in _LABEL_EXTENSIONS:
                    continue
                parts = samples.setdefault(key, {})
                if ext in parts:
                    repeats.setdefault(key, []).append(info.name)
                    continue
                text = None
                if ext in _LABEL_EXTENSIONS and info.size <= _LABEL_MAX:
                    try:
                        text = tf.extractfile(info).read()
                    except (OSError, tarfile.TarError, EOFError) as exc:
                        broken.setdefault(key, f"cannot read member {info.name}: {exc}")
                parts[ext] = (info.name, info.offset_data, info.size, text)
            if shard.truncated is None:
                end = tf.offset
                f.seek(end)
                tail = f.read(10240)
                if tail.strip(b"\0"):
                    shard.truncated = f"bytes after offset {end} are not a tar member"
        for key, parts in samples.items():
            # a photo and its mask (jpg + png) are two image columns, as `datasets` reads a WebDataset
            present = [e for e in ((self._image_ext,) if self._image_ext else WDS_IMAGE_EXTENSIONS) if e in parts]
            if not present:
                continue
            image = parts[one_of(present, "image", "--image-column", "image", f"{self.id}: sample {key} of {shard.rel}")]
            if key in repeats:
                names = sorted(set(repeats[key]))
                yield (image[0], image[1], image[2], None,
                       f"shard {shard.rel} holds member{'s' if len(names) > 1 else ''} {', '.join(names)} more than "
                       "once: GNU tar extracts the last copy, webdataset and datasets refuse the sample; "
                       "neither copy is used")
                continue
            if key in broken:
                yield image[0], image[1], image[2], None, broken[key]
                continue
            value, error = self._label(parts)
            yield image[0], image[1], image[2], value, error

    def _label(self, parts: dict) -> tuple[object, str | None]:
        """(label value, reason it is unusable) from a sample's .cls / .txt / .json members."""
        wanted = self._label_field
        # ?label=cls|txt|json picks the member; any other name is a field of the .json member; unnamed,
        # .cls, else a .json label field (a .txt is a caption unless named: see the module docstring)
        exts = ["cls", "json"] if not wanted else [wanted] if wanted in _LABEL_EXTENSIONS else ["json"]
        for ext in exts:
            if ext not in parts:
                continue
            name, _, size, raw = parts[ext]
            if raw is None:
                return None, f"label member {name} is {size} bytes, too large for a label"
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                return None, f"label member {name} is not UTF-8 text"
            if ext == "cls":
                try:
                    return int(text), None
                except ValueError:
                    return None, f"label member {name} is not an integer: {text[:40]!r}"
            if ext == "txt":
                return (text or None), (None if text else f"label member {name} is empty")
            try:
                obj = json.loads(text)
            except ValueError:
                return None, f"label member {name} is not valid JSON"
            field = wanted if wanted and wanted not in _LABEL_EXTENSIONS else None
            if field is None and isinstance(obj, dict):
                found = [k for k in LABEL_FIELDS + ("objects", "tags") if obj.get(k) not in (None, "")]
                if not found and not wanted:
                    return None, None           # metadata (a URL, a caption), not a label
                if found:                       # two label fields: which one is meant is not their order
                    field = one_of(found, "label", "--label-column", "label", f"{self.id}: label member {name}")
            value = json_label(obj, field)
            if value is None:                   # a label list (tags, objects)?
                value = json_label_list(obj, field)
            if value is None:
                return None, f"label member {name} has no label field"
            return value, None
        return None, None

    def read(self, rows: Sequence[int]) -> Iterator[Item]:
        """Each drawn sample's image bytes, read by offset from its shard's local copy, in shard and
        offset order. A sample with a bad label comes with `error` set and no bytes."""
        files: dict[int, object] = {}
        try:
            for r in sorted(set(int(r) for r in rows), key=lambda r: self._members[r][:3:2]):
                s, member, offset, size = self._members[r]
                shard = self.shards[s]
                origin = {"file": shard.rel, "member": member}
                if r in self._errors:
                    yield Item(r, None, origin, self._errors[r])
                    continue
                try:
                    if s not in files:
                        files[s] = open(shard.local, "rb")
                    files[s].seek(offset)
                    data = files[s].read(size)
                except OSError as exc:
                    yield Item(r, None, origin, f"cannot read shard: {exc}")
                    continue
                if len(data) != size:
                    yield Item(r, None, origin, "member is cut short (the shard changed since it was indexed)")
                    continue
                yield Item(r, data, origin)
        finally:
            for f in files.values():
                f.close()

    @property
    def label_errors(self) -> dict[int, str]:
        """{row: why its label is unusable}: such a sample is rejected with that reason when drawn."""
        return self._errors

    def read_note(self) -> str | None:
        """Truncated shards, for the run summary's warnings; None when every shard was whole."""
        cut = [f"{s.rel} ({s.truncated}; {s.samples} samples before it used)" for s in self.shards if s.truncated]
        return ("truncated or corrupt shard(s): " + "; ".join(cut)) if cut else None

    def describe(self) -> dict:
        seen = int(len(np.unique(self.codes[self.codes >= 0]))) if len(self.codes) else 0
        d = {**super().describe(), "layout": "webdataset",
             "shards": {"read": [s.rel for s in self.shards], "of": self.shard_count,
                        "bytes_read": sum(s.size for s in self.shards)},
             "classes_seen": seen,
             "coverage": f"{len(self.shards)} of {self.shard_count} shards chosen by seed, {len(self)} samples, "
                         f"{seen} of {len(self.classes)} classes; the draw is stratified within them"}
        if self._errors:
            d["unusable"] = unusable_summary(
                {"file": self.shards[self._members[r][0]].rel, "member": self._members[r][1], "reason": why}
                for r, why in sorted(self._errors.items()))
            d["coverage"] += f"; {len(self._errors)} samples unusable, skipped with a reason if drawn"
        return d


def _relative(path: str, base: str) -> str:
    path = path.split("://", 1)[-1] if "://" not in base else path
    base = base.split("://", 1)[-1] if "://" not in base else base
    if path.startswith(base + "/"):
        return path[len(base) + 1:]
    raise ValueError(f"{path} is not under {base}")
