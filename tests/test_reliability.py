"""Reliability: odd files, hostile names, read-only inputs, interruption and resume, Hub failures."""

import hashlib
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import PLACEABLE, SHARED, make_parquet_repo, read_manifest, start_held
from negmine.cli import cli
from negmine.outputs.writers import Journal

ODD = SHARED / "odd-encodings"


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def digests(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def output_files(out: Path) -> dict:
    return {k: v for k, v in digests(out).items() if k != "negmine.json"}


# -- odd images -------------------------------------------------------------------------------------
def test_every_odd_file_is_written_or_rejected_with_a_reason(positives, tmp_path):
    pool = tmp_path / "pool" / "box"   # a class WordNet places
    shutil.copytree(ODD, pool)
    before = digests(pool)
    out = tmp_path / "ds"
    r = invoke("sample", "-q", "--workers", "2", "-p", positives, "-s", tmp_path / "pool", "--count", 100,
               "--allow-short", "--hash", "none", "--seed", 1, "-o", out)
    assert r.exit_code == 0, r.output
    kept = {x["file"] for x in read_manifest(out) if x["role"] == "negative"}
    rejects = {x["file"]: x["reason"] for x in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    images = {f"box/{p.name}" for p in ODD.iterdir() if p.suffix.lower() in
              {".jpg", ".png", ".gif", ".webp", ".tiff", ".mpo", ".avif"}}
    assert kept | set(rejects) == images and not kept & set(rejects)
    for bad in ("decompression_bomb.gif", "truncated_jpeg.jpg", "truncated_image.png", "broken.png",
                "ukbench09268_corrupt.jpg"):
        assert f"box/{bad}" in rejects, bad
    assert "decompression bomb" in rejects["box/decompression_bomb.gif"]
    for good in ("te_CMYK.jpg", "te_exif-rotn-6.jpg", "iss634.webp", "chi.gif", "i_trns.png", "ukbench09380.png",
                 "sugarshack.mpo", "transparent.webp"):
        assert f"box/{good}" in kept, (good, rejects.get(f"box/{good}"))
    for row in read_manifest(out):
        if row["role"] == "negative":
            im = Image.open(out / row["path"])
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (row["width"], row["height"])
    sideways = next(x for x in read_manifest(out) if x["file"] == "box/te_exif-rotn-6.jpg")
    assert (sideways["width"], sideways["height"]) == (3024, 4032)
    assert digests(pool) == before


def test_odd_positives_are_loader_friendly_or_rejected(pool, tmp_path):
    pos = tmp_path / "pos" / "odd"
    pos.mkdir(parents=True)
    for name in ("hopper.avif", "flower.webp", "ukbench09380.png", "truncated_jpeg.jpg", "decompression_bomb.gif",
                 "flower2.jpg", "tiff_16bit_RGB.tiff"):
        shutil.copy(ODD / name, pos / name)
    out = tmp_path / "ds"
    # 'odd' names no concept: --no-auto-exclude, as a run with such a folder must say
    r = invoke("sample", "-q", "--workers", "1", "-p", pos.parent, "-s", pool, "--seed", 1, "--no-auto-exclude",
               "-o", out)
    assert r.exit_code == 0, r.output
    rows = {x["file"]: x for x in read_manifest(out) if x["role"] == "positive"}
    rejects = {x["file"]: x["reason"] for x in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())
               if x["role"] == "positive"}
    assert set(rejects) == {"odd/truncated_jpeg.jpg", "odd/decompression_bomb.gif"}
    for name, row in rows.items():
        im = Image.open(out / row["path"])
        # every written positive is a format all trainers read, named by what it really is
        assert im.format in ("JPEG", "PNG") and Path(row["path"]).suffix == {"JPEG": ".jpg", "PNG": ".png"}[im.format]
    assert rows["odd/flower2.jpg"]["reencoded"] is False           # a plain JPEG is copied as it is
    assert rows["odd/hopper.avif"]["reencoded"] is True


# -- hostile names ----------------------------------------------------------------------------------
def test_hostile_file_and_class_names(pool, tmp_path):
    pos = tmp_path / "pos"
    src = sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))
    names = ["CON.jpg", "a\\b.jpg", "x" * 250 + ".jpg", "Dog.jpg", "dog.jpg", "caf\u00e9.jpg", "cafe\u0301.jpg",
             ".hidden.jpg", "-rf.jpg", "nul\u0000.jpg"[:3] + ".jpg"]
    for cls in ("..", "Bears", "bears", "caf\u00e9"):
        if cls == "..":
            continue
        (pos / cls).mkdir(parents=True)
        for i, n in enumerate(names):
            shutil.copy(src[i], pos / cls / n)
    out = tmp_path / "nest" / "ds"
    r = invoke("sample", "-q", "--workers", "1", "-p", pos, "-s", pool, "--count", 5, "--seed", 1, "-o", out)
    assert r.exit_code == 0, r.output
    rows = read_manifest(out)
    paths = [x["path"] for x in rows]
    assert len(paths) == len({p.lower() for p in paths})                  # unique, even ignoring case
    assert {x["class"] for x in rows} == {"Bears", "bears-2", "cafe", "other"}
    for p in paths:
        assert (out / p).resolve().parent.parent.parent == out.resolve()
        assert not Path(p).name.startswith(".") and len(Path(p).name) <= 90
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - set(pool.rglob("*")) - set(pos.rglob("*"))
    assert all(out in p.parents for p in written)
    again = tmp_path / "again"
    invoke("sample", "-q", "--workers", "1", "-p", pos, "-s", pool, "--count", 5, "--seed", 1, "-o", again)
    assert (again / "manifest.jsonl").read_bytes() == (out / "manifest.jsonl").read_bytes()   # deterministic


def test_sample_never_changes_its_inputs(positives, pool, tmp_path):
    before = digests(positives), digests(pool)
    for link in ("copy", "hardlink", "symlink"):
        r = invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", pool, "--link", link, "--seed", 1,
                   "-o", tmp_path / link)
        assert r.exit_code == 0, r.output
    assert (digests(positives), digests(pool)) == before


# -- interruption -----------------------------------------------------------------------------------
def _cli(*args):
    return [sys.executable, "-m", "negmine", "sample", "-q", "--workers", "1", *map(str, args)]


@pytest.fixture
def big_pool(tmp_path):
    return make_parquet_repo(tmp_path / "big", PLACEABLE, 50, shards=3, seed=7)


def test_resume_after_sigkill_equals_an_uninterrupted_run(positives, big_pool, tmp_path):
    args = ["-p", positives, "-s", big_pool, "--count", 1400, "--seed", 11]
    ref = tmp_path / "ref"
    assert subprocess.run(_cli(*args, "-o", ref)).returncode == 0
    out = tmp_path / "killed"
    staging = out.parent / f".{out.name}.negmine-partial"
    runs = []                                  # (hold point, held, exit code, stderr), for a failure
    for nth in (1, 3, 6):                      # killed at three journal states, resumed each time
        extra = ["--resume"] if staging.exists() else []
        proc, held = start_held(_cli(*args, *extra, "-o", out), tmp_path / "hold", nth, stderr=subprocess.PIPE,
                                text=True)
        if held:
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        runs.append((nth, held, proc.returncode, err[-300:]))
        assert held, runs                      # a 1400-negative draw journals more than six times
        assert staging.exists() and not out.exists(), runs    # a resumable half-run, never a half dataset
    r = subprocess.run(_cli(*args, "--resume", "-o", out), capture_output=True, text=True)
    assert r.returncode == 0, (r.stderr, runs)
    assert not staging.exists(), runs
    got, want = ((d / "manifest.jsonl").read_text().splitlines() for d in (out, ref))
    assert got == want, (next(((a, b) for a, b in zip(got, want) if a != b), (len(got), len(want))), runs)
    assert output_files(out) == output_files(ref), runs


def test_ctrl_c_exits_130_with_one_line_and_resumes(positives, big_pool, tmp_path):
    args = ["-p", positives, "-s", big_pool, "--count", 1200, "--seed", 4]
    out = tmp_path / "ds"
    staging = out.parent / f".{out.name}.negmine-partial"
    proc, held = start_held(_cli(*args, "-o", out), tmp_path / "hold", 2, stderr=subprocess.PIPE, text=True)
    assert held
    proc.send_signal(signal.SIGINT)            # while held in the draw, as Ctrl-C would come
    _, err = proc.communicate(timeout=600)     # a guard against a hang, not a measure of speed
    assert proc.returncode == 130, err
    assert err.strip().count("\n") == 0 and "interrupted" in err and "--resume" in err
    assert staging.exists() and not out.exists()
    r = invoke("sample", "-q", "--workers", "1", *args, "-o", out)
    assert r.exit_code == 1 and "--resume" in r.output                       # refuses to discard work
    r = invoke("sample", "-q", "--workers", "1", *args[:-2], "--seed", 5, "--resume", "-o", out)
    assert r.exit_code == 1 and "other options (seed)" in r.output
    r = invoke("sample", "-q", "--workers", "2", *args, "--resume", "-o", out)
    assert r.exit_code == 0, r.output
    ref = tmp_path / "ref"
    invoke("sample", "-q", "--workers", "1", *args, "-o", ref)
    assert output_files(out) == output_files(ref)
    r = invoke("sample", "-q", *args, "--resume", "-o", out)
    assert r.exit_code == 1 and "complete" in r.output


def test_resume_picks_up_a_drawn_seed(positives, big_pool, tmp_path):
    out = tmp_path / "ds"
    staging = out.parent / f".{out.name}.negmine-partial"
    proc, held = start_held(_cli("-p", positives, "-s", big_pool, "--count", 1200, "-o", out), tmp_path / "hold")
    assert held
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    seed = json.loads((staging / ".negmine" / "run.json").read_text())["seed"]
    r = invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", big_pool, "--count", 1200, "--resume",
               "-o", out)
    assert r.exit_code == 0, r.output
    assert json.loads((out / "negmine.json").read_text())["seed"] == seed
    ref = tmp_path / "ref"
    invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", big_pool, "--count", 1200, "--seed", seed,
           "-o", ref)
    assert output_files(out) == output_files(ref)


def test_journal_ignores_a_torn_last_line(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"t":"neg","p":0}\n{"t":"neg","p":1}\n{"t":"ne')
    j = Journal(path)
    assert [e["p"] for e in j.entries] == [0, 1]
    j.append({"t": "neg", "p": 2})
    j.extend([{"t": "drop", "p": 3}, {"t": "neg", "p": 4}])
    j.close()
    assert [e["p"] for e in Journal(path).entries] == [0, 1, 2, 3, 4]


# Hub failures: tests/test_hub.py, against a local Hub over HTTP.


def test_missing_column_and_debug_traceback(positives, pool, tmp_path):
    r = invoke("sample", "-q", "-p", positives, "-s", f"{pool}?image=pixels", "-o", tmp_path / "ds")
    assert r.exit_code == 4 and "no image column 'pixels'" in r.output
    r = invoke("sample", "-q", "--debug", "-p", positives, "-s", f"{pool}?image=pixels", "-o", tmp_path / "ds")
    assert r.exit_code != 0 and r.exception is not None


def _interrupt_after(monkeypatch, n: int):
    """Ctrl-C after n journal entries: a deterministic interruption in the middle of a run."""
    real = Journal.append
    count = {"n": 0}

    def append(self, entry):
        real(self, entry)
        count["n"] += 1
        if count["n"] == n:
            raise KeyboardInterrupt

    def extend(self, entries):        # a window's entries, cut after the n-th as a kill would
        for e in entries:
            self.append(e)

    real_extend = Journal.extend
    monkeypatch.setattr(Journal, "append", append)
    monkeypatch.setattr(Journal, "extend", extend)
    return lambda: (monkeypatch.setattr(Journal, "append", real), monkeypatch.setattr(Journal, "extend", real_extend))


@pytest.mark.parametrize("command", ["cutout", "mine"])
def test_cutout_and_mine_resume_to_the_same_result(command, positives, pool, tmp_path, monkeypatch):
    if command == "cutout":
        args = ["cutout", "-q", "--workers", "1", "--images", SHARED / "raccoon-voc" / "images", "--boxes",
                SHARED / "raccoon-voc" / "annotations", "--fill", "noise", "--fill", "tile"]
    else:
        base = tmp_path / "round1"
        assert invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", pool, "--count", 60, "--seed", 2,
                      "-o", base).exit_code == 0
        scores = tmp_path / "s.csv"
        negs = [r for r in read_manifest(base) if r["role"] == "negative"]
        scores.write_text("path,score\n" + "".join(f"{r['path']},{i / 100}\n" for i, r in enumerate(negs)))
        args = ["mine", "-q", "--workers", "1", "--scores", scores, "--pool", base, "--count", 30, "--allow-held-out"]
    ref = tmp_path / "ref"
    assert invoke(*args, "--seed", 3, "-o", ref).exit_code == 0 if command == "cutout" else \
        invoke(*args, "-o", ref).exit_code == 0
    out = tmp_path / "out"
    seed = ["--seed", 3] if command == "cutout" else []
    restore = _interrupt_after(monkeypatch, 25)
    r = invoke(*args, *seed, "-o", out)
    restore()
    assert r.exit_code == 130 and not out.exists()
    assert (out.parent / f".{out.name}.negmine-partial").exists()
    r = invoke(*args, *seed, "--resume", "-o", out)
    assert r.exit_code == 0, r.output
    assert output_files(out) == output_files(ref)


def test_ctrl_c_while_planning_says_there_is_nothing_to_resume(positives, pool, tmp_path, monkeypatch):
    import negmine.pipeline.planner

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(negmine.pipeline.planner, "plan_classes", interrupted)
    out = tmp_path / "ds"
    r = invoke("sample", "-q", "-p", positives, "-s", pool, "--seed", 11, "-o", out)
    assert r.exit_code == 130 and r.output.strip().count("\n") == 0
    assert "--seed 11" in r.output and "nothing to resume" in r.output
    assert not out.exists() and not list(tmp_path.glob(".ds*"))           # nothing written
