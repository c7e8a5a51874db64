"""WordNet 3.0 noun taxonomy: map labels to synsets, and decide which source classes overlap the
positives (a positive concept, a kind of one, or a class that contains one).

A positive name stands for the senses a photo of it shows (`resolve_concepts`): what COCO, LVIS,
Open Images and ImageNet-1k mean by it, WordNet's common visual senses, the other positives'
context; a name nothing places is refused (UnplacedName).

The data ships with the package (negmine/data, built by scripts/build_taxonomy.py and
scripts/build_vocab.py from Debian's wordnet-base, detectron2's COCO/LVIS tables and Open Images'
class names); no network at run time. An ImageNet wnid is "n" + the 8-digit data.noun offset.
"""

from __future__ import annotations

import gzip
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from negmine.errors import NegmineError

WNID = re.compile(r"^n(\d{8})$")
PHYSICAL_OBJECT = 2684          # n00002684 object, physical object
_MORPH = [("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
          ("ies", "y"), ("s", "")]


def _norm(text: str, keep_case: bool = False) -> str:
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
                for key in (_norm(text, keep_case=True), _norm(text)):
                    if s not in table.setdefault(key, []):
                        table[key].append(s)
        # lemma -> ((offset, tag count), ...) in WordNet's sense order (index.noun, cntlist.rev)
        self.senses: dict[str, tuple[tuple[int, int], ...]] = senses or {}
        # dataset class name (normalised) -> [(source, offset)]: what COCO, LVIS, Open Images mean by it
        self.vocab: dict[str, list[tuple[str, int]]] = {}
        for source, name, wnid in vocab:
            entry = (source, int(wnid[1:]))
            if entry not in self.vocab.setdefault(_norm(name), []):
                self.vocab[_norm(name)].append(entry)
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
        w = _norm(word)
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
        for k in dict.fromkeys((_norm(word, keep_case=True), _norm(word))):
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
        exact = _norm(name, keep_case=True)                       # 'Cardigan' the corgi before the sweater
        for table in (self.imagenet_full, self.imagenet_lemma) if exact != _norm(name) else ():
            if exact in table:
                return sorted(table[exact])
        if _norm(name) in self.imagenet_full:
            return sorted(self.imagenet_full[_norm(name)])
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


@dataclass
class Concept:
    """A positive concept: what the user named, and the synsets it stands for (`synsets`: the
    senses a photo of the class shows; `dropped`: the word's other senses, with why)."""

    term: str
    synsets: list[int]
    how: str                          # "wnid", "lemma", "vocabulary", "--concept", "label", ...
    anchor: bool = True               # measure --near from it (the positives, not extra exclusions)
    dropped: list[tuple[int, str]] = field(default_factory=list)   # (sense, reason)
    note: str = ""                    # what a user should know (a name read as its prefix, ...)

    def visual(self, tax: "Taxonomy") -> list[int]:
        """The senses a photo could show; all senses when none is known to be visual."""
        return [s for s in self.synsets if tax.visual(s)] or list(self.synsets)


class UnplacedName(NegmineError):
    """A positive or --exclude name that neither WordNet nor the shipped vocabularies hold."""


RARE_SHARE = 0.25     # a visual sense tagged under a quarter as often as the word's commonest is rare
NEAR_STEPS = 6        # senses this many steps (up and down) from another positive's are "near" it


def _pick_senses(term: str, tax: Taxonomy) -> tuple[list[int], list[tuple[int, str]], str]:
    """The senses a photo of a class named `term` shows: (kept, dropped with reasons, how).

    Evidence, in order: what datasets mean by the name (COCO, LVIS, Open Images, ImageNet-1k:
    `Taxonomy.dataset_senses`) is kept; a sense no photo shows (not a physical object nor an
    ImageNet class, `Taxonomy.visual`) is dropped; among the visual senses, one WordNet's
    concordance tagged under RARE_SHARE as often as the word's commonest visual sense is dropped as
    rare. With no tag counts at all (every visual sense 0) and no dataset sense, every visual sense
    is kept. Several kept senses mean the name is ambiguous: all of them are excluded."""
    wn = tax.lemma_synsets(term)
    data = tax.dataset_senses(term)
    counts = tax.tag_counts(term)
    visual = [s for s in wn if tax.visual(s)]
    top = max((counts.get(s, 0) for s in visual), default=0)
    kept, dropped = [], []
    for s in wn:
        n = counts.get(s, 0)
        if s in data:
            kept.append(s)
        elif not visual and not data:
            kept.append(s)                    # nothing visual to prefer: the word's every sense
        elif s not in visual:
            dropped.append((s, "not a physical object in WordNet (nor an ImageNet class, a kind of one or a category of one)"))
        elif top == 0 and not data:
            kept.append(s)
        elif n >= max(1, top * RARE_SHARE):
            kept.append(s)
        elif top == 0:
            dropped.append((s, f"rare sense, not what datasets mean by {term!r} "
                               f"({', '.join(sorted({v for vs in data.values() for v in vs}))})"))
        else:
            dropped.append((s, f"rare sense: tag count {n} vs {top}"))
    kept += [s for s in data if s not in kept]
    how = "lemma" if wn else "vocabulary (" + ", ".join(sorted({v for vs in data.values() for v in vs})) + ")"
    return kept, dropped, how


def _steps(a: int, b: int, tax: Taxonomy) -> int:
    """Steps from a up to the closest ancestor shared with b and down to b (10**6: none)."""
    ua, ub = tax.levels_up(a), tax.levels_up(b)
    return min((ua[x] + ub[x] for x in ua if x in ub), default=10**6)


def suggest(term: str, tax: Taxonomy, n: int = 5) -> list[str]:
    """The WordNet lemmas (and dataset names) spelled nearest to `term` (difflib), for messages."""
    import difflib

    key = _norm(term)
    found = difflib.get_close_matches(key, list(tax.by_lemma) + list(tax.vocab), n=n, cutoff=0.6)
    return [f"{w.replace('_', ' ')} ({', '.join(tax.wnid(s) for s in (tax.lemma_synsets(w) or sorted(tax.dataset_senses(w)))[:2])})"
            for w in dict.fromkeys(found)]


def resolve_concepts(terms: list[str], tax: Taxonomy, *, named: dict[str, str] | None = None,
                     labels: Sequence[str] = ()) -> tuple[list[Concept], list[str]]:
    """Terms (folder names, --exclude values) -> concepts; returns (concepts, terms matched only
    literally to source labels).

    A wnid is exact, and so is a name given a concept by `named` ({name: wnid or lemma}, from
    --concept). Otherwise a name stands for the senses a photo of it shows (`_pick_senses`): what
    COCO, LVIS, Open Images or ImageNet mean by it, and WordNet's common visual senses. A word that
    is a modifier of another positive's head noun ('black' beside 'grizzly', a bear) stands for the
    compound ('black bear') when WordNet has it. Where a name keeps several senses and some are near
    another positive's (within NEAR_STEPS), the far ones are dropped ('mouse' beside 'keyboard' is
    the device). A name none of these place is read as its longest run of words that names a
    visual sense when the other words name nothing visual ('raccoon-voc' -> 'raccoon', said in
    `note`; 'cats_and_dogs' is refused: `_known_part`), else, if it equals one of `labels`
    (the pool's class names), it is matched literally, else UnplacedName is raised naming the
    nearest WordNet entries and --concept. A `named` entry that names none of `terms` raises
    UnplacedName too (a misspelt --concept would otherwise do nothing).
    """
    named_in = named
    named = {_norm(k): v for k, v in (named or {}).items()}
    unused = [k for k in (named_in or {}) if _norm(k) not in {_norm(t) for t in terms}]
    if unused:
        raise UnplacedName(f"--concept {unused[0]!r}: no positive folder or --exclude name is called that "
                           f"(names: {', '.join(repr(t) for t in terms) or 'none'})")
    label_keys = {_norm(x) for x in labels}
    concepts, literal = [], []
    for term in terms:
        s = tax.from_wnid(term)
        if s is not None:
            concepts.append(Concept(term, [s], "wnid"))
            continue
        if _norm(term) in named:
            target = named[_norm(term)]
            s = tax.from_wnid(target)
            if s is not None:
                concepts.append(Concept(term, [s], f"--concept {target}"))
                continue
            kept, dropped, _ = _pick_senses(target, tax)
            if not kept:
                raise UnplacedName(f"--concept {term}={target}: {target!r} is neither a WordNet noun nor a wnid"
                                   + _hint(target, tax))
            concepts.append(Concept(term, kept, f"--concept {target}", dropped=dropped))
            continue
        kept, dropped, how = _pick_senses(term, tax)
        note = ""
        if not kept:
            found = _known_part(term, tax)
            if found:
                part, (kept, dropped, how) = found
                how = f"{how}, as {part!r}"
                note = (f"positive name {term!r} is read as {part!r} (the rest names nothing a photo shows); "
                        f"--concept \"{term}=WNID\" names it exactly")
        concepts.append(Concept(term, kept, how, dropped=dropped, note=note))
    heads = {}
    for c in concepts:
        for s in c.synsets:
            for a, d in tax.levels_up(s).items():
                if d <= 2:
                    heads.setdefault(id(c), set()).update(lemma.lower().rsplit("_", 1)[-1] for lemma in tax.lemmas[a])
    for c in concepts:
        if c.how == "wnid" or c.how.startswith("--concept"):
            continue
        word = _norm(c.term)
        for head in sorted(set().union(*(h for k, h in heads.items() if k != id(c)))):
            if head == word or word.endswith("_" + head):
                continue
            extra = [s for s in tax.lemma_synsets(f"{word}_{head}") if s not in c.synsets]
            if extra:
                why = f"modifier of a positive's head noun: stands for {word.replace('_', ' ')} {head}"
                c.dropped += [(s, why) for s in c.synsets]
                c.synsets = extra
                c.how = f"lemma {word}_{head}"
                break
    # context: a name still ambiguous keeps the senses near the other positives, when some are
    anchors = [(c, s) for c in concepts for s in c.synsets]
    for c in concepts:
        if len(c.synsets) < 2 or c.how == "wnid" or c.how.startswith("--concept"):
            continue
        others = [s for o, s in anchors if o is not c]
        if not others:
            continue
        dist = {s: min(_steps(s, o, tax) for o in others) for s in c.synsets}
        best = min(dist.values())
        if best <= NEAR_STEPS and any(d > best + 2 for d in dist.values()):
            near = [s for s in c.synsets if dist[s] <= best + 2]
            c.dropped += [(s, f"far from the other positives: {dist[s] if dist[s] < 10**6 else 'no'} steps "
                              f"vs {best}") for s in c.synsets if s not in near]
            c.synsets = near
    for c in concepts:
        if c.synsets:
            continue
        if _norm(c.term) in label_keys:
            c.how = "label"
            literal.append(c.term)
            continue
        raise UnplacedName(f"cannot place the positive name {c.term!r}: WordNet 3.0 and the COCO, LVIS, Open Images "
                           f"and ImageNet class names do not hold it" + _hint(c.term, tax)
                           + f"; name the concept with --concept \"{c.term}=WNID_OR_LEMMA\" or name the folder by its wnid")
    return concepts, literal


def _known_part(term: str, tax: Taxonomy) -> tuple[str, tuple] | None:
    """The longest run of a name's words that names something a photo shows, when the other words
    name nothing a photo shows ('raccoon-voc', '01_raccoon' -> 'raccoon'; 'cats_and_dogs' -> None):
    (the part, `_pick_senses` of it), or None when no part or two parts of one length qualify."""
    words = _norm(term).split("_")
    shown = {w: any(tax.visual(x) for x in _pick_senses(w, tax)[0]) for w in set(words)}
    for size in range(len(words) - 1, 0, -1):
        hits = []
        for i in range(len(words) - size + 1):
            if any(shown[w] for w in words[:i] + words[i + size:]):
                continue
            picked = _pick_senses("_".join(words[i:i + size]), tax)
            if any(tax.visual(x) for x in picked[0]):
                hits.append((" ".join(words[i:i + size]), picked))
        if hits:
            return hits[0] if len(hits) == 1 else None
    return None


def _hint(term: str, tax: Taxonomy) -> str:
    near = suggest(term, tax)
    return f" (nearest WordNet entries: {'; '.join(near)})" if near else ""


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
