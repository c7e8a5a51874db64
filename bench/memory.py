"""4. Memory: peak RSS of `negmine sample` drawing the same count from pools of 10k, 100k and 1M rows,
as a local pool is drawn (page reads) and as a Hub repo is by default (`--max-read-ratio 5`: the
draw clustered by page, which plans over every row once more)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.common import CACHE, ROOT, crop_jpeg, loaded_photos, write_pool

_CHILD = """
import json, resource, sys
from pathlib import Path
from negmine.pipeline import SampleOptions, run_sample
from negmine.sources import SourceSpec
pool, pos, out, count, ratio = sys.argv[1:6]
s = run_sample(SampleOptions(positives=Path(pos), out=Path(out), sources=[SourceSpec(pool)], count=int(count),
                             seed=1, workers=1, progress=False, overwrite=True, allow_unmapped=True,
                             max_read_ratio=float(ratio) if ratio != "none" else None))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (larger) parent process
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"rss_mb": hwm / 1024, "negatives": s["negatives"]}))
"""


def pool(rows: int) -> Path:
    path = CACHE / f"pool-tiny-{rows}"
    if (path / "data").exists():
        return path
    photos = loaded_photos(200)
    rng = np.random.default_rng(rows)
    distinct = [crop_jpeg(photos[k % len(photos)], rng, 24, quality=80) for k in range(min(rows, 20_000))]
    labels = np.repeat(np.arange(1000), -(-rows // 1000))[:rows]
    return write_pool(path, labels, lambda i: distinct[i % len(distinct)], [f"c{k:04d}" for k in range(1000)],
                      rows_per_group=20_000)


# the pools' classes are numbered (c0000, ...), no names WordNet places: the benches that draw
# from them measure reading, so they draw them with --allow-unmapped (said in each run's warnings)


def positives() -> Path:
    path = CACHE / "positives-raccoon"
    if not path.exists():
        (path / "raccoon").mkdir(parents=True)
        src = sorted((ROOT.parent / "shared" / "data" / "raccoon-voc" / "images").glob("*.jpg"))[:20]
        for p in src:
            (path / "raccoon" / p.name).write_bytes(p.read_bytes())
    return path


def run(scale: str = "default") -> dict:
    sizes = {"tiny": [2_000, 20_000], "default": [10_000, 100_000, 1_000_000],
             "full": [10_000, 100_000, 1_000_000]}[scale]
    count = 500 if scale == "tiny" else 2000
    out = {"name": "memory", "drawn": count}
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "NEGMINE_CACHE": str(CACHE / "negmine-cache"),
           "HOME": str(CACHE)}

    def peak(n: int, ratio: str = "none") -> float:
        r = subprocess.run([sys.executable, "-c", _CHILD, str(pool(n)), str(positives()), str(CACHE / f"out-mem-{n}"),
                            str(count), ratio], capture_output=True, text=True, cwd=ROOT, env=env)
        if r.returncode != 0:
            raise RuntimeError(r.stderr[-2000:])
        return json.loads(r.stdout.strip().splitlines()[-1])["rss_mb"]

    # every measured run finds the caches (positive hashes, class plan) as a second run would:
    # a first run that loads WordNet would otherwise be measured against ones that do not
    peak(sizes[0])
    targets = {}
    for key, ratio in (("peak_rss_mb", "none"), ("peak_rss_mb_clustered", "5")):
        out[key] = {n: round(peak(n, ratio), 1) for n in sizes}
        first, last = out[key][sizes[0]], out[key][sizes[-1]]
        growth = "growth" if ratio == "none" else "growth_clustered"
        out[growth] = round(last / first - 1, 3)
        label = "" if ratio == "none" else " (--max-read-ratio 5, as Hub repos are drawn)"
        targets[f"< 10% growth from smallest to largest pool{label}"] = out[growth] < 0.10
    out["targets"] = targets
    return out
