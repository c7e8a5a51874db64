"""Source adapters: every pool of candidate negatives behind one small interface (`base.Source`).

| module | layout |
|---|---|
| `base` | `SourceSpec`, `Item`, `Source` |
| `labels` | class codes and multi-label lists (CSR) |
| `columns` | which column is the image, which the label |
| `text` | captions, titles, tags read as the nouns they name |
| `rowlicence` | per-row licence, credit, page URL and title columns: codes to plan, values for kept rows |
| `cards` | dataset cards: YAML data, licence, features |
| `wnids` | images named by their ImageNet wnid |
| `layout` | which files make up a split (push_to_hub layout, card `configs`, hive folders, `datasets` conventions) |
| `parquet` | parquet shards, local or on the Hub, read by page or row group |
| `pages` | parquet page-index reads |
| `remote` | exact range reads of Hub files: every byte negmine downloads |
| `transfer` | one HTTP request for bytes of a Hub file, and what its answer means |
| `image_paths` | image cells holding a path to a file of the repo |
| `budget` | the run's Hub request budget: counts, pacing, 429s |
| `hub` | Hub repo resolution (online, or the HF cache offline) |
| `disk` | `save_to_disk` folders |
| `folder` | folders of image files |
| `imagefolder` | imagefolder splits: loose images or zip archives, labels from metadata.jsonl/csv or folders |
| `webdataset` | WebDataset tar shards: a few whole shards chosen by seed |
| `archive` | which archive layout (tar shards, zips, metadata files) a folder or Hub split is; what those sources share |
| `presets` | named pools, with their licence and what was verified |
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from negmine.errors import NegmineError, SourceNotFound
from negmine.sources import budget, hub
from negmine.sources.base import IMAGE_EXTENSIONS, Item, Source, SourceSpec, short_name
from negmine.sources.cards import card_data, card_licence
from negmine.sources.labels import narrow_codes
from negmine.sources.disk import DiskSource
from negmine.sources.folder import FolderSource, links_line
from negmine.sources.archive import hub_layout, is_imagefolder_file, local_layout
from negmine.sources.imagefolder import ImageFolderSource
from negmine.sources.layout import split_files
from negmine.sources.parquet import PageRead, ParquetSource
from negmine.sources.presets import DEFAULT_PRESET, PRESETS
from negmine.sources.declared import declare_licence
from negmine.licences import parse_licence
from negmine.sources.webdataset import WebDatasetSource

__all__ = ["IMAGE_EXTENSIONS", "DiskSource", "FolderSource", "Item", "PageRead", "ParquetSource", "Source",
           "SourceSpec", "narrow_codes", "open_source", "open_sources", "DEFAULT_PRESET", "PRESETS",
           "ImageFolderSource", "WebDatasetSource"]


def _is_disk_dataset(path: Path) -> bool:
    return (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file()


def open_source(spec: SourceSpec, progress: bool = True, follow_symlinks: bool = False, *,
                seed: int | None = None, want: int | None = None) -> Source:
    """Resolve a spec: a preset name, a local folder, or a Hub repo id. `seed` and `want` (rows
    this source should supply) choose the shards a WebDataset source reads; see `webdataset`.
    A `?licence=` the user declares is applied after (negmine.sources.declared)."""
    src = _open_source(spec, progress, follow_symlinks, seed=seed, want=want)
    if spec.page_url_column and not hasattr(src, "attribution_columns"):
        raise NegmineError(f"--source {spec.location}?page_url=: only parquet pools have columns to name")
    declare_licence(src, spec.licence, spec.location)
    return src


def _open_source(spec: SourceSpec, progress: bool = True, follow_symlinks: bool = False, *,
                 seed: int | None = None, want: int | None = None) -> Source:
    location = spec.location
    if location in PRESETS:
        preset = PRESETS[location]
        spec = replace(spec, location=preset.repo, split=spec.split or preset.split)
        src = _open_hub(spec, *hub.parse_repo(preset.repo), progress=progress, seed=seed, want=want)
        if parse_licence(src.licence).id in ("unknown", "other"):
            # the card says only "other" (or nothing): the preset table names the terms it means
            src.licence = preset.licence
        src.default_read_ratio = preset.max_read_ratio
        return src
    path = Path(location).expanduser()
    if path.exists():
        if not path.is_dir():
            raise SourceNotFound(f"source {location} is a file; give a folder, a Hub repo or a preset")
        path = path.resolve()
        if _is_disk_dataset(path):
            return DiskSource(path, spec)
        if any(path.rglob("*.parquet")):
            card = (path / "README.md").read_text(encoding="utf-8") if (path / "README.md").is_file() else None
            found = split_files(str(path), spec.split, str(path), card_data(card), spec.config)
            spec = replace(spec, config=found.config)     # the card's features of this config name its classes
            src = ParquetSource(id=str(path), short=short_name(path.name), revision=None, licence=card_licence(card),
                                base=str(path), files=found.files, split=found.split, spec=spec, card_text=card,
                                progress=progress)
            src.partial = found.partial
            return src
        layout = local_layout(path)
        card = (path / "README.md").read_text(encoding="utf-8") if (path / "README.md").is_file() else None
        if layout is None and card_data(card).get("configs"):
            # loose images whose card's `configs` choose the files (data_files, data_dir): read as
            # `datasets` reads them, an imagefolder of the chosen config's files, not the whole folder
            layout = "imagefolder"
        if layout:
            found = split_files(str(path), spec.split, str(path), card_data(card), spec.config)
            spec, files, links = replace(spec, config=found.config), found.files, []
            if not follow_symlinks:     # as for folders: no links out of the pool
                files = [f for f in found.files if os.path.realpath(f).startswith(str(path) + os.sep)]
                links = sorted(os.path.relpath(f, path) for f in set(found.files) - set(files))
                if links and not files:
                    raise SourceNotFound(f"source folder {path} holds no files but links: "
                                         + links_line(str(path), links).split(": ", 1)[1])
            try:
                src = open_archive(layout, spec, str(path), files, found.split, id=str(path), revision=None,
                                   card_text=card, progress=progress, seed=seed, want=want)
            except SourceNotFound as exc:
                if links:               # what is left holds nothing: say what was skipped
                    raise SourceNotFound(f"{exc}; {links_line(str(path), links)}") from None
                raise
            src.skipped_links = links
            return src
        if spec.config not in (None, "default"):     # a named subset is never the whole folder
            raise SourceNotFound(f"source folder {path} has no config {spec.config!r}: it has no dataset card "
                                 "declaring configs (README.md `configs`)")
        # a folder's README.md card says its licence as a Hub repo's does
        source = FolderSource(str(path), spec, follow_symlinks=follow_symlinks, licence=card_licence(card))
        if not len(source):
            links = source.skipped_links
            raise SourceNotFound(f"source folder {path} holds no images"
                                 + (f": {links_line(str(path), links).split(': ', 1)[1]}" if links else ""))
        return source
    parsed = hub.parse_repo(location)
    if parsed is None or location.startswith((".", "/", "~")):
        raise SourceNotFound(f"source {location!r} is not a folder, a preset ({', '.join(PRESETS)}) "
                             "or a Hub dataset repo (OWNER/NAME)")
    return _open_hub(spec, *parsed, progress=progress, seed=seed, want=want)


def _open_hub(spec: SourceSpec, repo_id: str, revision: str | None, progress: bool = True, *,
              seed: int | None = None, want: int | None = None) -> Source:
    budget.current()                 # count and pace from the first request on
    repo = hub.resolve(repo_id, revision)
    where = f"{repo_id}@{repo.sha[:8]}"
    licence = card_licence(repo.card_text)
    if licence is None and (revision or "").startswith("refs/convert/"):
        # the Hub's converted branch carries no card of its own: the repo's card says the licence
        licence = card_licence(hub.resolve(repo_id, None).card_text)
    found = split_files(repo.base, spec.split, where, card_data(repo.card_text), spec.config)
    split, files, spec = found.split, found.files, replace(spec, config=found.config)
    if all(f.endswith(".parquet") for f in files):
        src = ParquetSource(id=repo_id, short=short_name(repo_id.split("/")[-1]), revision=repo.sha,
                            licence=licence, base=repo.base, files=files, split=split, spec=spec,
                            card_text=repo.card_text, progress=progress)
        src.partial = found.partial
        return src
    layout = hub_layout(files)
    if layout:
        return open_archive(layout, spec, repo.base, files, split, id=repo_id, revision=repo.sha,
                            card_text=repo.card_text, progress=progress, seed=seed, want=want)
    if all(Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in files):
        # An imagefolder repo: the split's common folder is the root, classes are sub-folders.
        root = os.path.commonpath([f.split("://", 1)[-1] for f in files])
        prefix = repo.base.split("://", 1)[0] + "://" if "://" in repo.base else ""
        return FolderSource(prefix + root, SourceSpec(spec.location, split, spec.weight), id=repo_id,
                            revision=repo.sha, licence=licence)
    kinds = sorted({Path(f).suffix for f in files})
    raise SourceNotFound(f"{where} split {split!r} holds {', '.join(kinds)} files; negmine reads parquet "
                         "shards, tar shards, zip archives or image files")


def open_sources(specs: Iterable[SourceSpec], progress: bool = True, follow_symlinks: bool = False, *,
                 seed: int | None = None, want: int | None = None) -> list[Source]:
    """Open every spec (the default preset when none); `want`, the rows the whole pool should
    supply, is shared by weight (only WebDataset sources use it, with `seed`, to choose shards)."""
    specs = list(specs) or [SourceSpec(DEFAULT_PRESET)]
    total = sum(s.weight for s in specs)
    sources = [open_source(s, progress, follow_symlinks, seed=seed,
                           want=None if want is None else math.ceil(want * s.weight / total)) for s in specs]
    for src in sources:
        src.codes = narrow_codes(src.codes)
    return sources


def open_archive(layout: str, spec: SourceSpec, base: str, files: list[str], split: str, *, id: str,
                 revision: str | None, card_text: str | None, progress: bool, seed: int | None,
                 want: int | None) -> Source:
    """A WebDataset (tar shards) or imagefolder (zips, metadata files) split as its source; `files`:
    the split's files under `base`, `seed` and `want` as for `WebDatasetSource`."""
    if layout == "webdataset":
        tars = [f for f in files if f.lower().endswith(".tar")]
        return WebDatasetSource(id=id, base=base, files=tars, split=split, spec=spec, revision=revision,
                                licence=card_licence(card_text), card_text=card_text, seed=seed, want=want,
                                progress=progress)
    return ImageFolderSource(id=id, base=base, files=[f for f in files if is_imagefolder_file(f)], split=split,
                             spec=spec, revision=revision, licence=card_licence(card_text), card_text=card_text)
