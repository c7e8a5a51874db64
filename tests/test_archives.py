"""Archives and cards that negmine cannot take at face value, end to end through the CLI on real
photos: a tar member that occurs twice, zip members Python's zipfile cannot decompress, and the
card's `configs` choosing a subset with `data_dir`. Each is read as the ecosystem's readers read it
or recorded as a skip with its reason; never a traceback, never a staging folder left behind."""

import hashlib
import io
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import SHARED, install_in_hf_cache
from conftest import read_negatives as negatives
from conftest import read_record as record
from conftest import read_rejects as rejects
from negmine.cli import cli

PHOTOS = sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"), key=lambda p: (p.stat().st_size, p.name))


def photo(k: int) -> bytes:
    """The k-th smallest ImageNet photo of the shared set (distinct real photos, quick to encode)."""
    return PHOTOS[k].read_bytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sample(*args, ok: bool = True):
    r = CliRunner().invoke(cli, ["sample", "--quiet", "--workers", "1", *map(str, args)])
    if ok:
        assert r.exit_code == 0, r.output + repr(r.exception)
    assert "Traceback" not in r.output
    return r


def no_staging(out: Path) -> bool:
    return not any(p.name.endswith(".negmine-partial") for p in out.parent.iterdir())


def add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


# -- a tar member that occurs twice ----------------------------------------------------------------

CLS_CARD = ("---\nlicense: cc-by-4.0\ndataset_info:\n  features:\n  - name: jpg\n    dtype: image\n"
            "  - name: cls\n    dtype:\n      class_label:\n        names:\n          '0': kettle\n"
            "          '1': lamp\n---\n")


def repeated_member_shard(path: Path) -> dict[str, bytes]:
    """One shard: 10 good samples, and three whose members repeat (the image, the label, the image
    under another case of its extension). Returns the bytes of every repeated copy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    copies = {}
    with tarfile.open(path, "w") as tf:
        for i in range(10):
            add(tf, f"good{i:02d}.jpg", photo(i))
            add(tf, f"good{i:02d}.cls", str(i % 2).encode())
        add(tf, "twoimg.jpg", photo(20))
        add(tf, "twoimg.cls", b"0")
        add(tf, "twolab.jpg", photo(22))
        add(tf, "twolab.cls", b"0")
        add(tf, "twolab.cls", b"1")                    # tar -x keeps "1", the first-wins reader "0"
        add(tf, "twocase.jpg", photo(23))
        add(tf, "twocase.cls", b"1")
        add(tf, "twocase.JPG", photo(24))
        add(tf, "twoimg.jpg", photo(21))               # appended later, as `tar -r` does: not adjacent
        copies = {"twoimg": [photo(20), photo(21)], "twolab": [photo(22)], "twocase": [photo(23), photo(24)]}
    return copies


@pytest.mark.parametrize("where", ["local", "hf-cache", "http"])
def test_a_tar_member_that_occurs_twice_makes_its_sample_a_recorded_skip(positives, tmp_path, where, request):
    repo = tmp_path / "wds"
    copies = repeated_member_shard(repo / "train-0000.tar")
    (repo / "README.md").write_text(CLS_CARD)
    source = str(repo) if where == "local" else "someone/repeats"
    if where == "hf-cache":
        install_in_hf_cache(repo, "someone/repeats")
    elif where == "http":
        request.getfixturevalue("hub_server").add_repo("someone/repeats", repo)
    out = tmp_path / "out"
    sample("-p", positives, "-s", source, "--count", 13, "--allow-short", "--seed", 0, "-o", out)
    neg = negatives(out)
    # the 10 good samples only, labelled by their own .cls; no copy of a repeated member is drawn
    assert sorted(r["member"] for r in neg) == [f"good{i:02d}.jpg" for i in range(10)]
    assert all(r["label"] == ["kettle", "lamp"][int(r["member"][4:6]) % 2] for r in neg)
    assert not {r["sha256"] for r in neg} & {sha(b) for bs in copies.values() for b in bs}
    skipped = {r["member"]: r for r in rejects(out)}
    assert set(skipped) == {"twoimg.jpg", "twolab.jpg", "twocase.jpg"}
    for r in skipped.values():
        assert r["file"] == "train-0000.tar" and "more than once" in r["reason"]
        assert "shard train-0000.tar" in r["reason"] and "neither copy is used" in r["reason"]
    assert "twolab.cls" in skipped["twolab.jpg"]["reason"] and "twocase.JPG" in skipped["twocase.jpg"]["reason"]
    src = record(out)["sources"][0]
    assert src["rows"] == 13 and src["unusable"]["samples"] == 3
    assert {r["member"] for r in src["unusable"]["first"]} == set(skipped)
    # the plan says so before any work
    dry = CliRunner().invoke(cli, ["sample", "--dry-run", "-p", str(positives), "-s", source, "--count", "5",
                                   "-o", str(tmp_path / "dry")])
    assert dry.exit_code == 0 and "3 samples unusable, skipped with a reason if drawn" in dry.output


# -- zip members zipfile cannot read ---------------------------------------------------------------

def _patch_method(data: bytearray, info: zipfile.ZipInfo, method: int | None = None, flags: int = 0) -> None:
    """Set a member's compression method and OR in general-purpose flags, in its local header and its
    central-directory record alike (as an archiver that wrote them would)."""
    cd = data.find(b"PK\x01\x02")
    while cd >= 0:
        n, = struct.unpack_from("<H", data, cd + 28)
        if data[cd + 46:cd + 46 + n].decode() == info.filename:
            break
        cd = data.find(b"PK\x01\x02", cd + 46)
    for off, at in ((info.header_offset, 6), (cd, 8)):         # flags, then method, after the signature
        flag, = struct.unpack_from("<H", data, off + at)
        struct.pack_into("<H", data, off + at, flag | flags)
        if method is not None:
            struct.pack_into("<H", data, off + at + 2, method)


def awkward_zip(path: Path, metadata_deflate64: bool = False) -> None:
    """cat/ and dog/ photos, Deflate-compressed, plus: a member compressed with Deflate64 (method 9;
    its stream is of stored blocks, which Deflate64 shares with Deflate, so `unzip -t` and 7-Zip
    accept it, and Python's zipfile raises NotImplementedError), one marked encrypted, one whose bytes
    fail their CRC. With `metadata_deflate64`, a metadata.csv inside it is the Deflate64 member."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(10):
            zf.writestr(f"{['cat', 'dog'][i % 2]}/p{i:02d}.jpg", photo(i))
        zf.writestr("dog/deflate64.jpg", photo(30), compresslevel=0)
        zf.writestr("cat/encrypted.jpg", photo(31))
        zf.writestr("dog/badcrc.jpg", photo(32), compress_type=zipfile.ZIP_STORED)
        if metadata_deflate64:
            zf.writestr("metadata.csv", "file_name,label\n" + "".join(f"cat/p{i:02d}.jpg,x\n" for i in range(10)),
                        compresslevel=0)
    data = bytearray(buf.getvalue())
    zf = zipfile.ZipFile(io.BytesIO(bytes(data)))
    _patch_method(data, zf.getinfo("metadata.csv" if metadata_deflate64 else "dog/deflate64.jpg"), method=9)
    _patch_method(data, zf.getinfo("cat/encrypted.jpg"), flags=0x1)
    bad = zf.getinfo("dog/badcrc.jpg")
    start = bad.header_offset + 30 + len(bad.filename)
    data[start + 500:start + 510] = b"\0" * 10
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["local", "http"])
def test_zip_members_zipfile_cannot_read_are_recorded_skips(positives, tmp_path, where, request):
    pool = tmp_path / "pool"
    awkward_zip(pool / "images.zip")
    with zipfile.ZipFile(pool / "images.zip") as zf:                # the failure this guards against
        with pytest.raises(NotImplementedError, match="compression method is not supported"):
            zf.read("dog/deflate64.jpg")
        info = zf.getinfo("dog/deflate64.jpg")
    # and the member is valid: its stream of stored blocks inflates to the photo (`unzip -t` agrees)
    raw = (pool / "images.zip").read_bytes()
    n, e = struct.unpack_from("<HH", raw, info.header_offset + 26)
    start = info.header_offset + 30 + n + e
    assert zlib.decompress(raw[start:start + info.compress_size], -15) == photo(30)
    source = str(pool)
    if where == "http":                      # a Hub repo: members read by exact range requests
        request.getfixturevalue("hub_server").add_repo("someone/awkward", pool)
        source = "someone/awkward"
    out = tmp_path / "out"
    sample("-p", positives, "-s", source, "--count", 13, "--allow-short", "--seed", 1, "-o", out)
    assert sorted(r["member"] for r in negatives(out)) == sorted(f"{['cat', 'dog'][i % 2]}/p{i:02d}.jpg"
                                                                  for i in range(10))
    reasons = {r["member"]: r["reason"] for r in rejects(out)}
    assert set(reasons) == {"dog/deflate64.jpg", "cat/encrypted.jpg", "dog/badcrc.jpg"}
    assert "compression method 9 (Deflate64) is not supported" in reasons["dog/deflate64.jpg"]
    assert "encrypted" in reasons["cat/encrypted.jpg"] and "CRC" in reasons["dog/badcrc.jpg"]
    assert all(r["file"] == "images.zip" for r in rejects(out))
    assert no_staging(out)
    # known from the central directory before any work: the plan counts them
    assert record(out)["sources"][0]["unusable"]["samples"] == 2
    dry = CliRunner().invoke(cli, ["sample", "--dry-run", "-p", str(positives), "-s", source, "--count", "5",
                                   "-o", str(tmp_path / "dry")])
    assert dry.exit_code == 0 and "2 images unusable, skipped with a reason if drawn" in dry.output


def test_a_metadata_file_zipfile_cannot_read_is_a_one_line_error(positives, tmp_path):
    pool = tmp_path / "pool"
    awkward_zip(pool / "images.zip", metadata_deflate64=True)
    out = tmp_path / "out"
    r = sample("-p", positives, "-s", pool, "--count", 5, "-o", out, ok=False)
    assert r.exit_code == 4 and "cannot read metadata.csv in images.zip" in r.output and "Deflate64" in r.output
    assert len(r.output.strip().splitlines()) == 1 and no_staging(out) and not out.exists()


# -- card configs with data_dir --------------------------------------------------------------------

def _loose_repo(root: Path, default: str | None = "animals") -> Path:
    """Loose photos in two subsets, animals/{cat,dog} and vehicles/{car,bus}, chosen by data_dir."""
    k = 0
    for subset, classes in (("animals", ("cat", "dog")), ("vehicles", ("car", "bus"))):
        for cls in classes:
            (root / subset / cls).mkdir(parents=True)
            for i in range(4):
                (root / subset / cls / f"{cls}{i}.jpg").write_bytes(photo(k))
                k += 1
    mark = {name: "\n  default: true" if name == default else "" for name in ("animals", "vehicles")}
    (root / "README.md").write_text("---\nlicense: cc0-1.0\nconfigs:\n"
                                    f"- config_name: animals\n  data_dir: animals{mark['animals']}\n"
                                    f"- config_name: vehicles\n  data_dir: vehicles{mark['vehicles']}\n---\n")
    return root


def test_card_configs_with_data_dir_choose_the_subset_locally(positives, tmp_path):
    repo = _loose_repo(tmp_path / "repo")
    sample("-p", positives, "-s", repo, "--count", 6, "--seed", 0, "-o", tmp_path / "a")
    neg = negatives(tmp_path / "a")
    assert len(neg) == 6 and {r["label"] for r in neg} <= {"cat", "dog"}
    assert all(r["file"].startswith("animals/") for r in neg)
    sample("-p", positives, "-s", f"{repo}?config=vehicles", "--count", 6, "--seed", 0, "-o", tmp_path / "v")
    neg = negatives(tmp_path / "v")
    assert len(neg) == 6 and {r["label"] for r in neg} <= {"car", "bus"}
    assert all(r["file"].startswith("vehicles/") for r in neg)
    r = sample("-p", positives, "-s", f"{repo}?config=plants", "-o", tmp_path / "x", ok=False)
    assert r.exit_code == 4 and "has no config 'plants'; configs: animals, vehicles" in r.output


def test_several_card_configs_and_no_default_is_a_one_line_error(positives, tmp_path):
    repo = _loose_repo(tmp_path / "repo", default=None)
    r = sample("-p", positives, "-s", repo, "--count", 4, "-o", tmp_path / "a", ok=False)
    assert r.exit_code == 4 and "has configs animals, vehicles and none is marked the default" in r.output
    assert "?config=" in r.output and len(r.output.strip().splitlines()) == 1


def _parquet_config_repo(root: Path) -> Path:
    """Two configs, each a data_dir with data_files relative to it and its own ClassLabel names in
    dataset_info; the parquet files carry plain int labels (the card names them), and a third folder
    no config selects."""
    img = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    k = 0
    for folder in ("birds", "tools", "old"):
        (root / folder).mkdir(parents=True)
        rows = []
        for i in range(8):
            rows.append({"image": {"bytes": photo(k), "path": None}, "label": i % 2})
            k += 1
        pq.write_table(pa.table({"image": pa.array([r["image"] for r in rows], img),
                                 "label": pa.array([r["label"] for r in rows], pa.int64())}),
                       root / folder / "train.parquet")
    names = {"birds": ["robin", "jay"], "tools": ["hammer", "saw"]}
    info = "".join(f"- config_name: {c}\n  features:\n  - name: image\n    dtype: image\n  - name: label\n"
                   f"    dtype:\n      class_label:\n        names:\n          '0': {n[0]}\n          '1': {n[1]}\n"
                   for c, n in names.items())
    (root / "README.md").write_text(
        "---\nlicense: cc0-1.0\nconfigs:\n"
        "- config_name: birds\n  data_dir: birds\n  default: true\n  data_files:\n  - split: train\n    path: train.parquet\n"
        "- config_name: tools\n  data_dir: tools\n  data_files:\n  - split: train\n    path: train.parquet\n"
        f"dataset_info:\n{info}---\n")
    return root


@pytest.mark.parametrize("where", ["local", "hub"])
def test_card_config_data_files_are_relative_to_data_dir_and_named_by_that_config(positives, tmp_path, where):
    repo = _parquet_config_repo(tmp_path / "repo")
    source = str(repo)
    if where == "hub":
        install_in_hf_cache(repo, "someone/subsets")
        source = "someone/subsets"
    sample("-p", positives, "-s", source, "--count", 6, "--seed", 0, "-o", tmp_path / "b")
    neg = negatives(tmp_path / "b")
    assert len(neg) == 6 and {r["file"] for r in neg} == {"birds/train.parquet"}
    assert {r["label"] for r in neg} == {"robin", "jay"}
    sample("-p", positives, "-s", f"{source}?config=tools", "--count", 6, "--seed", 0, "-o", tmp_path / "t")
    neg = negatives(tmp_path / "t")
    # the tools config's own class names, not the first config's
    assert {r["file"] for r in neg} == {"tools/train.parquet"} and {r["label"] for r in neg} == {"hammer", "saw"}


def test_card_config_data_dir_over_http(hub_server, positives, tmp_path):
    repo = _loose_repo(tmp_path / "repo")
    hub_server.add_repo("someone/subsets", repo)
    out = tmp_path / "v"
    r = CliRunner().invoke(cli, ["sample", "-q", "--workers", "1", "-p", str(positives), "-s",
                                 "someone/subsets?config=vehicles", "--count", "6", "--seed", "0", "-o", str(out)])
    assert r.exit_code == 0, r.output
    neg = negatives(out)
    assert len(neg) == 6 and {r["label"] for r in neg} <= {"car", "bus"} and len({r["label"] for r in neg}) == 2
    assert all(r["file"].split("/")[0] == r["label"] for r in neg)       # files of vehicles/, by class


def test_a_config_the_card_does_not_declare_is_a_one_line_error(positives, tmp_path):
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    with zipfile.ZipFile(repo / "data" / "train.zip", "w") as zf:
        for i in range(6):
            zf.writestr(f"{['cat', 'dog'][i % 2]}/p{i}.jpg", photo(i))
    r = sample("-p", positives, "-s", f"{repo}?config=animals", "--count", 3, "-o", tmp_path / "a", ok=False)
    assert r.exit_code == 4 and "has no config 'animals'" in r.output and "declares no configs" in r.output
    (repo / "data" / "train.zip").unlink()
    (repo / "data" / "cat").mkdir()
    for i in range(3):
        (repo / "data" / "cat" / f"p{i}.jpg").write_bytes(photo(i))        # a plain folder of images
    r = sample("-p", positives, "-s", f"{repo}?config=animals", "--count", 3, "-o", tmp_path / "b", ok=False)
    assert r.exit_code == 4 and "has no config 'animals'" in r.output


# -- the worker pool ---------------------------------------------------------------------------------

def test_a_worker_process_that_dies_is_a_one_line_resumable_error():
    import os

    from negmine.engine.distribute import EngineFailed, ProcessDistributor

    d = ProcessDistributor(1)
    try:
        with pytest.raises(EngineFailed, match="a worker process died") as e:
            list(d.imap(os._exit, [3]))
        assert e.value.resumable and "\n" not in str(e.value)
    finally:
        d.close()
