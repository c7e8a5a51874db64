"""Overlap removal end to end: `sample` keeps the positives out, `classes` explains, `dedup` reports."""

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import SHARED, read_manifest, real_images_showing
from negmine.cli import cli
from negmine.filters.taxonomy import Taxonomy

ROWS = list(csv.DictReader(open(SHARED / "imagenet-500" / "classes.csv")))
IMAGENET_1K = [line.split("\t")[0] for line in (Path(__file__).resolve().parents[1] / "negmine" / "data" /
                                                  "imagenet-1k-classes.tsv").read_text().splitlines()]


def contaminated_by_dogs() -> set[str]:
    """imagenet-500 classes (not dogs) whose ImageNet-ReaL images show a dog in more than 5%."""
    dogs = {w for w in IMAGENET_1K if 2084071 in Taxonomy.load().ancestors(int(w[1:]))}
    shown = real_images_showing(dogs)
    return {x["wnid"] for x in ROWS if x["wnid"] not in dogs and shown[x["wnid"]] / 50 > 0.05}


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


@pytest.fixture
def wnid_pool(tmp_path):
    """imagenet-500 laid out ImageFolder-style (class folder = wnid), in tmp."""
    root = tmp_path / "inet"
    for r in ROWS:
        (root / r["wnid"]).mkdir(parents=True)
        shutil.copy(SHARED / "imagenet-500" / r["file"], root / r["wnid"] / (r["name"] + ".jpg"))
    return root


@pytest.fixture
def dog_positives(tmp_path):
    tax = Taxonomy.load()
    dogs = [r for r in ROWS if 2084071 in tax.ancestors(int(r["wnid"][1:]))][:4]
    root = tmp_path / "pos" / "dog"
    root.mkdir(parents=True)
    for r in dogs:
        shutil.copy(SHARED / "imagenet-500" / r["file"], root / f"{r['name']}.jpg")
    return root.parent, dogs


def test_sample_excludes_positive_classes_and_near_copies(wnid_pool, dog_positives, tmp_path):
    positives, dogs = dog_positives
    # plant a resized, re-encoded copy of a positive in a non-dog class, and a mirrored one elsewhere
    src = Image.open(SHARED / "imagenet-500" / dogs[0]["file"])
    src.resize((src.width // 2, src.height // 2)).save(wnid_pool / "n01440764" / "planted.jpg", quality=80)
    src.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(wnid_pool / "n01484850" / "mirrored.jpg", quality=90)
    out = tmp_path / "ds"
    r = invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", wnid_pool, "--count", 1000, "--allow-short",
               "--seed", 3, "--dihedral", "-o", out)
    assert r.exit_code == 0, r.output
    neg = [x for x in read_manifest(out) if x["role"] == "negative"]
    breeds = {d["wnid"] for d in dogs} | {x["wnid"] for x in ROWS if 2084071 in Taxonomy.load().ancestors(int(x["wnid"][1:]))}
    assert not {x["label"] for x in neg} & breeds                 # no dog class at all
    # nor a class whose ImageNet-ReaL images show dogs in more than 5% (muzzle, ...): from real.json
    contaminated = contaminated_by_dogs()
    assert "n03803284" in contaminated and not {x["label"] for x in neg} & contaminated
    assert len(neg) == 441 - len(contaminated)   # the non-dog photos; both planted copies dropped
    files = {x["file"] for x in neg}
    assert "n01440764/planted.jpg" not in files and "n01484850/mirrored.jpg" not in files
    rejects = {x["file"]: x for x in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    assert "near-duplicate of a positive" in rejects["n01440764/planted.jpg"]["reason"]
    assert rejects["n01440764/planted.jpg"]["duplicate_of"].startswith(("train/dog/", "val/dog/", "test/dog/"))
    assert "near-duplicate of a positive" in rejects["n01484850/mirrored.jpg"]["reason"]
    record = json.loads((out / "negmine.json").read_text())
    excluded = record["classes"]["sources"][0]["excluded"]
    assert len(excluded) == 59 + len(contaminated) and all("dog" in e["reason"] for e in excluded)
    assert {e["label"] for e in excluded if "contamination" in e} == contaminated


def test_without_auto_exclude_dogs_come_back(wnid_pool, dog_positives, tmp_path):
    positives, dogs = dog_positives
    out = tmp_path / "ds"
    r = invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", wnid_pool, "--count", 300, "--seed", 1,
               "--no-auto-exclude", "-o", out)
    assert r.exit_code == 0, r.output
    labels = {x["label"] for x in read_manifest(out) if x["role"] == "negative"}
    assert labels & {x["wnid"] for x in ROWS if 2084071 in Taxonomy.load().ancestors(int(x["wnid"][1:]))}
    # ... but the very photos of the positives still never appear (hash overlap)
    rejected = {x["file"]: x["reason"] for x in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    kept = {x["file"] for x in read_manifest(out) if x["role"] == "negative"}
    for d in dogs:
        f = f"{d['wnid']}/{d['name']}.jpg"
        assert f not in kept
        assert f not in rejected or "copy of a positive" in rejected[f]


def test_exclude_option_and_near_fraction(wnid_pool, tmp_path):
    pos = tmp_path / "p" / "hotdog"
    pos.mkdir(parents=True)
    hot = next(r for r in ROWS if r["wnid"] == "n07697537")
    shutil.copy(SHARED / "imagenet-500" / hot["file"], pos / "a.jpg")
    for k in range(1, 20):
        Image.new("RGB", (64, 48), (k * 10, 100, 200 - k * 5)).save(pos / f"solid{k}.jpg")
    out = tmp_path / "ds"
    r = invoke("sample", "-q", "--workers", "1", "-p", pos.parent, "-s", wnid_pool, "--count", 20, "--near", 0.5,
               "-x", "cat", "--seed", 5, "--hash", "none", "-o", out)
    assert r.exit_code == 0, r.output
    neg = [x for x in read_manifest(out) if x["role"] == "negative"]
    tax = Taxonomy.load()
    assert sum(x["near"] for x in neg) == 10
    assert "n07697537" not in {x["label"] for x in neg}
    cats = {x["wnid"] for x in ROWS if 2121620 in tax.ancestors(int(x["wnid"][1:]))}
    assert not cats & {x["label"] for x in neg}
    food = 21265
    near_labels = [x["label"] for x in neg if x["near"]]
    # the nearest level that can supply 10 rows is 'food' (hotdog -> sandwich -> ... -> food)
    assert all(food in tax.ancestors(int(w[1:])) for w in near_labels)
    assert sum(food in tax.ancestors(int(x["label"][1:])) for x in neg if not x["near"]) <= 2


def test_classes_command_explains(wnid_pool):
    # the taxonomy alone (--max-contamination 1); the ImageNet-ReaL prior is tested in test_contamination
    r = invoke("classes", "-s", wnid_pool, "-x", "dog", "--json", "--max-contamination", 1)
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    src = report["sources"][0]
    assert len(src["excluded"]) == 59 and src["classes"] == 500
    beagle = next(e for e in src["excluded"] if e["label"] == "n02088364")
    assert beagle["rows"] == 1 and "beagle -> hound -> hunting dog -> dog" in beagle["reason"]
    r = invoke("classes", "-s", wnid_pool, "-x", "dog", "--max-contamination", 1)
    assert "59 of 500 classes excluded" in r.output
    r = invoke("classes", "-s", wnid_pool, "-x", "dog")            # default: the muzzle etc. too
    assert f"{59 + len(contaminated_by_dogs())} of 500 classes excluded" in r.output and "14 of its 50" in r.output
    r = invoke("classes", "-s", wnid_pool)
    assert r.exit_code == 1 and "name the positives" in r.output


def test_dry_run_shows_exclusions(wnid_pool, dog_positives, tmp_path):
    positives, _ = dog_positives
    r = invoke("sample", "-p", positives, "-s", wnid_pool, "--dry-run", "--seed", 1, "-o", tmp_path / "x",
               "--max-contamination", 1)
    assert r.exit_code == 0 and "59 of 500 classes excluded" in r.output and "beagle" in r.output
    assert not (tmp_path / "x").exists()


def digests(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_dedup_groups_against_and_copy(tmp_path):
    before = digests(SHARED / "near-dups-ukbench")
    report = tmp_path / "r.json"
    r = invoke("dedup", SHARED / "near-dups-ukbench", "-q", "--report", report, "--out", tmp_path / "clean")
    assert r.exit_code == 0, r.output
    data = json.loads(report.read_text())
    assert data["groups"] == 1 and data["skipped"] == 1
    group = data["duplicate_groups"][0]
    assert group["keep"] == "base_images/ukbench00120.jpg"        # the largest picture
    assert {d["path"] for d in group["duplicates"]} == {"transformed/ukbench00120_gray.jpg",
                                                        "transformed/ukbench00120_resize.jpg"}
    copied = {p.relative_to(tmp_path / "clean").as_posix() for p in (tmp_path / "clean").rglob("*.jpg")}
    assert len(copied) == 15 - 2 - 1 and "transformed/ukbench00120_hflip.jpg" in copied
    r = invoke("dedup", SHARED / "near-dups-ukbench", "-q", "--dihedral", "--json")
    dups = json.loads(r.output)["duplicate_groups"][0]["duplicates"]
    assert "transformed/ukbench00120_hflip.jpg" in {d["path"] for d in dups}
    r = invoke("dedup", SHARED / "near-dups-ukbench" / "transformed", "--against",
               SHARED / "near-dups-ukbench" / "base_images", "-q", "--report", tmp_path / "r.csv")
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    leaks = {x["path"] for x in rows if x["kind"] == "against"}
    assert leaks == {"ukbench00120_gray.jpg", "ukbench00120_resize.jpg"}
    assert digests(SHARED / "near-dups-ukbench") == before                # sources untouched


def test_dedup_finds_nothing_among_distinct_photos(tmp_path):
    r = invoke("dedup", SHARED / "imagenet-500", "-q", "--json")
    data = json.loads(r.output)
    assert r.exit_code == 0 and data["images"] == 500 and data["groups"] == 0
