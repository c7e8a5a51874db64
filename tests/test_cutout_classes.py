"""`cutout --classes` judges annotation class names with the taxonomy `sample` uses: `--classes dog`
removes `Dog` and `puppy` boxes, keeps `person`, removes (and names) classes nothing places, takes
`--concept`, and records which annotation name matched which concept. Real photos from
../shared/data/raccoon-voc (VOC boxes) and a small COCO file written here."""

import json
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import SHARED, read_manifest
from negmine.cli import cli
from negmine.synthetic.classes import judge_object_classes

RAC = SHARED / "raccoon-voc"


def cutout(*args):
    return CliRunner().invoke(cli, ["cutout", "--workers", "1", "--seed", "1", *map(str, args)])


def voc_box(name: str) -> list[int]:
    root = ET.parse(RAC / "annotations" / name.replace(".jpg", ".xml")).getroot()
    bb = root.find("object/bndbox")
    return [int(float(bb.findtext(t))) for t in ("xmin", "ymin", "xmax", "ymax")]


@pytest.fixture
def coco(tmp_path):
    """Five raccoon photos and a COCO file: each photo's real raccoon box under another category name,
    and a second box of a named class beside it on some."""
    names = sorted(p.name for p in (RAC / "images").glob("*.jpg"))[:5]
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for n in names:
        shutil.copy(RAC / "images" / n, imgs / n)
    cats = ["puppy", "Dog", "person", "diningtable"]
    images, anns = [], []
    sizes = {n: Image.open(imgs / n).size for n in names}

    def add(img: int, cat: str, box: list[int]):
        x0, y0, x1, y1 = box
        anns.append({"id": len(anns) + 1, "image_id": img, "category_id": cats.index(cat) + 1,
                     "bbox": [x0, y0, x1 - x0, y1 - y0]})

    for i, n in enumerate(names):
        images.append({"id": i + 1, "file_name": n, "width": sizes[n][0], "height": sizes[n][1]})
    add(1, "puppy", voc_box(names[0]))
    add(1, "person", free_corner(sizes[names[0]], voc_box(names[0])))
    add(2, "Dog", voc_box(names[1]))
    add(3, "person", voc_box(names[2]))
    add(4, "diningtable", voc_box(names[3]))
    add(4, "person", free_corner(sizes[names[3]], voc_box(names[3])))
    # names[4]: annotated, no object
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": k + 1, "name": c} for k, c in enumerate(cats)]}))
    return imgs, path, names


def free_corner(size, box) -> list[int]:
    """A box in a corner of the image that does not touch `box` (the raccoon)."""
    w, h = size
    cw, ch = w // 8, h // 8
    for x0, y0 in ((0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch)):
        if x0 + cw <= box[0] or x0 >= box[2] or y0 + ch <= box[1] or y0 >= box[3]:
            return [x0, y0, x0 + cw, y0 + ch]
    raise AssertionError("no free corner: pick other photos")


def changed(original, written, box) -> float:
    """Mean absolute difference (0-255) between two images inside a box."""
    x0, y0, x1, y1 = box
    a = np.asarray(Image.open(original).convert("RGB"), dtype=np.float32)[y0:y1, x0:x1]
    b = np.asarray(Image.open(written).convert("RGB"), dtype=np.float32)[y0:y1, x0:x1]
    return float(np.abs(a - b).mean())


def test_classes_dog_removes_dog_and_puppy_keeps_person_and_removes_what_nothing_places(tmp_path, coco):
    imgs, ann, names = coco
    out = tmp_path / "cut"
    r = cutout("--images", imgs, "--boxes", ann, "--classes", "dog", "--fill", "noise", "-o", out)
    assert r.exit_code == 0, r.output
    rows = {x["file"]: x for x in read_manifest(out)}
    assert sorted(rows) == sorted([names[0], names[1], names[3]])
    assert [b[4] for b in rows[names[0]]["boxes"]] == ["puppy"] and rows[names[0]]["classes"] == {"puppy": ["dog"]}
    assert rows[names[1]]["classes"] == {"Dog": ["dog"]}
    assert rows[names[3]]["classes"] == {"diningtable": None}
    # the dog and the unplaced object are gone from the pictures, the people are still there
    sizes = {n: Image.open(imgs / n).size for n in names}
    for n in (names[0], names[3]):
        assert changed(imgs / n, out / rows[n]["path"], voc_box(n)) > 40
        assert changed(imgs / n, out / rows[n]["path"], free_corner(sizes[n], voc_box(n))) < 8
    rejects = {x["file"]: x["reason"] for x in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    assert rejects == {names[2]: "no object of the chosen classes", names[4]: "no object of the chosen classes"}
    record = json.loads((out / "negmine.json").read_text())
    classes = record["classes"]
    assert set(classes["matched"]) == {"puppy", "Dog"}
    assert all(m[0]["concept"] == "dog" for m in classes["matched"].values())
    assert "is a kind of dog" in classes["matched"]["puppy"][0]["reason"]
    assert classes["unplaced_removed"] == ["diningtable"] and classes["kept"] == ["person"]
    assert classes["concepts"][0]["synsets"] == ["dog (n02084071)"]
    assert len(record["warnings"]) == 1 and "'diningtable'" in record["warnings"][0]
    assert f"warning: {record['warnings'][0]}" in r.output


def test_concept_says_what_an_annotation_name_means_and_bad_names_are_one_line_errors(tmp_path, coco):
    imgs, ann, names = coco
    out = tmp_path / "cut"
    r = cutout("-q", "--images", imgs, "--boxes", ann, "--classes", "dog", "--concept", "diningtable=n03201208",
               "-o", out)
    assert r.exit_code == 0, r.output
    assert sorted(x["file"] for x in read_manifest(out)) == sorted([names[0], names[1]])
    record = json.loads((out / "negmine.json").read_text())
    assert record["warnings"] == [] and record["classes"]["kept"] == ["diningtable", "person"]
    # --concept on a --classes name places a name nothing else would
    r = cutout("-q", "--images", imgs, "--boxes", ann, "--classes", "hound-ish", "--concept", "hound-ish=dog",
               "-o", tmp_path / "named")
    assert r.exit_code == 0, r.output
    assert {x["file"] for x in read_manifest(tmp_path / "named")} >= {names[0], names[1]}
    for args, says in ((["--classes", "dgo"], "cannot place the positive name 'dgo'"),
                       (["--classes", "dog", "--concept", "sofa=n04256520"], "--concept 'sofa'"),
                       (["--classes", "dog", "--concept", "diningtable=zzqx"], "neither a WordNet noun nor a wnid"),
                       (["--classes", " , "], "--classes names no class")):
        r = cutout("--images", imgs, "--boxes", ann, *args, "-o", tmp_path / "bad")
        assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1 and says in r.output, r.output
        assert not (tmp_path / "bad").exists()
    (tmp_path / "masks").mkdir()
    r = cutout("--images", imgs, "--masks", tmp_path / "masks", "--classes", "dog", "-o", tmp_path / "bad")
    assert r.exit_code == 1 and "--classes needs --boxes" in r.output


def test_voc_classes_are_judged_by_meaning_not_spelling(tmp_path):
    imgs, boxes = tmp_path / "imgs", tmp_path / "ann"
    imgs.mkdir()
    boxes.mkdir()
    for p in sorted((RAC / "images").glob("*.jpg"))[:8]:
        shutil.copy(p, imgs / p.name)
        shutil.copy(RAC / "annotations" / p.with_suffix(".xml").name, boxes)
    objects = sum(len(ET.parse(x).getroot().findall("object")) for x in boxes.iterdir())
    for classes, written in (("Raccoon", 8), ("animal", 8), ("procyonid,cat", 8), ("dog", 0)):
        out = tmp_path / classes.replace(",", "_")
        r = cutout("-q", "--images", imgs, "--boxes", boxes, "--classes", classes, "-o", out)
        assert r.exit_code == 0, r.output
        rows = read_manifest(out)
        assert len(rows) == written, (classes, r.output)
        assert sum(len(x["boxes"]) for x in rows) == (objects if written else 0)
        matched = json.loads((out / "negmine.json").read_text())["classes"]["matched"]
        assert (set(matched) == {"raccoon"}) == bool(written)


def test_class_ids_and_boxes_without_a_class_are_removed_not_guessed():
    # YOLO without classes.txt names classes by id: '1' is no numeral, it is a class nobody named
    found = judge_object_classes(["0"], ["0", "1", "1", None])
    assert list(found.matched) == ["0"] and found.unplaced == ["1", "(no class)"]
    assert found.removes("1") and found.removes(None) and found.removes("0")
    assert "'1', '(no class)'" in found.warnings()[-1] and "their 3 objects are removed too" in found.warnings()[-1]
    found = judge_object_classes(["dog"], ["Dog", "puppy", "person", "animal"])
    assert set(found.matched) == {"Dog", "puppy", "animal"} and found.kept == ["person"] and not found.warnings()
