"""`SampleRun` and `run_sample`: a `sample` run as its stages, composed (see the package docstring)."""

from __future__ import annotations

import time

from negmine import __version__
from negmine.engine.distribute import engine_session, make_distributor
from negmine.errors import InterruptedEarly
from negmine.outputs.formats import push_to_hub
from negmine.outputs.writers import DatasetWriter, Journal, Run, run_options, stored_seed
from negmine.outputs.manifest import add_to_record
from negmine.pipeline.contract import RunContext
from negmine.pipeline.eval_from import CopyHeldOut
from negmine.pipeline.negatives import DrawNegatives
from negmine.pipeline.options import SampleOptions, check_options
from negmine.pipeline.plan import Plan
from negmine.pipeline.planner import make_plan
from negmine.pipeline.plan_summary import plan_summary
from negmine.pipeline.positives import WritePositives
from negmine.pipeline.summary import write_summary
from negmine.pipeline.sweep import refuse_single_resume_of_sweep, run_sweep, sweep_of
from negmine.pipeline.synthetic import MakeSynthetic


class SampleRun:
    """One `sample` run. The options are checked on construction; `plan()` does everything up to
    the draw (returns the plan summary); `execute()` runs the stages and writes the dataset."""

    def __init__(self, opts: SampleOptions):
        self.opts = opts
        self.settings = check_options(opts)
        self.seed = self.settings.seed
        self.t0 = time.monotonic()
        self.the_plan: Plan | None = None
        self.rows: list[dict] = []           # the manifest rows written (after execute)
        self.ctx: RunContext | None = None   # after run_stages: the context and the negatives stage
        self.negatives: DrawNegatives | None = None

    def plan(self) -> dict:
        """Plan the run (`plan.make_plan`); returns the plan summary (what --dry-run prints)."""
        self.the_plan = make_plan(self.opts, self.settings)
        summary = plan_summary(self.the_plan)
        if self.the_plan.held_out is not None:          # --eval-from: val/test are the earlier run's
            summary["eval_from"] = self.the_plan.held_out.describe()
            for split, per_class in summary["eval_from"]["counts"].items():
                summary["splits"][split] = dict(per_class)
        return summary

    def run_key(self) -> dict:
        """What must not change between an interrupted run and its --resume."""
        opts = run_options({**self.opts.record(), "seed": self.seed})
        return {"negmine_version": __version__, "seed": self.seed, "options": opts,
                "sources": [s.describe() for s in self.the_plan.sources]}

    def execute(self) -> dict:
        """Write the dataset (after `plan()`), publish it, push it to the Hub (--push-to-hub);
        returns the run's summary."""
        distributor = make_distributor(self.opts.workers, self.opts.engine, self.opts.ray_address)
        try:
            with Run(self.opts.out, self.run_key(), overwrite=self.opts.overwrite, resume=self.opts.resume) as run:
                summary = self.run_stages(run.writer, distributor, run.journal)
                run.journal.close()
                run.writer.publish()
        finally:
            distributor.close()
        if self.opts.push_to_hub:
            summary["pushed"] = push_to_hub(run.writer.out, self.opts.push_to_hub, summary, self.rows,
                                            private=not self.opts.public)
        return summary

    def run_stages(self, writer: DatasetWriter, distributor, journal: Journal) -> dict:
        """The stages in order (positives, synthetic, negatives), then the outputs; returns the summary."""
        ctx = RunContext(self.the_plan, writer, distributor, journal)
        ctx.add(WritePositives().run(ctx))
        # what planning left out, listed in rejects.jsonl after the positives as it always was
        ctx.rejects += self.the_plan.left_out + self.the_plan.unlabelled_rejects
        synthetic = ctx.add(MakeSynthetic().run(ctx))
        negatives = DrawNegatives()
        ctx.add(negatives.run(ctx))
        if self.the_plan.held_out is not None:          # --eval-from: after the draw, so none of it counts there
            ctx.add(CopyHeldOut().run(ctx))
        summary = write_summary(ctx, negatives, len(synthetic.rows), self.t0)
        if self.the_plan.held_out is not None:
            summary["eval_from"] = self.the_plan.held_out.describe()
            add_to_record(writer, "eval_from", summary["eval_from"])
        self.rows = ctx.rows
        self.ctx, self.negatives = ctx, negatives      # a sweep derives its smaller members from them
        return summary


def run_sample(opts: SampleOptions) -> dict:
    """Library entry point: plan, and unless dry_run, write the dataset. Returns the summary
    (the plan summary with "dry_run": True for a dry run). Raises NegmineError (InterruptedEarly
    on Ctrl-C while planning, when nothing was written). A list in `ratio` or `count` is a sweep
    (`pipeline.sweep.run_sweep`: one dataset per value, one val/test for all)."""
    spec = sweep_of(opts)
    if spec is not None:
        return run_sweep(opts, spec, SampleRun)
    refuse_single_resume_of_sweep(opts)
    if opts.resume and opts.seed is None:
        opts.seed = stored_seed(opts.out)
    # one engine for the whole run: hashing the positives and the draw share a Ray (started once)
    with engine_session(opts.engine, opts.workers, opts.ray_address):
        run = SampleRun(opts)
        try:
            plan = run.plan()
        except KeyboardInterrupt:
            raise InterruptedEarly(f"interrupted while planning, before anything was written: run the same command "
                                   f"again (with --seed {run.seed} to draw the same); --resume has nothing to resume"
                                   ) from None
        if opts.dry_run:
            return {"dry_run": True, **plan}
        return run.execute()
