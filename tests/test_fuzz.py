"""Property-based tests: whatever the bytes or text, errors are negmine's own clear ones."""

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from negmine.errors import NegmineError
from negmine.filters.hashing import hash_bytes
from negmine.images import ImageRejected, encode
from negmine.naming import UniqueNames, safe_name
from negmine.sampling.plan import parse_split
from negmine.sources import SourceSpec

from conftest import SHARED

JPEG = (SHARED / "imagenet-500" / "images" / "n01440764_tench.JPEG").read_bytes()
PNG = (SHARED / "odd-encodings" / "pil123p.png").read_bytes()


@given(st.text())
def test_safe_name_is_always_a_plain_file_name(text):
    name = safe_name(text)
    assert name and len(name) <= 80 and Path(name).name == name
    assert name not in (".", "..") and not name.startswith(".") and "/" not in name and "\\\\" not in name
    assert all(ch.isascii() and (ch.isalnum() or ch in "._+-") for ch in name)
    assert safe_name(text) == name


@given(st.lists(st.text(), max_size=20))
def test_unique_names_never_collide(texts):
    u = UniqueNames()
    taken = [u.take(safe_name(t), ".jpg") for t in texts]
    assert len({t.lower() for t in taken}) == len(taken)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048) | st.builds(lambda cut, junk: JPEG[:cut] + junk, st.integers(0, len(JPEG)),
                                            st.binary(max_size=64))
       | st.builds(lambda i, b: PNG[:i] + bytes([b]) + PNG[i + 1:], st.integers(0, len(PNG) - 1), st.integers(0, 255)))
def test_image_loader_only_ever_rejects_cleanly(data):
    for fn in (encode, hash_bytes):
        try:
            fn(data)
        except ImageRejected as exc:
            assert str(exc)


@given(st.text())
def test_source_spec_and_split_parsing_fail_cleanly(text):
    for fn in (SourceSpec.parse, parse_split):
        try:
            fn(text)
        except NegmineError as exc:
            assert str(exc)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300) | st.lists(st.tuples(st.sampled_from(["ratio", "count", "source", "split", "seed",
                                                                    "balanced", "hash-distance", "zzz"]),
                                                   st.sampled_from(["1", "'x'", "[1, 'a']", "true", "{a=1}", "-3.5"])),
                                         max_size=6).map(lambda kv: "\n".join(f"{k} = {v}" for k, v in kv)))
def test_recipe_parser_fails_cleanly(tmp_path_factory, text):
    from negmine.cli import sample
    from negmine.recipes import load_recipe

    path = tmp_path_factory.mktemp("r") / "r.toml"
    path.write_text(text)
    try:
        values = load_recipe(path, {p.name: p for p in sample.params})
        assert isinstance(values, dict)
    except NegmineError as exc:
        assert str(exc)
