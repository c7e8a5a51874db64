"""--engine ray: the same runs on a local Ray (2 CPUs), byte for byte the local engine's output.

One Ray is started for the module (a start costs seconds): negmine joins a Ray its caller already
started and leaves it running, which is also what a library user gets."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import ray
from click.testing import CliRunner

from conftest import PLACEABLE, SHARED, make_parquet_repo, read_manifest, start_held
from negmine.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def digests(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def both_engines(args: list, out: Path, local: tuple = ("--workers", "2"), on_ray: tuple = ("--workers", "2")):
    """The run with each engine into the same --out (negmine.json records it), the local one moved
    aside afterwards: (local result, Ray result)."""
    r = invoke(*args, *local, "-o", out)
    assert r.exit_code == 0, r.output
    local_out = out.with_name(out.name + "-local")
    out.rename(local_out)
    r = invoke(*args, "--engine", "ray", *on_ray, "-o", out)
    assert r.exit_code == 0, r.output
    return local_out, out


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture
def big_pool(tmp_path):
    return make_parquet_repo(tmp_path / "big", PLACEABLE, 50, shards=3, seed=7)


def test_engine_errors_are_one_line(tmp_path, positives, pool, monkeypatch):
    import socket

    assert not ray.is_initialized()          # runs first: a Ray already running would be joined as it is
    with socket.socket() as s:                # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = invoke("sample", "-q", "-p", positives, "-s", pool, "--count", 5, "--engine", "ray",
               "--ray-address", f"127.0.0.1:{port}", "-o", tmp_path / "ds")
    assert r.exit_code == 1 and r.output.strip().count("\n") == 0, r.output
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in r.output
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    r = invoke("dedup", "-q", "--engine", "ray", pool)
    assert r.exit_code == 1 and "cannot reach the Ray cluster" in r.output and r.output.strip().count("\n") == 0
    monkeypatch.delenv("RAY_ADDRESS")
    monkeypatch.setitem(sys.modules, "ray", None)          # as if negmine[ray] were not installed
    r = invoke("dedup", "-q", "--engine", "ray", pool)
    assert r.exit_code == 1 and "pip install 'negmine[ray]'" in r.output and r.output.strip().count("\n") == 0
    r = invoke("sample", "-q", "-p", positives, "-s", pool, "--count", 5, "--engine", "ray", "-o", tmp_path / "ds")
    assert r.exit_code == 1 and "pip install 'negmine[ray]'" in r.output and r.output.strip().count("\n") == 0
    assert not (tmp_path / "ds").exists()
    # mine and cutout: the same lines, before anything is written
    scores = tmp_path / "s.csv"
    scores.write_text("path,score\n" + "".join(f"raccoon/{p.name},0.5\n" for p in (positives / "raccoon").iterdir()))
    cut = ["cutout", "-q", "--images", SHARED / "raccoon-voc" / "images", "--boxes",
           SHARED / "raccoon-voc" / "annotations", "--engine", "ray", "-o", tmp_path / "cut"]
    mine = ["mine", "-q", "--scores", scores, "--pool", positives, "--count", 3, "--engine", "ray",
            "-o", tmp_path / "hard"]
    for args in (cut, mine):
        r = invoke(*args)
        assert r.exit_code == 1 and "pip install 'negmine[ray]'" in r.output and r.output.strip().count("\n") == 0
    monkeypatch.undo()                        # Ray back, and an address nothing answers at
    for args in (cut, mine):
        r = invoke(*args, "--ray-address", f"127.0.0.1:{port}")
        assert r.exit_code == 1 and r.output.strip().count("\n") == 0, r.output
        assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in r.output
    assert not list(tmp_path.glob("*cut*")) and not list(tmp_path.glob("*hard*"))
    assert not ray.is_initialized()


def test_ray_distributor_keeps_order_batches_and_raises_the_workers_error(local_ray):
    from negmine.engine.distribute import RayDistributor
    from negmine.errors import NegmineError
    from negmine.outputs.writers import copy_out

    d = RayDistributor()
    assert list(d.imap(abs, range(-50, 0), batch=7)) == list(range(50, 0, -1))
    assert list(d.imap(len, (b"x" * n for n in range(40)))) == list(range(40))
    # a worker's NegmineError comes back as itself (one line in the CLI), not wrapped in Ray's
    with pytest.raises(NegmineError, match="scratch data for /nonexistent/x is missing"):
        list(d.imap(copy_out, [[("/nonexistent/pack", 0, 1, "/nonexistent/x")]]))
    d.close()
    assert ray.is_initialized()               # a Ray negmine did not start is left to its owner


def test_sample_on_ray_is_byte_identical_to_local(local_ray, positives, big_pool, tmp_path):
    args = ["sample", "-q", "-p", positives, "-s", big_pool, "--count", 300, "--seed", 3, "--report"]
    local, on_ray = both_engines(args, tmp_path / "ds")
    got = digests(on_ray)
    assert len([k for k in got if k.startswith(("train/other", "val/other", "test/other"))]) == 300
    assert got == digests(local)              # manifest, negmine.json, report and every image


def test_runs_one_after_another_on_the_same_ray_and_out(local_ray, positives, pool, tmp_path):
    # a Ray that outlives runs (a library caller's) keeps its workers: the second run's staging
    # folder has the first one's path, whose scratch packs the workers must not append to any more
    args = ["sample", "-q", "--engine", "ray", "-p", positives, "-s", pool, "--count", 60, "--seed", 1,
            "-o", tmp_path / "ds"]
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    first = digests(tmp_path / "ds")
    shutil.rmtree(tmp_path / "ds")
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    assert digests(tmp_path / "ds") == first


def test_sample_with_cutouts_and_dedup_positives_on_ray(local_ray, positives, big_pool, tmp_path):
    # --synthetic runs the cutout jobs through the same distributor; --dedup-positives the positive hashing
    boxes = SHARED / "raccoon-voc" / "annotations"
    args = ["sample", "-q", "-p", positives, "-s", big_pool, "--count", 40, "--seed", 8, "--synthetic", 0.25,
            "--boxes", boxes, "--dedup-positives"]
    local, on_ray = both_engines(args, tmp_path / "ds", local=("--workers", "1"), on_ray=("--workers", "1"))
    assert sum(bool(x.get("cutout")) for x in read_manifest(on_ray)) == 10
    assert digests(on_ray) == digests(local)


def _cli(*args):
    return [sys.executable, "-m", "negmine", "sample", "-q", *map(str, args)]


def test_a_ray_run_killed_mid_draw_resumes_to_the_local_result(positives, big_pool, tmp_path):
    # its own local Ray (started by the subprocess), killed with the run
    import signal

    args = ["-p", positives, "-s", big_pool, "--count", 1400, "--seed", 11]
    out = tmp_path / "ds"
    assert subprocess.run(_cli("--workers", "2", *args, "-o", out)).returncode == 0
    ref = out.rename(tmp_path / "ref")        # the local result; negmine.json records --out, so the same one
    staging = out.parent / f".{out.name}.negmine-partial"
    proc, killed = start_held(_cli("--engine", "ray", "--workers", "2", *args, "-o", out), tmp_path / "hold",
                              stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert killed and staging.exists() and not out.exists(), err      # a resumable half-run, never a half dataset
    r = subprocess.run(_cli("--engine", "ray", "--workers", "2", *args, "--resume", "-o", out),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not staging.exists()
    assert (out / "manifest.jsonl").read_text() == (ref / "manifest.jsonl").read_text()
    assert digests(out) == digests(ref)


def test_dedup_on_ray_finds_the_same_groups(local_ray, tmp_path):
    from PIL import Image

    from conftest import jpeg_bytes

    folder = tmp_path / "imgs"
    folder.mkdir()
    for k in range(30):
        (folder / f"{k:02d}.jpg").write_bytes(jpeg_bytes(k, (64, 48)))
    for k in range(5):                        # near copies: resized, and re-saved at a low quality
        im = Image.open(folder / f"{k:02d}.jpg")
        im.resize((80, 60)).save(folder / f"{k:02d}-big.jpg", quality=60)
    (folder / "broken.jpg").write_bytes(b"not an image")
    r = invoke("dedup", "-q", "--json", "--workers", "1", folder)
    assert r.exit_code == 0, r.output
    want = json.loads(r.output)
    r = invoke("dedup", "-q", "--json", "--engine", "ray", folder)
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert got == want and got["groups"] == 5 and got["skipped"] == 1


def test_a_hub_draw_on_ray_reads_in_the_driver_under_one_budget(local_ray, hub_server, positives, tmp_path,
                                                                monkeypatch):
    from test_hub import _repo

    _repo(hub_server, tmp_path, shards=3)
    args = ["sample", "-q", "--json", "-p", positives, "-s", "me/pool", "--count", 15, "--seed", 4,
            "--hub-rate", "2/1"]
    r = invoke(*args, "--workers", "2", "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    local_hub = json.loads(r.stdout)["hub"]
    n_local = len(hub_server.requests("resolve"))
    local = (tmp_path / "ds").rename(tmp_path / "local")
    # a cold cache: every byte the local run kept (footers, labels, images) is fetched again
    monkeypatch.setenv("NEGMINE_CACHE", str(tmp_path / "cold-cache"))
    r = invoke(*args, "--engine", "ray", "--workers", "2", "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    ray_hub = json.loads(r.stdout)["hub"]
    got, want = digests(tmp_path / "ds"), digests(local)
    assert got.pop("negmine.json") and want.pop("negmine.json") and got == want
    # negmine.json is the same but for what the Hub traffic was
    record, ref = (json.loads((d / "negmine.json").read_text()) for d in (tmp_path / "ds", local))
    assert record.pop("hub") and ref.pop("hub") and record == ref
    # every resolver request the server saw was counted and paced by the driver's one budget (the
    # Ray workers make none), as many as the local run's
    assert ray_hub["resolver_requests"] == local_hub["resolver_requests"] == n_local
    assert len(hub_server.requests("resolve")) == 2 * n_local
    times = [e.t for e in hub_server.requests("resolve")[n_local:]]
    # never 3 within a second (the pacing's invariant; how many seconds it paced depends on the machine)
    assert all(later - first >= 0.95 for first, later in zip(times, times[2:]))


def test_mine_and_cutout_take_the_engine_options():
    for command in ("mine", "cutout"):
        r = invoke(command, "--help")
        assert r.exit_code == 0 and "--engine [local|ray]" in r.output and "--ray-address" in r.output


def _cutout_args(tmp_path) -> list:
    """`cutout` of 40 raccoon photos (VOC boxes), with OpenCV's inpainting among the fills."""
    images = tmp_path / "images"
    images.mkdir()
    for p in sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[:40]:
        shutil.copy(p, images / p.name)
    return ["cutout", "-q", "--images", images, "--boxes", SHARED / "raccoon-voc" / "annotations",
            "--fill", "noise", "--fill", "tile", "--fill", "inpaint", "--seed", 3]


def _mine_args(positives, pool, tmp_path) -> list:
    """`mine` over a first round's output (its positives hashed, its negatives scored)."""
    base = tmp_path / "round1"
    r = invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", pool, "--count", 60, "--seed", 2, "-o", base)
    assert r.exit_code == 0, r.output
    scores = tmp_path / "s.csv"
    negs = [r for r in read_manifest(base) if r["role"] == "negative"]
    scores.write_text("path,score\n" + "".join(f"{r['path']},{i / 100}\n" for i, r in enumerate(negs)))
    return ["mine", "-q", "--scores", scores, "--pool", base, "--count", 30, "--skip-top", 0.1, "--allow-held-out"]


def test_cutout_on_ray_is_byte_identical_to_local(local_ray, tmp_path):
    local, on_ray = both_engines(_cutout_args(tmp_path), tmp_path / "cut")
    got = digests(on_ray)
    assert len(read_manifest(on_ray)) == 39 and {r["fill"] for r in read_manifest(on_ray)} == {"noise", "tile", "inpaint"}
    assert got == digests(local)              # manifest, rejects, negmine.json and every image


def test_mine_on_ray_is_byte_identical_to_local(local_ray, positives, pool, tmp_path):
    local, on_ray = both_engines(_mine_args(positives, pool, tmp_path), tmp_path / "hard")
    got = digests(on_ray)
    assert len(read_manifest(on_ray)) == 30 and (on_ray / "rejects.jsonl").read_text()
    assert got == digests(local)


@pytest.mark.parametrize("command", ["cutout", "mine"])
def test_mine_and_cutout_interrupted_on_ray_resume_to_the_local_result(command, local_ray, positives, pool, tmp_path,
                                                                       monkeypatch):
    from test_reliability import _interrupt_after

    args = _cutout_args(tmp_path) if command == "cutout" else _mine_args(positives, pool, tmp_path)
    out = tmp_path / "out"
    assert invoke(*args, "--workers", "2", "-o", out).exit_code == 0
    ref = out.rename(tmp_path / "ref")        # negmine.json records --out: the same one for both
    restore = _interrupt_after(monkeypatch, 25)
    r = invoke(*args, "--engine", "ray", "--workers", "2", "-o", out)
    restore()
    assert r.exit_code == 130 and not out.exists() and (tmp_path / ".out.negmine-partial").exists()
    r = invoke(*args, "--engine", "ray", "--workers", "2", "--resume", "-o", out)
    assert r.exit_code == 0, r.output
    got, want = digests(out), digests(ref)
    # negmine.json is the same but for the job's own --resume flag
    record, ref_record = (json.loads((d / "negmine.json").read_text()) for d in (out, ref))
    got.pop("negmine.json"), want.pop("negmine.json")
    assert "resume" not in record["job"]      # how the run went is not part of what it wrote
    assert got == want and record == ref_record


def test_sample_on_ray_to_s3_writes_the_local_dataset(local_ray, s3, positives, big_pool, tmp_path):
    # the Ray tasks get the filesystem object (with its endpoint and keys) and write the files themselves
    from conftest import local_files, remote_files, same_dataset

    args = ["sample", "-q", "-p", positives, "-s", big_pool, "--count", 300, "--seed", 5, "--workers", 2]
    assert invoke(*args, "-o", tmp_path / "local").exit_code == 0
    url = f"{s3.url}/on-ray"
    r = invoke(*args, "--engine", "ray", "-o", url)
    assert r.exit_code == 0, r.output
    same_dataset(local_files(tmp_path / "local"), remote_files(s3.fs, f"{s3.bucket}/on-ray"), url)
