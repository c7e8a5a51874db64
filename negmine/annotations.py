"""Object annotations: COCO JSON, Pascal VOC XML, YOLO txt, CSV, or a folder of mask PNGs.

Every parser returns {image key: [Box, ...]} where the key is the image's path relative to the
images folder (or its bare file name when the format gives only that). Parsing errors are
NegmineError with the file and the problem; boxes are clipped to the image later, when its size
is known (real data has boxes one pixel outside).
"""

from __future__ import annotations

import csv
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from negmine.errors import NegmineError

FORMATS = ("auto", "coco", "voc", "yolo", "csv")


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float
    label: str | None = None

    def clip(self, w: int, h: int) -> "Box | None":
        x0, y0 = max(0.0, min(self.x0, self.x1)), max(0.0, min(self.y0, self.y1))
        x1, y1 = min(float(w), max(self.x0, self.x1)), min(float(h), max(self.y0, self.y1))
        return Box(x0, y0, x1, y1, self.label) if x1 - x0 >= 1 and y1 - y0 >= 1 else None

    def as_list(self) -> list:
        return [round(self.x0, 2), round(self.y0, 2), round(self.x1, 2), round(self.y1, 2), self.label]


def _num(value, where: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise NegmineError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(x):
        raise NegmineError(f"{where}: {value!r} is not a finite number")
    return x


def parse_coco(path: Path) -> dict[str, list[Box]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise NegmineError(f"{path}: not a readable COCO JSON file ({exc})".splitlines()[0]) from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations", []), list):
        raise NegmineError(f"{path}: COCO JSON needs 'images' and 'annotations' lists")
    cats = {c.get("id"): str(c.get("name")) for c in data.get("categories", []) if isinstance(c, dict)}
    files, out = {}, {}
    for im in data["images"]:
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise NegmineError(f"{path}: every image needs an 'id' and a 'file_name'")
        files[im["id"]] = im["file_name"]
        out.setdefault(im["file_name"], [])
    for k, ann in enumerate(data.get("annotations", [])):
        where = f"{path}: annotation {k}"
        if not isinstance(ann, dict) or ann.get("image_id") not in files:
            raise NegmineError(f"{where}: missing or unknown image_id")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise NegmineError(f"{where}: bbox must be [x, y, width, height]")
        x, y, w, h = (_num(v, where) for v in bbox)
        out[files[ann["image_id"]]].append(Box(x, y, x + w, y + h, cats.get(ann.get("category_id"))))
    return out


def parse_voc(folder: Path) -> dict[str, list[Box]]:
    out = {}
    for xml in sorted(Path(folder).rglob("*.xml")):
        try:
            root = ET.parse(xml).getroot()
        except (ET.ParseError, OSError) as exc:
            raise NegmineError(f"{xml}: not a readable VOC XML file ({exc})") from None
        name = root.findtext("filename")
        if not name:
            raise NegmineError(f"{xml}: no <filename>")
        boxes = out.setdefault(name.strip(), [])
        for obj in root.iter("object"):
            bb = obj.find("bndbox")
            if bb is None:
                raise NegmineError(f"{xml}: an <object> without <bndbox>")
            vals = [_num(bb.findtext(t), f"{xml} <{t}>") for t in ("xmin", "ymin", "xmax", "ymax")]
            boxes.append(Box(*vals, (obj.findtext("name") or "").strip() or None))
    return out


def parse_yolo(folder: Path, image_sizes: dict[str, tuple[int, int]]) -> dict[str, list[Box]]:
    """One `<stem>.txt` per image: `class cx cy w h`, normalised. Needs the image sizes (by stem)."""
    folder = Path(folder)
    names = []
    for meta in ("classes.txt", "obj.names"):
        if (folder / meta).is_file():
            names = [x.strip() for x in (folder / meta).read_text(encoding="utf-8").splitlines() if x.strip()]
    out = {}
    by_stem = {Path(k).stem: k for k in image_sizes}
    for txt in sorted(folder.rglob("*.txt")):
        if txt.name in ("classes.txt", "obj.names"):
            continue
        key = by_stem.get(txt.stem)
        if key is None:
            continue
        w, h = image_sizes[key]
        boxes = out.setdefault(key, [])
        for n, line in enumerate(txt.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 5:
                raise NegmineError(f"{txt}:{n}: expected 'class cx cy w h', got {line!r}")
            c, cx, cy, bw, bh = parts[0], *(_num(v, f"{txt}:{n}") for v in parts[1:5])
            label = names[int(c)] if c.isdigit() and int(c) < len(names) else c
            boxes.append(Box((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h, label))
    return out


def parse_csv(path: Path) -> dict[str, list[Box]]:
    """`filename,xmin,ymin,xmax,ymax[,class]`, or any column order under a header with those names."""
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
    out = {}
    for n, row in enumerate(rows, 2 if order != [0, 1, 2, 3, 4, 5] else 1):
        if not row or not "".join(row).strip():
            continue
        try:
            fields = [row[i] if i is not None and i < len(row) else None for i in order]
        except IndexError:
            fields = []
        if len(row) < 5 or fields[0] is None:
            raise NegmineError(f"{path}:{n}: expected filename,xmin,ymin,xmax,ymax[,class]")
        vals = [_num(v, f"{path}:{n}") for v in fields[1:5]]
        out.setdefault(fields[0].strip(), []).append(Box(*vals, (fields[5] or "").strip() or None))
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


def load_boxes(path: Path, fmt: str = "auto", image_sizes: dict[str, tuple[int, int]] | None = None
               ) -> dict[str, list[Box]]:
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "coco":
        return parse_coco(path)
    if fmt == "voc":
        return parse_voc(path)
    if fmt == "csv":
        return parse_csv(path)
    if fmt == "yolo":
        return parse_yolo(path, image_sizes or {})
    raise NegmineError(f"unknown annotation format {fmt!r}; choose from {', '.join(FORMATS)}")


def match_images(boxes: dict[str, list[Box]], image_keys: list[str]) -> dict[str, list[Box]]:
    """Annotation keys -> image keys: by relative path, else by file name when that is unambiguous."""
    keys = set(image_keys)
    by_name: dict[str, list[str]] = {}
    for k in image_keys:
        by_name.setdefault(Path(k).name, []).append(k)
    out = {}
    for key, bxs in boxes.items():
        norm = key.replace("\\", "/").lstrip("./")
        if norm in keys:
            out.setdefault(norm, []).extend(bxs)
        elif len(by_name.get(Path(norm).name, [])) == 1:
            out.setdefault(by_name[Path(norm).name][0], []).extend(bxs)
    return out
