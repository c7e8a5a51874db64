"""Per-row licences: a Hub pool whose rows carry their own licence, author and page (as Flickr-derived
pools do), in hive-partitioned folders as Spark writes them; `--licence commercial` leaves the rows
it does not allow out before the draw, and the attribution names each drawn image's author and page."""

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import SHARED, raccoon_folder, read_manifest
from negmine.cli import cli
from negmine.outputs.formats import dataset_card

PHOTOS = sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))
# (licensename, licenseurl) per row: as YFCC100M / CommonCatalog carry them, and one row saying none
LICENCES = ([("Attribution License", "http://creativecommons.org/licenses/by/2.0/")] * 4
            + [("Attribution-NonCommercial License", "http://creativecommons.org/licenses/by-nc/2.0/")] * 4
            + [("Public Domain Dedication (CC0)", "http://creativecommons.org/publicdomain/zero/1.0/")] * 2
            + [("", None)] * 2)
CAPTIONS = ["A red car parked on a street.", "Books on a library shelf.", "A cup of coffee on a table.",
            "A kayak on a lake.", "A lighthouse on a cliff.", "A sea lion on the rocks.", "A bridge over a river.",
            "A bicycle against a wall.", "A castle on a hill.", "A sailboat in a harbour.", "A tractor in a field.",
            "A clock tower in a city."]
HIVE = "least_dim_range=256-512/aspect_ratio_bucket=1.0"


def write_repo(root, card_licence: str | None = "cc-by-4.0"):
    """A CommonCatalog-shaped repo: image bytes in `jpg`, per-row licence and credit columns, text,
    one Spark-named part file in hive folders (two row groups)."""
    folder = root / HIVE
    folder.mkdir(parents=True)
    n = len(LICENCES)
    table = pa.table({
        "jpg": [{"bytes": p.read_bytes(), "path": None} for p in PHOTOS[:n]],
        "blip2_caption": CAPTIONS[:n],
        "licensename": [t or None for t, _ in LICENCES], "licenseurl": [u for _, u in LICENCES],
        "unickname": [f"author{i}" for i in range(n)],
        "pageurl": [f"https://www.flickr.com/photos/author{i}/{1000 + i}/" for i in range(n)],
        "title": [f"photo {i}" for i in range(n)], "photoid": list(range(1000, 1000 + n))})
    pq.write_table(table, folder / "part-00000-tid-1-c000.parquet", row_group_size=6, write_page_index=True)
    (root / "README.md").write_text(("---\nlicense: " + card_licence + "\n---\n" if card_licence else "") + "# pool\n")
    return root


@pytest.fixture
def positives(tmp_path):
    return raccoon_folder(tmp_path / "pos", 3, "teddy")


def sample(*args):
    return CliRunner().invoke(cli, ["sample", "--seed", "1", *map(str, args)])


def test_licence_commercial_keeps_only_allowed_rows_and_credits_each(hub_server, positives, tmp_path):
    hub_server.add_repo("me/flickr", write_repo(tmp_path / "repo"))
    out = tmp_path / "ds"
    r = sample("-q", "--json", "-p", positives, "-s", "me/flickr", "--count", 8, "--licence", "commercial",
               "--split", "1", "-o", out)
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    counts = s["row_licences"]["me/flickr"]
    assert counts["rows"] == {"CC-BY-2.0": 4, "CC-BY-NC-2.0": 4, "CC0-1.0": 2, "CC-BY-4.0": 2}
    assert counts["left_out"]["CC-BY-NC-2.0"]["rows"] == 4
    assert "commercial" in counts["left_out"]["CC-BY-NC-2.0"]["reason"]
    assert counts["rows_without_licence"] == 2 and counts["card"] == "CC-BY-4.0"
    assert json.loads((out / "negmine.json").read_text())["row_licences"] == s["row_licences"]
    # every allowed row, none of the NC ones; the rows saying none take the card's CC BY 4.0
    neg = [m for m in read_manifest(out) if m["role"] == "negative"]
    assert len(neg) == 8
    by_row = {m["row"]: m for m in neg}
    assert set(by_row) == {0, 1, 2, 3, 8, 9, 10, 11}
    assert s["licences"] == {"CC-BY-2.0": 4, "CC0-1.0": 2, "CC-BY-4.0": 2}
    for k, m in by_row.items():
        assert m["file"] == f"{HIVE}/part-00000-tid-1-c000.parquet"
        assert m["credit"] == f"author{k}" and m["page_url"] == f"https://www.flickr.com/photos/author{k}/{1000 + k}/"
        assert m["title"] == f"photo {k}"
    assert by_row[10]["licence"] == "CC-BY-4.0" and by_row[0]["licence_url"] == LICENCES[0][1]
    attribution = list(csv.DictReader(io.StringIO((out / "ATTRIBUTION.csv").read_text())))
    assert {(a["credit"], a["page_url"]) for a in attribution} == {(m["credit"], m["page_url"]) for m in neg}
    md = (out / "ATTRIBUTION.md").read_text()
    assert '"photo 0" by author0: https://www.flickr.com/photos/author0/1000/' in md
    assert "author4" not in md
    # --push-to-hub's card: every licence with its count; several licences are `other` to the Hub
    card = dataset_card(s, read_manifest(out))
    assert card.startswith("---\nlicense: other\n")
    assert all(f"{k} ({n})" in card for k, n in (("CC-BY-2.0", 4), ("CC-BY-4.0", 2), ("CC0-1.0", 2)))


def test_dry_run_counts_per_licence_and_reads_no_image_bytes(hub_server, positives, tmp_path):
    root = write_repo(tmp_path / "repo")
    hub_server.add_repo("me/flickr", root)
    r = sample("--dry-run", "-p", positives, "-s", "me/flickr", "--count", 4, "--licence", "commercial",
               "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    assert "per-row licences (licensename, licenseurl; 2 rows say none and take the card's, CC-BY-4.0)" in r.output
    assert "--licence leaves out 4 CC-BY-NC-2.0" in r.output
    md = pq.ParquetFile(root / HIVE / "part-00000-tid-1-c000.parquet").metadata
    image = [((c.dictionary_page_offset or c.data_page_offset),
              (c.dictionary_page_offset or c.data_page_offset) + c.total_compressed_size)
             for g in range(md.num_row_groups) for c in (md.row_group(g).column(k) for k in range(md.num_columns))
             if c.path_in_schema.startswith("jpg")]
    fetched = [tuple(int(x) for x in e.range.split("=")[1].split("-")) for e in hub_server.requests("cdn")
               if e.status == 206]
    assert fetched and not any(a <= e - 1 and s <= b for a, b in fetched for s, e in image), fetched


def test_a_row_without_licence_is_refused_when_the_card_says_none(hub_server, positives, tmp_path):
    hub_server.add_repo("me/flickr", write_repo(tmp_path / "repo", card_licence=None))
    r = sample("-q", "--json", "--dry-run", "-p", positives, "-s", "me/flickr", "--count", 4,
               "--licence", "commercial", "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    left = json.loads(r.stdout)["row_licences"]["me/flickr"]["left_out"]
    assert left["unknown"]["rows"] == 2 and "states no licence" in left["unknown"]["reason"]
    r = sample("-q", "-p", positives, "-s", "me/flickr", "--count", 7, "--licence", "commercial",
               "-o", tmp_path / "ds2")
    assert r.exit_code != 0 and "only 6 images" in r.output


def test_without_licence_option_every_row_keeps_its_own_licence(tmp_path, positives):
    root = write_repo(tmp_path / "repo")
    out = tmp_path / "ds"
    r = sample("-q", "-p", positives, "-s", root, "--count", 12, "--split", "1", "-o", out)
    assert r.exit_code == 0, r.output
    got = {m["row"]: m["licence"] for m in read_manifest(out) if m["role"] == "negative"}
    assert got[4] == "CC-BY-NC-2.0" and got[8] == "CC0-1.0" and got[11] == "CC-BY-4.0"


def test_commoncatalog_preset_resolves_in_its_hive_layout(hub_server, positives, tmp_path):
    hub_server.add_repo("common-canvas/commoncatalog-cc-by", write_repo(tmp_path / "repo"))
    r = sample("-q", "--json", "--dry-run", "-p", positives, "-s", "commoncatalog-cc-by", "--count", 4,
               "--licence", "commercial", "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["sources"][0]["id"] == "common-canvas/commoncatalog-cc-by" and s["sources"][0]["rows"] == 12
    assert s["text"]["common-canvas/commoncatalog-cc-by"]["columns"] == ["blip2_caption", "title"]
    assert s["row_licences"]["common-canvas/commoncatalog-cc-by"]["left_out"]["CC-BY-NC-2.0"]["rows"] == 4


def test_mine_from_a_parquet_pool_keeps_each_rows_licence_and_credit(tmp_path):
    root = write_repo(tmp_path / "repo")
    part = f"{HIVE}/part-00000-tid-1-c000.parquet"
    scores = tmp_path / "s.csv"
    scores.write_text("path,score\n" + "".join(f"{part}#{k},{0.5 + k / 100}\n" for k in range(12)))
    out = tmp_path / "hard"
    r = CliRunner().invoke(cli, ["mine", "-q", "--scores", str(scores), "--pool", str(root), "--count", "4",
                                 "--skip-top", "0", "--workers", "1", "--allow-unlabelled", "-o", str(out)])
    assert r.exit_code == 0, r.output
    kept = {m["row"]: m for m in read_manifest(out)}
    assert kept and all(m["credit"] == f"author{k}" and m["page_url"].endswith(f"/{1000 + k}/") for k, m in kept.items())
    assert all(m["licence"] == {"Attribution License": "CC-BY-2.0", "Attribution-NonCommercial License": "CC-BY-NC-2.0",
                                "Public Domain Dedication (CC0)": "CC0-1.0", "": "CC-BY-4.0"}[LICENCES[k][0]]
               for k, m in kept.items())


def test_openimages_preset_resolves_and_reads_verified_absences(hub_server, positives, tmp_path):
    """The preset's repo as its card describes it (image, image_id, original_url, title, labels of
    label and confidence; parquet under data/, no licence on the card): the preset's CC BY 2.0
    holds, and --verified-absent keeps only images a rater confirmed free of the positive."""
    root = tmp_path / "oi"
    (root / "data").mkdir(parents=True)
    labels = [[{"label": "Car", "confidence": 1.0}, {"label": "Teddy bear", "confidence": 0.0}],
              [{"label": "Car", "confidence": 1.0}], [{"label": "Teddy bear", "confidence": 1.0}],
              [{"label": "Tree", "confidence": 1.0}, {"label": "Teddy bear", "confidence": 0.0}]] * 3
    pq.write_table(pa.table({"image": [{"bytes": p.read_bytes(), "path": None} for p in PHOTOS[:12]],
                             "image_id": [f"{k:016x}" for k in range(12)],
                             "original_url": [f"https://farm.staticflickr.com/{k}.jpg" for k in range(12)],
                             "title": [f"photo {k}" for k in range(12)], "labels": labels}),
                   root / "data" / "train-00000-of-00001.parquet")
    (root / "README.md").write_text("---\ndataset_info:\n  features:\n  - name: image\n    dtype: image\n---\n")
    hub_server.add_repo("vikhyatk/openimages-human-labels", root)
    out = tmp_path / "ds"
    r = sample("-q", "--json", "-p", positives, "-s", "openimages-human-labels", "--count", 6, "--verified-absent",
               "--licence", "commercial", "--split", "1", "-o", out)
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["sources"][0]["licence_id"] == "CC-BY-2.0" and s["licences"] == {"CC-BY-2.0": 6}
    neg = [m for m in read_manifest(out) if m["role"] == "negative"]
    assert sorted(m["row"] for m in neg) == [0, 3, 4, 7, 8, 11]      # the rows a rater said show no teddy
    assert all(m["page_url"] == f"https://farm.staticflickr.com/{m['row']}.jpg" and m["credit"] is None for m in neg)


def test_two_licence_columns_are_refused_in_one_line(tmp_path, positives):
    root = tmp_path / "pool"
    root.mkdir()
    pq.write_table(pa.table({"image": [{"bytes": p.read_bytes(), "path": None} for p in PHOTOS[:3]],
                             "caption": CAPTIONS[:3], "license": ["cc-by-4.0"] * 3,
                             "licensename": ["Attribution-NonCommercial License"] * 3}),
                   root / "train-00000-of-00001.parquet")
    r = sample("--dry-run", "-p", positives, "-s", root, "--count", 2, "-o", tmp_path / "ds")
    assert r.exit_code != 0 and "2 licence columns ('license', 'licensename')" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_hive_folders_are_one_split_unless_a_split_key_names_them():
    from negmine.sources.layout import hive_parquet

    spark = ["README.md", f"{HIVE}/part-00000-tid-1-c000.parquet", "least_dim_range=512-1024/aspect_ratio_bucket=2.0/"
             "part-00001-tid-1-c000.parquet", f"{HIVE}/_SUCCESS"]
    assert hive_parquet(spark) == {"train": spark[1:3]}
    assert hive_parquet(["split=train/a.parquet", "split=test/b.parquet"]) == {"train": ["split=train/a.parquet"],
                                                                           "test": ["split=test/b.parquet"]}
    # a parquet file outside the partition folders: not a hive table, the other layouts decide
    assert hive_parquet(["data/train-00000-of-00001.parquet"]) is None
    assert hive_parquet(spark[1:3] + ["extra.parquet"]) is None


def write_author_url_pool(root):
    """A local pool shaped as people publish them: `author`, a bare `url` (here the photo's page)
    and a per-row `license` URL, half of the rows CC BY-NC."""
    root.mkdir()
    n = 12
    lic = ["https://creativecommons.org/licenses/by/2.0/", "https://creativecommons.org/licenses/by-nc/2.0/"]
    pq.write_table(pa.table({"image": [{"bytes": p.read_bytes(), "path": None} for p in PHOTOS[:n]],
                             "caption": CAPTIONS[:n], "author": [f"Alice {i}" for i in range(n)],
                             "url": [f"https://flickr.com/p/{i}" for i in range(n)],
                             "license": [lic[i % 2] for i in range(n)]}),
                   root / "train-00000-of-00001.parquet")
    (root / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n")
    return root


def test_author_credits_each_image_and_a_bare_url_is_the_page_only_when_named(tmp_path, positives):
    root = write_author_url_pool(tmp_path / "pool")
    out = tmp_path / "ds"
    r = sample("-q", "-p", positives, "-s", root, "--count", 6, "--split", "1", "--licence", "commercial",
               "-o", out)
    assert r.exit_code == 0, r.output
    neg = [m for m in read_manifest(out) if m["role"] == "negative"]
    assert sorted(m["row"] for m in neg) == [0, 2, 4, 6, 8, 10]          # every NC row left out
    assert all(m["licence"] == "CC-BY-2.0" and m["credit"] == f"Alice {m['row']}" for m in neg)
    # `url` is the image file's URL in LAION-style pools: not taken for the work's page by its name
    assert all(m["page_url"] is None for m in neg)
    attribution = list(csv.DictReader(io.StringIO((out / "ATTRIBUTION.csv").read_text())))
    assert sorted(a["credit"] for a in attribution) == sorted(f"Alice {m['row']}" for m in neg)
    out2 = tmp_path / "ds2"
    r = sample("-q", "-p", positives, "-s", f"{root}?page_url=url", "--count", 6, "--split", "1",
               "--licence", "commercial", "-o", out2)
    assert r.exit_code == 0, r.output
    neg = [m for m in read_manifest(out2) if m["role"] == "negative"]
    assert all(m["page_url"] == f"https://flickr.com/p/{m['row']}" for m in neg)
    assert "by Alice 0: https://flickr.com/p/0" in (out2 / "ATTRIBUTION.md").read_text()
    r = sample("--dry-run", "-p", positives, "-s", f"{root}?page_url=link", "--count", 2, "-o", tmp_path / "x")
    assert r.exit_code == 1 and "?page_url=link names no string column" in r.output
