"""Source adapters: Hub repo by id (offline, from the HF cache), parquet folder, save_to_disk, folder."""

from collections import Counter

import pytest

from conftest import SHARED, install_in_hf_cache, make_parquet_repo
from negmine.errors import HubUnavailable, NegmineError, SourceNotFound
from negmine.sources import DiskSource, FolderSource, ParquetSource, SourceSpec, open_source


def test_hub_repo_by_id_resolves_offline_from_the_cache(tmp_path):
    repo = make_parquet_repo(tmp_path / "r", ["n01440764", "n01443537"], 5, shards=2, licence="mit")
    sha = install_in_hf_cache(repo, "someone/tiny-pool")
    for spec in ("someone/tiny-pool", "hf://datasets/someone/tiny-pool", f"someone/tiny-pool@{sha}"):
        src = open_source(SourceSpec.parse(spec))
        assert isinstance(src, ParquetSource)
        assert (src.id, src.revision, src.licence, src.split) == ("someone/tiny-pool", sha, "mit", "train")
        assert src.classes == ["n01440764", "n01443537"] and src.label_kind == "wnid"
        assert Counter(src.codes.tolist()) == {0: 5, 1: 5}
    items = {it.row: it for it in src.read([0, 7, 9])}
    assert sorted(items) == [0, 7, 9]
    assert items[7].origin == {"file": "data/train-00001-of-00002.parquet", "row": 2}
    assert items[0].data[:2] == b"\xff\xd8"        # JPEG bytes, as stored


def test_missing_repo_offline_is_a_clear_error():
    with pytest.raises(HubUnavailable, match="not in the local Hugging Face cache"):
        open_source(SourceSpec.parse("nobody/absent-repo"))


def test_split_and_column_selection_and_errors(tmp_path):
    repo = make_parquet_repo(tmp_path / "r", ["a", "b"], 3, image_column="img", label_column="fine_label",
                             string_labels=True, split="validation")
    src = open_source(SourceSpec.parse(str(repo)))          # no train split: the only split is used
    assert src.split == "validation" and (src.image_column, src.label_column) == ("img", "fine_label")
    assert src.classes == ["a", "b"] and src.label_kind == "name"
    with pytest.raises(SourceNotFound, match="no split 'test'; splits: validation"):
        open_source(SourceSpec.parse(f"{repo}?split=test"))
    with pytest.raises(SourceNotFound, match="no label column 'wnid'"):
        open_source(SourceSpec.parse(f"{repo}?label=wnid"))
    unlabelled = open_source(SourceSpec.parse(f"{repo}?label=none"))
    assert unlabelled.label_kind == "none" and (unlabelled.codes == -1).all()


def test_spec_parsing():
    s = SourceSpec.parse("timm/mini-imagenet?split=validation&weight=2.5&label=label")
    assert (s.location, s.split, s.weight, s.label_column) == ("timm/mini-imagenet", "validation", 2.5, "label")
    for bad in ("x?weight=0", "x?weight=abc", "x?colour=red"):
        with pytest.raises(NegmineError):
            SourceSpec.parse(bad)
    with pytest.raises(SourceNotFound):
        open_source(SourceSpec.parse("./no/such/folder"))


def test_save_to_disk_folder(tmp_path):
    import datasets

    repo = make_parquet_repo(tmp_path / "r", ["x", "y", "z"], 4)
    ds = datasets.load_dataset("parquet", data_files=str(repo / "data" / "*.parquet"), split="train")
    ds = ds.cast(datasets.Features(image=datasets.Image(), label=datasets.ClassLabel(names=["x", "y", "z"])))
    ds.save_to_disk(str(tmp_path / "disk"))
    src = open_source(SourceSpec.parse(str(tmp_path / "disk")))
    assert isinstance(src, DiskSource) and src.classes == ["x", "y", "z"] and len(src) == 12
    got = list(src.read([11, 3]))
    assert [i.row for i in got] == [3, 11] and all(i.data[:2] == b"\xff\xd8" for i in got)


def test_image_folder_source_labels_by_parent_folder(tmp_path):
    (tmp_path / "pool" / "cats" / "deep").mkdir(parents=True)
    (tmp_path / "pool" / "cars").mkdir()
    for i, rel in enumerate(["cats/a.jpg", "cats/deep/b.JPG", "cars/c.png", "cars/notes.txt", "cars/.hidden.jpg"]):
        (tmp_path / "pool" / rel).write_bytes(b"x")
    src = open_source(SourceSpec.parse(str(tmp_path / "pool")))
    assert isinstance(src, FolderSource)
    assert src.paths == ["cars/c.png", "cats/a.jpg", "cats/deep/b.JPG"]
    assert [src.label_of(i) for i in range(3)] == ["cars", "cats", "deep"]


def test_image_folder_does_not_follow_links_out_of_the_folder(tmp_path):
    (tmp_path / "pool").mkdir()
    (tmp_path / "secret.jpg").write_bytes(b"x")
    (tmp_path / "pool" / "ok.jpg").write_bytes(b"x")
    (tmp_path / "pool" / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    assert open_source(SourceSpec.parse(str(tmp_path / "pool"))).paths == ["ok.jpg"]


def test_real_photos_folder():
    src = open_source(SourceSpec.parse(str(SHARED / "imagenet-500")))
    assert len(src) == 500 and src.id.endswith("imagenet-500")


def test_hub_index_is_cached_per_commit(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    repo = make_parquet_repo(tmp_path / "r", ["a", "b", "c"], 4, shards=3)
    install_in_hf_cache(repo, "someone/cached-pool", sha="f" * 40)
    first = open_source(SourceSpec.parse("someone/cached-pool"))

    def no_reads(*a, **k):
        raise AssertionError("label column read again")

    monkeypatch.setattr(pq.ParquetFile, "read", no_reads)
    again = open_source(SourceSpec.parse("someone/cached-pool"))
    assert again.classes == first.classes and (again.codes == first.codes).all()
    assert [i.origin for i in again.read([5])] == [{"file": "data/train-00001-of-00003.parquet", "row": 1}]
    assert again.read_estimate([5, 6]) == first.read_estimate([5, 6])
    touched, total = first.read_estimate([5])
    assert 0 < touched < total                      # one of three shards


@pytest.mark.parametrize("names", [
    ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet", "test-00000-of-00001.parquet"],
    ["validation-00000-of-00001.parquet", "train-00000-of-00001.parquet", "extra.v2-00000-of-00001.parquet"],
    ["train-00000-of-00001-abc123.parquet", ".hidden-00000-of-00001.parquet", "notes.txt"],
    ["train-00000-of-00001.parquet", "train-00000-of-00001.arrow"],      # not all parquet: datasets decides
    ["my-split-00000-of-00001.parquet"],                                 # datasets rejects the split name
])
def test_hub_layout_splits_without_datasets_agree_with_datasets(tmp_path, names):
    from datasets.data_files import DataFilesDict, get_data_patterns

    from negmine.sources.layout import sharded_parquet

    (tmp_path / "data").mkdir()
    for n in names:
        (tmp_path / "data" / n).write_bytes(b"x")
    fast = sharded_parquet(str(tmp_path))
    try:
        slow = DataFilesDict.from_patterns(get_data_patterns(str(tmp_path)), base_path=str(tmp_path))
        slow = {k: sorted(map(str, v)) for k, v in slow.items()}
    except Exception:
        slow = None
    if fast is not None:                       # where the fast path answers, it answers as datasets does
        assert fast == slow and list(fast) == list(slow)
    else:
        assert any(not n.endswith(".parquet") or "my-" in n for n in names)


def test_feature_kinds_from_parquet_metadata_match_datasets(tmp_path):
    import datasets
    import pyarrow.parquet as pq

    from negmine.sources.columns import feature_kinds, schema_kinds

    repo = make_parquet_repo(tmp_path / "r", ["cat", "dog"], 2)
    schema = pq.read_schema(next((repo / "data").glob("*.parquet")))
    assert schema_kinds(schema) == feature_kinds(datasets.Features.from_arrow_schema(schema))
    assert schema_kinds(schema) == {"image": ("Image", None), "label": ("ClassLabel", ["cat", "dog"])}


def test_folder_pool_accounts_for_every_file_it_leaves_out(tmp_path):
    from conftest import jpeg_bytes

    root = tmp_path / "pool"
    (root / "cats").mkdir(parents=True)
    (root / "cats" / "a.jpg").write_bytes(jpeg_bytes(1))
    (root / "cats" / "b.JPE").write_bytes(jpeg_bytes(2))          # a camera's spelling: read by content
    (root / "cats" / "notes.txt").write_text("not an image")
    (root / "cats" / ".hidden.jpg").write_bytes(jpeg_bytes(3))
    src = open_source(SourceSpec.parse(str(root)))
    assert sorted(src.paths) == ["cats/a.jpg", "cats/b.JPE"]
    skipped = {s["file"]: s["reason"] for s in src.describe()["skipped"]["first"]}
    assert skipped == {"cats/notes.txt": "not an image", "cats/.hidden.jpg": "hidden file"}
