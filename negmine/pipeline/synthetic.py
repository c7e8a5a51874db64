"""The synthetic stage (`sample --synthetic F`): negatives cut out of annotated positives, with the
same per-image task as `negmine cutout` (`synthetic.command.cutout_task`)."""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path

from negmine.outputs.formats import rel_path
from negmine.outputs.manifest import row as manifest_row
from negmine.naming import safe_name
from negmine.pipeline.contract import RunContext, StageOutput
from negmine.pipeline.positives import stem_and_suffix
from negmine.seeds import rng_for
from negmine.synthetic.command import cutout_task, image_task


class MakeSynthetic:
    """Cutouts of annotated positives in a seeded order, each in its source image's split (no scene
    crosses splits); a positive that cannot be cut is skipped (a reject) and the next one is used,
    until `plan.synthetic_target` are written. Reads the positives' rows from `ctx.rows`."""

    def run(self, ctx: RunContext) -> StageOutput:
        """Write the cutouts (those made before an interruption are taken from the journal)."""
        plan, writer, journal = ctx.plan, ctx.writer, ctx.journal
        if not plan.synthetic_target:
            return StageOutput()
        done = {e["file"]: e for e in journal.entries if e["t"] in ("syn", "syn-reject")}
        pos_row = {r["file"]: r for r in ctx.rows if r["role"] == "positive"}
        keys = sorted(k for k in pos_row if plan.pos_boxes.get(k) or k in plan.pos_masks)
        order = [keys[i] for i in rng_for(plan.seed, "synthetic").permutation(len(keys))]
        rows, rejects, names, queue = [], [], ctx.negative_names, []
        for k in order:
            e = done.get(k)
            if e is not None and e["t"] == "syn-reject":
                rejects.append(e["row"])
            elif e is not None and writer.exists(e["row"]["path"]):
                names.take(*stem_and_suffix(Path(e["row"]["path"]).name))
                rows.append(e["row"])
            else:
                queue.append(k)
        cut = plan.settings.cutout
        fn = partial(cutout_task, opts=cut, mode="cutout", crop={})
        pos = 0
        while len(rows) < plan.synthetic_target and pos < len(queue):
            batch = queue[pos:pos + plan.synthetic_target - len(rows)]
            pos += len(batch)
            tasks = [image_task(plan.positives.root, k, plan.pos_boxes, plan.pos_masks, plan.seed) for k in batch]
            for k, result in zip(batch, ctx.distributor.imap(fn, tasks)):
                if isinstance(result, str):
                    rejects.append({"role": "synthetic", "source": str(plan.positives.root), "file": k,
                                    "reason": result})
                    journal.append({"t": "syn-reject", "file": k, "row": rejects[-1]})
                    continue
                c, split = result[0], pos_row[k]["split"]
                rel = rel_path(plan.opts.format, split, plan.negative_class,
                               names.take(safe_name(Path(k).stem + '_' + c.fill), '.jpg'))
                writer.write_bytes(rel, c.data)
                rows.append(manifest_row(
                    path=rel, split=split, **{"class": plan.negative_class}, role="negative",
                    # no `label`: it would say the negative shows the positive class; it shows that
                    # photo's background, which `background_of` names
                    source=str(plan.positives.root), file=k, label=None,
                    sha256=hashlib.sha256(c.data).hexdigest(), width=c.width, height=c.height, reencoded=True,
                    cutout={"boxes": c.boxes, "region": c.region, "fill": c.fill, "seed": c.seed,
                            "margin": cut.margin, "region_area": c.region_area, "fell_back": "; ".join(c.fell_back) or None,
                            "background_of": pos_row[k]["label"]}))
                journal.append({"t": "syn", "file": k, "row": rows[-1]})
        return StageOutput(rows, rejects)
