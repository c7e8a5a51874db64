"""Pool classes no check can vouch for stay out of the negatives (fail closed): a `tags` list of
captions is text, not one class per caption; bare integer class ids are never WordNet numbers; a
class WordNet cannot place is left out unless --allow-unmapped, which the run then says.
Pools are built here from real photos (shared/data/imagenet-500)."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import SHARED, raccoon_folder, read_negatives, read_record
from negmine.cli import cli
from negmine.sources.columns import feature_kinds

PHOTOS = sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))
# captions of the newcomer's pools: the positive named in a whole-caption tag
RACCOON_CAPTIONS = ["a photo of a raccoon", "Raccoons eating from a trash can", "a raccoon on a fence"]
OTHER_CAPTIONS = ["a red chair by a window", "a bicycle leaning on a wall", "a kettle on a stove",
                  "a boat on a lake", "a guitar on a sofa", "a lamp on a desk"]


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def write_pool(folder, columns: dict) -> Path:
    """One parquet shard with no `datasets` metadata: real photos in `image`, plus `columns`."""
    n = len(next(iter(columns.values())))
    folder.mkdir(parents=True, exist_ok=True)
    images = [{"bytes": p.read_bytes(), "path": p.name} for p in PHOTOS[:n]]
    pq.write_table(pa.table({"image": images, **columns}), folder / "train-00000-of-00001.parquet")
    return folder


@pytest.fixture
def raccoons(tmp_path):
    return raccoon_folder(tmp_path / "pos", 4)


# -- 1. a `tags` column of strings is text -------------------------------------------------------

def test_a_tags_list_of_captions_is_read_as_text(tmp_path, raccoons):
    tags = ([[c] for c in RACCOON_CAPTIONS] + [[c] for c in OTHER_CAPTIONS]
            + [[], ["lorem", "ipsum"]])                                  # no text; no noun
    pool = write_pool(tmp_path / "pool", {"tags": pa.array(tags, pa.list_(pa.string()))})
    clean = set(range(len(RACCOON_CAPTIONS), len(RACCOON_CAPTIONS) + len(OTHER_CAPTIONS)))
    for extra, out in (([], "a"), (["--text-column", "tags"], "b")):       # found by name, or named alone
        r = invoke("sample", "-q", "-p", raccoons, "-s", pool, "--count", len(clean), "--split", "1,0,0",
                   "--seed", 0, "--workers", 1, "-o", tmp_path / out, *extra)
        assert r.exit_code == 0, r.output
        drawn = {n["row"] for n in read_negatives(tmp_path / out)}
        assert drawn == clean                  # no raccoon caption, no empty list, no noun-less tags
        assert read_record(tmp_path / out)["sources"][0]["columns"]["text"] == ["tags"]
    # one more than the clean images is more than the pool has: nothing else is drawn to fill it
    r = invoke("sample", "-q", "-p", raccoons, "-s", pool, "--count", len(clean) + 1, "--split", "1,0,0",
               "-o", tmp_path / "c")
    assert r.exit_code == 3 and f"only {len(clean)} images" in r.output


# -- 2. integer labels with no names are ids, not WordNet numbers ---------------------------------

@pytest.fixture
def id_pool(tmp_path):
    """An int `label` with no names (ids 0-2) beside a caption naming what each image shows."""
    captions = RACCOON_CAPTIONS + OTHER_CAPTIONS
    return write_pool(tmp_path / "ids", {"label": pa.array([i % 3 for i in range(len(captions))], pa.int64()),
                                         "caption": captions})


def test_bare_integer_labels_are_never_placed_in_wordnet(tmp_path, raccoons, id_pool):
    # 'seven' is a digit to WordNet; a class id 7 is nothing of the kind
    r = invoke("classes", "-s", id_pool, "-x", "digit", "--json")
    assert r.exit_code == 0, r.output
    src = json.loads(r.output)["sources"][0]
    assert src["label_kind"] == "id" and sorted(src["unmapped"]) == ["0", "1", "2"]
    assert all(e["reason"].startswith("a class id with no name") for e in src["excluded"])
    # a pool none of whose classes can be checked is refused in one line naming the ways forward
    r = invoke("sample", "-q", "-p", raccoons, "-s", id_pool, "--count", 3, "-o", tmp_path / "a")
    assert r.exit_code == 1 and r.output.count("\n") == 1
    assert "bare class ids" in r.output and "--label-column none" in r.output and "--allow-unmapped" in r.output
    assert not (tmp_path / "a").exists()
    # its captions keep the raccoons out
    r = invoke("sample", "-q", "-p", raccoons, "-s", id_pool, "--label-column", "none", "--count", 6,
               "--split", "1,0,0", "--workers", 1, "-o", tmp_path / "b")
    assert r.exit_code == 0, r.output
    assert {n["row"] for n in read_negatives(tmp_path / "b")} == set(range(3, 9))
    # --allow-unmapped draws the ids unchecked, and the run says how many
    r = invoke("sample", "-q", "-p", raccoons, "-s", id_pool, "--allow-unmapped", "--count", 9,
               "--split", "1,0,0", "--workers", 1, "-o", tmp_path / "c")
    assert r.exit_code == 0, r.output
    warned = read_record(tmp_path / "c")["warnings"]
    assert any(w.startswith("--allow-unmapped: 3 classes") and "(9 images)" in w for w in warned)


def test_a_classlabel_with_only_a_class_count_holds_ids(tmp_path, raccoons):
    kinds = feature_kinds({"image": {"_type": "Image"}, "label": {"_type": "ClassLabel", "num_classes": 3}})
    assert kinds["label"] == ("ClassIds", ["0", "1", "2"])
    # as `datasets` writes ClassLabel(num_classes=3): names "0", "1", "2", which are its codes, not names
    from conftest import make_parquet_repo

    repo = make_parquet_repo(tmp_path / "n", ["0", "1", "2"], 3)
    r = invoke("classes", "-s", repo, "-x", "digit", "--json")
    assert json.loads(r.output)["sources"][0]["label_kind"] == "id"
    r = invoke("sample", "-q", "-p", raccoons, "-s", repo, "--count", 3, "-o", tmp_path / "a")
    assert r.exit_code == 1 and "bare class ids" in r.output


# -- 3. classes WordNet cannot place are left out unless allowed ----------------------------------

@pytest.fixture
def mixed_pool(tmp_path):
    """String labels: 'chair' and 'bicycle' (WordNet), 'zorblax' and 'qq7' (nothing places them)."""
    labels = ["chair", "bicycle", "zorblax", "qq7"] * 3
    return write_pool(tmp_path / "mixed", {"label": labels}), labels


def test_unplaced_classes_are_left_out_and_listed(tmp_path, raccoons, mixed_pool):
    pool, labels = mixed_pool
    r = invoke("sample", "-p", raccoons, "-s", pool, "--count", 6, "-o", tmp_path / "dry", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "not in WordNet (2, left out; --allow-unmapped draws them): qq7, zorblax" in r.output
    r = invoke("classes", "-s", pool, "-p", raccoons, "--json")
    excluded = {e["label"]: e for e in json.loads(r.output)["sources"][0]["excluded"]}
    assert set(excluded) == {"zorblax", "qq7"} and excluded["qq7"]["rows"] == 3
    assert "no check says it is not a positive" in excluded["qq7"]["reason"]
    r = invoke("sample", "-q", "-p", raccoons, "-s", pool, "--count", 6, "--split", "1,0,0", "--workers", 1,
               "-o", tmp_path / "a")
    assert r.exit_code == 0, r.output
    assert {labels[n["row"]] for n in read_negatives(tmp_path / "a")} == {"chair", "bicycle"}
    record = read_record(tmp_path / "a")
    assert sorted(record["classes"]["sources"][0]["unmapped"]) == ["qq7", "zorblax"]
    assert not any("--allow-unmapped" in w for w in record["warnings"])
    # more than the placed classes hold is short: the unplaced ones do not fill it
    r = invoke("sample", "-q", "-p", raccoons, "-s", pool, "--count", 7, "-o", tmp_path / "b")
    assert r.exit_code == 3


def test_allow_unmapped_draws_them_and_says_so(tmp_path, raccoons, mixed_pool):
    pool, labels = mixed_pool
    r = invoke("sample", "-p", raccoons, "-s", pool, "--allow-unmapped", "--count", 12, "--split", "1,0,0",
               "--workers", 1, "-o", tmp_path / "a", "--report")
    assert r.exit_code == 0, r.output
    line = f"--allow-unmapped: 2 classes of {pool} (6 images) are not in WordNet and are drawn"
    assert line in r.output                                                      # stderr
    record = read_record(tmp_path / "a")
    assert any(w.startswith(line) for w in record["warnings"])                   # negmine.json
    assert record["options"]["allow_unmapped"] is True
    assert {labels[n["row"]] for n in read_negatives(tmp_path / "a")} == {"chair", "bicycle", "zorblax", "qq7"}
    report = "".join(p.read_text(errors="replace") for p in (tmp_path / "a" / "report").rglob("*.html"))
    assert "--allow-unmapped: 2 classes" in report


def test_a_pool_of_unplaced_names_is_refused(tmp_path, raccoons):
    pool = write_pool(tmp_path / "made-up", {"label": ["class0", "class1", "class2"] * 2})
    r = invoke("sample", "-q", "-p", raccoons, "-s", pool, "--count", 3, "-o", tmp_path / "a")
    assert r.exit_code == 1 and r.output.count("\n") == 1
    assert "none of its 3 classes ('class0', 'class1', 'class2')" in r.output and "names WordNet cannot place" in r.output
