"""`negmine mine` (#23): the score column is found by name, never by position (a per-class export
`path,other,raccoon` is ranked by the positive class), and --exclude judges every label of an
image drawn from a multi-label pool, as `sample` does."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import SHARED, read_manifest
from conftest import read_negatives as negatives
from multilabel_pools import make_multilabel_pool
from negmine.cli import cli
from negmine.errors import NegmineError
from negmine.sampling.scores import ScoreClasses, read_scores


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


@pytest.fixture
def raccoons(tmp_path) -> Path:
    root = tmp_path / "positives" / "raccoon"
    root.mkdir(parents=True)
    for f in sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[:6]:
        shutil.copy(f, root / f.name)
    return root.parent


@pytest.fixture
def round1(tmp_path, raccoons) -> Path:
    """A negmine output: 6 raccoon positives, 12 negatives drawn from real ImageNet photos."""
    pool = tmp_path / "pool" / "images"
    pool.mkdir(parents=True)
    for f in sorted((SHARED / "imagenet-500" / "images").glob("n03*.JPEG"))[:16]:
        shutil.copy(f, pool / f.name)
    out = tmp_path / "round1"
    r = invoke("sample", "-p", raccoons / "raccoon", "-s", pool, "--count", 12, "--split", "1", "--seed", 1,
               "--workers", 1, "-q", "-o", out)
    assert r.exit_code == 0, r.output
    return out


def test_per_class_columns_rank_by_the_positive_class(tmp_path, round1):
    negs = negatives(round1)
    p_raccoon = {r["path"]: round(0.05 + 0.07 * k, 2) for k, r in enumerate(negs)}
    scores = tmp_path / "preds.csv"
    scores.write_text("path,other,raccoon\n" + "".join(f"{p},{1 - v:.2f},{v}\n" for p, v in p_raccoon.items()))
    out = tmp_path / "hard"
    r = invoke("mine", "--scores", scores, "--pool", round1, "--count", 3, "--skip-top", 0, "--workers", 1, "-o", out)
    assert r.exit_code == 0, r.output
    hardest = sorted(p_raccoon, key=lambda p: -p_raccoon[p])[:3]
    assert [k["id"] for k in read_manifest(out)] == hardest
    assert "ranked by column raccoon" in r.output and "negative-class column other ignored" in r.output
    record = json.loads((out / "negmine.json").read_text())
    assert record["scores"]["score_columns"] == ["raccoon"] and record["scores"]["ignored_columns"] == ["other"]


def test_jsonl_and_parquet_scores_follow_the_same_rules(tmp_path, round1):
    import pyarrow as pa
    import pyarrow.parquet as pq

    negs = negatives(round1)
    p_raccoon = {r["path"]: round(0.9 - 0.07 * k, 2) for k, r in enumerate(negs)}
    hardest = sorted(p_raccoon, key=lambda p: -p_raccoon[p])[:2]
    jsonl = tmp_path / "preds.jsonl"
    jsonl.write_text("".join(json.dumps({"file": p, "other": 1 - v, "raccoon": v}) + "\n" for p, v in p_raccoon.items()))
    parquet = tmp_path / "preds.parquet"
    pq.write_table(pa.table({"path": list(p_raccoon), "prob": list(p_raccoon.values())}), parquet)
    for k, scores in enumerate((jsonl, parquet)):
        out = tmp_path / f"hard{k}"
        r = invoke("mine", "-q", "--scores", scores, "--pool", round1, "--count", 2, "--skip-top", 0, "--workers", 1,
                   "-o", out)
        assert r.exit_code == 0, r.output
        assert [x["id"] for x in read_manifest(out)] == hardest


@pytest.mark.parametrize("header,message", [
    ("path,other", "only score is the negative class's column other"),
    ("path,a,b", "no score column among its numeric columns ('a', 'b')"),
    ("path,score,raccoon", "both a score column and per-class columns ('score', 'raccoon')"),
    ("path,score,prob", "2 score columns ('score', 'prob')"),
    ("path,file,score", "2 id columns ('path', 'file')"),
    ("name,score", "no id column among its columns ('name', 'score')"),
    ("path,other,raccoon,epoch", "numeric columns that are not the pool's classes ('epoch')"),
])
def test_ambiguous_score_files_are_refused_in_one_line(tmp_path, round1, header, message):
    negs = negatives(round1)
    width = header.count(",")
    scores = tmp_path / "preds.csv"
    scores.write_text(header + "\n" + "".join(r["path"] + ",0.5" * width + "\n" for r in negs))
    r = invoke("mine", "--scores", scores, "--pool", round1, "--count", 2, "--workers", 1, "-o", tmp_path / "hard")
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], r.output
    assert "--score-column" in lines[0] or "--id-column" in lines[0]
    assert not (tmp_path / "hard").exists()


def test_score_column_option_chooses_and_takes_the_highest_of_several(tmp_path):
    scores = tmp_path / "s.csv"
    scores.write_text("path,other,cat,dog\na.jpg,0.1,0.7,0.2\nb.jpg,0.5,0.1,0.4\n")
    got = read_scores(scores, score_column="cat,dog")
    assert got.values == {"a.jpg": 0.7, "b.jpg": 0.4} and got.score_columns == ["cat", "dog"]
    got = read_scores(scores, classes=ScoreClasses(["cat", "dog"], ["other"]))
    assert got.values == {"a.jpg": 0.7, "b.jpg": 0.4} and got.ignored == ["other"]
    with pytest.raises(NegmineError, match="no column 'bird'"):
        read_scores(scores, score_column="bird")
    # a pool of cat and dog positives scored with a cat column only: ranking by it would keep the
    # easiest negatives for dog, so it is refused, naming the class without a column
    scores.write_text("path,other,cat\na.jpg,0.1,0.7\nb.jpg,0.5,0.1\n")
    with pytest.raises(NegmineError, match="none for the positive class dog"):
        read_scores(scores, classes=ScoreClasses(["cat", "dog"], ["other"]))
    assert read_scores(scores, score_column="cat", classes=ScoreClasses(["cat", "dog"], ["other"])).values["a.jpg"] == 0.7
    scores.write_text("File,Other,Red Fox\na.jpg,0.9,0.1\nb.jpg,0.2,0.8\n")       # a negmine output's class red_fox
    got = read_scores(scores, classes=ScoreClasses(["red_fox"], ["other"]))
    assert got.values == {"a.jpg": 0.1, "b.jpg": 0.8} and (got.id_column, got.score_columns) == ("File", ["Red Fox"])


def test_mine_exclude_judges_every_label_of_a_multi_label_image(tmp_path, raccoons):
    """An image drawn with stratum label 'cat' that also carries 'dog': `mine --exclude dog` removes
    it, as `sample --exclude dog` would not have drawn it."""
    pool, _ = make_multilabel_pool(tmp_path / "pool", "classlabel", rows=80)
    base = tmp_path / "round1"
    r = invoke("sample", "-p", raccoons, "-s", pool, "--count", 30, "--split", "1", "--seed", 3,
               "--workers", 1, "-q", "-o", base)
    assert r.exit_code == 0, r.output
    negs = negatives(base)
    assert all(isinstance(n["labels"], list) for n in negs)
    hidden = [n["path"] for n in negs if "dog" in n["labels"] and n["label"] != "dog"]
    assert hidden, "the draw should hold images whose dog label is not their stratum"
    scores = tmp_path / "s.csv"
    # the images hiding a dog are the hardest: ranked first, they must still go
    scores.write_text("path,score\n" + "".join(f"{n['path']},{(0.9 if n['path'] in hidden else 0.5) + k / 1000}\n"
                                               for k, n in enumerate(negs)))
    out = tmp_path / "hard"
    r = invoke("mine", "-q", "--scores", scores, "--pool", base, "--count", 5, "--skip-top", 0, "--workers", 1,
               "--exclude", "dog", "-o", out)
    assert r.exit_code == 0, r.output
    kept = read_manifest(out)
    labels = {n["path"]: n["labels"] for n in negs}
    assert len(kept) == 5 and all("dog" not in labels[k["id"]] for k in kept)
    assert [k["labels"] for k in kept] == [labels[k["id"]] for k in kept]       # carried on for a next round
    rejected = {x["id"]: x["reason"] for x in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    for path in hidden:
        assert "overlaps the positives" in rejected[path]
    # sample applies the same rule to the same pool: no image it draws with --exclude dog carries dog
    again = tmp_path / "again"
    r = invoke("sample", "-p", raccoons, "-s", pool, "--count", 10, "--split", "1", "--seed", 3,
               "--workers", 1, "-q", "--exclude", "dog", "-o", again)
    assert r.exit_code == 0, r.output
    assert all("dog" not in n["labels"] for n in negatives(again))


def test_mine_exclude_is_the_rule_classes_and_sample_apply(tmp_path, raccoons):
    """Over real ImageNet photos in wnid folders: the classes `mine --exclude dog` rejects are the
    ones `negmine classes --exclude dog` lists for the same labels, the co-occurrence prior's
    (white wolf: dogs in 3 of its 50 ImageNet-ReaL images) included."""
    import csv

    pool = tmp_path / "pool"
    rows = list(csv.DictReader((SHARED / "imagenet-500" / "classes.csv").read_text().splitlines()))
    picked = [r for r in rows if "n02085" <= r["wnid"] <= "n02120"] + [r for r in rows if r["wnid"] >= "n03"][::6]
    for r in picked:
        (pool / r["wnid"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED / "imagenet-500" / r["file"], pool / r["wnid"])
    r = invoke("classes", "-s", pool, "-x", "dog", "--json")
    assert r.exit_code == 0, r.output
    excluded = {e["label"]: e["reason"] for e in json.loads(r.output)["sources"][0]["excluded"]}
    assert "ImageNet-ReaL" in excluded["n02114548"]                     # by the prior, not the taxonomy
    base = tmp_path / "round1"
    r = invoke("sample", "-p", raccoons, "-s", pool, "--count", len(picked), "--allow-short", "--split", "1",
               "--seed", 2, "--workers", 1, "-q", "-o", base)              # the whole pool
    assert r.exit_code == 0, r.output
    negs = negatives(base)
    assert "n02114548" in {n["label"] for n in negs}
    scores = tmp_path / "s.csv"
    scores.write_text("path,score\n" + "".join(f"{n['path']},{0.9 - k / 1000}\n" for k, n in enumerate(negs)))
    out = tmp_path / "hard"
    r = invoke("mine", "-q", "--scores", scores, "--pool", base, "--count", 5, "--skip-top", 0, "--workers", 1,
               "-x", "dog", "-o", out)
    assert r.exit_code == 0, r.output
    label = {n["path"]: n["label"] for n in negs}
    rejected = {label[x["id"]] for x in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())
                if "overlaps the positives" in x["reason"]}
    assert rejected == {n["label"] for n in negs} & set(excluded)
    assert not {k["label"] for k in read_manifest(out)} & set(excluded)


def test_held_out_images_of_an_output_pool_are_not_mined_unless_asked(tmp_path, raccoons):
    """examples/train.py scores the test split; mining those scores would put test images into the next
    training set. Scores naming them are refused in one line; train-only scores are mined;
    --allow-held-out mines them, and says so."""
    pool = tmp_path / "pool" / "images"
    pool.mkdir(parents=True)
    for f in sorted((SHARED / "imagenet-500" / "images").glob("n03*.JPEG"))[:16]:
        shutil.copy(f, pool / f.name)
    out = tmp_path / "round1"
    r = invoke("sample", "-p", raccoons / "raccoon", "-s", pool, "--count", 12, "--split", "0.5,0,0.5", "--seed", 1,
               "--workers", 1, "-q", "-o", out)
    assert r.exit_code == 0, r.output
    rows = read_manifest(out)
    scored = [x for x in rows if x["split"] == "test"]             # what a trainer writes for eval
    held = sum(x["role"] == "negative" for x in scored)
    scores = tmp_path / "test.csv"
    scores.write_text("path,score\n" + "".join(f"{x['path']},{0.1 + k / 100}\n" for k, x in enumerate(scored)))
    train = [x for x in rows if x["split"] == "train" and x["role"] == "negative"]
    both = tmp_path / "both.csv"                      # train and test scores: still refused, nothing chosen quietly
    both.write_text(scores.read_text() + "".join(f"{x['path']},{0.05 + k / 100}\n" for k, x in enumerate(train)))
    for f in (scores, both):
        r = invoke("mine", "--scores", f, "--pool", out, "--count", 2, "--skip-top", 0, "--workers", 1,
                   "-o", tmp_path / "m")
        assert r.exit_code == 1 and not (tmp_path / "m").exists(), r.output
        assert f"{held} scored negatives are held out by the pool output for measuring ({held} of split test)" in r.output
        assert "--allow-held-out" in r.output and len(r.output.strip().splitlines()) == 1

    only_train = tmp_path / "train.csv"
    only_train.write_text("path,score\n" + "".join(f"{x['path']},{0.05 + k / 100}\n" for k, x in enumerate(train)))
    r = invoke("mine", "--scores", only_train, "--pool", out, "--count", 2, "--skip-top", 0, "--workers", 1,
               "-o", tmp_path / "m")
    assert r.exit_code == 0, r.output
    assert all(k["id"].startswith("train/") for k in read_manifest(tmp_path / "m"))

    r = invoke("mine", "--scores", scores, "--pool", out, "--count", 2, "--skip-top", 0, "--workers", 1,
               "--allow-held-out", "-o", tmp_path / "m2")
    assert r.exit_code == 0, r.output
    assert "warning: 2 held-out images of the pool output" in r.output
    record = json.loads((tmp_path / "m2" / "negmine.json").read_text())
    assert record["held_out"]["mined"] == {"test": 2} and "--allow-held-out" in record["warnings"][0]


def test_a_shortfall_counts_the_rejects_and_suggests_a_remedy(tmp_path, round1):
    negs = negatives(round1)
    scores = tmp_path / "s.csv"
    scores.write_text("path,score\n" + "".join(f"{r['path']},{k / 100}\n" for k, r in enumerate(negs)))
    r = invoke("mine", "--scores", scores, "--pool", round1, "--count", 100, "--skip-top", 0.25, "--workers", 1,
               "-q", "-o", tmp_path / "hard")
    kept = len(negs) - len(negs) // 4
    assert r.exit_code == 3 and not (tmp_path / "hard").exists(), r.output
    assert r.output.strip() == (f"Error: only {kept} scored candidates pass the filters, 100 asked (rejected: "
                                f"{len(negs) // 4} in the top 25.0%); try scores for more of the pool (--scores), "
                                f"or a lower --skip-top, or a --count of at most {kept}")
