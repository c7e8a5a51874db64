"""`negmine mine --from-eval DIR/eval.json`: more negatives from the source classes a model confuses
with the positives, as `negmine eval` measured them.

Each source class of the evaluated split weighs its false positives at 95% TPR (`fp_95tpr`: the
operating point every FPR@95 reports; at a strict target FPR most classes have none). A pool row
whose label is such a class (names compared as `name_key`, so a new pool with the same classes under
another source id matches) is a candidate; the candidates are put in a weighted random order
(Efraimidis & Spirakis 2006: key u^(1/w), highest first, u uniform, seeded by the eval.json bytes;
computed as log(u)/w, the same order without underflow for small weights),
each row weighing its class's FP count over the class's candidate rows, so the classes share the
draw in proportion to their false positives however many images each has in the pool. The rest of
`mine` is unchanged: the positives of the evaluated output, its exclusion terms, concepts and rule
judge the pool's classes (a confused class the taxonomy excludes stays excluded, and is said), and
every candidate passes the duplicate filters; images of the evaluated output itself are not drawn
again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from negmine.errors import NegmineError
from negmine.evaluation.attribution import CUTOUT, NO_LABEL
from negmine.evaluation.run import manifest_sha256, read_eval
from negmine.filters.concepts import recorded_exclusion_options
from negmine.filters.taxonomy import name_key
from negmine.sampling.scores import Scores

BASIS = "fp_95tpr"


@dataclass
class Confused:
    """What mine takes from an eval.json: the confused classes {key: (label, fp count)}, the
    evaluated output's folder and its manifest rows, negmine.json (`record`), and a seed."""

    path: Path
    output: Path
    classes: dict[str, tuple[str, int]]
    rows: list[dict]
    record: dict = field(default_factory=dict)
    seed: int = 0

    @property
    def terms(self) -> list[str]:
        """The exclusion terms of the evaluated run: its positives' labels and its --exclude."""
        pos = sorted({str(r.get("label") or r.get("class")) for r in self.rows if r.get("role") == "positive"})
        return pos + [str(x) for x in (self.record.get("options") or {}).get("exclude") or []]

    @property
    def concepts(self) -> dict:
        """The evaluated run's --concept names."""
        return dict((self.record.get("options") or {}).get("concepts") or {})

    def exclusion_options(self) -> dict:
        """The evaluated run's class-exclusion rule (`plan_classes` keywords)."""
        return recorded_exclusion_options(self.record)

    @property
    def positive_paths(self) -> list[Path]:
        """The positive image files of the evaluated output (for the duplicate filters)."""
        return [self.output / r["path"] for r in self.rows if r.get("role") == "positive"
                and (self.output / r["path"]).is_file()]

    def draw_keys(self, labels: list[str | None], ids: list[str]) -> dict[str, float]:
        """{id: key} for the pool rows (`labels[i]` the label of `ids[i]`) of a confused class;
        ranking by key, highest first, is the weighted random order the module describes."""
        keys = [name_key(x) if x else None for x in labels]
        members: dict[str, int] = {}
        for k in keys:
            if k in self.classes:
                members[k] = members.get(k, 0) + 1
        rng = np.random.default_rng(self.seed)
        log_u = np.log1p(-rng.random(len(ids)))         # log of u in (0, 1]: never log(0)
        out = {}
        for i, (cid, k) in enumerate(zip(ids, keys)):
            if k in members:
                w = self.classes[k][1] / members[k]
                out[cid] = float(log_u[i] / w)
        return out

    def absent(self, labels: list[str | None]) -> list[str]:
        """The confused classes no pool row carries."""
        have = {name_key(x) for x in labels if x}
        return [lab for k, (lab, _) in self.classes.items() if k not in have]


def read_confused(path: Path) -> Confused:
    """Read an eval.json (through `negmine.evaluation.run.read_eval`) and the output it evaluated.
    Raises NegmineError when no source class has a false positive, or the output is gone."""
    path = Path(path).expanduser()
    path = path / "eval.json" if path.is_dir() else path
    data = read_eval(path)
    classes: dict[str, tuple[str, int]] = {}
    for c in data["false_positives"]["classes"]:
        n = int(c.get(BASIS) or 0)
        # a cutout's fill or an unlabelled image names no pool class to draw from
        if n > 0 and c.get("label") and c["label"] != NO_LABEL and not str(c["label"]).startswith(CUTOUT):
            key = name_key(str(c["label"]))
            label, before = classes.get(key, (str(c["label"]), 0))
            classes[key] = (label, before + n)        # one class from several sources adds up
    if not classes:
        raise NegmineError(f"--from-eval {path}: no source class has a false positive at 95% TPR; "
                           "nothing says which classes to draw more of")
    output = Path(data["output"])
    manifest = output / "manifest.jsonl"
    try:
        rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise NegmineError(f"--from-eval {path}: the evaluated output's {manifest} is not readable ({exc}); "
                           "its positives and exclusion rule are needed") from None
    if data.get("manifest_sha256") and data["manifest_sha256"] != manifest_sha256(output):
        raise NegmineError(f"--from-eval {path}: {output} changed since it was evaluated (its manifest.jsonl is not "
                           "the one measured, e.g. a sweep rerun with --overwrite); run negmine eval on it again")
    try:
        record = json.loads((output / "negmine.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NegmineError(f"--from-eval {path}: {output}/negmine.json is not readable; the exclusion rule of "
                           "the evaluated run is needed") from None
    digest = hashlib.sha256(path.read_bytes()).digest()
    return Confused(path, output, classes, rows, record, int.from_bytes(digest[:8], "little"))


class EvalScores(Scores):
    """The draw keys of `Confused.draw_keys` in the place of a model's scores, with what the summary
    says: the confused classes, their weights, those the pool lacks and those it excludes."""

    def __init__(self, values: dict[str, float], confused: Confused, absent: list[str]):
        super().__init__(values, "pool row", [], [])
        self.confused, self.absent = confused, absent
        self.excluded: list[dict] = []

    @property
    def how(self) -> str:
        weights = ", ".join(f"{lab} {n}" for lab, n in sorted(self.confused.classes.values(), key=lambda t: -t[1]))
        return (f"drawn from the classes {self.confused.path} names, weighted by their false positives at 95% TPR "
                f"({weights})")

    def note_excluded(self, verdicts) -> None:
        """Record the confused classes the exclusion rule keeps out (`ClassVerdict`s of the pool)."""
        for v in verdicts:
            if v.excluded and name_key(v.label) in self.confused.classes:
                self.excluded.append({"label": v.label, "reason": v.reason})

    def report(self, kept_labels: list[str | None]) -> dict:
        """The summary's `from_eval`: the eval file, each confused class's weight and how many of
        its images were kept, and the classes absent from the pool or excluded (with why)."""
        kept: dict[str, int] = {}
        for lab in kept_labels:
            if lab:
                kept[name_key(lab)] = kept.get(name_key(lab), 0) + 1
        return {"eval": str(self.confused.path), "output": str(self.confused.output), "basis": BASIS,
                "classes": [{"label": lab, "false_positives": n, "kept": kept.get(k, 0)}
                            for k, (lab, n) in self.confused.classes.items()],
                "absent_from_pool": self.absent, "excluded": self.excluded}


class AlreadyEvaluated:
    """A draw filter: an image of the evaluated output (the same source file, or the same bytes) is
    not drawn again."""

    def __init__(self, rows: list[dict], source_id: str):
        self.sha = {r["sha256"] for r in rows if r.get("sha256")}
        self.origins = {(r.get("file"), r.get("row"), r.get("member")) for r in rows if r.get("source") == source_id}

    def prepare(self, cands) -> None:
        pass

    def check(self, c) -> str | None:
        o = c.origin or {}
        if (o.get("file"), o.get("row"), o.get("member")) in self.origins or c.file_sha256 in self.sha \
                or (c.sha256 is not None and c.sha256 in self.sha):
            return "already in the evaluated output"
        return None

    def accept(self, c) -> None:
        pass
