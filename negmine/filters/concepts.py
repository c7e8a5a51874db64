"""Positive names as concepts, and which source classes overlap them (a positive concept, a kind
of one, or a class that contains one), on the WordNet taxonomy of `negmine.filters.taxonomy`.

A positive name stands for the senses a photo of it shows (`resolve_concepts`): what COCO, LVIS,
Open Images and ImageNet-1k mean by it, WordNet's common visual senses, the other positives'
context; a name nothing places is refused (UnplacedName).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from negmine.errors import NegmineError
from negmine.filters.taxonomy import Taxonomy, name_key


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

    key = name_key(term)
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
    compound ('black bear') when WordNet has it, if it names no thing of its own
    (`_reads_as_modifier`: 'raccoon' beside 'dog' stays the raccoon). Where a name keeps several senses and some are near
    another positive's (within NEAR_STEPS), the far ones are dropped ('mouse' beside 'keyboard' is
    the device). A name none of these place is read as its longest run of words that names a
    visual sense when the other words name nothing visual ('raccoon-voc' -> 'raccoon', said in
    `note`; 'cats_and_dogs' is refused: `_known_part`), else, if it equals one of `labels`
    (the pool's class names), it is matched literally, else UnplacedName is raised naming the
    nearest WordNet entries and --concept. A `named` entry that names none of `terms` raises
    UnplacedName too (a misspelt --concept would otherwise do nothing).
    """
    named_in = named
    named = {name_key(k): v for k, v in (named or {}).items()}
    unused = [k for k in (named_in or {}) if name_key(k) not in {name_key(t) for t in terms}]
    if unused:
        raise UnplacedName(f"--concept {unused[0]!r}: no positive folder or --exclude name is called that "
                           f"(names: {', '.join(repr(t) for t in terms) or 'none'})")
    label_keys = {name_key(x) for x in labels}
    concepts, literal = [], []
    for term in terms:
        s = tax.from_wnid(term)
        if s is not None:
            concepts.append(Concept(term, [s], "wnid"))
            continue
        if name_key(term) in named:
            target = named[name_key(term)]
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
        if c.how == "wnid" or c.how.startswith("--concept") or not _reads_as_modifier(c.term, tax):
            continue
        word = name_key(c.term)
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
            meant = tax.dataset_senses(c.term)          # what a dataset means by the name stays, near or far
            near = [s for s in c.synsets if dist[s] <= best + 2 or s in meant]
            c.dropped += [(s, f"far from the other positives: {dist[s] if dist[s] < 10**6 else 'no'} steps "
                              f"vs {best}") for s in c.synsets if s not in near]
            c.synsets = near
    for c in concepts:
        if c.synsets:
            continue
        if name_key(c.term) in label_keys:
            c.how = "label"
            literal.append(c.term)
            continue
        raise UnplacedName(f"cannot place the positive name {c.term!r}: WordNet 3.0 and the COCO, LVIS, Open Images "
                           f"and ImageNet class names do not hold it" + _hint(c.term, tax)
                           + f"; name the concept with --concept \"{c.term}=WNID_OR_LEMMA\" or name the folder by its wnid")
    return concepts, literal


def _reads_as_modifier(term: str, tax: Taxonomy) -> bool:
    """Whether a name is a word users put before a head noun ('black' beside 'grizzly', 'polar',
    'sea'), not a thing of its own: no dataset (COCO, LVIS, Open Images, ImageNet) names it, and
    WordNet has no noun for it or its most-tagged noun sense is no physical object (black the
    colour: 4 of its tags). A name with a thing of its own ('raccoon', 'bird', 'teddy') keeps it:
    beside 'dog' it is not 'raccoon dog' or 'bird dog', which would let raccoons and birds into
    the negatives."""
    if tax.dataset_senses(term):
        return False
    senses = tax.lemma_synsets(term)
    if not senses:
        return True
    counts = tax.tag_counts(term)
    top = max(senses, key=lambda s: counts.get(s, 0))
    return counts.get(top, 0) > 0 and not tax.visual(top)


def _known_part(term: str, tax: Taxonomy) -> tuple[str, tuple] | None:
    """The longest run of a name's words that names something a photo shows, when the other words
    name nothing a photo shows ('raccoon-voc', '01_raccoon' -> 'raccoon'; 'cats_and_dogs' -> None):
    (the part, `_pick_senses` of it), or None when no part or two parts of one length qualify."""
    words = name_key(term).split("_")
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


# why a class WordNet cannot place is left out: nothing vouches that it is no positive
UNMAPPED_REASON = "not in WordNet: no check says it is not a positive (--allow-unmapped draws it)"


@dataclass
class ClassVerdict:
    label: str
    synsets: list[int] = field(default_factory=list)
    excluded: bool = False
    reason: str = ""                  # why excluded, with the path through the taxonomy
    level: int | None = None          # steps from a positive up to the closest shared ancestor
    ambiguous: bool = False
    mapped: bool = True


def judge_classes(labels: list[str], concepts: list[Concept], tax: Taxonomy, *, exclude_unmapped: bool = True,
                  senses=None) -> list[ClassVerdict]:
    """Decide for each source class whether it overlaps a positive concept, and how near it is.

    Nearness is measured from the senses of each concept that the pool actually overlaps ('hotdog'
    the sandwich, not the show-off, when the pool has a hotdog class), or from its visual senses
    when none does: the level is how many steps up from such a sense the closest shared ancestor is
    (siblings 1, cousins 2, ...). `senses`: label -> synsets (default `Taxonomy.lookup`, how class
    names are read; `negmine.filters.words.caption_senses` for the nouns of a pool's text).
    `exclude_unmapped`: a class WordNet cannot place is excluded (UNMAPPED_REASON): no check says
    it is not a positive, so it is drawn only when the user allows it (--allow-unmapped: False).
    """
    senses = senses or tax.lookup
    positive = {s: c for c in concepts for s in c.synsets}
    # A class that *contains* a positive is judged against the visual senses only: 'raccoon' the
    # fur would otherwise exclude every 'material' class.
    containable = {s for c in concepts for s in c.visual(tax)}
    raw = {name_key(c.term): c for c in concepts}
    up = {p: tax.levels_up(p) for p in positive}                  # ancestors of each positive
    verdicts, hits = [], set()
    for label in labels:
        v = ClassVerdict(label, senses(label))
        v.mapped = bool(v.synsets)
        v.ambiguous = len(v.synsets) > 1
        if name_key(label) in raw:
            v.excluded, v.reason = True, f"label equals the positive term {raw[name_key(label)].term!r}"
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
            v.excluded, v.reason = True, UNMAPPED_REASON
        verdicts.append(v)
    anchors = [p for c in concepts if c.anchor for p in ([s for s in c.synsets if s in hits] or c.visual(tax))]
    for v in verdicts:
        if not v.excluded and v.synsets and anchors:
            v.level = min((up[p][a] for s in v.synsets for a in tax.ancestors(s) for p in anchors if a in up[p]),
                          default=None)
    return verdicts


def recorded_exclusion_options(record: dict) -> dict:
    """The class-exclusion rule an earlier run recorded (its negmine.json `record`), as
    `plan_classes` keywords, so a term excluded again is judged by the same rule. Options a run
    did not record (or an older run's `exclude_unmapped`) are left to the defaults."""
    opts = record.get("options") or {}
    out = {}
    if isinstance(opts.get("max_contamination"), (int, float)):
        out["max_contamination"] = float(opts["max_contamination"])
    if isinstance(opts.get("allow_unmapped"), bool):
        out["allow_unmapped"] = opts["allow_unmapped"]
    return out
