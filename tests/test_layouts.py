"""Archive layouts end to end through the CLI: WebDataset tar shards and imagefolder splits (loose
files or zip archives, labelled by metadata.jsonl / metadata.csv or folders), local and as Hub repos
resolved from the HF cache."""

import hashlib
import io
import json
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from conftest import PLACEABLE_WNIDS, install_in_hf_cache, jpeg_bytes
from conftest import read_negatives as negatives
from conftest import read_record as record
from conftest import read_rejects as rejects
from negmine.cli import cli


def run(*args, ok=True):
    result = CliRunner().invoke(cli, ["sample", "--quiet", "--workers", "1", *map(str, args)])
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def png_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg_bytes(seed))).save(buf, "PNG")
    return buf.getvalue()


def make_wds(root: Path, shards: int, per_shard: int, classes: int, *, prefix: str = "shard-", seed: int = 0
             ) -> dict[tuple[str, str], int]:
    """Shuffled tar shards: KEY.jpg (some KEY.PNG) + KEY.cls. Returns {(shard, member): class}."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    truth = {}
    for k in range(shards):
        name = f"{prefix}{k:04d}.tar"
        with tarfile.open(root / name, "w") as tf:
            for i in range(per_shard):
                key = f"s{k:02d}_{i:04d}"
                cls = int(rng.integers(classes))
                img, ext = (png_bytes(k * 1000 + i), "PNG") if i % 7 == 3 else (jpeg_bytes(k * 1000 + i), "jpg")
                add(tf, f"{key}.{ext}", img)
                add(tf, f"{key}.cls", str(cls).encode())
                truth[(name, f"{key}.{ext}")] = cls
    return truth


def card(names: list[str], feature: str = "cls") -> str:
    listed = "".join(f"          '{i}': {n}\n" for i, n in enumerate(names))
    return (f"---\nlicense: cc-by-4.0\ndataset_info:\n  features:\n  - name: jpg\n    dtype: image\n"
            f"  - name: {feature}\n    dtype:\n      class_label:\n        names:\n{listed}---\n# test\n")


# -- WebDataset ----------------------------------------------------------------------------------

def test_tar_shards_draw_whole_seeded_shards_with_member_origins(positives, tmp_path):
    pool = tmp_path / "wds"
    truth = make_wds(pool, shards=6, per_shard=30, classes=8)
    before = digests(pool)
    out = tmp_path / "a"
    run("-p", positives, "-s", pool, "--allow-unmapped", "--ratio", 1, "--seed", 3, "-o", out)
    neg = negatives(out)
    assert len(neg) == 20
    src = record(out)["sources"][0]
    read = src["shards"]["read"]
    # 20 negatives wanted, twice that indexed: 2 whole shards of 30 out of 6
    assert len(read) == 2 and src["shards"]["of"] == 6 and src["rows"] == 60
    assert {r["file"] for r in neg} <= set(read)
    for r in neg:
        assert r["label"] == str(truth[(r["file"], r["member"])]) and r["source"] == str(pool)
        assert Path(r["path"]).stem == Path(r["member"]).stem
    assert src["classes_seen"] == len({c for (s, _), c in truth.items() if s in read})
    assert "2 of 6 shards chosen by seed" in src["coverage"]
    assert digests(pool) == before                                      # inputs untouched
    dry = CliRunner().invoke(cli, ["sample", "--dry-run", "-p", positives, "-s", pool, "--allow-unmapped",
                                   "--ratio", 1, "--seed", 3,
                                   "-o", tmp_path / "dry"])
    assert dry.exit_code == 0 and f"{pool}: 2 of 6 shards chosen by seed, 60 samples" in dry.output
    # reproducible by seed; another seed reads other shards
    run("-p", positives, "-s", pool, "--allow-unmapped", "--ratio", 1, "--seed", 3, "-o", tmp_path / "b")
    assert (out / "manifest.jsonl").read_bytes() == (tmp_path / "b" / "manifest.jsonl").read_bytes()
    others = [set(record(o)["sources"][0]["shards"]["read"]) for o in
              (run("-p", positives, "-s", pool, "--allow-unmapped", "--ratio", 1, "--seed", s, "-o", tmp_path / f"s{s}") and
               tmp_path / f"s{s}" for s in (4, 5, 6))]
    assert any(o != set(read) for o in others)


def test_bad_samples_in_a_shard_are_recorded_skips(positives, tmp_path):
    pool = tmp_path / "wds"
    pool.mkdir()
    with tarfile.open(pool / "only.tar", "w") as tf:
        for i in range(8):
            add(tf, f"good{i}.jpg", jpeg_bytes(i))
            add(tf, f"good{i}.json", json.dumps({"class": f"thing{i % 3}"}).encode())
        add(tf, "corrupt.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
        add(tf, "corrupt.json", b'{"class": "thing0"}')
        add(tf, "nolabel.jpg", jpeg_bytes(100))
        add(tf, "badjson.jpg", jpeg_bytes(101))
        add(tf, "badjson.json", b"{not json")
        add(tf, "labelonly.json", b'{"class": "thing1"}')               # no image: not a sample
        add(tf, "jsonok.webp", _webp(102))
        add(tf, "jsonok.json", json.dumps({"class": "thing2", "id": 7}).encode())
        add(tf, "../../escape/evil.jpg", jpeg_bytes(103))                # a hostile member name
        add(tf, "../../escape/evil.json", b'{"class": "../../../etc"}')
    out = tmp_path / "nest" / "ds"
    run("-p", positives, "-s", pool, "--allow-unmapped", "--count", 10, "--seed", 0, "-o", out)
    neg = negatives(out)
    assert sorted(r["member"] for r in neg) == sorted([f"good{i}.jpg" for i in range(8)] +
                                                      ["jsonok.webp", "../../escape/evil.jpg"])
    written = {p.resolve() for p in tmp_path.rglob("*") if p.is_file()} - {(pool / "only.tar").resolve()}
    written -= {p.resolve() for p in positives.rglob("*")}
    assert written and all(out.resolve() in p.parents for p in written)
    assert {r["member"]: r["label"] for r in neg}["jsonok.webp"] == "thing2"
    assert all(r["label"] == f"thing{int(r['member'][4]) % 3}" for r in neg if r["member"].startswith("good"))
    assert {r["member"]: r["label"] for r in neg}["../../escape/evil.jpg"] == "../../../etc"
    reasons = {r["member"]: r["reason"] for r in rejects(out)}
    assert set(reasons) == {"corrupt.jpg", "nolabel.jpg", "badjson.jpg"}
    assert "no label" in reasons["nolabel.jpg"] and "not valid JSON" in reasons["badjson.jpg"]
    assert all(r["file"] == "only.tar" for r in rejects(out))
    assert record(out)["sources"][0]["rows"] == 13                        # labelonly is no sample


def _webp(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg_bytes(seed))).save(buf, "WEBP")
    return buf.getvalue()


def test_truncated_shard_keeps_its_whole_members_and_says_so(positives, tmp_path):
    pool = tmp_path / "wds"
    make_wds(pool, shards=1, per_shard=12, classes=3)
    data = (pool / "shard-0000.tar").read_bytes()
    members = tarfile.open(pool / "shard-0000.tar").getmembers()
    cut = members[14].offset_data + 10                     # inside the 8th sample's image (s00_0007)
    (pool / "shard-0000.tar").write_bytes(data[:cut])
    out = tmp_path / "ds"
    run("-p", positives, "-s", pool, "--allow-unmapped", "--count", 5, "--seed", 1, "-o", out)
    neg = negatives(out)
    assert len(neg) == 5 and all(int(r["member"][4:8]) < 7 for r in neg)
    assert record(out)["sources"][0]["rows"] == 7
    assert any("truncated" in w and "shard-0000.tar" in w for w in record(out)["warnings"])


def test_a_file_that_is_not_a_tar_is_a_one_line_error(positives, tmp_path):
    pool = tmp_path / "wds"
    pool.mkdir()
    (pool / "broken.tar").write_bytes(b"this is not a tar archive at all" * 40)
    r = run("-p", positives, "-s", pool, "-o", tmp_path / "ds", ok=False)
    assert r.exit_code == 4 and "broken.tar is not a readable tar" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_hub_webdataset_repo_names_cls_codes_from_the_card(positives, tmp_path):
    repo = tmp_path / "repo"
    names = PLACEABLE_WNIDS[:8]
    truth = make_wds(repo, shards=5, per_shard=20, classes=8, prefix="imagenet1k-train-")
    make_wds(repo, shards=1, per_shard=20, classes=8, prefix="imagenet1k-validation-", seed=9)
    (repo / "README.md").write_text(card(names))
    sha = install_in_hf_cache(repo, "someone/tiny-wds")
    out = tmp_path / "ds"
    run("-p", positives, "-s", "someone/tiny-wds", "--count", 15, "--seed", 2, "-o", out)
    neg = negatives(out)
    assert len(neg) == 15 and all(r["revision"] == sha and r["source"] == "someone/tiny-wds" for r in neg)
    assert all(r["file"].startswith("imagenet1k-train-") and r["licence"] == "CC-BY-4.0" for r in neg)
    assert all(r["label"] == names[truth[(r["file"], r["member"])]] for r in neg)
    src = record(out)["sources"][0]
    assert src["classes"] == 8 and src["label_kind"] == "wnid" and len(src["shards"]["read"]) == 2
    run("-p", positives, "-s", "someone/tiny-wds?split=validation", "--count", 5, "--seed", 2,
        "-o", tmp_path / "val")
    assert {r["file"] for r in negatives(tmp_path / "val")} == {"imagenet1k-validation-0000.tar"}


# -- imagefolder: metadata files and zips ---------------------------------------------------------

def test_local_imagefolder_labels_come_from_metadata_not_folders(positives, tmp_path):
    pool = tmp_path / "pool"
    truth = {}
    for split, n in (("train", 24), ("test", 6)):
        (pool / split / "batch1").mkdir(parents=True)
        lines = []
        for i in range(n):
            name = f"batch1/img{i:03d}.jpg"
            (pool / split / name).write_bytes(jpeg_bytes(i + (0 if split == "train" else 500)))
            label = ["zebra", "tractor", "teapot"][i % 3]
            truth[(split, name)] = label
            lines.append(json.dumps({"file_name": name, "label": label, "caption": "x"}))
        (pool / split / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    before = digests(pool)
    out = tmp_path / "ds"
    run("-p", positives, "-s", pool, "--count", 12, "--seed", 4, "-o", out)
    neg = negatives(out)
    assert len(neg) == 12 and all(r["file"].startswith("train/batch1/") and r["member"] is None for r in neg)
    assert all(r["label"] == truth[("train", r["file"][len("train/"):])] for r in neg)
    assert Counter(r["label"] for r in neg) == {"zebra": 4, "tractor": 4, "teapot": 4}      # stratified
    assert record(out)["sources"][0]["labels_from"] == "metadata"
    run("-p", positives, "-s", f"{pool}?split=test", "--count", 6, "--seed", 4, "-o", tmp_path / "t")
    assert {r["file"].split("/")[0] for r in negatives(tmp_path / "t")} == {"test"}
    assert digests(pool) == before


def test_zip_archives_with_folder_labels_csv_labels_and_a_bad_member(positives, tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    with zipfile.ZipFile(pool / "part1.zip", "w") as zf:      # classes from the folders inside the zip
        for i in range(6):
            zf.writestr(f"cat/c{i}.jpg", jpeg_bytes(i))
            zf.writestr(f"dog/d{i}.jpg", jpeg_bytes(50 + i), compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("__MACOSX/cat/._c0.jpg", b"resource fork")
    out = tmp_path / "ds"
    run("-p", positives, "-s", pool, "--count", 10, "--seed", 1, "-o", out)
    neg = negatives(out)
    assert len(neg) == 10 and {r["file"] for r in neg} == {"part1.zip"}
    assert all(r["label"] == r["member"].split("/")[0] for r in neg)
    assert Counter(r["label"] for r in neg) == {"cat": 5, "dog": 5}

    # metadata.csv beside the zip names members as file_name; one member's bytes are damaged
    pool2 = tmp_path / "pool2"
    pool2.mkdir()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(8):
            zf.writestr(f"x/{i}.jpg", jpeg_bytes(200 + i))
    data = bytearray(buf.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("x/3.jpg")
    start = info.header_offset + 30 + len(info.filename)
    data[start + 100:start + 110] = b"\0" * 10                 # CRC no longer matches
    (pool2 / "imgs.zip").write_bytes(bytes(data))
    (pool2 / "metadata.csv").write_text("file_name,label\n" + "".join(f"x/{i}.jpg,{i % 2}\n" for i in range(8)))
    (pool2 / "README.md").write_text(card(["kettle", "lamp"], feature="label"))
    out2 = tmp_path / "ds2"
    run("-p", positives, "-s", pool2, "--count", 7, "--seed", 1, "-o", out2)
    neg = negatives(out2)
    assert sorted(r["member"] for r in neg) == [f"x/{i}.jpg" for i in range(8) if i != 3]
    assert all(r["label"] == ["kettle", "lamp"][int(r["member"][2]) % 2] for r in neg)
    assert [(r["member"], "CRC" in r["reason"] or "zip member" in r["reason"]) for r in rejects(out2)] == \
        [("x/3.jpg", True)]


def _zipped_repo(tmp_path):
    """A Hub imagefolder repo: zips of images per split, labels in metadata.jsonl, a ClassLabel card."""
    repo = tmp_path / "repo"
    (repo / "data" / "train").mkdir(parents=True)
    (repo / "data" / "validation").mkdir(parents=True)
    truth = {}
    for split, parts in (("train", 2), ("validation", 1)):
        lines = []
        for p in range(parts):
            with zipfile.ZipFile(repo / "data" / split / f"images-{p}.zip", "w") as zf:
                for i in range(10):
                    name = f"p{p}/{i:03d}.jpg"
                    zf.writestr(name, jpeg_bytes(p * 100 + i + (1000 if split == "validation" else 0)))
                    truth[(f"data/{split}/images-{p}.zip", name)] = i % 4
                    lines.append(json.dumps({"file_name": name, "label": i % 4}))
        (repo / "data" / split / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    names = ["anvil", "bucket", "candle", "drum"]
    (repo / "README.md").write_text(card(names, feature="label"))
    return repo, truth, names


def test_hub_imagefolder_repo_with_zips_and_metadata(positives, tmp_path):
    repo, truth, names = _zipped_repo(tmp_path)
    sha = install_in_hf_cache(repo, "someone/zipped")
    out = tmp_path / "ds"
    run("-p", positives, "-s", "someone/zipped", "--count", 12, "--seed", 0, "-o", out)
    neg = negatives(out)
    assert len(neg) == 12 and all(r["revision"] == sha for r in neg)
    assert all(r["file"].startswith("data/train/images-") for r in neg)
    assert all(r["label"] == names[truth[(r["file"], r["member"])]] for r in neg)
    assert Counter(r["label"] for r in neg) == {n: 3 for n in names}
    run("-p", positives, "-s", "someone/zipped?split=validation", "--count", 4, "--seed", 0, "-o", tmp_path / "v")
    assert {r["file"] for r in negatives(tmp_path / "v")} == {"data/validation/images-0.zip"}


def test_hub_zips_online_cost_one_resolver_request_each_and_no_byte_twice(hub_server, positives, tmp_path):
    repo, truth, names = _zipped_repo(tmp_path)
    hub_server.add_repo("someone/zipped", repo)
    out = tmp_path / "ds"
    r = CliRunner().invoke(cli, ["sample", "-q", "--json", "-p", str(positives), "-s", "someone/zipped",
                                 "--count", "12", "--seed", "0", "-o", str(out)])
    assert r.exit_code == 0, r.output
    neg = negatives(out)
    assert all(r["label"] == names[truth[(r["file"], r["member"])]] for r in neg)
    resolved = [e.path for e in hub_server.requests("resolve")]
    # the card, the split's metadata file, and one HEAD per archive: not one request per image
    assert sum(".zip" in p for p in resolved) == 2 and len(resolved) <= 2 + 3
    spans = {}
    for e in hub_server.requests("cdn"):
        a, b = map(int, e.range.split("=")[1].split("-"))
        spans.setdefault(e.path.split("?")[0], []).append((a, b + 1))
    for f, rs in spans.items():
        rs.sort()
        assert all(b0 <= a1 for (_, b0), (a1, _) in zip(rs, rs[1:])), (f, rs)


def test_a_damaged_zip_is_a_one_line_error(positives, tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "images.zip").write_bytes(b"PK\x03\x04 truncated nonsense")
    r = run("-p", positives, "-s", pool, "-o", tmp_path / "ds", ok=False)
    assert r.exit_code == 4 and "images.zip is not a readable zip archive" in r.output
    assert "Traceback" not in r.output


def test_hub_imagefolder_repo_of_loose_files_with_metadata_csv(positives, tmp_path):
    repo = tmp_path / "repo"
    (repo / "train" / "pics").mkdir(parents=True)
    lines = ["file_name,caption,kind"]
    for i in range(12):
        (repo / "train" / "pics" / f"{i:02d}.jpg").write_bytes(jpeg_bytes(300 + i))
        lines.append(f"pics/{i:02d}.jpg,a photo,{['bench', 'kite', 'sofa'][i % 3]}")
    (repo / "train" / "metadata.csv").write_text("\n".join(lines) + "\n")
    (repo / "README.md").write_text("---\nlicense: mit\n---\n")
    install_in_hf_cache(repo, "someone/loose-meta")
    out = tmp_path / "ds"
    run("-p", positives, "-s", "someone/loose-meta?label=kind", "--count", 6, "--seed", 5, "-o", out)
    neg = negatives(out)
    assert len(neg) == 6 and all(r["file"].startswith("train/pics/") and r["licence"] == "MIT" for r in neg)
    assert all(r["label"] == ["bench", "kite", "sofa"][int(Path(r["file"]).stem) % 3] for r in neg)
    assert Counter(r["label"] for r in neg) == {"bench": 2, "kite": 2, "sofa": 2}


def test_a_missing_split_of_an_archive_pool_is_a_one_line_error(positives, tmp_path):
    make_wds(tmp_path / "wds", shards=2, per_shard=5, classes=2, prefix="pool-train-")
    r = run("-p", positives, "-s", f"{tmp_path / 'wds'}?split=test", "-o", tmp_path / "ds", ok=False)
    assert r.exit_code == 4 and "has no split 'test'; splits: train" in r.output and "Traceback" not in r.output


def test_label_option_picks_a_json_field_over_cls(positives, tmp_path):
    pool = tmp_path / "wds"
    pool.mkdir()
    with tarfile.open(pool / "a.tar", "w") as tf:
        for i in range(6):
            add(tf, f"k{i}.jpg", jpeg_bytes(i))
            add(tf, f"k{i}.cls", str(i % 2).encode())
            add(tf, f"k{i}.json", json.dumps({"label": i % 2, "class_name": ["tench", "goldfish"][i % 2]}).encode())
    # no card: the ints are class ids, which no check can place: refused, or drawn when allowed
    r = run("-p", positives, "-s", pool, "--count", 4, "--seed", 0, "-o", tmp_path / "cls", ok=False)
    assert r.exit_code == 1 and "bare class ids" in r.output and "--allow-unmapped" in r.output
    run("-p", positives, "-s", pool, "--allow-unmapped", "--count", 4, "--seed", 0, "-o", tmp_path / "cls")
    assert {r["label"] for r in negatives(tmp_path / "cls")} == {"0", "1"}          # the int as label
    assert any("--allow-unmapped: 2 classes" in w for w in record(tmp_path / "cls")["warnings"])
    run("-p", positives, "-s", f"{pool}?label=class_name", "--count", 4, "--seed", 0, "-o", tmp_path / "named")
    assert all(r["label"] == ["tench", "goldfish"][int(r["member"][1]) % 2] for r in negatives(tmp_path / "named"))


def test_hub_shards_are_read_from_one_counted_download(hub_server, tmp_path):
    # The online base (hf://datasets/OWNER/NAME@SHA): a chosen shard is fetched whole through the
    # counted range reader (not hf_hub_download, whose hf_xet path no request budget sees) into the
    # per-commit range cache, and members are re-read from that local copy, never fetched again.
    from negmine.sources import SourceSpec, WebDatasetSource

    repo = tmp_path / "repo"
    truth = make_wds(repo / "data", shards=3, per_shard=10, classes=4, prefix="train-")
    sha = hub_server.add_repo("someone/online-wds", repo).shas["main"]
    base = f"hf://datasets/someone/online-wds@{sha}"
    src = WebDatasetSource(id="someone/online-wds", base=base,
                           files=[f"{base}/data/train-{k:04d}.tar" for k in range(3)], split="train", spec=SourceSpec("someone/online-wds"), revision=sha, seed=1, want=8)
    assert len(src.shards) == 2
    served = [e for e in hub_server.requests("cdn")]
    sizes = {s.rel: (repo / s.rel).stat().st_size for s in src.shards}
    # one resolver request and one whole-file range request per chosen shard
    assert len(hub_server.requests("resolve")) == 2 and len(served) == 2
    assert sorted(e.range for e in served) == sorted(f"bytes=0-{n - 1}" for n in sizes.values())
    items = list(src.read(range(len(src))))
    # reading members fetched nothing more
    assert len(hub_server.requests("resolve")) + len(hub_server.requests("cdn")) == 4
    assert len(items) == 20 and all(i.error is None for i in items)
    for item in items:
        assert item.origin["file"].startswith("data/train-")
        assert src.label_of(item.row) == str(truth[(item.origin["file"][5:], item.origin["member"])])
        assert Image.open(io.BytesIO(item.data)).size == (48, 36)


def test_zip_members_read_in_one_go_match_zipfile(tmp_path):
    from negmine.sources.imagefolder import member_ends, read_member

    path = tmp_path / "mixed.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("stored.jpg", jpeg_bytes(1))
        zf.writestr("deflated.png", png_bytes(2), compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("bzip2.jpg", jpeg_bytes(3), compress_type=zipfile.ZIP_BZIP2)
        info = zipfile.ZipInfo("big-extra/é.jpg")
        info.extra = b"\xca\xfe" + (3000).to_bytes(2, "little") + b"x" * 3000
        zf.writestr(info, jpeg_bytes(4))
        zf.writestr("empty.jpg", b"")
    with zipfile.ZipFile(path) as zf:
        ends = member_ends(zf)
        for name in zf.namelist():
            assert read_member(zf, name) == zf.read(name) == read_member(zf, name, ends[name])


def test_a_folder_of_images_with_a_stray_tar_is_a_one_line_error(positives, tmp_path):
    pool = tmp_path / "pool"
    (pool / "cat").mkdir(parents=True)
    (pool / "cat" / "a.jpg").write_bytes(jpeg_bytes(1))
    make_wds(pool / "backup", shards=1, per_shard=3, classes=1)
    r = run("-p", positives, "-s", pool, "-o", tmp_path / "ds", ok=False)
    assert r.exit_code == 4 and "holds both .tar shards and image files" in r.output


def test_metadata_labels_only_the_files_it_lists(positives, tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(6):
        (pool / f"{i}.jpg").write_bytes(jpeg_bytes(700 + i))
    (pool / "metadata.jsonl").write_text("".join(json.dumps({"file_name": f"{i}.jpg", "label": "vase"}) + "\n"
                                                 for i in range(4)))
    out = tmp_path / "ds"
    # the files it does not list are no part of the dataset (datasets does not load them): left out
    run("-p", positives, "-s", pool, "--count", 4, "--seed", 0, "-o", out)
    assert {r["file"]: r["label"] for r in negatives(out)} == {f"{i}.jpg": "vase" for i in range(4)}
    assert {r["file"] for r in rejects(out) if r["reason"].startswith("no metadata record")} == {"4.jpg", "5.jpg"}
    # drawn only when asked for, with no label
    run("-p", positives, "-s", pool, "--count", 6, "--seed", 0, "--allow-unlabelled", "-o", tmp_path / "all")
    assert {r["file"]: r["label"] for r in negatives(tmp_path / "all")} == {
        "0.jpg": "vase", "1.jpg": "vase", "2.jpg": "vase", "3.jpg": "vase", "4.jpg": None, "5.jpg": None}
