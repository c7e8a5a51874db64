"""`cutout --classes`: which annotated objects are the named concepts, judged as `sample` judges a
pool's classes.

A `--classes` name is placed as a positive name is (`taxonomy.resolve_concepts`: WordNet, the COCO,
LVIS, Open Images and ImageNet vocabularies, the senses a photo shows, `--concept`; a name nothing
places is refused, unless an annotation class has that very name). Each annotation class name is
then judged against every concept as a pool class is (`taxonomy.judge_classes`): it is removed when
it is the concept, a kind of it (`puppy` for `dog`), contains it (`animal`), or equals the name
(case, spaces, `-` and `_` aside: `Dog`, `dog`). An annotation class that cannot be placed (VOC's
`diningtable`, a YOLO class id `3`, a box with no class) cannot be told apart from the concepts, so
its objects are removed too (fail closed: a cutout never keeps an object nobody could judge), and
the run says so; `--concept NAME=WNID_OR_LEMMA` says what such a name means, and it is then judged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from negmine.errors import NegmineError
from negmine.filters.taxonomy import Taxonomy, name_key
from negmine.filters.concepts import UnplacedName, judge_classes, resolve_concepts

NO_NAME = "(no class)"        # how a box without a class name is listed


@dataclass
class ObjectClasses:
    """The verdict on every annotation class name for one `--classes` list.

    matched: {annotation name: [{"concept": --classes name, "reason": why}, ...]} (removed);
    unplaced: names nothing places (removed too, fail closed); kept: names judged to be none of the
    concepts; concepts: the `--classes` names as placed (term, how, senses used and dropped);
    literal: --classes names matched to annotation names only by spelling; notes: what the run must
    say about the names (a name read as a part of it, a literal match)."""

    matched: dict[str, list[dict]] = field(default_factory=dict)
    unplaced: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    concepts: list[dict] = field(default_factory=list)
    literal: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    objects: dict[str, int] = field(default_factory=dict)     # annotated objects per class name

    def removes(self, label: str | None) -> bool:
        """Whether an object of this annotation class is cut out."""
        name = NO_NAME if label is None else label
        return name in self.matched or name in self.unplaced

    def of_boxes(self, boxes: list[list]) -> dict[str, list[str] | None]:
        """A manifest row's account of the objects it removed (`Box.as_list` rows): {annotation class:
        the --classes names it matched, or None for a class nothing places (removed, fail closed)}."""
        out = {}
        for b in boxes:
            name = NO_NAME if b[4] is None else b[4]
            out[name] = [m["concept"] for m in self.matched[name]] if name in self.matched else None
        return dict(sorted(out.items()))

    def record(self) -> dict:
        """What negmine.json records under `classes`."""
        return {"concepts": self.concepts, "matched": self.matched, "unplaced_removed": self.unplaced,
                "kept": self.kept, "objects": self.objects}

    def warnings(self) -> list[str]:
        """Lines for the run's summary (and the report) and negmine.json `warnings`."""
        out = list(self.notes)
        if self.unplaced:
            n = sum(self.objects.get(x, 0) for x in self.unplaced)
            shown = ", ".join(repr(x) for x in self.unplaced[:10]) + (" ..." if len(self.unplaced) > 10 else "")
            out.append(f"annotation classes {shown} cannot be placed (not in WordNet or the shipped vocabularies, "
                       f"or a bare class id), so nothing tells whether they are {', '.join(repr(c['term']) for c in self.concepts)}: their {n} objects "
                       "are removed too; --concept \"NAME=WNID_OR_LEMMA\" says what a name means")
        return out


def judge_object_classes(terms: Iterable[str], labels: Iterable[str | None],
                         named: dict[str, str] | None = None) -> ObjectClasses:
    """Judge annotation class names (`labels`, None: a box without a class) against the `--classes`
    names (`terms`); `named` is --concept ({name: wnid or lemma}) for a term or an annotation name.

    Raises NegmineError when `terms` names nothing, and negmine.filters.taxonomy.UnplacedName (one
    line) for a --classes name nothing places and
    no annotation class is called, for a --concept target that is neither a WordNet noun nor a wnid,
    and for a --concept name that is neither a --classes name nor an annotation class."""
    terms = list(dict.fromkeys(t.strip() for t in terms if t.strip()))
    if not terms:
        raise NegmineError("--classes names no class (give comma-separated names, e.g. --classes dog,cat)")
    counts: dict[str, int] = {}
    for label in labels:
        name = NO_NAME if label is None else label
        counts[name] = counts.get(name, 0) + 1
    names = sorted(n for n in counts if n != NO_NAME)
    named = dict(named or {})
    term_keys, name_keys = {name_key(t) for t in terms}, {name_key(n): n for n in names}
    for k in named:
        if name_key(k) not in term_keys and name_key(k) not in name_keys:
            raise UnplacedName(f"--concept {k!r}: no --classes name or annotation class is called that "
                               f"(--classes: {', '.join(repr(t) for t in terms)})")
    tax = Taxonomy.load()
    concepts, literal = resolve_concepts(terms, tax, named={k: v for k, v in named.items() if name_key(k) in term_keys},
                                         labels=names)
    # an annotation name --concept explains is judged by what it was said to mean
    said = {name_keys[name_key(k)]: v for k, v in named.items() if name_key(k) not in term_keys}
    for name, target in said.items():
        if tax.from_wnid(target) is None and not tax.lookup(target):
            raise UnplacedName(f"--concept {name}={target}: {target!r} is neither a WordNet noun nor a wnid")
    judged = [said.get(n, n) for n in names]
    out = ObjectClasses(objects=dict(sorted(counts.items())), literal=literal)
    for c in concepts:
        # unplaced names are not matched here: they are removed below by their own rule (`unplaced`)
        for name, v in zip(names, judge_classes(judged, [c], tax, exclude_unmapped=False)):
            if v.excluded:
                reason = v.reason if name not in said else f"{v.reason} (--concept {name}={said[name]})"
                out.matched.setdefault(name, []).append({"concept": c.term, "reason": reason})
    for name, label in zip(names, judged):
        if name in out.matched:
            continue
        # a bare number is a class id (YOLO without classes.txt), not the numeral WordNet holds
        placed = bool(tax.lookup(label)) and not (name not in said and label.strip().isdigit())
        (out.kept if placed else out.unplaced).append(name)
    if NO_NAME in counts:
        out.unplaced.append(NO_NAME)
    out.concepts = [{"term": c.term, "how": c.how, "synsets": [tax.label(s) for s in c.synsets],
                     "dropped": [{"synset": tax.label(s), "reason": r} for s, r in c.dropped]} for c in concepts]
    out.notes = [c.note for c in concepts if c.note] + [
        f"{t!r} is not in WordNet or the shipped vocabularies: it matches annotation classes of that name only "
        f"(--concept \"{t}=WNID\" places it)" for t in literal]
    return out
