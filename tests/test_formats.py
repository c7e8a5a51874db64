"""Output formats, checked with the real loaders where they install here (datasets' imagefolder,
pandas for the CSV) and against the loaders' documented rules otherwise (torchvision ImageFolder,
Keras, fastai, Ultralytics); class weights; hard-negative mining; recipes."""

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import SHARED, read_manifest
from negmine.cli import cli
from negmine.outputs.formats import class_weights

RAC = SHARED / "raccoon-voc"
KERAS_EXT = {".bmp", ".gif", ".jpeg", ".jpg", ".png"}
TORCHVISION_EXT = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def sample(positives, pool, out, *extra):
    r = invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", pool, "--seed", 3, "-o", out, *extra)
    assert r.exit_code == 0, r.output
    return r


def torchvision_classes(split_dir: Path) -> list[str]:
    """torchvision.datasets.folder.find_classes: sorted sub-folders (hidden ones too); raises when a
    class folder has no file with an allowed extension."""
    classes = sorted(e.name for e in split_dir.iterdir() if e.is_dir())
    for c in classes:
        assert any(p.suffix.lower() in TORCHVISION_EXT for p in (split_dir / c).iterdir()), f"empty class {c}"
    return classes


def test_imagefolder_follows_torchvision_keras_and_fastai_rules(positives, pool, tmp_path):
    out = tmp_path / "ds"
    sample(positives, pool, out, "--split", "0.8,0.1,0.1")
    classes = (out / "classes.txt").read_text().split()
    assert classes == sorted(classes) == ["other", "raccoon", "racoon"]
    for split in ("train", "val", "test"):
        assert torchvision_classes(out / split) == classes           # same classes, same indices, every split
        for p in (out / split).rglob("*"):
            if p.is_file():
                assert p.suffix in KERAS_EXT and p.suffix == p.suffix.lower() and not p.name.startswith(".")
                assert p.parent.parent == out / split                 # flat inside each class folder
    weights = json.loads((out / "class_weights.json").read_text())
    assert weights["counts"] == {"other": 16, "raccoon": 10, "racoon": 6}
    assert weights["inverse_frequency"]["racoon"] == pytest.approx(32 / (3 * 6))


def test_class_weights_math():
    w = class_weights({"a": 70000, "b": 7000, "c": 7000})
    inv = w["inverse_frequency"]
    assert inv["b"] / inv["a"] == pytest.approx(10)
    total = 84000
    for key in ("inverse_frequency", "effective_number"):
        mean = sum(w[key][c] * n for c, n in w["counts"].items()) / total
        assert mean == pytest.approx(1)                                # weighted mean over samples is 1
    assert 1 < w["effective_number"]["b"] / w["effective_number"]["a"] < 10   # softer than inverse frequency


def test_hf_format_loads_with_the_same_class_ids_in_every_split(positives, pool, tmp_path):
    import datasets

    out = tmp_path / "ds"
    sample(positives, pool, out, "--format", "hf")
    dd = datasets.load_dataset(str(out))                  # the README's call: no class_encode_column
    assert set(dd) == {"train", "validation", "test"}      # the Hub's names: ds["validation"] as everywhere
    rows = read_manifest(out)
    names = ["other", "raccoon", "racoon"]
    for split, ours in (("train", "train"), ("validation", "val"), ("test", "test")):
        assert dd[split].features["label"].names == names
        assert Counter(names[i] for i in dd[split]["label"]) == Counter(r["class"] for r in rows if r["split"] == ours)
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"]


def test_multilabel_csv_has_empty_label_sets_for_negatives(positives, pool, tmp_path):
    import pandas as pd

    out = tmp_path / "ds"
    sample(positives, pool, out, "--format", "multilabel-csv")
    df = pd.read_csv(out / "labels.csv", keep_default_na=False)
    assert list(df.columns) == ["fname", "labels", "split", "raccoon", "racoon"]
    neg = df[df["labels"] == ""]
    assert len(neg) == 20 and (neg[["raccoon", "racoon"]] == 0).all().all()
    pos = df[df["labels"] != ""]
    assert ((pos["raccoon"] + pos["racoon"]) == 1).all() and (pos["labels"] == "raccoon").sum() == 12
    assert all((out / f).is_file() for f in df["fname"])
    assert pd.read_csv(out / "labels.csv")["labels"].isna().sum() == 20   # why keep_default_na=False matters


def test_multilabel_csv_pos_weight_loads_into_bce_over_the_csv_columns(positives, pool, tmp_path):
    import pandas as pd
    import torch

    out = tmp_path / "ds"
    sample(positives, pool, out, "--format", "multilabel-csv")
    assert not (out / "class_weights.json").exists()            # its `other` weight means nothing to BCE
    w = json.loads((out / "pos_weight.json").read_text())
    df = pd.read_csv(out / "labels.csv", keep_default_na=False)
    columns = list(df.columns[3:])
    assert w["classes"] == columns == ["raccoon", "racoon"]     # `other` is the all-zeros row, not a class
    train = df[df["split"] == "train"]
    # negatives / positives of each class in train: 32 train images, 10 raccoon, 6 racoon
    assert w["pos_weight"] == [pytest.approx((len(train) - train[c].sum()) / train[c].sum()) for c in columns]
    assert w["pos_weight"] == [pytest.approx(22 / 10), pytest.approx(26 / 6)]
    target = torch.tensor(train[columns].to_numpy(dtype="float32"))
    loss = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w["pos_weight"]), reduction="none")
    per = loss(torch.zeros_like(target), target)                # logit 0: every term is log 2
    # a positive's term is scaled by its class's weight, a negative's not
    assert torch.allclose(per[target == 1].unique().sort().values,
                          (torch.tensor(w["pos_weight"]) * torch.log(torch.tensor(2.0))).sort().values)
    assert torch.allclose(per[target == 0], torch.log(torch.tensor(2.0)))
    single = tmp_path / "single"
    sample(positives, pool, single)
    assert not (single / "pos_weight.json").exists() and (single / "class_weights.json").exists()


def test_yolo_cls_needs_val_and_uses_ultralytics_names(positives, pool, tmp_path):
    r = invoke("sample", "-q", "-p", positives, "-s", pool, "--format", "yolo-cls", "--split", "1", "-o", tmp_path / "x")
    assert r.exit_code == 1 and "val split" in r.output
    out = tmp_path / "ds"
    sample(positives, pool, out, "--format", "yolo-cls", "--split", "0.9,0.1")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["train", "val"]
    assert torchvision_classes(out / "train") == torchvision_classes(out / "val")


def test_yolo_det_backgrounds_have_empty_label_files(tmp_path, pool):
    pos = tmp_path / "objects" / "raccoon"
    pos.mkdir(parents=True)
    for p in sorted((RAC / "images").glob("*.jpg"))[:30]:
        shutil.copy(p, pos / p.name)
    out = tmp_path / "det"
    r = sample(pos.parent, pool, out, "--format", "yolo-det", "--boxes", RAC / "annotations", "--ratio", 0.11,
               "--split", "0.9,0.1")
    assert "warning" not in r.output
    data = (out / "data.yaml").read_text()
    assert "train: images/train" in data and "val: images/val" in data and '0: "raccoon"' in data
    rows = read_manifest(out)
    assert sum(r["role"] == "negative" for r in rows) == 3
    for r in rows:
        img = out / r["path"]
        label = out / "labels" / r["split"] / (img.stem + ".txt")
        assert img.parent == out / "images" / r["split"] and label.is_file()
        lines = label.read_text().splitlines()
        if r["role"] == "negative":
            assert lines == []
        else:
            assert lines and all(len(x.split()) == 5 and x.split()[0] == "0" for x in lines)
            cx, cy, w, h = map(float, lines[0].split()[1:])
            assert 0 <= cx <= 1 and 0 <= cy <= 1 and 0 < w <= 1 and 0 < h <= 1
    # the VOC box of the first positive, normalised
    first = next(r for r in rows if r["file"] == "raccoon/raccoon-1.jpg")
    line = (out / "labels" / first["split"] / (Path(first["path"]).stem + ".txt")).read_text().split()
    assert float(line[1]) == pytest.approx((81 + 522) / 2 / 650, abs=1e-5)
    r = invoke("sample", "-q", "-p", pos.parent, "-s", pool, "--format", "yolo-det", "--boxes", RAC / "annotations",
               "--ratio", 1, "--split", "0.9,0.1", "-o", tmp_path / "bg")
    assert "50% of the images are backgrounds" in r.output


def test_class_names_that_look_like_splits_are_refused(pool, tmp_path):
    pos = tmp_path / "pos" / "images"
    pos.mkdir(parents=True)
    shutil.copy(sorted((RAC / "images").glob("*.jpg"))[0], pos / "a.jpg")
    r = invoke("sample", "-q", "-p", pos.parent, "-s", pool, "--format", "yolo-det", "--boxes", RAC / "annotations",
               "--split", "0.9,0.1", "-o", tmp_path / "x")
    assert r.exit_code == 1 and "read as a split" in r.output               # yolo-det reads images/, labels/
    r = invoke("sample", "-q", "-p", pos, "-s", pool, "--seed", 1, "--allow-missing-classes", "-o", tmp_path / "generic")
    assert r.exit_code == 0 and {x["class"] for x in read_manifest(tmp_path / "generic")} == {"pos", "other"}
    r = invoke("sample", "-q", "-p", pos, "-s", pool, "-o", tmp_path / "y", "--negative-class", "val")
    assert r.exit_code == 1


def test_push_to_hub_uploads_privately_with_a_card(positives, pool, tmp_path, monkeypatch):
    import huggingface_hub

    calls = {}
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, repo_id, **kw: calls.setdefault("create", (repo_id, kw)) and f"https://hf.co/datasets/{repo_id}")
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_file", lambda self, **kw: calls.setdefault("card", kw))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **kw: calls.setdefault("folder", kw))
    out = tmp_path / "ds"
    r = sample(positives, pool, out, "--push-to-hub", "me/raccoons")
    assert calls["create"][1]["private"] is True and calls["create"][1]["repo_type"] == "dataset"
    card = calls["card"]["path_or_fileobj"].decode()
    assert "| other | 16 | 2 | 2 |" in card and "cc-by-4.0" in card and "seed 3" in card
    assert calls["folder"]["folder_path"] == str(out.resolve()) or Path(calls["folder"]["folder_path"]) == out
    assert "pushed to" in r.output


# -- mining -----------------------------------------------------------------------------------------
def test_mine_keeps_the_hardest_after_skipping_the_top(positives, pool, tmp_path):
    base = tmp_path / "round1"
    sample(positives, pool, base, "--count", 60)
    # the train negatives: val and test ones are held out (mined only with --allow-held-out)
    negatives = [r for r in read_manifest(base) if r["role"] == "negative" and r["split"] == "train"]
    scores = tmp_path / "preds.csv"
    with open(scores, "w") as f:
        f.write("path,score\n")
        for i, r in enumerate(negatives):
            f.write(f"{r['path']},{i / 100}\n")
        f.write("not/in/pool.jpg,0.99\n")
    out = tmp_path / "hard"
    r = invoke("mine", "-q", "--workers", "1", "--scores", scores, "--pool", base, "--count", 10, "--skip-top", 0.1,
               "-o", out)
    assert r.exit_code == 0, r.output
    kept = read_manifest(out)
    ranked = sorted(negatives, key=lambda r: -negatives.index(r))     # highest score = last written here
    skip = int(0.1 * len(negatives))                                     # of those in the pool
    expect = [x["path"] for x in ranked[skip:skip + 10]]
    assert skip > 0 and [k["id"] for k in kept] == expect
    assert [k["score"] for k in kept] == sorted((k["score"] for k in kept), reverse=True)
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    assert any(x["reason"] == "not in the pool" for x in rejects)
    assert sum("likely mislabelled" in x["reason"] for x in rejects) == skip


def test_yolo_det_backgrounds_show_none_of_the_classes_the_labels_name(tmp_path):
    # raccoon photos whose annotations also box a dog: data.yaml names dog, so no background may be
    # a dog photo (a detector would learn "no dog here"); the pool is labelled by wnid file names
    pos, ann = tmp_path / "pos" / "raccoon", tmp_path / "ann"
    pos.mkdir(parents=True)
    ann.mkdir()
    for k in range(1, 11):
        shutil.copy(RAC / "images" / f"raccoon-{k}.jpg", pos)
        xml = (RAC / "annotations" / f"raccoon-{k}.xml").read_text()
        if k == 1:                                  # a dog beside the raccoon, in one photo
            xml = xml.replace("</annotation>", "<object><name>dog</name><bndbox><xmin>10</xmin><ymin>10</ymin>"
                              "<xmax>60</xmax><ymax>60</ymax></bndbox></object></annotation>")
        (ann / f"raccoon-{k}.xml").write_text(xml)
    out = tmp_path / "det"
    r = invoke("sample", "-q", "--workers", 1, "-p", pos, "--boxes", ann, "--format", "yolo-det",
               "-s", SHARED / "imagenet-500", "--count", 300, "--seed", 1, "-o", out)
    assert r.exit_code == 0, r.output
    assert "dog" in (out / "data.yaml").read_text()
    from negmine.filters.taxonomy import Taxonomy

    tax = Taxonomy.load()
    dogs = [x["label"] for x in read_manifest(out) if x["role"] == "negative"
            and 2084071 in tax.ancestors(tax.from_wnid(x["label"]))]
    assert dogs == []
    record = json.loads((out / "negmine.json").read_text())
    assert "dog" in {c["term"] for c in record["classes"]["concepts"]}


def test_mine_applies_the_overlap_filters(positives, tmp_path):
    pool = tmp_path / "pool" / "chair"
    pool.mkdir(parents=True)
    raccoon = sorted(positives.rglob("*.jpg"))[0]
    Image.open(raccoon).resize((200, 150)).save(pool / "copy_of_positive.jpg")
    for p in sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))[:5]:
        shutil.copy(p, pool / p.name)
    scores = tmp_path / "s.csv"
    with open(scores, "w") as f:
        f.write("file,prob\n")
        f.write("chair/copy_of_positive.jpg,0.95\n")
        for i, p in enumerate(sorted(pool.glob("*.JPEG"))):
            f.write(f"chair/{p.name},{0.5 - i / 100}\n")
    out = tmp_path / "hard"
    r = invoke("mine", "-q", "--workers", "1", "--scores", scores, "--pool", pool.parent, "--count", 3,
               "--skip-top", 0, "--positives", positives, "-o", out)
    assert r.exit_code == 0, r.output
    assert "chair/copy_of_positive.jpg" not in {k["id"] for k in read_manifest(out)}
    reasons = {x["id"]: x["reason"] for x in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    assert "near-duplicate of a positive" in reasons["chair/copy_of_positive.jpg"]


def test_mine_errors(positives, pool, tmp_path):
    scores = tmp_path / "s.csv"
    scores.write_text("id,score\nx,abc\n")
    r = invoke("mine", "--scores", scores, "--pool", pool, "--count", 1, "-o", tmp_path / "o")
    assert r.exit_code == 1 and "not a number" in r.output
    scores.write_text("id,score\nnope,0.3\n")
    r = invoke("mine", "--scores", scores, "--pool", pool, "--count", 1, "-o", tmp_path / "o")
    assert r.exit_code == 1 and "none of the 1 scored ids" in r.output and "data/train-" in r.output


# -- recipes ----------------------------------------------------------------------------------------
# each recipe dry-run from its own folder, and what it says it does: tests/test_recipes.py


def test_recipe_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 'red'\n")
    r = invoke("run", bad)
    assert r.exit_code == 1 and "unknown option 'colour'" in r.output
    bad.write_text("ratio = [1, 2]\n")
    r = invoke("run", bad)
    assert r.exit_code == 1 and "takes one value" in r.output
    bad.write_text("ratio = \n")
    r = invoke("run", bad)
    assert r.exit_code == 1 and "not valid TOML" in r.output
