"""What a noun read from an image's text (`negmine.sources.text`) stands for: the WordNet senses
the class plan judges it by (`caption_senses`).

A caption's word stands for its common senses: what a dataset (COCO, LVIS, Open Images,
ImageNet) means by it, and every WordNet sense tagged at least RARE_SHARE as often as the word's
commonest sense, visual or not (`red` is mostly the colour, so its Bolshevik goes; `boxer` keeps
the dog, which ImageNet means, and the fighter). A word with no tag counts keeps every sense. A
proper name is not read into a lower-case word: WordNet files 'Snow' the writer, 'Grey' the
statesman and 'Bush' the president under the words a caption writes for snow, grey and a bush,
so a sense whose lemmas of that spelling are all capitalised is dropped when the word has a
sense of its own in lower case. Measured against every sense, the senses a positive's name gets
(`negmine.filters.concepts.resolve_concepts`) and the commonest sense only, on captioned photos:
BENCHMARKS.md, 13.
"""

from __future__ import annotations

from negmine.filters.concepts import UnplacedName, resolve_concepts
from negmine.filters.taxonomy import Taxonomy, name_key

RULES = ("common", "photo", "every", "commonest")
VERSION = "common-2"  # in the class plan's cache key: a change of the rule must not reuse cached verdicts
RARE_SHARE = 0.25     # as for a positive's name (concepts.RARE_SHARE), but against the word's every sense


def caption_senses(word: str, tax: Taxonomy, rule: str = "common") -> list[int]:
    """The synsets a noun from a caption stands for. `rule`: "photo" (negmine's: the senses a
    photo of it shows, as for a positive's name), "every" (every sense the class-name rule gives:
    `Taxonomy.lookup`), "commonest" (WordNet's first sense only); proper names are dropped under
    each (see the module docstring). [] for a word WordNet does not hold."""
    # a hyphenated lemma ('lying-in', 'wire-haired fox terrier') is found by its spelling only
    spelt = tax.by_lemma.get(word.lower().replace(" ", "_"), [])
    if rule == "common":
        every = tax.lemma_synsets(word) or spelt
        counts = tax.tag_counts(word)
        top = max((counts.get(s, 0) for s in every), default=0)
        meant = tax.dataset_senses(word)
        found = [s for s in every if s in meant or counts.get(s, 0) >= top * RARE_SHARE] or tax.lookup(word)
        found += [s for s in meant if s not in found]
    elif rule == "commonest":
        found = (tax.lemma_synsets(word) or spelt)[:1]
    elif rule == "every":
        found = tax.lookup(word) or spelt
    else:
        try:
            (concept,), _ = resolve_concepts([word], tax)
            found = concept.synsets
        except UnplacedName:
            found = []
        found = found or tax.lookup(word) or spelt
    return drop_proper_names(word, found, tax)


def drop_proper_names(word: str, senses: list[int], tax: Taxonomy) -> list[int]:
    """`senses` less those the word names only as a proper name (capitalised in WordNet: 'Snow'),
    unless every sense is one ('Obama' stays the person)."""
    key = tax.base_form(word, tax.by_lemma) or name_key(word)

    def proper(s: int) -> bool:
        spelt = [x for x in tax.lemmas.get(s, ()) if x.lower() == key]
        return bool(spelt) and all(x[:1].isupper() for x in spelt)

    common = [s for s in senses if not proper(s)]
    # the word has a sense of its own in lower case (any sense, visual or not): its proper names go
    return common if common or not all(proper(s) for s in tax.lemma_synsets(word)) else senses
