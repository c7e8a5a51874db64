"""Scratch packs: where encoded images wait until the draw decides, and how kept ones get out."""

import os

import pytest

from negmine.engine.distribute import SerialDistributor
from negmine.errors import NegmineError
from negmine.outputs.writers import DatasetWriter, ScratchPack, copy_out


def test_packs_hold_each_image_and_placing_them_writes_files(tmp_path):
    w = DatasetWriter(tmp_path / "out")
    pack = ScratchPack(w.scratch)
    blobs = [os.urandom(n) for n in (10, 0, 5000, 70000)]
    refs = [pack.append(b) for b in blobs]
    assert [w.read_scratch(r) for r in refs] == blobs
    w.place_scratch([(r, f"train/other/{k}.jpg") for k, r in enumerate(refs)], SerialDistributor(), batch=3)
    assert [(w.staging / f"train/other/{k}.jpg").read_bytes() for k in range(4)] == blobs
    with pytest.raises(NegmineError, match="outside"):
        w.place_scratch([(refs[0], "../escape.jpg")], SerialDistributor())
    assert not (tmp_path / "escape.jpg").exists()


def test_a_second_process_appends_to_its_own_pack(tmp_path):
    a, b = ScratchPack(str(tmp_path)), ScratchPack(str(tmp_path))
    ra, rb = a.append(b"first"), b.append(b"second")
    assert ra[0] != rb[0] and ra[1] == rb[1] == 0               # never two writers on one file


def test_placing_again_after_the_packs_are_gone_keeps_the_files(tmp_path):
    w = DatasetWriter(tmp_path / "out")
    ref = ScratchPack(w.scratch).append(b"jpeg bytes")
    w.place_scratch([(ref, "other/a.jpg")], SerialDistributor())
    w.clear_scratch()                                         # interrupted right after this: resume places again
    w.place_scratch([(ref, "other/a.jpg")], SerialDistributor())
    assert (w.staging / "other/a.jpg").read_bytes() == b"jpeg bytes"
    with pytest.raises(NegmineError, match="missing"):
        w.place_scratch([(ref, "other/b.jpg")], SerialDistributor())


def test_a_torn_pack_is_an_error_not_a_short_file(tmp_path):
    w = DatasetWriter(tmp_path / "out")
    name, offset, length = ScratchPack(w.scratch).append(b"x" * 100)
    target = str(w.staging / "a.jpg")
    with pytest.raises(NegmineError, match="truncated"):
        copy_out([(os.path.join(w.scratch, name), offset, length + 1, target)])


def test_a_library_run_that_fails_mid_draw_closes_its_pack_and_keeps_it_for_resume(positives, pool, tmp_path,
                                                                                    monkeypatch):
    from negmine.outputs import writers
    from negmine.pipeline import SampleOptions, run_sample
    from negmine.sources import SourceSpec

    def full_disk(self, entries):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers.Journal, "extend", full_disk)
    with pytest.raises(OSError):
        run_sample(SampleOptions(positives=positives, out=tmp_path / "ds", sources=[SourceSpec(str(pool))],
                                 count=20, seed=1, workers=1, progress=False))
    assert writers.open_packs() == []                               # no file descriptor left open in this process
    assert list((tmp_path / ".ds.negmine-partial").rglob("*.pack"))
