"""The recipes in recipes/*.toml: each runs (dry) from its own folder against a real pool, and does
what its comment says, the variants its comment advises included; a recipe's paths are relative to
its folder, `negmine run --help` lists the keys, and a missing extra is named in one line."""

import csv
import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import SHARED, read_manifest
from negmine.cli import cli
from negmine.cli.sample import sample
from negmine.recipes import load_recipe, needed_extras, recipe_requires

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.toml"))
IMAGENET = SHARED / "imagenet-500"
RACCOONS = sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[:6]
CLASSES = {r["wnid"]: (int(r["class_index"]), r["name"]) for r in csv.DictReader(open(IMAGENET / "classes.csv"))}
# ImageNet-1k's dog breeds are the classes 151 (Chihuahua) to 268 (Mexican hairless): 59 of them in the pool
DOG_BREEDS = {w for w, (i, _) in CLASSES.items() if 151 <= i <= 268}
BY_NAME = {n: w for w, (_, n) in CLASSES.items()}
BIG_CATS = {BY_NAME[n] for n in ("leopard", "jaguar", "tiger")}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    """Every recipe copied into a folder with the data it names beside it (6 real photos per class,
    VOC boxes), run from another folder: a path read against the working folder finds nothing."""
    folder = tmp_path / "project"
    folder.mkdir()
    for r in RECIPES:
        shutil.copy(r, folder / r.name)
    for name in ("hotdog", "bears/teddy", "bears/grizzly", "bears/black", "pets/cats", "pets/dogs",
                 "pets/giraffes", "dogs"):
        (folder / name).mkdir(parents=True)
        for p in RACCOONS:
            shutil.copy(p, folder / name / p.name)
    for boxes in ("dogs-boxes", "dogs-labels"):
        shutil.copytree(SHARED / "raccoon-voc" / "annotations", folder / boxes)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return folder


def dry(recipe: Path, *extra) -> dict:
    r = invoke("run", recipe, "--source", IMAGENET, "--dry-run", "--seed", 1, "--json", "-q", *extra)
    assert r.exit_code == 0, (recipe.name, extra, r.output)
    return json.loads(r.output)


def excluded(plan: dict) -> set[str]:
    return {e["label"] for s in plan["classes"]["sources"] for e in s["excluded"]}


def advised(recipe: Path) -> list[list[str]]:
    """The variants a recipe's comment advises: `#   negmine run NAME.toml OPTIONS  # why` lines."""
    pattern = re.compile(rf"^#\s+negmine run {re.escape(recipe.name)} (.*?)(?:\s+#.*)?$")
    return [shlex.split(m.group(1)) for m in map(pattern.match, recipe.read_text().splitlines()) if m]


def test_every_recipe_dry_runs_from_its_own_folder(here):
    assert {p.stem for p in RECIPES} == {"not-hotdog", "bears-other", "pets-other", "dog-vs-nodog",
                                         "detector-backgrounds"}
    for recipe in RECIPES:
        plan = dry(here / recipe.name)
        assert plan["negatives_needed"] > 0 and sum(plan["positives"].values()) >= 6, recipe.name


def test_each_recipe_does_what_its_comment_says(here):
    bears = dry(here / "bears-other.toml")
    # balanced: "other" is one more class of the median class size
    assert set(bears["positives"]) == {"black", "grizzly", "teddy"} and bears["negatives_needed"] == 6
    assert {BY_NAME["brown_bear"], BY_NAME["teddy"]} <= excluded(bears)

    pets = [dry(here / "pets-other.toml")] + [dry(here / "pets-other.toml", *v) for v in advised(here / "pets-other.toml")]
    assert len(pets) == 3, "the pets recipe advises its two variants"
    for plan in pets:              # every variant keeps every dog breed out
        assert DOG_BREEDS <= excluded(plan) and len(DOG_BREEDS) == 59
        assert not DOG_BREEDS & set(plan["draw"].get(str(IMAGENET), {}))
    default, big_cats, domestic = map(excluded, pets)
    cats = {BY_NAME["tiger_cat"], BY_NAME["Siamese_cat"]}
    assert cats | {BY_NAME["cougar"]} <= default and not BIG_CATS & default
    assert BIG_CATS | cats <= big_cats
    assert cats <= domestic and BY_NAME["cougar"] not in domestic
    # the advice the recipe gave before: dropping the folders' exclusions let every breed in
    old = dry(here / "pets-other.toml", "--no-auto-exclude", "--exclude", "n02121808")
    assert not DOG_BREEDS & excluded(old)

    dog = dry(here / "dog-vs-nodog.toml")
    assert DOG_BREEDS <= excluded(dog) and dog["synthetic"] == {"fraction": 0.2, "planned": 1, "annotated_positives": 6}
    assert recipe_requires(here / "dog-vs-nodog.toml") == ["cv"]

    det = dry(here / "detector-backgrounds.toml")
    # ~10% backgrounds: 0.11 x 6 positives; the folder's name keeps the dogs out, and only them
    assert det["negatives_needed"] == 1 and list(det["splits"]) == ["train", "val"]
    assert DOG_BREEDS <= excluded(det) and det["pool_available"] > 400

    hotdog = dry(here / "not-hotdog.toml")
    assert "not_hotdog" in hotdog["splits"]["train"] and hotdog["near"]["planned"] >= 4
    # most negatives are foods: WordNet 3.0 files its food nouns (noun.food) at offsets 07555863-07938000
    drawn = hotdog["draw"][str(IMAGENET)]
    foods = sum(n for w, n in drawn.items() if "n07555863" <= w <= "n07938000")
    assert foods > hotdog["negatives_needed"] / 2, drawn


def test_recipe_paths_are_relative_to_the_recipe(tmp_path, monkeypatch, pool):
    folder = tmp_path / "a" / "b"
    (folder / "pos" / "raccoon").mkdir(parents=True)
    for p in RACCOONS:
        shutil.copy(p, folder / "pos" / "raccoon" / p.name)
    shutil.copytree(pool, folder / "pool")
    recipe = folder / "r.toml"
    recipe.write_text('positives = "pos"\nout = "./ds"\nsource = ["./pool?weight=2"]\ncount = 4\nsplit = "0.5,0.5"\n')
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    r = invoke("run", recipe, "--seed", 1, "-q", "--workers", 1)
    assert r.exit_code == 0, r.output
    rows = read_manifest(folder / "ds")
    assert {x["source"] for x in rows if x["role"] == "negative"} == {str((folder / "pool").resolve())}
    # the command line's paths stay relative to where it runs
    r = invoke("run", recipe, "--seed", 1, "-q", "--workers", 1, "--out", "mine")
    assert r.exit_code == 0 and (tmp_path / "cwd" / "mine" / "manifest.jsonl").is_file()
    # a bare name in `source` is a preset or a Hub repo, not a path; a URL stays a URL
    recipe.write_text('source = ["imagenet-1k-256", "owner/name"]\nout = "s3://bucket/ds"\n')
    values = load_recipe(recipe, {p.name: p for p in sample.params})
    assert values == {"sources": ["imagenet-1k-256", "owner/name"], "out": "s3://bucket/ds"}


def test_run_help_lists_every_key_a_recipe_may_set():
    r = invoke("run", "--help")
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    for p in sample.params:
        flags = [o for o in p.opts if o.startswith("--")]
        if flags and p.name != "debug":          # --debug (tracebacks) is refused in a recipe
            assert re.search(rf"(?<![\w-]){re.escape(flags[0][2:])}(?![\w-])", text), flags[0]
    assert "requires (list)" in text and "cutout-fill (list)" in text and "dihedral (true/false)" in text


def test_a_missing_extra_is_named_in_one_line(here, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)          # as if OpenCV were not installed
    r = invoke("run", here / "dog-vs-nodog.toml", "--dry-run")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.output.strip().splitlines() == [
        f"Error: recipe {here / 'dog-vs-nodog.toml'} needs the extra cv (OpenCV, for --cutout-fill inpaint and "
        "--cutout-region mask), which is not installed: pip install 'negmine[cv]'"]
    # a recipe that forgets to name it is stopped the same way, by what its options need
    bare = here / "bare.toml"
    bare.write_text('positives = "./dogs"\nboxes = "./dogs-boxes"\nsynthetic = 0.5\ncutout-fill = "inpaint"\n')
    r = invoke("run", bare, "--dry-run")
    assert r.exit_code == 1 and "needs the extra cv" in r.output
    bare.write_text('requires = ["gpu"]\n')
    r = invoke("run", bare, "--dry-run")
    assert r.exit_code == 1 and "requires takes a list of extras, each one of cv, clip, ray" in r.output


def test_shipped_recipes_name_the_extras_their_options_need():
    params = {p.name: p for p in sample.params}
    for recipe in RECIPES:
        assert recipe_requires(recipe) == needed_extras(load_recipe(recipe, params)), recipe.name
