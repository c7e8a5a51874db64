"""Which files make up a split of a dataset repo or folder, found as the Hub and `datasets` find them."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

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


def default_split(available: Sequence[str], where: str) -> str:
    """The split a source reads when no ?split= names one: `train`, else the only split there is.

    `datasets.load_dataset` without `split` returns every split (a DatasetDict) and leaves the
    choice to the caller; a draw reads one. Several splits and no train split (validation and
    test of a benchmark) is no choice to make by order: drawing negatives from a test split
    leaks it. Raises SourceNotFound naming the splits and ?split=."""
    if "train" in available:
        return "train"
    if len(available) == 1:
        return available[0]
    if not available:
        raise SourceNotFound(f"{where} has no splits")
    raise SourceNotFound(f"{where} has no train split but {len(available)} others ({', '.join(available)}); "
                         "choose one by adding ?split=NAME to the source")


@dataclass(frozen=True)
class SplitFiles:
    """The files of one split, and how they were found."""
    split: str
    files: list[str]
    config: str | None = None
    partial: bool = False        # refs/convert/parquet `partial-SPLIT`: only the first ~5 GB of the split
    how: str = "conventions"     # "card configs", "converted parquet", "hive partitions", "push_to_hub layout",
    #                              "conventions"


# refs/convert/parquet: CONFIG/SPLIT/0000.parquet, or CONFIG/partial-SPLIT/0000.parquet when the Hub
# converted only the first 5 GB of a large split (hf.co/docs/dataset-viewer/parquet)
_CONVERTED = re.compile(r"(?P<config>[^/]+)/(?P<partial>partial-)?(?P<split>[^/]+)/[0-9]{4,}\.parquet")


def _listing(base: str) -> list[str]:
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(base)
    root = root.rstrip("/")
    return sorted(p[len(root) + 1:] for p in fs.find(root) if not any(
        part.startswith(".") for part in p[len(root) + 1:].split("/")))


_HIVE = re.compile(r"(?P<key>[^=/]+)=(?P<value>[^/]*)")


def hive_parquet(listing: Sequence[str]) -> dict[str, list[str]] | None:
    """Splits of a hive-partitioned table (as Spark writes one: `key=value/.../part-*.parquet`,
    CommonCatalog's `least_dim_range=.../aspect_ratio_bucket=...`): every parquet file of the
    listing (relative paths) under at least one `key=value` folder, read as one split `train`,
    unless a partition key is `split` (then its values are the splits). None when not hive."""
    data = [f for f in listing if f.endswith(".parquet")]
    if not data:
        return None
    found: dict[str, list[str]] = {}
    for f in data:
        parts = [m for m in map(_HIVE.fullmatch, f.split("/")[:-1]) if m]
        if not parts:
            return None
        split = next((m["value"] for m in parts if m["key"] == "split"), "train")
        found.setdefault(split, []).append(f)
    return found


def _join(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + rel


def card_config(card_data: dict, config: str | None, where: str) -> dict | None:
    """The card's YAML `configs` entry a run reads: the one named `config`, else the default as
    `datasets` picks it (the only one, the one named "default" or the one marked `default: true`);
    None when the card declares no configs.

    Raises SourceNotFound for a config the card does not declare, and when there are several
    configs and none is the default (`datasets` raises "Config name is missing" there: choosing
    one by position would draw from a subset nobody chose)."""
    configs = card_data.get("configs") if isinstance(card_data, dict) else None
    if not isinstance(configs, list) or not configs:
        return None
    by_name = {c.get("config_name", "default"): c for c in configs if isinstance(c, dict)}
    if not by_name:
        return None
    if config is not None:
        if config not in by_name:
            raise SourceNotFound(f"{where} has no config {config!r}; configs: {', '.join(by_name)}")
        return {**by_name[config], "config_name": config}
    defaults = [n for n, c in by_name.items() if len(by_name) == 1 or n == "default" or c.get("default")]
    if len(defaults) != 1:
        which = "none is marked the default" if not defaults else f"several are marked the default ({', '.join(defaults)})"
        raise SourceNotFound(f"{where} has configs {', '.join(by_name)} and {which}; choose one by adding "
                             f"?config=NAME to the source (e.g. ?config={next(iter(by_name))})")
    return {**by_name[defaults[0]], "config_name": defaults[0]}


def _from_card(base: str, card_data: dict, config: str | None, where: str
               ) -> tuple[dict[str, list[str]] | None, str | None]:
    """Splits from the card's YAML `configs`, as `datasets` reads them
    (`create_builder_configs_from_metadata_configs`, `BuilderConfig._resolve_data_files`): a config's
    `data_files` (per split, by name or glob) are relative to its `data_dir` when it gives one; a
    config with only a `data_dir` holds what `datasets`' naming conventions find in that folder. A
    file the chosen config does not select is not part of the dataset. Returns (splits, config name);
    splits are None when the chosen config selects no files of its own, both when the card declares
    no configs."""
    chosen = card_config(card_data, config, where)
    if chosen is None:
        return None, config
    from datasets.data_files import DataFilesDict, get_data_patterns, sanitize_patterns

    name = chosen["config_name"]
    data_dir = chosen.get("data_dir")
    if data_dir is not None and (not isinstance(data_dir, str) or data_dir.startswith("/")
                                 or ".." in data_dir.split("/")):
        raise SourceNotFound(f"the card of {where}: config {name!r} has data_dir {data_dir!r}; "
                             "it must be a folder inside the repo")
    if "data_files" not in chosen and not data_dir:
        return None, name
    root = _join(base, data_dir.strip("/")) if data_dir else base
    try:
        patterns = (sanitize_patterns(chosen["data_files"]) if chosen.get("data_files") is not None
                    else get_data_patterns(root))
        files = DataFilesDict.from_patterns(patterns, base_path=root)
    except Exception as exc:
        raise SourceNotFound(f"the card of {where} lists data files that are not there (config {name!r}"
                             + (f", data_dir {data_dir!r}" if data_dir else "") + f"): {exc}".splitlines()[0]) from None
    return {str(k): [str(f) for f in v] for k, v in files.items()}, name


def split_files(base: str, split: str | None, where: str, card_data: dict | None = None,
                config: str | None = None) -> SplitFiles:
    """The data files of one split, found as the Hub and `datasets` find them: the card's `configs`
    first, then the auto-converted parquet layout (refs/convert/parquet), then hive partition
    folders (`hive_parquet`), then push_to_hub's
    layout, then `datasets`' naming conventions.

    Raises SourceNotFound when there are no data files, or no such split or config."""
    how, partial = "conventions", set()
    files, config = _from_card(base, card_data or {}, config, where)
    if files is not None:
        how = "card configs"
    else:
        listing = _listing(base)
        converted = [m for m in map(_CONVERTED.fullmatch, listing) if m]
        data = [f for f in listing if f.endswith(".parquet")]
        if converted and len(converted) == len(data):
            how = "converted parquet"
            configs = sorted({m["config"] for m in converted})
            if config is None:
                # as `datasets` does ("Config name is missing"): several subsets and no default is no
                # choice to make by name order
                if "default" not in configs and len(configs) > 1:
                    raise SourceNotFound(f"{where} has configs {', '.join(configs)} and none is the default; "
                                         "choose one by adding ?config=NAME to the source")
                config = "default" if "default" in configs else configs[0]
            if config not in configs:
                raise SourceNotFound(f"{where} has no config {config!r}; configs: {', '.join(configs)}")
            files = {}
            for m in converted:
                if m["config"] == config:
                    files.setdefault(m["split"], []).append(_join(base, m.string))
                    if m["partial"]:
                        partial.add(m["split"])
        elif (hive := hive_parquet(listing)) is not None:
            files = {k: [_join(base, f) for f in v] for k, v in hive.items()}
            how = "hive partitions"
        else:
            files = sharded_parquet(base)
            how = "push_to_hub layout"
            if files is None:
                how = "conventions"
                from datasets.data_files import DataFilesDict, get_data_patterns

                try:
                    patterns = get_data_patterns(base)
                    files = DataFilesDict.from_patterns(patterns, base_path=base)
                except Exception as exc:
                    raise SourceNotFound(f"no data files found in {where}: {exc}".splitlines()[0]) from None
    if how in ("push_to_hub layout", "conventions", "hive partitions") and config not in (None, "default"):
        # `datasets` raises here too ("BuilderConfig ... not found"): a named subset is never the whole repo
        raise SourceNotFound(f"{where} has no config {config!r}: its card declares no configs (only 'default')")
    files = {str(k): v for k, v in files.items()}    # datasets' NamedSplit keys are no str (json, join)
    available = [s for s in _DEFAULT_SPLITS if s in files] + sorted(set(files) - set(_DEFAULT_SPLITS))
    if split is None:
        split = default_split(available, where)
    if split not in files:
        raise SourceNotFound(f"{where} has no split {split!r}; splits: {', '.join(available)}")
    return SplitFiles(split, sorted(str(f) for f in files[split]), config, split in partial, how)
