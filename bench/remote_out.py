"""10. `--out s3://...`: what writing to object storage costs against a local --out, on the same
`sample` job. The store is moto's S3 server on this machine (a real S3 API over HTTP, through s3fs),
so the request counts and bytes are what S3 would see; its seconds are not S3's (no network, no
latency), so time is reported only as a ratio against the local run in the same round.

Floors: one PUT per file of the dataset and its bytes once. The excess is what the object store's
contract costs: scratch packs (each kept negative's bytes uploaded once more into a pack and read
back by the worker that writes the file), the journal objects and the run state."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.common import CACHE
from bench.end_to_end import pool
from bench.memory import positives


class _Log(logging.Handler):
    """Counts the S3 server's access-log lines (one per request) by kind."""

    pattern = re.compile(r'"(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP')

    def __init__(self):
        super().__init__()
        self.counts: Counter = Counter()

    def emit(self, record):
        m = self.pattern.search(re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage()))   # werkzeug colours some lines
        if not m:
            return
        method, path = m.groups()
        path = path.split("?")[0]
        kind = ("pack" if path.endswith(".pack") else "journal" if "/.negmine/journal/" in path
                else "state" if "/.negmine/" in path else "list" if path.count("/") <= 1 else "file")
        self.counts[f"{method} {kind}"] += 1


def _sample(args: list, env: dict) -> float:
    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "negmine", "sample", "-q", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - t


def run(scale: str = "default") -> dict:
    import s3fs
    from moto.server import ThreadedMotoServer

    rows, count = {"tiny": (600, 200), "default": (20_000, 5_000), "full": (20_000, 10_000)}[scale]
    p, pos = pool(rows), positives()
    log = _Log()
    werkzeug = logging.getLogger("werkzeug")
    level, propagate = werkzeug.level, werkzeug.propagate
    werkzeug.setLevel(logging.INFO)
    werkzeug.addHandler(log)
    werkzeug.propagate = False
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        opts = {"endpoint_url": f"http://{host}:{port}", "key": "bench", "secret": "bench"}
        fs = s3fs.S3FileSystem(**opts)
        fs.mkdir("bench")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "NEGMINE_CACHE": str(CACHE / "negmine-cache"),
               "FSSPEC_S3": __import__("json").dumps(opts)}
        args = ["-p", str(pos), "-s", str(p), "--count", str(count), "--seed", "1", "--workers", "2",
                "--allow-unmapped"]                   # the pool's classes are numbered: nothing to place
        local = CACHE / "remote-out-local"
        runs = {"local": [], "s3": []}
        for k in range(2):                       # interleaved rounds, best of each
            subprocess.run(["rm", "-rf", str(local)], check=True)
            runs["local"].append(_sample([*args, "-o", str(local)], env))
            fs.invalidate_cache()
            if fs.exists(f"bench/ds{k}"):
                fs.rm(f"bench/ds{k}", recursive=True)
            before = Counter(log.counts)
            runs["s3"].append(_sample([*args, "-o", f"s3://bench/ds{k}"], env))
            requests = log.counts - before
        files = [f for f in Path(local).rglob("*") if f.is_file()]
        dataset_bytes = sum(f.stat().st_size for f in files)
        negative_bytes = sum(f.stat().st_size for f in (Path(local) / "train" / "other").glob("*")) + \
            sum(f.stat().st_size for s in ("val", "test") for f in (Path(local) / s / "other").glob("*"))
        fs.invalidate_cache()
        remote = fs.find("bench/ds1")
        same = sorted(r.split("bench/ds1/", 1)[1] for r in remote) == \
            sorted(f.relative_to(local).as_posix() for f in files)
    finally:
        server.stop()
        werkzeug.removeHandler(log)
        werkzeug.setLevel(level)
        werkzeug.propagate = propagate
    put_files = requests["PUT file"]
    total = sum(requests.values())
    out = {"name": "remote_out", "pool_rows": rows, "negatives": count, "files": len(files),
           "dataset_bytes": dataset_bytes, "negative_bytes": negative_bytes, "requests": dict(sorted(requests.items())),
           "requests_total": total, "requests_per_file": round(total / len(files), 3),
           "file_puts_per_file": round(put_files / len(files), 3),
           # scratch packs: every kept negative's bytes go up once more and come back once
           "upload_bytes_over_dataset_estimate": round((dataset_bytes + negative_bytes) / dataset_bytes, 2),
           "seconds": {k: round(min(v), 1) for k, v in runs.items()},
           "s3_over_local_time": round(min(runs["s3"]) / min(runs["local"]), 2),
           "same_files": same}
    out["targets"] = {"one PUT per file written": put_files == len(files),
                      "<= 1.1 requests per file": out["requests_per_file"] <= 1.1,
                      "same files as the local --out": same}
    return out
