"""examples/: the scripts the README points users to run on a real negmine output."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import SHARED, raccoon_folder, read_manifest
from negmine.cli import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def imagefolder_out(tmp_path) -> Path:
    """`negmine sample` (default format) of 10 raccoon photos against a folder pool of 16 real
    ImageNet photos, one class folder per wnid."""
    pos = raccoon_folder(tmp_path / "positives", 10) / "raccoon"
    for f in sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))[:16]:
        (tmp_path / "pool" / f.name.split("_")[0]).mkdir(parents=True)
        shutil.copy(f, tmp_path / "pool" / f.name.split("_")[0] / f.name)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["sample", "-q", "--workers", "1", "-p", str(pos.parent), "-s", str(tmp_path / "pool"),
                                 "--seed", "1", "--ratio", "1", "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out


def test_train_example_writes_a_score_row_per_test_image(imagefolder_out, tmp_path):
    out, scores = imagefolder_out, tmp_path / "scores.csv"
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "train.py"), str(out), "--scores", str(scores),
                        "--epochs", "1", "--size", "32"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with open(scores, newline="") as f:
        rows = list(csv.reader(f))
    classes = (out / "classes.txt").read_text().split()
    assert rows[0] == ["path", *classes] and "other" in classes         # every class, `other` included
    test = [m["path"] for m in read_manifest(out) if m["split"] == "test"]
    assert {m["role"] for m in read_manifest(out) if m["split"] == "test"} == {"positive", "negative"}
    assert sorted(row[0] for row in rows[1:]) == sorted(test)            # one row per test image, manifest paths
    for row in rows[1:]:
        assert sum(map(float, row[1:])) == pytest.approx(1, abs=1e-5)   # softmax probabilities
        assert all(0 <= float(v) <= 1 for v in row[1:])
    assert f"wrote {len(test)} rows" in r.stdout
    assert json.loads((out / "negmine.json").read_text())["options"]["format"] == "imagefolder"


def test_the_readme_worked_example_sweep_train_eval(tmp_path):
    """README "Did the negatives help?": a sweep, the example loop trained on each member, and
    `negmine eval` comparing the members on their one shared test set."""
    pos = raccoon_folder(tmp_path / "positives", 20) / "raccoon"
    sweep = tmp_path / "sweep"
    r = CliRunner().invoke(cli, ["sample", "-q", "--workers", "1", "-p", str(pos.parent), "-s",
                                 str(SHARED / "imagenet-500"), "--seed", "0", "--ratio", "0.5,1", "-o", str(sweep)])
    assert r.exit_code == 0, r.output
    args = []
    for member in ("ratio-0.5", "ratio-1"):
        scores = tmp_path / f"{member}.csv"
        t = subprocess.run([sys.executable, str(ROOT / "examples" / "train.py"), str(sweep / member), "--scores",
                            str(scores), "--epochs", "1", "--size", "32"], capture_output=True, text=True)
        assert t.returncode == 0, t.stderr
        args += ["--scores", f"{member}={scores}"]
    r = CliRunner().invoke(cli, ["eval", str(sweep), *args, "--json"])
    assert r.exit_code == 0, r.output
    numbers = json.loads(r.output)["comparison"]["members"]
    assert set(numbers) == {"ratio-0.5", "ratio-1"} and all(0 <= m["auroc"] <= 1 for m in numbers.values())
    members = {m: json.loads((sweep / "eval" / m / "eval.json").read_text()) for m in numbers}
    assert len({json.dumps(e["counts"]) for e in members.values()}) == 1       # one test set, the same images scored
    assert all(e["positives_vs_other"]["auroc"] == numbers[m]["auroc"] for m, e in members.items())
    r = CliRunner().invoke(cli, ["eval", str(sweep), *args])
    assert r.exit_code == 0 and r.output.splitlines()[0].startswith("2 members share the test set"), r.output
    assert "ratio-0.5" in r.output and "AUROC" in r.output
