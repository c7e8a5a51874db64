"""Licence-clean draws at scale: what a 1,000-image `--licence commercial` draw from a 1M-row pool in
CommonCatalog's shape downloads, against the byte floor.

The pool (built here, under the bench cache, never committed): hive folders
`least_dim_range=.../aspect_ratio_bucket=...`, two Spark-sized part files with few large row groups
(256k rows), 1 MB pages and an offset index (as parquet-mr writes them), snappy; tiny JPEGs in
`jpg` (an `Image` struct), per-row `licensename`/`licenseurl` (60% CC BY 2.0, 25% CC BY-NC 2.0,
10% CC0, 5% empty: the card's CC BY 4.0 holds), `unickname`, `pageurl`, `photoid`, and the text
columns `blip2_caption`, `title`, `usertags`, `description`. Served by the test Hub (tests/hubtest)
under the preset's repo id to `negmine sample -s commoncatalog-cc-by --licence commercial --count 1000`
in a new process, cold caches.

The **floor**: what planning must read (every footer and page index, the licence columns, the
text columns, all of them whole) plus, per kept row, its image bytes and its credit, page URL
and title. Measured: every byte the storage host sent. Target: <= 1.25x the floor. Two runs: the
preset (`max_read_ratio` 1.25 in sources.presets: each page read pays for its rows, as a pool in no
order of content allows) and the same repo under another id (`bench/cc`), which gets the default of
any Hub pool (stratified over the captions' nouns, never fewer nouns than an unclustered draw).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import CACHE, ROOT, SHARED

REPO = "common-canvas/commoncatalog-cc-by"     # served under the preset's repo id: the preset's defaults apply
SCALES = {"tiny": (20_000, 100), "default": (1 << 20, 1000), "full": (1 << 20, 1000)}
HIVE = ("least_dim_range=256-512/aspect_ratio_bucket=0.75", "least_dim_range=512-1024/aspect_ratio_bucket=1.0")
NOUNS = ("car street house tree river bridge mountain lake boat beach flower garden church castle tower road "
         "train station market city park bench bicycle clock window door table chair book cup plate bottle "
         "kitchen bird horse cow sheep field farm barn fence sky cloud sunset snow forest rock cliff island "
         "harbour ship lighthouse statue museum fountain square crowd festival guitar piano stage lamp wall "
         "raccoon").split()
LICENCES = [("Attribution License", "http://creativecommons.org/licenses/by/2.0/", 0.60),
            ("Attribution-NonCommercial License", "http://creativecommons.org/licenses/by-nc/2.0/", 0.25),
            ("Public Domain Dedication (CC0)", "http://creativecommons.org/publicdomain/zero/1.0/", 0.10),
            (None, None, 0.05)]


def _jpegs(n: int, rng) -> list[bytes]:
    from PIL import Image

    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, "JPEG", quality=70)
        out.append(buf.getvalue())
    return out


def _write_pool(root: Path, rows: int, rng) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    img_t = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    features = {"jpg": {"_type": "Image"}}
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    per = rows // len(HIVE)
    which = rng.choice(len(LICENCES), size=rows, p=[p for *_, p in LICENCES])
    for f, folder in enumerate(HIVE):
        (root / folder).mkdir(parents=True)
        path = root / folder / f"part-{f:05d}-tid-1-c000.parquet"
        writer = None
        for a in range(f * per, (f + 1) * per, 1 << 16):
            b = min(a + (1 << 16), (f + 1) * per)
            k = np.arange(a, b)
            nouns = rng.integers(0, len(NOUNS), (b - a, 2))
            lic = which[a:b]
            table = pa.table({
                "jpg": pa.array([{"bytes": x, "path": None} for x in _jpegs(b - a, rng)], img_t),
                "blip2_caption": [f"a photo of a {NOUNS[x]} near a {NOUNS[y]}" for x, y in nouns.tolist()],
                "title": [f"IMG_{int(x)}" for x in rng.integers(0, 10**6, b - a)],
                "usertags": [f"{NOUNS[y]},travel" for _, y in nouns.tolist()],
                "description": [None] * (b - a),
                "licensename": [LICENCES[i][0] for i in lic.tolist()],
                "licenseurl": [LICENCES[i][1] for i in lic.tolist()],
                "unickname": [f"user{int(x)}" for x in (k * 7919) % 200_000],
                "pageurl": [f"https://www.flickr.com/photos/user{int(x)}/{int(p)}/" for x, p in
                            zip((k * 7919) % 200_000, k + 10**9)],
                "photoid": k + 10**9}).replace_schema_metadata(meta)
            if writer is None:      # as Spark writes: 1 MB pages, an offset index, snappy, big row groups
                writer = pq.ParquetWriter(path, table.schema, compression="snappy", write_page_index=True,
                                          data_page_size=1 << 20)
            writer.write_table(table, row_group_size=1 << 18)
        writer.close()
    (root / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# CommonCatalog-shaped bench pool\n")


def _floor(root: Path, kept: list[dict]) -> dict:
    """Planning's columns and metadata, plus the kept rows' images and attribution cells."""
    import pyarrow.parquet as pq

    planning = {"metadata": 0, "licence_columns": 0, "text_columns": 0}
    lic_cols, text_cols = {"licensename", "licenseurl"}, {"blip2_caption", "title", "usertags", "description"}
    for f in sorted(root.rglob("*.parquet")):
        md = pq.ParquetFile(f).metadata
        data_end = 4
        for g in range(md.num_row_groups):
            for k in range(md.num_columns):
                c = md.row_group(g).column(k)
                s = c.dictionary_page_offset if c.has_dictionary_page and c.dictionary_page_offset else c.data_page_offset
                data_end = max(data_end, s + c.total_compressed_size)
                name = c.path_in_schema.split(".")[0]
                if name in lic_cols:
                    planning["licence_columns"] += c.total_compressed_size
                elif name in text_cols:
                    planning["text_columns"] += c.total_compressed_size
        planning["metadata"] += f.stat().st_size - data_end
    by_file: dict[str, list[int]] = {}
    for r in kept:
        by_file.setdefault(r["file"], []).append(r["row"])
    rows = {"images": 0, "attribution": 0}
    for rel, rs in by_file.items():
        t = pq.read_table(root / rel, columns=["jpg", "unickname", "pageurl", "title"]).take(sorted(rs))
        rows["images"] += sum(len(x["bytes"]) for x in t.column("jpg").to_pylist())
        rows["attribution"] += sum(len((v or "").encode()) for c in ("unickname", "pageurl", "title")
                                   for v in t.column(c).to_pylist())
    return {"planning": planning, "kept_rows": rows, "bytes": sum(planning.values()) + sum(rows.values())}


def _where(root: Path, requests) -> dict:
    """Bytes the storage host sent, by what they hold: each column's chunks, or metadata (footer,
    page index). `requests`: the test Hub's log of storage requests."""
    import pyarrow.parquet as pq

    spans = {}
    for f in root.rglob("*.parquet"):
        md = pq.ParquetFile(f).metadata
        cols = []
        for g in range(md.num_row_groups):
            for k in range(md.num_columns):
                c = md.row_group(g).column(k)
                s = c.dictionary_page_offset if c.has_dictionary_page and c.dictionary_page_offset else c.data_page_offset
                cols.append((s, s + c.total_compressed_size, c.path_in_schema.split(".")[0]))
        spans[f.name] = sorted(cols)
    out: dict[str, int] = {}
    for e in requests:
        if e.status not in (200, 206) or not e.range:
            continue
        a, b = (int(x) for x in e.range.split("=")[1].split("-"))
        cols = spans.get(e.path.split("?")[0].rsplit("/", 1)[-1], [])
        counted = 0
        for s, t, name in cols:
            n = max(0, min(b + 1, t) - max(a, s))
            if n:
                out[name] = out.get(name, 0) + n
                counted += n
        out["metadata"] = out.get("metadata", 0) + (b + 1 - a - counted)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _negmine(env: dict, positives: Path, count: int, out: Path, source: str) -> dict:
    cmd = [sys.executable, "-m", "negmine", "sample", "-p", str(positives), "-s", source, "--count", str(count),
           "--licence", "commercial", "--seed", "0", "-q", "--json", "-o", str(out)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout)


def run(scale: str = "default") -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from hub_server import HubServer

    rows, count = SCALES[scale]
    work = Path(tempfile.mkdtemp(prefix="negmine-licpool-", dir=CACHE if CACHE.exists() else None))
    positives = work / "positives" / "raccoon"
    positives.mkdir(parents=True)
    for p in sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[:20]:
        shutil.copy(p, positives / p.name)
    result = {"name": "licence_pool", "rows": rows, "count": count, "runs": {}}
    try:
        repo = work / "repo"
        _write_pool(repo, rows, np.random.default_rng(0))
        result["pool_bytes"] = sum(f.stat().st_size for f in repo.rglob("*.parquet"))
        # the preset, and the same repo under another id: what any other Hub pool gets by default
        for key, source, repo_id in (("default", "commoncatalog-cc-by", REPO), ("plain-repo", "bench/cc", "bench/cc")):
            with HubServer() as hub:
                hub.add_repo(repo_id, repo)
                env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": hub.token, "HF_HUB_OFFLINE": "0",
                       "HF_HOME": str(work / f"hf-{key}"), "NEGMINE_CACHE": str(work / f"nc-{key}"),
                       "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
                out = work / f"out-{key}"
                summary = _negmine(env, positives, count, out, source)
                fetched = hub.bytes_sent()
                where = _where(repo, hub.requests("cdn"))
            manifest = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
            kept = [r for r in manifest if r["role"] == "negative"]
            floor = _floor(repo, kept)
            lic = summary["row_licences"][repo_id]
            result["runs"][key] = {
                "bytes": fetched, "fetched_by_column": where, "floor": floor, "bytes_over_floor": round(fetched / floor["bytes"], 3),
                "kept": len(kept), "licences_kept": summary["licences"], "left_out": lic["left_out"],
                "with_credit_and_page": sum(1 for r in kept if r["credit"] and r["page_url"]),
                "nouns_drawn": len({r["label"] for r in kept}),
                "excluded_by_text": summary["text"][repo_id]["excluded_by_text"]}
            print(f"# licence_pool {key}: {json.dumps(result['runs'][key])}", file=sys.stderr, flush=True)
            shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    runs = result["runs"]
    result["targets"] = {"bytes_over_floor_le_1.25": runs["default"]["bytes_over_floor"] <= 1.25,
                         "no_nc_row_kept": all("NC" not in k for r in runs.values() for k in r["licences_kept"]),
                         "every_kept_row_credited": all(r["with_credit_and_page"] == r["kept"] for r in runs.values())}
    return result
