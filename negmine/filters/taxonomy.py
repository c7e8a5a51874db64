"""WordNet 3.0 noun taxonomy: synsets, their lemmas, sense order and hypernyms, and the class
names of ImageNet-1k, COCO, LVIS and Open Images mapped to synsets. What a positive name stands
for, and which source classes overlap it, is decided from this in `negmine.filters.concepts`.

The data ships with the package (negmine/data, built by scripts/build_taxonomy.py and
scripts/build_vocab.py from Debian's wordnet-base, detectron2's COCO/LVIS tables and Open Images'
class names); no network at run time. An ImageNet wnid is "n" + the 8-digit data.noun offset.
"""

from __future__ import annotations

import gzip
import re
from collections import deque
from functools import lru_cache
from importlib import resources


WNID = re.compile(r"^n(\d{8})$")
PHYSICAL_OBJECT = 2684          # n00002684 object, physical object
_MORPH = [("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
          ("ies", "y"), ("s", "")]


def name_key(text: str, keep_case: bool = False) -> str:
    """The form class names are compared in: trimmed, lower-cased (unless `keep_case`), and each run
    of spaces, hyphens and underscores one underscore ('Golden retriever' -> 'golden_retriever')."""
    text = text.strip() if keep_case else text.strip().lower()
    return re.sub(r"[\s\-_]+", "_", text).strip("_")


class Taxonomy:
    """WordNet 3.0 nouns (synsets by data.noun offset), their sense order and tag counts, and the
    class names of ImageNet-1k, COCO, LVIS and Open Images mapped to synsets (negmine/data)."""

    def __init__(self, rows, exceptions: dict[str, str], imagenet: list[tuple[str, str]] = (),
                 senses: dict[str, tuple[tuple[int, int], ...]] | None = None,
                 vocab: list[tuple[str, str, str]] = ()):
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
                for key in (name_key(text, keep_case=True), name_key(text)):
                    if s not in table.setdefault(key, []):
                        table[key].append(s)
        # lemma -> ((offset, tag count), ...) in WordNet's sense order (index.noun, cntlist.rev)
        self.senses: dict[str, tuple[tuple[int, int], ...]] = senses or {}
        # dataset class name (normalised) -> [(source, offset)]: what COCO, LVIS, Open Images mean by it
        self.vocab: dict[str, list[tuple[str, int]]] = {}
        for source, name, wnid in vocab:
            entry = (source, int(wnid[1:]))
            if entry not in self.vocab.setdefault(name_key(name), []):
                self.vocab[name_key(name)].append(entry)
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
        senses = {}
        with gzip.open(data.joinpath("wordnet-noun-senses.tsv.gz").open("rb"), "rt", encoding="utf-8") as f:
            for line in f:
                lemma, found = line.rstrip("\n").split("\t")
                senses[lemma] = tuple((int(o), int(n)) for o, n in (x.split(":") for x in found.split(",")))
        vocab = [tuple(line.split("\t")) for line in
                 data.joinpath("vocab-names.tsv").read_text(encoding="utf-8").splitlines()
                 if line and not line.startswith("#")]
        return cls(rows, exc, imagenet, senses, vocab)

    # -- naming ---------------------------------------------------------------------------------
    def wnid(self, s: int) -> str:
        return f"n{s:08d}"

    def label(self, s: int) -> str:
        return f"{self.lemmas[s][0].replace('_', ' ')} ({self.wnid(s)})"

    def from_wnid(self, text: str) -> int | None:
        m = WNID.match(text.strip())
        return int(m.group(1)) if m and int(m.group(1)) in self.lemmas else None

    def base_form(self, word: str, table: dict) -> str | None:
        """The key of `table` a word is filed under: itself, or its singular by WordNet's plural
        rules (noun.exc, then suffixes) on the last token; None when neither is there."""
        w = name_key(word)
        if not w:
            return None
        if w in table:
            return w
        if not w.isascii():                    # 'café' is WordNet's 'cafe'
            import unicodedata

            w = "".join(ch for ch in unicodedata.normalize("NFKD", w) if not unicodedata.combining(ch))
            if w in table:
                return w
        head, _, last = w.rpartition("_")
        prefix = head + "_" if head else ""
        bases = [self.exceptions[last]] if last in self.exceptions else []
        bases += [last[: -len(a)] + b for a, b in _MORPH if last.endswith(a) and len(last) > len(a)]
        return next((prefix + b for b in bases if prefix + b in table), None)

    def lemma_synsets(self, word: str) -> list[int]:
        """All noun senses of a word, in WordNet's sense order (most frequent first), trying
        WordNet's plural rules on the last token."""
        key = self.base_form(word, self.by_lemma)
        if key is None:
            return []
        ranked = [o for o, _ in self.senses.get(key, ())]
        return ranked + [s for s in self.by_lemma[key] if s not in ranked]

    def tag_counts(self, word: str) -> dict[int, int]:
        """Sense -> how often WordNet's semantic concordance tagged the word with it (cntlist.rev)."""
        key = self.base_form(word, self.senses)
        return dict(self.senses.get(key, ())) if key else {}

    def dataset_senses(self, word: str) -> dict[int, list[str]]:
        """What datasets mean by a class name: sense -> the vocabularies naming it so ('coco',
        'lvis', 'openimages', 'imagenet'), from negmine/data/vocab-names.tsv and the ImageNet-1k names."""
        out: dict[int, list[str]] = {}
        key = self.base_form(word, self.vocab)
        for source, s in self.vocab.get(key, []) if key else []:
            out.setdefault(s, []).append(source)
        for k in dict.fromkeys((name_key(word, keep_case=True), name_key(word))):
            for table in (self.imagenet_full, self.imagenet_lemma):
                for s in table.get(k, []):
                    if "imagenet" not in out.setdefault(s, []):
                        out[s].append("imagenet")
        return out

    def lookup(self, name: str) -> list[int]:
        """Synsets for a class name: a wnid, a lemma, or an ImageNet-style list 'tench, Tinca tinca'.

        With several comma-separated names, the synsets all of them share win (that is how
        ImageNet names tell 'crane' the bird from 'crane' the machine)."""
        s = self.from_wnid(name)
        if s is not None:
            return [s]
        exact = name_key(name, keep_case=True)                       # 'Cardigan' the corgi before the sweater
        for table in (self.imagenet_full, self.imagenet_lemma) if exact != name_key(name) else ():
            if exact in table:
                return sorted(table[exact])
        if name_key(name) in self.imagenet_full:
            return sorted(self.imagenet_full[name_key(name)])
        # a single dataset name: what ImageNet and the detection vocabularies mean by it, all of them
        # ('kite' the bird in ImageNet, the toy in COCO: a pool label could be either)
        found = sorted(self.dataset_senses(name))
        if found:
            return found
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

    def link(self, a: int, b: int) -> tuple[list[int], int | None]:
        """The shortest way from synset `a` up to a hypernym it shares with `b` and down to `b`:
        (the synsets along it, a first and b last; the shared hypernym), or ([], None) when they
        share none. Ties are broken by the lower offset, so the answer is stable."""
        up_a, up_b = self.levels_up(a), self.levels_up(b)
        shared = [(up_a[h] + up_b[h], h) for h in up_a if h in up_b]
        if not shared:
            return [], None
        _, top = min(shared)
        down = self.path(b, top)[::-1]          # top ... b
        return self.path(a, top) + down[1:], top
