"""`sample --synthetic`: a run whose cutouts supply every negative opens no pool (offline, no Hub,
no --source), one whose cutouts cannot opens it as any run does; a cutout's manifest row says it
shows the background of a positive's photo, not the positive class."""

import json
import shutil

from click.testing import CliRunner

from conftest import PLACEABLE, SHARED, read_manifest
from negmine.cli import cli

RACCOONS = SHARED / "raccoon-voc" / "images"
VOC = SHARED / "raccoon-voc" / "annotations"
# raccoon-133's box grown by nothing covers 93% of the photo: no cutout can be made of it (--max-cover 90%)
UNCUTTABLE = "raccoon-133.jpg"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def raccoons(tmp_path, names):
    root = tmp_path / "pos"
    (root / "raccoon").mkdir(parents=True)
    for n in names:
        shutil.copy(RACCOONS / n, root / "raccoon" / n)
    return root


def first(n):
    return [p.name for p in sorted(RACCOONS.glob("*.jpg")) if p.name != UNCUTTABLE][:n]


def test_every_negative_a_cutout_opens_no_pool_offline(tmp_path):
    # conftest runs every test offline (HF_HUB_OFFLINE=1) against an empty Hub cache: opening the
    # default pool (imagenet-1k-256) would exit 5, as it did before
    pos = raccoons(tmp_path, first(24))
    out = tmp_path / "ds"
    args = ["sample", "-p", pos, "--boxes", VOC, "--synthetic", 1, "--cutout-fill", "tile", "--seed", 3,
            "--workers", 1, "-o", out]
    r = invoke(*args, "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    assert plan["pool"]["used"] is False and plan["pool"]["not_opened"] == ["imagenet-1k-256"]
    assert plan["sources"] == [] and plan["synthetic"]["planned"] == 24 and plan["negatives_needed"] == 24
    r = invoke(*args, "--dry-run")
    assert r.exit_code == 0 and "24 negatives all cutouts, no pool" in r.output

    r = invoke(*args)
    assert r.exit_code == 0, r.output
    assert "none was opened (not opened: imagenet-1k-256)" in r.output
    rows = read_manifest(out)
    neg = [x for x in rows if x["role"] == "negative"]
    assert len(neg) == 24 and all(x["cutout"] for x in neg)
    record = json.loads((out / "negmine.json").read_text())
    assert record["pool"]["used"] is False and record["sources"] == [] and record["synthetic"] == 24


def test_a_source_given_is_not_opened_when_nothing_is_drawn_from_it(tmp_path):
    pos = raccoons(tmp_path, first(12))
    out = tmp_path / "ds"
    r = invoke("sample", "-q", "-p", pos, "--boxes", VOC, "--synthetic", 1, "--count", 10, "--seed", 1,
               "--workers", 1, "-s", tmp_path / "no-such-pool", "-o", out, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["pool"]["not_opened"] == [str(tmp_path / "no-such-pool")] and summary["negatives"] == 10


def test_cutouts_that_cannot_supply_every_negative_open_the_pool(tmp_path, pool):
    pos = raccoons(tmp_path, first(11) + [UNCUTTABLE])
    # 12 negatives, 11 cuttable positives: with no pool named, the run says so rather than open the
    # default preset for one negative; with a pool named, the one negative comes from it
    r = invoke("sample", "-q", "-p", pos, "--boxes", VOC, "--synthetic", 1, "--seed", 1, "--workers", 1,
               "-o", tmp_path / "a")
    assert r.exit_code == 3 and "11 of the 12 positives can be cut" in r.output and "Traceback" not in r.output
    r = invoke("sample", "-q", "-p", pos, "--boxes", VOC, "--synthetic", 1, "--seed", 1, "--workers", 1,
               "-s", pool, "-o", tmp_path / "b", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert "pool" not in summary and summary["synthetic"] == 11 and summary["negatives"] == 12
    neg = [x for x in read_manifest(tmp_path / "b") if x["role"] == "negative"]
    assert sum(1 for x in neg if x["cutout"] is None and x["source"] == str(pool)) == 1
    rejects = [json.loads(x) for x in (tmp_path / "b" / "rejects.jsonl").read_text().splitlines()]
    assert [x["file"] for x in rejects if x["role"] == "synthetic"] == [f"raccoon/{UNCUTTABLE}"]


def test_a_cutout_row_names_the_photo_it_is_the_background_of(tmp_path, pool):
    pos = raccoons(tmp_path, first(16))
    out = tmp_path / "ds"
    r = invoke("sample", "-q", "-p", pos, "--boxes", VOC, "--synthetic", 0.5, "--seed", 2, "--workers", 1,
               "-s", pool, "-o", out)
    assert r.exit_code == 0, r.output
    rows = read_manifest(out)
    cut = [x for x in rows if x["role"] == "negative" and x["cutout"]]
    drawn = [x for x in rows if x["role"] == "negative" and not x["cutout"]]
    assert len(cut) == 8 and len(drawn) == 8
    # not "raccoon": the raccoon was cut out; the row says whose photo's background it is
    assert all(x["label"] is None and x["cutout"]["background_of"] == "raccoon" for x in cut)
    assert all(x["label"] in PLACEABLE for x in drawn)
    r = invoke("report", out, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads((out / "report" / "report.json").read_text())
    top = {(x["source"], x["label"]): x["count"] for x in report["top_source_classes"]}
    assert top[(str(pos.resolve()), "background of raccoon")] == 8
    # `mine` over the output, excluding the positives' class: the cutouts stay candidates (a cutout
    # labelled "raccoon" was taken for the class and dropped)
    scores = tmp_path / "scores.csv"
    scores.write_text("id,score\n" + "".join(f"{x['path']},{k / 16}\n" for k, x in enumerate(cut + drawn)))
    r = invoke("mine", "--scores", scores, "--pool", out, "--positives", pos, "--count", 12, "--skip-top", 0,
               "--allow-held-out", "--workers", 1, "-o", tmp_path / "mined")
    assert r.exit_code == 0, r.output
    rejects = (tmp_path / "mined" / "rejects.jsonl").read_text()
    assert "overlaps the positives" not in rejects
    mined = {x["file"] for x in read_manifest(tmp_path / "mined")}
    assert mined & {x["path"] for x in cut}


def test_cutouts_that_fail_with_no_pool_open_stop_the_run_unless_allow_short(tmp_path):
    import numpy as np
    from PIL import Image

    names = first(8)
    pos = raccoons(tmp_path, names)
    masks = tmp_path / "masks" / "raccoon"
    masks.mkdir(parents=True)
    for k, n in enumerate(names):
        w, h = Image.open(RACCOONS / n).size
        m = np.zeros((h, w), np.uint8)
        if k:                                   # the first mask is empty: only the cut can tell
            m[h // 3:h // 2, w // 3:w // 2] = 255
        Image.fromarray(m).save(masks / n.replace(".jpg", ".png"))
    args = ["sample", "-q", "-p", pos, "--masks", masks.parent, "--synthetic", 1, "--seed", 1, "--workers", 1]
    r = invoke(*args, "-o", tmp_path / "a")
    assert r.exit_code == 3 and "1 of the 8 negatives could not be cut out" in r.output and "--allow-short" in r.output
    r = invoke(*args, "--allow-short", "-o", tmp_path / "b", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["short"] and summary["negatives"] == 7 and summary["pool"]["used"] is False
    rejects = [json.loads(x) for x in (tmp_path / "b" / "rejects.jsonl").read_text().splitlines()]
    assert [(x["file"], x["reason"]) for x in rejects] == [(f"raccoon/{names[0]}", "mask is empty")]


def test_all_cutouts_asked_but_a_photo_cannot_be_cut_says_so_instead_of_opening_the_default_pool(tmp_path):
    # README: "--synthetic 1 ... no pool is opened (it runs offline)". A photo whose object fills it
    # cannot be cut; the default preset (a download) is not opened for the one negative it lacks
    pos = raccoons(tmp_path, first(5) + [UNCUTTABLE])
    args = ["sample", "-q", "-p", pos, "--boxes", VOC, "--synthetic", 1, "--seed", 1, "--workers", 1]
    r = invoke(*args, "-o", tmp_path / "a")
    assert r.exit_code == 3 and not (tmp_path / "a").exists(), r.output
    assert "5 of the 6 positives can be cut" in r.output and "--count 5 or fewer" in r.output
    assert "--source" in r.output and "Hub" not in r.output
    r = invoke(*args, "--count", 5, "-o", tmp_path / "b")
    assert r.exit_code == 0 and len([x for x in read_manifest(tmp_path / "b") if x["cutout"]]) == 5, r.output
