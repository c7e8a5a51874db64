"""The sample run as stages (negmine.pipeline): a library user composing the stages by hand gets
what `negmine sample` writes, and each stage returns the rows it wrote."""

import hashlib
from dataclasses import replace
from pathlib import Path

from conftest import SHARED, read_manifest
from negmine.engine.distribute import make_distributor
from negmine.outputs.writers import Run
from negmine.pipeline import RunContext, SampleOptions, SampleRun, StageOutput, run_sample
from negmine.pipeline.negatives import DrawNegatives
from negmine.pipeline.positives import WritePositives
from negmine.pipeline.summary import write_summary
from negmine.pipeline.synthetic import MakeSynthetic
from negmine.sources import SourceSpec


def images_under(out: Path) -> dict[str, str]:
    """Relative path -> sha256 of every image written (negmine.json names --out, so it differs)."""
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*.jpg"))}


def test_stages_composed_by_hand_write_what_sample_writes(positives, pool, tmp_path):
    boxes = SHARED / "raccoon-voc" / "annotations"
    opts = SampleOptions(positives=positives, out=tmp_path / "cli", sources=[SourceSpec.parse(str(pool))],
                         count=16, synthetic=0.25, boxes=boxes, seed=21, workers=1, progress=False)
    run_sample(replace(opts))

    by_hand = replace(opts, out=tmp_path / "by-hand")
    sample = SampleRun(by_hand)
    sample.plan()
    plan = sample.the_plan
    assert plan.synthetic_target == 4 and plan.pool_target == 12
    distributor = make_distributor(1)
    try:
        with Run(by_hand.out, sample.run_key()) as run:
            ctx = RunContext(plan, run.writer, distributor, run.journal)
            pos = ctx.add(WritePositives().run(ctx))
            assert isinstance(pos, StageOutput) and {r["role"] for r in pos.rows} == {"positive"}
            assert len(pos.rows) == 20 and len(ctx.positive_hashes[1]) == 20
            syn = ctx.add(MakeSynthetic().run(ctx))
            assert len(syn.rows) == 4 and all(r["cutout"]["boxes"] for r in syn.rows)
            negatives = DrawNegatives()
            neg = ctx.add(negatives.run(ctx))
            assert len(neg.rows) == 12 and len(negatives.accepted) == 12
            summary = write_summary(ctx, negatives, len(syn.rows), sample.t0)
            run.journal.close()
            run.writer.publish()
    finally:
        distributor.close()

    assert summary["negatives"] == 16 and summary["synthetic"] == 4
    cli, hand = tmp_path / "cli", tmp_path / "by-hand"
    assert read_manifest(hand) == read_manifest(cli)
    assert (hand / "rejects.jsonl").read_bytes() == (cli / "rejects.jsonl").read_bytes()
    assert images_under(hand) == images_under(cli) and len(images_under(cli)) == 36
