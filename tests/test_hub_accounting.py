"""Every byte negmine downloads goes through one counted path (issue 28): for every source layout
the run's own request and byte counts are what the test Hub logged; the Hub's fixed rate windows
are waited out (on a virtual clock) or end in their own exit code; a refused token says so; image
cells holding repo paths are read from the repo at the same revision."""

import io
import json
import tarfile
import zipfile

import pytest
from click.testing import CliRunner

from conftest import PLACEABLE, jpeg_bytes, read_manifest
from hubtest import VirtualClock
from negmine.cli import cli
from test_hub import CLASSES, _repo
from test_hub_faults import counts_match

def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def sample(hub, positives, out, source, count=6, *extra):
    hub.clear_log()
    return invoke("sample", "-q", "--json", "-p", positives, "-s", source, "--count", count, "--seed", 1,
                  "--workers", 1, "--hash", "none", "-o", out, *extra)


def _tar_repo(root):
    (root / "data").mkdir(parents=True)
    for k in range(3):
        with tarfile.open(root / "data" / f"train-{k:04d}.tar", "w") as tf:
            for i in range(8):
                for name, data in ((f"s{k}_{i}.jpg", jpeg_bytes(k * 100 + i)), (f"s{k}_{i}.cls", str(i % 4).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
    # the card names the .cls codes (bare ids would be refused: no check can place them)
    names = "".join(f"          '{i}': {n}\n" for i, n in enumerate(PLACEABLE[:4]))
    (root / "README.md").write_text("---\nlicense: cc-by-4.0\ndataset_info:\n  features:\n  - name: jpg\n    dtype: image\n"
                                    f"  - name: cls\n    dtype:\n      class_label:\n        names:\n{names}---\n")
    return root


def _zip_repo(root):
    (root / "data" / "train").mkdir(parents=True)
    lines = []
    for p in range(2):
        with zipfile.ZipFile(root / "data" / "train" / f"images-{p}.zip", "w") as zf:
            for i in range(10):
                zf.writestr(f"p{p}/{i:03d}.jpg", jpeg_bytes(p * 100 + i))
                lines.append(json.dumps({"file_name": f"p{p}/{i:03d}.jpg", "label": PLACEABLE[i % 4]}))
    (root / "data" / "train" / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    (root / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n")
    return root


def _loose_repo(root):
    for c in range(4):
        (root / "train" / PLACEABLE[c]).mkdir(parents=True)
        for i in range(5):
            # sizes on both sides of the LFS threshold: small files answered by resolve, large redirected
            size = (48, 36) if i % 2 else (120, 90)
            (root / "train" / PLACEABLE[c] / f"{i}.jpg").write_bytes(jpeg_bytes(c * 10 + i, size))
    (root / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n")
    return root


@pytest.mark.parametrize("layout", ["parquet", "webdataset", "zip", "loose"])
def test_the_runs_counts_are_what_the_hub_logged_for_every_layout(hub_server, positives, tmp_path, layout):
    # issue 28 fault 3: tar shards came through hf_hub_download (hf_xet on the real Hub: no budget
    # saw them); every layout now reads through the one counted range reader
    if layout == "parquet":
        _repo(hub_server, tmp_path, shards=2)
    else:
        root = {"webdataset": _tar_repo, "zip": _zip_repo, "loose": _loose_repo}[layout](tmp_path / layout)
        hub_server.add_repo("me/pool", root)
    r = sample(hub_server, positives, tmp_path / "ds", "me/pool")
    assert r.exit_code == 0, r.output
    counted = json.loads(r.stdout)["hub"]
    counts_match(counted, hub_server)
    assert counted["cdn_bytes"] > 0 and counted["retries"] == 0
    # the card came through the same path: one resolver request, no API call, no HfFileSystem read
    card = [e for e in hub_server.requests() if e.path.endswith("/README.md")]
    assert [(e.method, e.kind) for e in card] == [("GET", "resolve")]
    # nothing is fetched twice: a second run of the same commit downloads no byte
    r = sample(hub_server, positives, tmp_path / "again", "me/pool")
    assert r.exit_code == 0, r.output
    assert hub_server.bytes_sent("cdn") == 0 == json.loads(r.stdout)["hub"]["cdn_bytes"]
    counts_match(json.loads(r.stdout)["hub"], hub_server)


@pytest.fixture
def virtual_time(hub_server, monkeypatch):
    """Waits move a virtual clock (and the test Hub's) instead of sleeping."""
    from negmine.sources import budget

    clock = VirtualClock(hub_server)
    monkeypatch.setattr(budget, "CLOCK", clock)
    monkeypatch.setenv("NEGMINE_HUB_BACKOFF", "0")
    return clock


@pytest.mark.parametrize("logged_in", [True, False])
def test_the_hubs_fixed_resolver_window_is_waited_out(hub_server, positives, tmp_path, monkeypatch, virtual_time,
                                                      logged_in):
    _repo(hub_server, tmp_path, shards=2)
    if not logged_in:
        monkeypatch.delenv("HF_TOKEN")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "no-login"))
    hub_server.faults.hub_limits = True
    hub_server.advance(100)                            # 200 s left in this window
    limit = 5000 if logged_in else 3000
    hub_server.spend("resolve", limit - 1, authenticated=logged_in)     # one resolver request left
    r = sample(hub_server, positives, tmp_path / "ds", "me/pool")
    assert r.exit_code == 0, r.output
    counted = json.loads(r.stdout)["hub"]
    refused = [e for e in hub_server.requests("resolve") if e.status == 429]
    assert len(refused) == 1 == counted["rate_limited"]
    # the client waited as the answer said (to the window's end), not a guess and not more
    assert sum(virtual_time.slept) >= 200 and hub_server.clock < 300 + 300
    counts_match(counted, hub_server)


def test_the_api_window_is_waited_out_and_its_headers_are_the_hubs(hub_server, positives, tmp_path, virtual_time):
    _repo(hub_server, tmp_path, shards=1)
    hub_server.faults.hub_limits = True
    hub_server.spend("api", 1000)
    r = sample(hub_server, positives, tmp_path / "ds", "me/pool")
    assert r.exit_code == 0, r.output
    assert sum(virtual_time.slept) >= 300 - 1
    assert json.loads(r.stdout)["hub"]["rate_limited"] >= 1


def test_a_rate_limit_that_never_lifts_is_its_own_exit_code(hub_server, positives, tmp_path, monkeypatch):
    from negmine.sources import budget

    _repo(hub_server, tmp_path, shards=1)
    hub_server.faults.hub_limits = True
    hub_server.spend("api", 1000)
    clock = VirtualClock()                              # waits pass, but the Hub's window never moves
    monkeypatch.setattr(budget, "CLOCK", clock)
    r = sample(hub_server, positives, tmp_path / "ds", "me/pool")
    assert r.exit_code == 7, r.output
    assert "429 (rate limited)" in r.stderr and r.stderr.strip().count("\n") == 0
    assert "Traceback" not in r.output


def test_a_refused_token_says_so_and_how_to_check_it(hub_server, positives, tmp_path, monkeypatch):
    # issue 28 fault 4: an expired HF_TOKEN on a public repo (the Hub answers 401 "Invalid
    # credentials in Authorization header") was reported as "access denied ... gated?"
    _repo(hub_server, tmp_path, shards=1)
    monkeypatch.setenv("HF_TOKEN", "hf_expired_token")
    r = sample(hub_server, positives, tmp_path / "ds", "me/pool")
    assert r.exit_code == 6, r.output
    line = r.stderr.strip()
    assert line.count("\n") == 0 and "refused your token" in line and "hf auth whoami" in line
    assert "unset HF_TOKEN" in line and "gated" not in line
    # the same token refused by the resolver (a file read), not only by the API
    from negmine.errors import HubAuthError
    from negmine.sources.remote import RangeFile

    sha = hub_server.repos["me/pool"].shas["main"]
    with pytest.raises(HubAuthError, match="refused your token"):
        RangeFile(f"hf://datasets/me/pool@{sha}/data/train-00000-of-00001.parquet").read([(0, 4)])


def test_a_missing_file_is_its_own_line(hub_server, tmp_path):
    from negmine.errors import SourceNotFound
    from negmine.sources.remote import RangeFile

    _repo(hub_server, tmp_path, shards=1)
    sha = hub_server.repos["me/pool"].shas["main"]
    with pytest.raises(SourceNotFound, match="data/nothing.parquet does not exist"):
        RangeFile(f"hf://datasets/me/pool@{sha}/data/nothing.parquet").read([(0, 4)])


def _path_cell_repo(root, bad_path=None):
    """Parquet whose image cells hold paths of files beside it in the repo (nothing embedded), as
    the Hub's docs describe."""
    import datasets

    (root / "images").mkdir(parents=True)
    labels = [i % 6 for i in range(24)]
    paths = []
    for i in range(24):
        name = f"images/{i:03d}.jpg"
        (root / name).write_bytes(jpeg_bytes(500 + i, (120, 90)))
        paths.append(name)
    if bad_path:
        paths = [bad_path] * len(paths)
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=CLASSES[:6])})
    ds = datasets.Dataset.from_dict({"image": [{"bytes": None, "path": p} for p in paths], "label": labels},
                                    features=feats)
    (root / "data").mkdir()
    import pyarrow.parquet as pq

    # written as is: datasets' own to_parquet would embed the files (5.x)
    pq.write_table(ds.data.table, str(root / "data" / "train-00000-of-00001.parquet"))
    (root / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n")
    return root


def test_image_cells_holding_repo_paths_are_read_from_the_repo(hub_server, positives, tmp_path):
    # issue 28 fault 5: every row was rejected as "no image bytes" and the pool called too small
    root = _path_cell_repo(tmp_path / "paths")
    hub_server.add_repo("me/paths", root)
    r = sample(hub_server, positives, tmp_path / "ds", "me/paths")
    assert r.exit_code == 0, r.output
    rows = [x for x in read_manifest(tmp_path / "ds") if x["role"] == "negative"]
    assert len(rows) == 6
    for x in rows:                                     # the very file the cell names, byte for byte
        assert (tmp_path / "ds" / x["path"]).read_bytes() == (root / f"images/{x['row']:03d}.jpg").read_bytes()
    counts_match(json.loads(r.stdout)["hub"], hub_server)
    # one resolver request per image file read, at the same revision
    sha = hub_server.repos["me/paths"].shas["main"]
    images = [e.path for e in hub_server.requests("resolve") if "/images/" in e.path]
    assert len(images) == 6 and all(f"/resolve/{sha}/images/" in p for p in images)
    # and a local copy of the same repo reads the same files
    r = invoke("sample", "-q", "-p", positives, "-s", root, "--count", 6, "--seed", 1, "--workers", 1,
               "--hash", "none", "-o", tmp_path / "local")
    assert r.exit_code == 0, r.output
    assert {x["row"] for x in read_manifest(tmp_path / "local") if x["role"] == "negative"} == {x["row"] for x in rows}


@pytest.mark.parametrize("bad", ["zip://x.jpg::https://example.com/a.zip", "/home/me/x.jpg", "../other/x.jpg"])
def test_image_cells_holding_other_paths_are_refused_in_one_line(positives, tmp_path, bad):
    root = _path_cell_repo(tmp_path / "paths", bad_path=bad)
    r = invoke("sample", "-q", "-p", positives, "-s", root, "--count", 6, "--seed", 1, "--workers", 1,
               "--hash", "none", "-o", tmp_path / "ds")
    assert r.exit_code == 4, r.output
    assert "holds file paths, not image bytes" in r.output and repr(bad) in r.output
    assert r.output.strip().count("\n") == 0


def test_a_path_cell_whose_file_is_missing_is_a_recorded_skip(positives, tmp_path):
    root = _path_cell_repo(tmp_path / "paths")
    gone = sorted((root / "images").glob("*.jpg"))[:12]
    for f in gone:
        f.unlink()
    r = invoke("sample", "-q", "-p", positives, "-s", root, "--count", 6, "--seed", 1, "--workers", 1,
               "--hash", "none", "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    rejects = [json.loads(line) for line in (tmp_path / "ds" / "rejects.jsonl").read_text().splitlines()]
    missing = [x for x in rejects if "not in the repo at this revision" in x["reason"]]
    assert missing and all(f"images/{x['row']:03d}.jpg" in x["reason"] for x in missing)
    assert {x["row"] for x in missing} <= {int(f.stem) for f in gone}
    kept = [x for x in read_manifest(tmp_path / "ds") if x["role"] == "negative"]
    assert len(kept) == 6 and all(x["row"] >= 12 for x in kept)
