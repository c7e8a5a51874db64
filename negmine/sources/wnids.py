"""Images named by their ImageNet wnid: ``n01440764_10026.JPEG``, as ImageNet's own train archives
name them, and ``n01440764_tench.JPEG``, as the sample sets of one image per class do.

The rule (one place, used by the folder and imagefolder readers): images that no folder labels
(they sit at the pool's top, or in a folder whose name says nothing, such as ``images/``) take the
wnid their file name starts with, folder by folder, only when **every** image file directly in
that folder is named ``nNNNNNNNN_<anything>.<ext>`` and every such wnid is a WordNet 3.0 noun
synset (the taxonomy shipped in negmine). A folder with one file that does not follow the pattern,
or one wnid WordNet does not hold, is not guessed: its images stay unlabelled (and an unlabelled
pool is refused, see negmine.filters.unlabelled). A folder that names a class keeps that class.
"""

from __future__ import annotations

import gzip
import posixpath
import re
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

WNID_FILE = re.compile(r"^(n\d{8})_[^/]*\.[^./]+$")


def wnid_file_labels(paths: Sequence[str], labels: Sequence[str | None]) -> list[str | None]:
    """`labels` (one per path: the folder's class, or None) with the unlabelled images of each
    fully wnid-named folder labelled by their wnid (see the module's rule). `paths`: POSIX paths
    relative to the source. Returns a new list; WordNet's offsets are read only when some folder
    matches the pattern."""
    folders: dict[str, list[int]] = {}
    for i, (p, lab) in enumerate(zip(paths, labels)):
        if lab is None:
            folders.setdefault(posixpath.dirname(p), []).append(i)
    out = list(labels)
    for rows in folders.values():
        wnids = []
        for i in rows:
            m = WNID_FILE.match(posixpath.basename(paths[i]))
            if m is None:
                break
            wnids.append(m.group(1))
        else:
            if all(int(w[1:]) in noun_offsets() for w in set(wnids)):
                for i, w in zip(rows, wnids):
                    out[i] = w
    return out


@lru_cache(maxsize=1)
def noun_offsets() -> frozenset[int]:
    """The data.noun offsets of WordNet 3.0's noun synsets: the first column of the taxonomy file
    negmine ships (negmine/data/wordnet-nouns.tsv.gz, which negmine.filters.taxonomy.Taxonomy is
    built from). Read here, not through the taxonomy, so the sources stage imports no filter."""
    data = resources.files("negmine") / "data" / "wordnet-nouns.tsv.gz"
    with gzip.open(data.open("rb")) as f:
        return frozenset(int(line.split(b"\t", 1)[0]) for line in f.read().splitlines() if line.strip())


def wnid_misfits(paths: Sequence[str], labels: Sequence[str | None], limit: int = 3) -> list[str]:
    """The files that kept a folder of mostly wnid-named images unlabelled (names that break the
    pattern, or wnids WordNet does not hold), at most `limit`: what a refusal names, so that a
    user can rename or remove them instead of giving up the labels of the rest."""
    folders: dict[str, list[str]] = {}
    for p, lab in zip(paths, labels):
        if lab is None:
            folders.setdefault(posixpath.dirname(p), []).append(p)
    out: list[str] = []
    for files in folders.values():
        matches = [WNID_FILE.match(posixpath.basename(p)) for p in files]
        if sum(m is not None for m in matches) * 2 < len(files):
            continue                              # not a wnid-named folder with a few odd files
        out += [p for p, m in zip(files, matches) if m is None or int(m.group(1)[1:]) not in noun_offsets()]
    return out[:limit]


def labelled_by_wnid(before: Sequence[str | None], after: Sequence[str | None]) -> int:
    """How many images `wnid_file_labels` labelled (None before, a wnid after)."""
    return sum(1 for a, b in zip(before, after) if a is None and b is not None)
