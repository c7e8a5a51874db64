"""`negmine report` on an output built from ../shared/data/imagenet-500."""

import csv
import json
import shutil
from collections import Counter
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import SHARED, read_manifest, real_images_showing
from negmine.cli import cli
from negmine.outputs.gallery import THUMB

ROWS = list(csv.DictReader(open(SHARED / "imagenet-500" / "classes.csv")))


def beagle_contaminated() -> set[str]:
    shown = real_images_showing({"n02088364"})
    return {r["wnid"] for r in ROWS if r["wnid"] != "n02088364" and shown[r["wnid"]] / 50 > 0.05}


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    pool = tmp / "inet"
    for r in ROWS:
        (pool / r["wnid"]).mkdir(parents=True)
        shutil.copy(SHARED / "imagenet-500" / r["file"], pool / r["wnid"] / (r["name"] + ".jpg"))
    pos = tmp / "pos" / "beagle"
    pos.mkdir(parents=True)
    beagle = next(r for r in ROWS if r["wnid"] == "n02088364")
    for k in range(6):
        shutil.copy(SHARED / "imagenet-500" / beagle["file"], pos / f"b{k}.jpg")
        Image.open(SHARED / "imagenet-500" / beagle["file"]).rotate(k * 3).save(pos / f"r{k}.jpg")
    src = Image.open(SHARED / "imagenet-500" / beagle["file"])
    src.resize((src.width // 2, src.height // 2)).save(pool / "n01440764" / "planted.jpg")
    out = tmp / "ds"
    r = invoke("sample", "-q", "--workers", "1", "-p", pos.parent, "-s", pool, "--count", 600, "--allow-short",
               "--allow-missing-classes", "--seed", 9, "-o", out)   # the positives are copies of one photo
    assert r.exit_code == 0, r.output
    return out


def test_numbers_match_the_manifest(built):
    r = invoke("report", built, "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    rows = read_manifest(built)
    for split in ("train", "val", "test"):
        assert rep["counts"][split] == dict(sorted(Counter(x["class"] for x in rows if x["split"] == split).items()))
        pos = sum(x["role"] == "positive" and x["split"] == split for x in rows)
        neg = sum(x["role"] == "negative" and x["split"] == split for x in rows)
        assert rep["negatives_per_positive"][split] == (round(neg / pos, 3) if pos else None)
    neg = [x for x in rows if x["role"] == "negative"]
    # 500 photos less the beagle's class and the classes whose ImageNet-ReaL images show a beagle in
    # more than 5% (counted straight from real.json), plus the planted copy that is dropped
    contaminated = beagle_contaminated()
    assert "n02089867" in contaminated                           # Walker hound: 12 of 50 show a beagle
    assert rep["negatives"] == len(neg) == 499 - len(contaminated)
    assert sum(rep["negatives_by_source"].values()) == len(neg)
    assert rep["source_classes"] == len({x["label"] for x in neg})
    assert rep["drops"] == {"near-duplicate of a positive": 1}
    assert [e["label"] for e in rep["excluded_classes"]] == ["n02088364", *sorted(contaminated)] and rep["seed"] == 9
    assert rep["shares"] == {"far": 1.0}


def test_contact_sheet_is_a_png_of_the_expected_grid(built):
    r = invoke("report", built, "--per-class", "--count", 20)
    assert r.exit_code == 0, r.output
    sheet = Image.open(built / "report" / "contact-sheet.png")
    assert sheet.format == "PNG" and sheet.size == (8 * THUMB, 3 * (THUMB + 18))    # 20 tiles: 8 x 3
    small = Image.open(built / "report" / "contact-beagle.png")
    assert small.size == (8 * THUMB, 2 * (THUMB + 18))                              # the 12 positives


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.stack, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.links.append(a[key])
        if tag not in ("img", "meta", "br", "link", "input"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_html_gallery_is_valid_and_self_contained(built):
    invoke("report", built)
    page = (built / "report" / "report.html").read_text()
    parser = _Links()
    parser.feed(page)
    assert not parser.errors and parser.stack == []
    assert parser.links and all(not link.startswith(("http:", "https:", "//")) for link in parser.links)
    for link in parser.links:
        assert (built / "report" / link).is_file(), link
    assert "Dropped duplicates" in page and "drops/" in page and "beagle" in page
    assert "is the positive beagle (n02088364)" in page


def test_sample_and_cutout_write_the_report_on_request(tmp_path):
    out = tmp_path / "cut"
    r = invoke("cutout", "-q", "--images", SHARED / "raccoon-voc" / "images", "--boxes",
               SHARED / "raccoon-voc" / "annotations", "--fill", "tile", "--fill", "blur", "--seed", 1, "--report",
               "-o", out)
    assert r.exit_code == 0 and "report:" in r.output
    page = (out / "report" / "report.html").read_text()
    assert "Synthetic negatives by fill" in page
    rep = json.loads((out / "report" / "report.json").read_text())
    assert rep["shares"] == {"synthetic": 1.0} and rep["command"] == "cutout"


def test_report_keeps_imagefolder_loading_intact(built):
    import datasets

    invoke("report", built)
    dd = datasets.load_dataset("imagefolder", data_dir=str(built))
    assert sum(len(d) for d in dd.values()) == len(read_manifest(built))     # thumbnails are not data


def test_report_on_a_folder_that_is_not_an_output(tmp_path):
    r = invoke("report", tmp_path)
    assert r.exit_code == 1 and "not a negmine output" in r.output


def test_possible_positives_section(built):
    rep = json.loads(invoke("report", built, "--json").output)
    pp = rep["possible_positives"]
    shown = real_images_showing({"n02088364"})
    assert {e["label"] for e in pp["excluded"]} == beagle_contaminated()
    walker = next(e for e in pp["excluded"] if e["label"] == "n02089867")
    assert walker["images"] == shown["n02089867"] and walker["rate"] == shown["n02089867"] / 50
    # kept classes, highest rate first, each with how many of this output's negatives it gave
    labels = Counter(x["label"] for x in read_manifest(built) if x["role"] == "negative")
    assert pp["highest_kept"] and all(h["negatives"] == labels[h["label"]] for h in pp["highest_kept"])
    assert all(h["images"] == shown[h["label"]] for h in pp["highest_kept"])
    assert [h["rate"] for h in pp["highest_kept"]] == sorted((h["rate"] for h in pp["highest_kept"]), reverse=True)
    assert pp["expected"]["with_prior"] < pp["expected"]["taxonomy_only"]
    page = (built / "report" / "report.html").read_text()
    section = page.split('id="possible-positives"')[1].split("<h2>")[0]
    assert "Walker hound" in section and f"{shown['n02089867']} of 50 images" in section
    top = pp["highest_kept"][0]
    assert f"{top['images']} of 50 images" in section and "<img" in section     # their kept negatives, shown
    assert "possible positives:" in invoke("report", built).output


def test_report_on_a_sweep_folder_suggests_its_members(tmp_path, built):
    sweep = tmp_path / "sweep"
    for name in ("ratio-1", "ratio-2"):
        shutil.copytree(built, sweep / name)
    r = CliRunner().invoke(cli, ["report", str(sweep)])
    assert r.exit_code == 1, r.output
    assert r.output.strip() == (f"Error: {sweep} is not a negmine output (no manifest.jsonl) but holds the outputs "
                                f"ratio-1, ratio-2 (a sweep?); report one: negmine report {sweep / 'ratio-1'}")
    assert not (sweep / "report").exists()
