"""`negmine sample` end to end, through the CLI as a user runs it."""

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import PLACEABLE, SHARED, install_in_hf_cache, make_parquet_repo, read_manifest
from negmine.cli import cli


def run(*args, ok=True):
    result = CliRunner().invoke(cli, ["sample", "--quiet", "--workers", "1", *map(str, args)])
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def files_under(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def test_writes_an_imagefolder_dataset_with_a_manifest(positives, pool, tmp_path):
    out = tmp_path / "ds"
    run("--positives", positives, "--source", pool, "--ratio", 1, "--seed", 7, "--out", out)
    rows = read_manifest(out)
    roles = Counter(r["role"] for r in rows)
    assert roles == {"positive": 20, "negative": 20}                     # ratio 1 x 20 positives
    # every manifest row is a file in the right place, with the right digest
    for r in rows:
        p = out / r["path"]
        assert p.is_file() and p.parts[-3:-1] == (r["split"], r["class"])
        assert hashlib.sha256(p.read_bytes()).hexdigest() == r["sha256"]
    neg = [r for r in rows if r["role"] == "negative"]
    assert {r["class"] for r in neg} == {"other"} and all(r["path"].endswith(".jpg") for r in neg)
    assert all(r["source"] == str(pool) and r["file"].startswith("data/train-") for r in neg)
    assert all(r["licence"] == "CC-BY-4.0" and Image.open(out / r["path"]).mode == "RGB" for r in neg)
    # per-class 80/10/10 splits: raccoon 12 -> 10/1/1, racoon 8 -> 6/1/1, other 20 -> 16/2/2
    per = Counter((r["split"], r["class"]) for r in rows)
    assert per[("train", "raccoon")] == 10 and per[("val", "racoon")] == 1 and per[("test", "other")] == 2
    assert per[("train", "other")] == 16
    record = json.loads((out / "negmine.json").read_text())
    assert record["seed"] == 7 and record["negatives"] == 20 and record["options"]["ratio"] == 1.0
    # the positives are copies: the user's files are untouched
    assert all((positives / r["file"]).read_bytes() == (out / r["path"]).read_bytes()
               for r in rows if r["role"] == "positive")


def test_same_seed_same_bytes_other_seed_other_draw(positives, pool, tmp_path):
    run("-p", positives, "-s", pool, "--seed", 3, "-o", tmp_path / "a")
    run("-p", positives, "-s", pool, "--seed", 3, "-o", tmp_path / "b")
    run("-p", positives, "-s", pool, "--seed", 4, "-o", tmp_path / "c")
    a, b, c = (tmp_path / x / "manifest.jsonl" for x in "abc")
    assert a.read_bytes() == b.read_bytes()
    # every file but the run record (which names its own --out) is identical
    strip = lambda d: {k: v for k, v in d.items() if k != "negmine.json"}
    assert strip(files_under(tmp_path / "a")) == strip(files_under(tmp_path / "b"))
    drawn = lambda m: {(r["file"], r["row"]) for r in map(json.loads, m.read_text().splitlines()) if r["role"] == "negative"}
    assert drawn(a) != drawn(c)


def test_worker_processes_do_not_change_the_result(positives, pool, tmp_path):
    run("-p", positives, "-s", pool, "--seed", 5, "-o", tmp_path / "serial")
    r = CliRunner().invoke(cli, ["sample", "-q", "--workers", "2", "-p", positives, "-s", pool, "--seed", 5,
                                 "-o", tmp_path / "multi"])
    assert r.exit_code == 0, r.output
    strip = lambda d: {k: v for k, v in d.items() if k != "negmine.json"}
    assert strip(files_under(tmp_path / "serial")) == strip(files_under(tmp_path / "multi"))


def test_draw_is_spread_over_a_class_sorted_single_shard(positives, tmp_path):
    # 20 classes x 50 rows, sorted by class in one shard: the first rows are all class 0
    repo = make_parquet_repo(tmp_path / "sorted", PLACEABLE[:20], 50, shards=1)
    install_in_hf_cache(repo, "someone/sorted-pool")
    out = tmp_path / "ds"
    run("-p", positives, "-s", "someone/sorted-pool", "--count", 40, "--seed", 1, "-o", out)
    labels = Counter(r["label"] for r in read_manifest(out) if r["role"] == "negative")
    assert len(labels) == 20 and set(labels.values()) == {2}             # stratified: 2 per class
    rows = [r["row"] for r in read_manifest(out) if r["role"] == "negative"]
    assert max(rows) > 900                                                # from the whole shard
    assert all(r["revision"] == "0123456789abcdef0123456789abcdef01234567" and r["source"] == "someone/sorted-pool"
               for r in read_manifest(out) if r["role"] == "negative")
    run("-p", positives, "-s", "someone/sorted-pool", "--count", 100, "--no-stratify", "--seed", 1,
        "-o", tmp_path / "uni")
    uni = Counter(r["label"] for r in read_manifest(tmp_path / "uni") if r["role"] == "negative")
    assert len(uni) > 12 and sum(uni.values()) == 100


def test_balanced_and_count(positives, pool, tmp_path):
    run("-p", positives, "-s", pool, "--balanced", "--seed", 1, "-o", tmp_path / "bal")
    neg = Counter(r["split"] for r in read_manifest(tmp_path / "bal") if r["role"] == "negative")
    assert sum(neg.values()) == 10                                        # median of 12 and 8
    run("-p", positives, "-s", pool, "--count", 33, "--split", "0.9,0.1", "--seed", 1, "-o", tmp_path / "cnt")
    rows = read_manifest(tmp_path / "cnt")
    neg = Counter(r["split"] for r in rows if r["role"] == "negative")
    # each split holds its share (29.7, 3.3) rounded down or up: a negative's split does not depend on
    # how many are asked for (sampling.plan.stable_splits), so the rounding is not always the nearest
    assert sum(neg.values()) == 33 and set(neg) == {"train", "val"} and neg["val"] in (3, 4)
    assert not (tmp_path / "cnt" / "test").exists()


def test_two_pools_mixed_by_weight(positives, pool, tmp_path):
    out = tmp_path / "ds"
    run("-p", positives, "-s", f"{pool}?weight=3", "-s", SHARED / "imagenet-500", "--count", 40, "--seed", 2, "-o", out)
    by_source = Counter(r["source"] for r in read_manifest(out) if r["role"] == "negative")
    assert by_source == {str(pool): 30, str(SHARED / "imagenet-500"): 10}


def test_short_pool_exits_3_unless_allowed(positives, pool, tmp_path):
    r = run("-p", positives, "-s", pool, "--count", 500, "-o", tmp_path / "x", ok=False)
    assert r.exit_code == 3 and "only 120 images" in r.output and "500 negatives needed" in r.output
    assert not (tmp_path / "x").exists()
    run("-p", positives, "-s", pool, "--count", 500, "--allow-short", "--seed", 1, "-o", tmp_path / "y")
    neg = Counter(r["split"] for r in read_manifest(tmp_path / "y") if r["role"] == "negative")
    assert neg == {"train": 96, "val": 12, "test": 12}


def test_bad_images_in_the_pool_are_skipped_and_replaced(positives, tmp_path):
    pool = tmp_path / "pool" / "stuff"
    pool.mkdir(parents=True)
    for name in ("truncated_jpeg.jpg", "broken.png", "decompression_bomb.gif", "hopper_orientation_6.jpg",
                 "pil_sample_cmyk.jpg", "transparent.png", "chi.gif", "flower.webp"):
        (pool / name).write_bytes((SHARED / "odd-encodings" / name).read_bytes())
    (pool / "copy-of-cmyk.jpg").write_bytes((SHARED / "odd-encodings" / "pil_sample_cmyk.jpg").read_bytes())
    out = tmp_path / "ds"
    run("-p", positives, "-s", tmp_path / "pool", "--count", 5, "--seed", 0, "-o", out)
    rows = [r for r in read_manifest(out) if r["role"] == "negative"]
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    assert len(rows) == 5
    kept = {r["file"] for r in rows}
    assert not kept & {"stuff/truncated_jpeg.jpg", "stuff/broken.png", "stuff/decompression_bomb.gif"}
    assert {"stuff/pil_sample_cmyk.jpg", "stuff/copy-of-cmyk.jpg"} - kept           # one copy only
    reasons = {r["file"]: r["reason"] for r in rejects}
    assert "decompression bomb" in reasons["stuff/decompression_bomb.gif"]
    assert any("exact duplicate" in v for v in reasons.values())
    rotated = next(r for r in rows if r["file"] == "stuff/hopper_orientation_6.jpg")
    assert Image.open(out / rotated["path"]).getexif().get(0x0112, 1) == 1


def test_output_loads_with_hf_imagefolder(positives, pool, tmp_path):
    import datasets

    out = tmp_path / "ds"
    run("-p", positives, "-s", pool, "--seed", 1, "-o", out)
    dd = datasets.load_dataset("imagefolder", data_dir=str(out))
    assert set(dd) == {"train", "validation", "test"}
    names = dd["train"].features["label"].names
    assert names == ["other", "raccoon", "racoon"]
    counts = Counter(names[i] for i in dd["train"]["label"])
    assert counts == {"other": 16, "raccoon": 10, "racoon": 6}


def test_out_is_protected(positives, pool, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    r = run("-p", positives, "-s", pool, "-o", mine, ok=False)
    assert r.exit_code == 1 and "not empty" in r.output
    r = run("-p", positives, "-s", pool, "-o", mine, "--overwrite", ok=False)
    assert r.exit_code == 1 and "did not write" in r.output and (mine / "thesis.txt").exists()
    out = tmp_path / "ds"
    run("-p", positives, "-s", pool, "--seed", 1, "-o", out)
    run("-p", positives, "-s", pool, "--seed", 2, "-o", out, "--overwrite")
    assert json.loads((out / "negmine.json").read_text())["seed"] == 2


def test_dry_run_writes_nothing_and_json_summary(positives, pool, tmp_path):
    r = run("-p", positives, "-s", pool, "--seed", 1, "--dry-run", "--json", "-o", tmp_path / "ds")
    plan = json.loads(r.output)
    assert not (tmp_path / "ds").exists()
    assert plan["negatives_needed"] == 20 and plan["pool_available"] == 120
    assert plan["splits"]["train"] == {"raccoon": 10, "racoon": 6, "other": 16}
    assert sum(plan["draw"][str(pool)].values()) == 20 and len(plan["draw"][str(pool)]) == 10
    io = plan["io"][str(pool)]
    shard_bytes = [p.stat().st_size for p in sorted((pool / "data").glob("*.parquet"))]
    assert 0 < io["image_bytes_to_read"] <= io["pool_image_bytes"] < sum(shard_bytes) and not io["remote"]
    one = json.loads(run("-p", positives, "-s", pool, "--seed", 1, "--count", 1, "--allow-missing-classes", "--dry-run", "--json",
                         "-o", tmp_path / "ds").output)["io"][str(pool)]
    assert one["image_bytes_to_read"] < io["pool_image_bytes"] / 1.5        # one shard's row group, not both
    r = run("-p", positives, "-s", pool, "--seed", 1, "--json", "-o", tmp_path / "ds")
    summary = json.loads(r.output)
    assert summary["negatives"] == 20 and summary["counts"]["train"]["other"] == 16


def test_seed_is_drawn_printed_and_recorded(positives, pool, tmp_path):
    r = CliRunner().invoke(cli, ["sample", "--workers", "1", "-p", positives, "-s", pool, "-o", tmp_path / "ds"])
    assert r.exit_code == 0
    seed = json.loads((tmp_path / "ds" / "negmine.json").read_text())["seed"]
    assert f"seed: {seed}" in r.output


def test_hostile_labels_never_escape_out(positives, tmp_path):
    repo = make_parquet_repo(tmp_path / "evil", ["../../../escape", "/etc/passwd", "CON", "a\\b"], 3,
                             string_labels=True)
    out = tmp_path / "nest" / "ds"
    # names no check can place: drawn only when allowed, and the run says so
    r = run("-p", positives, "-s", repo, "--count", 3, "--seed", 1, "-o", out, "--dry-run", "--json")
    left = {e["label"]: e["reason"] for e in json.loads(r.output)["classes"]["sources"][0]["excluded"]}
    assert "not in WordNet" in left["/etc/passwd"] and "--allow-unmapped" in left["/etc/passwd"]
    r = run("-p", positives, "-s", repo, "--count", 12, "--seed", 1, "-o", out, "--allow-unmapped")
    warned = json.loads((out / "negmine.json").read_text())["warnings"]
    assert any(w.startswith("--allow-unmapped: ") and "no check keeps the positives out" in w for w in warned)
    written = {p.resolve() for p in tmp_path.rglob("*") if p.is_file()} - {p.resolve() for p in repo.rglob("*")}
    written -= {p.resolve() for p in positives.rglob("*")}
    assert written and all(out.resolve() in p.parents for p in written)
    assert all(r["path"].count("/") == 2 for r in read_manifest(out))


@pytest.mark.parametrize("args,code,msg", [
    (["--ratio", "1", "--count", "3"], 1, "only one of"),
    (["--split", "0.5,0.2"], 1, "sum to 1"),
    (["--negative-class", "raccoon"], 1, "also a positive class"),
    # no negatives at all: a dataset without its negative class is refused, not written
    (["--ratio", "0"], 2, "--ratio 0 asks for no negatives"),
    (["--count", "0"], 2, "--count 0 asks for no negatives"),
    (["--ratio", "0,1"], 2, "--ratio 0 asks for no negatives"),
    (["--ratio", "0.01"], 1, "class 'other' (the negatives) would have no image"),   # 20 positives: 0.2 rounds to 0
])
def test_bad_options_are_one_line_errors(positives, pool, tmp_path, args, code, msg):
    r = run("-p", positives, "-s", pool, "-o", tmp_path / "ds", *args, ok=False)
    assert r.exit_code == code and msg in r.output and "Traceback" not in r.output
    assert not (tmp_path / "ds").exists()


def test_empty_or_missing_positives(pool, tmp_path):
    (tmp_path / "empty").mkdir()
    r = run("-p", tmp_path / "empty", "-s", pool, "-o", tmp_path / "ds", ok=False)
    assert r.exit_code == 1 and "holds no images" in r.output
    r = run("-p", tmp_path / "nope", "-s", pool, "-o", tmp_path / "ds", ok=False)
    assert r.exit_code == 1 and "is not a folder" in r.output
    r = run("-p", tmp_path / "empty", "-s", "nobody/none", "-o", tmp_path / "ds", ok=False)
    assert r.exit_code == 1


def test_unreachable_hub_repo_exit_code(positives, tmp_path):
    r = run("-p", positives, "-s", "nobody/not-cached", "-o", tmp_path / "ds", ok=False)
    assert r.exit_code == 5 and "not in the local Hugging Face cache" in r.output


def test_one_folder_of_images_is_one_class_and_links(pool, tmp_path):
    src = sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[:6]
    single = tmp_path / "raccoons"
    single.mkdir()
    for f in src:
        (single / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "ds"
    run("-p", single, "-s", pool, "--link", "hardlink", "--seed", 1, "-o", out)
    rows = read_manifest(out)
    assert {r["class"] for r in rows} == {"raccoons", "other"}
    pos = [out / r["path"] for r in rows if r["role"] == "positive"]
    assert len(pos) == 6 and all(p.stat().st_nlink == 2 for p in pos)
    run("-p", single, "-s", pool, "--link", "symlink", "--seed", 1, "-o", tmp_path / "sym")
    assert all((tmp_path / "sym" / r["path"]).is_symlink() for r in read_manifest(tmp_path / "sym")
               if r["role"] == "positive")
