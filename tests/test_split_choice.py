"""Which split (and converted-parquet config) a pool reads when the spec names none: `train`, or the
only one there is; several and no train is refused in one line naming them and `?split=` (a test
split is not drawn because it sorts first)."""

import shutil

from click.testing import CliRunner

from conftest import make_parquet_repo, read_manifest
from negmine.cli import cli


def sample(*args):
    return CliRunner().invoke(cli, ["sample", "--quiet", "--workers", "1", *map(str, args)])


def two_split_repo(root):
    """data/validation-*.parquet and data/test-*.parquet, no train split (a benchmark's held-out parts)."""
    make_parquet_repo(root, ["lamp", "chair"], 6, split="validation", seed=1)
    test = make_parquet_repo(root.parent / "t", ["kettle", "bottle"], 6, split="test", seed=2)
    for f in (test / "data").glob("*.parquet"):
        shutil.move(str(f), root / "data" / f.name)
    return root


def test_no_train_split_and_several_others_is_refused_naming_them(positives, tmp_path):
    repo = two_split_repo(tmp_path / "repo")
    r = sample("-p", positives, "-s", repo, "--count", 4, "--seed", 0, "-o", tmp_path / "ds")
    assert r.exit_code == 4, r.output
    line = r.output.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in r.output
    assert "has no train split" in line and "validation, test" in line and "?split=NAME" in line
    assert not (tmp_path / "ds").exists()
    # named, it draws from that split only
    r = sample("-p", positives, "-s", f"{repo}?split=test", "--count", 4, "--seed", 0, "-o", tmp_path / "ok")
    assert r.exit_code == 0, r.output
    negatives = [x for x in read_manifest(tmp_path / "ok") if x["role"] == "negative"]
    assert len(negatives) == 4 and {x["label"] for x in negatives} <= {"kettle", "bottle"}
    assert {x["file"] for x in negatives} == {"data/test-00000-of-00001.parquet"}


def test_the_only_split_is_read_without_naming_it(positives, tmp_path):
    repo = make_parquet_repo(tmp_path / "repo", ["lamp", "chair"], 6, split="validation")
    r = sample("-p", positives, "-s", repo, "--count", 4, "--seed", 0, "-o", tmp_path / "ds")
    assert r.exit_code == 0, r.output
    assert {x["label"] for x in read_manifest(tmp_path / "ds") if x["role"] == "negative"} <= {"lamp", "chair"}


def test_save_to_disk_dict_without_train_is_refused_the_same_way(positives, tmp_path):
    import datasets

    repo = two_split_repo(tmp_path / "repo")
    dd = datasets.load_dataset("parquet", data_files={s: str(repo / "data" / f"{s}-*.parquet")
                                                      for s in ("validation", "test")})
    dd.save_to_disk(str(tmp_path / "disk"))
    r = sample("-p", positives, "-s", tmp_path / "disk", "--count", 4, "--seed", 0, "-o", tmp_path / "ds")
    assert r.exit_code == 4 and len(r.output.strip().splitlines()) == 1, r.output
    assert "has no train split" in r.output and "?split=NAME" in r.output
    r = sample("-p", positives, "-s", f"{tmp_path / 'disk'}?split=validation", "--count", 4, "--seed", 0,
               "-o", tmp_path / "ok")
    assert r.exit_code == 0, r.output


def test_converted_parquet_with_several_configs_and_no_default_is_refused(positives, tmp_path):
    # refs/convert/parquet layout, CONFIG/SPLIT/0000.parquet: two subsets, neither called "default"
    conv = tmp_path / "conv"
    for config, names, seed in (("animals", ["cat_x", "dog_x"], 1), ("tools", ["ladder", "basket"], 2)):
        src = make_parquet_repo(tmp_path / config, names, 6, seed=seed)
        (conv / config / "train").mkdir(parents=True)
        next((src / "data").glob("*.parquet")).rename(conv / config / "train" / "0000.parquet")
    r = sample("-p", positives, "-s", conv, "--count", 4, "--seed", 0, "-o", tmp_path / "ds")
    assert r.exit_code == 4 and len(r.output.strip().splitlines()) == 1, r.output
    assert "configs animals, tools and none is the default" in r.output and "?config=NAME" in r.output
    r = sample("-p", positives, "-s", f"{conv}?config=tools", "--count", 4, "--seed", 0, "-o", tmp_path / "ok")
    assert r.exit_code == 0, r.output
    assert {x["label"] for x in read_manifest(tmp_path / "ok") if x["role"] == "negative"} <= {"ladder", "basket"}
