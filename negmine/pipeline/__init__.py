"""`negmine sample` as a pipeline: options, a plan, then stages that write.

    options.py   SampleOptions and check_options -> Settings (every option checked before any read)
    plan.py      Plan: everything decided before anything is written
    planner.py   make_plan -> Plan: positives scanned, sources opened and checked (none when
                 --synthetic cutouts supply every negative), class plan,
                 unlabelled rows, --verified-absent; with prepare.py (which positives, their splits)
                 and order.py (the draw's priority order, --max-download fit)
    plan_summary.py  what the plan says (--dry-run's output; notes the run's summary repeats)
    contract.py  the stage contract: StageOutput, RunContext, Stage
    positives.py WritePositives   the positives, each into its planned split
    synthetic.py MakeSynthetic    --synthetic: cutouts of annotated positives (the task `negmine cutout` runs)
    negatives.py DrawNegatives    the pool's negatives: draw through the filters, split, name, place
                                  (the draw and placing are sampling.negatives, shared with `negmine mine`)
    summary.py   write_summary    the format's files, manifest, rejects, negmine.json, report
    run.py       SampleRun, run_sample: the above, composed

The contract: a stage is an object with `run(ctx: RunContext) -> StageOutput`. The context holds the
`Plan` (everything decided before writing), the writer (local folder or object storage), the
distributor (worker processes or Ray) and the journal (what an interrupted run resumes from);
a stage writes through them and returns `StageOutput(rows, rejects)`: the manifest rows it wrote
and the rejects.jsonl rows of what it left out. The runner adds both to the context in stage
order (`RunContext.add`), so a later stage reads what the earlier ones wrote (the negatives are
checked against the positives' bytes and hashes), and the outputs are written once, at the end,
from the context. A stage decides nothing the plan could decide, so a dry run (`plan()` alone)
says what the run will do; every random choice derives from the plan's seed, so the same options
and seed give the same bytes, also resumed, on Ray, or to object storage.
"""

from negmine.pipeline.contract import RunContext, Stage, StageOutput
from negmine.pipeline.options import LINK_MODES, SampleOptions, Settings, check_options
from negmine.pipeline.plan import Plan
from negmine.pipeline.planner import make_plan
from negmine.pipeline.run import SampleRun, run_sample

__all__ = ["LINK_MODES", "Plan", "RunContext", "SampleOptions", "SampleRun", "Settings", "Stage", "StageOutput",
           "check_options", "make_plan", "run_sample"]
