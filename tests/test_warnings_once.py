"""The quickstart's warning (`raccoon-voc` read as `raccoon`) is printed once: on stderr before the
draw when the run shows progress, in the summary when it is --quiet; negmine.json keeps it either way.
The dry run's plan also shows it as the note under the concept it explains."""

import json
import shutil

import pytest
from click.testing import CliRunner

from conftest import SHARED
from negmine.cli import cli

WARNING = "positive name 'raccoon-voc' is read as 'raccoon'"


@pytest.fixture
def quickstart(tmp_path):
    """The quickstart's shape, smaller: raccoon-voc/images (one class, named by the parent folder),
    and a pool of ImageNet photos named by wnid."""
    pos = tmp_path / "raccoon-voc" / "images"
    pos.mkdir(parents=True)
    for f in sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[:10]:
        shutil.copy(f, pos / f.name)
    pool = tmp_path / "pool"
    pool.mkdir()
    for f in sorted((SHARED / "imagenet-500" / "images").glob("n03*.JPEG"))[:20]:
        shutil.copy(f, pool / f.name)
    return pos, pool


@pytest.mark.parametrize("extra", [[], ["--quiet"], ["--dry-run"], ["--dry-run", "--quiet"]])
def test_each_warning_is_printed_once(quickstart, tmp_path, extra):
    pos, pool = quickstart
    out = tmp_path / "ds"
    r = CliRunner().invoke(cli, ["sample", "--workers", "1", "-p", str(pos), "-s", str(pool), "--ratio", "1",
                                 "--seed", "0", "-o", str(out), *extra])
    assert r.exit_code == 0, r.output
    if "--dry-run" not in extra:
        assert r.output.count(WARNING) == 1, r.output                      # stdout and stderr together
    else:                           # the plan's account of the name, and the warning unless quiet
        assert r.output.count(f"  note: {WARNING}") == 1, r.output
        assert r.output.count(f"warning: {WARNING}") == ("--quiet" not in extra), r.output
    if "--quiet" not in extra:
        assert WARNING in r.stderr                              # said before the draw
    if "--dry-run" not in extra:
        assert sum(WARNING in w for w in json.loads((out / "negmine.json").read_text())["warnings"]) == 1
