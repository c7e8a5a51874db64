"""The `Plan` of a `sample` run: everything decided before anything is written, which every stage
reads (made by `planner.make_plan`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from negmine.filters.overlap import ClassPlan
from negmine.pipeline.options import SampleOptions, Settings
from negmine.positives import Positives
from negmine.sources import Source


@dataclass(eq=False)
class Plan:
    """What a `sample` run decided before writing. The stages read it; only `needed` changes
    afterwards (the negatives stage counts it again on the positives actually written).

    Filled in by `planner.make_plan`; the fields after `settings` are set in the order planning reaches them.
    """

    opts: SampleOptions
    settings: Settings
    positives: Positives | None = None
    sources: list[Source] = field(default_factory=list)
    # None: the pool was opened (`sources`); else why none was: {"used": False, "reason", "not_opened"}
    pool: dict | None = None
    classes: ClassPlan | None = None
    # unlabelled rows (negmine.filters.unlabelled): per source UnlabelledRows or None; rows left out
    unlabelled: list = field(default_factory=list)
    unlabelled_masks: list = field(default_factory=list)
    unlabelled_estimate: dict | None = None
    unlabelled_rejects: list[dict] = field(default_factory=list)
    # pools labelled by their text (negmine.filters.text): {source id: columns, nouns, counts}
    text: dict[str, dict] = field(default_factory=dict)
    # pools with per-row licences (negmine.filters.licences.row_licences): per source RowLicences or
    # None, and {source id: counts per licence, rows --licence leaves out and why}
    licence_rows: list = field(default_factory=list)
    licences: dict[str, dict] = field(default_factory=dict)
    # the positives (prepare.prepare_positives): path -> (hashes, (w, h)) or a reason; rejects;
    # duplicate groups; file -> split index
    pos_hashed: dict = field(default_factory=dict)
    pos_rejects: list[dict] = field(default_factory=list)
    pos_groups: list[dict] = field(default_factory=list)
    pos_split: dict[str, int] = field(default_factory=dict)
    pos_boxes: dict[str, list] = field(default_factory=dict)
    pos_masks: dict[str, Path] = field(default_factory=dict)
    left_out: list[dict] = field(default_factory=list)   # positives not written (yolo-det: no or bad annotation)
    needed: int = 0                          # negatives in all (pool and synthetic)
    synthetic_target: int = 0                # of which cutouts of annotated positives
    pool_target: int = 0                     # of which drawn from the pool
    shortcut_note: str | None = None         # cutouts the shortcut table warns about (synthetic.shortcuts)
    # --verified-absent: {source id: {"verified", "cannot_verify", ...}}; per source the label groups
    verified: dict[str, dict] = field(default_factory=dict)
    absence: list = field(default_factory=list)
    # the priority order (order.plan_order): position -> pool row, source index, stratum; near per stratum
    order_row: np.ndarray | None = None
    order_src: np.ndarray | None = None
    order_stratum: np.ndarray | None = None
    order_near: list = field(default_factory=list)
    near_levels: dict[str, int | None] = field(default_factory=dict)
    available: int = 0                       # eligible pool rows
    forced_ratio: float | None = None        # --max-download: clustering past the class-coverage cap
    fit_note: str | None = None              # what fitting --max-download cost in classes
    held_out: object | None = None           # --eval-from: the earlier run's val/test (pipeline.eval_from.HeldOut)

    @property
    def seed(self) -> int:
        """The run's seed (every random choice derives from it: sampling.plan.rng_for)."""
        return self.settings.seed

    @property
    def hash_kind(self) -> str | None:
        """The perceptual hash in use, None with --hash none."""
        return self.settings.hash_kind

    @property
    def split_names(self) -> tuple[str, ...]:
        """The splits' names, in --split order."""
        return self.settings.split_names

    @property
    def split_fracs(self) -> tuple[float, ...]:
        """The splits' fractions, in --split order."""
        return self.settings.split_fracs

    @property
    def negative_class(self) -> str:
        """The negatives' class folder name."""
        return self.settings.negative_class
