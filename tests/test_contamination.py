"""The ImageNet-ReaL co-occurrence prior: the shipped table, the estimates and the default exclusion.

Expected numbers are recomputed straight from ../shared/data/imagenet-real (conftest.real_images_showing),
never taken from negmine's own output.
"""

import gzip
import json
import math
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SHARED, real_images_showing
from negmine.cli import cli
from negmine.filters.contamination import DEFAULT_MAX_CONTAMINATION, TABLE, Cooccurrence, wilson
from negmine.errors import NegmineError
from negmine.filters.overlap import plan_classes
from negmine.filters.taxonomy import Taxonomy

ROOT = Path(__file__).resolve().parents[1]
INET = [line.split("\t") for line in (ROOT / "negmine" / "data" / "imagenet-1k-classes.tsv").read_text().splitlines()]
WNIDS = [w for w, _ in INET]
NAMES = {w: n for w, n in INET}
DOG, CAR = 2084071, 2958343


def kinds_of(offset: int) -> set[str]:
    tax = Taxonomy.load()
    return {w for w in WNIDS if offset in tax.ancestors(int(w[1:]))}


def pool(labels):
    return SimpleNamespace(classes=list(labels), codes=np.arange(len(labels), dtype=np.int32), id="pool",
                           label_kind="wnid")


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def test_shipped_table_is_what_the_script_builds_from_the_shared_files(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_cooccurrence
    finally:
        sys.path.pop(0)
    fresh = tmp_path / TABLE
    build_cooccurrence.write(build_cooccurrence.table_lines(*build_cooccurrence.read_real(SHARED / "imagenet-real")),
                             fresh)
    assert fresh.read_bytes() == (ROOT / "negmine" / "data" / TABLE).read_bytes()


def test_table_counts_match_real_json():
    table = Cooccurrence.load()
    assert table.wnids == sorted(WNIDS) and all(r.images == 50 for r in table.rows)
    folder = SHARED / "imagenet-real"
    original = (folder / "val_synsets.txt").read_text().split()
    real = json.loads((folder / "real.json").read_text())
    classes = sorted(set(original))
    for w in ("n03803284", "n02974003", "n01440764", "n04355933"):     # muzzle, car wheel, tench, sunglass
        c = classes.index(w)
        imgs = [labels for o, labels in zip(original, real) if o == w]
        counts = {}
        for labels in imgs:
            for j in set(labels) - {c}:
                counts[j] = counts.get(j, 0) + 1
        assert table.rows[c].pairs == counts
        assert table.rows[c].no_label == sum(not x for x in imgs)
        assert table.rows[c].not_own == sum(c not in x for x in imgs)
    # the examples: 14 of 50 muzzle images show a dog, 16 of 50 car-wheel images a car
    dogs, cars = kinds_of(DOG), kinds_of(CAR)
    assert table.showing(classes.index("n03803284"), {classes.index(w) for w in dogs}) == 14
    assert table.showing(classes.index("n02974003"), {classes.index(w) for w in cars}) == 16
    # a union counts each image once: an image with two breeds is one dog image
    direct = real_images_showing(dogs)
    idx = {classes.index(w) for w in dogs}
    assert [table.showing(c, idx) for c in range(1000)] == [direct[w] for w in classes]


def test_wilson_interval_inverts_the_score_test():
    # the bounds are where |p_hat - p| = z * sqrt(p (1 - p) / n): checked from that definition
    for k, n in ((0, 50), (1, 50), (14, 50), (50, 50), (3, 25)):
        lo, hi = wilson(k, n)
        p_hat = k / n
        for bound in (lo, hi):
            if 0 < bound < 1:
                assert abs(abs(p_hat - bound) - 1.959964 * math.sqrt(bound * (1 - bound) / n)) < 1e-6
        assert lo <= p_hat <= hi
    assert wilson(0, 50)[0] == 0 and 0.07 < wilson(0, 50)[1] < 0.072     # 0 of 50 still allows ~7%


@pytest.mark.parametrize("by", ["wnid", "name"])
def test_dog_excludes_classes_whose_images_show_dogs(by):
    dogs = kinds_of(DOG)
    labels = WNIDS if by == "wnid" else [NAMES[w] for w in WNIDS]
    plan = plan_classes([pool(labels)], ["dog"])
    sc = plan.per_source[0]
    direct = real_images_showing(dogs)
    expect = {w for w in WNIDS if w not in dogs and direct[w] / 50 > DEFAULT_MAX_CONTAMINATION}
    assert "n03803284" in expect and len(expect) >= 4                 # muzzle 14/50, ...
    got = {WNIDS[i] for i, v in enumerate(sc.verdicts) if v.excluded}
    assert got == dogs | expect
    muzzle = WNIDS.index("n03803284")
    assert "14 of its 50" in sc.verdicts[muzzle].reason and "28%" in sc.verdicts[muzzle].reason
    est = sc.contamination[muzzle]
    assert est.excluded and est.images == 14 and est.of == 50
    assert est.ci95 == pytest.approx(wilson(14, 50))
    # every kept ImageNet class has an estimate, equal to the direct count
    for i, v in enumerate(sc.verdicts):
        if not v.excluded:
            assert sc.contamination[i].images == direct[WNIDS[i]]
    report = plan.report()["sources"][0]
    assert report["contamination"]["excluded"] == len(expect)
    row = next(e for e in report["excluded"] if e["label"] == labels[muzzle])
    assert row["contamination"]["rate"] == 0.28 and row["contamination"]["shows"] == {"dog": 14}
    assert max(h["rate"] for h in report["contamination"]["highest_kept"]) <= DEFAULT_MAX_CONTAMINATION


def test_threshold_changes_the_answer_and_one_turns_it_off():
    dogs = kinds_of(DOG)
    direct = real_images_showing(dogs)
    off = plan_classes([pool(WNIDS)], ["dog"], max_contamination=1).per_source[0]
    assert {WNIDS[i] for i, v in enumerate(off.verdicts) if v.excluded} == dogs
    strict = plan_classes([pool(WNIDS)], ["dog"], max_contamination=0).per_source[0]
    assert {WNIDS[i] for i, v in enumerate(strict.verdicts) if v.excluded} == dogs | {
        w for w in WNIDS if w not in dogs and direct[w] > 0}
    with pytest.raises(NegmineError, match="max-contamination"):
        plan_classes([pool(WNIDS)], ["dog"], max_contamination=1.5)


def test_expected_contaminated_negatives_before_and_after():
    # one row per class: a draw of 1000 takes every kept class once, so the expectation is the sum
    # of the kept classes' rates
    dogs = kinds_of(DOG)
    direct = real_images_showing(dogs)
    plan = plan_classes([pool(WNIDS)], ["dog"])
    e = plan.expected_contaminated(plan.per_source[0], 1000)
    before = sum(direct[w] for w in WNIDS if w not in dogs) / 50
    after = sum(direct[w] for w in WNIDS if w not in dogs and direct[w] / 50 <= DEFAULT_MAX_CONTAMINATION) / 50
    assert e["taxonomy_only"] == pytest.approx(before, abs=0.01)
    assert e["with_prior"] == pytest.approx(after, abs=0.01)
    assert e["with_prior"] < e["taxonomy_only"] and e["estimated_share"] == 1.0


def test_pools_outside_imagenet_get_no_estimate():
    plan = plan_classes([pool(["class0", "kitten", "xyzzy"])], ["dog"])      # kitten: WordNet, not ImageNet-1k
    assert plan.per_source[0].contamination == [] and "contamination" not in plan.report()


@pytest.fixture
def wnid_folder_pool(tmp_path):
    """Three ImageNet classes as wnid folders, two photos each: muzzle (14/50 show a dog), dogsled
    (6/50), tench (0/50)."""
    photos = sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))
    root = tmp_path / "inet"
    for k, w in enumerate(("n03803284", "n03218198", "n01440764")):
        (root / w).mkdir(parents=True)
        for j in range(2):
            shutil.copy(photos[2 * k + j], root / w / f"{j}.jpg")
    return root


def test_classes_cli_shows_rates_and_takes_the_flag(wnid_folder_pool):
    r = invoke("classes", "-s", wnid_folder_pool, "-x", "dog", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    excluded = {e["label"]: e for e in rep["sources"][0]["excluded"]}
    assert set(excluded) == {"n03803284", "n03218198"}
    assert excluded["n03218198"]["contamination"]["images"] == real_images_showing(kinds_of(DOG))["n03218198"]
    assert rep["contamination"]["max_contamination"] == DEFAULT_MAX_CONTAMINATION
    text = invoke("classes", "-s", wnid_folder_pool, "-x", "dog")
    assert "14 of its 50 ImageNet-ReaL validation images show a positive" in text.output
    off = json.loads(invoke("classes", "-s", wnid_folder_pool, "-x", "dog", "--max-contamination", 1, "--json").output)
    assert off["sources"][0]["excluded"] == []
    assert off["sources"][0]["contamination"]["highest_kept"][0]["label"] == "n03803284"
    bad = invoke("classes", "-s", wnid_folder_pool, "-x", "dog", "--max-contamination", -0.1)
    assert bad.exit_code == 1 and bad.output.count("\n") == 1 and "max-contamination" in bad.output


def test_dry_run_and_run_record_say_what_was_excluded_and_expected(wnid_folder_pool, tmp_path):
    pos = tmp_path / "pos" / "dog"
    pos.mkdir(parents=True)
    shutil.copy(sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[0], pos / "a.jpg")
    # one positive and two negatives cannot fill three splits: not what this test is about
    args = ["sample", "-q", "--workers", "1", "-p", pos.parent, "-s", wnid_folder_pool, "--count", 2, "--seed", 1,
            "--allow-missing-classes"]
    r = invoke(*args, "--dry-run", "--json", "-o", tmp_path / "plan")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    direct = real_images_showing(kinds_of(DOG))
    # two negatives, stratified over the three classes before (2/3 each) and from tench alone after
    assert plan["contamination"]["taxonomy_only"] == pytest.approx(
        2 / 3 * (direct["n03803284"] + direct["n03218198"] + direct["n01440764"]) / 50, abs=0.01)
    assert plan["contamination"]["with_prior"] == pytest.approx(2 * direct["n01440764"] / 50, abs=0.01)
    assert set(plan["draw"][str(wnid_folder_pool.resolve())]) == {"n01440764"}
    text = invoke(*args, "--dry-run", "-o", tmp_path / "plan").output
    assert "expected negatives showing a positive" in text and "positives under its label" in text
    out = tmp_path / "ds"
    assert invoke(*args, "-o", out).exit_code == 0
    record = json.loads((out / "negmine.json").read_text())
    assert {e["label"] for e in record["classes"]["sources"][0]["excluded"]} == {"n03803284", "n03218198"}
    assert record["contamination"]["with_prior"] == pytest.approx(2 * direct["n01440764"] / 50, abs=0.01)
    labels = {json.loads(x)["label"] for x in (out / "manifest.jsonl").read_text().splitlines()
              if json.loads(x)["role"] == "negative"}
    assert labels == {"n01440764"}
    r = invoke(*args, "--max-contamination", 1, "--dry-run", "--json", "-o", tmp_path / "plan")
    assert json.loads(r.output)["contamination"]["with_prior"] == json.loads(r.output)["contamination"]["taxonomy_only"]


def test_table_file_is_small():
    # shipped in the wheel: compact enough to not matter beside WordNet (~1.2 MB)
    path = ROOT / "negmine" / "data" / TABLE
    assert path.stat().st_size < 100_000
    with gzip.open(path, "rt") as f:
        assert sum(1 for line in f if not line.startswith("#")) == 1000


def test_the_threshold_is_part_of_the_class_plan_cache_key(tmp_path, monkeypatch):
    monkeypatch.setenv("NEGMINE_CACHE", str(tmp_path))
    first = plan_classes([pool(WNIDS)], ["dog"], max_contamination=0.05)

    def refuse():
        raise AssertionError("WordNet loaded for a question already answered")

    monkeypatch.setattr(Taxonomy, "load", refuse)
    again = plan_classes([pool(WNIDS)], ["dog"], max_contamination=0.05)       # from the cache
    assert again.report() == first.report()
    assert [e and e.images for e in again.per_source[0].contamination] == \
        [e and e.images for e in first.per_source[0].contamination]
    with pytest.raises(AssertionError, match="WordNet loaded"):                  # another threshold: afresh
        plan_classes([pool(WNIDS)], ["dog"], max_contamination=0.1)
