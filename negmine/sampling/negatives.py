"""Drawing negatives and writing them out, as `sample` (its negatives stage, negmine.pipeline.negatives)
and `mine` both do: the filters that keep the positives out, the draw under a progress bar, and
the placing of what was kept out of scratch under its final name. Each command orders the
candidates and names the kept ones its own way; this is the part they share."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from negmine.filters.overlap import ExactDuplicates, NearDuplicates
from negmine.images import EncodeOptions
from negmine.outputs.writers import DatasetWriter, Journal
from negmine.progress import bar as progress_bar
from negmine.sampling.draw import Candidate, draw
from negmine.sources import Source


def positive_filters(sha_owner: dict[str, str], hashes: np.ndarray, owners: list[str], hash_kind: str | None,
                     distance: int) -> list:
    """The filters every drawn negative passes against the positives: not the same bytes
    (`sha_owner`: sha256 -> the positive's path), and, with a `hash_kind`, no perceptual hash
    within `distance` bits of one of `hashes` (uint64, `owners[i]` the positive owning `hashes[i]`)."""
    filters = [ExactDuplicates(sha_owner)]
    if hash_kind:
        filters.append(NearDuplicates(hashes, owners, distance))
    return filters


def draw_negatives(candidate: Callable[[int], Candidate], available: int, target: int, sources: Sequence[Source],
                   filters: list, writer: DatasetWriter, distributor, encode: EncodeOptions, hash_kind: str | None,
                   journal: Journal, *, desc: str, progress: bool,
                   on_drop: Callable[[Candidate], None] | None = None) -> tuple[list[Candidate], list[Candidate]]:
    """Keep the first `target` of `candidate(0..available-1)` that pass every filter
    (`sampling.draw.draw`, resumed from `journal`), with a progress bar named `desc` when
    `progress`. Returns (accepted, dropped); the accepted wait in the writer's scratch."""
    with progress_bar(show=progress, dynamic_ncols=True, total=target, desc=desc, unit="img") as bar:
        return draw(candidate, available, target, sources, filters, writer, distributor, encode, hash_kind,
                    journal, bar, on_drop)


def place_negatives(writer: DatasetWriter, distributor, moves: Iterable[tuple[list, str]]) -> None:
    """Write each kept negative (scratch ref, final path) out of scratch, on the distributor's
    workers while `moves` is still being produced, then remove the scratch."""
    writer.place_scratch(moves, distributor)
    writer.clear_scratch()
