"""The contract every stage of a run keeps: `stage.run(ctx) -> StageOutput(rows, rejects)`.

A stage reads the `RunContext` (the plan, where it writes, where work runs, the journal that lets an
interrupted run resume) and returns the manifest rows it wrote and the rejects.jsonl rows of what it
left out; the runner adds both to the context in stage order, so a later stage sees the rows of the
earlier ones (the negatives are checked against the positives written) and the outputs are made of
them in one place (`summary.write_summary`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from negmine.naming import UniqueNames
from negmine.outputs.writers import DatasetWriter, Journal
from negmine.pipeline.plan import Plan


@dataclass
class StageOutput:
    """What one stage made: manifest rows (`outputs.manifest.row`) and reject rows."""

    rows: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)


@dataclass(eq=False)
class RunContext:
    """What the stages of one run share. `rows`/`rejects` grow as stages finish (`add`);
    `negative_names` is the negatives' folder namer (cutouts and pool images share the folder);
    `positive_hashes` (perceptual hashes, the row path owning each) is set by the positives stage."""

    plan: Plan
    writer: DatasetWriter
    distributor: object                  # engine.distribute: imap over worker processes or Ray tasks
    journal: Journal
    rows: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    negative_names: UniqueNames = field(default_factory=UniqueNames)
    positive_hashes: tuple[np.ndarray, list[str]] = field(
        default_factory=lambda: (np.zeros(0, dtype=np.uint64), []))

    def add(self, out: StageOutput) -> StageOutput:
        """Add a stage's rows and rejects to the run's; returns `out`."""
        self.rows += out.rows
        self.rejects += out.rejects
        return out


class Stage(Protocol):
    """One step of a run that writes: given the context, write and return what was written."""

    def run(self, ctx: RunContext) -> StageOutput:
        """Do the stage's work; raise NegmineError to stop the run (nothing is published)."""
        ...
