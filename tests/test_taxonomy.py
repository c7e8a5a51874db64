"""WordNet overlap on the real ImageNet classes of ../shared/data/imagenet-500."""

import csv

import pytest

from conftest import SHARED
from negmine.filters.concepts import UnplacedName, judge_classes, resolve_concepts
from negmine.filters.taxonomy import Taxonomy

ROWS = list(csv.DictReader(open(SHARED / "imagenet-500" / "classes.csv")))


@pytest.fixture(scope="module")
def tax():
    return Taxonomy.load()


def excluded(tax, terms, labels):
    concepts, _ = resolve_concepts(terms, tax)
    return {v.label: v for v in judge_classes(labels, concepts, tax) if v.excluded}


def test_dog_excludes_every_dog_breed_and_nothing_else(tax):
    dog = 2084071
    breeds = {r["wnid"] for r in ROWS if dog in tax.ancestors(int(r["wnid"][1:]))}
    assert len(breeds) == 59                  # 118 dog classes in ImageNet-1k, half of them here
    wnids = [r["wnid"] for r in ROWS]
    assert set(excluded(tax, ["dog"], wnids)) == breeds
    assert set(excluded(tax, ["n02084071"], wnids)) == breeds
    # the same with readable names instead of wnids, plural folder name too
    names = {r["name"]: r["wnid"] for r in ROWS}
    got = excluded(tax, ["dogs"], list(names))
    assert {names[n] for n in got} == breeds
    assert "is a kind of dog" in got["beagle"].reason and "hound" in got["beagle"].reason


def test_ancestor_class_is_excluded_and_teddy_bear_is_a_toy(tax):
    labels = ["brown bear, bruin, Ursus arctos", "ice bear, polar bear", "teddy, teddy bear", "tench, Tinca tinca"]
    got = excluded(tax, ["grizzly"], labels)
    assert set(got) == {"brown bear, bruin, Ursus arctos"}
    assert "contains the positive grizzly" in got["brown bear, bruin, Ursus arctos"].reason
    assert "grizzly -> brown bear" in got["brown bear, bruin, Ursus arctos"].reason
    got = excluded(tax, ["bear"], labels)
    assert set(got) == {"brown bear, bruin, Ursus arctos", "ice bear, polar bear"}     # not the toy
    assert set(excluded(tax, ["teddy"], labels)) == {"teddy, teddy bear"}


def test_context_maps_a_modifier_to_its_compound(tax):
    concepts, _ = resolve_concepts(["teddy", "grizzly", "black"], tax)
    black = concepts[2]
    assert 2133161 in black.synsets           # American black bear, from 'black' beside the grizzly
    got = excluded(tax, ["teddy", "grizzly", "black"], ["American black bear, black bear", "brown bear", "tench"])
    assert set(got) == {"American black bear, black bear", "brown bear"}


def test_ambiguous_names(tax):
    # 'crane' names a bird and a machine in ImageNet: by wnid it is exact, by name it is ambiguous
    assert tax.lookup("n02012849") == [2012849]
    assert set(tax.lookup("crane")) == {2012849, 3126707}
    got = excluded(tax, ["bird"], ["crane", "n03126707", "n02012849"])
    assert set(got) == {"crane", "n02012849"} and "ambiguous name" in got["crane"].reason
    # a full ImageNet name settles it
    assert tax.lookup("Cardigan, Cardigan Welsh corgi") == [2113186]


def test_unmapped_labels_and_terms(tax):
    # a name nothing places is refused, naming the nearest entries and --concept ...
    with pytest.raises(UnplacedName, match=r"cannot place the positive name 'zorblax'.*nearest WordNet entries: "
                                           r".*--concept \"zorblax=WNID_OR_LEMMA\""):
        resolve_concepts(["zorblax"], tax)
    # ... unless the pool has a class of that very name: then it matches that label literally
    concepts, unmapped = resolve_concepts(["zorblax"], tax, labels=["zorblax", "tench"])
    assert unmapped == ["zorblax"] and concepts[0].how == "label"
    verdicts = judge_classes(["zorblax", "qwerty", "tench"], concepts, tax)
    by = {v.label: v for v in verdicts}
    assert by["zorblax"].excluded and "label equals" in by["zorblax"].reason    # literal label match
    # a class nothing places is left out by default: no check says it is not a positive
    assert not by["qwerty"].mapped and by["qwerty"].excluded and "not in WordNet" in by["qwerty"].reason
    allowed = {v.label: v for v in judge_classes(["qwerty"], concepts, tax, exclude_unmapped=False)}
    assert not allowed["qwerty"].excluded


def test_material_senses_do_not_exclude_everything(tax):
    # 'raccoon' is also a fur; that sense must not make every 'material' class a container of raccoons
    got = excluded(tax, ["raccoon"], ["material", "animal", "fur coat", "tench"])
    assert set(got) == {"animal"}


def test_near_levels_follow_the_taxonomy(tax):
    concepts, _ = resolve_concepts(["hotdog"], tax)
    labels = ["hotdog, hot dog, red hot", "cheeseburger", "pizza, pizza pie", "tench, Tinca tinca"]
    v = {x.label: x for x in judge_classes(labels, concepts, tax)}
    assert v["hotdog, hot dog, red hot"].excluded
    assert v["cheeseburger"].level < v["pizza, pizza pie"].level < v["tench, Tinca tinca"].level


def test_parsed_taxonomy_is_cached_and_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("NEGMINE_CACHE", str(tmp_path))
    load = Taxonomy.load.__func__.__wrapped__           # past the in-process lru_cache
    first = load(Taxonomy)
    cached = list((tmp_path / "taxonomy").glob("*.pickle"))
    assert len(cached) == 1
    again = load(Taxonomy)
    assert again.lemmas == first.lemmas and again.hypernyms == first.hypernyms
    assert again.lemma_synsets("grizzly") == first.lemma_synsets("grizzly") != []
    cached[0].write_bytes(b"not a pickle")
    rebuilt = load(Taxonomy)
    assert rebuilt.lemmas == first.lemmas
    assert cached[0].read_bytes() != b"not a pickle"


def test_class_plans_are_cached_so_a_repeat_run_does_not_load_wordnet(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import numpy as np

    from negmine.filters.overlap import plan_classes

    monkeypatch.setenv("NEGMINE_CACHE", str(tmp_path))
    labels = [r["wnid"] for r in ROWS]
    src = SimpleNamespace(classes=labels, codes=np.arange(len(labels), dtype=np.int32), id="pool",
                          label_kind="name")
    first = plan_classes([src], ["grizzly", "dog"], anchors=["grizzly"])
    assert any(v.excluded for v in first.per_source[0].verdicts)

    def refuse():
        raise AssertionError("WordNet loaded for a question already answered")

    monkeypatch.setattr(Taxonomy, "load", refuse)
    again = plan_classes([src], ["grizzly", "dog"], anchors=["grizzly"])
    assert again.report() == first.report()
    assert [v.level for v in again.per_source[0].verdicts] == [v.level for v in first.per_source[0].verdicts]
    assert [c.anchor for c in again.concepts] == [c.anchor for c in first.concepts]
    for changed in (["grizzly"], ["grizzly", "dog", "cat"]):       # another question is answered afresh
        with pytest.raises(AssertionError, match="WordNet loaded"):
            plan_classes([src], changed, anchors=["grizzly"])
    other = SimpleNamespace(**{**vars(src), "classes": labels[:-1], "codes": src.codes[:-1]})
    with pytest.raises(AssertionError, match="WordNet loaded"):
        plan_classes([other], ["grizzly", "dog"], anchors=["grizzly"])
