"""Licences as data: what each licence text allows, `--licence`, and the attribution files."""

import csv
import json

import pytest
from click.testing import CliRunner

from conftest import PLACEABLE, make_parquet_repo, read_negatives
from negmine.cli import cli
from negmine.errors import NegmineError
from negmine.licences import parse_licence, parse_policy


@pytest.mark.parametrize("text, url, lid, commercial, adapt", [
    # Hub card ids
    ("cc-by-4.0", None, "CC-BY-4.0", True, True),
    ("cc-by-nc-sa-4.0", None, "CC-BY-NC-SA-4.0", False, True),
    ("cc-by-nd-4.0", None, "CC-BY-ND-4.0", True, False),
    ("cc0-1.0", None, "CC0-1.0", True, True),
    ("mit", None, "MIT", True, True),
    ("other", None, "other", None, None),
    (None, None, "unknown", None, None),
    # Flickr's names, with and without the row's licence URL (YFCC100M, CommonCatalog)
    ("Attribution License", None, "CC-BY", True, True),
    ("Attribution-NonCommercial License", None, "CC-BY-NC", False, True),
    ("Attribution-ShareAlike License", "http://creativecommons.org/licenses/by-sa/2.0/", "CC-BY-SA-2.0", True, True),
    ("Public Domain Dedication (CC0)", None, "CC0-1.0", True, True),
    ("No known copyright restrictions", None, "other", None, None),
    ("All Rights Reserved", None, "all-rights-reserved", False, False),
    # a bare URL
    ("https://creativecommons.org/licenses/by-nc-nd/3.0/", None, "CC-BY-NC-ND-3.0", False, False),
    ("http://creativecommons.org/publicdomain/mark/1.0/", None, "PDM", True, True),
    # the ImageNet presets' terms
    ("other (ImageNet terms: research/education)", None, "imagenet-terms", False, False),
])
def test_licence_texts_read_as_what_they_allow(text, url, lid, commercial, adapt):
    lic = parse_licence(text, url)
    assert (lic.id, lic.commercial, lic.adapt) == (lid, commercial, adapt)


def test_a_cc_url_gives_the_canonical_link_and_by_needs_credit():
    lic = parse_licence("cc-by-2.0")
    assert lic.url == "https://creativecommons.org/licenses/by/2.0/" and lic.credit and not lic.share_alike
    assert parse_licence("Attribution-ShareAlike License").share_alike


def test_commercial_keeps_only_licences_that_allow_commercial_use_and_adaptation():
    p = parse_policy("commercial")
    ok = ["cc-by-4.0", "cc0-1.0", "Attribution-ShareAlike License", "http://creativecommons.org/publicdomain/mark/1.0/"]
    refused = ["cc-by-nc-4.0", "cc-by-nd-4.0", "other", None, "other (ImageNet terms)", "All Rights Reserved"]
    assert all(p.allows(parse_licence(t)) for t in ok)
    assert not any(p.allows(parse_licence(t)) for t in refused)
    assert "does not say" in p.why_not(parse_licence("other")) and "ND" in p.why_not(parse_licence("cc-by-nd-4.0"))


def test_a_licence_list_matches_versions_of_a_family_and_refuses_what_it_cannot_read():
    p = parse_policy("CC-BY,cc0-1.0")
    assert p.allows(parse_licence("cc-by-2.0")) and p.allows(parse_licence("cc-by-4.0"))
    assert p.allows(parse_licence("Public Domain Dedication (CC0)"))
    assert not p.allows(parse_licence("cc-by-sa-4.0")) and not p.allows(parse_licence("cc-by-nc-4.0"))
    with pytest.raises(NegmineError, match="not a licence id"):
        parse_policy("CC-BX")


def run(*args):
    return CliRunner().invoke(cli, ["sample", "--quiet", "--workers", "1", *map(str, args)])


def test_commercial_run_credits_every_drawn_negative(positives, tmp_path):
    pool = make_parquet_repo(tmp_path / "pool", PLACEABLE[:6], 8, licence="cc-by-4.0")
    out = tmp_path / "ds"
    r = run("--positives", positives, "--source", pool, "--count", 12, "--seed", 1, "--licence", "commercial",
            "--out", out, "--json")
    assert r.exit_code == 0, r.output
    neg = read_negatives(out)
    assert len(neg) == 12 and {n["licence"] for n in neg} == {"CC-BY-4.0"}
    assert {n["licence_url"] for n in neg} == {"https://creativecommons.org/licenses/by/4.0/"}
    with open(out / "ATTRIBUTION.csv", newline="") as f:
        credits = list(csv.DictReader(f))
    assert sorted(c["path"] for c in credits) == sorted(n["path"] for n in neg)       # every negative, no positive
    assert all(c["licence"] == "CC-BY-4.0" and c["source"] == str(pool) and c["file"] for c in credits)
    md = (out / "ATTRIBUTION.md").read_text()
    assert "## CC-BY-4.0 (12 images)" in md and "<https://creativecommons.org/licenses/by/4.0/>" in md
    assert all(f"`{n['path']}`" in md for n in neg) and "20 positives" in md
    record = json.loads((out / "negmine.json").read_text())
    assert record["licences"] == {"CC-BY-4.0": 12} == json.loads(r.output)["licences"]
    assert record["options"]["licence"] == "commercial"


@pytest.mark.parametrize("card, says", [("cc-by-nc-4.0", "does not allow commercial use"),
                                        ("other", "does not say whether commercial use is allowed")])
def test_commercial_refuses_a_pool_whose_licence_forbids_or_does_not_say(positives, tmp_path, card, says):
    pool = make_parquet_repo(tmp_path / "pool", PLACEABLE[:6], 8, licence=card)
    out = tmp_path / "ds"
    r = run("--positives", positives, "--source", pool, "--count", 12, "--licence", "commercial", "--out", out)
    assert r.exit_code == 1 and says in r.output and len(r.output.strip().splitlines()) == 1
    assert not out.exists()                                      # refused before anything was written


def test_dry_run_and_sources_say_each_pools_licence(positives, tmp_path):
    pool = make_parquet_repo(tmp_path / "pool", PLACEABLE[:6], 8, licence="cc-by-nc-4.0")
    r = run("--positives", positives, "--source", pool, "--count", 12, "--dry-run", "--out", tmp_path / "ds")
    assert r.exit_code == 0 and f"licence of {pool}: CC-BY-NC-4.0 (cc-by-nc-4.0): does not allow commercial use" in r.output
    presets = json.loads(CliRunner().invoke(cli, ["sources", "--json"]).output)
    assert {p["name"]: p["commercial"] for p in presets}["imagenet-1k-256"] is False
    assert all(p["licence_id"] for p in presets)


def test_a_pushed_card_names_the_licence_as_the_hub_spells_it():
    from negmine.outputs.formats import dataset_card, hub_licence_id

    assert [hub_licence_id(x) for x in ("CC-BY-4.0", "CC0-1.0", "MIT", "CC-BY", "imagenet-terms", "unknown")] == \
        ["cc-by-4.0", "cc0-1.0", "mit", "other", "other", "other"]
    rows = [{"split": "train", "class": "other", "role": "negative", "licence": "CC-BY-4.0"}] * 3 + \
        [{"split": "train", "class": "other", "role": "negative", "licence": "CC0-1.0"}]
    card = dataset_card({"sources": []}, rows)
    assert card.startswith("---\nlicense: other\n") and "CC-BY-4.0 (3), CC0-1.0 (1)" in card
    assert dataset_card({"sources": []}, rows[:3]).startswith("---\nlicense: cc-by-4.0\n")


@pytest.mark.parametrize("text, lid, commercial", [
    # a card's YAML list (card_licence joins it): allowed only where every listed licence allows it
    ("cc-by-4.0, cc0-1.0", "CC-BY-4.0, CC0-1.0", True),
    ("cc-by-4.0, cc-by-nc-4.0", "CC-BY-4.0, CC-BY-NC-4.0", False),
    ("cc-by-4.0, other", "CC-BY-4.0, other", None),
    # spaced, upper-case and spelled-out Creative Commons names
    ("CC BY 4.0", "CC-BY-4.0", True),
    ("CC-BY 4.0", "CC-BY-4.0", True),
    ("CC BY-SA 4.0", "CC-BY-SA-4.0", True),
    ("CC BY-NC-ND 4.0", "CC-BY-NC-ND-4.0", False),
    ("Creative Commons Attribution 4.0 International", "CC-BY-4.0", True),
    ("Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International License", "CC-BY-NC-SA-4.0", False),
    ("CC0 1.0 Universal", "CC0-1.0", True),
])
def test_licence_lists_and_spelled_out_names_are_read(text, lid, commercial):
    lic = parse_licence(text)
    assert (lic.id, lic.commercial) == (lid, commercial)


def test_a_licence_list_is_allowed_only_if_every_listed_licence_is():
    from negmine.sources.cards import card_licence

    listed = parse_licence(card_licence("---\nlicense:\n- cc-by-4.0\n- cc-by-nc-4.0\n---\n"))
    p = parse_policy("commercial")
    assert not p.allows(listed) and "only if every listed licence is" in p.why_not(listed)
    assert "CC-BY-NC-4.0 does not allow commercial use" in p.why_not(listed)
    assert p.allows(parse_licence("cc-by-4.0, cc0-1.0"))
    ids = parse_policy("CC-BY,CC0-1.0")
    assert ids.allows(parse_licence("cc-by-4.0, cc0-1.0")) and not ids.allows(parse_licence("cc-by-4.0, pdm"))


def test_a_preset_whose_terms_forbid_the_policy_is_refused_before_any_network_access(positives, tmp_path,
                                                                                      monkeypatch):
    from negmine.sources import hub

    def offline(*a, **k):
        raise AssertionError("the Hub was asked")

    monkeypatch.setattr(hub, "resolve", offline)
    for source in ([], ["--source", "mini-imagenet"], ["--source", "imagenet-1k"]):
        r = run("--positives", positives, *source, "--count", 4, "--licence", "commercial", "--out", tmp_path / "ds")
        assert r.exit_code == 1 and "imagenet-terms does not allow commercial use" in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "ds").exists()
    r = run("--positives", positives, "--source", "tiny-imagenet", "--count", 4, "--licence", "CC-BY",
            "--out", tmp_path / "ds")
    assert r.exit_code == 1 and "imagenet-terms is not in --licence CC-BY" in r.output


def photo_folder(root, card: str | None = None):
    """A folder of photos of one's own (real images), with a README.md card when `card` is given."""
    from conftest import SHARED

    (root / "things").mkdir(parents=True)
    for f in sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))[:12]:
        (root / "things" / f.name).write_bytes(f.read_bytes())
    if card:
        (root / "README.md").write_text(f"---\nlicense: {card}\n---\n# my photos\n")
    return root


def test_a_local_folder_card_states_its_licence(positives, tmp_path):
    pool = photo_folder(tmp_path / "pool", "cc0-1.0")
    r = run("--positives", positives, "--source", pool, "--count", 4, "--licence", "commercial", "--dry-run",
            "--out", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    assert f"licence of {pool}: CC0-1.0 (cc0-1.0): allows commercial use" in r.output


def test_a_declared_licence_is_used_and_recorded_as_the_users(positives, tmp_path):
    pool = photo_folder(tmp_path / "pool")
    r = run("--positives", positives, "--source", pool, "--count", 4, "--licence", "commercial", "--out", tmp_path / "x")
    assert r.exit_code == 1 and "states no licence" in r.output
    spec = f"{pool}?licence=cc0-1.0"
    r = run("--positives", positives, "--source", spec, "--count", 4, "--licence", "commercial", "--dry-run",
            "--out", tmp_path / "ds")
    assert r.exit_code == 0 and "CC0-1.0 (cc0-1.0), declared by the user" in r.output, r.output
    out = tmp_path / "ds"
    r = run("--positives", positives, "--source", spec, "--count", 4, "--seed", 1, "--licence", "commercial",
            "--out", out)
    assert r.exit_code == 0, r.output
    assert {n["licence"] for n in read_negatives(out)} == {"CC0-1.0"}
    source = json.loads((out / "negmine.json").read_text())["sources"][0]
    assert source["licence_id"] == "CC0-1.0" and "user" in source["licence_declared_by"]
    assert f"Licence declared by the user (`?licence=` on `--source`) for {pool}" in (out / "ATTRIBUTION.md").read_text()
    # a pool that states its own licence keeps it: a declaration is refused, not chosen over it
    nc = photo_folder(tmp_path / "nc", "cc-by-nc-4.0")
    r = run("--positives", positives, "--source", f"{nc}?licence=cc0-1.0", "--count", 4, "--out", tmp_path / "y")
    assert r.exit_code == 1 and "the pool states its licence, CC-BY-NC-4.0" in r.output
    r = run("--positives", positives, "--source", f"{pool}?licence=mine", "--count", 4, "--out", tmp_path / "z")
    assert r.exit_code == 1 and "is not a licence id negmine reads" in r.output


def test_cutout_attribution_lists_the_images_made_from_the_users(tmp_path):
    from conftest import SHARED

    voc = SHARED / "raccoon-voc"
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for f in sorted((voc / "images").glob("*.jpg"))[:6]:
        (imgs / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "cut"
    r = CliRunner().invoke(cli, ["cutout", "-q", "--images", str(imgs), "--boxes", str(voc / "annotations"),
                                 "--fill", "tile", "--out", str(out), "--seed", 1])
    assert r.exit_code == 0, r.output
    made = len((out / "manifest.jsonl").read_text().splitlines())
    md = (out / "ATTRIBUTION.md").read_text()
    assert made and "## Made from your images" in md
    assert f"- {made} cutouts: the annotated objects removed and their regions filled (tile {made})" in md
