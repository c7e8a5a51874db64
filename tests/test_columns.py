"""No guess by position (#23): a table pool with several image columns (a photo and its segmentation
map) or several label columns (CIFAR-100's fine and coarse labels) is refused in one line naming the
candidates and the option that chooses; an image column is never read as the label column."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import SHARED, read_manifest
from negmine.cli import cli
from negmine.errors import NegmineError
from negmine.sources import SourceSpec, open_source


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def photos(n: int) -> list[bytes]:
    """Real ImageNet photos (tools, instruments: nothing a raccoon positive excludes)."""
    files = sorted((SHARED / "imagenet-500" / "images").glob("n03*.JPEG"))[:n]
    return [f.read_bytes() for f in files]


def label_map(size: tuple[int, int], k: int) -> bytes:
    """A segmentation label map as ADE20k stores them: small class ids in an 8-bit PNG."""
    a = np.zeros(size[::-1], np.uint8)
    a[size[1] // 4: 3 * size[1] // 4, :] = 1 + k % 20
    b = io.BytesIO()
    Image.fromarray(a, "L").save(b, "PNG")
    return b.getvalue()


def segmentation_pool(root: Path, photo_col: str, mask_col: str, rows: int = 8, *, mask_first: bool = True,
                      disk: bool = False, scenes: bool = False) -> Path:
    """A pool of photos and their label maps, both `Image` columns, written with `datasets` (Hub
    parquet layout, or save_to_disk); `scenes`: also ADE20k's `scene_category` ClassLabel."""
    from datasets import ClassLabel, Dataset, Features, Image as HFImage

    ph = photos(rows)
    masks = [label_map(Image.open(io.BytesIO(p)).size, k) for k, p in enumerate(ph)]
    cols = {mask_col: [{"bytes": m, "path": None} for m in masks], photo_col: [{"bytes": p, "path": None} for p in ph]}
    if not mask_first:
        cols = dict(reversed(list(cols.items())))
    feats = {k: HFImage() for k in cols}
    if scenes:
        cols["scene_category"] = [k % 2 for k in range(rows)]
        feats["scene_category"] = ClassLabel(names=["kitchen", "workshop"])
    ds = Dataset.from_dict(cols, features=Features(feats))
    if disk:
        ds.save_to_disk(str(root))
        return root
    (root / "data").mkdir(parents=True)
    ds.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    return root


@pytest.fixture
def raccoons(tmp_path) -> Path:
    root = tmp_path / "positives" / "raccoon"
    root.mkdir(parents=True)
    for f in sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[:6]:
        shutil.copy(f, root / f.name)
    return root


@pytest.mark.parametrize("disk", [False, True], ids=["parquet", "save_to_disk"])
def test_two_image_columns_are_refused_naming_both(tmp_path, raccoons, disk):
    pool = segmentation_pool(tmp_path / "pool", "image", "mask", disk=disk)
    out = tmp_path / "out"
    r = invoke("sample", "-p", raccoons, "-s", pool, "--count", 4, "--split", "0.5,0.5", "--workers", 1, "-q",
               "-o", out)
    assert r.exit_code == 1, r.output
    line = r.output.strip().splitlines()[-1]
    assert line.startswith("Error:") and "2 image columns ('mask', 'image')" in line
    assert "--image-column" in line and "?image=" in line
    assert not (out / "manifest.jsonl").exists()


def test_the_chosen_image_column_writes_the_photos(tmp_path, raccoons):
    pool = segmentation_pool(tmp_path / "pool", "image", "mask", scenes=True)
    out = tmp_path / "out"
    r = invoke("sample", "-p", raccoons, "-s", f"{pool}?image=image", "--count", 4, "--split", "0.5,0.5",
               "--workers", 1, "-q", "-o", out)
    assert r.exit_code == 0, r.output
    negatives = [x for x in read_manifest(out) if x["role"] == "negative"]
    assert len(negatives) == 4
    assert {x["label"] for x in negatives} <= {"kitchen", "workshop"}
    for x in negatives:
        a = np.asarray(Image.open(out / x["path"]).convert("L"), np.float32)
        assert a.std() > 30, f"{x['path']} looks like a label map (mean {a.mean():.1f})"


def test_an_image_column_named_label_is_not_the_label(tmp_path):
    pool = segmentation_pool(tmp_path / "pool", "pixel_values", "label", mask_first=False)
    r = invoke("classes", "-s", pool, "-x", "dog")
    assert r.exit_code == 1
    assert "'label' holds images" in r.output and "--image-column" in r.output and "Traceback" not in r.output
    src = open_source(SourceSpec.parse(f"{pool}?image=pixel_values"), progress=False)
    assert (src.image_column, src.label_column) == ("pixel_values", None) and src.label_kind == "none"
    assert src.describe()["columns"] == {"image": "pixel_values", "label": None,
                                         "not_labels": {"label": "an image column, not class labels"}}
    with pytest.raises(NegmineError, match="column 'label' holds images, not class labels"):
        open_source(SourceSpec.parse(f"{pool}?image=pixel_values&label=label"), progress=False)


def cifar100_like(root: Path) -> Path:
    """CIFAR-100's schema: img, fine_label and coarse_label, both ClassLabels."""
    from datasets import ClassLabel, Dataset, Features, Image as HFImage

    ph = photos(6)
    ds = Dataset.from_dict({"img": [{"bytes": p, "path": None} for p in ph], "fine_label": [0, 1, 2, 0, 1, 2],
                            "coarse_label": [0, 0, 1, 0, 0, 1]},
                           features=Features({"img": HFImage(), "fine_label": ClassLabel(names=["maple", "oak", "bus"]),
                                              "coarse_label": ClassLabel(names=["trees", "vehicles"])}))
    (root / "data").mkdir(parents=True)
    ds.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    return root


def test_two_label_columns_are_refused_naming_both(tmp_path):
    pool = cifar100_like(tmp_path / "pool")
    r = invoke("classes", "-s", pool, "-x", "dog")
    assert r.exit_code == 1
    line = r.output.strip().splitlines()[-1]
    assert "2 label columns ('fine_label', 'coarse_label')" in line and "--label-column" in line and "?label=" in line
    r = invoke("classes", "-s", f"{pool}?label=coarse_label", "-x", "dog", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["sources"][0]["classes"] == 2
    src = open_source(SourceSpec.parse(f"{pool}?label=fine_label"), progress=False)
    assert src.classes == ["maple", "oak", "bus"] and src.image_column == "img"


def test_plain_parquet_with_two_conventional_label_names_is_refused(tmp_path):
    """No `datasets` features: columns found by name, and two label names are two candidates."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ph = photos(4)
    table = pa.table({"image": pa.array([{"bytes": p, "path": None} for p in ph]),
                      "label": ["tench", "tench", "goldfish", "goldfish"], "category": ["fish"] * 4})
    (tmp_path / "pool" / "data").mkdir(parents=True)
    pq.write_table(table, tmp_path / "pool" / "data" / "train-00000-of-00001.parquet")
    with pytest.raises(NegmineError, match=r"2 label columns \('label', 'category'\)"):
        open_source(SourceSpec.parse(str(tmp_path / "pool")), progress=False)
    src = open_source(SourceSpec.parse(f"{tmp_path / 'pool'}?label=label"), progress=False)
    assert src.classes == ["goldfish", "tench"]


def test_imagefolder_metadata_with_two_label_keys_is_refused(tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    lines = []
    for k, raw in enumerate(photos(4)):
        (pool / f"{k}.jpg").write_bytes(raw)
        lines.append(json.dumps({"file_name": f"{k}.jpg", "label": ["tench", "goldfish"][k % 2], "category": "fish"}))
    (pool / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(NegmineError, match=r"2 label columns \('label', 'category'\).*--label-column"):
        open_source(SourceSpec.parse(str(pool)), progress=False)
    src = open_source(SourceSpec.parse(f"{pool}?label=label"), progress=False)
    assert src.classes == ["goldfish", "tench"] and len(src) == 4


def test_imagefolder_metadata_with_a_mask_column(tmp_path):
    """`datasets` reads `file_name` as the `image` column and `mask_file_name` as `mask`: two image
    columns. Refused until one is named; then the masks are no rows."""
    pool = tmp_path / "pool"
    pool.mkdir()
    lines = []
    for k, raw in enumerate(photos(4)):
        (pool / f"{k}.jpg").write_bytes(raw)
        (pool / f"{k}_mask.png").write_bytes(label_map(Image.open(io.BytesIO(raw)).size, k))
        lines.append(json.dumps({"file_name": f"{k}.jpg", "mask_file_name": f"{k}_mask.png", "label": "tool"}))
    (pool / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    r = invoke("classes", "-s", pool, "-x", "dog")
    assert r.exit_code == 1 and "2 image columns ('image', 'mask')" in r.output and "--image-column" in r.output
    src = open_source(SourceSpec.parse(f"{pool}?image=image"), progress=False)
    assert len(src) == 4 and src.classes == ["tool"] and (src.codes == 0).all()
    items = list(src.read(range(4)))
    assert sorted(i.origin["file"] for i in items) == [f"{k}.jpg" for k in range(4)]


def test_webdataset_sample_with_jpg_and_png_is_refused(tmp_path):
    import tarfile

    shards = tmp_path / "wds"
    shards.mkdir()
    with tarfile.open(shards / "train-000000.tar", "w") as tf:
        for k, raw in enumerate(photos(3)):
            mask = label_map(Image.open(io.BytesIO(raw)).size, k)
            for name, data in ((f"s{k}.jpg", raw), (f"s{k}.png", mask), (f"s{k}.cls", b"0")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    with pytest.raises(NegmineError, match=r"2 image columns \('jpg', 'png'\).*--image-column"):
        open_source(SourceSpec.parse(str(shards)), progress=False)
    src = open_source(SourceSpec.parse(f"{shards}?image=jpg"), progress=False)
    assert len(src) == 3
    assert all(i.data[:2] == b"\xff\xd8" for i in src.read(range(3)))        # the JPEG photos, not the PNG masks


def two_classlabel_card(first: str, second: str) -> str:
    """A dataset card declaring CIFAR-100-like fine and coarse ClassLabels."""
    return (f"---\nlicense: cc-by-4.0\ndataset_info:\n  features:\n  - name: image\n    dtype: image\n"
            f"  - name: {first}\n    dtype:\n      class_label:\n        names:\n          '0': maple\n          '1': oak\n"
            f"  - name: {second}\n    dtype:\n      class_label:\n        names:\n          '0': trees\n---\n# test\n")


def test_imagefolder_int_labels_are_named_by_their_own_classlabel(tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "README.md").write_text(two_classlabel_card("fine_label", "coarse_label"))
    both, fine = [], []
    for k, raw in enumerate(photos(4)):
        (pool / f"{k}.jpg").write_bytes(raw)
        both.append(json.dumps({"file_name": f"{k}.jpg", "fine_label": k % 2, "coarse_label": 0}))
        fine.append(json.dumps({"file_name": f"{k}.jpg", "fine_label": k % 2}))
    (pool / "metadata.jsonl").write_text("\n".join(both) + "\n")
    with pytest.raises(NegmineError, match=r"2 label columns \('fine_label', 'coarse_label'\)"):
        open_source(SourceSpec.parse(str(pool)), progress=False)
    assert open_source(SourceSpec.parse(f"{pool}?label=coarse_label"), progress=False).classes == ["trees"]
    (pool / "metadata.jsonl").write_text("\n".join(fine) + "\n")
    assert open_source(SourceSpec.parse(str(pool)), progress=False).classes == ["maple", "oak"]


def test_webdataset_card_with_two_classlabels_is_refused(tmp_path):
    import tarfile

    shards = tmp_path / "wds"
    shards.mkdir()
    (shards / "README.md").write_text(two_classlabel_card("fine", "coarse"))
    with tarfile.open(shards / "train-000000.tar", "w") as tf:
        for k, raw in enumerate(photos(2)):
            for name, data in ((f"s{k}.jpg", raw), (f"s{k}.cls", b"0")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    with pytest.raises(NegmineError, match=r"dataset card has 2 label columns \('fine', 'coarse'\)"):
        open_source(SourceSpec.parse(str(shards)), progress=False)
