"""Which member of a WebDataset sample is its label: `.cls`, else a `.json` label field; a `.txt` is a
caption (img2dataset, LAION) unless `?label=txt` names it; several `.json` label fields are refused.
Shards are built at test time from real ImageNet photos of ../shared/data/imagenet-500."""

import csv
import io
import json
import tarfile

import pytest
from click.testing import CliRunner

from conftest import SHARED, read_manifest
from negmine.cli import cli

ROWS = list(csv.DictReader((SHARED / "imagenet-500" / "classes.csv").open(encoding="utf-8")))


def sample(*args):
    return CliRunner().invoke(cli, ["sample", "--quiet", "--workers", "1", *map(str, args)])


def add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def photo(row: dict) -> bytes:
    return (SHARED / "imagenet-500" / row["file"]).read_bytes()


def laion_shard(path, rows, *, cls: bool = False):
    """img2dataset's layout: KEY.jpg, KEY.txt (the caption), KEY.json (url, caption, size, ...)."""
    with tarfile.open(path, "w") as tf:
        for k, row in enumerate(rows):
            key = f"{k:09d}"
            caption = f"a photo of a {row['name'].split(',')[0]} on a sunny day"
            add(tf, f"{key}.jpg", photo(row))
            add(tf, f"{key}.txt", caption.encode())
            add(tf, f"{key}.json", json.dumps({"url": f"https://example.org/{key}.jpg", "caption": caption,
                                               "key": key, "status": "success", "width": int(row["width"]),
                                               "height": int(row["height"])}).encode())
            if cls:
                add(tf, f"{key}.cls", str(int(row["class_index"])).encode())


@pytest.fixture
def dogs_and_others():
    """ImageNet photos: 6 dogs (class indexes 151-268) and 14 classes that are no dog."""
    dogs = [r for r in ROWS if 151 <= int(r["class_index"]) <= 268][:6]
    others = [r for r in ROWS if int(r["class_index"]) > 400][:14]
    return dogs, others


def test_a_caption_is_no_class_name_a_laion_shard_is_refused_as_unlabelled(positives, tmp_path, dogs_and_others):
    dogs, others = dogs_and_others
    pool = tmp_path / "laion"
    pool.mkdir()
    laion_shard(pool / "00000.tar", dogs + others)
    dogpos = tmp_path / "pos" / "dog"
    dogpos.mkdir(parents=True)
    for f in sorted((positives / "raccoon").iterdir())[:3]:          # any photos: the class name is what counts
        (dogpos / f.name).write_bytes(f.read_bytes())
    r = sample("-p", dogpos.parent, "-s", pool, "--count", 6, "--seed", 0, "-o", tmp_path / "ds")
    assert r.exit_code != 0 and "Traceback" not in r.output
    line = r.output.strip()
    assert len(line.splitlines()) == 1 and "none of its 20 images carries a label" in line
    assert "?label=txt" in line and "--allow-unlabelled" in line
    assert not (tmp_path / "ds").exists()
    # with the opt-in they are drawn as unlabelled images and the run says so; no caption became a class
    r = sample("-p", dogpos.parent, "-s", pool, "--count", 6, "--seed", 0, "--allow-unlabelled",
               "-o", tmp_path / "opt")
    assert r.exit_code == 0, r.output
    negatives = [x for x in read_manifest(tmp_path / "opt") if x["role"] == "negative"]
    assert len(negatives) == 6 and all(x["label"] is None for x in negatives)
    record = json.loads((tmp_path / "opt" / "negmine.json").read_text())
    assert any("carry no label" in w and "--allow-unlabelled" in w for w in record["warnings"])


def test_cls_beside_a_caption_is_the_label(positives, tmp_path, dogs_and_others):
    dogs, others = dogs_and_others
    pool = tmp_path / "wds"
    pool.mkdir()
    laion_shard(pool / "00000.tar", dogs + others, cls=True)
    # .cls ints with no names on a card are class ids no check can place (152 is no WordNet number)
    r = sample("-p", positives, "-s", pool, "--count", 10, "--seed", 0, "-o", tmp_path / "ds")
    assert r.exit_code == 1 and "bare class ids" in r.output
    r = sample("-p", positives, "-s", pool, "--count", 10, "--seed", 0, "-o", tmp_path / "ds", "--allow-unmapped")
    assert r.exit_code == 0, r.output
    negatives = [x for x in read_manifest(tmp_path / "ds") if x["role"] == "negative"]
    by_key = {f"{k:09d}.jpg": r["class_index"] for k, r in enumerate(dogs + others)}
    assert negatives and all(x["label"] == by_key[x["member"]] for x in negatives)


def test_label_txt_reads_the_txt_member_as_the_class_name(tmp_path, dogs_and_others):
    # a shard whose .txt holds class names, as the user says with ?label=txt: dog classes are then excluded
    dogs, others = dogs_and_others
    pool = tmp_path / "wds"
    pool.mkdir()
    with tarfile.open(pool / "00000.tar", "w") as tf:
        for k, row in enumerate(dogs + others):
            add(tf, f"s{k:03d}.jpg", photo(row))
            add(tf, f"s{k:03d}.txt", row["wnid"].encode())
    pos = tmp_path / "pos" / "dog"
    pos.mkdir(parents=True)
    for row in [r for r in ROWS if 151 <= int(r["class_index"]) <= 268][6:9]:
        (pos / row["file"].rsplit("/", 1)[-1]).write_bytes(photo(row))
    r = sample("-p", pos.parent, "-s", pool, "--count", 6, "--seed", 0, "-o", tmp_path / "ds")
    assert r.exit_code != 0 and "?label=txt" in r.output               # unnamed, a .txt is no label
    r = sample("-p", pos.parent, "-s", f"{pool}?label=txt", "--allow-short", "--count", 30, "--seed", 0,
               "-o", tmp_path / "ok")
    assert r.exit_code in (0, 3), r.output
    negatives = [x for x in read_manifest(tmp_path / "ok") if x["role"] == "negative"]
    assert {x["label"] for x in negatives} == {r["wnid"] for r in others}   # every dog class kept out


def test_two_json_label_fields_are_refused_naming_them(positives, tmp_path, dogs_and_others):
    dogs, others = dogs_and_others
    pool = tmp_path / "wds"
    pool.mkdir()
    with tarfile.open(pool / "00000.tar", "w") as tf:
        for k, row in enumerate(dogs + others):
            add(tf, f"s{k:03d}.jpg", photo(row))
            add(tf, f"s{k:03d}.json", json.dumps({"label": int(row["class_index"]), "wnid": row["wnid"]}).encode())
    r = sample("-p", positives, "-s", pool, "--count", 6, "--seed", 0, "-o", tmp_path / "ds")
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1, r.output
    assert "2 label columns ('label', 'wnid')" in r.output and "?label=NAME" in r.output
    r = sample("-p", positives, "-s", f"{pool}?label=wnid", "--count", 6, "--seed", 0, "-o", tmp_path / "ok")
    assert r.exit_code == 0, r.output
    assert {x["label"] for x in read_manifest(tmp_path / "ok") if x["role"] == "negative"} <= {
        r["wnid"] for r in dogs + others}
