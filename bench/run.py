"""Run the benchmarks: `python -m bench.run [--scale tiny|default|full] [--only NAME ...] [--write]`.

Each prints a JSON result; --write puts the tables into BENCHMARKS.md (between its markers)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import import_module

from bench.common import ROOT, machine, save

NAMES = ["hashing", "search", "sampling_io", "memory", "end_to_end", "cutout", "hub_io", "contamination", "ray",
         "remote_out", "senses", "shortcut", "text_exclusion", "licence_pool", "fills", "composites", "grabcut"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", default="default", choices=["tiny", "default", "full"])
    ap.add_argument("--only", nargs="*", choices=NAMES)
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = {}
    for name in args.only or NAMES:
        print(f"# {name} ...", file=sys.stderr, flush=True)
        results[name] = import_module(f"bench.{name}").run(args.scale)
        save(name, results[name])
        print(json.dumps(results[name]), flush=True)
    if args.write:
        write(results)
    return 0


def write(results: dict) -> None:
    """Results of this run, plus the last saved result of each benchmark not run now."""
    from bench.common import CACHE

    for name in NAMES:
        saved = CACHE / f"result-{name}.json"
        if name not in results and saved.exists():
            results[name] = json.loads(saved.read_text())
    results = {n: results[n] for n in NAMES if n in results}
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    block = [start, f"Machine: `{json.dumps(machine())}`", ""]
    for name, r in results.items():
        block.append(f"**{name}**: `{json.dumps({k: v for k, v in r.items() if k != 'name'})}`")
        block.append("")
    block.append(end)
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(head + "\n".join(block) + tail)


if __name__ == "__main__":
    sys.exit(main())
