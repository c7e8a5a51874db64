"""--out on an fsspec filesystem: s3:// against a real S3 API over HTTP (moto's server), through s3fs
as users run it; the same dataset, byte for byte, as a local --out, from any worker count."""

import json
import signal
import subprocess
import sys

import fsspec
import pytest
from click.testing import CliRunner

from conftest import PLACEABLE, SHARED, local_files, make_parquet_repo, read_manifest, remote_files, same_dataset, start_held
from negmine.cli import cli
from negmine.outputs.writers import SegmentJournal

RACCOONS = SHARED / "raccoon-voc"


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


@pytest.mark.parametrize("fmt", ["imagefolder", "hf"])
def test_sample_to_s3_writes_the_local_dataset(s3, positives, pool, tmp_path, fmt):
    args = ["sample", "-q", "-p", positives, "-s", pool, "--count", 60, "--seed", 4, "--workers", 2, "--format", fmt]
    assert invoke(*args, "-o", tmp_path / "local").exit_code == 0
    url = f"{s3.url}/runs/ds"
    r = invoke(*args, "--json", "-o", url)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["out"] == url
    remote = remote_files(s3.fs, f"{s3.bucket}/runs/ds")
    assert not any(k.startswith((".negmine/", ".work/")) for k in remote)      # no run state or scratch left
    same_dataset(local_files(tmp_path / "local"), remote, url)


def test_yolo_det_to_s3_says_data_yaml_needs_a_local_path(s3, pool, tmp_path):
    r = invoke("sample", "-p", RACCOONS / "images", "--boxes", RACCOONS / "annotations", "-s", pool, "--count", 20,
               "--seed", 1, "--workers", 1, "--format", "yolo-det", "-o", f"{s3.url}/yolo")
    assert r.exit_code == 0, r.output
    assert "data.yaml has no `path`" in r.output
    yaml = s3.fs.cat_file(f"{s3.bucket}/yolo/data.yaml").decode()
    assert not yaml.startswith("path:") and "train: images/train" in yaml


def test_cutout_and_mine_to_s3_write_what_they_write_locally(s3, positives, pool, tmp_path):
    cut = ["cutout", "-q", "--images", RACCOONS / "images", "--boxes", RACCOONS / "annotations", "--seed", 3,
           "--workers", 2]
    assert invoke(*cut, "-o", tmp_path / "cut").exit_code == 0
    r = invoke(*cut, "-o", f"{s3.url}/cut")
    assert r.exit_code == 0, r.output
    same_dataset(local_files(tmp_path / "cut"), remote_files(s3.fs, f"{s3.bucket}/cut"), f"{s3.url}/cut")

    base = tmp_path / "round1"
    assert invoke("sample", "-q", "--workers", 1, "-p", positives, "-s", pool, "--count", 60, "--seed", 2,
                  "-o", base).exit_code == 0
    scores = tmp_path / "s.csv"
    negs = [r for r in read_manifest(base) if r["role"] == "negative"]
    scores.write_text("path,score\n" + "".join(f"{r['path']},{i / 100}\n" for i, r in enumerate(negs)))
    mine = ["mine", "-q", "--workers", 2, "--scores", scores, "--pool", base, "--count", 30, "--allow-held-out"]
    assert invoke(*mine, "-o", tmp_path / "mined").exit_code == 0
    r = invoke(*mine, "-o", f"{s3.url}/mined")
    assert r.exit_code == 0, r.output
    same_dataset(local_files(tmp_path / "mined"), remote_files(s3.fs, f"{s3.bucket}/mined"), f"{s3.url}/mined")


def test_a_run_on_s3_killed_mid_draw_resumes_to_the_same_dataset(s3, positives, tmp_path):
    big = make_parquet_repo(tmp_path / "big", PLACEABLE, 50, shards=3, seed=7)
    args = ["sample", "-q", "-p", positives, "-s", big, "--count", 1400, "--seed", 11, "--workers", 2]
    assert invoke(*args, "-o", tmp_path / "ref").exit_code == 0
    url, root = f"{s3.url}/ds", f"{s3.bucket}/ds"
    # held at its first journal segment: the draw has written scratch and the run state by then
    proc, killed = start_held([sys.executable, "-m", "negmine", *map(str, args), "-o", url], tmp_path / "hold",
                              env=s3.env, stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGKILL)
    # its worker processes notice and exit (else they would hold stderr open, and their memory, for ever)
    _, err = proc.communicate(timeout=300)                          # a hang guard, not a speed test
    s3.fs.invalidate_cache()
    assert killed and s3.fs.exists(f"{root}/.negmine/run.json"), err
    assert not s3.fs.exists(f"{root}/negmine.json")                # never taken for a finished dataset

    r = invoke(*args, "-o", url)                                   # neither --resume nor --overwrite: refused
    assert r.exit_code == 1 and "interrupted run" in r.output and "--resume" in r.output
    r = subprocess.run([sys.executable, "-m", "negmine", *map(str, args), "--resume", "-o", url], env=s3.env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    remote = remote_files(s3.fs, root)
    assert not any(k.startswith((".negmine/", ".work/")) for k in remote)
    same_dataset(local_files(tmp_path / "ref"), remote, url)


def test_what_a_remote_out_refuses_is_one_line_and_changes_nothing(s3, positives, pool, tmp_path):
    base = ["sample", "-p", positives, "-s", pool, "--count", 20, "--seed", 1, "--workers", 1]
    s3.fs.pipe_file(f"{s3.bucket}/theirs/keep.txt", b"not negmine's")
    r = invoke(*base, "--overwrite", "-o", f"{s3.url}/theirs")
    assert r.exit_code == 1 and "holds no negmine.json" in r.output
    assert s3.fs.cat_file(f"{s3.bucket}/theirs/keep.txt") == b"not negmine's"
    for extra, flag in ((["--report"], "--report"), (["--link", "symlink"], "--link"),
                        (["--push-to-hub", "me/ds"], "--push-to-hub")):
        r = invoke(*base, *extra, "-o", f"{s3.url}/x")
        assert r.exit_code == 1 and f"{flag} needs a local --out" in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
    r = invoke(*base, "-o", f"s3://no-such-bucket-{s3.bucket}/ds")
    assert r.exit_code == 1 and r.output.startswith("Error: cannot write to s3://no-such-bucket"), r.output
    assert "does not exist" in r.output and not s3.fs.exists(f"no-such-bucket-{s3.bucket}")
    r = invoke(*base, "-o", s3.url)                            # --overwrite or a failed run would remove it all
    assert r.exit_code == 1 and "is a whole bucket" in r.output
    r = invoke(*base, "--resume", "-o", f"{s3.url}/never")
    assert r.exit_code == 1 and "nothing to resume" in r.output
    for bad, says in (("nosuchproto://b/ds", "fsspec knows no protocol 'nosuchproto'"),
                      ("s3://", "names no bucket or folder"), (f"{s3.url}/a/../b", "'..' part"),
                      (f"{s3.url}//b", "empty"), ("memory://m/ds", "lives in this process only")):
        r = invoke(*base[:-2], "--workers", 2, "--json", "-o", bad)       # exit 1 and JSON, as any bad --out
        assert r.exit_code == 1 and says in json.loads(r.stdout)["error"], (bad, r.output)
    assert not (tmp_path / "s3:").exists() and not s3.fs.exists(f"{s3.bucket}/a")
    r = invoke(*base, "--json", "-o", f"S3://{s3.bucket}/upper")          # schemes are case-insensitive
    assert r.exit_code == 0 and json.loads(r.stdout)["out"] == f"s3://{s3.bucket}/upper"


def test_overwrite_replaces_a_previous_remote_output(s3, positives, pool):
    url, root = f"{s3.url}/ds", f"{s3.bucket}/ds"
    args = ["sample", "-q", "-p", positives, "-s", pool, "--count", 20, "--workers", 1]
    assert invoke(*args, "--seed", 1, "-o", url).exit_code == 0
    first = remote_files(s3.fs, root)
    s3.fs.pipe_file(f"{root}/train/other/stale.jpg", b"x")
    r = invoke(*args, "--seed", 2, "-o", url)
    assert r.exit_code == 1 and "--overwrite" in r.output
    assert invoke(*args, "--seed", 2, "--overwrite", "-o", url).exit_code == 0
    second = remote_files(s3.fs, root)
    assert "train/other/stale.jpg" not in second and second["manifest.jsonl"] != first["manifest.jsonl"]
    assert {r["path"] for r in map(json.loads, second["manifest.jsonl"].splitlines())} | \
        {"manifest.jsonl", "rejects.jsonl", "negmine.json", "classes.txt", "class_weights.json", "ATTRIBUTION.csv",
         "ATTRIBUTION.md"} == set(second)


def test_segment_journal_reads_in_order_and_drops_a_torn_segment():
    fs = fsspec.filesystem("memory")
    folder = "/journal-test"
    j = SegmentJournal(fs, folder)
    j.FLUSH_SECONDS = 0                         # every call writes a segment
    j.append({"n": 0})
    j.extend([{"n": 1}, {"n": 2}])
    j.close()
    assert SegmentJournal(fs, folder).entries == [{"n": 0}, {"n": 1}, {"n": 2}]
    later = SegmentJournal(fs, folder)          # what a resumed run appends comes after
    later.extend([{"n": 3}])
    later.close()
    assert [e["n"] for e in SegmentJournal(fs, folder).entries] == [0, 1, 2, 3]
    fs.pipe_file(f"{folder}/00000001.jsonl", b'{"n": 1}\n{"n": 2')    # torn by a filesystem without atomic PUTs
    resumed = SegmentJournal(fs, folder)
    assert resumed.entries == [{"n": 0}]
    resumed.append({"n": "again"})
    resumed.close()
    assert [e["n"] for e in SegmentJournal(fs, folder).entries] == [0, "again"]
    fs.rm(folder, recursive=True)


def test_a_slow_journal_waits_for_its_interval():
    fs = fsspec.filesystem("memory")
    j = SegmentJournal(fs, "/journal-interval")
    j.FLUSH_SECONDS = 3600
    for n in range(100):
        j.append({"n": n})
    assert fs.ls("/journal-interval") == [] if fs.exists("/journal-interval") else True   # one write, at close
    j.close()
    assert len(fs.ls("/journal-interval")) == 1 and len(SegmentJournal(fs, "/journal-interval").entries) == 100
    fs.rm("/journal-interval", recursive=True)


def test_dedup_copies_the_kept_images_to_s3(s3, tmp_path):
    import shutil

    folder = tmp_path / "photos"
    shutil.copytree(RACCOONS / "images", folder)
    shutil.copy(folder / "raccoon-1.jpg", folder / "copy-of-1.jpg")        # a duplicate to drop
    r = invoke("dedup", folder, "--workers", 1, "--out", tmp_path / "kept")
    assert r.exit_code == 0, r.output
    r = invoke("dedup", folder, "--workers", 1, "--out", f"{s3.url}/kept")
    assert r.exit_code == 0, r.output
    local = local_files(tmp_path / "kept")
    assert 0 < len(local) < len(local_files(folder)) and not ({"raccoon-1.jpg", "copy-of-1.jpg"} <= set(local))
    assert remote_files(s3.fs, f"{s3.bucket}/kept") == local
    r = invoke("dedup", folder, "--workers", 1, "--out", f"{s3.url}/kept")        # not into a non-empty prefix
    assert r.exit_code == 1 and "is not empty" in r.output


def test_a_run_another_took_over_stops_and_leaves_it_alone():
    # two runs on one --out: the second (--overwrite or --resume) takes it over; the first must not
    # place files, write its journal or publish there, nor remove what the second wrote
    from negmine.outputs.writers import OutTakenOver, Run

    url = "memory://takeover/ds"
    first = Run(url, {"k": 1})
    first.journal.FLUSH_SECONDS = 0
    first.journal.append({"t": "first"})
    second = Run(url, {"k": 2}, overwrite=True)
    second.writer.write_bytes("train/other/b.jpg", b"second's")
    with pytest.raises(OutTakenOver):
        first.writer.place_scratch([], None)
    with pytest.raises(OutTakenOver):
        first.journal.append({"t": "first again"})
    with pytest.raises(OutTakenOver):
        with first:
            first.writer.publish()
    fs = fsspec.filesystem("memory")
    assert fs.cat_file("/takeover/ds/train/other/b.jpg") == b"second's" and not fs.exists("/takeover/ds/negmine.json")
    assert json.loads(second.writer.read_state("run.json")) == {"k": 2}
    with second:
        second.writer.write_bytes("negmine.json", b"{}")
        second.journal.close()
        second.writer.publish()
    assert fs.cat_file("/takeover/ds/negmine.json") == b"{}" and not fs.exists("/takeover/ds/.negmine")
    fs.rm("/takeover", recursive=True)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_an_interrupted_dedup_copy_leaves_nothing_behind(where, s3, tmp_path, monkeypatch):
    import shutil

    folder = tmp_path / "photos"
    shutil.copytree(RACCOONS / "images", folder)
    if where == "local":
        out, real, calls = tmp_path / "kept", shutil.copyfile, []

        def copyfile(src, dst, **kw):
            calls.append(dst)
            if len(calls) == 5:
                raise KeyboardInterrupt
            return real(src, dst, **kw)

        monkeypatch.setattr(shutil, "copyfile", copyfile)
    else:
        out, real_put = f"{s3.url}/kept", s3.fs.put
        assert fsspec.core.url_to_fs(out)[0] is s3.fs              # the instance negmine gets (fsspec caches it)

        def put(lpaths, rpaths, **kw):
            real_put(lpaths[:4], rpaths[:4], **kw)                  # some went up, then Ctrl-C
            raise KeyboardInterrupt

        monkeypatch.setattr(s3.fs, "put", put)
    r = invoke("dedup", folder, "--workers", 1, "--out", out)
    assert r.exit_code == 130 and "interrupted" in r.output and "--resume" not in r.output
    if where == "local":
        assert not any(out.iterdir())
    else:
        s3.fs.invalidate_cache()
        assert not s3.fs.exists(f"{s3.bucket}/kept")
    assert len(list(folder.iterdir())) == len(list((RACCOONS / "images").iterdir()))    # the input untouched


def test_a_run_taken_over_mid_way_removes_nothing_and_its_strays_are_swept(s3, positives, pool):
    # the first run's late writes land in the second's output (no lock): its publish removes what its
    # manifest does not list; the first run's error removes nothing
    from negmine.outputs.writers import OutTakenOver, Run

    url, root = f"{s3.url}/race", f"{s3.bucket}/race"
    first = Run(url, {"k": 1})
    first.writer.write_bytes("train/raccoon/first.jpg", b"a")
    second = Run(url, {"k": 2}, overwrite=True)
    second.writer.write_bytes("train/raccoon/second.jpg", b"b")
    first.writer._checked = __import__("time").monotonic()      # within its once-a-second check: lands
    first.writer.write_bytes("train/raccoon/stray.jpg", b"late")
    with pytest.raises(OutTakenOver):
        with first:
            raise OSError("scratch removed under it")           # what the takeover causes
    assert s3.fs.exists(f"{root}/.negmine/owner")                 # the second run's state is untouched
    with second:
        with second.writer.open_write("manifest.jsonl") as f:
            f.write(b'{"path": "train/raccoon/second.jpg"}\n')
        second.writer.write_bytes("negmine.json", b"{}")
        second.journal.close()
        second.writer.publish()
    assert sorted(remote_files(s3.fs, root)) == ["manifest.jsonl", "negmine.json", "train/raccoon/second.jpg"]


def test_a_run_taken_over_does_not_clear_the_other_runs_scratch():
    from negmine.outputs.writers import OutTakenOver, Run, scratch_pack

    fs = fsspec.filesystem("memory")
    first = Run("memory://scratch-race/ds", {"k": 1})
    second = Run("memory://scratch-race/ds", {"k": 2}, overwrite=True)
    pack = scratch_pack(second.writer.scratch)
    ref = pack.append(b"the second run's image")
    pack.flush()
    with pytest.raises(OutTakenOver):
        first.writer.clear_scratch()
    assert second.writer.read_scratch(ref) == b"the second run's image"
    second.writer.clear_scratch()
    fs.rm("/scratch-race", recursive=True)
