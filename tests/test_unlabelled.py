"""Pools negmine cannot label (issue 23, part 1): refused in one line, or their unlabelled rows left
out and counted, or (opted in) drawn with a warning; images named by ImageNet wnid are labelled by it;
links out of a pool folder are skipped alike in the dry run and the run, and named with the option."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import SHARED, read_manifest
from negmine.cli import cli
from negmine.errors import NegmineError
from negmine.sources import SourceSpec, open_source
from negmine.filters.taxonomy import Taxonomy

IMAGENET = SHARED / "imagenet-500"
RACCOONS = sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))
DOG = 2084071                                        # WordNet 3.0 noun offset of dog.n.01


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def sample(*args):
    return invoke("sample", "--workers", "1", *args)


def dog_wnids() -> set[str]:
    """The pool's classes that are a kind of dog, by the taxonomy (59 of imagenet-500's)."""
    tax = Taxonomy.load()
    wnids = {p.name.split("_")[0] for p in (IMAGENET / "images").glob("*.JPEG")}
    return {w for w in wnids if DOG in tax.ancestors(tax.from_wnid(w))}


def copy(files, folder: Path, name=lambda f: f.name) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, folder / name(f))
    return folder


@pytest.fixture
def racoon_and_dog(tmp_path) -> Path:
    """The quickstart's raccoons plus a dog folder (photos from imagenet-500's dog classes)."""
    root = tmp_path / "positives"
    copy(RACCOONS[:10], root / "raccoon")
    dogs = sorted(dog_wnids())[:10]
    copy([next((IMAGENET / "images").glob(f"{w}_*")) for w in dogs], root / "dog")
    return root


@pytest.fixture
def flat_pool(tmp_path) -> Path:
    """Photos in one folder, named by nothing negmine can read a class from."""
    return copy(RACCOONS[20:32], tmp_path / "flat", name=lambda f: "photo-" + f.name)


def test_imagenet_500_is_labelled_by_its_wnid_file_names_and_dogs_are_kept_out(racoon_and_dog, tmp_path):
    out = tmp_path / "ds"
    r = sample("--positives", racoon_and_dog, "--source", IMAGENET, "--count", 150, "--seed", 0, "--out", out)
    assert r.exit_code == 0, r.output
    dogs = dog_wnids()
    assert len(dogs) == 59
    neg = [x for x in read_manifest(out) if x["role"] == "negative"]
    assert len(neg) == 150
    # every negative is labelled by its file's wnid, and none is a dog (~18 would be, unexcluded)
    assert all(x["label"] == Path(x["file"]).name.split("_")[0] for x in neg)
    assert not dogs & {x["label"] for x in neg}
    record = json.loads((out / "negmine.json").read_text())
    excluded = {e["label"] for s in record["classes"]["sources"] for e in s["excluded"]}
    assert dogs <= excluded
    assert not any("carry no label" in w for w in record["warnings"]) and record["unlabelled"] == []
    assert record["sources"][0]["labels_from"] == "wnid file names"
    assert f"excluded {len(excluded)} of 500 source classes of {IMAGENET.resolve()}" in r.output
    rep = invoke("report", out)
    assert rep.exit_code == 0, rep.output
    assert f"excluded source classes: {len(excluded)}" in rep.output


def test_readme_quickstart_command_runs_on_a_labelled_pool(tmp_path):
    out = tmp_path / "raccoon-with-other"
    r = sample("--positives", SHARED / "raccoon-voc" / "images", "--source", IMAGENET, "--ratio", 1, "--seed", 0,
               "--out", out, "--quiet")
    assert r.exit_code == 0, r.output
    record = json.loads((out / "negmine.json").read_text())
    assert record["sources"][0]["classes"] == 500 and record["unlabelled"] == []
    assert f"of 500 source classes of {IMAGENET.resolve()}" in r.output


def test_a_pool_without_labels_is_refused_in_one_line_everywhere(flat_pool, racoon_and_dog, tmp_path):
    out = tmp_path / "ds"
    results = [sample("--positives", racoon_and_dog, "--source", flat_pool, "--count", 5, "--out", out, *extra)
               for extra in ([], ["--dry-run"])]
    results.append(invoke("classes", "--source", flat_pool, "--exclude", "dog"))
    for r in results:
        assert r.exit_code == 1
        lines = [x for x in r.output.splitlines() if x.startswith("Error")]
        assert len(lines) == 1, r.output
        line = lines[0]
        assert f"source {flat_pool.resolve()}: none of its 12 images carries a label" in line
        for way in ("a folder per class", "metadata.jsonl", "--content-check clip", "--allow-unlabelled",
                    f"{flat_pool.resolve()}?unlabelled=allow"):
            assert way in line
    assert results[0].output.splitlines()[-1] == results[1].output.splitlines()[-1]   # the dry run says the same
    assert not out.exists() and not list(tmp_path.glob(".ds*"))                      # nothing written


def test_the_refusal_comes_before_the_positives_are_hashed(flat_pool, racoon_and_dog, tmp_path, monkeypatch):
    monkeypatch.setenv("NEGMINE_CACHE", str(tmp_path / "cache"))
    r = sample("--positives", racoon_and_dog, "--source", flat_pool, "--count", 5, "--out", tmp_path / "ds")
    assert r.exit_code == 1 and "carries a label" in r.output
    assert not (tmp_path / "cache" / "hashes.sqlite").exists()    # no positive was hashed (hashes are cached there)
    r = sample("--positives", racoon_and_dog, "--source", flat_pool, "--count", 5, "--out", tmp_path / "ds",
               "--allow-unlabelled", "--dry-run")
    assert r.exit_code == 0 and (tmp_path / "cache" / "hashes.sqlite").is_file()   # ... as a run that goes on does


@pytest.mark.parametrize("how", ["flag", "query"])
def test_allow_unlabelled_draws_them_and_every_record_says_so(flat_pool, racoon_and_dog, tmp_path, how):
    out = tmp_path / "ds"
    source = [str(flat_pool), "--allow-unlabelled"] if how == "flag" else [f"{flat_pool}?unlabelled=allow"]
    r = sample("--positives", racoon_and_dog, "--source", *source, "--count", 6, "--seed", 1, "--out", out,
               "--split", "0.5,0.5")
    assert r.exit_code == 0, r.output
    assert "warning: " in r.stderr and "12 of its 12 images carry no label" in r.stderr
    record = json.loads((out / "negmine.json").read_text())
    warning = next(w for w in record["warnings"] if "carry no label" in w)
    assert "6 of the negatives written are such images" in warning
    # dog positives: ~12% of ImageNet-1k's validation images are of, or show, a dog (118 breeds of 1000)
    est = record["unlabelled_contamination"]
    assert 0.118 <= est["share"] < 0.16 and est["per_term"]["raccoon"] is None
    assert est["unknown_terms"] == ["raccoon"]
    assert f"~{est['share']:.1%}" in warning and "unknown for raccoon" in warning
    assert record["unlabelled"][0]["drawn"] and record["unlabelled"][0]["rows"] == 12
    rep = invoke("report", out)
    assert rep.exit_code == 0 and warning in rep.output
    assert "carry no label" in (out / "report" / "report.html").read_text()
    cls = invoke("classes", "--source", *source, "--exclude", "dog")
    assert cls.exit_code == 0 and "12 of its 12 images carry no label" in cls.output and "~12.0%" in cls.output


def test_the_per_source_query_takes_allow_only():
    assert SourceSpec.parse("pool?unlabelled=allow").unlabelled == "allow"
    assert SourceSpec.parse("pool").unlabelled is None
    with pytest.raises(NegmineError, match="unlabelled takes one value, allow"):
        SourceSpec.parse("pool?unlabelled=yes")


def test_positives_no_imagenet_class_covers_give_an_unknown_contamination(flat_pool, tmp_path):
    pos = copy(RACCOONS[:6], tmp_path / "positives" / "raccoon")
    r = sample("--positives", pos.parent, "--source", flat_pool, "--allow-unlabelled", "--count", 3,
               "--dry-run", "--json", "--quiet", "--out", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    assert plan["unlabelled_contamination"]["share"] is None
    assert "how many show a positive is unknown" in plan["warnings"][0]


def test_content_check_vouches_for_an_unlabelled_pool_in_the_plan(flat_pool, racoon_and_dog, tmp_path):
    r = sample("--positives", racoon_and_dog, "--source", flat_pool, "--content-check", "clip", "--count", 4,
               "--dry-run", "--json", "--quiet", "--out", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    assert plan["unlabelled"][0]["how"] == "--content-check clip" and plan["pool_available"] == 12
    assert "CLIP" in plan["warnings"][0]


def test_wnid_names_label_only_whole_folders_of_real_wnids(tmp_path):
    imgs = sorted((IMAGENET / "images").glob("n015*"))[:3]
    train = copy(imgs, tmp_path / "train", name=lambda f: f.name.split("_")[0] + "_10026.JPEG")   # ImageNet train names
    src = open_source(SourceSpec(str(train)))
    assert src.classes == sorted(f.name.split("_")[0] for f in imgs) and (src.codes >= 0).all()
    mixed = copy(imgs, tmp_path / "mixed")
    shutil.copy(RACCOONS[0], mixed / "holiday.jpg")                  # one file not named by wnid
    assert (open_source(SourceSpec(str(mixed))).codes < 0).all()
    # the refusal names the file that kept the folder unlabelled, so it can be renamed or removed
    r = sample("--positives", RACCOONS[0].parent, "--source", mixed, "--count", 2, "--out", tmp_path / "ds")
    assert r.exit_code == 1 and "holiday.jpg (rename or remove them" in r.output, r.output
    fake = copy(imgs, tmp_path / "fake")
    shutil.copy(RACCOONS[0], fake / "n99999999_1.JPEG")              # not a WordNet noun synset
    assert (open_source(SourceSpec(str(fake))).codes < 0).all()
    classed = copy(imgs, tmp_path / "classed" / "birds")             # a class folder keeps its class
    assert open_source(SourceSpec(str(classed.parent))).classes == ["birds"]


def test_wnid_rule_reads_the_synsets_the_taxonomy_holds():
    # sources read WordNet's offsets from the shipped file themselves (they import no filter): a
    # file-name wnid must label a folder exactly when the taxonomy that judges the classes places it
    from negmine.sources.wnids import noun_offsets

    tax = Taxonomy.load()
    assert noun_offsets() == set(tax.lemmas)
    assert tax.from_wnid("n02508021") is not None and 2508021 in noun_offsets()    # raccoon
    assert 99999999 not in noun_offsets()


def test_unlabelled_files_of_a_labelled_folder_pool_are_left_out_and_counted(racoon_and_dog, tmp_path):
    pool = tmp_path / "pool"
    copy(RACCOONS[40:46], pool / "trash")                     # a class folder
    copy(RACCOONS[46:52], pool, name=lambda f: "loose-" + f.name)   # no class: left out
    r = sample("--positives", racoon_and_dog, "--source", pool, "--count", 4, "--seed", 2, "--split", "0.5,0.5",
               "--out", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    neg = [x for x in read_manifest(tmp_path / "ds") if x["role"] == "negative"]
    assert len(neg) == 4 and all(x["label"] == "trash" for x in neg)
    record = json.loads((tmp_path / "ds" / "negmine.json").read_text())
    assert record["unlabelled"][0]["rows"] == 6 and not record["unlabelled"][0]["drawn"]
    assert "6 of its 12 images carry no label and were left out" in r.output
    rep = invoke("report", tmp_path / "ds")
    assert rep.exit_code == 0 and "6 of 12 images carry no label, left out of the draw" in rep.output
    assert "6 of 12 images carry no label" in (tmp_path / "ds" / "report" / "report.html").read_text()
    plan = sample("--positives", racoon_and_dog, "--source", pool, "--count", 4, "--seed", 2, "--split", "0.5,0.5",
                  "--out", tmp_path / "ds2", "--dry-run")
    assert plan.exit_code == 0 and "pool of 6" in plan.output
    assert "6 of its 12 images carry no label" in plan.output and "left out of the draw" in plan.output
    # opted in: the loose photos are drawn too (12 needed of 12)
    r = sample("--positives", racoon_and_dog, "--source", pool, "--count", 12, "--seed", 2, "--split", "0.5,0.5",
               "--out", tmp_path / "ds3", "--allow-unlabelled")
    assert r.exit_code == 0, r.output
    assert sum(x["label"] is None for x in read_manifest(tmp_path / "ds3")) == 6


def test_an_imagefolder_image_without_a_metadata_record_is_a_recorded_skip(racoon_and_dog, tmp_path):
    split = copy(RACCOONS[60:68], tmp_path / "pool" / "train")
    listed = sorted(p.name for p in split.glob("*.jpg"))[:-1]
    (split / "metadata.jsonl").write_text("".join(json.dumps({"file_name": f, "label": "trash"}) + "\n"
                                                  for f in listed))
    unlisted = sorted(p.name for p in split.glob("*.jpg"))[-1]
    out = tmp_path / "ds"
    r = sample("--positives", racoon_and_dog, "--source", tmp_path / "pool", "--count", 8, "--allow-short",
               "--split", "0.5,0.5", "--seed", 3, "--out", out)
    assert r.exit_code == 0, r.output
    assert unlisted not in {x.get("file") for x in read_manifest(out)}
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    assert [x["reason"].split(":")[0] for x in rejects if x.get("file") == f"train/{unlisted}"] == ["no metadata record"]
    assert json.loads((out / "negmine.json").read_text())["sources"][0]["images_without_metadata_record"] == 1
    # a split none of whose images has a record is refused
    (split / "metadata.jsonl").write_text(json.dumps({"file_name": "gone.jpg", "label": "trash"}) + "\n")
    r = sample("--positives", racoon_and_dog, "--source", tmp_path / "pool", "--count", 4, "--out", tmp_path / "x")
    assert r.exit_code == 1 and "none of its 8 images carries a label (no metadata record names them" in r.output


def test_classlabel_minus_one_rows_are_left_out_and_a_hidden_label_split_is_refused(racoon_and_dog, tmp_path):
    import datasets

    imgs = [{"bytes": p.read_bytes(), "path": None} for p in RACCOONS[80:90]]
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["trash", "can"])})
    for name, labels in (("part", [0, 1, -1, 0, 1, -1, 0, 1, -1, 0]), ("hidden", [-1] * 10)):
        ds = datasets.Dataset.from_dict({"image": imgs, "label": labels}, features=feats)
        (tmp_path / name / "data").mkdir(parents=True)
        ds.to_parquet(str(tmp_path / name / "data" / "test-00000-of-00001.parquet"))
    r = sample("--positives", racoon_and_dog, "--source", tmp_path / "part", "--count", 8, "--allow-short",
               "--split", "0.5,0.5", "--seed", 0, "--out", tmp_path / "ds", "--json", "--quiet")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["negatives"] == 7 and summary["unlabelled"][0]["rows"] == 3
    assert "label in column 'label' is -1" in summary["unlabelled"][0]["reason"]
    assert all(x["label"] in ("trash", "can") for x in read_manifest(tmp_path / "ds") if x["role"] == "negative")
    r = sample("--positives", racoon_and_dog, "--source", tmp_path / "hidden", "--count", 4, "--out", tmp_path / "x")
    assert r.exit_code == 1 and "none of its 10 images carries a label" in r.output


def test_links_out_of_the_pool_are_skipped_alike_by_the_dry_run_and_the_run(racoon_and_dog, tmp_path):
    pool = tmp_path / "links"
    pool.mkdir()
    targets = sorted((IMAGENET / "images").glob("n03*"))[:8]
    for f in targets:
        (pool / f.name).symlink_to(f)
    out = tmp_path / "ds"
    args = ["--positives", racoon_and_dog, "--source", pool, "--count", 4, "--split", "0.5,0.5", "--seed", 0,
            "--out", out]
    results = [sample(*args, "--dry-run"), sample(*args)]
    for r in results:
        assert r.exit_code == 4
        assert "holds no images: 8 files are links out of the folder, skipped" in r.output
        assert "--follow-symlinks follows them" in r.output
    assert results[0].output == results[1].output
    r = sample(*args, "--follow-symlinks")
    assert r.exit_code == 0, r.output
    assert all(x["label"] == Path(x["file"]).name.split("_")[0] for x in read_manifest(out) if x["role"] == "negative")
    # some links among real files: the plan and the run both name them
    copy(sorted((IMAGENET / "images").glob("n04*"))[:8], pool)
    plan = sample(*args[:-2], "--dry-run", "--out", tmp_path / "ds2")
    run = sample(*args[:-2], "--out", tmp_path / "ds2")
    line = f"{pool.resolve()}: 8 files are links out of the folder, skipped"
    assert plan.exit_code == 0 and run.exit_code == 0, run.output
    assert line in plan.output and line in run.output
    assert "pool of 8" in plan.output and any(line in w for w in
                                              json.loads((tmp_path / "ds2" / "negmine.json").read_text())["warnings"])
