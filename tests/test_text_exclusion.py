"""Exclusion by text: a parquet pool with captions and no labels, built here from real photos, kept
free of the positives by the nouns its captions name (negmine.sources.text, negmine.filters.text)."""

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import SHARED, raccoon_folder, read_manifest
from negmine.cli import cli
from negmine.sources.text import NounReader
from test_content import tiny_clip  # noqa: F401  (the tiny random CLIP fixture, for --content-check)

PHOTOS = sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))
# caption -> what the test expects for the positive 'teddy' (with the words that must be named)
CAPTIONS = [
    ("A teddy bear sitting on a bed.", "teddy bear"),                  # a multi-word lemma
    ("Two teddies on a shelf.", "teddy"),                              # a plural
    ("A teddy wearing a scarf.", "teddy"),                             # the positive itself
    ("A sea lion on the rocks.", None),                                # an unrelated noun
    ("Mice and children in a garden.", None),                          # irregular plurals, unrelated
    ("", "empty"),                                                     # nothing to vouch for it
    ("A golden retriever in the snow.", None),
    ("A red car parked on a street.", None),
    ("Books on a library shelf.", None),
    ("A cup of coffee on a wooden table.", None),
    ("A kayak on a lake.", None),
    ("A lighthouse on a cliff.", None),
]


def invoke(*args):
    seed = ["--seed", "1"] if args[0] == "sample" and "--seed" not in args else []   # no "seed:" line
    return CliRunner().invoke(cli, [*map(str, args), *seed])


def write_pool(folder, captions, extra: dict | None = None, column: str = "caption"):
    """One parquet shard: image bytes (as `datasets` stores an Image) and the caption column(s)."""
    folder.mkdir(parents=True, exist_ok=True)
    images = [{"bytes": p.read_bytes(), "path": p.name} for p in PHOTOS[:len(captions)]]
    pq.write_table(pa.table({"image": images, column: captions, **(extra or {})}),
                   folder / "train-00000-of-00001.parquet", row_group_size=5)
    return folder


@pytest.fixture
def pool(tmp_path):
    return write_pool(tmp_path / "pool", [c for c, _ in CAPTIONS])


@pytest.fixture
def positives(tmp_path):
    return raccoon_folder(tmp_path / "pos", 3, "teddy")


def rejects_of(out):
    return [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]


def test_nouns_longest_lemma_first_with_plurals():
    reader = NounReader.load()
    assert reader.nouns("A teddy bear and two teddies") == ["teddy bear", "teddy"]
    assert reader.nouns("Mice and geese near the sea lion") == ["mouse", "goose", "sea lion"]
    assert reader.nouns("People at a hot-dog stand") == ["people", "person", "hot dog", "stand"]
    assert reader.nouns("") == [] and reader.nouns("a an the of in on") == []


def test_caption_naming_a_positive_is_rejected_with_its_words(pool, positives, tmp_path):
    out = tmp_path / "ds"
    r = invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", pool, "--count", 20, "--allow-short",
               "--hash", "none", "--seed", 1, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    rejects = rejects_of(out)
    by_row = {x["row"]: x for x in rejects if x.get("source") == str(pool)}
    for row, (caption, expect) in enumerate(CAPTIONS):
        if expect in (None,):
            assert row not in by_row, (caption, by_row.get(row))
        elif expect == "empty":
            assert "is empty or names no WordNet noun" in by_row[row]["reason"]
        else:
            assert by_row[row]["reason"].startswith(f'text names a positive: "{expect}" ('), by_row[row]
    negatives = [x for x in read_manifest(out) if x["role"] == "negative"]
    drawn = {x["row"] for x in negatives}
    assert drawn == {i for i, (_, e) in enumerate(CAPTIONS) if e is None}
    assert all(x["labels"] for x in negatives)              # the nouns each negative's caption names
    summary = json.loads(r.output)
    assert summary["text"][str(pool)]["excluded_by_text"] == 3
    assert summary["text"][str(pool)]["no_text_left_out"] == 1
    assert json.loads((out / "negmine.json").read_text())["text"][str(pool)]["columns"] == ["caption"]


def test_empty_caption_is_drawn_with_allow_unlabelled(pool, positives, tmp_path):
    out = tmp_path / "ds"
    r = invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", pool, "--count", 20, "--allow-short",
               "--hash", "none", "--seed", 1, "-o", out, "--allow-unlabelled", "--json")
    assert r.exit_code == 0, r.output
    assert 5 in {x["row"] for x in read_manifest(out) if x["role"] == "negative"}
    assert any("carry no label" in w and "names no WordNet noun" in w for w in json.loads(r.output)["warnings"])


def test_dry_run_shows_the_nouns_the_draw_stratifies_over(pool, positives, tmp_path):
    r = invoke("sample", "-p", positives, "-s", pool, "--count", 8, "--allow-short", "--seed", 1,
               "-o", tmp_path / "ds", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "labelled by its text: column(s) caption" in r.output
    assert "3 images name a positive and are left out, 1 name no noun" in r.output
    draw = r.output.split(f"{pool}: ")[-1]
    assert "drawn from" in draw and any(n in draw for n in ("sea lion", "retriever", "car", "kayak", "lighthouse"))
    plan = json.loads(invoke("sample", "-p", positives, "-s", pool, "--count", 8, "--allow-short", "--seed", 1,
                             "-o", tmp_path / "ds", "--dry-run", "--json").output)
    nouns = set(plan["draw"][str(pool)])
    assert nouns and nouns <= {"sea lion", "mouse", "child", "garden", "golden retriever", "snow", "car", "street",
                               "book", "library", "shelf", "cup", "coffee", "table", "kayak", "lake", "lighthouse",
                               "cliff", "rock"}
    assert not plan["io"][str(pool)].get("download_bytes")
    assert not (tmp_path / "ds").exists()


def test_text_column_option_chooses_and_checks(tmp_path, positives):
    caps = [c for c, _ in CAPTIONS]
    pool = write_pool(tmp_path / "pool", caps, column="notes")
    # `notes` is no text name: nothing vouches for the images, so the pool is refused...
    r = invoke("sample", "-p", positives, "-s", pool, "--count", 4, "-o", tmp_path / "a", "--dry-run")
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "carries a label" in r.output, r.output
    assert "--text-column names one" in r.output
    # ... until --text-column names it
    r = invoke("sample", "-p", positives, "-s", pool, "--count", 4, "-o", tmp_path / "a", "--dry-run", "--json",
               "--text-column", "notes")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["text"][str(pool)]["excluded_by_text"] == 3
    r = invoke("sample", "-p", positives, "-s", f"{pool}?text=notes", "--count", 4, "-o", tmp_path / "a",
               "--dry-run", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["text"][str(pool)]["columns"] == ["notes"]
    r = invoke("sample", "-p", positives, "-s", pool, "--count", 4, "-o", tmp_path / "a", "--dry-run",
               "--text-column", "nope")
    assert r.exit_code == 4 and "has no text column 'nope'" in r.output
    r = invoke("sample", "-p", positives, "-s", pool, "--count", 4, "-o", tmp_path / "a", "--dry-run",
               "--text-column", "image")
    assert r.exit_code == 1 and "not text" in r.output and r.output.count("\n") == 1


def test_two_descriptive_columns_are_read_together(tmp_path, positives):
    caps = [c for c, _ in CAPTIONS]
    titles = ["holiday"] * len(caps)
    titles[8] = "my old teddy"                    # the caption says books; the title names the positive
    pool = write_pool(tmp_path / "pool", caps, {"title": titles})
    r = invoke("sample", "-p", positives, "-s", pool, "--count", 4, "-o", tmp_path / "a", "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    text = json.loads(r.output)["text"][str(pool)]
    assert text["columns"] == ["caption", "title"] and text["excluded_by_text"] == 4
    assert text["no_text_left_out"] == 0           # the empty caption's title names a noun


def test_a_generic_text_column_beside_another_is_refused(tmp_path, positives):
    caps = [c for c, _ in CAPTIONS]
    pool = write_pool(tmp_path / "pool", caps, {"text": ["some text"] * len(caps)})
    r = invoke("sample", "-p", positives, "-s", pool, "--count", 4, "-o", tmp_path / "a", "--dry-run")
    assert r.exit_code == 1 and r.output.count("\n") == 1, r.output
    assert "2 text columns ('caption', 'text')" in r.output and "--text-column" in r.output
    r = invoke("sample", "-p", positives, "-s", pool, "--count", 4, "-o", tmp_path / "a", "--dry-run", "--json",
               "--text-column", "caption,text")
    assert r.exit_code == 0 and json.loads(r.output)["text"][str(pool)]["columns"] == ["caption", "text"]


def test_text_column_beside_a_label_column_is_refused(tmp_path, positives):
    caps = [c for c, _ in CAPTIONS]
    pool = write_pool(tmp_path / "pool", caps, {"label": ["thing"] * len(caps)})
    r = invoke("sample", "-p", positives, "-s", pool, "--count", 4, "-o", tmp_path / "a", "--dry-run",
               "--text-column", "caption")
    assert r.exit_code == 1 and "--label-column none" in r.output and r.output.count("\n") == 1
    r = invoke("sample", "-p", positives, "-s", pool, "--count", 4, "-o", tmp_path / "a", "--dry-run", "--json",
               "--text-column", "caption", "--label-column", "none")
    assert r.exit_code == 0 and json.loads(r.output)["text"][str(pool)]["excluded_by_text"] == 3


def test_text_column_on_a_folder_pool_is_refused(tmp_path, positives):
    folder = tmp_path / "folder" / "misc"
    folder.mkdir(parents=True)
    for f in PHOTOS[:3]:
        shutil.copy(f, folder / f.name)
    r = invoke("sample", "-p", positives, "-s", folder.parent, "--count", 2, "-o", tmp_path / "a", "--dry-run",
               "--text-column", "caption")
    assert r.exit_code == 1 and "parquet pools only" in r.output and r.output.count("\n") == 1


def test_common_words_with_rare_person_senses_do_not_exclude(tmp_path, positives):
    """'red' is a Bolshevik, 'snow' a writer and 'hand' a hired hand to WordNet: rare or proper
    senses no caption means. 'a boy' and 'people' are persons."""
    caps = ["A red car in the snow.", "A hand holding a cup.", "A boy on a bike.", "People on a beach."]
    pool = write_pool(tmp_path / "pool", caps)
    r = invoke("classes", "-s", pool, "--exclude", "person", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)["sources"][0]
    excluded = {x["label"] for x in report["excluded"]}
    assert {"boy", "person"} <= excluded and report["images_excluded"] == 2     # 'people' is also read 'person'
    assert not excluded & {"red", "snow", "hand", "car", "cup", "beach", "people"}


def test_content_check_stacks_on_the_text_check(pool, positives, tmp_path, tiny_clip):
    out = tmp_path / "ds"
    r = invoke("sample", "-q", "--workers", "1", "-p", positives, "-s", pool, "--count", 20, "--allow-short",
               "--hash", "none", "--content-check", "clip", "--content-model", tiny_clip, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    info = summary["content_check"]
    negatives = [x for x in read_manifest(out) if x["role"] == "negative"]
    flagged = [x for x in rejects_of(out) if x["reason"].startswith("looks like a positive")]
    # CLIP scored every image the text let through, and only those: 8 whose caption names no positive,
    # and the empty caption's (CLIP vouches for images no label does, as for any unlabelled image)
    assert info["scored"] == len(negatives) + len(flagged) == 9
    assert all("content_score" in x for x in negatives)
    assert summary["text"][str(pool)]["excluded_by_text"] == 3
    assert sum(x["reason"].startswith("text names a positive") for x in rejects_of(out)) == 3


def test_a_tags_string_column_is_read_as_text_not_one_class_per_string(tmp_path, positives):
    tags = ["beach, sunset, teddy", "garden, flowers", "car, street", "mountain, lake"]
    folder = tmp_path / "pool"
    folder.mkdir()
    images = [{"bytes": p.read_bytes(), "path": p.name} for p in PHOTOS[:len(tags)]]
    pq.write_table(pa.table({"image": images, "tags": tags}), folder / "train.parquet")
    r = invoke("sample", "-p", positives, "-s", folder, "--count", 3, "-o", tmp_path / "a", "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    assert plan["text"][str(folder)]["columns"] == ["tags"] and plan["text"][str(folder)]["excluded_by_text"] == 1
    # a list of tags is text too (its nouns), found by name or named by --text-column alone ...
    pq.write_table(pa.table({"image": images, "tags": [t.split(", ") for t in tags]}), folder / "train.parquet")
    for extra in ([], ["--text-column", "tags"]):
        r = invoke("sample", "-p", positives, "-s", folder, "--count", 3, "-o", tmp_path / "b", "--dry-run",
                   "--json", *extra)
        assert r.exit_code == 0, r.output
        plan = json.loads(r.output)
        assert plan["text"][str(folder)]["columns"] == ["tags"] and plan["text"][str(folder)]["excluded_by_text"] == 1
    # ... and each tag a class only when named the label column
    r = invoke("sample", "-p", positives, "-s", folder, "--count", 3, "-o", tmp_path / "c", "--dry-run", "--json",
               "--label-column", "tags")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    assert "text" not in plan and plan["classes"]["sources"][0]["images_excluded"] == 1


def test_planning_a_captioned_hub_pool_downloads_the_text_not_the_images(hub_server, positives, tmp_path):
    caps = [c for c, _ in CAPTIONS]
    root = tmp_path / "repo"
    write_pool(root / "data", caps)
    (root / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# captioned photos\n")
    hub_server.add_repo("me/captioned", root)
    r = invoke("sample", "-q", "--json", "--dry-run", "-p", positives, "-s", "me/captioned", "--count", 4,
               "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["text"]["me/captioned"]["excluded_by_text"] == 3
    md = pq.ParquetFile(root / "data" / "train-00000-of-00001.parquet").metadata
    image = []
    for g in range(md.num_row_groups):
        for k in range(md.num_columns):
            c = md.row_group(g).column(k)
            if c.path_in_schema.startswith("image"):
                start = c.dictionary_page_offset or c.data_page_offset
                image.append((start, start + c.total_compressed_size))
    fetched = [tuple(int(x) for x in e.range.split("=")[1].split("-")) for e in hub_server.requests("cdn")
               if e.status == 206]
    assert fetched and not any(a <= e - 1 and s <= b for a, b in fetched for s, e in image), fetched
