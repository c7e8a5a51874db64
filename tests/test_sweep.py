"""Sweeps (`sample --ratio 0.5,1,2`): one dataset per value on one val/test; `--eval-from OUT`; and the
split rule that lets separate runs of one seed share val/test. Real photos: raccoon positives, an
ImageNet folder pool (class folders named by wnid)."""

import hashlib
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SHARED, raccoon_folder, read_manifest, read_record, start_held
from negmine.cli import cli
from negmine.sampling.plan import stable_splits
from negmine.seeds import rng_for

RAC = SHARED / "raccoon-voc"


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


@pytest.fixture
def inpool(tmp_path) -> Path:
    """60 ImageNet photos of artefacts (n03...), each in a folder named by its wnid."""
    root = tmp_path / "inpool"
    for f in sorted((SHARED / "imagenet-500" / "images").glob("n03*.JPEG"))[:60]:
        (root / f.name.split("_")[0]).mkdir(parents=True)
        shutil.copy(f, root / f.name.split("_")[0] / f.name)
    return root


def sample(positives, pool, out, *extra):
    r = invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", pool, "--seed", 3, "-o", out, *extra)
    assert r.exit_code == 0, r.output
    return r


def files(folder: Path, splits) -> dict[str, str]:
    """rel path -> sha256 of every image of `splits` (by the manifest), checked against the disk."""
    out = {}
    for r in read_manifest(folder):
        if r["split"] in splits:
            digest = hashlib.sha256((folder / r["path"]).read_bytes()).hexdigest()
            assert digest == r["sha256"]
            out[r["path"]] = digest
    return out


def train_negatives(folder: Path) -> set[str]:
    return {r["sha256"] for r in read_manifest(folder) if r["role"] == "negative" and r["split"] == "train"}


@pytest.mark.parametrize("fmt", ["imagefolder", "hf", "yolo-det"])
def test_a_sweep_writes_members_on_one_val_and_test(positives, inpool, tmp_path, fmt):
    out = tmp_path / "sweep"
    extra = ("--boxes", RAC / "annotations") if fmt == "yolo-det" else ()
    r = invoke("sample", "--workers", "1", "-p", positives, "-s", inpool, "--seed", 3, "-o", out, "--format", fmt,
               "--ratio", "0.5,1,2", *extra)
    assert r.exit_code == 0, r.output
    assert "sweep: writing ratio-0.5" in r.output            # progress on stderr (CliRunner mixes them)
    names = ["ratio-0.5", "ratio-1", "ratio-2"]
    record = json.loads((out / "sweep.json").read_text())
    assert record["members"] == names and record["largest"] == "ratio-2" and record["shared"]["splits"] == ["val", "test"]
    assert not (out / ".negmine-sweep").exists()
    shared = [files(out / m, ("val", "test")) for m in names]
    assert shared[0] == shared[1] == shared[2] and len(shared[0]) >= 8        # same paths, same bytes
    assert record["shared"]["link"] == "hardlink"
    a = next(iter(shared[0]))
    assert (out / names[0] / a).stat().st_ino == (out / names[2] / a).stat().st_ino
    trains = [train_negatives(out / m) for m in names]
    assert trains[0] < trains[1] < trains[2]                                  # nested
    positives_written = 20
    for m, ratio, train in zip(names, (0.5, 1, 2), trains):
        rec = read_record(out / m)
        assert rec["negatives_needed"] == round(ratio * positives_written) and rec["options"]["ratio"] == ratio
        assert rec["sweep"]["member"] == m and rec["sweep"]["train_negatives"] == len(train)
        assert rec["sweep"]["shared_link"] == "hardlink"
        assert record["train_negatives"][m] == len(train)
        for f in ("manifest.jsonl", "rejects.jsonl", "classes.txt", "class_weights.json"):
            assert (out / m / f).is_file(), (m, f)
    # each member's train negatives are those the run of its own value draws with this seed
    single = tmp_path / "single-0.5"
    sample(positives, inpool, single, "--format", fmt, "--ratio", 0.5, *extra)
    assert train_negatives(single) == trains[0]
    assert set(files(single, ("val", "test")).values()) <= set(shared[0].values())
    for m in names:
        load_member(out / m, fmt)


def load_member(folder: Path, fmt: str) -> None:
    """Load a member with the format's loader (datasets) or by its documented rules (YOLO)."""
    rows = read_manifest(folder)
    if fmt in ("imagefolder", "hf"):
        import datasets

        dd = (datasets.load_dataset(str(folder)) if fmt == "hf"
              else datasets.load_dataset("imagefolder", data_dir=str(folder)))
        hub = {"train": "train", "validation": "val", "test": "test"}
        for split, ours in hub.items():
            names = dd[split].features["label"].names
            assert sorted(names) == ["other", "raccoon", "racoon"]
            assert Counter(names[i] for i in dd[split]["label"]) == \
                Counter(r["class"] for r in rows if r["split"] == ours)
        return
    data = (folder / "data.yaml").read_text()
    assert f"path: {json.dumps(str(folder.resolve()))}" in data and "val: images/val" in data
    for r in rows:
        img = folder / r["path"]
        label = folder / "labels" / r["split"] / (img.stem + ".txt")
        lines = label.read_text().splitlines()
        assert (lines == []) == (r["role"] == "negative"), r


def test_a_count_sweep_and_its_dry_run(positives, inpool, tmp_path):
    out = tmp_path / "sweep"
    r = invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", inpool, "--seed", 3, "-o", out,
               "--count", "10,30", "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    assert [m["name"] for m in plan["sweep"]["members"]] == ["count-10", "count-30"]
    assert [m["negatives_needed"] for m in plan["sweep"]["members"]] == [10, 30]
    assert not out.exists()                                                   # a dry run writes nothing
    r = invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", inpool, "--seed", 3, "-o", out,
               "--count", "30,10", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert [m["sweep"]["member"] for m in summary["members"]] == ["count-10", "count-30"]
    for m, planned in zip(summary["members"], plan["sweep"]["members"]):
        assert m["sweep"]["train_negatives"] == planned["train"]
        assert m["counts"]["val"]["other"] == planned["val"] and m["counts"]["test"]["other"] == planned["test"]


@pytest.mark.parametrize("value, message", [
    ("1,x", "numbers separated by commas"), ("1,1", "given twice"), ("-1,2", "above 0"), ("nan,1", "above 0"),
    ("0,1", "--ratio 0 asks for no negatives"),
    ("1,", "numbers"),
])
def test_bad_lists_fail_in_one_line(positives, inpool, tmp_path, value, message):
    r = invoke("sample", "-q", "-p", positives, "-s", inpool, "-o", tmp_path / "x", f"--ratio={value}")
    assert r.exit_code == 2 and message in r.output.splitlines()[-1]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("extra, message", [
    (("--ratio", "1,2", "--count", "5"), "one list"),
    (("--count", "5,10", "--balanced"), "one list"),
    (("--ratio", "1,2", "--push-to-hub", "me/ds"), "--push-to-hub"),
    (("--ratio", "1,2", "--synthetic", "0.5", "--boxes", RAC / "annotations"), "--synthetic"),
])
def test_what_a_sweep_cannot_do_is_refused(positives, inpool, tmp_path, extra, message):
    r = invoke("sample", "-q", "-p", positives, "-s", inpool, "-o", tmp_path / "x", *extra)
    assert r.exit_code == 1 and r.output.count("\n") == 1 and message in r.output, r.output
    r = invoke("sample", "-q", "-p", positives, "-s", inpool, "-o", "memory://bucket/x", "--ratio", "1,2")
    assert r.exit_code == 1 and "local folder" in r.output


def test_an_interrupted_sweep_is_refused_then_resumed_to_the_same_bytes(positives, inpool, tmp_path):
    args = ["-p", positives, "-s", inpool, "--ratio", "0.5,1", "--workers", "1", "-q"]
    ref = tmp_path / "ref"
    sample(positives, inpool, ref, "--ratio", "0.5,1")
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "negmine", "sample", *map(str, args), "--seed", "3", "-o", str(out)]
    proc, held = start_held(cmd, tmp_path / "hold", 1, stderr=subprocess.PIPE, text=True)
    assert held
    proc.kill()
    proc.communicate()
    assert (out / ".negmine-sweep").is_dir() and not (out / "sweep.json").exists()
    r = invoke("sample", *args, "--seed", 3, "-o", out)
    assert r.exit_code == 1 and "interrupted sweep" in r.output and "--resume" in r.output
    # a refused --resume says exactly what differs, in one line
    r = invoke("sample", *args[:5], "0.5,2", *args[6:], "--resume", "-o", out)
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    assert "differs: --ratio 0.5,1 there, --ratio 0.5,2 here; rerun it" in r.output
    r = invoke("sample", *args, "--negative-class", "bg", "--resume", "-o", out)
    assert r.exit_code == 1 and 'differs: options negative_class ("other" there, "bg" here); rerun' in r.output
    r = invoke("sample", *args[:5], "1", *args[6:], "--resume", "-o", out)   # one member's value: not the sweep
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    assert "holds an interrupted sweep of --ratio 0.5,1, not one run of --ratio 1; resume it with --ratio 0.5,1 " \
           "--resume" in r.output
    r = invoke("sample", *args, "--resume", "-o", out)                   # the seed comes from the sweep
    assert r.exit_code == 0, r.output
    for m in ("ratio-0.5", "ratio-1"):
        assert (out / m / "manifest.jsonl").read_text() == (ref / m / "manifest.jsonl").read_text()
        assert files(out / m, ("train", "val", "test")) == files(ref / m, ("train", "val", "test"))
        # the record too: the user's options (no --overwrite in either), only the folder differs
        got, want = (json.loads((d / m / "negmine.json").read_text()) for d in (out, ref))
        assert got["options"].pop("out") != want["options"].pop("out") and got == want
        assert got["options"]["overwrite"] is False
    r = invoke("sample", *args, "--resume", "-o", out)
    assert r.exit_code == 1 and "complete" in r.output
    r = invoke("sample", *args, "--seed", 3, "-o", out)
    assert r.exit_code == 1 and "--overwrite" in r.output
    r = invoke("sample", *args[:5], "1,3", *args[6:], "--seed", 3, "--overwrite", "-o", out)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["ratio-1", "ratio-3", "sweep.json"]   # old members gone
    r = invoke("sample", *args, "--seed", 3, "--overwrite", "-o", ref / "ratio-1")
    assert r.exit_code == 1 and "single negmine run" in r.output


def test_separate_runs_of_one_seed_share_val_and_test(positives, inpool, tmp_path):
    """The issue's case: --balanced, --ratio 0.5 and --ratio 1 with one seed; a negative in two of
    them sits in the same split in both."""
    runs = {}
    for name, extra in (("balanced", ("--balanced",)), ("half", ("--ratio", 0.5)), ("one", ("--ratio", 1))):
        sample(positives, inpool, tmp_path / name, *extra)
        runs[name] = {r["sha256"]: r["split"] for r in read_manifest(tmp_path / name) if r["role"] == "negative"}
    big = runs["one"]
    for name in ("balanced", "half"):
        small = runs[name]
        assert set(small) <= set(big)                                         # nested draws
        assert all(big[k] == s for k, s in small.items()), name               # the same split in both
        assert {"train", "val", "test"} <= set(small.values())


def test_stable_splits_do_not_depend_on_the_amount():
    fracs = (0.8, 0.1, 0.1)
    full = stable_splits(500, fracs, rng_for(7, "split-neg"))
    for n in (1, 2, 3, 10, 37, 200):
        part = stable_splits(n, fracs, rng_for(7, "split-neg"))
        assert part.tolist() == full[:n].tolist()
        counts = np.bincount(part, minlength=3)
        if n >= 3:
            assert counts.min() >= 1                                          # every split has one
        assert all(abs(c - n * f) < 2 for c, f in zip(counts, fracs))
    assert stable_splits(1, fracs, rng_for(7, "s")).tolist() == [0]          # one: train
    assert set(stable_splits(50, (0.5, 0.5, 0.0), rng_for(1, "s")).tolist()) == {0, 1}


def test_eval_from_reuses_val_and_test_and_keeps_them_out_of_train(positives, inpool, tmp_path):
    first = tmp_path / "first"
    sample(positives, inpool, first, "--ratio", 1)
    held = files(first, ("val", "test"))
    out = tmp_path / "second"
    # the same pool with another seed: some draws are the first run's val/test images, which must stay out
    r = invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", inpool, "--seed", 11, "-o", out,
               "--ratio", 2, "--eval-from", first, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert files(out, ("val", "test")) == held                                # same paths, same bytes
    rows = read_manifest(out)
    train = [r for r in rows if r["split"] == "train"]
    assert not {r["sha256"] for r in train} & set(held.values())
    positives_train = sum(r["role"] == "positive" for r in train)
    assert positives_train == 20 - sum(1 for r in read_manifest(first) if r["split"] != "train" and r["role"] == "positive")
    assert sum(r["role"] == "negative" for r in train) == 2 * positives_train
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    left_out = [x for x in rejects if "--eval-from" in x["reason"]]
    assert any(x["role"] == "positive" for x in left_out)                    # the first run's val/test positives
    assert any(x["role"] == "negative" and x["duplicate_of"] in held for x in left_out), summary["reject_reasons"]
    rec = read_record(out)
    assert rec["eval_from"]["out"] == str(first) and rec["eval_from"]["link"] == "hardlink"
    assert rec["options"]["eval_from"] == str(first)
    # the counts say the same thing: this run's (train) apart from OUT's val/test, and the total
    taken = [r for r in rows if r["split"] != "train"]
    new_pos, new_neg = positives_train, 2 * positives_train
    old_pos = sum(r["role"] == "positive" for r in taken)
    old_neg = len(taken) - old_pos
    assert (summary["positives"], summary["negatives"]) == (new_pos, new_neg) == (rec["positives"], rec["negatives"])
    assert (rec["eval_from"]["positives"], rec["eval_from"]["negatives"]) == (old_pos, old_neg)
    r = invoke("sample", "--workers", "1", "-p", positives, "-s", inpool, "--seed", 11, "-o", tmp_path / "text",
               "--ratio", 2, "--eval-from", first)
    assert r.exit_code == 0, r.output
    assert f"wrote {new_pos} new positives and {new_neg} new negatives (train) to " in r.stdout
    assert (f"val/test: {old_pos} positives and {old_neg} negatives taken from --eval-from {first} (hardlinked; "
            f"{new_pos + old_pos} positives and {new_neg + old_neg} negatives in all)") in r.stdout


def test_eval_from_refuses_what_cannot_be_the_same_yardstick(positives, inpool, tmp_path):
    first = tmp_path / "first"
    sample(positives, inpool, first, "--ratio", 1)

    def refused(*extra, pos=positives):
        r = invoke("sample", "-q", "--workers", "1", "-p", pos, "-s", inpool, "-o", tmp_path / "x", *extra)
        assert r.exit_code == 1 and r.output.count("\n") == 1, r.output
        assert not (tmp_path / "x").exists()
        return r.output

    assert "not a negmine output" in refused("--eval-from", positives)
    r = invoke("sample", "-q", "-p", positives, "-s", inpool, "-o", first, "--overwrite", "--eval-from", first)
    assert r.exit_code == 1 and "inside --eval-from" in r.output and (first / "negmine.json").is_file()
    assert "--format" in refused("--eval-from", first, "--format", "hf")
    assert "--negative-class" in refused("--eval-from", first, "--negative-class", "background")
    one = tmp_path / "one-class"
    shutil.copytree(positives / "raccoon", one / "raccoon")
    assert "other classes" in refused("--eval-from", first, pos=one)
    sweep = tmp_path / "sweep"
    sample(positives, inpool, sweep, "--ratio", "0.5,1")
    assert "is a sweep" in refused("--eval-from", sweep)
    changed = next(r for r in read_manifest(first) if r["split"] == "test")
    (first / changed["path"]).write_bytes(b"not the same")
    assert "changed since it was written" in refused("--eval-from", first)


def test_a_sweep_can_take_its_val_and_test_from_an_earlier_run(positives, inpool, tmp_path):
    first = tmp_path / "first"
    sample(positives, inpool, first, "--ratio", 1)
    out = tmp_path / "sweep"
    sample(positives, inpool, out, "--ratio", "0.5,1", "--eval-from", first)
    held = files(first, ("val", "test"))
    train_pos = 20 - sum(1 for r in read_manifest(first) if r["role"] == "positive" and r["split"] != "train")
    for m, ratio in (("ratio-0.5", 0.5), ("ratio-1", 1)):
        assert files(out / m, ("val", "test")) == held
        assert len(train_negatives(out / m)) == round(ratio * train_pos)     # counted on the train positives


def test_a_replaced_sweep_drops_the_evaluation_of_the_old_one(tmp_path):
    """An eval of a sweep measured its members; once --overwrite replaces the sweep, that eval
    describes members and a test set that are gone, so it is removed (only eval's own files)."""
    from negmine.cli import cli

    pos = raccoon_folder(tmp_path / "positives", 12) / "raccoon"
    sweep = tmp_path / "sweep"
    args = ["sample", "-q", "--workers", "1", "-p", str(pos.parent), "-s", str(SHARED / "imagenet-500"), "--seed", "0"]
    assert CliRunner().invoke(cli, [*args, "--ratio", "0.5,1", "-o", str(sweep)]).exit_code == 0
    test = [r for r in read_manifest(sweep / "ratio-1") if r["split"] == "test"]
    scores = tmp_path / "s.csv"
    scores.write_text("path,score\n" + "".join(f"{r['path']},{0.9 if r['role'] == 'positive' else 0.1}\n" for r in test))
    r = CliRunner().invoke(cli, ["eval", str(sweep), "--scores", f"ratio-0.5={scores}", "--scores", f"ratio-1={scores}"])
    assert r.exit_code == 0, r.output
    (sweep / "eval" / "mine.txt").write_text("a user's note")
    r = CliRunner().invoke(cli, [*args, "--ratio", "1,2", "--overwrite", "-o", str(sweep)])
    assert r.exit_code == 0, r.output
    left = sorted(p.relative_to(sweep / "eval").as_posix() for p in (sweep / "eval").rglob("*"))
    assert left == ["mine.txt"]                   # eval's files gone, the user's file kept
