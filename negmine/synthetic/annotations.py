"""Object annotations: COCO JSON, Pascal VOC XML, YOLO txt (boxes or segmentation polygons), CSV.

Every parser returns {annotation key: [Box, ...]}. A key that is present with an empty list means
"annotated, no object there" (an empty CSV row `img.jpg,,,,,`, an empty YOLO `.txt`, a COCO image
without annotations, a VOC file without `<object>`); an image whose key is absent is unannotated.
Keys are the names the format gives (COCO `file_name`, VOC `<filename>`, the label file's path
relative to the label folder, ...), or a tuple of such names tried in order; `match_images` pairs
them with the image files. Parsing errors are NegmineError with `file:line` (or the annotation's
index) and the problem. Coordinates are kept as given, NaN included: boxes are validated per image
by `negmine.synthetic.objects.resolve` once the image's size and EXIF orientation are known, so one bad box
costs its image (with a reason in rejects.jsonl), never the run.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

from negmine.errors import NegmineError
from negmine.synthetic.masks import rle_box

FORMATS = ("auto", "coco", "voc", "yolo", "csv")
# Extensions that make an annotation's name a file name rather than a stem (ImageNet's VOC XML
# gives `n07805966_18` for `n07805966_18.JPEG`).
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


@dataclass(frozen=True)
class Box:
    """One annotated object. Corners in pixels of the frame the annotation was drawn on (or in
    0..1 of the image when `normalized`, as YOLO writes them); corners may come reversed.

    shape: None (the box is the object), ("poly", ((x, y, x, y, ...), ...)) polygons in the same
    units as the corners, or ("rle", height, width, counts, orientation) a COCO run-length mask
    (counts: the compressed string or the list of runs) with the EXIF orientation to apply after
    decoding. frame: the (width, height) the annotation declares for its image (VOC `<size>`,
    COCO `width`/`height`), None when the format does not say.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    label: str | None = None
    shape: tuple | None = None
    frame: tuple[int, int] | None = None
    normalized: bool = False

    def clip(self, w: int, h: int) -> "Box | None":
        """Corners ordered and clipped to a w x h image; None when under one pixel is left."""
        x0, y0 = max(0.0, min(self.x0, self.x1)), max(0.0, min(self.y0, self.y1))
        x1, y1 = min(float(w), max(self.x0, self.x1)), min(float(h), max(self.y0, self.y1))
        return replace(self, x0=x0, y0=y0, x1=x1, y1=y1) if x1 - x0 >= 1 and y1 - y0 >= 1 else None

    def as_list(self) -> list:
        return [round(self.x0, 2), round(self.y0, 2), round(self.x1, 2), round(self.y1, 2), self.label]


def _num(value, where: str) -> float:
    """A coordinate. Non-numbers are a parse error; NaN and infinities pass, to be rejected per image."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise NegmineError(f"{where}: {value!r} is not a number") from None


def _poly_box(polys: list[list[float]], label, frame=None, normalized=False) -> Box:
    xs = [v for p in polys for v in p[0::2]]
    ys = [v for p in polys for v in p[1::2]]
    return Box(min(xs), min(ys), max(xs), max(ys), label,
               ("poly", tuple(tuple(p) for p in polys)), frame, normalized)


def _declared(w, h) -> tuple[int, int] | None:
    """A declared image size, or None when absent or 0 (LabelImg and some exporters write 0)."""
    try:
        w, h = int(float(w)), int(float(h))
    except (TypeError, ValueError):
        return None
    return (w, h) if w > 0 and h > 0 else None


def _coco_segmentation(seg, where: str, label, frame) -> Box | None:
    """COCO polygons ([[x, y, ...], ...]) or RLE ({"size": [h, w], "counts": str | [runs]})."""
    if isinstance(seg, list) and seg:
        polys = [[_num(v, where) for v in p] for p in seg if isinstance(p, list)]
        if len(polys) != len(seg) or any(len(p) < 6 or len(p) % 2 for p in polys):
            raise NegmineError(f"{where}: a segmentation polygon needs 3 or more x,y pairs")
        return _poly_box(polys, label, frame)
    if isinstance(seg, dict):
        size, counts = seg.get("size"), seg.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)) \
                or not isinstance(counts, (str, list)):
            raise NegmineError(f"{where}: RLE segmentation needs 'size': [height, width] and 'counts'")
        h, w = size
        if isinstance(counts, list):
            if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != h * w:
                raise NegmineError(f"{where}: RLE counts must be runs adding up to height x width ({h * w})")
            counts = tuple(counts)
        x0, y0, x1, y1 = rle_box(h, w, counts, where)
        return Box(x0, y0, x1, y1, label, ("rle", h, w, counts, 1), frame or (w, h))
    return None


def parse_coco(path: Path) -> dict[str, list[Box]]:
    """COCO detection/instance JSON. `segmentation` (polygons or RLE) is the object when present,
    its bounding box derived from it; else `bbox` [x, y, width, height]."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise NegmineError(f"{path}: not a readable COCO JSON file ({exc})".splitlines()[0]) from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations", []), list):
        raise NegmineError(f"{path}: COCO JSON needs 'images' and 'annotations' lists")
    cats = {c.get("id"): str(c.get("name")) for c in data.get("categories", []) if isinstance(c, dict)}
    files, frames, out = {}, {}, {}
    for im in data["images"]:
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise NegmineError(f"{path}: every image needs an 'id' and a 'file_name'")
        files[im["id"]] = im["file_name"]
        frames[im["id"]] = _declared(im.get("width"), im.get("height"))
        out.setdefault(im["file_name"], [])
    for k, ann in enumerate(data.get("annotations", [])):
        # the annotation's own id where it has one (what the user searches the file for), else its position
        where = (f"{path}: annotation id {ann['id']}" if isinstance(ann, dict) and "id" in ann
                 else f"{path}: annotation #{k + 1} (no id)")
        if not isinstance(ann, dict) or ann.get("image_id") not in files:
            raise NegmineError(f"{where}: missing or unknown image_id")
        label, frame = cats.get(ann.get("category_id")), frames[ann["image_id"]]
        box = _coco_segmentation(ann.get("segmentation"), where, label, frame)
        if box is None:
            bbox = ann.get("bbox")
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise NegmineError(f"{where}: bbox must be [x, y, width, height]")
            x, y, w, h = (_num(v, where) for v in bbox)
            box = Box(x, y, x + w, y + h, label, None, frame)
        out[files[ann["image_id"]]].append(box)
    return out


def parse_voc(folder: Path) -> dict[tuple[str, ...], list[Box]]:
    """Pascal VOC XML files under folder. Each file's key lists the names tried in order:
    `<filename>` (with or without extension: ImageNet's boxes have none), the tail of `<path>`,
    and the XML file's own path without `.xml` (torchvision's VOCDetection pairing)."""
    folder = Path(folder)
    out: dict[tuple[str, ...], list[Box]] = {}
    for xml in sorted(folder.rglob("*.xml")):
        try:
            root = ET.parse(xml).getroot()
        except (ET.ParseError, OSError) as exc:
            raise NegmineError(f"{xml}: not a readable VOC XML file ({exc})") from None
        names = [(root.findtext("filename") or "").strip(), (root.findtext("path") or "").strip().replace("\\", "/"),
                 xml.relative_to(folder).with_suffix("").as_posix()]
        key = tuple(dict.fromkeys(n for n in names if n))
        frame = _declared(root.findtext("size/width"), root.findtext("size/height"))
        boxes = out.setdefault(key, [])
        for obj in root.iter("object"):
            bb = obj.find("bndbox")
            if bb is None:
                raise NegmineError(f"{xml}: an <object> without <bndbox>")
            vals = [_num(bb.findtext(t), f"{xml} <{t}>") for t in ("xmin", "ymin", "xmax", "ymax")]
            boxes.append(Box(*vals, (obj.findtext("name") or "").strip() or None, None, frame))
    return out


def _class_names(folder: Path) -> list[str]:
    for meta in ("classes.txt", "obj.names"):
        if (folder / meta).is_file():
            return [x.strip() for x in (folder / meta).read_text(encoding="utf-8").splitlines() if x.strip()]
    return []


def parse_yolo(folder: Path, image_sizes: dict[str, tuple[int, int]] | None = None,
               image_keys: list[str] | None = None) -> dict[str, list[Box]]:
    """One `.txt` per image, mirroring the image tree: `class cx cy w h` rows (detection) or
    `class x1 y1 ... xn yn` rows (segmentation polygons, n >= 3), all in 0..1 of the image.

    Rows with more than 6 values are polygons, the rule of Ultralytics' `verify_image_label`; a
    file mixing both kinds is an error naming `file:line` (Ultralytics PR #25657). Keys are the
    label file's path relative to folder without `.txt`; boxes stay normalised. With image_keys,
    only the files that name one of those images are read (a dataset root also holds Ultralytics'
    train.txt image lists, a README.txt, ...). With image_sizes ({image key: (width, height)},
    upright), keys are matched to those images and scaled."""
    folder = Path(folder)
    names = _class_names(folder)
    if image_keys is None and image_sizes is not None:
        image_keys = list(image_sizes)
    index = _Index(image_keys) if image_keys is not None else None
    out: dict[str, list[Box]] = {}
    for txt in sorted(folder.rglob("*.txt")):
        key = txt.relative_to(folder).with_suffix("").as_posix()
        if txt.name in ("classes.txt", "obj.names") or (index is not None and not index.find(key)):
            continue
        boxes = out.setdefault(key, [])
        kinds: dict[str, int] = {}
        for n, line in enumerate(txt.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            where = f"{txt}:{n}"
            c, vals = parts[0], [_num(v, where) for v in parts[1:]]
            if names and not (c.isascii() and c.isdigit() and int(c) < len(names)):
                # an id classes.txt does not name would become a class of its own, silently
                raise NegmineError(f"{where}: class {c!r} is not one of the {len(names)} classes of "
                                   f"{'classes.txt' if (folder / 'classes.txt').is_file() else 'obj.names'} (ids 0-{len(names) - 1})")
            label = names[int(c)] if names else c
            kind = "polygon" if len(vals) > 5 else "box"
            other = next((k for k in kinds if k != kind), None)
            if other:
                raise NegmineError(f"{where}: {kind} row in a file whose line {kinds[other]} is a {other} row; "
                                   "a YOLO label file holds either boxes (class cx cy w h) or polygons "
                                   "(class x1 y1 ... xn yn), not both")
            kinds.setdefault(kind, n)
            if kind == "box":
                if len(vals) != 4:
                    raise NegmineError(f"{where}: expected 'class cx cy w h' or 'class x1 y1 ... xn yn', got {line!r}")
                cx, cy, bw, bh = vals
                boxes.append(Box(cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, label, normalized=True))
            else:
                if len(vals) % 2:
                    raise NegmineError(f"{where}: a polygon row needs x,y pairs, got {len(vals)} numbers")
                boxes.append(_poly_box([vals], label, normalized=True))
    if image_sizes is None:
        return out
    matched = match_images(out, list(image_sizes))
    return {k: [scale(b, *image_sizes[k]) for b in v] for k, v in matched.items()}


def scale(box: Box, w: int, h: int) -> Box:
    """A normalised (YOLO) box and its polygons in pixels of a w x h image; others unchanged."""
    if not box.normalized:
        return box
    shape = box.shape
    if shape and shape[0] == "poly":
        shape = ("poly", tuple(tuple(v * (w if i % 2 == 0 else h) for i, v in enumerate(p)) for p in shape[1]))
    return replace(box, x0=box.x0 * w, y0=box.y0 * h, x1=box.x1 * w, y1=box.y1 * h, shape=shape,
                   frame=None, normalized=False)


def parse_csv(path: Path) -> dict[str, list[Box]]:
    """`filename,xmin,ymin,xmax,ymax[,class]`, or any column order under a header with those names.
    A row whose coordinates and class are all empty (`img.jpg,,,,,`, keras-retinanet's form) says
    the image has no objects."""
    try:
        rows = list(csv.reader(Path(path).read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NegmineError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows:
        return {}
    header = [h.strip().lower() for h in rows[0]]
    if {"filename", "xmin", "ymin", "xmax", "ymax"} <= set(header):
        col = {h: i for i, h in enumerate(header)}
        order = [col["filename"], col["xmin"], col["ymin"], col["xmax"], col["ymax"], col.get("class", col.get("label"))]
        rows = rows[1:]
    else:
        order = [0, 1, 2, 3, 4, 5]
    out: dict[str, list[Box]] = {}
    for n, row in enumerate(rows, 2 if order != [0, 1, 2, 3, 4, 5] else 1):
        if not row or not "".join(row).strip():
            continue
        fields = [row[i] if i is not None and i < len(row) else None for i in order]
        if not (fields[0] or "").strip():
            raise NegmineError(f"{path}:{n}: expected filename,xmin,ymin,xmax,ymax[,class]")
        rest = [(f or "").strip() for f in fields[1:]]
        if not any(rest):
            out.setdefault(fields[0].strip(), [])
            continue
        if len(row) < 5:
            raise NegmineError(f"{path}:{n}: expected filename,xmin,ymin,xmax,ymax[,class]")
        vals = [_num(v, f"{path}:{n}") for v in fields[1:5]]
        out.setdefault(fields[0].strip(), []).append(Box(*vals, rest[4] or None))
    return out


def detect_format(path: Path) -> str:
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() == ".json":
            return "coco"
        if path.suffix.lower() in (".csv", ".tsv"):
            return "csv"
        raise NegmineError(f"--boxes {path}: a file must be COCO .json or .csv")
    if path.is_dir():
        if any(path.rglob("*.xml")):
            return "voc"
        if any(path.rglob("*.txt")):
            return "yolo"
        raise NegmineError(f"--boxes {path}: no .xml (VOC) or .txt (YOLO) annotations in this folder")
    raise NegmineError(f"--boxes {path} does not exist")


def load_boxes(path: Path, fmt: str = "auto", image_sizes: dict[str, tuple[int, int]] | None = None,
               image_keys: list[str] | None = None) -> dict:
    """Parse an annotation file or folder; see the module docstring for the keys and values.
    image_sizes, image_keys: see `parse_yolo` (other formats are small enough to read whole)."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "coco":
        return parse_coco(path)
    if fmt == "voc":
        return parse_voc(path)
    if fmt == "csv":
        return parse_csv(path)
    if fmt == "yolo":
        return parse_yolo(path, image_sizes, image_keys)
    raise NegmineError(f"unknown annotation format {fmt!r}; choose from {', '.join(FORMATS)}")


def _norm(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


class _Index:
    """Image keys by full relative path and by relative path without extension, with every
    trailing run of folders, so a name is found when either path ends with the other."""

    def __init__(self, image_keys: list[str]):
        self.exact: tuple[dict, dict] = ({}, {})
        self.tails: tuple[dict, dict] = ({}, {})
        for k in image_keys:
            for i, form in enumerate((k, str(Path(k).with_suffix("").as_posix()))):
                self.exact[i][form] = k
                parts = form.split("/")
                for j in range(1, len(parts)):
                    self.tails[i].setdefault("/".join(parts[j:]), []).append(k)

    def find(self, name: str) -> list[str]:
        """The images this annotation name points at: [] none, [k] one, more: ambiguous."""
        name = _norm(name)
        if not name:
            return []
        if Path(name).suffix.lower() in IMAGE_SUFFIXES:
            # same file name first; then the stem, for re-encoded images (x.jpg for x.png, x.JPG)
            return self._find(name, 0) or self._find(str(Path(name).with_suffix("").as_posix()), 1)
        return self._find(name, 1)

    def _find(self, name: str, i: int) -> list[str]:
        if name in self.exact[i]:
            return [self.exact[i][name]]
        longer = self.tails[i].get(name, [])
        if longer:                           # the annotation names fewer folders than the image path has
            return sorted(set(longer))
        parts = name.split("/")              # the annotation names more folders (an absolute <path>, ...)
        for j in range(1, len(parts)):
            hit = self.exact[i].get("/".join(parts[j:]))
            if hit:
                return [hit]
        return []


def match_images(boxes: dict, image_keys: list[str]) -> dict[str, list[Box]]:
    """Annotation keys -> image keys (paths relative to the images folder).

    A name matches an image when one relative path ends with the other, folder by folder
    (`dogs/1` matches `dogs/1.jpg` and `train/dogs/1.jpg`, never `not_dogs/1.jpg`); a name without
    an image extension is compared with the image paths without theirs. A tuple key's names are
    tried in order. A name that fits several images equally well is an error, never a guess.
    Unmatched annotations are left out; images without a match are absent from the result."""
    index = _Index(image_keys)
    out: dict[str, list[Box]] = {}
    for key, bxs in boxes.items():
        names = key if isinstance(key, tuple) else (key,)
        ambiguous = None
        for name in names:
            hits = index.find(name)
            if len(hits) == 1:
                out.setdefault(hits[0], []).extend(bxs)
                break
            if hits and ambiguous is None:
                ambiguous = (name, hits)
        else:
            if ambiguous:
                name, hits = ambiguous
                more = f" and {len(hits) - 3} more" if len(hits) > 3 else ""
                raise NegmineError(f"annotation {name!r} fits {len(hits)} images ({', '.join(hits[:3])}{more}); "
                                   "give the annotations the same sub-folders as the images")
    return out
