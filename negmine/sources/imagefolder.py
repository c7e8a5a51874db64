"""imagefolder datasets as `datasets` reads them (https://huggingface.co/docs/datasets/image_load):
image files, loose or in zip archives, labelled by a ``metadata.jsonl`` / ``metadata.csv``
(``file_name`` + a label column) or else by the folder each image sits in.

Every image has a logical path: its path under the source for a loose file, the zip's folder
joined with the member name for a zip member. A metadata file (loose, or inside a zip) labels the
images whose logical path is its own folder joined with ``file_name``, as `datasets` resolves it.
Zip members are read by offset through the archive's central directory: a local zip is opened
in place, a Hub zip through `remote.RangeFile` (exact, counted range reads), so only the central
directory and the drawn members' bytes are fetched.
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
import struct
import zipfile
import zlib
from collections.abc import Iterator, Sequence

from negmine.errors import HubAuthError, HubUnavailable, SourceNotFound
from negmine.sources import hub
from negmine.sources.archive import (card_class_names, is_metadata, json_label, json_label_list, label_codes,
                                     list_label_codes, metadata_columns, unusable_summary)
from negmine.sources.base import GENERIC_FOLDERS, IMAGE_EXTENSIONS, Item, Source, SourceSpec, short_name
from negmine.sources.wnids import labelled_by_wnid, wnid_file_labels, wnid_misfits


def _skipped(name: str) -> bool:
    """Hidden files and folders, and the resource forks macOS puts into zips."""
    return any(p.startswith(".") or p == "__MACOSX" for p in name.split("/"))


class ImageFolderSource(Source):
    """Loose images and zip members of one split, labelled by metadata files or folders.

    `files`: the split's files (local paths, or URLs under `base`), images, ``.zip`` and
    metadata files; other files are ignored. The label column of a metadata file is
    `spec.label_column`, else the first conventional one (label, class, ...); int labels are
    named by the card's ClassLabel when it has one. Raises SourceNotFound when the split holds no
    image, and for a zip or metadata file that cannot be read."""

    def __init__(self, *, id: str, base: str, files: Sequence[str], split: str | None, spec: SourceSpec,
                 revision: str | None = None, licence: str | None = None, card_text: str | None = None):
        from fsspec.core import url_to_fs

        self._base = base.rstrip("/")
        self._fs, root = url_to_fs(base)
        self._root = root.rstrip("/")
        protocols = self._fs.protocol if isinstance(self._fs.protocol, tuple) else (self._fs.protocol,)
        self.is_remote = "file" not in protocols
        super().__init__(id=id, short=short_name(posixpath.basename(self._root).split("@")[0]), revision=revision,
                         licence=licence, weight=spec.weight, split=split)
        rels = sorted(r for r in (self._rel(f) for f in files) if not _skipped(r))
        self._zips: list[str] = [r for r in rels if r.lower().endswith(".zip")]
        self._open_zips: dict[int, zipfile.ZipFile] = {}
        self._ends: dict[int, dict[str, int]] = {}
        self._items: list[tuple[int, str]] = []      # per row: (zip index or -1, loose path or member)
        logical: list[str] = []
        unreadable: dict[int, str] = {}              # row -> why zipfile cannot give its bytes
        labels: dict[str, object] = {}               # logical path -> label value, from metadata
        self._recorded: set[str] = set()             # logical paths some metadata record names
        self._label_column = spec.label_column
        self._image_column = spec.image_column
        self._label_key: str | None = None           # the metadata's label key, as chosen
        others: set[str] = set()                     # images a metadata record names in another image column
        self.metadata_files: list[str] = []
        for r in rels:
            if is_metadata(r):
                self._metadata(self._read_file(r), posixpath.dirname(r), r, labels, others)
            elif posixpath.splitext(r)[1].lower() in IMAGE_EXTENSIONS:
                self._items.append((-1, r))
                logical.append(r)
        for z, r in enumerate(self._zips):
            zf = self._zip(z)
            folder = posixpath.dirname(r)
            for info in zf.infolist():
                name = info.filename
                if info.is_dir() or _skipped(name):
                    continue
                if is_metadata(name):
                    problem = zip_member_problem(info)
                    try:
                        if problem:
                            raise zipfile.BadZipFile(problem)
                        raw = zf.read(info)
                    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError, RuntimeError,
                            NotImplementedError) as exc:
                        # the labels of the zip's images: without them nothing in it can be vouched for
                        raise SourceNotFound(f"{self.id}: cannot read {name} in {r}: {exc}") from None
                    self._metadata(raw, posixpath.join(folder, posixpath.dirname(name)), f"{r}/{name}", labels,
                                   others)
                elif posixpath.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                    problem = zip_member_problem(info)
                    if problem:
                        unreadable[len(self._items)] = f"cannot read zip member: {problem}"
                    self._items.append((z, name))
                    logical.append(posixpath.normpath(posixpath.join(folder, name)))
        if others:                                   # a mask beside its photo is no row, as in `datasets`
            kept = [k for k, p in enumerate(logical) if p not in others]
            self._items, logical = [self._items[k] for k in kept], [logical[k] for k in kept]
        if not self._items:
            raise SourceNotFound(f"{id} split {split!r} holds no images (loose or in zip archives)")
        self.label_from = "metadata" if labels else "folder"
        # images a metadata file does not list are no part of the dataset as `datasets` reads it
        # (datasets >= 5 drops them): what they show is unknown, so they carry no label
        self.unlisted: list[int] = []
        self.labelled_by_wnid = 0
        self.wnid_misfits: list[str] = []
        if labels:
            values = [labels.get(p) for p in logical]
            self.unlisted = [i for i, p in enumerate(logical) if p not in self._recorded]
        else:
            common = posixpath.commonpath([posixpath.dirname(p) for p in logical]) if logical else ""
            values = [_folder_label(p, common) for p in logical]
            named = wnid_file_labels(logical, values)
            self.labelled_by_wnid = labelled_by_wnid(values, named)
            # only for a source refused as unlabelled (a second pass over every name)
            self.wnid_misfits = wnid_misfits(logical, named) if not any(named) else []
            values = named
        names = card_class_names(card_text, tuple(x for x in (spec.label_column, self._label_key, "label") if x),
                                 spec.config)
        if any(isinstance(v, list) for v in values):
            self._errors = {}
            self.set_label_lists(list_label_codes(values, names, f"the metadata labels of {id}"))
        else:
            self.classes, self.codes, self._errors = label_codes(values, names)
        self._errors.update(unreadable)          # whatever its label, a member zipfile cannot decompress is a skip

    def _read_file(self, rel: str) -> bytes:
        """A whole small file of the split (a metadata file); SourceNotFound when unreadable."""
        def once():
            if self._base.startswith("hf://"):         # counted, checked, cached per commit
                from negmine.sources.remote import RangeFile

                return RangeFile(f"{self._base}/{rel}").read_all()
            with self._fs.open(f"{self._root}/{rel}", "rb") as f:
                return f.read()

        try:
            return hub.retrying(once) if self.is_remote else once()
        except OSError as exc:
            raise SourceNotFound(f"{self.id}: cannot read {rel}: {exc}".splitlines()[0]) from None
        except Exception as exc:
            if hub.transient(exc):
                raise hub.unavailable(self.id, exc) from None
            raise

    def _rel(self, path: str) -> str:
        """A split file's path relative to the source (split files are listed under `base`)."""
        if path.startswith(self._base + "/"):
            return path[len(self._base) + 1:]
        if "://" not in path and "://" not in self._base:
            return os.path.relpath(path, self._base).replace(os.sep, "/")
        raise ValueError(f"{path} is not under {self._base}")

    def _zip(self, z: int) -> zipfile.ZipFile:
        """The zip archive, opened once: zipfile reads the central directory now and each member by
        its offset later (an fsspec file with no cache: each read is one exact range request)."""
        zf = self._open_zips.get(z)
        if zf is None:
            path = f"{self._root}/{self._zips[z]}"
            try:
                if self._base.startswith("hf://"):
                    # exact range reads from the storage location: one resolver request per archive,
                    # and nothing fetched twice (the central directory and each member's bytes)
                    from negmine.sources.remote import RangeFile

                    f = RangeFile("hf://" + path).open()
                elif self.is_remote:
                    f = hub.retrying(lambda: self._fs.open(path, "rb", cache_type="none"))
                else:
                    f = open(path, "rb")
                zf = zipfile.ZipFile(f)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
                raise SourceNotFound(f"{self.id}: {self._zips[z]} is not a readable zip archive: {exc}") from None
            self._open_zips[z] = zf
        return zf

    def _metadata(self, raw: bytes, folder: str, where: str, labels: dict[str, object], others: set[str]) -> None:
        """Add {folder/file_name: label} from a metadata.jsonl / .csv file's bytes, and to `others`
        the images its records name in other image columns (`X_file_name`)."""
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SourceNotFound(f"{self.id}: {where} is not UTF-8 text") from None
        if where.endswith(".csv"):
            records = list(csv.DictReader(io.StringIO(text)))
        else:
            records = []
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        raise SourceNotFound(f"{self.id}: {where} line {n} is not JSON") from None
        key, other_keys, label_key = metadata_columns(records, self._image_column, self._label_column,
                                                      f"{self.id}: {where}")
        self._label_key = self._label_key or label_key
        for rec in records:
            if not isinstance(rec, dict) or not isinstance(rec.get(key), str):
                raise SourceNotFound(f"{self.id}: {where} has a record without a {key}")
            others.update(posixpath.normpath(posixpath.join(folder, rec[k])) for k in other_keys
                          if isinstance(rec.get(k), str))
            value = json_label(rec, label_key) if label_key else None
            if value is None or (isinstance(value, str) and value.lstrip().startswith("[")):
                # a label list (tags, objects, Open Images labels; a JSON list in a CSV cell)
                listed = json_label_list(rec, label_key) if label_key else None
                value = value if listed is None else listed
            if where.endswith(".csv") and isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)              # csv has no types; datasets reads a digit column as ints
            path = posixpath.normpath(posixpath.join(folder, rec[key]))
            self._recorded.add(path)
            if value is not None:
                labels[path] = value
        self.metadata_files.append(where)

    def read(self, rows: Sequence[int]) -> Iterator[Item]:
        """The drawn images' bytes: loose files whole, zip members by offset; an unreadable one (or a
        row whose label is unusable) comes with `error` set."""
        for r in sorted(set(int(r) for r in rows), key=self._position):
            z, name = self._items[r]
            origin = {"file": name} if z < 0 else {"file": self._zips[z], "member": name}
            if r in self._errors:
                yield Item(r, None, origin, self._errors[r])
                continue
            if z < 0:
                def once():
                    if self._base.startswith("hf://"):
                        from negmine.sources.remote import RangeFile

                        return RangeFile(f"{self._base}/{name}").read_all()
                    with self._fs.open(f"{self._root}/{name}", "rb") as f:
                        return f.read()
            else:
                def once():
                    zf = self._zip(z)
                    if z not in self._ends:
                        self._ends[z] = member_ends(zf)
                    return read_member(zf, name, self._ends[z].get(name))
            try:
                data = hub.retrying(once) if self.is_remote else once()
            except (HubUnavailable, HubAuthError):
                raise                          # the Hub, not this image: the run stops (resumable)
            except Exception as exc:
                if self.is_remote and hub.transient(exc):
                    raise hub.unavailable(self.id, exc) from None
                # one unreadable member or file (unsupported compression, encrypted, corrupt, cut short,
                # or anything zipfile raises) is that row's recorded skip, never the end of the run
                why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if not isinstance(exc, (OSError, zipfile.BadZipFile, zlib.error, EOFError, ValueError)):
                    why = f"{type(exc).__name__}: {why}"
                yield Item(r, None, origin, f"cannot read {'file' if z < 0 else 'zip member'}: {why}")
                continue
            yield Item(r, data, origin)

    def _position(self, row: int) -> tuple:
        """Where a row's bytes are: loose files by path, zip members by offset (reads in file order)."""
        z, name = self._items[row]
        return (z, self._zip(z).getinfo(name).header_offset if z >= 0 else 0, name)

    def describe(self) -> dict:
        d = {**super().describe(), "layout": "imagefolder", "labels_from": self.label_from, "zips": len(self._zips)}
        if self._errors:
            d["unusable"] = unusable_summary(
                {"file": self._zips[z] if z >= 0 else name, "member": name if z >= 0 else None, "reason": why}
                for (z, name), why in ((self._items[r], why) for r, why in sorted(self._errors.items())))
        if self.labelled_by_wnid:
            d["labels_from"] = f"folders, and wnid file names for {self.labelled_by_wnid} images"
        if self.unlisted:
            d["images_without_metadata_record"] = len(self.unlisted)
        return d

    @property
    def label_errors(self) -> dict[int, str]:
        """{row: why its label is unusable} (a ClassLabel int out of range): rejected with it when drawn."""
        return self._errors

    def origin(self, row: int) -> dict:
        """Where a row's image is: {"file": loose path} or {"file": zip, "member": name}."""
        z, name = self._items[row]
        return {"file": name} if z < 0 else {"file": self._zips[z], "member": name}


_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")     # zipfile's structFileHeader: 30 bytes
_SLACK = 64        # a local extra field may outgrow the central one (Info-ZIP timestamps: +8 bytes)


# APPNOTE.TXT 4.4.5: the compression methods a zip may name
ZIP_METHODS = {1: "Shrink", 2: "Reduce", 3: "Reduce", 4: "Reduce", 5: "Reduce", 6: "Implode", 8: "Deflate",
               9: "Deflate64", 10: "PKWARE DCL Implode", 12: "BZIP2", 14: "LZMA", 16: "IBM z/OS CMPSC",
               18: "IBM TERSE", 19: "IBM LZ77 z", 20: "Zstandard (old id)", 93: "Zstandard", 94: "MP3", 95: "XZ",
               96: "JPEG variant", 97: "WavPack", 98: "PPMd", 99: "WinZip AES encryption"}


def _zip_decompressors() -> set[int]:
    """The methods this Python's zipfile decompresses: stored and deflate always, bzip2 and lzma
    when Python was built with them, Zstandard from Python 3.14."""
    methods = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
    for method, module in ((zipfile.ZIP_BZIP2, "bz2"), (zipfile.ZIP_LZMA, "lzma")):
        try:
            __import__(module)
            methods.add(method)
        except ImportError:
            pass
    if hasattr(zipfile, "ZIP_ZSTANDARD"):
        methods.add(zipfile.ZIP_ZSTANDARD)
    return methods


ZIP_DECOMPRESSORS = _zip_decompressors()


def zip_member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why zipfile cannot give a member's bytes, known from the central directory alone: an
    encrypted member, or a compression method it lacks (Deflate64, which Windows' own zip writes
    for large files and 7-Zip on request; PPMd; ...). None when it can try (a corrupt member still
    fails then). Such a member is often valid to `unzip -t` or 7-Zip: the reason says what to do."""
    if info.flag_bits & 0x1:
        return "the member is encrypted (password-protected)"
    if info.compress_type not in ZIP_DECOMPRESSORS:
        method = ZIP_METHODS.get(info.compress_type, "unknown")
        return (f"compression method {info.compress_type} ({method}) is not supported by Python's zipfile; "
                "re-zip the archive with Deflate to use it")
    return None


def member_ends(zf: zipfile.ZipFile) -> dict[str, int]:
    """{member: offset where the next record starts}: a member's local header, data and data
    descriptor lie before it, so a read up to it takes no byte of another member."""
    infos = sorted(zf.infolist(), key=lambda i: i.header_offset)
    nexts = [i.header_offset for i in infos[1:]] + [zf.start_dir]
    return {i.filename: n for i, n in zip(infos, nexts)}


def read_member(zf: zipfile.ZipFile, name: str, end: int | None = None) -> bytes:
    """One member's bytes in (almost always) ONE read of its local header and data: zipfile's own
    ``read`` makes three or four small reads, each a range request on a Hub file. `end` (from
    `member_ends`) bounds the read at the next record. Stored and deflated members are checked
    against their CRC here; other methods go through zipfile.
    Raises zipfile.BadZipFile (bad header or CRC), zlib.error, OSError."""
    info = zf.getinfo(name)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
        return zf.read(info)
    f = zf.fp
    head = _LOCAL_HEADER.size + len(info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437"))
    want = head + len(info.extra) + info.compress_size + _SLACK
    if end is not None and end > info.header_offset:
        want = end - info.header_offset
    f.seek(info.header_offset)
    buf = f.read(want)
    if len(buf) < _LOCAL_HEADER.size or buf[:4] != zipfile.stringFileHeader:
        raise zipfile.BadZipFile(f"bad local header for {name}")
    fields = _LOCAL_HEADER.unpack(buf[:_LOCAL_HEADER.size])
    start = _LOCAL_HEADER.size + fields[10] + fields[11]     # + file name length + extra length
    end = start + info.compress_size
    if len(buf) < end:                                       # a huge local extra field: read the rest
        buf += f.read(end - len(buf))
        if len(buf) < end:
            raise zipfile.BadZipFile(f"{name} is cut short")
    raw = buf[start:end]
    data = raw if info.compress_type == zipfile.ZIP_STORED else zlib.decompress(raw, -15)
    if zlib.crc32(data) != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {name!r}")
    return data


def _folder_label(path: str, common: str) -> str | None:
    """The folder an image sits in, below the split's common folder; none for an image at the top
    or in a folder whose name says nothing ("images")."""
    parent = posixpath.dirname(path)
    if parent == common or not parent:
        return None
    name = posixpath.basename(parent)
    return None if name.lower() in GENERIC_FOLDERS else name
