from pathlib import Path

import pytest

from negmine.naming import UniqueNames, safe_name


def test_hostile_names_become_plain_file_names():
    for hostile in ("../../etc/passwd", "/abs/path", "a\\b", "nul\x00byte", "..", ".hidden", "", "CON", "con.txt",
                    "x" * 300, "Zürich café", "日本語"):
        name = safe_name(hostile)
        assert name and "/" not in name and "\\" not in name and "\x00" not in name
        assert not name.startswith(".") and len(name) <= 80
        assert Path(name).name == name and name not in (".", "..")
        assert name.split(".")[0].lower() not in {"con", "nul", "prn", "aux"}


def test_names_are_deterministic_and_long_names_stay_distinct():
    assert safe_name("Zürich café") == safe_name("Zürich café") == "Zurich_cafe"
    assert safe_name("tench, Tinca tinca") == "tench_Tinca_tinca"
    assert safe_name("a" * 200 + "1") != safe_name("a" * 200 + "2")


def test_unique_names_ignore_case():
    u = UniqueNames()
    assert [u.take("Dog", ".jpg"), u.take("dog", ".jpg"), u.take("DOG", ".jpg")] == ["Dog.jpg", "dog-2.jpg", "DOG-3.jpg"]


@pytest.mark.parametrize("rel", ["../x", "a/../b", "/etc/passwd", "a//b", ".", "..", "a/.", "a/..", "x\x00y",
                                 "a\\..\\b", "", "a/"])
def test_writer_refuses_paths_that_leave_the_output(tmp_path, rel):
    from negmine.errors import NegmineError
    from negmine.outputs.writers import DatasetWriter

    w = DatasetWriter(tmp_path / "out")
    w.path("train/other/ok.jpg")                       # a folder already checked must not let others through
    with pytest.raises(NegmineError, match="outside the output folder"):
        w.write_bytes(rel, b"x")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
