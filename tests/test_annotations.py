"""Annotations read right in every format (issue 15): polygons and RLE as masks, explicit "no
objects", box validation, matching by relative path, EXIF frames, and the cutout coverage check.
Every test makes its own images; the shapes and values come from the field cases in
../shared/cases (01, 02, 03, 05, 07), checked by hand against their expected.md."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from conftest import read_manifest
from negmine.synthetic import cutout as cutout_mod
from negmine.synthetic.annotations import Box, match_images, parse_coco, parse_csv, parse_voc, parse_yolo
from negmine.cli import cli
from negmine.synthetic.cutout import CutoutOptions, cutout
from negmine.errors import NegmineError
from negmine.images import ImageRejected
from negmine.synthetic.objects import _point, resolve, shape_mask

QUAD = [(200, 60), (300, 90), (280, 200), (210, 180)]      # case 01's object, in a 320x240 image


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def scene(path: Path, size=(320, 240), polygon=None, rect=None, exif_orientation=None) -> Path:
    """A grey-green gradient with one pure red object (polygon or rectangle), PNG or JPEG by suffix."""
    w, h = size
    grad = np.zeros((h, w, 3), np.uint8)
    grad[..., 1] = np.linspace(60, 160, w, dtype=np.uint8)[None, :]
    grad[..., 2] = np.linspace(40, 120, h, dtype=np.uint8)[:, None]
    im = Image.fromarray(grad)
    d = ImageDraw.Draw(im)
    if polygon:
        d.polygon(polygon, fill=(255, 0, 0))
    if rect:
        d.rectangle(rect, fill=(255, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    kw = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif.tobytes()
    im.save(path, quality=98, **kw) if path.suffix == ".jpg" else im.save(path, **kw)
    return path


def red(path_or_array) -> int:
    a = np.asarray(Image.open(path_or_array).convert("RGB")) if isinstance(path_or_array, Path) else path_or_array
    a = a.astype(int)
    return int(((a[..., 0] > 180) & (a[..., 1] < 80) & (a[..., 2] < 80)).sum())


def rejects(out: Path) -> dict[str, str]:
    return {r["file"]: r["reason"] for r in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}


def red_left_inside_quad(path: Path) -> int:
    """Red pixels left whose centre lies inside QUAD's bounding box: PIL also paints the pixels
    whose corner touches a vertex (column 300, row 200), which are outside the annotated polygon."""
    a = np.asarray(Image.open(path).convert("RGB")).astype(int)
    left = (a[..., 0] > 180) & (a[..., 1] < 80) & (a[..., 2] < 80)
    return int(left[:200, :300].sum()), int(left.sum())


def yolo_seg_row(points, w, h, cls=0) -> str:
    return f"{cls} " + " ".join(f"{x / w:.6f} {y / h:.6f}" for x, y in points)


# -- 1. polygons and RLE as masks ------------------------------------------------------------------

def test_yolo_segmentation_rows_become_the_object(tmp_path):
    """Case 01: a polygon row read as `cx cy w h` left 6,854 of 9,793 object pixels in the negative."""
    img = scene(tmp_path / "images" / "scene.png", polygon=QUAD)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "scene.txt").write_text(yolo_seg_row(QUAD, 320, 240) + "\n")
    (tmp_path / "labels" / "classes.txt").write_text("apple\n")
    before = red(img)
    assert before > 9000
    out = tmp_path / "box"
    r = invoke("cutout", "-q", "--images", tmp_path / "images", "--boxes", tmp_path / "labels", "--fill", "black",
               "--image-format", "png", "--seed", 0, "--workers", 1, "--out", out)
    assert r.exit_code == 0, r.output
    (row,) = read_manifest(out)
    assert row["boxes"] == [[200.0, 60.0, 300.0, 200.0, "apple"]]       # the polygon's bounding box
    assert row["region_area"] == 100 * 140
    inside, total = red_left_inside_quad(out / row["path"])
    assert inside == 0 and total < 0.001 * before
    # --region mask: the silhouette only, so the background inside the box survives. The polygon is
    # drawn by pixel centres (COCO's rule) and PIL painted every pixel the outline touches: 1 px margin
    out = tmp_path / "mask"
    r = invoke("cutout", "-q", "--images", tmp_path / "images", "--boxes", tmp_path / "labels", "--fill", "black",
               "--region", "mask", "--margin", 1, "--image-format", "png", "--seed", 0, "--workers", 1, "--out", out)
    assert r.exit_code == 0, r.output
    (row,) = read_manifest(out)
    after = np.asarray(Image.open(out / row["path"]).convert("RGB"))
    assert red(after) == 0
    assert abs(row["region_area"] - before) < 0.1 * before < 0.5 * 100 * 140   # the silhouette, not the box
    assert (after[70, 290] != 0).any()                                     # inside the box, outside the object


def test_a_file_mixing_box_and_polygon_rows_is_an_error_naming_the_line(tmp_path):
    scene(tmp_path / "images" / "scene.png", polygon=QUAD)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "scene.txt").write_text("0 0.5 0.5 0.2 0.2\n\n" + yolo_seg_row(QUAD, 320, 240) + "\n")
    r = invoke("cutout", "--images", tmp_path / "images", "--boxes", tmp_path / "labels", "--out", tmp_path / "o")
    assert r.exit_code == 1 and "scene.txt:3" in r.output and "line 1" in r.output and "Traceback" not in r.output
    (tmp_path / "labels" / "scene.txt").write_text("0 0.1 0.1 0.2 0.1 0.3 0.3 0.4\n")     # odd coordinate count
    r = invoke("cutout", "--images", tmp_path / "images", "--boxes", tmp_path / "labels", "--out", tmp_path / "o")
    assert r.exit_code == 1 and "scene.txt:1" in r.output and "x,y pairs" in r.output


def _column_major_runs(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE, written out by hand: run lengths of 0s and 1s, column by column."""
    flat = mask.T.reshape(-1).astype(int)
    runs, cur, n = [], 0, 0
    for v in flat:
        if v == cur:
            n += 1
        else:
            runs.append(n)
            cur, n = v, 1
    return runs + [n]


def test_coco_polygons_and_rle_become_masks(tmp_path):
    h, w = 60, 80
    yy, xx = np.mgrid[:h, :w]
    disk = (xx - 50) ** 2 + (yy - 25) ** 2 <= 12 ** 2
    from pycocotools import mask as mask_utils

    compressed = mask_utils.encode(np.asfortranarray(disk.astype(np.uint8)))["counts"].decode()
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": w, "height": h},
                       {"id": 2, "file_name": "b.png", "width": w, "height": h},
                       {"id": 3, "file_name": "empty.png", "width": w, "height": h}],
            "annotations": [
                {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "iscrowd": 0,
                 "segmentation": [[10, 10, 30, 10, 10, 40]]},
                {"image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1], "iscrowd": 1,
                 "segmentation": {"size": [h, w], "counts": _column_major_runs(disk)}},
                {"image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1], "iscrowd": 1,
                 "segmentation": {"size": [h, w], "counts": compressed}}],
            "categories": [{"id": 1, "name": "thing"}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    ann = parse_coco(tmp_path / "c.json")
    assert ann["empty.png"] == []                                         # an image without annotations
    (tri,) = ann["a.png"]
    assert (tri.x0, tri.y0, tri.x1, tri.y1) == (10, 10, 30, 40)          # from the polygon, not the bbox field
    m = shape_mask(tri, w, h)
    centres_inside = (xx + 0.5 >= 10) & (yy + 0.5 >= 10) & ((xx + 0.5 - 10) / 20 + (yy + 0.5 - 10) / 30 <= 1)
    assert m[centres_inside].mean() > 0.97 and not m[~centres_inside & ~np.roll(centres_inside, 1, 1)].any()
    for rle in ann["b.png"]:
        assert (rle.x0, rle.y0, rle.x1, rle.y1) == (38, 13, 63, 38)
        assert (shape_mask(rle, w, h) == disk).all()
    # named by its COCO id, what a user searches the file for (not its position in the list)
    with pytest.raises(NegmineError, match="annotation id 6: RLE counts"):
        bad = dict(coco, annotations=[dict(coco["annotations"][1], id=6,
                                           segmentation={"size": [h, w], "counts": [3, 4]})])
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        parse_coco(tmp_path / "bad.json")


# -- 2. "no objects" is explicit -------------------------------------------------------------------

def test_empty_csv_row_means_no_objects(tmp_path):
    """Case 05: keras-retinanet's `img.jpg,,,,,` made the whole CSV fail."""
    for n in (1, 2):
        scene(tmp_path / "imgs" / f"img_00{n}.jpg", rect=(40 * n, 40, 40 * n + 60, 100))
    scene(tmp_path / "imgs" / "img_003.jpg")
    (tmp_path / "boxes.csv").write_text("img_001.jpg,40,40,100,100,apple\nimg_002.jpg,80,40,140,100,apple\n"
                                        "img_003.jpg,,,,,\n")
    assert parse_csv(tmp_path / "boxes.csv")["img_003.jpg"] == []
    out = tmp_path / "o"
    r = invoke("cutout", "-q", "--images", tmp_path / "imgs", "--boxes", tmp_path / "boxes.csv", "--fill", "black",
               "--seed", 0, "--workers", 1, "--out", out)
    assert r.exit_code == 0, r.output
    assert sorted(x["file"] for x in read_manifest(out)) == ["img_001.jpg", "img_002.jpg"]
    assert rejects(out) == {"img_003.jpg": "annotated with no object: nothing to remove"}
    (tmp_path / "half.csv").write_text("img_001.jpg,40,,100,100,apple\n")      # half empty: not the convention
    with pytest.raises(NegmineError, match="half.csv:1"):
        parse_csv(tmp_path / "half.csv")


def _voc(path: Path, filename: str, size, boxes, extra: str = "") -> None:
    objs = "".join(f"<object><name>apple</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
                   f"<ymax>{b[3]}</ymax></bndbox></object>" for b in boxes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><filename>{filename}</filename>{extra}<size><width>{size[0]}</width>"
                    f"<height>{size[1]}</height><depth>3</depth></size>{objs}</annotation>")


def _apples(tmp_path: Path, boxes: dict[str, list]) -> tuple[Path, Path]:
    """positives/apple/<name>.jpg (320x240, a red rectangle per box) and VOC XML for those with boxes
    (None: no XML at all)."""
    pos, ann = tmp_path / "apple" / "images", tmp_path / "apple" / "annotations"
    for name, bxs in boxes.items():
        rect = None
        if bxs and not any(isinstance(v, str) for v in bxs[0]):
            b = bxs[0]
            rect = (min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3]))
        scene(pos / f"{name}.jpg", rect=rect if rect and rect[2] > rect[0] else None)
        if bxs is not None:
            _voc(ann / f"{name}.xml", f"{name}.jpg", (320, 240), bxs)
    return pos, ann


def _labels(out: Path) -> dict[str, list[str]]:
    return {f.stem: f.read_text().splitlines() for f in out.glob("labels/*/*.txt")}


def test_yolo_det_never_writes_an_unannotated_positive_as_a_background(tmp_path, pool):
    """Case 02: apple-5.jpg had no annotation and was written with an empty label file."""
    pos, ann = _apples(tmp_path, {**{f"apple-{i}": [(100, 60, 200, 160)] for i in range(5)},
                                  "apple-5": None, "empty": []})
    args = ["sample", "-q", "-p", pos, "--boxes", ann, "--format", "yolo-det", "-s", pool, "--count", 1,
            "--split", "0.5,0.5", "--seed", 1, "--workers", 1]
    r = invoke(*args, "-o", tmp_path / "a")
    assert r.exit_code == 1 and "apple-5.jpg" in r.output and "--unannotated skip" in r.output
    assert not (tmp_path / "a").exists()
    out = tmp_path / "b"
    r = invoke(*args, "--unannotated", "skip", "-o", out)
    assert r.exit_code == 0, r.output
    files = {x["file"] for x in read_manifest(out)}
    assert "apple-5.jpg" not in files and "empty.jpg" in files
    assert rejects(out)["apple-5.jpg"].startswith("positive has no annotation")
    labels = _labels(out)
    assert labels["apple-empty"] == []                                    # annotated "nothing here": a background
    assert all(labels[f"apple-apple-{i}"] for i in range(5))
    # the background share counts the empty positive and the pool image: 2 of 7
    assert "29% of the images are backgrounds" in invoke(*args, "--unannotated", "skip", "-o", tmp_path / "c").output


def test_yolo_det_labels_are_valid_boxes(tmp_path, pool):
    """Case 07: a reversed box gave a negative width, a zero-width box a zero width."""
    pos, ann = _apples(tmp_path, {"a0": [(10.5, 20.25, 125.0, 138.7)], "a1": [(-3, -3, 323, 243)],
                                  "a2": [(250, 190, 350, 260)], "a3": [(10, 10, 10, 90)],
                                  "a4": [(100, 50, 60, 120)], "a5": [(400, 300, 450, 350)],
                                  "a6": [("nan", 10, 50, 60)]})
    out = tmp_path / "o"
    r = invoke("sample", "-q", "-p", pos, "--boxes", ann, "--format", "yolo-det", "-s", pool, "--count", 1,
               "--split", "0.6,0.4", "--seed", 2, "--workers", 1, "-o", out)
    assert r.exit_code == 0, r.output
    labels = _labels(out)
    for name, lines in labels.items():
        for line in lines:
            v = [float(t) for t in line.split()[1:]]
            assert all(0 <= t <= 1 for t in v) and v[2] > 0 and v[3] > 0, (name, line)
    assert labels["apple-a4"] == [f"0 {80 / 320:.6f} {85 / 240:.6f} {40 / 320:.6f} {70 / 240:.6f}"]  # x 60-100
    assert labels["apple-a1"] == ["0 0.500000 0.500000 1.000000 1.000000"]
    assert labels["apple-a2"] == [f"0 {285 / 320:.6f} {215 / 240:.6f} {70 / 320:.6f} {50 / 240:.6f}"]
    reasons = rejects(out)
    assert "zero width" in reasons["a3.jpg"] and "outside the 320x240 image" in reasons["a5.jpg"]
    assert "not a finite number" in reasons["a6.jpg"]
    assert {"apple-a3", "apple-a5", "apple-a6"}.isdisjoint(labels)         # left out, never backgrounds


def test_resolve_rules():
    assert resolve([Box(50, 40, 10, 20)], (100, 80)) == [Box(10, 20, 50, 40, frame=(100, 80))]
    with pytest.raises(ImageRejected, match="zero height"):
        resolve([Box(10, 20, 50, 20)], (100, 80))
    with pytest.raises(ImageRejected, match="under 1 pixel"):
        resolve([Box(99.5, 10, 120, 20)], (100, 80))
    with pytest.raises(ImageRejected, match="box 2 \\(cat\\) lies outside"):
        resolve([Box(1, 1, 5, 5), Box(-20, 10, -5, 20, "cat")], (100, 80))


# -- 4. matching by relative path ------------------------------------------------------------------

def test_matching_follows_the_folders_and_refuses_to_guess():
    imgs = ["dogs/1.jpg", "not_dogs/1.jpg", "cats/2.jpg", "train/x/3.png"]
    b = [Box(0, 0, 1, 1)]
    assert match_images({"dogs/1": b}, imgs) == {"dogs/1.jpg": b}
    assert match_images({"dogs/1": b}, ["not_dogs/1.jpg"]) == {}          # never by stem across folders
    assert match_images({"2.jpg": b, "labels/train/x/3": b}, imgs) == {"cats/2.jpg": b, "train/x/3.png": b}
    assert match_images({"/home/me/data/cats/2.jpg": b}, imgs) == {"cats/2.jpg": b}      # VOC <path>
    assert match_images({"x/3.jpg": b}, imgs) == {"train/x/3.png": b}      # re-encoded: same stem
    with pytest.raises(NegmineError, match="fits 2 images"):
        match_images({"1.jpg": b}, imgs)
    assert match_images({("1.jpg", "not_dogs/1"): b}, imgs) == {"not_dogs/1.jpg": b}    # next name decides


def test_label_tree_mirrors_image_tree(tmp_path):
    """Labels paired by stem across folders: labels/dogs/1.txt was applied to images/not_dogs/1.jpg."""
    scene(tmp_path / "images" / "dogs" / "1.jpg", rect=(20, 20, 120, 120))
    scene(tmp_path / "images" / "not_dogs" / "1.jpg")
    (tmp_path / "labels" / "dogs").mkdir(parents=True)
    (tmp_path / "labels" / "dogs" / "1.txt").write_text("0 0.2197 0.2917 0.3156 0.4208\n")
    out = tmp_path / "o"
    r = invoke("cutout", "-q", "--images", tmp_path / "images", "--boxes", tmp_path / "labels", "--seed", 0,
               "--workers", 1, "--out", out)
    assert r.exit_code == 0, r.output
    assert [x["file"] for x in read_manifest(out)] == ["dogs/1.jpg"]
    assert rejects(out) == {"not_dogs/1.jpg": "no annotation"}


def test_voc_filename_without_extension_and_nothing_matched(tmp_path):
    """Case 03: ImageNet's XML says <filename>n07805966_18</filename> for n07805966_18.JPEG."""
    for n in (18, 19):
        scene(tmp_path / "images" / f"n07805966_{n}.JPEG".replace(".JPEG", ".jpg"), rect=(20, 30, 100, 130))
        (tmp_path / "images" / f"n07805966_{n}.jpg").rename(tmp_path / "images" / f"n07805966_{n}.JPEG")
        _voc(tmp_path / "ann" / f"n07805966_{n}.xml", f"n07805966_{n}", (320, 240), [(20, 30, 100, 130)])
    out = tmp_path / "o"
    r = invoke("cutout", "-q", "--images", tmp_path / "images", "--boxes", tmp_path / "ann", "--fill", "black",
               "--workers", 1, "--seed", 0, "--out", out)
    assert r.exit_code == 0, r.output
    assert sorted(x["file"] for x in read_manifest(out)) == ["n07805966_18.JPEG", "n07805966_19.JPEG"]
    # an XML whose <filename> names another image, and whose own name matches nothing: loud, not "wrote 0"
    shutil.rmtree(tmp_path / "ann")
    _voc(tmp_path / "ann" / "zzz.xml", "elsewhere.jpg", (320, 240), [(20, 30, 100, 130)])
    r = invoke("cutout", "--images", tmp_path / "images", "--boxes", tmp_path / "ann", "--out", tmp_path / "p")
    assert r.exit_code == 1 and "none of its 1 annotated images" in r.output


# -- 5. EXIF frames ---------------------------------------------------------------------------------

@pytest.mark.parametrize("orientation", range(1, 9))
def test_point_mapping_agrees_with_exif_transpose(orientation):
    from PIL import ImageOps

    w, h = 7, 5
    a = np.zeros((h, w), np.uint8)
    a[1, 4] = 255                                          # the pixel whose centre is (4.5, 1.5)
    im = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    im.getexif()[0x0112] = orientation
    up = np.asarray(ImageOps.exif_transpose(im))
    x, y = _point(4.5, 1.5, orientation, w, h)
    assert up[int(y), int(x)] == 255


@pytest.mark.parametrize("declared", ["stored", "upright", "wrong"])
def test_boxes_drawn_on_the_stored_pixels_of_a_rotated_photo(tmp_path, declared):
    """A phone photo stored 320x240 with orientation 6 shows upright as 240x320. The object sits at
    x 200-300, y 20-80 of the stored pixels, i.e. x 160-220, y 200-300 upright."""
    scene(tmp_path / "images" / "phone.jpg", rect=(200, 20, 299, 79), exif_orientation=6)
    size, box = {"stored": ((320, 240), (200, 20, 300, 80)), "upright": ((240, 320), (160, 200, 220, 300)),
                 "wrong": ((640, 480), (200, 20, 300, 80))}[declared]
    _voc(tmp_path / "ann" / "phone.xml", "phone.jpg", size, [box])
    out = tmp_path / "o"
    r = invoke("cutout", "-q", "--images", tmp_path / "images", "--boxes", tmp_path / "ann", "--fill", "black",
               "--image-format", "png", "--workers", 1, "--seed", 0, "--out", out)
    assert r.exit_code == 0, r.output
    if declared == "wrong":
        assert "640x480 image, but the image is 320x240 (240x320 upright)" in rejects(out)["phone.jpg"]
        return
    (row,) = read_manifest(out)
    assert row["boxes"][0][:4] == [160.0, 200.0, 220.0, 300.0] and (row["width"], row["height"]) == (240, 320)
    assert red(out / row["path"]) == 0


# -- 6. every cutout covers every object ------------------------------------------------------------

def test_a_region_that_misses_object_pixels_is_refused(tmp_path, monkeypatch):
    img = scene(tmp_path / "s.png", polygon=QUAD)
    poly = Box(200, 60, 300, 200, "apple", ("poly", (tuple(v for p in QUAD for v in p),)))
    opts = CutoutOptions(fills=("black",), margin="4", image_format="png")
    ok = cutout(img.read_bytes(), [poly], opts, 0)
    assert ok.region_area == 108 * 148                                    # the box grown by 4 px each side
    real = cutout_mod.object_region

    def shrunk(*args, **kw):                                             # a region one margin too small
        found = real(*args, **kw)
        found.mask[:, 300:] = False
        return found

    monkeypatch.setattr(cutout_mod, "object_region", shrunk)
    with pytest.raises(ImageRejected, match="misses .* object pixels"):
        cutout(img.read_bytes(), [poly], opts, 0)


# -- 8. fuzzing the parsers with the new shapes ------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

coord = st.floats(0, 1, allow_nan=False, width=32)
det_row = st.tuples(st.integers(0, 3), coord, coord, coord, coord).map(lambda t: " ".join(map(str, t)))
seg_row = st.tuples(st.integers(0, 3), st.lists(st.tuples(coord, coord), min_size=3, max_size=8)).map(
    lambda t: f"{t[0]} " + " ".join(f"{x} {y}" for x, y in t[1]))


@settings(max_examples=120, deadline=None)
@given(st.lists(det_row | seg_row | st.just("") | st.just("   "), max_size=8))
def test_yolo_rows_fuzz(tmp_path_factory, rows):
    d = tmp_path_factory.mktemp("y")
    (d / "a.txt").write_text("\n".join(rows) + "\n")
    kinds = [("seg" if len(r.split()) > 5 else "det") for r in rows if r.strip()]
    try:
        out = parse_yolo(d, {"a.jpg": (200, 100)})
    except NegmineError as exc:
        assert len(set(kinds)) == 2 and "a.txt:" in str(exc)              # only a mixed file is refused
        return
    assert len(set(kinds)) < 2
    boxes = out["a.jpg"]                                                  # present even when empty
    assert len(boxes) == len(kinds)
    for b, row in zip(boxes, (r for r in rows if r.strip())):
        if b.shape:
            pts = np.array([float(v) for v in row.split()[1:]]).reshape(-1, 2) * [200, 100]
            assert np.allclose([b.x0, b.y0, b.x1, b.y1], [*pts.min(0), *pts.max(0)])


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a.jpg", "b.jpg"]),
                          st.none() | st.tuples(*[st.integers(-5, 50)] * 4)), max_size=8))
def test_csv_rows_fuzz(tmp_path_factory, rows):
    d = tmp_path_factory.mktemp("c")
    (d / "a.csv").write_text("".join(f"{n},,,,,\n" if b is None else f"{n},{','.join(map(str, b))},x\n"
                                     for n, b in rows))
    out = parse_csv(d / "a.csv")
    assert set(out) == {n for n, _ in rows}
    for name in out:
        assert len(out[name]) == sum(1 for n, b in rows if n == name and b is not None)


# -- 7. data.yaml from any working directory ---------------------------------------------------------

def _ultralytics_root(data: dict, yaml_file: str, datasets_dir: Path, recent: bool) -> Path:
    """Ultralytics' check_det_dataset: `path = Path(data.get("path") or Path(yaml_file).parent)`, then
    a relative one is joined to DATASETS_DIR: always in releases up to 8.3.x, only when it does not
    exist from the current directory (`not path.exists() and not path.is_absolute()`) in recent ones."""
    path = Path(data.get("path") or Path(yaml_file).parent)
    if not path.is_absolute() and (not path.exists() if recent else True):
        path = (datasets_dir / path).resolve()
    return path


def test_data_yaml_resolves_from_any_directory(tmp_path, pool, monkeypatch):
    """README: `YOLO("yolo11n.pt").train(data="out/data.yaml")` from the folder holding out/."""
    import yaml

    # distinct pictures (identical ones would be kept in one split together), exact-duplicate check only
    pos, ann = _apples(tmp_path, {f"a{i}": [(20 + 60 * i, 60, 60 + 60 * i, 160)] for i in range(4)})
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    r = invoke("sample", "-q", "-p", pos, "--boxes", ann, "--format", "yolo-det", "-s", pool, "--count", 1,
               "--split", "0.5,0.5", "--seed", 1, "--workers", 1, "--hash", "none", "-o", "out")
    assert r.exit_code == 0, r.output
    data = yaml.safe_load((work / "out" / "data.yaml").read_text())
    for cwd, yaml_file in ((work, "out/data.yaml"), (work / "out", "data.yaml"), (tmp_path, "work/out/data.yaml")):
        monkeypatch.chdir(cwd)
        for recent in (False, True):
            root = _ultralytics_root(data, yaml_file, tmp_path / "datasets", recent)
            for split in ("train", "val"):
                assert any((root / data[split]).glob("*.jpg")), (cwd, recent, split)


def test_coco_file_names_with_folders_and_rotated_positives_in_yolo_det(tmp_path, pool):
    b = [Box(1, 1, 5, 5)]
    coco = {"train/a.jpg": b, "val/a.jpg": b}
    assert match_images(coco, ["train/a.jpg", "val/a.jpg"]) == {"train/a.jpg": b, "val/a.jpg": b}
    # a phone photo annotated on its stored pixels: the label is in the upright frame trainers load
    pos = tmp_path / "phones" / "images"
    scene(pos / "phone.jpg", rect=(200, 20, 299, 79), exif_orientation=6)
    scene(pos / "plain.jpg", rect=(10, 10, 50, 50))
    _voc(tmp_path / "phones" / "ann" / "phone.xml", "phone.jpg", (320, 240), [(200, 20, 300, 80)])
    _voc(tmp_path / "phones" / "ann" / "plain.xml", "plain.jpg", (320, 240), [(10, 10, 50, 50)])
    out = tmp_path / "o"
    r = invoke("sample", "-q", "-p", pos, "--boxes", tmp_path / "phones" / "ann", "--format", "yolo-det", "-s", pool,
               "--count", 1, "--split", "0.5,0.5", "--seed", 1, "--workers", 1, "-o", out)
    assert r.exit_code == 0, r.output
    row = next(x for x in read_manifest(out) if x["file"] == "phone.jpg")
    assert (row["width"], row["height"]) == (240, 320)
    assert _labels(out)[Path(row["path"]).stem] == ["0 0.791667 0.781250 0.250000 0.312500"]   # x 160-220, y 200-300


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-5, 50) | st.floats(allow_nan=True) | st.text(max_size=6),
                    lambda kids: st.lists(kids, max_size=8) | st.dictionaries(st.sampled_from(["size", "counts"]), kids,
                                                                             max_size=2), max_leaves=20))
def test_coco_segmentation_fuzz(tmp_path_factory, seg):
    d = tmp_path_factory.mktemp("s")
    (d / "c.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30}],
                                          "annotations": [{"image_id": 1, "bbox": [1, 2, 3, 4], "segmentation": seg}]}))
    try:
        (box,) = parse_coco(d / "c.json")["a.jpg"]
    except NegmineError as exc:
        assert str(exc).startswith(str(d / "c.json"))
        return
    if box.shape:
        m = shape_mask(box, 40, 30) if box.shape[0] == "rle" else None
        assert m is None or m.shape == (30, 40)


def test_synthetic_share_skips_bad_boxes_with_a_reason(tmp_path, pool):
    pos, ann = _apples(tmp_path, {**{f"a{i}": [(100, 60, 200, 160)] for i in range(3)}, "bad": [(10, 10, 10, 90)]})
    out = tmp_path / "o"
    r = invoke("sample", "-q", "-p", pos, "--boxes", ann, "--synthetic", 1, "--count", 4, "-s", pool,
               "--cutout-fill", "black", "--split", "0.5,0.5", "--seed", 1, "--workers", 1, "--allow-short", "-o", out)
    assert r.exit_code == 0, r.output
    rows = read_manifest(out)
    assert sorted(x["file"] for x in rows if x["cutout"]) == ["a0.jpg", "a1.jpg", "a2.jpg"]
    assert all(x["cutout"]["region_area"] == 100 * 100 for x in rows if x["cutout"])
    assert "bad.jpg" in {x["file"] for x in rows if x["role"] == "positive"}      # still a positive
    bad = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines() if "bad.jpg" in x]
    assert bad and bad[0]["role"] == "synthetic" and "zero width" in bad[0]["reason"]


def test_yolo_folder_reads_only_the_label_files_of_the_images(tmp_path):
    """Ultralytics dataset roots hold train.txt (a list of image paths) beside labels/."""
    root = tmp_path / "dataset"
    scene(root / "images" / "train" / "x.jpg", rect=(20, 20, 120, 120))
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "x.txt").write_text("0 0.2197 0.2917 0.3156 0.4208\n")
    (root / "train.txt").write_text("./images/train/x.jpg\n")
    out = tmp_path / "o"                          # beside the dataset: never inside an input
    r = invoke("cutout", "-q", "--images", root / "images", "--boxes", root, "--box-format", "yolo",
               "--seed", 0, "--workers", 1, "--out", out)
    assert r.exit_code == 0, r.output
    assert [x["file"] for x in read_manifest(out)] == ["train/x.jpg"]


def test_mask_pngs_follow_the_folders_too(tmp_path):
    scene(tmp_path / "images" / "dogs" / "1.png", rect=(20, 20, 119, 119))
    scene(tmp_path / "images" / "not_dogs" / "1.png")
    (tmp_path / "masks" / "dogs").mkdir(parents=True)
    m = np.zeros((240, 320), np.uint8)
    m[20:120, 20:120] = 255
    Image.fromarray(m).save(tmp_path / "masks" / "dogs" / "1.png")
    out = tmp_path / "o"
    r = invoke("cutout", "-q", "--images", tmp_path / "images", "--masks", tmp_path / "masks", "--fill", "black",
               "--image-format", "png", "--seed", 0, "--workers", 1, "--out", out)
    assert r.exit_code == 0, r.output
    (row,) = read_manifest(out)
    assert row["file"] == "dogs/1.png" and row["region_area"] == 100 * 100 and red(out / row["path"]) == 0
    assert rejects(out) == {"not_dogs/1.png": "no annotation"}


def test_a_yolo_class_id_that_classes_txt_does_not_name_is_an_error_naming_the_line(tmp_path):
    from negmine.synthetic.annotations import parse_yolo
    from negmine.errors import NegmineError

    (tmp_path / "classes.txt").write_text("raccoon\n")
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.1 0.1\n")
    with pytest.raises(NegmineError, match=r"a\.txt:2: class '3' is not one of the 1 classes of classes\.txt"):
        parse_yolo(tmp_path)
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    assert [b.label for b in parse_yolo(tmp_path)["a"]] == ["raccoon"]
