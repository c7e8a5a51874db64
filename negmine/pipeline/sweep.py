"""Sweeps: `sample --ratio 0.5,1,2,4` (or `--count 100,200`) writes one complete dataset per value,
all judged on one yardstick.

The rule (docs/guide/sweeps.md):
- the draw is done once, for the largest value: that member (`SWEEP/ratio-4/`) is exactly the run
  `--ratio 4` with the same seed would write;
- every smaller member is the run its own value would write with that seed (its train negatives are
  the train negatives among the first N the draw kept, N what its value asks for; negatives keep
  their split whatever N is, `sampling.plan.stable_splits`), except that its val and test are the
  largest member's, positives and negatives, the same files (hardlinked where the filesystem
  allows, copied otherwise; negmine.json says which). So the train negatives are nested, and every
  member is scored on the same, largest val and test;
- each member has its own manifest.jsonl, rejects.jsonl (the one draw's), negmine.json (with a
  `sweep` block) and format files, loadable on its own; SWEEP/sweep.json, written last, names the
  members and the shared splits.

While a sweep runs, SWEEP/.negmine-sweep/run.json holds what a --resume must match; a sweep is
complete when sweep.json exists and that folder is gone.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import secrets
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from negmine import __version__
from negmine.engine.distribute import engine_session, make_distributor
from negmine.errors import NegmineError
from negmine.outputs.manifest import add_to_record, read_jsonl
from negmine.outputs.writers import RUN_RECORD, DatasetWriter, Run, is_url
from negmine.pipeline.contract import RunContext
from negmine.pipeline.options import SampleOptions
from negmine.pipeline.summary import write_summary
from negmine.sampling.plan import negatives_needed, stable_splits
from negmine.seeds import rng_for

SWEEP_RECORD = "sweep.json"
SWEEP_STATE = ".negmine-sweep"


@dataclass(frozen=True)
class SweepSpec:
    """The swept option ("ratio" or "count") and its values, ascending."""

    option: str
    values: tuple

    def name(self, value) -> str:
        """The member's folder: ratio-0.5, ratio-1, count-100."""
        return f"{self.option}-{value:g}" if self.option == "ratio" else f"{self.option}-{int(value)}"

    @property
    def largest(self):
        return self.values[-1]


def parse_values(text: str, option: str) -> list[float] | list[int]:
    """'0.5,1,2' -> [0.5, 1.0, 2.0] (`option` "ratio": numbers; "count": whole numbers). Raises
    NegmineError (one line) for a value that is not a number, 0 or negative, or one given twice."""
    kind = float if option == "ratio" else int
    values = []
    for part in text.split(","):
        try:
            v = kind(part.strip())
        except ValueError:
            what = "numbers" if option == "ratio" else "whole numbers"
            raise NegmineError(f"--{option} takes {what} separated by commas, got {part.strip()!r} in {text!r}"
                               ) from None
        if not (math.isfinite(v) and v >= 0):
            raise NegmineError(f"--{option} values must be finite numbers above 0, got {part.strip()!r}")
        if v == 0:       # a dataset with no negative class is not what negmine is for: said, not written
            raise NegmineError(f"--{option} 0 asks for no negatives (the output would have no negative class); "
                               "give a value above 0")
        if v in values:
            raise NegmineError(f"--{option} {text}: {part.strip()} is given twice; give each value once")
        values.append(v)
    return values


def sweep_of(opts: SampleOptions) -> SweepSpec | None:
    """The sweep `opts` asks for (a list in `ratio` or `count`), None for a single run. Raises
    NegmineError (one line) for what a sweep cannot do: both lists, --balanced, --push-to-hub, an
    fsspec URL --out, --synthetic (cutouts are counted on each run's total)."""
    lists = [o for o in ("ratio", "count") if isinstance(getattr(opts, o), (list, tuple))]
    if not lists:
        return None
    if len(lists) == 2 or opts.balanced or (lists == ["ratio"] and opts.count is not None) \
            or (lists == ["count"] and opts.ratio is not None):
        raise NegmineError("a sweep takes one list, of --ratio or of --count, and neither --balanced nor the other")
    option = lists[0]
    values = list(getattr(opts, option))
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0 or (option == "count" and v != int(v)):
            raise NegmineError(f"--{option} values must be {'numbers' if option == 'ratio' else 'whole numbers'} "
                               f"above 0, got {v!r}")
    if len(set(values)) < len(values):
        raise NegmineError(f"--{option}: a value is given twice; give each value once")
    if not values:
        raise NegmineError(f"--{option}: the list is empty")
    if opts.push_to_hub:
        raise NegmineError("--push-to-hub takes one dataset, not a sweep; push a member with a run of its own value")
    if is_url(opts.out):
        raise NegmineError(f"a sweep writes to a local folder (members are hardlinked), not {opts.out}")
    if opts.synthetic:
        raise NegmineError("--synthetic cannot be swept (the cutouts are a fraction of each run's negatives); "
                           "run each value on its own")
    kind = float if option == "ratio" else int
    return SweepSpec(option, tuple(sorted(kind(v) for v in values)))


def member_options(opts: SampleOptions, spec: SweepSpec, value) -> SampleOptions:
    """The options of the run `value` alone would be, writing to SWEEP/<member>."""
    return replace(opts, out=Path(opts.out) / spec.name(value), push_to_hub=None, **{spec.option: value})


def check_sweep_out(opts: SampleOptions, spec: SweepSpec) -> dict | None:
    """Check --out for a sweep before anything is read: absent or empty; or, with --overwrite, a
    sweep negmine wrote; or, with --resume, an interrupted sweep. Returns the interrupted sweep's
    run key (--resume), else None. Raises NegmineError (one line)."""
    out = Path(opts.out).expanduser().absolute()
    state = out / SWEEP_STATE / "run.json"
    if opts.dry_run and not opts.resume:      # writes nothing, as a single run's dry run
        return None
    if opts.resume:
        if not state.is_file():
            done = (out / SWEEP_RECORD).is_file()
            raise NegmineError(f"nothing to resume for the sweep {out}" + (": it is complete" if done else ""))
        return json.loads(state.read_text(encoding="utf-8"))
    if out.exists() and not out.is_dir():
        raise NegmineError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if (out / RUN_RECORD).is_file():
            raise NegmineError(f"--out {out} holds a single negmine run, not a sweep; choose another folder")
        if not opts.overwrite:
            if state.is_file():
                raise NegmineError(f"an interrupted sweep was found in {out}; pass --resume to continue it, "
                                   "or --overwrite to start over")
            raise NegmineError(f"--out {out} is not empty; pass --overwrite to replace it")
        if not (state.is_file() or (out / SWEEP_RECORD).is_file()):
            raise NegmineError(f"--out {out} is not empty and holds no {SWEEP_RECORD}: refusing to replace a "
                               "folder negmine did not write")
    return None


def sweep_key(opts: SampleOptions, spec: SweepSpec) -> dict:
    """What a --resume of the sweep must match."""
    from negmine.outputs.writers import run_options

    record = run_options({**opts.record(), "seed": opts.seed})
    return {"negmine_version": __version__, "seed": opts.seed, "option": spec.option, "values": list(spec.values),
            "options": {k: v for k, v in record.items() if k not in ("ratio", "count", "out")}}


def key_difference(stored: dict, key: dict) -> str:
    """What differs between an interrupted sweep's key `stored` (SWEEP/.negmine-sweep/run.json) and
    this run's `key` (`sweep_key`), in one line: "--ratio 0.5,1,1.5 there, 0.5,2 here; options hash
    (phash there, dhash here)"."""
    said = []
    if (stored.get("option"), stored.get("values")) != (key["option"], key["values"]):
        said.append(f"--{stored.get('option')} {values_text(stored.get('values'))} there, "
                    f"--{key['option']} {values_text(key['values'])} here")
    for name in ("seed", "negmine_version"):
        if stored.get(name) != key[name]:
            said.append(f"{name} {stored.get(name)} there, {key[name]} here")
    old, new = stored.get("options", {}), key["options"]
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if diff:
        said.append("options " + ", ".join(f"{k} ({json.dumps(old.get(k))} there, {json.dumps(new.get(k))} here)"
                                           for k in diff))
    return "; ".join(said) or "its record is unreadable"


def values_text(values) -> str:
    """[0.5, 1.0, 1.5] -> '0.5,1,1.5' (as --ratio/--count takes them)."""
    return ",".join(f"{v:g}" for v in values or [])


def refuse_single_resume_of_sweep(opts: SampleOptions) -> None:
    """A --resume of one value (`--ratio 1.5 --resume`) on a folder holding an interrupted sweep:
    raises NegmineError (one line) naming the sweep's values, which its --resume must repeat.
    Returns when --out holds no interrupted sweep."""
    state = Path(opts.out).expanduser().absolute() / SWEEP_STATE / "run.json"
    if not (opts.resume and state.is_file()):
        return
    stored = json.loads(state.read_text(encoding="utf-8"))
    option, values = stored.get("option"), values_text(stored.get("values"))
    one = opts.count if opts.count is not None else opts.ratio
    asked = f"--{'count' if opts.count is not None else 'ratio'} {one if one is not None else 1:g}"
    raise NegmineError(f"cannot resume: {opts.out} holds an interrupted sweep of --{option} {values}, not one run "
                       f"of {asked}; resume it with --{option} {values} --resume, or pass --overwrite to start over")


def run_sweep(opts: SampleOptions, spec: SweepSpec, sample_run) -> dict:
    """Run a sweep (module docstring). `sample_run`: the class that runs one `sample` (pipeline.run.
    SampleRun; passed in, as it calls this module). Returns the sweep's summary: {"sweep": the
    sweep.json record, "members": [each member's run summary]} (with --dry-run: the largest
    member's plan and the planned counts per member). Raises NegmineError."""
    stored = check_sweep_out(opts, spec)
    if opts.seed is None:             # one seed for every member, recorded for --resume
        opts = replace(opts, seed=stored["seed"] if stored else secrets.randbelow(2**31))
    if stored is not None:
        key = json.loads(json.dumps(sweep_key(opts, spec)))
        if stored != key:
            raise NegmineError(f"cannot resume: the interrupted sweep differs: {key_difference(stored, key)}; "
                               "rerun it with its options, or pass --overwrite to start over")
    out = Path(opts.out).expanduser().absolute()
    largest = member_options(opts, spec, spec.largest)
    largest_out = Path(largest.out).expanduser().absolute()
    partial = largest_out.parent / f".{largest_out.name}.negmine-partial"
    # the run's own --overwrite is recorded as given (a resumed sweep and an uninterrupted one record
    # the same); the writer replaces a stale member folder unless it resumes (draw_and_derive)
    largest = replace(largest, resume=opts.resume and partial.exists())
    with engine_session(opts.engine, opts.workers, opts.ray_address):
        run = sample_run(largest)
        plan = run.plan()
        if opts.dry_run:
            return {"dry_run": True, **plan, "sweep": planned_members(run, spec)}
        if not opts.resume:
            (out / SWEEP_RECORD).unlink(missing_ok=True)   # an old sweep being replaced is incomplete from here
            (out / SWEEP_STATE).mkdir(parents=True, exist_ok=True)
            (out / SWEEP_STATE / "run.json").write_text(json.dumps(sweep_key(opts, spec), indent=2) + "\n",
                                                       encoding="utf-8")
        try:
            members = draw_and_derive(run, spec, opts)
        except NegmineError as exc:
            if not exc.resumable:    # it would fail the same way resumed: no interrupted sweep is left
                shutil.rmtree(out / SWEEP_STATE, ignore_errors=True)
                if out.is_dir() and not any(out.iterdir()):
                    out.rmdir()
            raise
    record = write_sweep_record(out, spec, run, members)
    for stale in out.iterdir():            # members of a replaced sweep that this one does not have
        if stale.is_dir() and stale.name not in record["members"] and (stale / RUN_RECORD).is_file() \
                and stale.name.split("-")[0] in ("ratio", "count"):
            shutil.rmtree(stale)
    from negmine.evaluation.run import remove_eval_files

    remove_eval_files(out / "eval")        # an evaluation of a replaced sweep measured other members
    if (out / "eval").is_dir() and not any((out / "eval").iterdir()):
        (out / "eval").rmdir()
    shutil.rmtree(out / SWEEP_STATE, ignore_errors=True)
    return {"sweep": record, "members": [members[spec.name(v)] for v in spec.values], "out": str(out)}


def planned_members(run, spec: SweepSpec) -> dict:
    """The dry run's plan per member: negatives asked for, and of the draw's first ones how many
    go to train (the member's own) and to val/test (shared: the largest member's)."""
    plan = run.the_plan
    sizes = list(plan.positives.sizes) or [0]
    n = min(plan.pool_target, plan.available)
    splits = stable_splits(n, plan.split_fracs, rng_for(plan.seed, "split-neg")).tolist()
    shared = {name: splits.count(i) for i, name in enumerate(plan.split_names) if i}
    rows = []
    for v in spec.values:
        need = negatives_needed(sizes, **{spec.option: v})
        rows.append({"name": spec.name(v), "value": v, "negatives_needed": need,
                     "train": splits[:min(need, n)].count(0), **shared})
    return {"option": spec.option, "members": rows, "shared_splits": list(shared)}


def draw_and_derive(run, spec: SweepSpec, opts: SampleOptions) -> dict[str, dict]:
    """Draw for the largest member, derive the others from its staging folder (before it is
    published, so an interruption leaves it resumable), then publish it. Returns name -> summary."""
    members: dict[str, dict] = {}
    distributor = make_distributor(run.opts.workers, run.opts.engine, run.opts.ray_address)
    try:
        with Run(run.opts.out, run.run_key(), overwrite=not run.opts.resume, resume=run.opts.resume) as r:
            top = run.run_stages(r.writer, distributor, r.journal)
            r.journal.close()
            link = "hardlink"
            for v in spec.values[:-1]:
                if opts.progress:
                    print(f"sweep: writing {spec.name(v)} (val and test shared with {spec.name(spec.largest)})",
                          file=sys.stderr, flush=True)
                members[spec.name(v)], used = derive_member(run, r.writer, spec, v, distributor, opts)
                link = "copy" if used == "copy" else link
            # the largest member holds the originals; its block says how the others share them
            top["sweep"] = sweep_block(spec, spec.largest, run, run.ctx.rows, link)
            add_to_record(r.writer, "sweep", top["sweep"])
            r.writer.publish()
            members[spec.name(spec.largest)] = top
    finally:
        distributor.close()
    return members


def derive_member(run, source: DatasetWriter, spec: SweepSpec, value, distributor, opts: SampleOptions
                  ) -> tuple[dict, str]:
    """Write the member `value` from the largest member's staging folder `source`: the positives,
    the val/test negatives and the train negatives among the first ones `value` asks for; the
    format's files, manifest, rejects and negmine.json made for it (`summary.write_summary`).
    `opts`: the sweep's options. Returns (its summary, "hardlink" or "copy": how its files were made)."""
    plan, ctx, negatives = run.the_plan, run.ctx, run.negatives
    train = plan.split_names[0]
    split_of = {r["path"]: r["split"] for r in ctx.rows}
    # counted as the negatives stage counts: the positives this run wrote (with --eval-from, train only)
    mine = [r for r in ctx.rows if r["role"] == "positive" and (plan.held_out is None or r["split"] == train)]
    written = [sum(1 for r in mine if r["class"] == c) for c in plan.positives.classes]
    need = negatives_needed(written or [0], **{spec.option: value})
    prefix = negatives.accepted[:need]
    keep_train = {c.path for c in prefix if split_of[c.path] == train}
    rows = [r for r in ctx.rows if r["role"] == "positive" or r["split"] != train or r["path"] in keep_train]
    kept = {r["path"] for r in rows}
    member = replace(member_options(opts, spec, value), seed=run.seed)
    writer = DatasetWriter(Path(member.out), overwrite=True)
    used = "hardlink"
    for rel in [r["path"] for r in rows] + [r["thumbnail"] for r in ctx.rejects if r.get("thumbnail")]:
        used = "copy" if link_file(source.path(rel), writer.path(rel)) == "copy" else used
    mneg = copy.copy(negatives)
    mneg.accepted = [c for c in negatives.accepted if c.path in kept]
    mneg.short = len(prefix) < need
    mctx = RunContext(plan, writer, distributor, None, rows=list(rows), rejects=list(ctx.rejects))
    saved = plan.opts, plan.needed
    plan.opts, plan.needed = member, need
    try:
        summary = write_summary(mctx, mneg, 0, run.t0)
    finally:
        plan.opts, plan.needed = saved
    summary["sweep"] = sweep_block(spec, value, run, mctx.rows, used)
    add_to_record(writer, "sweep", summary["sweep"])
    writer.publish()
    return summary, used


def link_file(src: Path, dst: Path) -> str:
    """Hard-link `src` to `dst` (a symlink is copied as a symlink); copy when the filesystem cannot
    link (another device, no hardlinks, too many links). Returns "hardlink" or "copy"."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
        return "hardlink"
    try:
        os.link(src, dst)
        return "hardlink"
    except OSError:
        shutil.copyfile(src, dst)
        return "copy"


def sweep_block(spec: SweepSpec, value, run, rows: list[dict], link: str) -> dict:
    """The `sweep` block of a member's negmine.json and summary."""
    train = run.the_plan.split_names[0]
    neg = [r for r in rows if r["role"] == "negative"]
    return {"option": spec.option, "value": value, "member": spec.name(value),
            "members": [spec.name(v) for v in spec.values], "largest": spec.name(spec.largest),
            "train_negatives": sum(1 for r in neg if r["split"] == train),
            "shared_splits": list(run.the_plan.split_names[1:]),
            "shared_negatives": sum(1 for r in neg if r["split"] != train), "shared_link": link}


def shared_digest(member: Path, splits: list[str]) -> str:
    """sha256 over the sorted (path, sha256) of a member's rows in `splits`: equal for members whose
    shared splits hold the same files."""
    rows = [r for r in read_jsonl(member / "manifest.jsonl") if r["split"] in splits]
    text = "".join(f"{r['path']}\t{r['sha256']}\n" for r in sorted(rows, key=lambda r: r["path"]))
    return hashlib.sha256(text.encode()).hexdigest()


def write_sweep_record(out: Path, spec: SweepSpec, run, members: dict[str, dict]) -> dict:
    """SWEEP/sweep.json: the members (folder, value, counts) and the shared splits (their digest)."""
    shared = list(run.the_plan.split_names[1:])
    top = members[spec.name(spec.largest)]["sweep"]
    record = {
        "negmine_version": __version__, "seed": run.seed, "option": spec.option,
        "members": [spec.name(v) for v in spec.values], "largest": spec.name(spec.largest),
        "values": {spec.name(v): v for v in spec.values},
        "counts": {spec.name(v): members[spec.name(v)]["counts"] for v in spec.values},
        "train_negatives": {spec.name(v): members[spec.name(v)]["sweep"]["train_negatives"] for v in spec.values},
        "shared": {"splits": shared, "negatives": top["shared_negatives"], "link": top["shared_link"],
                   "files_sha256": shared_digest(out / spec.name(spec.largest), shared),
                   "rule": "val and test (positives and negatives) are the largest member's, the same files in "
                           "every member; each member's train negatives are those its own value draws with this seed"},
    }
    tmp = out / (SWEEP_RECORD + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / SWEEP_RECORD)
    return record
