"""Pools with text (captions, titles, tags) but no class labels: each image's text read as the
list of WordNet nouns it names, so the pool is a multi-label pool whose classes are nouns.

The class plan then keeps the positives out of it as out of any labelled pool (a caption naming
'teddy bear' carries the class 'teddy bear', which is the positive 'teddy'), and the stratified
draw spreads over the nouns. Planning reads the text columns only, never image bytes.

Reading text as nouns (`NounReader`):
- words: lower-cased runs of letters and digits ("hot-dog" is "hot dog", "dog's" is "dog");
- the longest run of up to MAX_WORDS words that is a WordNet noun lemma wins ("teddy bear" before
  "teddy" and "bear"), its last word also tried singular by WordNet's noun.exc (children, mice)
  and its plural endings (as `negmine.filters.taxonomy.Taxonomy.base_form` does);
- STOP_WORDS (articles, pronouns, prepositions, auxiliaries, number words: "a" is vitamin A and
  "in" an inch to WordNet) are never nouns, nor start one ("a line" is no A-line dress); every
  other word WordNet has as a noun is one, adjectives and verbs that are also nouns included
  ("black", "sitting"): what a word stands for is decided by the class plan
  (`negmine.filters.words`), and no word is dropped for probably not being a noun;
- "people" is also read as "person" (its plural in English; WordNet files it as a group, which
  is not a kind of person, and noun.exc does not list it).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

from negmine.errors import NegmineError, SourceNotFound
from negmine.sources.columns import one_of

# columns that describe the image in words, by name: used together when several are present
# (every one describes the same image, and one naming a positive is enough to exclude it)
DESCRIPTIVE_NAMES = ("caption", "captions", "blip2_caption", "blip_caption", "llava_caption", "title", "tags",
                     "usertags", "user_tags", "description", "alt_text", "alt", "sentences", "txt")
# columns holding some text: used only when alone (a `text` beside a `caption` may be OCR, a prompt...)
GENERIC_NAMES = ("text", "sentence", "prompt")
TEXT_NAMES = DESCRIPTIVE_NAMES + GENERIC_NAMES
MAX_WORDS = 4                  # longest noun lemma tried, in words (WordNet's are rarely longer)
MAX_TEXT_CHARS = 2000          # text per image read for nouns (a long description's tail says little more)

# function words WordNet also files as nouns (a: vitamin A, in: inch, it: information technology,
# us: United States, can: a container, will: a document), and number words: in a caption they are
# not the thing
STOP_WORDS = frozenset("""
a an the this that these those there here it its it's itself they them their theirs he him his she her hers
we us our ours you your yours i me my mine one ones some any each every all both either neither no not none
nor and or but if then than so as at by for from in into onto on off of out over under up down to with
without within through about above below across after against along among around before behind beside
besides between beyond during except inside near outside past since toward towards upon via per
is are was were be been being am do does did doing done have has had having can could will would shall
should may might must ought also just very too only still yet even ever again once more most much many
few less least other another such own same what which who whom whose where when why how while
s t d ll m re ve o y whilst etc
two three four five six seven eight nine ten eleven twelve
""".split())
# an English plural that is its own WordNet lemma: read as both ("people" is a group, and persons)
EXTRA_BASES = {"people": "person"}
_WORD = re.compile(r"[a-z0-9]+")
_MORPH = (("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
          ("ies", "y"), ("s", ""))


class NounReader:
    """WordNet 3.0's noun lemmas (negmine/data/wordnet-nouns.tsv.gz) and irregular plurals
    (wordnet-noun-exc.txt.gz), to read the nouns a text names (`nouns`)."""

    def __init__(self, lemmas: dict[str, str], exceptions: dict[str, str]):
        self.lemmas = lemmas               # the key a phrase is matched by -> the lemma as WordNet spells it
        self.exceptions = exceptions
        # first words of multi-word lemmas: only these start a longer match
        self.starts = {w.split("_", 1)[0] for w in lemmas if "_" in w}

    @classmethod
    @lru_cache(maxsize=1)
    def load(cls) -> "NounReader":
        """The shipped WordNet nouns (about 0.3 s to read; kept for the process)."""
        data = resources.files("negmine") / "data"
        lemmas: dict[str, str] = {}
        with gzip.open(data.joinpath("wordnet-nouns.tsv.gz").open("rb"), "rt", encoding="utf-8") as f:
            for line in f:
                for lemma in line.split("\t", 2)[1].split("|"):
                    key = _key(lemma)
                    if key:
                        lemmas.setdefault(key, lemma.lower())
        with gzip.open(data.joinpath("wordnet-noun-exc.txt.gz").open("rb"), "rt", encoding="utf-8") as f:
            exc = dict(line.split()[:2] for line in f if line.strip())
        return cls(lemmas, {_key(k): _key(v) for k, v in exc.items()})

    def base(self, words: Sequence[str]) -> str | None:
        """The noun lemma a run of words is (its last word singular where needed), or None."""
        w = "_".join(words)
        if w in self.lemmas:
            return w
        head = "_".join(words[:-1])
        prefix = head + "_" if head else ""
        last = words[-1]
        bases = [self.exceptions[last]] if last in self.exceptions else []
        bases += [last[: -len(a)] + b for a, b in _MORPH if last.endswith(a) and len(last) > len(a)]
        return next((prefix + b for b in bases if prefix + b in self.lemmas), None)

    def nouns(self, text: str | None) -> list[str]:
        """The WordNet noun lemmas a text names, each once, in order of first mention, spelt as
        WordNet spells them with spaces between words ("teddy bear", "wire-haired fox terrier");
        [] for None or a text naming none."""
        if not text:
            return []
        words = _WORD.findall(text[:MAX_TEXT_CHARS].lower().replace("'s ", " ").replace("\u2019s ", " "))
        out: dict[str, None] = {}
        i = 0
        while i < len(words):
            found, size = None, 1
            longest = MAX_WORDS if words[i] in self.starts else 1
            # a stop word starts no noun, alone or in a longer lemma ('a line' is an A-line dress)
            for n in range(min(longest, len(words) - i), 0, -1) if words[i] not in STOP_WORDS else ():
                found = self.base(words[i:i + n])
                if found:
                    size = n
                    break
            if found:
                out[self.lemmas[found].replace("_", " ")] = None
                if found in EXTRA_BASES:
                    out[EXTRA_BASES[found]] = None
            i += size
        return list(out)


def _key(lemma: str) -> str:
    """A lemma or phrase as the reader matches it: lower case, words joined by '_' (apostrophes
    and dots dropped: "jack-o'-lantern" is jack_o_lantern)."""
    return "_".join(_WORD.findall(lemma.lower().replace("'", "").replace(".", "")))


def is_text_type(t) -> bool:
    """An arrow type that holds text: a string, or a list of strings (tags)."""
    import pyarrow as pa

    if pa.types.is_list(t) or pa.types.is_large_list(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def pick_text_columns(schema, option: str | None, label_column: str | None, where: str) -> list[str]:
    """The text columns of a table with no label column: `option` (--text-column or ?text=, a
    comma-separated list) as named, else by name: every column named like a description
    (DESCRIPTIVE_NAMES: caption, title, tags, ...), used together; a generic one (text, prompt)
    only when it is the one candidate. [] when there is none (and no option).
    Raises SourceNotFound for a named column that is not there, and NegmineError (one line) for a
    named column that holds no text, a named text column beside a label column, or a generic
    text column beside another candidate."""
    names = list(schema.names)
    if option:
        chosen = [c.strip() for c in option.split(",") if c.strip()]
        for c in chosen:
            if c not in names:
                raise SourceNotFound(f"{where} has no text column {c!r}; columns: {', '.join(names)}")
            if not is_text_type(schema.field(c).type):
                raise NegmineError(f"{where}: column {c!r} holds {schema.field(c).type}, not text (a string or a "
                                   "list of strings); name another with --text-column")
        if label_column:
            raise NegmineError(f"{where} has the label column {label_column!r} and the text column(s) "
                               f"{', '.join(repr(c) for c in chosen)}; negmine reads one of them: add "
                               "--label-column none (or ?label=none) to keep the positives out by text")
        return chosen
    if label_column:
        return []
    found = [n for n in names if n.lower() in TEXT_NAMES and is_text_type(schema.field(n).type)]
    generic = [n for n in found if n.lower() in GENERIC_NAMES]
    if len(found) > 1 and generic:
        one_of(found, "text", "--text-column", "text", where,
               f"; {', '.join(repr(g) for g in generic)} may hold other text than a description of the image, "
               "so they are used together only when named (--text-column a,b)")
    return found


def text_of(columns: Sequence) -> list[str | None]:
    """One text per row from chunks of the text columns (arrow arrays, rows aligned): the columns'
    texts joined by '. ', a list of tags joined by ', '; None where every column is null or empty."""
    import pyarrow as pa

    per_col = []
    for col in columns:
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        values = col.to_pylist()
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            values = [", ".join(x for x in v if x) if v else None for v in values]
        per_col.append(values)
    return [". ".join(t for t in texts if t) or None for texts in zip(*per_col)]


def noun_lists(columns: Sequence, reader: NounReader | None = None):
    """The rows' nouns as an arrow list<string> array (`NounReader.nouns` of `text_of`), for
    `negmine.sources.labels.LabelListBuilder.add`. A text repeated across rows is read once."""
    import pyarrow as pa

    reader = reader or NounReader.load()
    seen: dict[str | None, list[str]] = {}
    out = []
    for t in text_of(columns):
        got = seen.get(t)
        if got is None:
            if len(seen) > 1 << 16:          # a cache, not a per-row store
                seen.clear()
            got = seen[t] = reader.nouns(t)
        out.append(got)
    return pa.array(out, pa.list_(pa.string()))
