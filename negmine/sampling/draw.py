"""The draw loop shared by `sample` and `mine`: walk candidates in priority order, read and
encode them in windows (each page or row group read once per window; the worker processes read
local pages themselves and keep the encoded images in scratch packs), run the filters in priority
order, and keep the first `target` that pass.

What is kept depends only on the order and the filters, never on window size or worker count, and
every decision can be journaled so an interrupted run resumes to the same result.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from negmine.filters.hashing import fast_hash, open_for_hash
from negmine.images import EncodeOptions, Encoded, ImageRejected, encode, jpeg_is_clean, pass_through_size
from negmine.errors import SourceNotFound
from negmine.sources import Source
from negmine.outputs.writers import DatasetWriter, Journal, RemoteWriter, scratch_pack


@dataclass(eq=False)
class Candidate:
    """A drawn pool row on its way through the transform and filter stages."""

    priority: int
    source: int
    row: int
    near: bool | None = None
    origin: dict = field(default_factory=dict)
    encoded: Encoded | None = None
    file_sha256: str | None = None     # of the source bytes
    sha256: str | None = None          # of the bytes written
    phash: int | None = None
    reason: str | None = None
    dup_of: tuple | None = None        # ("positive", path, distance) or ("negative", Candidate, distance)
    tmp: list | None = None            # [scratch pack, offset, length] of the encoded bytes
    path: str | None = None
    score: float | None = None         # `mine`: the trainer's score
    thumbnail: str | None = None       # a dropped duplicate's thumbnail, for the report
    content: tuple | None = None       # --content-check: (score, best-matching label)


def _transform_item(data: bytes, opts: EncodeOptions, hash_kind: str | None):
    """Worker: check, hash and (only when needed) re-encode one image.

    The reduced-size decode that hashing does anyway also proves the file decodes, and gives the
    digest used for exact duplicates; a clean RGB JPEG is then kept byte for byte without a full
    decode (its Encoded carries no bytes: the caller keeps the source's)."""
    source_sha = hashlib.sha256(data).hexdigest()
    try:
        header: list = []                      # judged on the header, in the same open as the hash decode
        gray = open_for_hash(data, inspect=lambda im: header.append(pass_through_size(im, opts)))
        pixels = gray.tobytes()
        digest = hashlib.blake2b(pixels + repr(gray.size).encode(), digest_size=16).hexdigest()
        h = fast_hash(gray, hash_kind, pixels=pixels)[0] if hash_kind else None
        size = header[0] if header and jpeg_is_clean(data) else None   # a JPEG decoders warn about: rewrite
        if size is not None:
            return Encoded(b"", size[0], size[1], digest, False), source_sha, source_sha, h
        result = encode(data, opts)
    except ImageRejected as exc:
        return str(exc), source_sha, None, None
    except Exception as exc:                   # a decoder bug on one file must never end a long run
        return f"unexpected decoder error: {type(exc).__name__}: {exc}", source_sha, None, None
    out = Encoded(result.data, result.width, result.height, digest, True)
    return out, source_sha, hashlib.sha256(result.data).hexdigest(), h


def _transform_job(job: tuple, opts: EncodeOptions, hash_kind: str | None, scratch: str) -> tuple | str:
    """Worker: read a group of images (when the job carries a reader), check, hash and encode
    them, and append what would be written to this process's scratch pack; only small results go
    back, with the reader's note when it had to read more than the pages (results, note). A group
    that cannot be read at all comes back as the reason (a str)."""
    reader, datas = job
    note = None
    if reader is not None:
        try:
            datas, note = reader.read_noted()
        except Exception as exc:
            return f"cannot read {getattr(reader, 'path', 'the source')}: {exc}".splitlines()[0]
    pack = scratch_pack(scratch)
    out = []
    for data in datas:
        if not data:
            out.append(("row has no image bytes", None, None, None, None))
            continue
        result, file_sha, out_sha, h = _transform_item(data, opts, hash_kind)
        ref = None
        if not isinstance(result, str):
            ref = pack.append(result.data if result.reencoded else data)
            result = Encoded(b"", result.width, result.height, result.pixel_sha256, result.reencoded)
        out.append((result, file_sha, out_sha, h, ref))
    pack.flush()                       # an object store's pack is written here, before the refs go back
    return out, note


def transform(cands: list[Candidate], sources: Sequence[Source], writer: DatasetWriter | RemoteWriter, distributor,
              opts: EncodeOptions, hash_kind: str | None) -> list[Candidate]:
    """Read the candidates in storage order and encode them into scratch packs; back in priority order."""
    by_key = {(c.source, c.row): c for c in cands}
    groups: list = []

    def jobs():
        for s, src in enumerate(sources):
            rows = [r for (si, r) in by_key if si == s]
            if not rows:
                continue
            for items, reader in src.read_jobs(rows):
                group, datas = [], []
                for item in items:
                    c = by_key[(s, item.row)]
                    c.origin = item.origin
                    if reader is None and item.data is None:
                        c.reason = item.error or "no image data"
                        continue
                    group.append(c)
                    datas.append(item.data)
                if group:
                    groups.append((group, s, reader))   # held only while in flight (imap is bounded)
                    yield reader, None if reader is not None else datas

    fn = partial(_transform_job, opts=opts, hash_kind=hash_kind, scratch=writer.scratch)
    for k, results in enumerate(distributor.imap(fn, jobs())):
        (group, s, reader), groups[k] = groups[k], None
        if isinstance(results, str):
            raise SourceNotFound(results)
        results, note = results
        if note is not None:
            sources[s].pages_unsupported(reader.path, note)
        for c, (result, file_sha, out_sha, phash, ref) in zip(group, results):
            c.file_sha256 = file_sha
            if isinstance(result, str):
                c.reason = result
                continue
            c.tmp = ref
            c.encoded = result
            c.sha256 = out_sha
            c.phash = phash
    return sorted(cands, key=lambda c: c.priority)


def window_size(need: int, sources: Sequence[Source] = ()) -> int:
    """Candidates read at once when `need` more are wanted: a 5% margin (+8) for rejections, so a
    local draw is usually one pass; none when a source downloads from the Hub, where every
    candidate read costs bytes (a rejection is replaced in a small next window instead). The
    result never depends on it, only what is read; `sample --dry-run` estimates that."""
    if any(s.downloads for s in sources):
        return need
    return math.ceil(need * 1.05) + 8


def draw(candidate: Callable[[int], Candidate], available: int, target: int, sources: Sequence[Source], filters,
         writer: DatasetWriter | RemoteWriter, distributor, opts: EncodeOptions, hash_kind: str | None,
         journal: Journal | None = None, bar=None, on_drop: Callable[[Candidate], None] | None = None
         ) -> tuple[list[Candidate], list[Candidate]]:
    """Keep the first `target` of candidate(0), candidate(1), ... that pass every filter.
    `on_drop(c)` sees each dropped candidate while its encoded bytes are still in scratch (c.tmp)."""
    accepted: list[Candidate] = []
    dropped: list[Candidate] = []
    pos = 0
    by_priority: dict[int, Candidate] = {}
    for e in journal.entries if journal else ():      # replay the decisions of an interrupted run
        if e["t"] not in ("neg", "drop"):
            continue
        c = _candidate_from(e, by_priority)
        by_priority[c.priority] = c
        if e["t"] == "neg":
            for f in filters:
                f.accept(c)
            accepted.append(c)
        else:
            dropped.append(c)
        pos = c.priority + 1
    if bar is not None:
        bar.update(len(accepted))
    while len(accepted) < target and pos < available:
        need = target - len(accepted)
        window = range(pos, min(available, pos + window_size(need, sources)))
        pos = window.stop
        cands = transform([candidate(p) for p in window], sources, writer, distributor, opts, hash_kind)
        for f in filters:
            f.prepare(cands)
        decided: list[dict] = []                              # journaled once per window
        for c in cands:
            if c.reason is None and len(accepted) >= target:
                continue                                      # surplus of the window's margin
            for f in filters if c.reason is None else ():
                c.reason = f.check(c)
                if c.reason:
                    break
            if c.reason is None:
                for f in filters:
                    f.accept(c)
                accepted.append(c)
                if journal:
                    decided.append(_candidate_entry(c, "neg"))
                if bar is not None:
                    bar.update()
                continue
            if on_drop is not None:
                on_drop(c)
            c.tmp = None
            dropped.append(c)
            if journal:
                decided.append(_candidate_entry(c, "drop"))
        if journal:
            journal.extend(decided)
    return accepted, dropped


def _candidate_entry(c: Candidate, kind: str) -> dict:
    e = {"t": kind, "p": c.priority, "s": c.source, "r": c.row, "near": c.near, "o": c.origin,
         "fs": c.file_sha256, "sha": c.sha256, "h": c.phash, "tmp": c.tmp, "reason": c.reason,
         "thumb": c.thumbnail}
    if c.content is not None:
        e["cs"] = list(c.content)
    if c.encoded is not None:
        e["enc"] = [c.encoded.width, c.encoded.height, c.encoded.pixel_sha256, c.encoded.reencoded]
    if c.dup_of:
        kind_, other, dist = c.dup_of
        e["dup"] = [kind_, other if kind_ == "positive" else other.priority, dist]
    return e


def _candidate_from(e: dict, by_priority: dict[int, Candidate]) -> Candidate:
    c = Candidate(e["p"], e["s"], e["r"], near=e["near"], origin=e["o"], file_sha256=e["fs"], sha256=e["sha"],
                  phash=e["h"], reason=e["reason"], tmp=e["tmp"], thumbnail=e.get("thumb"),
                  content=tuple(e["cs"]) if e.get("cs") else None)
    if "enc" in e:
        c.encoded = Encoded(b"", *e["enc"])
    if "dup" in e:
        kind, other, dist = e["dup"]
        c.dup_of = (kind, other if kind == "positive" else by_priority[other], dist)
    return c


