"""Synthetic negatives that teach a shortcut: the table bench/shortcut.py measured chooses the
default fills and share, and a run whose cutouts the table found harmful (one fill, a large share)
says so in one line, with the measured figure, on stderr, in negmine.json and in the report."""

import json
import shutil

from click.testing import CliRunner

from conftest import SHARED, read_manifest
from negmine.cli import cli
from negmine.synthetic.shortcuts import (DEFAULT_FILLS, DEFAULT_SHARE, MEASURED, REAL_ONLY, RISK_MARGIN,
                                         measured, shortcut_warning)

FILLS = ("noise", "blur", "mean", "black", "tile", "inpaint")

RACCOONS = SHARED / "raccoon-voc" / "images"
VOC = SHARED / "raccoon-voc" / "annotations"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def raccoons(tmp_path, n):
    root = tmp_path / "pos"
    (root / "raccoon").mkdir(parents=True)
    for p in sorted(RACCOONS.glob("*.jpg"))[:n]:
        shutil.copy(p, root / "raccoon" / p.name)
    return root


def report_html(out) -> str:
    return (out / "report" / "report.html").read_text()


def test_one_fill_synthetic_run_warns_with_the_measured_figure_everywhere(tmp_path):
    pos, out = raccoons(tmp_path, 12), tmp_path / "ds"
    figure = f"{MEASURED['black'][1.0][0]}%"
    r = invoke("sample", "-p", pos, "--boxes", VOC, "--synthetic", 1, "--cutout-fill", "black", "--seed", 1,
               "--workers", 1, "--report", "-o", out)
    assert r.exit_code == 0, r.output
    said = [line for line in r.stderr.splitlines() if "bench/shortcut.py" in line]
    assert len(said) == 1 and said[0].startswith("warning: --synthetic 1 with one fill (black): ")
    assert f"call {figure} of real non-raccoon photos positive" in said[0]
    assert "bench/shortcut.py" not in r.stdout                   # said once, not again in the summary
    line = said[0].removeprefix("warning: ")
    assert line in json.loads((out / "negmine.json").read_text())["warnings"]
    assert line in report_html(out)
    plan = json.loads(invoke("sample", "-p", pos, "--boxes", VOC, "--synthetic", 1, "--cutout-fill", "black",
                             "--seed", 1, "-o", tmp_path / "dry", "--dry-run", "--json").stdout)
    assert line in plan["warnings"]


def test_default_fills_and_share_say_nothing_and_are_what_the_run_records(tmp_path, pool):
    pos, out = raccoons(tmp_path, 12), tmp_path / "ds"
    # `--synthetic` without a value: the table's share, with the table's fills
    r = invoke("sample", "-p", pos, "-s", pool, "--boxes", VOC, "--synthetic", "--seed", 1, "--workers", 1,
               "--report", "-o", out)
    assert r.exit_code == 0, r.output
    assert "bench/shortcut.py" not in r.output
    record = json.loads((out / "negmine.json").read_text())
    assert record["options"]["synthetic"] == DEFAULT_SHARE
    assert tuple(record["options"]["cutout_fills"]) == DEFAULT_FILLS
    assert not any("bench/shortcut.py" in w for w in record["warnings"])
    assert "bench/shortcut.py" not in report_html(out)
    cut = [x for x in read_manifest(out) if x["role"] == "negative" and x["cutout"]]
    assert cut and {x["cutout"]["fill"] for x in cut} <= set(DEFAULT_FILLS)
    assert len(cut) == round(DEFAULT_SHARE * 12)


def test_the_recipe_mix_says_nothing_at_a_fifth_and_warns_as_every_negative(tmp_path, pool):
    pos = raccoons(tmp_path, 12)
    mix = ["--cutout-fill", "tile", "--cutout-fill", "blur", "--cutout-fill", "inpaint"]

    def plan(share):
        r = invoke("sample", "-p", pos, "-s", pool, "--boxes", VOC, "--synthetic", share, *mix, "--seed", 1,
                   "-o", tmp_path / "x", "--dry-run", "--json")
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["warnings"]

    assert plan(0.2) == []                                       # the dog recipe's mix and share
    said = plan(1)                                               # measured too: 63% as every negative
    assert len(said) == 1 and said[0].startswith("--synthetic 1 with fills tile+blur+inpaint: ")
    assert f"{MEASURED['tile+blur+inpaint'][1.0][0]}% of real" in said[0]


def test_cutout_with_one_risky_fill_warns_and_the_default_does_not(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    for p in sorted(RACCOONS.glob("*.jpg"))[:4]:
        shutil.copy(p, images / p.name)
    out = tmp_path / "noise"
    # white noise: the fill issue 25 measured (81% there, 86% here); matched noise, the default kind, is not it
    r = invoke("cutout", "--images", images, "--boxes", VOC, "--fill", "noise", "--noise", "uniform", "--seed", 1,
               "--workers", 1, "--report", "-o", out)
    assert r.exit_code == 0, r.output
    said = [line for line in r.stderr.splitlines() if "bench/shortcut.py" in line]
    assert len(said) == 1 and said[0].startswith("warning: negmine cutout with one fill (noise, --noise uniform): ")
    assert f"{MEASURED['noise-uniform'][1.0][0]}% of real non-raccoon photos" in said[0]
    assert "bench/shortcut.py" not in r.stdout                   # said once
    line = said[0].removeprefix("warning: ")
    assert line in json.loads((out / "negmine.json").read_text())["warnings"] and line in report_html(out)
    for args in ([], ["--fill", "noise"]):                       # the default fills; matched noise alone
        default = tmp_path / f"default{len(args)}"
        r = invoke("cutout", "--images", images, "--boxes", VOC, *args, "--seed", 1, "--workers", 1, "-o", default)
        assert r.exit_code == 0 and "bench/shortcut.py" not in r.output
        assert not json.loads((default / "negmine.json").read_text())["warnings"]
    assert {x["fill"] for x in read_manifest(tmp_path / "default0")} <= set(DEFAULT_FILLS)


def test_the_defaults_are_what_the_table_chose():
    # fills: of the measured sets needing no OpenCV, the best AUC (real raccoons vs real photos)
    # averaged over the shares measured
    usable = {k: v for k, v in MEASURED.items() if "inpaint" not in k and "uniform" not in k}
    best = max(usable, key=lambda k: sum(a for _, a in usable[k].values()) / len(usable[k]))
    assert set(best.split("+")) == set(DEFAULT_FILLS)
    # share: the largest measured share at which the six fills, on average, stayed within the margin
    safe = [s for s in MEASURED["noise"]
            if sum(MEASURED[f][s][0] for f in FILLS) / len(FILLS) - REAL_ONLY[0] <= RISK_MARGIN]
    assert DEFAULT_SHARE == max(safe)
    assert shortcut_warning(DEFAULT_FILLS, 1.0, "--synthetic") is None


def test_the_rule_reads_the_row_at_or_below_the_share_and_needs_every_larger_share_to_agree():
    assert measured(["black"], 1.0) == (1.0, MEASURED["black"][1.0][0])
    assert measured(["black"], 0.7) == (0.5, MEASURED["black"][0.5][0])
    assert measured(["black"], 0.1) is None                       # below every share measured
    assert measured(["noise", "mean", "black"], 1.0) is None      # a mix nobody measured: no claim
    assert measured(["noise"], 1.0, noise="gaussian") is None
    assert shortcut_warning(["black", "black"], 1.0, "x") == shortcut_warning(["black"], 1.0, "x")
    # tile's 0.2 row alone is over the margin, its larger shares are not: one noisy row warns nobody
    assert MEASURED["tile"][0.2][0] - REAL_ONLY[0] > RISK_MARGIN and shortcut_warning(["tile"], 0.2, "x") is None


def test_a_few_uncuttable_photos_do_not_move_the_judged_share_to_a_smaller_row(tmp_path, pool):
    # raccoon-3's box covers 99% of it (over --max-cover 0.9): 19 of 20 can be cut, a realised share
    # of 0.95, yet the user asked for every negative a cutout: the 100% row is the one that applies
    pos = tmp_path / "pos"
    (pos / "raccoon").mkdir(parents=True)
    names = ["raccoon-3.jpg"] + [f"raccoon-{i}.jpg" for i in range(160, 179) if i not in (159,)]
    for name in names:
        shutil.copy(RACCOONS / name, pos / "raccoon" / name)

    def plan(*fills):
        r = invoke("sample", "-p", pos, "-s", pool, "--boxes", VOC, "--synthetic", 1,
                   *[a for f in fills for a in ("--cutout-fill", f)], "--seed", 1, "-o", tmp_path / "x",
                   "--dry-run", "--json")
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["warnings"]

    said = [w for w in plan("black") if "bench/shortcut.py" in w]
    assert len(said) == 1 and "(100% of the negatives cutouts)" in said[0]
    assert f"call {MEASURED['black'][1.0][0]}% of real" in said[0]
    said = [w for w in plan("tile", "blur", "inpaint") if "bench/shortcut.py" in w]   # 0.5 row would pass it
    assert len(said) == 1 and f"call {MEASURED['tile+blur+inpaint'][1.0][0]}% of real" in said[0]


def test_cutout_judges_any_fill_set_and_says_when_the_table_did_not_measure_it(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    for p in sorted(RACCOONS.glob("*.jpg"))[:2]:
        shutil.copy(p, images / p.name)

    def said(*fills):
        out = tmp_path / "-".join(fills)
        r = invoke("cutout", "--images", images, "--boxes", VOC, *[a for f in fills for a in ("--fill", f)],
                   "--seed", 1, "--workers", 1, "-o", out)
        assert r.exit_code == 0, r.output
        lines = [x.removeprefix("warning: ") for x in r.stderr.splitlines() if "bench/shortcut.py" in x]
        assert lines == [w for w in json.loads((out / "negmine.json").read_text())["warnings"]
                         if "bench/shortcut.py" in w]
        return lines

    mix = said("tile", "blur", "inpaint")                         # the three-fill mix as every negative
    assert len(mix) == 1 and mix[0].startswith("negmine cutout with fills tile+blur+inpaint: ")
    assert f"call {MEASURED['tile+blur+inpaint'][1.0][0]}% of real" in mix[0]
    unknown = said("mean", "black")
    assert len(unknown) == 1 and unknown[0].startswith("negmine cutout with fills mean+black: not measured")
    assert said("blur", "tile") == []                              # the default set, any order
    assert shortcut_warning(["noise"], 0.2, "x", noise="gaussian").startswith("x with one fill (noise, "
                                                                               "--noise gaussian): not measured")
