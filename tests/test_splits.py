"""Splits every trainer reads the same way: duplicates never straddle splits, every class in every
split (or a clear error), ratios on what was written, and every input file accounted for."""

import io
import json
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from conftest import jpeg_bytes, read_manifest
from negmine.cli import cli


def run(*args):
    return CliRunner().invoke(cli, ["sample", "--quiet", "--workers", "1", *map(str, args)])


def ok(*args) -> dict:
    r = run(*args, "--json")
    assert r.exit_code == 0, r.output + repr(r.exception)
    return json.loads(r.output)


def _resized(data: bytes, size) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).resize(size, Image.Resampling.BILINEAR).save(buf, "JPEG", quality=70)
    return buf.getvalue()


def _positives_with_duplicates(root: Path) -> dict[str, list[str]]:
    """Class a: 10 distinct pictures plus, for 3 of them, a byte copy and for 3 others a resized,
    re-encoded copy (a near duplicate); class b: 8 distinct. Returns the expected groups."""
    a, b = root / "a", root / "b"
    a.mkdir(parents=True)
    b.mkdir()
    groups = {}
    for k in range(10):
        data = jpeg_bytes(1000 + k, (96, 72))
        (a / f"img{k}.jpg").write_bytes(data)
        if k < 3:
            (a / f"copy{k}.jpg").write_bytes(data)
            groups[f"a/img{k}.jpg"] = ["a/copy%d.jpg" % k, f"a/img{k}.jpg"]
        elif k < 6:
            (a / f"small{k}.jpg").write_bytes(_resized(data, (64, 48)))
            groups[f"a/img{k}.jpg"] = [f"a/img{k}.jpg", f"a/small{k}.jpg"]
    for k in range(8):
        (b / f"b{k}.jpg").write_bytes(jpeg_bytes(2000 + k, (96, 72)))
    return groups


def test_exact_and_near_duplicate_positives_go_to_one_split(pool, tmp_path):
    expected = _positives_with_duplicates(tmp_path / "pos")
    for seed in range(4):
        out = tmp_path / f"ds{seed}"
        s = ok("-p", tmp_path / "pos", "-s", pool, "--split", "0.5,0.5", "--seed", seed, "-o", out)
        split = {r["file"]: r["split"] for r in read_manifest(out) if r["role"] == "positive"}
        assert len(split) == 24                                     # all kept: grouped, not dropped
        for members in expected.values():
            assert len({split[f] for f in members}) == 1, (seed, members, split)
        listed = sorted(sorted(g["files"]) for g in s["duplicate_positives"])
        assert listed == sorted(expected.values())
        assert all(g["split"] == split[g["files"][0]] for g in s["duplicate_positives"])
        record = json.loads((out / "negmine.json").read_text())
        assert len(record["duplicate_positives"]) == 6
        # every class still in every split, in the asked proportions as far as whole groups allow
        per = Counter((r["split"], r["class"]) for r in read_manifest(out))
        assert per[("train", "b")] == per[("val", "b")] == 4
        assert abs(per[("train", "a")] - per[("val", "a")]) <= 2


def test_the_summary_line_names_the_duplicates(pool, tmp_path):
    _positives_with_duplicates(tmp_path / "pos")
    r = run("-p", tmp_path / "pos", "-s", pool, "--seed", 1, "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    assert "6 groups of duplicate positives (12 images)" in r.output and "a/copy0.jpg = a/img0.jpg" in r.output
    dry = run("-p", tmp_path / "pos", "-s", pool, "--seed", 1, "--dry-run", "-o", tmp_path / "plan")
    assert dry.exit_code == 0 and "6 groups of duplicate positives (12 images)" in dry.output
    rep = CliRunner().invoke(cli, ["report", str(tmp_path / "ds")])
    assert rep.exit_code == 0 and "duplicate positives: 6 groups, each in one split: a/copy0.jpg = a/img0.jpg" in rep.output
    page = (tmp_path / "ds" / "report" / "report.html").read_text()
    assert "Duplicate positives (6 groups, each in one split)" in page and "a/small3.jpg" in page


def test_dedup_positives_keeps_one_per_group_and_says_which(pool, tmp_path):
    _positives_with_duplicates(tmp_path / "pos")
    out = tmp_path / "ds"
    s = ok("-p", tmp_path / "pos", "-s", pool, "--dedup-positives", "--ratio", 1, "--seed", 3, "-o", out)
    files = {r["file"] for r in read_manifest(out) if r["role"] == "positive"}
    assert len(files) == 18 and s["positives"] == 18 and s["negatives"] == 18
    # exact copies: the tie on size goes to the first path; resized copies: the larger picture stays
    assert {"a/copy0.jpg", "a/img3.jpg"} <= files and not {"a/img0.jpg", "a/small3.jpg"} & files
    rejects = {x["file"]: x["reason"] for x in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    assert rejects["a/small3.jpg"] == "duplicate of the positive a/img3.jpg (--dedup-positives)"
    assert {g["kept"] for g in s["duplicate_positives"]} == {"a/copy0.jpg", "a/copy1.jpg", "a/copy2.jpg",
                                                              "a/img3.jpg", "a/img4.jpg", "a/img5.jpg"}


def _classes(root: Path, sizes: dict[str, int], base: int = 3000) -> Path:
    for i, (cls, n) in enumerate(sizes.items()):
        (root / cls).mkdir(parents=True)
        for k in range(n):
            (root / cls / f"{k}.jpg").write_bytes(jpeg_bytes(base + 100 * i + k, (96, 72)))
    return root


def test_a_class_too_small_for_every_split_is_refused_before_any_work(pool, tmp_path):
    pos = _classes(tmp_path / "pos", {"bear": 10, "tick": 2})
    r = run("-p", pos, "-s", pool, "--seed", 1, "-o", tmp_path / "ds")
    assert r.exit_code == 1 and "class 'tick' has 2 usable images" in r.output and "at least 3" in r.output
    assert "--allow-missing-classes" in r.output and not (tmp_path / "ds").exists()
    s = ok("-p", pos, "-s", pool, "--seed", 1, "--allow-missing-classes", "-o", tmp_path / "ds")
    assert s["counts"]["val"].get("tick", 0) + s["counts"]["test"].get("tick", 0) < 2
    assert ok("-p", pos, "-s", pool, "--seed", 1, "--split", "0.5,0.5", "-o", tmp_path / "two")["counts"]["val"]["tick"] == 1


def test_duplicates_count_once_when_a_class_must_fill_every_split(pool, tmp_path):
    pos = _classes(tmp_path / "pos", {"bear": 10, "three": 3})
    (pos / "three" / "2.jpg").write_bytes((pos / "three" / "1.jpg").read_bytes())
    r = run("-p", pos, "-s", pool, "--seed", 1, "-o", tmp_path / "ds")
    assert r.exit_code == 1 and "class 'three' has 3 usable images (2 once duplicates are grouped)" in r.output


def test_a_negative_class_too_small_for_every_split_is_refused(pool, tmp_path):
    pos = _classes(tmp_path / "pos", {"bear": 10})
    r = run("-p", pos, "-s", pool, "--count", 2, "--seed", 1, "-o", tmp_path / "ds")
    assert r.exit_code == 1 and "class 'other' (the negatives) would have 2 images" in r.output


def test_ratio_and_balanced_count_the_positives_written(pool, tmp_path):
    pos = _classes(tmp_path / "pos", {"a": 10, "b": 6})
    (pos / "a" / "broken.jpg").write_bytes(jpeg_bytes(1)[:200])          # truncated: rejected
    (pos / "a" / "notes.txt").write_text("not a picture")
    (pos / "a" / ".DS_Store").write_bytes(b"\0\1")
    (pos / "b" / ".hidden.jpg").write_bytes(jpeg_bytes(2))
    out = tmp_path / "ds"
    s = ok("-p", pos, "-s", pool, "--ratio", 1, "--seed", 1, "-o", out)
    assert s["positives"] == 16 and s["negatives"] == 16 and s["negatives_needed"] == 16
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    by_file = {x["file"]: x for x in rejects if x["role"] == "positive"}
    assert set(by_file) == {"a/broken.jpg", "a/notes.txt", "a/.DS_Store", "b/.hidden.jpg"}
    assert "hidden" in by_file["a/.DS_Store"]["reason"] and "not an image" in by_file["a/notes.txt"]["reason"]
    assert s["skipped"] == 3 and s["rejected"] >= 1
    assert ok("-p", pos, "-s", pool, "--balanced", "--seed", 1, "-o", tmp_path / "bal")["negatives"] == 8


def test_images_are_recognised_by_content_in_positives_and_folder_pools(tmp_path):
    pos, pool = tmp_path / "pos" / "bird", tmp_path / "pool"
    pos.mkdir(parents=True)
    names = ["a.JPG", "b.jpe", "c.JFIF", "d.jif", "e", "f.Jpeg", "g.dat", "h.jpg"]
    for k, n in enumerate(names):
        (pos / n).write_bytes(jpeg_bytes(10 + k, (96, 72)))
    for cls in ("plane", "ship"):
        (pool / cls).mkdir(parents=True)
        for k, n in enumerate(names):
            (pool / cls / n).write_bytes(jpeg_bytes(100 + k + 20 * len(cls), (96, 72)))
    out = tmp_path / "ds"
    s = ok("-p", tmp_path / "pos", "-s", pool, "--count", 16, "--split", "0.5,0.5", "--seed", 1, "-o", out)
    rows = read_manifest(out)
    assert sorted(r["file"] for r in rows if r["role"] == "positive") == sorted(f"bird/{n}" for n in names)
    assert len([r for r in rows if r["role"] == "negative"]) == 16 and s["skipped"] == 0
    assert {Path(r["path"]).suffix for r in rows} == {".jpg"}


def test_hf_format_loads_with_one_class_label_in_every_split(pool, tmp_path):
    import datasets

    pos = _classes(tmp_path / "pos", {"bear": 10, "tick": 2})            # tick misses a split
    out = tmp_path / "ds"
    ok("-p", pos, "-s", pool, "--seed", 1, "--allow-missing-classes", "--format", "hf", "-o", out)
    dd = datasets.load_dataset(str(out))
    rows = read_manifest(out)
    classes = (out / "classes.txt").read_text().split()
    assert classes == ["bear", "other", "tick"]
    assert set(dd) == {"train", "validation", "test"}                  # the Hub's split names
    ours = {"validation": "val"}
    missing = [s for s in dd if "tick" not in {r["class"] for r in rows if r["split"] == ours.get(s, s)}]
    assert missing                                                       # the case that shifted ids before
    for split, d in dd.items():
        assert d.features["label"].names == classes                     # same names, same ids everywhere
        expected = Counter(r["class"] for r in rows if r["split"] == ours.get(split, split))
        assert Counter(classes[i] for i in d["label"]) == expected
    # each image is a file the manifest lists with that label (names repeat across classes: compare pairs)
    table = dd["train"].cast_column("image", datasets.Image(decode=False))
    assert Counter((item["image"]["path"], classes[item["label"]]) for item in table) == \
        Counter((Path(r["path"]).name, r["class"]) for r in rows if r["split"] == "train")


def test_hf_card_pushed_keeps_the_features_and_configs(positives, pool, tmp_path, monkeypatch):
    import huggingface_hub
    import yaml

    calls = {}
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: f"https://hf.co/datasets/{repo_id}")
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_file", lambda self, **kw: calls.setdefault("card", kw))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **kw: calls.setdefault("folder", kw))
    ok("-p", positives, "-s", pool, "--seed", 1, "--format", "hf", "--push-to-hub", "me/x", "-o", tmp_path / "ds")
    card = calls["card"]["path_or_fileobj"].decode()
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*"}
    assert header["dataset_info"]["features"][1]["dtype"]["class_label"]["names"] == {
        "0": "other", "1": "raccoon", "2": "racoon"}
    assert "ds.class_encode_column" not in card and header["license"] == "cc-by-4.0"


def test_out_inside_any_input_is_refused_in_one_line_by_every_command(pool, tmp_path):
    pos = _classes(tmp_path / "pos", {"cat": 4, "dog": 4})
    folder_pool = _classes(tmp_path / "fpool", {"wallpaper": 10}, base=5000)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("filename,xmin,ymin,xmax,ymax,class\ncat/0.jpg,2,2,40,30,cat\n")
    scores = tmp_path / "scores.csv"
    scores.write_text("id,score\nwallpaper/0.jpg,0.9\n")
    base = ["sample", "-q", "--workers", "1", "--seed", 1, "--count", 8]
    cases = [
        (base + ["-p", pos, "-s", pool, "-o", pos / "with-other"], "inside --positives"),
        (base + ["-p", pos, "-s", folder_pool, "-o", folder_pool / "x"], "inside --source"),
        (base + ["-p", pos, "-s", pool, "-o", pos], "inside --positives"),               # --out is the input
        (base + ["-p", pos, "-s", pool, "-o", tmp_path, "--overwrite"], "is inside --out"),  # input in --out
        (["cutout", "-q", "--images", pos, "--boxes", boxes, "-o", pos / "bg"], "inside --images"),
        (["dedup", "-q", pos, "--out", pos / "d"], "inside FOLDER"),
        (["mine", "-q", "--scores", scores, "--pool", folder_pool, "--count", 1, "-o", folder_pool / "m"],
         "inside --pool"),
    ]
    for args, says in cases:
        r = CliRunner().invoke(cli, list(map(str, args)))
        assert r.exit_code == 1 and says in r.output and r.output.count("\n") == 1, (args, r.output)
    assert sorted(p.name for p in pos.iterdir()) == ["cat", "dog"]                       # nothing written there
    assert sorted(p.name for p in folder_pool.iterdir()) == ["wallpaper"]


def _libjpeg_warnings(path: Path) -> str:
    """What OpenCV's libjpeg prints decoding `path` (C-level stderr, so in a child process)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", "import cv2, sys; assert cv2.imread(sys.argv[1]) is not None", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stderr


def _junk_before_marker(data: bytes) -> bytes:
    """The JPEG with 5 stray bytes between its first two segments, as scanners and editors leave."""
    first_end = 4 + int.from_bytes(data[4:6], "big")             # SOI + the first segment (APP0)
    return data[:first_end] + b"\x00junk" + data[first_end:]


def test_a_jpeg_decoders_warn_about_is_reencoded_not_copied(tmp_path):
    pos, pool = tmp_path / "pos", tmp_path / "pool"
    _classes(pos, {"a": 6})
    _classes(pool, {"p": 8}, base=5000)
    bad_pos, bad_pool = pos / "a" / "junk.jpg", pool / "p" / "junk.jpg"
    bad_pos.write_bytes(_junk_before_marker(jpeg_bytes(77, (96, 72))))
    bad_pool.write_bytes(_junk_before_marker(jpeg_bytes(78, (96, 72))))
    assert "extraneous bytes" in _libjpeg_warnings(bad_pos)
    out = tmp_path / "ds"
    ok("-p", pos, "-s", pool, "--count", 9, "--split", "0.5,0.5", "--hash", "none", "--seed", 1, "-o", out)
    rows = {(r["role"], r["file"]): r for r in read_manifest(out)}
    for key in (("positive", "a/junk.jpg"), ("negative", "p/junk.jpg")):
        r = rows[key]
        assert r["reencoded"] is True and _libjpeg_warnings(out / r["path"]) == ""
    clean = rows[("positive", "a/0.jpg")]
    assert clean["reencoded"] is False and (out / clean["path"]).read_bytes() == (pos / "a" / "0.jpg").read_bytes()


def test_dihedral_also_groups_mirrored_positives_real_photos(pool, tmp_path):
    import shutil

    from conftest import SHARED

    ukb = SHARED / "near-dups-ukbench"
    pos = tmp_path / "pos" / "gadget"
    pos.mkdir(parents=True)
    for f in sorted((ukb / "base_images").glob("*.jpg")):
        shutil.copy(f, pos / f.name)
    for name in ("ukbench00120_hflip.jpg", "ukbench00120_resize.jpg", "ukbench09268_corrupt.jpg"):
        shutil.copy(ukb / "transformed" / name, pos / name)
    # groups.csv: the resize is 0 bits from its original, the mirror 32 (a phash is not flip-invariant)
    plain = ok("-p", pos.parent, "-s", pool, "--split", "0.5,0.5", "--seed", 2, "-o", tmp_path / "a")
    assert [g["files"] for g in plain["duplicate_positives"]] == [
        ["gadget/ukbench00120.jpg", "gadget/ukbench00120_resize.jpg"]]
    flips = ok("-p", pos.parent, "-s", pool, "--split", "0.5,0.5", "--seed", 2, "--dihedral", "-o", tmp_path / "b")
    assert [g["files"] for g in flips["duplicate_positives"]] == [
        ["gadget/ukbench00120.jpg", "gadget/ukbench00120_hflip.jpg", "gadget/ukbench00120_resize.jpg"]]
    split = {r["file"]: r["split"] for r in read_manifest(tmp_path / "b")}
    assert len({split[f] for f in flips["duplicate_positives"][0]["files"]}) == 1
    rejects = [json.loads(x) for x in (tmp_path / "b" / "rejects.jsonl").read_text().splitlines()]
    corrupt = next(x for x in rejects if x["file"] == "gadget/ukbench09268_corrupt.jpg")
    assert "skipped" not in corrupt and flips["positives"] == 12 and flips["negatives"] == 12


def test_yolo_det_data_yaml_resolves_from_any_working_directory(tmp_path, pool):
    import yaml

    from conftest import SHARED

    rac = SHARED / "raccoon-voc"
    pos = tmp_path / "objects" / "raccoon"
    pos.mkdir(parents=True)
    for p in sorted((rac / "images").glob("*.jpg"))[:20]:
        (pos / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "det"
    ok("-p", pos.parent, "-s", pool, "--format", "yolo-det", "--boxes", rac / "annotations", "--ratio", 0.1,
       "--split", "0.9,0.1", "--seed", 1, "-o", out)
    data = yaml.safe_load((out / "data.yaml").read_text())
    # Ultralytics joins a relative `path` to the working directory, not to data.yaml's folder (checked
    # with ultralytics 8.4: `path: .` fails unless run from inside the dataset): an absolute one
    # reads the same from anywhere
    root = Path(data["path"])
    assert root.is_absolute() and root == out.resolve()
    assert all((root / data[s]).is_dir() for s in ("train", "val"))
