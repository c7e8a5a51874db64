"""9. `--engine ray` on one machine: the overhead of Ray against the local engine on the same
`sample` job, and throughput against worker count (1, 2: what this machine has). Each run is a fresh
process, as a user starts it (imports, and for Ray the start and shutdown of a local Ray, included);
every run must write the same manifest."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys

from bench.common import CACHE
from bench.end_to_end import _timed_process, pool
from bench.memory import positives


def _ray_start_s(env: dict) -> float:
    """Wall time of a process that only starts and shuts down a local Ray through negmine (2 CPUs)."""
    code = ("from negmine.engine.distribute import make_distributor\n"
            "d = make_distributor(2, 'ray')\nassert list(d.imap(abs, [-1])) == [1]\nd.close()\n")
    return _timed_process([sys.executable, "-c", code], env)


def run(scale: str = "default") -> dict:
    # default: end_to_end's pool and job (10k negatives), enough work for a second worker to show
    rows, count = {"tiny": (600, 200), "default": (20_000, 10_000), "full": (20_000, 10_000)}[scale]
    rounds = 1 if scale == "tiny" else 2
    p, pos = pool(rows), positives()
    env = {"HF_HUB_OFFLINE": "1", "PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin",
           "NEGMINE_CACHE": str(CACHE / "negmine-cache"), "HF_HOME": str(CACHE / "hf-home"), "HOME": str(CACHE)}
    outs = CACHE / "ray-out"
    cores = os.cpu_count() or 1
    runs = {f"{engine}_{w}": (engine, w) for engine in ("local", "ray") for w in sorted({1, min(2, cores)})}
    best = {k: float("inf") for k in runs}
    manifests = {}
    for _ in range(rounds):                    # interleaved rounds, best of each
        for key, (engine, workers) in runs.items():
            shutil.rmtree(outs, ignore_errors=True)
            # the same --out for every run: negmine.json records it, and the runs must be identical
            best[key] = min(best[key], _timed_process(
                [sys.executable, "-m", "negmine", "sample", "-q", "-p", str(pos), "-s", str(p), "--count", str(count),
                 "--seed", "1", "--engine", engine, "--workers", str(workers), "--allow-unmapped",  # numbered classes
                 "-o", str(outs)], env))
            manifests[key] = hashlib.sha256((outs / "manifest.jsonl").read_bytes()).hexdigest()
    shutil.rmtree(outs, ignore_errors=True)
    start = min(_ray_start_s(env) for _ in range(rounds))
    import ray

    out = {"name": "ray", "machine_cores": cores, "ray": ray.__version__, "pool_rows": rows, "negatives": count,
           "seconds": {k: round(v, 1) for k, v in best.items()},
           "images_per_s": {k: round(count / v) for k, v in best.items()},
           "ray_start_and_shutdown_s": round(start, 1),
           "overhead_s": {f"workers_{w}": round(best[f"ray_{w}"] - best[f"local_{w}"], 1)
                          for w in sorted({1, min(2, cores)})},
           # the Ray runs less Ray's own start and shutdown: what the work itself took on Ray
           "ray_less_start_s": {k: round(v - start, 1) for k, v in best.items() if k.startswith("ray")},
           "identical_manifests": len(set(manifests.values())) == 1}
    out["targets"] = {"every engine and worker count writes the same manifest": out["identical_manifests"]}
    return out

