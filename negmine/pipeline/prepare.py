"""Planning the positives: which are used (readable, not a dropped duplicate, annotated where the
format needs it) and their splits, decided before anything is written. Part of `planner.make_plan`."""

from __future__ import annotations

import hashlib

import numpy as np

from negmine.engine.distribute import make_distributor
from negmine.errors import NegmineError
from negmine.filters.dedup import find_root
from negmine.filters.neighbors import pairs_within
from negmine.filters.overlap import hash_files
from negmine.images import ImageRejected, probe_size
from negmine.pipeline.plan import Plan
from negmine.sampling.plan import assign_group_splits
from negmine.seeds import rng_for


def prepare_positives(plan: Plan) -> None:
    """Decide, before anything is written, which positives are used and their splits.

    Sets `pos_hashed` (path -> (hashes, (w, h))), `pos_rejects` (reject rows: skipped files,
    unreadable images, duplicates dropped by --dedup-positives), `pos_groups` (the duplicate
    groups: same file bytes, or perceptual hashes within --hash-distance bits, counting the
    rotations/flips with --dihedral) and `pos_split` (file -> split index). The members of a
    group share a split, also across classes, so no picture is both trained and tested on.
    Raises NegmineError when a class cannot be in every split (`check_every_split`)."""
    o, pos = plan.opts, plan.positives
    root = str(pos.root)
    plan.pos_rejects = [{"role": "positive", "source": root, "file": x["file"], "reason": x["reason"],
                         "skipped": True} for x in pos.skipped]
    files = [f for fs in pos.classes.values() for f in fs]
    if plan.hash_kind:
        distributor = make_distributor(o.workers, o.engine, o.ray_address)
        try:
            plan.pos_hashed = hash_files([str(f.path) for f in files], plan.hash_kind, o.dihedral, distributor,
                                         o.progress, desc="hashing positives")
        finally:
            distributor.close()
    else:
        plan.pos_hashed = {}
        for f in files:
            try:
                plan.pos_hashed[str(f.path)] = ([], probe_size(str(f.path)))
            except ImageRejected as exc:
                plan.pos_hashed[str(f.path)] = str(exc)
    ok = []
    for f in files:
        res = plan.pos_hashed[str(f.path)]
        if isinstance(res, str):
            plan.pos_rejects.append({"role": "positive", "source": root, "file": f.rel, "reason": res})
        else:
            ok.append(f)
    group = duplicate_groups(ok, plan.pos_hashed, o.hash_distance if plan.hash_kind else None)
    members: dict[int, list] = {}
    for f in ok:
        members.setdefault(group[f.rel], []).append(f)
    dups = sorted((sorted(m, key=lambda f: f.rel) for m in members.values() if len(m) > 1),
                  key=lambda m: m[0].rel)
    cls_of = {f.rel: c for c, fs in pos.classes.items() for f in fs}
    plan.pos_groups = [{"files": [f.rel for f in m], "classes": sorted({cls_of[f.rel] for f in m})} for m in dups]
    drop = set()
    if o.dedup_positives:
        for g, m in zip(plan.pos_groups, dups):
            # keep the largest picture (most pixels); ties by path, as `negmine dedup` does
            size = {f.rel: plan.pos_hashed[str(f.path)][1] for f in m}
            keep = min(m, key=lambda f: (-size[f.rel][0] * size[f.rel][1], f.rel)).rel
            g["kept"] = keep
            for f in m:
                if f.rel != keep:
                    drop.add(f.rel)
                    plan.pos_rejects.append({"role": "positive", "source": root, "file": f.rel,
                                             "reason": f"duplicate of the positive {keep} (--dedup-positives)"})
    usable = {f.rel for f in ok} - drop
    before = {c: [f for f in fs if f.rel in usable] for c, fs in pos.classes.items()}
    pos.classes = {c: fs for c, fs in before.items() if fs or not o.allow_missing_classes}
    plan.pos_rejects.sort(key=lambda r: r["file"])
    fixed: dict[int, int] = {}
    plan.pos_split = {}
    missing, distinct = {}, {}
    for cls, fs in pos.classes.items():
        gids = [group[f.rel] for f in fs]
        distinct[cls] = len(set(gids))
        rng = rng_for(plan.seed, "split-pos", int(hashlib.sha1(cls.encode()).hexdigest()[:8], 16))
        splits = assign_group_splits(gids, plan.split_fracs, rng, {g: fixed[g] for g in gids if g in fixed})
        for f, g, sp in zip(fs, gids, splits.tolist()):
            plan.pos_split[f.rel] = sp
            fixed[g] = sp
        missing[cls] = [plan.split_names[i] for i, frac in enumerate(plan.split_fracs)
                        if frac > 0 and i not in set(splits.tolist())]
    check_every_split(plan, {c: len(fs) for c, fs in pos.classes.items()}, distinct, missing)


def duplicate_groups(files: list, hashed: dict, radius: int | None) -> dict[str, int]:
    """Group id of each positive (by its `rel`): equal for files with the same bytes, or, with a
    `radius`, perceptual hashes within `radius` bits (any of a file's dihedral variants counts), and
    joined transitively (union-find, as `negmine dedup` groups). `hashed`: path -> (hashes, size)."""
    parent = list(range(len(files)))

    def union(a: int, b: int) -> None:
        ra, rb = find_root(parent, a), find_root(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first: dict[str, int] = {}
    for k, f in enumerate(files):
        digest = hashlib.sha256(f.path.read_bytes()).hexdigest()
        union(first.setdefault(digest, k), k)
    if radius is not None and files:
        hashes = [hashed[str(f.path)][0] for f in files]
        ident = np.array([h[0] for h in hashes], dtype=np.uint64)
        variants = np.array([x for h in hashes for x in h], dtype=np.uint64)
        owner = np.repeat(np.arange(len(files)), [len(h) for h in hashes])
        i, j, _ = pairs_within(ident, variants, radius)
        for a, b in zip(i.tolist(), owner[j].tolist()):
            if a != b:
                union(a, b)
    return {f.rel: find_root(parent, k) for k, f in enumerate(files)}


def check_every_split(plan: Plan, sizes: dict[str, int], distinct: dict[str, int] | None = None,
                      missing: dict[str, list[str]] | None = None) -> None:
    """Every class needs an image in every split with a fraction > 0: loaders that list classes
    per split folder (torchvision, Keras, datasets' imagefolder) number them per split, so a
    class missing from one shifts the ids of the others there. Raises NegmineError naming the
    class and the count it needs, unless --allow-missing-classes. `distinct`: images per class
    once duplicates are grouped; `missing`: splits an assignment left without the class."""
    if plan.opts.allow_missing_classes or plan.opts.format == "yolo-det":   # yolo-det: ids from data.yaml
        return
    wanted = sum(f > 0 for f in plan.split_fracs)
    for cls, n in sizes.items():
        units = n if distinct is None else distinct[cls]
        lost = (missing or {}).get(cls)
        if units < wanted or lost:
            grouped = "" if distinct is None or units == n else f" ({units} once duplicates are grouped)"
            where = f", none in {', '.join(lost)}" if lost else ""
            raise NegmineError(f"class {cls!r} has {n} usable images{grouped}{where}; every split of --split "
                               f"{plan.opts.split} needs one, so it needs at least {wanted} distinct images: "
                               "add images, change --split, or pass --allow-missing-classes")


def check_negative_class(plan: Plan, needed: int) -> None:
    """The negatives' class, like every class, needs an image in every split (`check_every_split`).
    Raises NegmineError when no negative is asked for at all, and unless --allow-missing-classes
    when fewer than one per split are."""
    wanted = sum(f > 0 for f in plan.split_fracs)
    if needed == 0:        # no negative class at all (--ratio/--count 0, or a ratio that rounds to none)
        raise NegmineError(f"class {plan.negative_class!r} (the negatives) would have no image: the run asks for "
                           "no negatives; raise --ratio or --count")
    if 0 < needed < wanted and not plan.opts.allow_missing_classes and plan.opts.format != "yolo-det":
        raise NegmineError(f"class {plan.negative_class!r} (the negatives) would have {needed} images; every "
                           f"split of --split {plan.opts.split} needs one, so it needs at least {wanted}: raise "
                           "--ratio or --count, change --split, or pass --allow-missing-classes")


def leave_out_unannotated(plan: Plan, invalid: dict[str, str]) -> None:
    """A detector takes an image without label lines for a background, so a positive is written
    only when its annotation says what is in it (an explicitly empty one: a true background).
    Unannotated positives stop the run unless --unannotated skip; images with a bad box or
    frame (`objects.resolve`) are left out. Both are recorded in rejects.jsonl (`plan.left_out`).
    `invalid`: annotated images left out, with the reason. Raises NegmineError."""
    files = [f for fs in plan.positives.classes.values() for f in fs]
    missing = [f.rel for f in files if f.rel not in plan.pos_boxes and f.rel not in invalid]
    if missing and plan.opts.unannotated == "error":
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise NegmineError(f"{len(missing)} positives have no annotation in --boxes ({', '.join(missing[:5])}{more}); "
                           "a detector would learn them as backgrounds. Annotate them (an empty label file "
                           "means 'no object'), or leave them out with --unannotated skip")
    reasons = {**{k: "positive has no annotation (--unannotated skip)" for k in missing}, **invalid}
    for cls, fs in list(plan.positives.classes.items()):
        plan.positives.classes[cls] = [f for f in fs if f.rel not in reasons]
        if not plan.positives.classes[cls]:
            del plan.positives.classes[cls]
    if not plan.positives.classes:
        raise NegmineError("no positive is left with a usable annotation (see the reasons with --unannotated skip)"
                           if missing else f"no positive is left with a usable annotation: {next(iter(invalid.values()))}")
    plan.left_out = [{"role": "positive", "source": str(plan.positives.root), "file": k, "reason": r}
                     for k, r in sorted(reasons.items())]
