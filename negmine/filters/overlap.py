"""The filter stage: keep the positives out of the negatives.

Class level (before the draw): source classes that are a positive concept, a kind of one, or
contain one (WordNet), plus `--exclude` terms; and, for classes that are ImageNet-1k classes,
those whose images show a positive too often (negmine.filters.contamination). Image level (during the draw, in priority order):
exact and near duplicates (perceptual hash within a radius) of any positive, or of a negative kept
earlier.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from negmine.progress import bar

from negmine.cache import HashCache
from negmine.filters.contamination import (DEFAULT_MAX_CONTAMINATION, SOURCE_NOTE, Estimate, apply_threshold,
                                   estimate_classes, spread)
from negmine.filters.hashing import DRAFT_SIZE, hash_file_or_reason
from negmine.filters.neighbors import nearest_within, pairs_within
from negmine.errors import NegmineError
from negmine.sources import Source
from negmine.sources.labels import class_counts
from negmine.filters.concepts import UNMAPPED_REASON, ClassVerdict, Concept, judge_classes, resolve_concepts
from negmine.filters.taxonomy import Taxonomy, name_key
from negmine.filters.words import VERSION as WORDS_VERSION, caption_senses


# -- class level ------------------------------------------------------------------------------------
@dataclass
class SourceClasses:
    source: Source
    verdicts: list[ClassVerdict]
    contamination: list[Estimate | None] = field(default_factory=list)   # per class, [] when none known

    @property
    def excluded_codes(self) -> np.ndarray:
        return np.array([i for i, v in enumerate(self.verdicts) if v.excluded], dtype=np.int32)

    def rows(self, code: int) -> int:
        """Rows carrying the class (any of their labels, for a multi-label pool)."""
        src = self.source
        return int(((src.label_codes if src.multi_label else src.codes) == code).sum())


@dataclass
class ClassPlan:
    concepts: list[Concept]
    unmapped_terms: list[str]
    per_source: list[SourceClasses] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)     # the synsets the report names
    max_contamination: float = DEFAULT_MAX_CONTAMINATION
    allow_unmapped: bool = False             # --allow-unmapped: unplaced classes are drawn, not left out

    def unplaced_kept(self, sc: SourceClasses) -> list[int]:
        """Codes of a labelled pool's classes WordNet cannot place that the draw keeps (only under
        --allow-unmapped, never a text pool's nouns): no check vouches for their images."""
        if getattr(sc.source, "text_columns", None) or not self.concepts:
            return []
        return [i for i, v in enumerate(sc.verdicts) if not v.mapped and not v.excluded]

    def refuse_unplaced(self) -> None:
        """Raise NegmineError (one line) for a labelled pool none of whose classes WordNet can place
        (class ids with no names, made-up names): every class would be left out, and nothing on
        its labels keeps the positives out. --allow-unmapped draws it anyway (and warns)."""
        for sc in self.per_source:
            src = sc.source
            if (self.allow_unmapped or not self.concepts or not sc.verdicts or getattr(src, "text_columns", None)
                    or any(v.mapped for v in sc.verdicts)):
                continue
            what = ("bare class ids with no names in the features or card" if getattr(src, "class_ids", False)
                    else "names WordNet cannot place")
            shown = ", ".join(repr(v.label) for v in sc.verdicts[:3]) + (", ..." if len(sc.verdicts) > 3 else "")
            raise NegmineError(
                f"{src.id}: none of its {len(sc.verdicts)} classes ({shown}) can be checked against the positives: "
                f"they are {what}; read its captions instead with --label-column none (and --text-column COL), "
                "or draw them unchecked with --allow-unmapped")

    def report(self) -> dict:
        label = self.labels.__getitem__
        out = {"concepts": [{"term": c.term, "how": c.how, "synsets": [label(s) for s in c.synsets],
                             "dropped": [{"synset": label(s), "reason": r} for s, r in c.dropped],
                             **({"note": c.note} if c.note else {})}
                            for c in self.concepts],
               "unmapped_terms": self.unmapped_terms, "sources": []}
        for sc in self.per_source:
            multi = getattr(sc.source, "label_offsets", None) is not None
            # a multi-label pool: images carrying each label
            counts = class_counts(sc.source.label_codes if multi else sc.source.codes, len(sc.verdicts))
            est = sc.contamination or [None] * len(sc.verdicts)
            entry = {
                "source": sc.source.id, "classes": len(sc.verdicts), "label_kind": sc.source.label_kind,
                "excluded": [{"label": v.label, "rows": int(counts[i]), "reason": v.reason,
                              **({"contamination": est[i].as_dict()} if est[i] is not None else {})}
                             for i, v in enumerate(sc.verdicts) if v.excluded],
                "unmapped": [v.label for v in sc.verdicts if not v.mapped],
                "unmapped_drawn": [sc.verdicts[i].label for i in self.unplaced_kept(sc)],
                "ambiguous": [{"label": v.label, "synsets": [label(s) for s in v.synsets]}
                              for v in sc.verdicts if v.ambiguous and not v.excluded],
            }
            if any(e is not None for e in est):
                kept = sorted((i for i, e in enumerate(est) if e is not None and not e.excluded and e.images),
                              key=lambda i: (-est[i].rate, sc.verdicts[i].label))
                entry["contamination"] = {
                    "classes_estimated": sum(e is not None for e in est),
                    "excluded": sum(bool(e and e.excluded) for e in est),
                    "highest_kept": [{"label": sc.verdicts[i].label, "rows": int(counts[i]), **est[i].as_dict()}
                                     for i in kept[:10]],
                    "expected_per_1000": self.expected_contaminated(sc, 1000, counts=counts),
                }
            if multi:
                # an image goes when any of its labels is excluded: its rows above overlap
                entry["images_excluded"] = int(sc.source.rows_with_any(sc.excluded_codes).sum())
                entry["images"] = len(sc.source)
            out["sources"].append(entry)
        if any(sc.contamination for sc in self.per_source):
            out["contamination"] = {"max_contamination": self.max_contamination, "prior": SOURCE_NOTE}
        return out

    def notes(self) -> list[str]:
        """What the run's warnings must say about the names: a name read as a part of it, a name
        matched to source labels only literally."""
        out = [c.note for c in self.concepts if c.note]
        out += [f"{t!r} is not in WordNet or the shipped vocabularies: it matches source labels of that name only "
                f"(--concept \"{t}=WNID\" places it)" for t in self.unmapped_terms]
        for sc in self.per_source:
            kept = self.unplaced_kept(sc)
            if kept:
                counts = class_counts(sc.source.label_codes if sc.source.multi_label else sc.source.codes,
                                      len(sc.verdicts))
                out.append(f"--allow-unmapped: {len(kept)} classes of {sc.source.id} ({int(counts[kept].sum())} "
                           "images) are not in WordNet and are drawn: no check keeps the positives out of them")
        return out

    def expected_contaminated(self, sc: SourceClasses, n: int, stratify: bool = True,
                              counts: np.ndarray | None = None) -> dict:
        """Expected negatives showing a positive among `n` drawn from this source (stratified: as
        evenly over the classes as they allow; else in proportion to rows), with the taxonomy's
        exclusions alone and with the contaminated classes excluded too. Classes without an
        estimate (not ImageNet-1k classes) count as clean, so this is a lower bound when there are
        such classes; `estimated_share` says how much of the draw the estimates cover."""
        counts = class_counts(sc.source.codes, len(sc.verdicts)) if counts is None else counts
        est = sc.contamination or [None] * len(sc.verdicts)
        rate = np.array([e.rate if e is not None else 0.0 for e in est])
        known = np.array([e is not None for e in est])
        prior = np.array([bool(e and e.excluded) for e in est])
        taxonomy = np.array([v.excluded for v in sc.verdicts]) & ~prior
        out = {}
        for name, excluded in (("taxonomy_only", taxonomy), ("with_prior", taxonomy | prior)):
            drawn = spread(np.where(excluded, 0, counts), n, stratify)
            out[name] = round(float((drawn * rate).sum()), 2)
            if name == "with_prior":
                out["estimated_share"] = round(float(drawn[known].sum() / max(1e-9, drawn.sum())), 4)
        return out


def plan_classes(sources: Sequence[Source], terms: Sequence[str], *, allow_unmapped: bool = False,
                 anchors: Sequence[str] | None = None,
                 max_contamination: float = DEFAULT_MAX_CONTAMINATION,
                 named: dict[str, str] | None = None) -> ClassPlan:
    """`terms` are all positive concepts; `anchors` those --near is measured from (default: all);
    `named` the concepts given by --concept ({name: wnid or lemma}). Raises
    negmine.filters.concepts.UnplacedName (a NegmineError) for a name it cannot place (resolve_concepts).
    `max_contamination`: a source class that is an ImageNet-1k class is excluded too when more than
    this fraction of its ImageNet-ReaL validation images show a positive (1 turns it off); every
    such class gets its estimate either way (negmine.filters.contamination).
    A class WordNet cannot place (and every class of a pool whose labels are bare ids,
    `Source.class_ids`) is excluded unless `allow_unmapped`: no check vouches for it. A text
    pool's nouns are exempt: its images carry every noun of their text, each judged on its own.
    The answer depends only on the terms, the sources' class names, the threshold and the shipped
    data (taxonomy and co-occurrence table, both in Taxonomy.version()), so it is cached: a
    repeated run does not load WordNet (~0.2 s, and ~0.5M objects to keep)."""
    if not 0 <= max_contamination <= 1:
        raise NegmineError("--max-contamination must be a fraction between 0 and 1 (1 turns it off)")
    terms = list(dict.fromkeys(terms))
    version = Taxonomy.version()
    texts = [bool(getattr(s, "text_columns", None)) for s in sources]     # labels that are a caption's nouns
    ids = [bool(getattr(s, "class_ids", False)) for s in sources]          # numbers, not names: never looked up
    key = json.dumps([version, _PLAN_FORMAT, terms, list(anchors or []), allow_unmapped, max_contamination,
                      [s.classes for s in sources], sorted((named or {}).items()), ids,
                      [WORDS_VERSION if t else None for t in texts]])
    cache = _plan_cache(key) if version else None
    found = cache.get() if cache else None
    if found is not None:
        concepts, unmapped, verdicts, labels, estimates = found
    else:
        tax = Taxonomy.load()
        concepts, unmapped = resolve_concepts(terms, tax, named=named,
                                              labels=[x for src in sources for x in (src.classes or [])])
        if anchors:
            for c in concepts:
                c.anchor = c.term in anchors
        words = partial(caption_senses, tax=tax)
        verdicts = [judge_classes(src.classes, concepts, tax, exclude_unmapped=not (allow_unmapped or text),
                                  senses=(lambda _: []) if bare else words if text else None)
                    if src.classes and concepts else [ClassVerdict(c, mapped=False) for c in src.classes]
                    for src, text, bare in zip(sources, texts, ids)]
        for vs, bare in zip(verdicts, ids):
            for v in vs if bare else ():
                if v.excluded and v.reason == UNMAPPED_REASON:
                    v.reason = f"a class id with no name: {UNMAPPED_REASON.split(': ', 1)[1]}"
        # the prior judges the classes the taxonomy kept; the taxonomy's verdicts stay as they were
        estimates = [estimate_classes(v, concepts, tax) if concepts else [] for v in verdicts]
        for v, e in zip(verdicts, estimates):
            if any(x is not None for x in e):
                apply_threshold(v, e, max_contamination)
            else:
                e.clear()
        shown = {s for c in concepts for s in c.synsets} | {s for c in concepts for s, _ in c.dropped}
        shown |= {s for vs in verdicts for v in vs if v.ambiguous and not v.excluded for s in v.synsets}
        labels = {s: tax.label(s) for s in shown}
        if cache:
            cache.put((concepts, unmapped, verdicts, labels, estimates))
    return ClassPlan(concepts, unmapped, [SourceClasses(src, v, e) for src, v, e in zip(sources, verdicts, estimates)],
                     labels, max_contamination, allow_unmapped)


_PLAN_FORMAT = 5          # what the cached tuple holds: 2 added the contamination estimates, 3 the senses,
                          # 4 text pools' nouns (filters.words.caption_senses), 5 unplaced classes excluded


def absence_groups(plan: ClassPlan, sc: SourceClasses) -> dict[str, list[np.ndarray]]:
    """Per positive concept, what a rater must have confirmed absent for the concept to be absent:
    one group of pool classes per visual sense of the concept (every sense must be absent), a group
    holding the classes that are the sense or contain it (a rater who found no 'animal' found no
    raccoon; a kind of it does not do: no poodle says nothing of other dogs), and any class named
    like the term. {term: [int32 codes, ...]}; a concept with an empty group (or no group: not in
    WordNet and no class of its name) cannot be verified by this pool."""
    tax = Taxonomy.load()
    out = {}
    for c in plan.concepts:
        named = {i for i, v in enumerate(sc.verdicts) if name_key(v.label) == name_key(c.term)}
        groups = []
        for p in (c.visual(tax) if c.synsets else []):
            up = tax.ancestors(p)                          # p and every class containing it
            groups.append(np.array(sorted(named | {i for i, v in enumerate(sc.verdicts)
                                                   if any(s in up for s in v.synsets)}), np.int32))
        if not groups and named:
            groups = [np.array(sorted(named), np.int32)]
        out[c.term] = groups
    return out


class _plan_cache:
    """One pickle per question in $NEGMINE_CACHE/classes; a torn or stale file is just recomputed."""

    def __init__(self, key: str):
        import hashlib

        from negmine.cache import cache_dir

        try:
            self.path = cache_dir("classes") / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".pickle")
        except OSError:
            self.path = None

    def get(self):
        import pickle

        try:
            with open(self.path, "rb") as f:
                return pickle.load(f)
        except Exception:
            return None

    def put(self, value) -> None:
        import os
        import pickle

        try:
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        except Exception:
            pass


def near_codes(verdicts: list[ClassVerdict], codes: np.ndarray, eligible: np.ndarray, rows_needed: int
               ) -> tuple[np.ndarray, int | None]:
    """Classes nearest the positives: the smallest level (1 siblings, 2 cousins, ...) whose classes
    hold at least `rows_needed` eligible rows (or all leveled classes if none does)."""
    levels = np.array([v.level if v.level is not None and not v.excluded else 10**6 for v in verdicts] or [10**6])
    finite = sorted(set(levels[levels < 10**6].tolist()))
    if not finite:
        return np.zeros(0, np.int32), None
    row_levels = np.where(codes[eligible] >= 0, levels[np.maximum(codes[eligible], 0)], 10**6)
    for k in finite:
        if (row_levels <= k).sum() >= rows_needed:
            break
    return np.nonzero(levels <= k)[0].astype(np.int32), k


# -- image level ----------------------------------------------------------------------------------
def hash_files(paths: list[str], kind: str, dihedral: bool, distributor, progress: bool = True,
               desc: str = "hashing") -> dict[str, tuple[list[int], tuple[int, int]] | str]:
    """Hash files in parallel, reusing cached hashes: path -> (hashes, (w, h)) or a reason."""
    cache = HashCache(f"{kind}:{int(dihedral)}:{DRAFT_SIZE[0]}:v4")
    try:
        cached = {p: json.loads(v) for p, v in cache.get(paths).items()}
        out: dict = {p: (v[0], tuple(v[1])) for p, v in cached.items()}
        todo = [p for p in paths if p not in out]
        fresh = {}
        fn = partial(hash_file_or_reason, kind=kind, dihedral=dihedral)
        for p, res in zip(todo, bar(distributor.imap(fn, todo, batch=16), total=len(todo), desc=desc, unit="img",
                                     show=progress, leave=False)):
            out[p] = res
            if not isinstance(res, str):
                fresh[p] = json.dumps([res[0], list(res[1])])
        cache.put(fresh)
    finally:
        cache.close()
    return out


class ExactDuplicates:
    """Same file bytes as a positive, or same pixels as a negative kept earlier."""

    def __init__(self, positive_sha256: dict[str, str]):
        self.positive = positive_sha256            # file sha256 -> positive output path
        self.seen: dict[str, object] = {}

    def prepare(self, cands) -> None:
        pass

    def check(self, c) -> str | None:
        if c.file_sha256 in self.positive:
            c.dup_of = ("positive", self.positive[c.file_sha256], 0)
            return "exact copy of a positive"
        if c.encoded.pixel_sha256 in self.seen:
            c.dup_of = ("negative", self.seen[c.encoded.pixel_sha256], 0)
            return "exact duplicate of an earlier negative (same pixels)"
        return None

    def accept(self, c) -> None:
        self.seen[c.encoded.pixel_sha256] = c


class NearDuplicates:
    """Perceptual hash within `radius` of any positive (or its rotations/flips), or of a kept negative."""

    def __init__(self, positive_hashes: np.ndarray, positive_paths: list[str], radius: int):
        self.pos = positive_hashes                 # one row per hash; several per positive with dihedral
        self.pos_paths = positive_paths            # output path of each row's positive
        self.radius = radius
        self.kept: list[int] = []
        self.kept_cands: list = []
        self._accepted: set[int] = set()
        self._pos_near: dict = {}
        self._before: dict = {}
        self._within: dict = {}

    def prepare(self, cands) -> None:
        live = [c for c in cands if c.reason is None and c.phash is not None]
        self._pos_near, self._before, self._within, self._accepted = {}, {}, {}, set()
        if not live:
            return
        h = np.array([c.phash for c in live], dtype=np.uint64)
        # only matches within the radius matter: the index makes this cheap for 100k+ positives
        # only hits are kept: check() reads a missing candidate as "nothing within the radius"
        d, j = nearest_within(h, self.pos, self.radius)
        hit = np.flatnonzero(d <= self.radius).tolist()
        self._pos_near = {id(live[k]): (int(d[k]), int(j[k])) for k in hit}
        d, j = nearest_within(h, np.array(self.kept, dtype=np.uint64), self.radius)
        hit = np.flatnonzero(d <= self.radius).tolist()
        self._before = {id(live[k]): (int(d[k]), int(j[k])) for k in hit}
        ii, jj, dd = pairs_within(h, None, self.radius)
        for a, b, dist in zip(ii.tolist(), jj.tolist(), dd.tolist()):   # a < b: b comes later in priority
            self._within.setdefault(id(live[b]), []).append((live[a], dist))

    def check(self, c) -> str | None:
        if c.phash is None:
            return None
        d, j = self._pos_near.get(id(c), (65, -1))
        if d <= self.radius:
            c.dup_of = ("positive", self.pos_paths[j], d)
            return f"near-duplicate of a positive (hash distance {d})"
        d, j = self._before.get(id(c), (65, -1))
        if d <= self.radius:
            c.dup_of = ("negative", self.kept_cands[j], d)
            return f"near-duplicate of an earlier negative (hash distance {d})"
        for other, dist in self._within.get(id(c), ()):
            if id(other) in self._accepted:
                c.dup_of = ("negative", other, dist)
                return f"near-duplicate of an earlier negative (hash distance {dist})"
        return None

    def accept(self, c) -> None:
        if c.phash is not None:
            self.kept.append(c.phash)
            self.kept_cands.append(c)
            self._accepted.add(id(c))
