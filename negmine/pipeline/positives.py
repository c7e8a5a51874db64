"""The positives stage: write the positives planning kept, each into its planned split."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from negmine.images import EncodeOptions, ImageRejected, encode, portable_extension
from negmine.outputs.formats import rel_path
from negmine.outputs.manifest import row as manifest_row
from negmine.naming import UniqueNames, safe_name
from negmine.pipeline.contract import RunContext, StageOutput
from negmine.progress import bar as progress_bar


def stem_and_suffix(name: str) -> tuple[str, str]:
    """A written file's name as `UniqueNames.take` takes it, so a resumed run reserves it again."""
    p = Path(name)
    return p.stem, p.suffix


class WritePositives:
    """Place (link or copy) or re-encode each positive into its split; sets `ctx.positive_hashes`
    (the perceptual hashes computed while planning, with the row path owning each) for the
    negatives' near-duplicate filter. A positive that fails to encode is a reject, not a stop."""

    def run(self, ctx: RunContext) -> StageOutput:
        """Write the positives (those placed before an interruption are taken from the journal)."""
        plan, writer, journal = ctx.plan, ctx.writer, ctx.journal
        opts, positives = plan.opts, plan.positives
        rows, rejects = [], []
        done = {e["file"]: e for e in journal.entries if e["t"] in ("pos", "pos-reject")}
        all_files = [f for files in positives.classes.values() for f in files]
        hashed = plan.pos_hashed                        # hashed while planning (splits follow duplicates)
        rejects += plan.pos_rejects
        pos_hashes, pos_owner = [], []
        bar = progress_bar(show=opts.progress, dynamic_ncols=True, total=len(all_files), desc="positives", unit="img")
        for cls, files in positives.classes.items():
            splits = [plan.pos_split[f.rel] for f in files]
            names = UniqueNames()
            for f, s in zip(files, splits):
                bar.update()
                if f.rel in done:                       # placed before an interruption
                    e = done[f.rel]
                    if e["t"] == "pos-reject":
                        rejects.append(e["row"])
                        continue
                    if writer.exists(e["row"]["path"]):
                        names.take(*stem_and_suffix(Path(e["row"]["path"]).name))
                        rows.append(e["row"])
                        hashes = hashed[str(f.path)][0] if plan.hash_kind else []
                        pos_hashes += hashes
                        pos_owner += [e["row"]["path"]] * len(hashes)
                        continue
                try:
                    hashes, (width, height) = hashed[str(f.path)]
                    suffix = portable_extension(str(f.path))
                    if suffix is None:   # re-encoded like the negatives, so no loader reads it differently
                        enc = encode(f.path.read_bytes(), EncodeOptions(opts.quality))
                except ImageRejected as exc:
                    rejects.append({"role": "positive", "source": str(positives.root), "file": f.rel,
                                    "reason": str(exc)})
                    journal.append({"t": "pos-reject", "file": f.rel, "row": rejects[-1]})
                    continue
                inner = f.rel.split("/", 1)[-1] if len(positives.classes) > 1 or "/" in f.rel else f.rel
                stem = safe_name(str(Path(inner).with_suffix("")))
                if suffix is None:
                    rel = rel_path(opts.format, plan.split_names[s], cls, names.take(stem, '.jpg'))
                    writer.write_bytes(rel, enc.data)
                    digest, (width, height) = hashlib.sha256(enc.data).hexdigest(), (enc.width, enc.height)
                else:
                    rel = rel_path(opts.format, plan.split_names[s], cls, names.take(stem, suffix))
                    writer.place(rel, f.path, opts.link)
                    digest = hashlib.sha256(f.path.read_bytes()).hexdigest()
                pos_hashes += hashes
                pos_owner += [rel] * len(hashes)
                rows.append(manifest_row(
                    path=rel, split=plan.split_names[s], **{"class": cls}, role="positive",
                    source=str(positives.root), file=f.rel, label=positives.labels[cls],
                    sha256=digest, width=width, height=height, reencoded=suffix is None,
                    hash=f"{hashes[0]:016x}" if hashes else None))
                journal.append({"t": "pos", "file": f.rel, "row": rows[-1]})
        bar.close()
        ctx.positive_hashes = (np.array(pos_hashes, dtype=np.uint64), pos_owner)
        return StageOutput(rows, rejects)
