"""Synthetic negatives on ../shared/data/raccoon-voc (200 photos with VOC boxes)."""

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import SHARED, read_manifest
from negmine.synthetic.annotations import Box, load_boxes, match_images, parse_coco, parse_csv, parse_voc
from negmine.cli import cli
from negmine.synthetic.cutout import FILLS, CutoutOptions, background_crops, cutout, load_rgb
from negmine.errors import NegmineError
from negmine.images import ImageRejected

RAC = SHARED / "raccoon-voc"
IMAGES, VOC = RAC / "images", RAC / "annotations"


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def voc_boxes():
    return match_images(parse_voc(VOC), [p.name for p in IMAGES.glob("*.jpg")])


def test_annotation_formats_agree(tmp_path):
    voc = voc_boxes()
    assert len(voc) == 200 and sum(len(v) for v in voc.values()) == 217
    csv_boxes = parse_csv(RAC / "data" / "raccoon_labels.csv")
    assert {k: sorted(b.as_list() for b in v) for k, v in csv_boxes.items()} == \
        {k: sorted(b.as_list() for b in v) for k, v in voc.items()}
    # COCO and YOLO written from the VOC truth parse back to the same boxes
    images, anns = [], []
    yolo = tmp_path / "yolo"
    yolo.mkdir()
    (yolo / "classes.txt").write_text("raccoon\n")
    sizes = {}
    for i, (name, boxes) in enumerate(sorted(voc.items())):
        w, h = Image.open(IMAGES / name).size
        sizes[name] = (w, h)
        images.append({"id": i, "file_name": name, "width": w, "height": h})
        lines = []
        for b in boxes:
            anns.append({"image_id": i, "bbox": [b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0], "category_id": 1})
            lines.append(f"0 {(b.x0 + b.x1) / 2 / w} {(b.y0 + b.y1) / 2 / h} {(b.x1 - b.x0) / w} {(b.y1 - b.y0) / h}")
        (yolo / (Path(name).stem + ".txt")).write_text("\n".join(lines) + "\n")
    (tmp_path / "coco.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                    "categories": [{"id": 1, "name": "raccoon"}]}))
    coco = load_boxes(tmp_path / "coco.json")
    yolo_boxes = load_boxes(yolo, image_sizes=sizes)
    for name, boxes in voc.items():
        for other in (coco[name], yolo_boxes[name]):
            assert len(other) == len(boxes)
            for a, b in zip(sorted(boxes, key=lambda b: b.x0), sorted(other, key=lambda b: b.x0)):
                assert max(abs(x - y) for x, y in zip(a.as_list()[:4], b.as_list()[:4])) < 1e-6
                assert b.label == "raccoon"


def _rac(name="raccoon-1.jpg"):
    return (IMAGES / name).read_bytes(), voc_boxes()[name]


@pytest.mark.parametrize("fill", FILLS)
def test_fill_changes_only_the_region(fill):
    data, boxes = _rac()
    opts = CutoutOptions(fills=(fill,), image_format="png")
    out = cutout(data, boxes, opts, seed=3)
    before, after = load_rgb(data), np.asarray(Image.open(io.BytesIO(out.data)))
    mask = np.zeros(before.shape[:2], bool)
    for b in boxes:
        mask[int(b.y0):int(np.ceil(b.y1)), int(b.x0):int(np.ceil(b.x1))] = True
    assert out.fill == fill and after.shape == before.shape
    assert (after[~mask] == before[~mask]).all()                       # bit-exact outside
    changed = (after[mask] != before[mask]).any(axis=1).mean()
    assert changed > 0.5, f"{fill} changed only {changed:.0%} of the region"
    if fill == "black":
        assert (after[mask] == 0).all()


@pytest.mark.parametrize("fill", ["tile", "blur", "inpaint", "mean"])
def test_no_fill_copies_another_object_into_the_hole(fill):
    # a real photo with two objects of known pixels (pure magenta) beside each other: filling one
    # hole from the background beside it must not bring the other object in (tile used to take the
    # strip between them, and wrote the second raccoon of a two-raccoon photo into the "negative")
    rgb = load_rgb((IMAGES / "raccoon-1.jpg").read_bytes()).copy()
    h, w = rgb.shape[:2]
    boxes = [Box(w * 0.10, h * 0.3, w * 0.35, h * 0.7, "raccoon"), Box(w * 0.40, h * 0.3, w * 0.65, h * 0.7, "raccoon")]
    for b in boxes:
        rgb[int(b.y0):int(np.ceil(b.y1)), int(b.x0):int(np.ceil(b.x1))] = (255, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    out = np.asarray(Image.open(io.BytesIO(cutout(buf.getvalue(), boxes, CutoutOptions(fills=(fill,), image_format="png"),
                                                  seed=2).data))).astype(int)
    magenta = (out[..., 0] > 200) & (out[..., 1] < 60) & (out[..., 2] > 200)
    assert magenta.sum() == 0, f"{fill}: {magenta.sum()} object pixels left in the negative"


def test_fills_differ_and_noise_kinds():
    data, boxes = _rac()
    outs = {f: np.asarray(Image.open(io.BytesIO(cutout(data, boxes, CutoutOptions(fills=(f,), image_format="png"), 1).data)))
            for f in FILLS}
    flat = {f: a.tobytes() for f, a in outs.items()}
    assert len(set(flat.values())) == len(FILLS)
    b = boxes[0]
    region = lambda a: a[int(b.y0):int(b.y1), int(b.x0):int(b.x1)].reshape(-1, 3).astype(float)
    uniform = cutout(data, boxes, CutoutOptions(fills=("noise",), noise="uniform", image_format="png"), 1)
    u = np.asarray(Image.open(io.BytesIO(uniform.data)))
    assert region(u).std() > 60
    m = region(outs["noise"])                                            # matched, the default
    bg = load_rgb(data).astype(float)
    assert abs(m.mean() - bg.mean()) < 25 and m.std() < 80
    local = lambda a: np.abs(np.diff(a[int(b.y0):int(b.y1), int(b.x0):int(b.x1)].astype(float), axis=1)).mean()
    assert local(outs["blur"]) < 2 < local(outs["noise"]) < 40 < local(u)   # blur is smooth, white noise is not


def test_margin_grows_the_region_and_box_is_clipped():
    data, boxes = _rac()
    plain = np.asarray(Image.open(io.BytesIO(cutout(data, boxes, CutoutOptions(fills=("black",), image_format="png"), 0).data)))
    grown = np.asarray(Image.open(io.BytesIO(cutout(data, boxes, CutoutOptions(fills=("black",), margin="10",
                                                                              image_format="png"), 0).data)))
    assert (grown == 0).all(axis=2).sum() > (plain == 0).all(axis=2).sum()
    b = boxes[0]
    assert (grown[int(b.y0) - 10, int(b.x0) + 5] == 0).all() and not (plain[int(b.y0) - 10, int(b.x0) + 5] == 0).all()
    w, h = Image.open(IMAGES / "raccoon-1.jpg").size
    outside = [Box(-5, -5, 100, 100), Box(w - 50, h - 50, w + 20, h + 20)]     # real data spills over the edge
    out = cutout(data, outside, CutoutOptions(fills=("black",), image_format="png"), 0)
    assert out.boxes[0][:2] == [0.0, 0.0] and out.boxes[1][2:4] == [float(w), float(h)]


def test_max_cover_and_missing_objects_are_skips_with_reasons():
    data, _ = _rac()
    w, h = Image.open(IMAGES / "raccoon-1.jpg").size
    with pytest.raises(ImageRejected, match="more than --max-cover"):
        cutout(data, [Box(0, 0, w, h * 0.95)], CutoutOptions(), 0)
    with pytest.raises(ImageRejected, match="no annotated object"):
        cutout(data, [Box(w + 10, 0, w + 50, 10)], CutoutOptions(), 0)


def test_same_seed_same_bytes():
    data, boxes = _rac("raccoon-10.jpg")
    opts = CutoutOptions(fills=("noise", "tile", "blur"))
    assert cutout(data, boxes, opts, 42).data == cutout(data, boxes, opts, 42).data
    assert cutout(data, boxes, opts, 42).data != cutout(data, boxes, CutoutOptions(fills=("noise",)), 43).data


def test_grabcut_silhouette_its_box_confirms_is_used():
    # raccoon-6: GrabCut's mask covers 84% of the box and reaches every side: the silhouette is kept
    data, boxes = _rac("raccoon-6.jpg")
    out = cutout(data, boxes, CutoutOptions(region="mask", fills=("black",), image_format="png"), 0)
    assert out.fell_back == []
    after = np.asarray(Image.open(io.BytesIO(out.data)))
    black = (after == 0).all(axis=2) & ~(load_rgb(data) == 0).all(axis=2)
    b = boxes[0]
    box_area = (b.x1 - b.x0) * (b.y1 - b.y0)
    assert 0.4 * box_area < black.sum() < box_area                      # a silhouette, not the whole box
    ys, xs = np.nonzero(black)                                           # grown by a few px at most
    assert xs.min() >= b.x0 - 6 and xs.max() < b.x1 + 6 and ys.min() >= b.y0 - 6 and ys.max() < b.y1 + 6


def test_crops_overlap_no_box():
    for name in ("raccoon-1.jpg", "raccoon-10.jpg", "raccoon-100.jpg", "raccoon-150.jpg"):
        data, boxes = _rac(name)
        try:
            crops = background_crops(data, boxes, CutoutOptions(), 1, size=0.3, count=3)
        except ImageRejected as exc:
            assert "overlaps no object" in str(exc)
            continue
        for c in crops:
            x0, y0, x1, y1 = c.crop
            for b in boxes:
                assert min(x1, b.x1) <= max(x0, b.x0) or min(y1, b.y1) <= max(y0, b.y0)


def test_cutout_command_on_the_raccoon_set(tmp_path):
    out = tmp_path / "cut"
    r = invoke("cutout", "-q", "--images", IMAGES, "--boxes", VOC, "--fill", "noise", "--fill", "tile",
               "--seed", 5, "--workers", "2", "--out", out)
    assert r.exit_code == 0, r.output
    rows = read_manifest(out)
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    assert len(rows) + len(rejects) == 200 and len(rows) > 180
    assert all("--max-cover" in x["reason"] for x in rejects)
    assert {r["fill"] for r in rows} == {"noise", "tile"}
    # any row can be reproduced exactly from its manifest entry
    row = rows[7]
    again = cutout((IMAGES / row["file"]).read_bytes(), [Box(*b) for b in row["boxes"]],
                   CutoutOptions(fills=(row["fill"],)), row["seed"])
    assert again.data == (out / row["path"]).read_bytes()
    # sheet for a human look (kept in tmp)
    sheet = Image.new("RGB", (4 * 160, 160))
    for i, r_ in enumerate(rows[:4]):
        im = Image.open(out / r_["path"])
        im.thumbnail((160, 160))
        sheet.paste(im, (i * 160, 0))
    sheet.save(tmp_path / "contact.png")


def test_cutout_command_classes_crops_and_errors(tmp_path):
    ann = tmp_path / "ann.csv"
    rows = list(csv.DictReader(open(RAC / "data" / "raccoon_labels.csv")))[:10]
    with open(ann, "w") as f:
        f.write("filename,xmin,ymin,xmax,ymax,class\n")
        for i, r in enumerate(rows):
            f.write(f"{r['filename']},{r['xmin']},{r['ymin']},{r['xmax']},{r['ymax']},{'raccoon' if i % 2 else 'cat'}\n")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for r in rows[:10]:
        shutil.copy(IMAGES / r["filename"], imgs / r["filename"])
    shutil.copy(IMAGES / "raccoon-200.jpg", imgs / "unannotated.jpg")
    out = tmp_path / "o"
    r = invoke("cutout", "-q", "--images", imgs, "--boxes", ann, "--classes", "raccoon", "--out", out, "--seed", 1)
    assert r.exit_code == 0, r.output
    reasons = {x["file"]: x["reason"] for x in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    assert reasons["unannotated.jpg"] == "no annotation"
    assert sum(v == "no object of the chosen classes" for v in reasons.values()) == 5
    r = invoke("cutout", "-q", "--images", imgs, "--boxes", ann, "--mode", "crops", "--crop-size", 0.25,
               "--out", tmp_path / "crops", "--seed", 1)
    assert r.exit_code == 0 and all(x["crop"] for x in read_manifest(tmp_path / "crops"))
    r = invoke("cutout", "--images", imgs, "--out", tmp_path / "x")
    assert r.exit_code == 1 and "--boxes" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text("{\"images\": 3}")
    r = invoke("cutout", "--images", imgs, "--boxes", bad, "--out", tmp_path / "y")
    assert r.exit_code == 1 and "COCO JSON needs" in r.output and "Traceback" not in r.output


def test_sample_with_synthetic_cutouts_keeps_scenes_in_their_split(tmp_path):
    pos = tmp_path / "pos" / "raccoon"
    pos.mkdir(parents=True)
    for p in sorted(IMAGES.glob("*.jpg"))[:40]:
        shutil.copy(p, pos / p.name)
    out = tmp_path / "ds"
    r = invoke("sample", "-q", "--workers", "1", "-p", pos.parent, "-s", SHARED / "imagenet-500", "--ratio", 1,
               "--synthetic", 0.25, "--boxes", VOC, "--cutout-fill", "tile", "--seed", 2, "-o", out)
    assert r.exit_code == 0, r.output
    rows = read_manifest(out)
    syn = [x for x in rows if x["cutout"]]
    assert len(syn) == 10 and len([x for x in rows if x["role"] == "negative"]) == 40
    split_of = {x["file"]: x["split"] for x in rows if x["role"] == "positive"}
    assert all(x["split"] == split_of[x["file"]] and x["class"] == "other" for x in syn)
    assert all(x["cutout"]["fill"] == "tile" and x["cutout"]["boxes"] for x in syn)
    md = (out / "ATTRIBUTION.md").read_text()
    assert "40 positives and 10 cutouts made from them" in md and "regions filled (tile 10)" in md
    r = invoke("sample", "-q", "-p", pos.parent, "-s", SHARED / "imagenet-500", "--synthetic", 0.3, "-o", tmp_path / "z")
    assert r.exit_code == 1 and "--boxes" in r.output


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_annotation_parsers_fail_cleanly(tmp_path_factory, raw):
    d = tmp_path_factory.mktemp("fz")
    (d / "a.json").write_bytes(raw)
    (d / "a.csv").write_bytes(raw)
    (d / "voc").mkdir()
    (d / "voc" / "a.xml").write_bytes(raw)
    (d / "yolo").mkdir()
    (d / "yolo" / "a.txt").write_bytes(raw)
    for call in (lambda: parse_coco(d / "a.json"), lambda: parse_csv(d / "a.csv"), lambda: parse_voc(d / "voc"),
                 lambda: load_boxes(d / "yolo", "yolo", {"a.jpg": (100, 80)})):
        try:
            result = call()
            assert isinstance(result, dict)
        except NegmineError as exc:
            assert str(exc)
