"""Which files make up a split of a dataset repo or folder, found as the Hub and `datasets` find them."""

from __future__ import annotations

import os
import re

from negmine.errors import SourceNotFound

_SHARDED = re.compile(r"(?P<split>\w+(?:\.\w+)*)-[0-9]{5}-of-[0-9]{5}[^/]*\.[^/]*")
_DEFAULT_SPLITS = ("train", "validation", "test")


def sharded_parquet(base: str) -> dict[str, list[str]] | None:
    """Splits of a local folder in push_to_hub layout, all parquet, found as `datasets` finds them
    but without importing it; None for anything else (then `datasets` decides)."""
    data = os.path.join(base, "data")
    if "://" in base or not os.path.isdir(data):
        return None
    found: dict[str, list[str]] = {}
    for name in sorted(os.listdir(data)):
        path = os.path.join(data, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        m = _SHARDED.fullmatch(name)
        if m is None:
            if re.fullmatch(r".*-[0-9]{5}-of-[0-9]{5}.*\..*", name):
                return None                      # a shard name datasets would judge: let it
            continue
        if not name.endswith(".parquet"):
            return None
        found.setdefault(m["split"], []).append(os.path.abspath(path))
    if not found:
        return None
    order = [s for s in _DEFAULT_SPLITS if s in found] + sorted(set(found) - set(_DEFAULT_SPLITS))
    return {s: found[s] for s in order}


def split_files(base: str, split: str | None, where: str) -> tuple[str, list[str]]:
    """The data files of one split, found by the same conventions the Hub and `datasets` use."""
    files = sharded_parquet(base)
    if files is None:
        from datasets.data_files import DataFilesDict, get_data_patterns

        try:
            patterns = get_data_patterns(base)
            files = DataFilesDict.from_patterns(patterns, base_path=base)
        except Exception as exc:
            raise SourceNotFound(f"no data files found in {where}: {exc}".splitlines()[0]) from None
    files = {str(k): v for k, v in files.items()}    # datasets' NamedSplit keys are no str (json, join)
    available = list(files)
    if split is None:
        split = "train" if "train" in files else available[0]
    if split not in files:
        raise SourceNotFound(f"{where} has no split {split!r}; splits: {', '.join(available)}")
    return split, sorted(str(f) for f in files[split])

