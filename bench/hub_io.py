"""Hub I/O: what a draw downloads from a Hub repo, against the floor and against `datasets` streaming.

A local Hub (tests/hubtest, the real huggingface_hub client over HTTP, CDN redirects) serves
an ImageNet-like repo (default scale: 100k rows, 1000 classes, 4 shards, small generated JPEGs) in
both layouts repos have on the Hub, rows sorted by class or shuffled:
- "pages": as `datasets` 5.x writes shards (page index, content-defined pages, big row groups);
- "row-groups": as repos pushed before 2025 were written (row groups of 100 rows, no page index).
Each `negmine sample` runs as a user runs it: a new process, HF_ENDPOINT set, cold caches.

Measured per (layout, order, draw size):
- bytes downloaded / floor, the floor being the pages (or row-group image chunks) that hold the
  kept rows, plus what planning must read: every shard's footer and page index, and the label
  chunks of row groups whose statistics do not give their label (target <= 1.15);
- range requests / distinct ranges needed (the floor's contiguous pieces: a footer's length and
  body, the page index, each run of touching pages or chunks; target <= 1.1), and every request
  by kind (API, resolver, storage);
- the dry run's estimate (planning + draw) against what the run fetched (target within 10%);
- `datasets` streaming `shuffle(seed, buffer_size=1000).take(n)`: bytes, requests, classes covered.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import CACHE, ROOT, SHARED, crop_jpeg, loaded_photos

SCALES = {"tiny": (40, 25, 2, [30]), "default": (1000, 100, 4, [1000, 10000]), "full": (1000, 100, 4, [1000, 10000])}


def _write_repo(path: Path, labels: np.ndarray, blobs: list[bytes], classes: list[str], shards: int, layout: str) -> Path:
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets.arrow_writer import get_parquet_column_options

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=classes)})
    schema = features.arrow_schema
    (path / "data").mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(labels), shards + 1).astype(int)
    for s in range(shards):
        rows = range(bounds[s], bounds[s + 1])
        table = pa.table({"image": pa.array([{"bytes": blobs[i], "path": None} for i in rows], schema.field("image").type),
                          "label": pa.array([int(labels[i]) for i in rows], pa.int64())}, schema=schema)
        target = path / "data" / f"train-{s:05d}-of-{shards:05d}.parquet"
        if layout == "pages":                     # datasets 5.x: CDC pages, page index, ~100 MB row groups
            options = dict(write_page_index=True, use_content_defined_chunking=datasets.config.DEFAULT_CDC_OPTIONS,
                           **get_parquet_column_options(features, schema))
            pq.write_table(table, target, row_group_size=1 << 30, **options)
        else:                                     # before 2025: 100-row groups, pyarrow defaults, no page index
            pq.write_table(table, target, row_group_size=100, write_page_index=False)
    (path / "README.md").write_text("---\nlicense: other\n---\n# bench pool\n")
    return path


def _floor(root: Path, kept: list[tuple[str, int]], layout: str) -> dict:
    """Bytes and distinct ranges a draw of these rows must fetch at least (see the module doc)."""
    import pyarrow.parquet as pq

    from negmine.sources import pages, remote

    by_file: dict[str, list[int]] = {}
    for f, r in kept:
        by_file.setdefault(f, []).append(r)
    total, ranges = 0, 0
    for f in sorted((root / "data").glob("*.parquet")):
        rel = f"data/{f.name}"
        md = pq.ParquetFile(f).metadata
        size = f.stat().st_size
        data_end = 4
        units, labels = [], []
        for g in range(md.num_row_groups):
            rg = md.row_group(g)
            for k in range(rg.num_columns):
                c = rg.column(k)
                s = c.dictionary_page_offset if c.has_dictionary_page and c.dictionary_page_offset else c.data_page_offset
                data_end = max(data_end, s + c.total_compressed_size)
                if c.path_in_schema == "label":
                    st = c.statistics
                    if not (st is not None and st.has_min_max and st.min == st.max and not st.null_count):
                        labels.append((s, s + c.total_compressed_size))
        meta = size - data_end                    # footer, page index
        rows = np.array(sorted(by_file.get(rel, [])), np.int64)
        if layout == "pages":
            with open(f, "rb") as fh:
                def read(a, b):
                    fh.seek(size + a if a < 0 else a)
                    return fh.read((size if b is None else (size + b if b < 0 else b)) - (size + a if a < 0 else a))
                t = pages.page_table(read, ["image", "bytes"], 2)
            idx = np.unique(np.searchsorted(t.start, rows, side="right") - 1) if len(rows) else []
            units = [(int(t.offset[i]), int(t.offset[i] + t.size[i])) for i in idx]
        else:
            groups = np.cumsum([0] + [md.row_group(g).num_rows for g in range(md.num_row_groups)])
            for g in (np.unique(np.searchsorted(groups, rows, side="right") - 1) if len(rows) else []):
                rg = md.row_group(int(g))
                cols = [rg.column(k) for k in range(rg.num_columns) if rg.column(k).path_in_schema.startswith("image")]
                starts = [c.dictionary_page_offset if c.has_dictionary_page and c.dictionary_page_offset
                          else c.data_page_offset for c in cols]
                units.append((min(starts), max(s + c.total_compressed_size for s, c in zip(starts, cols))))
        total += meta + sum(b - a for a, b in units) + sum(b - a for a, b in labels)
        # footer: its length, then its body (+ the page index), as any client must
        # distinct ranges: needed bytes that are contiguous count once (gap 0); merging over gaps is
        # the client's choice, and what lets it send fewer requests than there are ranges
        ranges += 2 + (layout == "pages") + len(remote.plan_requests(units, gap=1)) + len(remote.plan_requests(labels, gap=1))
    return {"bytes": total, "ranges": ranges}


def _negmine(env: dict, positives: Path, count: int, out: Path, dry: bool) -> dict:
    cmd = [sys.executable, "-m", "negmine", "sample", "-p", str(positives), "-s", "bench/pool", "--count",
           str(count), "--seed", "0", "-q", "--json", "--allow-unmapped",      # numbered classes: nothing to place
           "-o", str(out)] + (["--dry-run"] if dry else [])
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout)


def _streaming(env: dict, count: int) -> dict:
    code = ("import datasets, json, sys\n"
            "ds = datasets.load_dataset('bench/pool', split='train', streaming=True)\n"
            "ds = ds.cast_column('image', datasets.Image(decode=False)).shuffle(seed=0, buffer_size=1000).take(%d)\n"
            "print(json.dumps(sorted({r['label'] for r in ds})))\n" % count)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return {"classes": len(json.loads(r.stdout.strip().splitlines()[-1]))}


def run(scale: str = "default") -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from hub_server import HubServer

    n_classes, per_class, shards, draws = SCALES[scale]
    classes = [f"class{i:04d}" for i in range(n_classes)]
    rng = np.random.default_rng(0)
    photos = loaded_photos(200 if scale == "tiny" else None)
    n = n_classes * per_class
    blobs = [crop_jpeg(photos[i % len(photos)], rng, 48, 85) for i in range(n)]
    sorted_labels = np.repeat(np.arange(n_classes), per_class)
    work = Path(tempfile.mkdtemp(prefix="negmine-hubio-", dir=CACHE if CACHE.exists() else None))
    positives = work / "positives" / "raccoon"
    positives.mkdir(parents=True)
    for p in sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[:20]:
        shutil.copy(p, positives / p.name)
    result = {"name": "hub_io", "rows": n, "classes": n_classes, "shards": shards, "runs": {}}
    try:
        for layout in ("pages", "row-groups"):
            for order in ("sorted", "shuffled"):
                labels = sorted_labels if order == "sorted" else np.random.default_rng(1).permutation(sorted_labels)
                repo = _write_repo(work / f"{layout}-{order}", labels, blobs, classes, shards, layout)
                for count in draws:
                    key = f"{layout}/{order}/{count}"
                    result["runs"][key] = _measure(HubServer, repo, positives, count, work / key.replace("/", "-"))
                    print(f"# hub_io {key}: {json.dumps(result['runs'][key])}", file=sys.stderr, flush=True)
                shutil.rmtree(repo)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    runs = result["runs"].values()
    result["targets"] = {
        "bytes_over_floor_le_1.15": all(r["bytes_over_floor"] <= 1.15 for r in runs),
        "requests_over_ranges_le_1.1": all(r["range_requests_over_ranges"] <= 1.1 for r in runs),
        "dry_run_within_10pct": all(abs(r["dry_run_error"]) <= 0.10 for r in runs),
    }
    return result


def _measure(HubServer, repo: Path, positives: Path, count: int, work: Path) -> dict:
    work.mkdir(parents=True)
    with HubServer() as hub:
        hub.add_repo("bench/pool", repo)
        env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": hub.token, "HF_HUB_OFFLINE": "0",
               "HF_HOME": str(work / "hf"), "NEGMINE_CACHE": str(work / "nc-dry"), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        dry = _negmine(env, positives, count, work / "dry", True)
        hub.clear_log()
        env["NEGMINE_CACHE"] = str(work / "nc")                  # cold, as a first run
        summary = _negmine(env, positives, count, work / "out", False)
        got = {k: len(hub.requests(k)) for k in ("api", "resolve", "cdn")}
        fetched = hub.bytes_sent()
        rows = [json.loads(x) for x in (work / "out" / "manifest.jsonl").read_text().splitlines()]
        kept = [(r["file"], r["row"]) for r in rows if r["role"] == "negative"]
        floor = _floor(repo, kept, "pages" if "pages" in repo.name else "row-groups")
        estimate = dry["hub_planning"]["bytes"] + dry["io"]["bench/pool"]["download_bytes"]
        hub.clear_log()
        stream = _streaming({**env, "HF_HOME": str(work / "hf-stream")}, count)
        s_got = {k: len(hub.requests(k)) for k in ("api", "resolve", "cdn")}
        s_bytes = hub.bytes_sent()
    shutil.rmtree(work, ignore_errors=True)
    return {
        "negmine": {"bytes": fetched, "requests": got, "classes_covered": len({r["label"] for r in rows
                                                                             if r["role"] == "negative"}),
                    "kept": len(kept), "summary_hub": summary["hub"]},
        "floor": floor, "bytes_over_floor": round(fetched / floor["bytes"], 3),
        "range_requests_over_ranges": round(got["cdn"] / floor["ranges"], 3),
        "dry_run_estimate": estimate, "dry_run_error": round((estimate - fetched) / fetched, 3),
        "datasets_streaming": {"bytes": s_bytes, "requests": s_got, "classes_covered": stream["classes"],
                               "bytes_over_negmine": round(s_bytes / fetched, 2)},
    }
