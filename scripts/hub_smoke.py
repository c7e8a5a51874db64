"""Live smoke test against the real Hugging Face Hub (needs network; not run in CI or by the tests).

    PYTHONPATH=. python scripts/hub_smoke.py [--positives DIR] [--source PRESET_OR_REPO] [--count N]

It runs, as a user would, with a fresh $NEGMINE_CACHE (so nothing is cached from earlier runs):
  1. `negmine sample --dry-run --json` of a 100-image draw from the default preset
     (imagenet-1k-256 = benjamin-paine/imagenet-1k-256x256) against the raccoon photos in
     ../shared/data/raccoon-voc/images;
  2. the same draw for real (`--json`);
and prints what planning downloaded, what the dry run said the draw would download, and what the
draw downloaded (bytes, range requests, resolver and API requests, retries, 429s, whole-body
answers), then checks:
  - the draw's bytes are within 10% of the dry run's estimate (`io[repo].download_bytes`),
  - the draw made one resolver request per shard it read (the card came with the dry run),
  - no storage answer was a whole file to a range request (`whole_file_answers` == 0),
  - both runs exit 0.
Exit 0 when all hold, 1 otherwise (the failing check is printed).

Expected numbers. NOT MEASURED HERE: the machine this was written on has no internet. They are
what the design implies for a repo pushed in 2024 by `datasets` 2.x (row groups of ~100 rows of
~256 px JPEGs, ~1.5 MB of image data each, no page index), and the local-Hub measurements in
BENCHMARKS.md (row 8); replace them with the first real run's output:
  - dry run (planning): API requests ~5 (repo info, listings); resolver requests = shards + 1
    (one per shard, and the card); range requests 2 per shard (footer length, footer) plus one per
    row group whose label statistics do not give its class; bytes: footers + label chunks,
    a few MB to tens of MB;
  - draw of 100 images from 1,000 classes: one row per row group (a draw smaller than the class
    count is not clustered), so ~100 row-group image chunks, ~100-200 MB, ~100 range requests,
    resolver requests = the shards those row groups sit in; bytes within 10% of the estimate
    (0.5% on the local Hub); retries 0 and 429s 0 on a healthy day;
  - wall time: dominated by the ~100-200 MB download.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], env: dict) -> tuple[int, dict | None, str]:
    r = subprocess.run([sys.executable, "-m", "negmine", *args], env=env, capture_output=True, text=True)
    try:
        return r.returncode, json.loads(r.stdout), r.stderr
    except ValueError:
        return r.returncode, None, r.stderr or r.stdout


def show(title: str, hub: dict | None) -> None:
    hub = hub or {}
    print(f"{title}: {hub.get('bytes', 0):,} bytes ({hub.get('cdn_bytes', 0):,} from storage), "
          f"{hub.get('requests', 0)} requests: {hub.get('api_requests', 0)} API, {hub.get('resolver_requests', 0)} "
          f"resolver, {hub.get('cdn_requests', 0)} storage; retries {hub.get('retries', 0)}, 429s "
          f"{hub.get('rate_limited', 0)}, whole-file answers {hub.get('whole_file_answers', 0)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positives", default=str(ROOT.parent / "shared" / "data" / "raccoon-voc" / "images"))
    ap.add_argument("--source", default="imagenet-1k-256")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="negmine-hub-smoke-"))
    env = {**os.environ, "NEGMINE_CACHE": str(work / "cache"), "PYTHONPATH": str(ROOT)}
    env.pop("HF_HUB_OFFLINE", None)
    common = ["sample", "--json", "-q", "--positives", a.positives, "--source", a.source, "--count", str(a.count),
              "--seed", str(a.seed)]
    code, plan, err = run(common + ["--dry-run", "--out", str(work / "dry")], env)
    if code or plan is None:
        print(f"dry run failed (exit {code}): {err.strip()}")
        return 1
    show("planning (dry run)", plan.get("hub_planning"))
    repo = next(iter(plan["io"]))
    est = plan["io"][repo]
    print(f"dry run estimate for the draw from {repo}: {est.get('download_bytes', 0):,} bytes, "
          f"{est.get('download_requests', 0)} range requests, {est.get('resolver_requests', 0)} resolver requests")
    code, summary, err = run(common + ["--out", str(work / "out")], env)
    if code or summary is None:
        print(f"draw failed (exit {code}): {err.strip()}")
        return 1
    hub = summary["hub"]
    show("draw", hub)
    failures = []
    expected = est.get("download_bytes", 0)
    if expected and abs(hub["cdn_bytes"] - expected) > 0.10 * expected:
        failures.append(f"storage bytes {hub['cdn_bytes']:,} are not within 10% of the estimate {expected:,}")
    if hub["resolver_requests"] != est.get("resolver_requests", hub["resolver_requests"]):
        failures.append(f"{hub['resolver_requests']} resolver requests, the dry run said {est.get('resolver_requests')}")
    if hub.get("whole_file_answers"):
        failures.append(f"{hub['whole_file_answers']} storage answers were whole files to range requests")
    print(f"work folder (outputs, cache): {work}")
    for f in failures:
        print(f"FAIL: {f}")
    print("OK" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
