"""Multi-label pools (#19): label lists in every shape, on every source kind; an image carrying any
positive label is never drawn; strata, reports and --verified-absent."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SHARED, jpeg_bytes, read_manifest
from multilabel_pools import SHAPES, VOCAB, label_lists, make_multilabel_pool
from negmine.cli import cli
from negmine.sources.labels import any_in_lists, stratum_codes


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


@pytest.fixture
def raccoons(tmp_path) -> Path:
    """One positive class, raccoon: 8 real photos."""
    root = tmp_path / "positives" / "raccoon"
    root.mkdir(parents=True)
    for f in sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[:8]:
        shutil.copy(f, root / f.name)
    return root.parent


def present(given_row) -> set[str]:
    """The labels a row carries: Open Images pairs with confidence 0 are confirmed absences."""
    return {x[0] for x in given_row if x[1] > 0} if given_row and isinstance(given_row[0], tuple) else set(given_row)


def plan(*args) -> dict:
    res = invoke("sample", *args, "--dry-run", "--json", "-q")
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{"):])


@pytest.mark.parametrize("shape", SHAPES)
def test_no_image_carrying_a_positive_label_is_drawn(tmp_path, raccoons, shape):
    root, given = make_multilabel_pool(tmp_path / "pool", shape)
    positive = "5" if shape == "ints" else "raccoon"
    # plain ints are class ids, never WordNet names: drawn only when allowed, matched to --exclude by name
    extra = ["--exclude", "5", "--allow-unmapped"] if shape == "ints" else []
    clean = [r for r, g in enumerate(given) if positive not in present(g)]
    p = plan("-p", raccoons, "-s", root, "--count", 12, "--seed", 3, "-o", tmp_path / "dry", *extra)
    assert p["pool_available"] == len(clean)                # exactly the images without the label
    res = invoke("sample", "-p", raccoons, "-s", root, "--count", 12, "--seed", 3, "-o", tmp_path / "out", *extra)
    assert res.exit_code == 0, res.output
    neg = [r for r in read_manifest(tmp_path / "out") if r["role"] == "negative"]
    assert len(neg) == 12
    for r in neg:
        assert positive not in present(given[r["row"]])
        assert r["labels"] == sorted(present(given[r["row"]]))     # the whole list, kept
        assert r["label"] in (r["labels"] or [None])                # the stratum is one of them


def test_confidence_zero_is_not_a_label(tmp_path, raccoons):
    """Open Images: 'raccoon' with confidence 0 means a rater saw none, so the image is eligible."""
    root, given = make_multilabel_pool(tmp_path / "pool", "openimages")
    confirmed = [r for r, g in enumerate(given) if ("raccoon", 0.0) in g]
    assert confirmed
    p = plan("-p", raccoons, "-s", root, "--count", 5, "-o", tmp_path / "dry")
    assert p["pool_available"] == sum("raccoon" not in present(g) for g in given)
    assert p["pool_available"] > len(confirmed)             # confirmed-absent rows are among them


def test_hub_pool_of_label_lists_and_its_cached_index(tmp_path, raccoons, hub_server):
    for shape in ("coco", "openimages"):
        root, given = make_multilabel_pool(tmp_path / shape, shape)
        hub_server.add_repo(f"me/{shape}", root)
        clean = sum("raccoon" not in present(g) for g in given)
        before = len(hub_server.requests("cdn"))
        for attempt in range(2):                            # the second run reads the index the first kept
            p = plan("-p", raccoons, "-s", f"me/{shape}", "--count", 10, "--seed", 1, "-o", tmp_path / "dry")
            assert p["pool_available"] == clean, attempt
            assert p["classes"]["sources"][0]["images_excluded"] == len(given) - clean
            if attempt == 0:                                # the label lists came without the images
                served = [tuple(int(x) for x in e.range.split("=")[1].split("-")) for e in hub_server.requests("cdn")[before:]
                          if e.status == 206]
                images = image_spans(root / "data" / "train-00000-of-00001.parquet")
                assert served and not [(a, b) for a, b in served for s, e in images if a < e and s <= b]
        res = invoke("sample", "-p", raccoons, "-s", f"me/{shape}", "--count", 10, "--seed", 1,
                     "-o", tmp_path / f"out-{shape}")
        assert res.exit_code == 0, res.output
        neg = [r for r in read_manifest(tmp_path / f"out-{shape}") if r["role"] == "negative"]
        assert len(neg) == 10
        assert all("raccoon" not in present(given[r["row"]]) for r in neg)
        assert all(r["labels"] == sorted(present(given[r["row"]])) for r in neg)


def image_spans(path: Path) -> list[tuple[int, int]]:
    """[start, end) of the image column's data in each row group of a parquet file."""
    import pyarrow.parquet as pq

    md = pq.ParquetFile(path).metadata
    spans = []
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        for k in range(rg.num_columns):
            c = rg.column(k)
            if c.path_in_schema.startswith("image."):
                start = c.dictionary_page_offset if c.has_dictionary_page and c.dictionary_page_offset else c.data_page_offset
                spans.append((start, start + c.total_compressed_size))
    return spans


def test_save_to_disk_pool(tmp_path, raccoons):
    import datasets

    root, given = make_multilabel_pool(tmp_path / "pool", "coco")
    ds = datasets.load_dataset("parquet", data_files=str(root / "data" / "*.parquet"), split="train")
    ds.save_to_disk(str(tmp_path / "disk"))
    res = invoke("sample", "-p", raccoons, "-s", tmp_path / "disk", "--count", 10, "--seed", 2, "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    neg = [r for r in read_manifest(tmp_path / "out") if r["role"] == "negative"]
    assert len(neg) == 10
    assert all("raccoon" not in given[r["row"]] and r["labels"] == sorted(set(given[r["row"]])) for r in neg)


@pytest.mark.parametrize("kind", ["jsonl-objects", "jsonl-records", "csv-json-list"])
def test_imagefolder_metadata_label_lists(tmp_path, raccoons, kind):
    lists = label_lists(36, seed=4)
    folder = tmp_path / "pool"
    folder.mkdir()
    for i in range(len(lists)):
        (folder / f"im{i:02d}.jpg").write_bytes(jpeg_bytes(700 + i))
    if kind == "csv-json-list":
        (folder / "metadata.csv").write_text("file_name,labels\n" + "".join(
            f"im{i:02d}.jpg,\"{json.dumps(xs).replace(chr(34), chr(34) * 2)}\"\n" for i, xs in enumerate(lists)))
    else:
        with open(folder / "metadata.jsonl", "w") as f:
            for i, xs in enumerate(lists):
                value = ({"objects": {"bbox": [[0, 0, 1, 1]] * len(xs), "categories": xs}} if kind == "jsonl-objects"
                         else {"labels": [{"label": x, "confidence": 1.0} for x in xs]})
                f.write(json.dumps({"file_name": f"im{i:02d}.jpg", **value}) + "\n")
    p = plan("-p", raccoons, "-s", folder, "--count", 8, "-o", tmp_path / "dry")
    assert p["pool_available"] == sum("raccoon" not in xs for xs in lists)
    res = invoke("sample", "-p", raccoons, "-s", folder, "--count", 8, "--seed", 5, "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    neg = [r for r in read_manifest(tmp_path / "out") if r["role"] == "negative"]
    assert len(neg) == 8
    for r in neg:
        xs = lists[int(Path(r["file"]).stem[2:])]
        assert "raccoon" not in xs and r["labels"] == sorted(set(xs))


def test_classes_reports_labels_and_the_images_they_remove(tmp_path):
    root, given = make_multilabel_pool(tmp_path / "pool", "classlabel")
    res = invoke("classes", "-s", root, "-x", "raccoon", "-x", "cat", "--json")
    assert res.exit_code == 0, res.output
    src = json.loads(res.output)["sources"][0]
    carried = {x: sum(x in set(g) for g in given) for x in VOCAB}
    assert {e["label"]: e["rows"] for e in src["excluded"]} == {"raccoon": carried["raccoon"], "cat": carried["cat"]}
    assert src["images_excluded"] == sum(bool({"raccoon", "cat"} & set(g)) for g in given)
    text = invoke("classes", "-s", root, "-x", "raccoon", "-x", "cat").output
    assert f"{src['images_excluded']} of {len(given)} images carry an excluded label" in text


def test_strata_are_each_images_rarest_label():
    # rows: [0, 1], [1], [], [1, 2], [0, 2, 1]; label counts 0:2, 1:4, 2:2
    offsets = np.array([0, 2, 3, 3, 5, 8])
    codes = np.array([0, 1, 1, 1, 2, 0, 2, 1], np.int32)
    assert stratum_codes(offsets, codes, 3).tolist() == [0, 1, -1, 2, 0]
    assert any_in_lists(offsets, codes, np.array([2])).tolist() == [False, False, False, True, True]
    assert any_in_lists(offsets, codes, np.array([], np.int32)).tolist() == [False] * 5


def tags_pool(root: Path, rows: list[list[str]]) -> Path:
    """A parquet pool whose `tags` column is list<string>, one image per row."""
    import datasets
    import pyarrow.parquet as pq

    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": jpeg_bytes(300 + r), "path": None} for r in range(len(rows))], "tags": rows},
        features=datasets.Features({"image": datasets.Image(), "tags": datasets.List(datasets.Value("string"))}))
    (root / "data").mkdir(parents=True)
    pq.write_table(ds.data.table, str(root / "data" / "train-00000-of-00001.parquet"))
    return root


def test_stratified_draw_reaches_rare_labels(tmp_path, raccoons):
    """'tree' on every image, 'bicycle' on 3: over first labels the draw would be all trees; over
    rarest labels every label is a stratum, and a draw as large as the strata reaches them all."""
    rng = np.random.default_rng(0)
    rows = [["tree"] + (["bicycle"] if r < 3 else [str(rng.choice(["car", "chair", "dog"]))]) for r in range(40)]
    tags_pool(tmp_path / "pool", rows)
    p = plan("-p", raccoons, "-s", tmp_path / "pool", "--count", 4, "--seed", 0, "-o", tmp_path / "dry")
    cov = p["label_coverage"][str((tmp_path / "pool").resolve())]
    assert cov["strata_eligible"] == 4 and cov["strata_drawn"] == 4       # bicycle, car, chair, dog
    assert sorted(next(iter(p["draw"].values()))) == ["bicycle", "car", "chair", "dog"]


def test_verified_absent(tmp_path, raccoons):
    root, given = make_multilabel_pool(tmp_path / "pool", "openimages")
    verified = [r for r, g in enumerate(given) if ("raccoon", 0.0) in g]
    p = plan("-p", raccoons, "-s", root, "-x", "zebra", "--count", 6, "--verified-absent", "-o", tmp_path / "dry")
    assert p["pool_available"] == len(verified)
    v = next(iter(p["verified_absent"].values()))
    assert v["verified"] == ["raccoon"] and v["cannot_verify"] == ["zebra"]
    res = invoke("sample", "-p", raccoons, "-s", root, "--count", 6, "--seed", 4, "--verified-absent",
                 "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    neg = [r for r in read_manifest(tmp_path / "out") if r["role"] == "negative"]
    assert len(neg) == 6
    for r in neg:
        assert r["row"] in verified
        assert r["verified_absent"] == {"concepts": ["raccoon"], "absent_labels": ["raccoon"]}
    record = json.loads((tmp_path / "out" / "negmine.json").read_text())
    assert record["options"]["verified_absent"] is True


def test_verified_absent_needs_a_pool_that_records_absence(tmp_path, raccoons):
    root, _ = make_multilabel_pool(tmp_path / "pool", "coco")
    res = invoke("sample", "-p", raccoons, "-s", root, "--count", 6, "--verified-absent", "-o", tmp_path / "out")
    assert res.exit_code == 1
    assert "no source can verify" in res.output and "confirmed absent" in res.output
    assert not (tmp_path / "out").exists()


def test_webdataset_json_label_lists(tmp_path, raccoons):
    import io
    import tarfile

    lists = label_lists(30, seed=6)
    (tmp_path / "pool").mkdir()
    with tarfile.open(tmp_path / "pool" / "shard-000000.tar", "w") as tf:
        for i, xs in enumerate(lists):
            for name, data in ((f"s{i:03d}.jpg", jpeg_bytes(800 + i)), (f"s{i:03d}.json", json.dumps({"tags": xs}).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    p = plan("-p", raccoons, "-s", tmp_path / "pool", "--count", 8, "-o", tmp_path / "dry")
    assert p["pool_available"] == sum("raccoon" not in xs for xs in lists)
    res = invoke("sample", "-p", raccoons, "-s", tmp_path / "pool", "--count", 8, "--seed", 1, "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    neg = [r for r in read_manifest(tmp_path / "out") if r["role"] == "negative"]
    assert len(neg) == 8
    for r in neg:
        xs = lists[int(r["member"][1:4])]
        assert "raccoon" not in xs and r["labels"] == sorted(set(xs))


def test_cooccurrence_prior_applies_to_every_label(tmp_path, raccoons):
    """ImageNet-1k labels in lists: 'muzzle' images often show a dog (ImageNet-ReaL), so with
    --exclude dog an image carrying 'muzzle' among its labels is not drawn either."""
    rng = np.random.default_rng(1)
    names = ["muzzle", "daisy", "volcano", "canoe", "teapot"]
    rows = [[str(x) for x in rng.choice(names, rng.integers(1, 3), replace=False)] for _ in range(40)]
    root = tags_pool(tmp_path / "pool", rows)
    res = invoke("classes", "-s", root, "-x", "dog", "--json")
    assert res.exit_code == 0, res.output
    excluded = {e["label"]: e for e in json.loads(res.output)["sources"][0]["excluded"]}
    assert "muzzle" in excluded and "--max-contamination" in excluded["muzzle"]["reason"]
    p = plan("-p", raccoons, "-s", root, "-x", "dog", "--count", 6, "-o", tmp_path / "dry")
    assert p["pool_available"] == sum("muzzle" not in r for r in rows)


def test_a_list_of_lists_is_a_one_line_error(tmp_path, raccoons):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "pool" / "data").mkdir(parents=True)
    table = pa.table({"image": [{"bytes": jpeg_bytes(i), "path": None} for i in range(4)],
                      "labels": [[["a"]], [["b"]], [], [["c"]]]})
    pq.write_table(table, str(tmp_path / "pool" / "data" / "train-00000-of-00001.parquet"))
    res = invoke("sample", "-q", "-p", raccoons, "-s", tmp_path / "pool", "--count", 3, "-o", tmp_path / "out")
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and "is a list of lists" in res.output
