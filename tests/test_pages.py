"""Page-level parquet reads: the same values as pyarrow, only the pages asked for, and a fallback to
row-group reads for files without a page index."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from negmine.sources import pages
from negmine.sampling.plan import clustered_order, stratified_order
from negmine.seeds import rng_for
from negmine.sources import SourceSpec, open_source
from conftest import PLACEABLE

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _values(n: int, seed: int = 0, distinct: int | None = None) -> list[bytes | None]:
    rng = np.random.default_rng(seed)
    pool = [rng.bytes(int(rng.integers(0, 3000))) for _ in range(distinct or n)]
    return [None if rng.random() < 0.1 else pool[i % len(pool)] for i in range(n)]


class _File:
    """A parquet file in memory whose reads are counted."""

    def __init__(self, path):
        self.data = open(path, "rb").read()
        self.read_bytes = 0

    def read(self, start, end):
        out = self.data[start:end] if end is not None else self.data[start:]
        self.read_bytes += len(out)
        return out

    def fetch(self, ranges):
        return [self.read(a, b) for a, b in ranges]


WRITERS = [
    dict(compression="snappy"),
    dict(compression="zstd", data_page_version="2.0", write_batch_size=7, data_page_size=4000),
    dict(compression="gzip", write_batch_size=10, data_page_size=20000, dictionary_pagesize_limit=60000),
    dict(compression="none", use_dictionary=False, write_batch_size=16, data_page_size=8000),
    dict(compression="brotli", data_page_version="2.0", write_batch_size=5, data_page_size=3000),
    dict(compression="lz4", write_batch_size=9, data_page_size=10000),
]


@pytest.mark.parametrize("distinct", [None, 40])          # unique values, or few (dictionary pages stay)
@pytest.mark.parametrize("kw", WRITERS, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_page_reads_match_pyarrow(tmp_path, kw, distinct):
    values = _values(2500, distinct=distinct)
    structs = [None if v is None or i % 11 == 0 else {"bytes": v, "path": "p"} for i, v in enumerate(values)]
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"img": pa.array(values, pa.binary()), "image": pa.array(structs, IMAGE)}),
                   path, write_page_index=True, row_group_size=900, **kw)
    f = _File(path)
    rows = np.random.default_rng(1).choice(2500, 60, replace=False)
    for column, truth in ((["img"], values), (["image", "bytes"], [s and s["bytes"] for s in structs])):
        table = pages.page_table(f.read, column, max_def=len(column))
        got = dict(pages.read_rows(table, rows, f.fetch))
        assert got == {int(r): truth[r] for r in rows}
        every = dict(pages.read_rows(table, np.arange(2500), f.fetch))
        assert [every[r] for r in range(2500)] == truth


def test_only_the_pages_holding_the_rows_are_read(tmp_path):
    values = _values(4000, seed=2)
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"img": pa.array(values, pa.binary())}), path, write_page_index=True,
                   row_group_size=4000, compression="none", use_dictionary=False, write_batch_size=20,
                   data_page_size=16000)
    f = _File(path)
    table = pages.page_table(f.read, ["img"], max_def=1)
    assert len(table.offset) > 50
    f.read_bytes = 0
    got = pages.read_rows(table, np.array([5, 2100]), f.fetch)
    assert dict(got) == {5: values[5], 2100: values[2100]}
    page_bytes = sum(int(table.size[p]) for p in np.searchsorted(table.start, [5, 2100], side="right") - 1)
    assert f.read_bytes == page_bytes
    assert f.read_bytes < path.stat().st_size / 20


def test_a_file_without_page_index_is_unsupported(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"img": pa.array(_values(100), pa.binary())}), path, write_page_index=False)
    with pytest.raises(pages.Unsupported):
        pages.page_table(_File(path).read, ["img"], max_def=1)


def _pool(root, page_index: bool, rows: int = 3000, classes: int = 30):
    """A class-sorted Hub-layout pool with many pages per row group."""
    (root / "data").mkdir(parents=True)
    labels = np.repeat(np.arange(classes), rows // classes)
    values = _values(rows, seed=3)
    images = pa.array([{"bytes": v or b"x", "path": None} for v in values], IMAGE)
    pq.write_table(pa.table({"image": images, "label": pa.array([PLACEABLE[k] for k in labels])}),
                   root / "data" / "train-00000-of-00001.parquet", write_page_index=page_index,
                   row_group_size=1000, write_batch_size=10, data_page_size=30000, use_dictionary=["label"])
    (root / "README.md").write_text("---\nlicense: cc0-1.0\n---\n")
    return root


def test_pool_with_page_index_reads_the_same_rows_with_fewer_bytes(tmp_path):
    paged = open_source(SourceSpec(str(_pool(tmp_path / "a", True))), progress=False)
    plain = open_source(SourceSpec(str(_pool(tmp_path / "b", False))), progress=False)
    rows = np.random.default_rng(4).choice(3000, 40, replace=False)
    a = [(it.row, it.data, it.origin) for it in paged.read(rows)]
    b = [(it.row, it.data, it.origin) for it in plain.read(rows)]
    assert a == b and len(a) == 40
    assert paged.read_estimate(rows)[0] < plain.read_estimate(rows)[0] / 3
    starts, sizes = paged.blocks()
    assert starts[0] == 0 and np.array_equal(np.diff(starts), sizes[:-1]) and sizes.sum() == 3000 and len(sizes) > 30
    _, group_sizes = plain.blocks()
    assert list(group_sizes) == [1000, 1000, 1000]


def test_clustered_order_takes_several_rows_per_block_and_keeps_every_row():
    codes = np.repeat(np.arange(50), 40)                 # class-sorted, 40 rows per class
    block_of = np.arange(2000) // 20                     # blocks of 20 rows: 2 per class
    order = stratified_order(codes, rng_for(0, "draw"))
    out = clustered_order(order, np.arange(0, 2000, 20), np.full(100, 20), max_read=5)
    assert sorted(out.tolist()) == list(range(2000))
    head = out[:200]
    blocks = block_of[head]
    assert len(np.unique(blocks)) == 50                  # 4 rows from each block opened: 200 / 4
    assert all(np.count_nonzero(blocks == b) == 4 for b in np.unique(blocks))
    assert len(np.unique(codes[head])) == 50             # ... and the blocks spread over every class
    for b in np.unique(blocks):                          # within a block, the stratified order's choice
        mine = [r for r in order.tolist() if block_of[r] == b][:4]
        assert sorted(mine) == sorted(head[blocks == b].tolist())
    assert np.array_equal(clustered_order(order, np.arange(0, 2000, 20), np.full(100, 20), 0), order)


def _clustered_reference(order, block_of, block_rows, max_read, max_share):
    """The definition, one row at a time: each block's rows in order fall into groups of its share;
    groups come in the order their first row appears, each group's rows together."""
    import math

    taken, groups = {}, {}
    for r in order.tolist():
        b = int(block_of[r])
        share = max(1, math.ceil(block_rows[b] / max_read))
        if max_share is not None:
            share = min(share, max(1, max_share))
        k = taken.get(b, 0)
        taken[b] = k + 1
        groups.setdefault((b, k // share), []).append(r)
    return [r for rows in groups.values() for r in rows]


def test_clustered_order_matches_its_definition_on_random_pools():
    rng = np.random.default_rng(7)
    for _ in range(200):
        rows, nblocks = int(rng.integers(1, 2000)), int(rng.integers(1, 150))
        sizes = rng.multinomial(rows, rng.dirichlet(np.ones(nblocks)))
        block_of = np.repeat(np.arange(nblocks, dtype=np.int32), sizes)
        order = rng.permutation(rows)[:int(rng.integers(0, rows + 1))].astype(np.int32)
        max_read = float(rng.choice([0.5, 1, 2, 5, 10, 100]))
        max_share = None if rng.random() < 0.5 else int(rng.integers(1, 10))
        out = clustered_order(order, np.cumsum(sizes) - sizes, sizes, max_read, max_share)   # empty blocks too
        assert out.tolist() == _clustered_reference(order, block_of, sizes, max_read, max_share)


def _dry(positives, tmp_path, *args):
    import json

    from click.testing import CliRunner

    from negmine.cli import cli

    r = CliRunner().invoke(cli, ["sample", "-q", "--workers", "1", "-p", str(positives), "--seed", "1", "--dry-run",
                                 "--json", "-o", str(tmp_path / "x"), *map(str, args)])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_hub_draws_cluster_by_page_only_as_far_as_class_coverage_allows(positives, tmp_path):
    from conftest import install_in_hf_cache

    install_in_hf_cache(_pool(tmp_path / "hub", True), "someone/paged-pool")
    local = str(tmp_path / "hub")
    # 30 classes: a draw of 30 stays one row per page (every class), a draw of 300 takes several
    small = _dry(positives, tmp_path, "-s", "someone/paged-pool", "--count", 30)
    assert small["io"]["someone/paged-pool"]["max_read_ratio"] == 5
    assert len(small["draw"]["someone/paged-pool"]) == 30
    big = _dry(positives, tmp_path, "-s", "someone/paged-pool", "--count", 300)
    unclustered = _dry(positives, tmp_path, "-s", "someone/paged-pool", "--count", 300, "--max-read-ratio", 0)
    assert unclustered["io"]["someone/paged-pool"]["max_read_ratio"] is None
    assert len(big["draw"]["someone/paged-pool"]) == 30
    io, io0 = big["io"]["someone/paged-pool"], unclustered["io"]["someone/paged-pool"]
    assert io["image_bytes_to_read"] < 0.6 * io0["image_bytes_to_read"]
    # local files are not clustered unless asked; asked, the draw reads ~R x what it keeps
    assert _dry(positives, tmp_path, "-s", local, "--count", 300)["io"][local]["max_read_ratio"] is None
    forced = _dry(positives, tmp_path, "-s", local, "--count", 300, "--max-read-ratio", 2)["io"][local]
    assert forced["image_bytes_to_read"] <= 2.6 * forced["image_bytes_drawn_estimate"]


def test_a_run_says_when_shards_cannot_be_read_page_by_page(positives, tmp_path):
    import json

    from click.testing import CliRunner

    from negmine.cli import cli

    def run(pool, out):
        r = CliRunner().invoke(cli, ["sample", "-q", "--workers", "1", "-p", str(positives), "-s", str(pool),
                                     "--count", "20", "--seed", "1", "--json", "-o", str(out)])
        assert r.exit_code == 0, r.output
        return json.loads(r.output)["warnings"]

    from conftest import make_parquet_repo

    paged = make_parquet_repo(tmp_path / "paged", PLACEABLE[:6], 8)   # as datasets writes it
    shard = next((paged / "data").glob("*.parquet"))
    plain = tmp_path / "plain"
    (plain / "data").mkdir(parents=True)
    (plain / "README.md").write_text((paged / "README.md").read_text())
    pq.write_table(pq.read_table(shard), plain / "data" / shard.name, write_page_index=False)

    assert any("1 of 1 shards are read a row group at a time (no page index)" in w for w in run(plain, tmp_path / "a"))
    assert not any("row group at a time" in w for w in run(paged, tmp_path / "b"))
    # a page index, but pages the reader cannot decode: found out where the pages are read (a worker)
    delta = tmp_path / "delta"
    (delta / "data").mkdir(parents=True)
    (delta / "README.md").write_text((paged / "README.md").read_text())
    pq.write_table(pq.read_table(shard), delta / "data" / shard.name, write_page_index=True, use_dictionary=False,
                   column_encoding={"image.bytes": "DELTA_LENGTH_BYTE_ARRAY", "image.path": "PLAIN", "label": "PLAIN"})
    assert any("1 of 1 shards are read a row group at a time (value encoding DELTA_LENGTH_BYTE_ARRAY)" in w
               for w in run(delta, tmp_path / "c"))
    dry = _dry(positives, tmp_path, "-s", plain.resolve(), "--count", 20)
    assert "no page index" in dry["io"][str(plain.resolve())]["note"]


def _jobs_read_in_a_worker(src, rows):
    """What the draw hands to worker processes, run as a worker would: pickled there and back."""
    import pickle

    got = {}
    for items, reader in src.read_jobs(rows):
        if reader is None:
            got.update((it.row, it.data) for it in items)
            continue
        assert all(it.data is None for it in items)
        data = pickle.loads(pickle.dumps(reader)).read()
        assert len(data) == len(items)
        for it, d in zip(items, data):
            assert it.row not in got                     # every row in one job only
            got[it.row] = d
    return got


@pytest.mark.parametrize("layout", ["paged", "no page index", "encoding the page reader lacks"])
def test_workers_read_the_same_bytes_as_the_main_process(tmp_path, layout):
    root = _pool(tmp_path / "p", layout != "no page index")
    if layout == "encoding the page reader lacks":             # page index present, pages undecodable
        shard = root / "data" / "train-00000-of-00001.parquet"
        pq.write_table(pq.read_table(shard), shard, write_page_index=True, row_group_size=1000, use_dictionary=False,
                       column_encoding={"image.bytes": "DELTA_LENGTH_BYTE_ARRAY", "image.path": "PLAIN",
                                        "label": "PLAIN"}, data_page_size=30000)
    src = open_source(SourceSpec(str(root)), progress=False)
    rows = np.random.default_rng(5).choice(3000, 300, replace=False)
    truth = {it.row: it.data for it in open_source(SourceSpec(str(root)), progress=False).read(rows)}
    assert len(truth) == 300
    assert _jobs_read_in_a_worker(src, rows) == truth
    jobs = list(src.read_jobs(rows))
    if layout == "no page index":
        assert all(reader is None for _, reader in jobs)
    else:
        assert all(reader is not None for _, reader in jobs) and len(jobs) > 1
