"""Every test runs offline, against a private HF cache: the Hub code path is exercised for real
(huggingface_hub resolves repos from the cache) without any network."""

import os
import shutil
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="negmine-hf-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("HF_HUB_CACHE", None)
os.environ.pop("HF_DATASETS_CACHE", None)
os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
os.environ["NEGMINE_CACHE"] = os.path.join(_HF_HOME, "negmine-cache")

import io  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import sys  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))   # tests/hub_server.py, for the fixture and bench/
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HF_HOME, ignore_errors=True)


def jpeg_bytes(seed: int, size=(48, 36)) -> bytes:
    """A small, distinct photo-like JPEG: random smooth colour field, different per seed."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    im = Image.fromarray(small, "RGB").resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


# Real WordNet nouns (artifacts, none an ImageNet-1k class, so no co-occurrence prior applies) for test
# pools whose class names the test is not about: a pool class WordNet cannot place ('class0') is left
# out of the draw, so made-up names would test that rule instead (negmine.filters.overlap)
PLACEABLE = ["chair", "table", "lamp", "bottle", "kettle", "clock", "bicycle", "guitar", "ladder", "basket",
             "bench", "globe", "jar", "spoon", "fork", "bowl", "mirror", "box", "boat", "book", "pencil", "sofa",
             "rug", "towel", "stool", "blanket", "helmet", "knife", "scissors", "drawer"]
# their wnids (the first 24), for pools named by wnid
PLACEABLE_WNIDS = ["n03001627", "n04379243", "n03636649", "n02876657", "n03612814", "n03046257", "n02834778",
                   "n03467517", "n03632277", "n02801938", "n02828884", "n03440512", "n03593526", "n04284002",
                   "n03383948", "n02880940", "n03773035", "n02883344", "n02858304", "n06410904", "n03908204",
                   "n04256520", "n04118021", "n04459362"]


def make_parquet_repo(root: Path, class_names, per_class: int, *, shards: int = 1, string_labels: bool = False,
                      image_column: str = "image", label_column: str = "label", licence: str = "cc-by-4.0",
                      split: str = "train", seed: int = 0, layout: str = "pages", shuffled: bool = False,
                      row_group_rows: int = 10, image_size=(48, 36)) -> Path:
    """A dataset repo in Hub layout: data/<split>-0000k-of-0000n.parquet + card. Rows are sorted by
    class unless `shuffled`. `layout`: "pages", as `datasets` 5.x writes shards (page index,
    content-defined pages), or "row-groups", as repos pushed before 2025 were written (row groups of
    `row_group_rows` rows, no page index)."""
    import datasets

    labels = [i for i in range(len(class_names)) for _ in range(per_class)]
    if shuffled:
        labels = np.random.default_rng(seed).permutation(labels).tolist()
    images = [{"bytes": jpeg_bytes(seed * 100_000 + k, image_size), "path": None} for k in range(len(labels))]
    if string_labels:
        feats = datasets.Features({image_column: datasets.Image(), label_column: datasets.Value("string")})
        label_values = [class_names[i] for i in labels]
    else:
        feats = datasets.Features({image_column: datasets.Image(),
                                   label_column: datasets.ClassLabel(names=list(class_names))})
        label_values = labels
    ds = datasets.Dataset.from_dict({image_column: images, label_column: label_values}, features=feats)
    (root / "data").mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        part = ds.shard(shards, k, contiguous=True)
        path = root / "data" / f"{split}-{k:05d}-of-{shards:05d}.parquet"
        if layout == "pages":
            part.to_parquet(str(path))
        else:
            import pyarrow.parquet as pq

            pq.write_table(part.data.table, str(path), row_group_size=row_group_rows, write_page_index=False)
    (root / "README.md").write_text(f"---\nlicense: {licence}\n---\n# test pool\n")
    return root


def install_in_hf_cache(src: Path, repo_id: str, sha: str = "0123456789abcdef0123456789abcdef01234567") -> str:
    """Put a repo where huggingface_hub keeps downloads: hub/datasets--O--N/snapshots/<sha> + refs/main."""
    repo_dir = Path(os.environ["HF_HOME"]) / "hub" / ("datasets--" + repo_id.replace("/", "--"))
    snap = repo_dir / "snapshots" / sha
    if snap.exists():
        shutil.rmtree(snap)
    shutil.copytree(src, snap)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(sha)
    return sha


@pytest.fixture
def positives(tmp_path) -> Path:
    """Two positive classes of real raccoon photos (12 + 8), copied into tmp (never into the repo)."""
    src = sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))
    root = tmp_path / "positives"
    for cls, files in (("raccoon", src[:12]), ("racoon", src[12:20])):
        (root / cls).mkdir(parents=True)
        for f in files:
            shutil.copy(f, root / cls / f.name)
    return root


@pytest.fixture
def pool(tmp_path) -> Path:
    """A local class-sorted parquet pool in Hub layout: 10 classes x 12 rows, 2 shards."""
    return make_parquet_repo(tmp_path / "pool", PLACEABLE[:10], 12, shards=2)


def raccoon_folder(root: Path, n: int, cls: str = "raccoon") -> Path:
    """A positives folder `root` holding one class folder `cls` with the first `n` real raccoon
    photos, copied into tmp (never into the repo). Returns `root`."""
    (root / cls).mkdir(parents=True)
    for f in sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[:n]:
        shutil.copy(f, root / cls / f.name)
    return root


def read_manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def read_negatives(out: Path) -> list[dict]:
    """The manifest rows of an output's negatives."""
    return [r for r in read_manifest(out) if r["role"] == "negative"]


def read_rejects(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]


def read_record(out: Path) -> dict:
    """negmine.json of an output."""
    return json.loads((out / "negmine.json").read_text())


@pytest.fixture
def hub_server(monkeypatch, tmp_path_factory):
    """A local Hub (tests/hub_server.py) that the real huggingface_hub client talks to, online.

    huggingface_hub and datasets read HF_ENDPOINT and HF_HUB_OFFLINE once, at import: the constants
    they derived are set here as the environment would have set them (and the environment too, for
    child processes)."""
    from huggingface_hub import HfFileSystem, constants
    import datasets.config
    from hub_server import HubServer

    with HubServer() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_TOKEN", hub.token)
        monkeypatch.setenv("NEGMINE_HUB_BACKOFF", "0")
        # each test starts with nothing fetched: the index and range caches are per commit and would
        # otherwise carry one test's downloads into the next one's counts
        monkeypatch.setenv("NEGMINE_CACHE", str(tmp_path_factory.mktemp("negmine-cache")))
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(datasets.config, "HF_ENDPOINT", hub.endpoint)
        monkeypatch.setattr(datasets.config, "HUB_DATASETS_URL", hub.endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}")
        monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
        HfFileSystem.clear_instance_cache()
        yield hub
        HfFileSystem.clear_instance_cache()


def real_images_showing(wnids_shown: set[str]) -> dict[str, int]:
    """Straight from ../shared/data/imagenet-real (not through negmine): per original wnid, how many
    of its validation images have a ReaL label among `wnids_shown` other than the wnid itself."""
    folder = SHARED / "imagenet-real"
    original = (folder / "val_synsets.txt").read_text().split()
    real = json.loads((folder / "real.json").read_text())
    classes = sorted(set(original))
    out = dict.fromkeys(classes, 0)
    for w, labels in zip(original, real):
        if any(classes[j] in wnids_shown and classes[j] != w for j in labels):
            out[w] += 1
    return out


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API over HTTP (moto's server), for --out s3://: s3fs talks to it as to AWS."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)     # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    """An empty bucket of its own. fsspec's config points s3:// at the server (the way a user
    sets FSSPEC_S3_ENDPOINT_URL), in this process and, through `env`, in subprocesses; the
    options travel to worker processes and Ray tasks inside the pickled filesystem."""
    import secrets
    from types import SimpleNamespace

    import fsspec.config
    import s3fs

    opts = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    monkeypatch.setitem(fsspec.config.conf, "s3", opts)
    bucket = f"negmine-{secrets.token_hex(4)}"
    fs = s3fs.S3FileSystem(**opts)
    fs.mkdir(bucket)
    env = {**os.environ, "FSSPEC_S3": json.dumps(opts)}
    return SimpleNamespace(fs=fs, bucket=bucket, url=f"s3://{bucket}", env=env)


def remote_files(fs, root: str) -> dict[str, bytes]:
    """Every object under `root` (no protocol), by path relative to it."""
    fs.invalidate_cache()
    return {p[len(root) + 1:]: fs.cat_file(p) for p in sorted(fs.find(root))}


def local_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def same_dataset(local: dict, remote: dict, remote_url: str) -> None:
    """Every file the same bytes; negmine.json differs only in the --out it records."""
    assert sorted(local) == sorted(remote)
    assert [k for k in local if k != "negmine.json" and local[k] != remote[k]] == []
    a, b = json.loads(local["negmine.json"]), json.loads(remote["negmine.json"])
    key = "options" if "options" in a else "job"               # `cutout` records its job
    assert b[key].pop("out") == remote_url
    a[key].pop("out")
    assert a == b


def start_held(cmd: list, hold_dir: Path, nth: int = 1, env: dict | None = None, **popen):
    """Start `cmd` with a hold point at its `nth` journal write (negmine.engine.hold) and wait for the event:
    the run holding there (returns (proc, True)) or ending first (returns (proc, False)). No clock
    decides: a run on a slow machine is only held later."""
    import signal
    import subprocess
    import time

    held = hold_dir / "held"
    for name in ("held", "release"):
        (hold_dir / name).unlink(missing_ok=True)
    # SIGINT as a terminal delivers it: a shell that starts the suite in the background leaves it
    # ignored, and an ignored SIGINT is inherited (Python then never raises KeyboardInterrupt)
    proc = subprocess.Popen(cmd, env={**(env or os.environ), "NEGMINE_HOLD": f"{hold_dir}:{nth}"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **popen)
    while not held.exists():
        if proc.poll() is not None:
            return proc, held.exists()
        time.sleep(0.02)
    return proc, True
