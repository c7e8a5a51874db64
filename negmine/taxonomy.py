"""WordNet 3.0 noun taxonomy: map labels to synsets, and decide which source classes overlap the
positives (a positive concept, a kind of one, or a class that contains one).

The data ships with the package (negmine/data, built by scripts/build_taxonomy.py from Debian's
wordnet-base); no network at run time. An ImageNet wnid is "n" + the 8-digit data.noun offset.
"""

from __future__ import annotations

import gzip
import re
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

WNID = re.compile(r"^n(\d{8})$")
PHYSICAL_OBJECT = 2684          # n00002684 object, physical object
_MORPH = [("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
          ("ies", "y"), ("s", "")]


def _norm(text: str, keep_case: bool = False) -> str:
    text = text.strip() if keep_case else text.strip().lower()
    return re.sub(r"[\s\-_]+", "_", text).strip("_")


class Taxonomy:
    def __init__(self, rows, exceptions: dict[str, str], imagenet: list[tuple[str, str]] = ()):
        self.lemmas: dict[int, tuple[str, ...]] = {}
        self.hypernyms: dict[int, tuple[int, ...]] = {}
        self.by_lemma: dict[str, list[int]] = {}
        for offset, lemmas, hypers in rows:
            self.lemmas[offset] = lemmas
            self.hypernyms[offset] = hypers
            for lemma in lemmas:
                self.by_lemma.setdefault(lemma.lower(), []).append(offset)
        self.exceptions = exceptions
        # ImageNet-1k class names -> synsets: a name-labelled ImageNet-derived pool maps exactly,
        # and a bare lemma ('hen') prefers the sense ImageNet has a class for.
        self.imagenet_full: dict[str, list[int]] = {}
        self.imagenet_lemma: dict[str, list[int]] = {}
        for wnid, names in imagenet:
            s = int(wnid[1:])
            keyed = [(self.imagenet_full, names)] + [(self.imagenet_lemma, x) for x in names.split(",")]
            for table, text in keyed:
                for key in (_norm(text, keep_case=True), _norm(text)):
                    if s not in table.setdefault(key, []):
                        table[key].append(s)
        self._hyponyms: dict[int, list[int]] | None = None
        self.imagenet = {int(w[1:]) for w, _ in imagenet}
        self._imagenet_ancestors = set().union(*(self.ancestors(s) for s in self.imagenet)) if imagenet else set()

    def visual(self, s: int) -> bool:
        """A sense a photo could be labelled with: a physical object ('raccoon' the animal, not the
        fur), or an ImageNet class, a kind of one, or a category holding one ('hotdog' the food)."""
        up = self.ancestors(s)
        return PHYSICAL_OBJECT in up or s in self._imagenet_ancestors or not self.imagenet.isdisjoint(up)

    @staticmethod
    @lru_cache(maxsize=1)
    def version() -> str | None:
        """A key for the shipped data (package version, data files' sizes and times), or None when
        it cannot be told (zipped package): what caches of the taxonomy and its answers go by."""
        import hashlib
        import os

        from negmine import __version__

        data = resources.files("negmine") / "data"
        try:
            stamp = [(f.name, os.stat(str(f)).st_size, os.stat(str(f)).st_mtime_ns) for f in sorted(
                data.iterdir(), key=lambda f: f.name) if f.name.endswith((".gz", ".tsv"))]
        except OSError:
            return None
        return hashlib.sha256(repr((__version__, stamp)).encode()).hexdigest()[:16]

    @classmethod
    @lru_cache(maxsize=1)
    def load(cls) -> "Taxonomy":
        """The shipped taxonomy; the parsed form is kept in the negmine cache (a pickle keyed by
        the package version and data files), which cuts ~0.5 s from every run's start."""
        import gc
        import os
        import pickle

        from negmine.cache import cache_dir

        data = resources.files("negmine") / "data"
        key = cls.version()
        try:
            if key is None:
                raise OSError("no data stamp")
            path = cache_dir("taxonomy") / f"{key}.pickle"
        except OSError:                        # zipped package or unwritable cache: parse every time
            return cls._parse(data)
        if path.is_file():
            gc.disable()                       # ~80k small tuples: the collector only slows loading
            try:
                with open(path, "rb") as f:
                    tax = pickle.load(f)
                if isinstance(tax, cls):
                    return tax
            except Exception:                  # stale or torn: rebuild below
                pass
            finally:
                gc.enable()
        tax = cls._parse(data)
        try:
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                pickle.dump(tax, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError:
            pass
        return tax

    @classmethod
    def _parse(cls, data) -> "Taxonomy":
        with gzip.open(data.joinpath("wordnet-nouns.tsv.gz").open("rb"), "rt", encoding="utf-8") as f:
            rows = []
            for line in f:
                offset, lemmas, hypers = line.rstrip("\n").split("\t")
                rows.append((int(offset), tuple(lemmas.split("|")),
                             tuple(int(h) for h in hypers.split(",")) if hypers else ()))
        with gzip.open(data.joinpath("wordnet-noun-exc.txt.gz").open("rb"), "rt", encoding="utf-8") as f:
            exc = dict(line.split()[:2] for line in f if line.strip())
        imagenet = [tuple(line.split("\t", 1)) for line in
                    data.joinpath("imagenet-1k-classes.tsv").read_text(encoding="utf-8").splitlines() if line]
        return cls(rows, exc, imagenet)

    # -- naming ---------------------------------------------------------------------------------
    def wnid(self, s: int) -> str:
        return f"n{s:08d}"

    def label(self, s: int) -> str:
        return f"{self.lemmas[s][0].replace('_', ' ')} ({self.wnid(s)})"

    def from_wnid(self, text: str) -> int | None:
        m = WNID.match(text.strip())
        return int(m.group(1)) if m and int(m.group(1)) in self.lemmas else None

    def lemma_synsets(self, word: str) -> list[int]:
        """All noun senses of a word, trying WordNet's plural rules on the last token."""
        w = _norm(word)
        if not w:
            return []
        if w in self.by_lemma:
            return list(self.by_lemma[w])
        head, _, last = w.rpartition("_")
        prefix = head + "_" if head else ""
        bases = [self.exceptions[last]] if last in self.exceptions else []
        bases += [last[: -len(a)] + b for a, b in _MORPH if last.endswith(a) and len(last) > len(a)]
        for base in bases:
            if prefix + base in self.by_lemma:
                return list(self.by_lemma[prefix + base])
        return []

    def lookup(self, name: str) -> list[int]:
        """Synsets for a class name: a wnid, a lemma, or an ImageNet-style list 'tench, Tinca tinca'.

        With several comma-separated names, the synsets all of them share win (that is how
        ImageNet names tell 'crane' the bird from 'crane' the machine)."""
        s = self.from_wnid(name)
        if s is not None:
            return [s]
        for key in (_norm(name, keep_case=True), _norm(name)):   # 'Cardigan' the corgi before the sweater
            for table in (self.imagenet_full, self.imagenet_lemma):
                if key in table:
                    return sorted(table[key])
        parts = [p for p in (x.strip() for x in name.split(",")) if p]
        if not parts:
            return []
        senses = [set(self.lemma_synsets(p)) for p in parts]
        shared = set.intersection(*senses) if all(senses) else set()
        if shared:
            return sorted(shared)
        return self.lemma_synsets(parts[0])

    # -- structure ------------------------------------------------------------------------------
    def ancestors(self, s: int) -> dict[int, int]:
        """Every hypernym of s (s included), with the next step towards s, for paths."""
        prev = {s: s}
        queue = deque([s])
        while queue:
            cur = queue.popleft()
            for h in self.hypernyms.get(cur, ()):
                if h not in prev:
                    prev[h] = cur
                    queue.append(h)
        return prev

    def path(self, lower: int, upper: int) -> list[int]:
        """The hypernym path from `lower` up to its ancestor `upper`."""
        prev = self.ancestors(lower)
        if upper not in prev:
            return []
        out = [upper]
        while out[-1] != lower:
            out.append(prev[out[-1]])
        return out[::-1]

    def path_text(self, lower: int, upper: int) -> str:
        return " -> ".join(self.lemmas[s][0].replace("_", " ") for s in self.path(lower, upper))

    def hyponyms(self, s: int) -> list[int]:
        if self._hyponyms is None:
            self._hyponyms = {}
            for child, hypers in self.hypernyms.items():
                for h in hypers:
                    self._hyponyms.setdefault(h, []).append(child)
        return self._hyponyms.get(s, [])

    def levels_up(self, s: int) -> dict[int, int]:
        """Ancestors of s with how many steps up they are (shortest)."""
        dist = {s: 0}
        queue = deque([s])
        while queue:
            cur = queue.popleft()
            for h in self.hypernyms.get(cur, ()):
                if h not in dist:
                    dist[h] = dist[cur] + 1
                    queue.append(h)
        return dist


@dataclass
class Concept:
    """A positive concept: what the user named, and the synsets it stands for."""

    term: str
    synsets: list[int]
    how: str                          # "wnid", "lemma", "label" (raw label match only), ...
    anchor: bool = True               # measure --near from it (the positives, not extra exclusions)

    def visual(self, tax: "Taxonomy") -> list[int]:
        """The senses a photo could show; all senses when none is known to be visual."""
        return [s for s in self.synsets if tax.visual(s)] or list(self.synsets)


def resolve_concepts(terms: list[str], tax: Taxonomy) -> tuple[list[Concept], list[str]]:
    """Terms (folder names, --exclude values) -> concepts; returns (concepts, unmapped terms).

    A word stands for all its noun senses: excluding too much costs one source class, excluding
    too little puts positives among the negatives. A wnid is exact. A word that is a modifier of
    another positive's head noun ('black' beside 'grizzly', a bear) also maps to the compound
    ('black bear') when WordNet has it.
    """
    concepts, unmapped = [], []
    for term in terms:
        s = tax.from_wnid(term)
        if s is not None:
            concepts.append(Concept(term, [s], "wnid"))
            continue
        # a positive word: every WordNet sense, plus the ImageNet class it names (a pool label, by
        # contrast, maps to the ImageNet class first: that is what it was labelled as)
        synsets = list(dict.fromkeys(tax.lemma_synsets(term) + tax.lookup(term)))
        concepts.append(Concept(term, synsets, "lemma" if synsets else "label"))
        if not synsets:
            unmapped.append(term)
    heads = set()
    for c in concepts:
        for s in c.synsets:
            for a, d in tax.levels_up(s).items():
                if d <= 2:
                    heads.update(lemma.lower().rsplit("_", 1)[-1] for lemma in tax.lemmas[a])
    for c in concepts:
        if c.how == "wnid":
            continue
        word = _norm(c.term)
        for head in sorted(heads):
            if head == word or word.endswith("_" + head):
                continue
            extra = [s for s in tax.lemma_synsets(f"{word}_{head}") if s not in c.synsets]
            if extra:
                c.synsets.extend(extra)
                c.how += f"+{word}_{head}"
                if c.term in unmapped:
                    unmapped.remove(c.term)
    return concepts, unmapped


@dataclass
class ClassVerdict:
    label: str
    synsets: list[int] = field(default_factory=list)
    excluded: bool = False
    reason: str = ""                  # why excluded, with the path through the taxonomy
    level: int | None = None          # steps from a positive up to the closest shared ancestor
    ambiguous: bool = False
    mapped: bool = True


def judge_classes(labels: list[str], concepts: list[Concept], tax: Taxonomy, *, exclude_unmapped: bool = False
                  ) -> list[ClassVerdict]:
    """Decide for each source class whether it overlaps a positive concept, and how near it is.

    Nearness is measured from the senses of each concept that the pool actually overlaps ('hotdog'
    the sandwich, not the show-off, when the pool has a hotdog class), or from its visual senses
    when none does: the level is how many steps up from such a sense the closest shared ancestor is
    (siblings 1, cousins 2, ...).
    """
    positive = {s: c for c in concepts for s in c.synsets}
    # A class that *contains* a positive is judged against the visual senses only: 'raccoon' the
    # fur would otherwise exclude every 'material' class.
    containable = {s for c in concepts for s in c.visual(tax)}
    raw = {_norm(c.term): c for c in concepts}
    up = {p: tax.levels_up(p) for p in positive}                  # ancestors of each positive
    verdicts, hits = [], set()
    for label in labels:
        v = ClassVerdict(label, tax.lookup(label))
        v.mapped = bool(v.synsets)
        v.ambiguous = len(v.synsets) > 1
        if _norm(label) in raw:
            v.excluded, v.reason = True, f"label equals the positive term {raw[_norm(label)].term!r}"
        for s in v.synsets:
            mine = tax.ancestors(s)
            for p in positive:
                if p in mine:
                    hits.add(p)
                    if not v.excluded:
                        v.excluded = True
                        v.reason = (f"is the positive {tax.label(p)}" if p == s else
                                    f"is a kind of {tax.label(p)}: {tax.path_text(s, p)}")
                elif s in up[p] and p in containable:
                    hits.add(p)
                    if not v.excluded:
                        v.excluded = True
                        v.reason = f"contains the positive {tax.label(p)}: {tax.path_text(p, s)}"
        if v.excluded and v.ambiguous:
            v.reason += f" (ambiguous name: {', '.join(tax.label(s) for s in v.synsets)})"
        if not v.mapped and exclude_unmapped and not v.excluded:
            v.excluded, v.reason = True, "not found in WordNet (--exclude-unmapped)"
        verdicts.append(v)
    anchors = [p for c in concepts if c.anchor for p in ([s for s in c.synsets if s in hits] or c.visual(tax))]
    for v in verdicts:
        if not v.excluded and v.synsets and anchors:
            v.level = min((up[p][a] for s in v.synsets for a in tax.ancestors(s) for p in anchors if a in up[p]),
                          default=None)
    return verdicts
