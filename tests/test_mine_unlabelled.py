"""`negmine mine` over a pool that is no negmine output applies `sample`'s unlabelled-pool rule: a pool
no label covers is refused in one line, unlabelled images of a labelled pool are left out with a
reason, and --allow-unlabelled (or SPEC?unlabelled=allow) keeps them and says so. Real ImageNet
photos (../shared/data/imagenet-500), dog positives."""

import json
import shutil

import pytest
from click.testing import CliRunner

from conftest import SHARED, read_manifest
from negmine.cli import cli

IMAGES = SHARED / "imagenet-500" / "images"


def mine(*args):
    return CliRunner().invoke(cli, ["mine", "--workers", "1", "--skip-top", "0", *map(str, args)])


@pytest.fixture
def dogs(tmp_path):
    root = tmp_path / "positives" / "dog"
    root.mkdir(parents=True)
    for f in sorted(IMAGES.glob("n0209*.JPEG"))[:3]:                 # terriers
        shutil.copy(f, root / f.name)
    return root.parent


def flat_pool(root, files):
    """A folder of photos renamed photo_NNN.jpg: no class folder, no wnid in the name, so no label."""
    root.mkdir(parents=True)
    for k, f in enumerate(files):
        shutil.copy(f, root / f"photo_{k:03d}.jpg")
    return root


def scores_for(path, ids):
    path.write_text("id,score\n" + "".join(f"{i},{0.9 - k / 100:.2f}\n" for k, i in enumerate(ids)))
    return path


def test_an_unlabelled_pool_is_refused_unless_opted_in(tmp_path, dogs):
    files = [f for f in sorted(IMAGES.glob("n03*.JPEG"))[:5]] + sorted(IMAGES.glob("n0210*.JPEG"))[:2]   # 2 dogs
    pool = flat_pool(tmp_path / "pool", files)
    scores = scores_for(tmp_path / "s.csv", sorted(p.name for p in pool.iterdir()))
    r = mine("--scores", scores, "--pool", pool, "--positives", dogs, "--count", 3, "-o", tmp_path / "hard")
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    line = r.output.strip()
    assert len(line.splitlines()) == 1 and "none of its 7 images carries a label" in line
    assert "--allow-unlabelled" in line and f"{pool}?unlabelled=allow" in line
    assert "--content-check" not in line                            # mine has no such option
    assert not (tmp_path / "hard").exists()
    for extra, spec in ((["--allow-unlabelled"], str(pool)), ([], f"{pool}?unlabelled=allow")):
        out = tmp_path / f"hard{len(extra)}"
        r = mine("--scores", scores, "--pool", spec, "--positives", dogs, "--count", 3, *extra, "-o", out)
        assert r.exit_code == 0, r.output
        assert len([x for x in read_manifest(out) if x["role"] == "negative"]) == 3
        record = json.loads((out / "negmine.json").read_text())
        said = [w for w in record["warnings"] if "carry no label" in w]
        assert len(said) == 1 and "3 of the negatives written are such images" in said[0]
        assert f"warning: {said[0]}" in r.output
        assert record["unlabelled"]["drawn"] is True and record["unlabelled"]["rows"] == 7


def test_unlabelled_images_of_a_labelled_pool_are_left_out_with_a_reason(tmp_path, dogs):
    pool = tmp_path / "pool"
    (pool / "tools").mkdir(parents=True)
    for f in sorted(IMAGES.glob("n03*.JPEG"))[:4]:
        shutil.copy(f, pool / "tools" / f.name)
    dog = sorted(IMAGES.glob("n0210*.JPEG"))[0]
    shutil.copy(dog, pool / "loose_photo.jpg")                       # outside any class folder: no label
    ids = ["loose_photo.jpg"] + sorted(f"tools/{p.name}" for p in (pool / "tools").iterdir())
    scores = scores_for(tmp_path / "s.csv", ids)                     # the loose dog scores highest
    out = tmp_path / "hard"
    r = mine("--scores", scores, "--pool", pool, "--positives", dogs, "--count", 3, "-o", out)
    assert r.exit_code == 0, r.output
    kept = [x["id"] for x in read_manifest(out)]
    assert "loose_photo.jpg" not in kept and len(kept) == 3
    rejects = {x["id"]: x["reason"] for x in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    assert "carries no label" in rejects["loose_photo.jpg"] and "--allow-unlabelled" in rejects["loose_photo.jpg"]
    assert "1 of its 5 images carry no label" in r.output
    assert json.loads((out / "negmine.json").read_text())["warnings"] == []
    # opted in, it is drawn, and the run says how many such images it wrote
    out = tmp_path / "opt"
    r = mine("--scores", scores, "--pool", pool, "--positives", dogs, "--count", 3, "--allow-unlabelled", "-o", out)
    assert r.exit_code == 0, r.output
    assert "loose_photo.jpg" in [x["id"] for x in read_manifest(out)]
    warnings = json.loads((out / "negmine.json").read_text())["warnings"]
    assert len(warnings) == 1 and "1 of the negatives written are such images" in warnings[0]


def test_an_output_pool_is_not_judged_again(tmp_path, dogs):
    # a negmine output's negatives were vouched for when drawn: no refusal, whatever their labels
    pool = tmp_path / "pool" / "tools"
    pool.mkdir(parents=True)
    for f in sorted(IMAGES.glob("n03*.JPEG"))[:8]:
        shutil.copy(f, pool / f.name)
    base = tmp_path / "round1"
    r = CliRunner().invoke(cli, ["sample", "-q", "--workers", "1", "-p", str(dogs), "-s", str(pool.parent),
                                 "--count", 6, "--split", "0.5,0.5", "--seed", 1, "-o", str(base)])
    assert r.exit_code == 0, r.output
    negs = [x["path"] for x in read_manifest(base) if x["role"] == "negative"]
    r = mine("--scores", scores_for(tmp_path / "s.csv", negs), "--pool", base, "--count", 2, "--allow-held-out",
             "-o", tmp_path / "hard")
    assert r.exit_code == 0, r.output
    assert "unlabelled" not in json.loads((tmp_path / "hard" / "negmine.json").read_text())
