"""`negmine eval` (#26): a trainer's scores for the test split of a real negmine output, joined to its
manifest; the metrics checked against values computed by hand; the direction of a score; the
refusals (ambiguous columns, NaN, missing and extra images, one class); the files a person reads;
sweep members compared only on one test set; and `mine --from-eval` drawing from the confused
classes under the same exclusions."""

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SHARED, read_manifest, read_rejects
from negmine.cli import cli
from negmine.errors import NegmineError
from negmine.evaluation.metrics import binary, oscr

POOL_CLASSES = ("n03124043", "n03250847", "n03026506", "n04254680")   # cowboy boot, drumstick, stocking, soccer ball


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def build_pool(root: Path) -> Path:
    """A folder pool of 4 WordNet-labelled classes x 6 real ImageNet photos (copied at test time)."""
    photos = sorted((SHARED / "imagenet-500" / "images").glob("n04*.JPEG"))[:24]
    for k, f in enumerate(photos):
        d = root / POOL_CLASSES[k % 4]
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, d / f"img{k}.jpg")
    return root


def build_output(root: Path, seed: int = 1) -> Path:
    """A negmine output: dog and raccoon positives (real photos), 16 negatives, half of it in test."""
    photos = sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))
    pos = root / "positives"
    for cls, files in (("raccoon", photos[:10]), ("dog", photos[20:30])):
        (pos / cls).mkdir(parents=True)
        for f in files:
            shutil.copy(f, pos / cls / f.name)
    out = root / "out"
    r = invoke("sample", "-p", pos, "-s", build_pool(root / "pool"), "--count", 16, "--split", "0.5,0,0.5",
               "--seed", seed, "--workers", 1, "-q", "-o", out)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> Path:
    return build_output(tmp_path_factory.mktemp("eval"))


def split_rows(out: Path) -> list[dict]:
    return [r for r in read_manifest(out) if r["split"] == "test"]


def confused_label(rows: list[dict]) -> str:
    """The source class with the most negatives in the test split (the one the scores below confuse)."""
    labels = [r["label"] for r in rows if r["role"] == "negative"]
    return max(sorted(set(labels)), key=labels.count)


def softmax_rows(rows: list[dict], confused: str) -> list[tuple[str, float, float, float]]:
    """(path, p_dog, p_other, p_raccoon): positives likely their class (p_other 0.05 to ~0.35), the
    `confused` class's negatives scored as dogs (p_other ~0.2: above some positives), the other
    negatives as other; every score distinct."""
    out = []
    for k, r in enumerate(rows):
        e = 0.001 * k
        if r["role"] == "positive":
            po = 0.05 + 0.015 * k
            p = (0.9 - po, po, 0.1) if r["class"] == "dog" else (0.1, po, 0.9 - po)
        elif r["label"] == confused:
            p = (0.6 - e, 0.2 + e, 0.2)
        else:
            p = (0.1, 0.8 - e, 0.1 + e)
        out.append((r["path"], *p))
    return out


def write_csv(path: Path, header: str, lines) -> Path:
    path.write_text(header + "\n" + "".join(",".join(map(str, x)) + "\n" for x in lines))
    return path


def pairwise_auroc(pos: list[float], neg: list[float]) -> float:
    """AUROC by its definition: P(positive score > negative score) + P(tie) / 2."""
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


# ---- the metrics, by hand ------------------------------------------------------------------------

def test_binary_metrics_match_hand_computed_values_with_a_tie():
    # positives 0.9, 0.8, 0.3; negatives 0.7, 0.3, 0.1 (a positive and a negative tie at 0.3)
    y = np.array([1, 1, 0, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.3, 0.3, 0.1])
    m = binary(y, s, target_fpr=0.34)
    assert m["auroc"] == pytest.approx(7.5 / 9)                 # 7 wins + a tie counted half, of 9 pairs
    assert m["aupr_in"] == pytest.approx(1 / 3 + 1 / 3 + 1 / 3 * 3 / 5)        # recall steps x precision
    assert m["aupr_out"] == pytest.approx(1 / 3 + 1 / 3 * 2 / 3 + 1 / 3 * 3 / 4)
    assert m["fpr_at_95tpr"] == pytest.approx(2 / 3) and m["threshold_at_95tpr"] == 0.3   # all 3 positives: 0.3
    assert m["target"]["threshold"] == 0.7                        # FPR 1/3 <= 0.34, TPR 2/3
    assert m["target"]["tpr"] == pytest.approx(2 / 3) and m["target"]["fpr"] == pytest.approx(1 / 3)
    strict = binary(y, s, target_fpr=0.01)
    assert strict["target"]["tpr"] == pytest.approx(2 / 3) and strict["target"]["fpr"] == 0.0


def test_all_scores_tied_is_chance_not_a_perfect_score():
    m = binary(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.5, 0.5]), 0.01)
    assert m["auroc"] == 0.5 and m["fpr_at_95tpr"] == 1.0
    assert m["target"]["threshold"] is None and m["target"]["tpr"] == 0.0      # only "nothing positive" meets 1%


def test_oscr_matches_a_hand_computed_area():
    y = np.array([1, 1, 0, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.3, 0.3, 0.1])
    # the positive at 0.8 is classified wrong: CCR steps 1/3 (FPR 0..1/3), 1/3->2/3 (1/3..2/3), 2/3 (2/3..1)
    assert oscr(y, s, np.array([1, 0, 0, 0, 1, 0])) == pytest.approx(1 / 9 + 1 / 6 + 2 / 9)
    assert oscr(y, s, np.ones(6, bool)) == pytest.approx(binary(y, s, 0.01)["auroc"])   # all right: AUROC


def test_one_class_only_is_refused_not_a_number():
    with pytest.raises(NegmineError, match="all negatives"):
        binary(np.array([0, 0, 0]), np.array([0.1, 0.2, 0.3]), 0.01)


# ---- the command ---------------------------------------------------------------------------------

def test_per_class_softmax_scores_name_the_confused_source_class(tmp_path, output):
    rows = split_rows(output)
    confused = confused_label(rows)
    scores = write_csv(tmp_path / "s.csv", "path,dog,other,raccoon", softmax_rows(rows, confused))
    r = invoke("eval", output, "--scores", scores, "-o", tmp_path / "ev")
    assert r.exit_code == 0, r.output
    assert "positive score = 1 - other" in r.output
    res = json.loads((tmp_path / "ev" / "eval.json").read_text())
    pos = [1 - p[2] for p, row in zip(softmax_rows(rows, confused), rows) if row["role"] == "positive"]
    neg = [1 - p[2] for p, row in zip(softmax_rows(rows, confused), rows) if row["role"] == "negative"]
    assert res["positives_vs_other"]["auroc"] == pytest.approx(pairwise_auroc(pos, neg))
    assert res["counts"] == {"scored": len(rows), "split_images": len(rows), "missing": 0, "extra": 0,
                             "other_split": 0, "positives": len(pos), "negatives": len(neg)}
    top = res["false_positives"]["classes"][0]
    n_confused = sum(r["role"] == "negative" and r["label"] == confused for r in rows)
    assert top["label"] == confused and top["fp_95tpr"] == n_confused and top["negatives"] == n_confused
    assert all(c["fp_95tpr"] == 0 for c in res["false_positives"]["classes"][1:])
    assert top["wordnet"].endswith(f"({confused})") and top["path"].endswith("<- dog")
    assert top["nearest_positive"] == "dog"
    assert confused in r.output.split("false positives by source class")[1].splitlines()[2]
    # per class one-vs-rest, OSCR: every positive is classified right, so OSCR is the AUROC
    assert set(res["per_class"]) == {"dog", "raccoon"}
    assert res["oscr"] == pytest.approx(res["positives_vs_other"]["auroc"])
    assert res["worst"]["negatives"][0]["label"] == confused
    # confusion: argmax takes the confused negatives for dogs; at the 1% threshold (no negative above
    # it) a positive is called its class only when it scores above every negative
    argmax = res["confusion"]["argmax"]
    assert argmax["rows"] == argmax["columns"] == ["dog", "other", "raccoon"]
    assert argmax["counts"][1] == [n_confused, len(neg) - n_confused, 0]
    at = res["confusion"]["at_threshold"]
    top_neg = max(neg)
    for k, cls in ((0, "dog"), (2, "raccoon")):
        scored = [1 - p[2] for p, row in zip(softmax_rows(rows, confused), rows) if row["class"] == cls]
        assert at["counts"][k][k] == sum(x > top_neg for x in scored) and at["counts"][k][1] == sum(x <= top_neg for x in scored)
    assert at["counts"][1] == [0, len(neg), 0]
    html = (tmp_path / "ev" / "index.html").read_text()
    assert "data:image/png;base64," in html and confused in html and "<script" not in html
    for png in ("roc.png", "histogram.png", "fp_classes.png"):
        assert (tmp_path / "ev" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (output / "eval").exists()                         # -o was given: nothing in OUT


def test_json_and_the_default_folder(tmp_path, output):
    out = tmp_path / "copy"
    shutil.copytree(output, out)
    rows = split_rows(out)
    scores = write_csv(tmp_path / "s.csv", "path,dog,other,raccoon", softmax_rows(rows, confused_label(rows)))
    r = invoke("eval", out, "--scores", scores, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["dir"] == str(out / "eval") and (out / "eval" / "eval.json").is_file()
    assert data["positives_vs_other"]["auroc"] == json.loads((out / "eval" / "eval.json").read_text())[
        "positives_vs_other"]["auroc"]


def test_direction_other_probabilities_and_the_inverted_trap(tmp_path, output):
    rows = split_rows(output)
    soft = softmax_rows(rows, confused_label(rows))
    full = json.loads(invoke("eval", output, "--scores", write_csv(tmp_path / "a.csv", "path,dog,other,raccoon", soft),
                             "-o", tmp_path / "a", "--json").output)["positives_vs_other"]["auroc"]
    # one column named like the negative class: read as an "other" probability, and said
    r = invoke("eval", output, "--scores", write_csv(tmp_path / "b.csv", "path,other", [(p[0], p[2]) for p in soft]),
               "-o", tmp_path / "b")
    assert r.exit_code == 0, r.output
    assert "positive score = -other (higher other = more like other)" in r.output
    assert json.loads((tmp_path / "b" / "eval.json").read_text())["positives_vs_other"]["auroc"] == pytest.approx(full)
    # the same numbers under a neutral name: read as "higher = positive", inverted, and warned about
    c = write_csv(tmp_path / "c.csv", "file,score", [(p[0], p[2]) for p in soft])
    r = invoke("eval", output, "--scores", c, "-o", tmp_path / "c")
    assert r.exit_code == 0, r.output
    assert "is below 0.5" in r.output and "--higher-is other" in r.output
    assert json.loads((tmp_path / "c" / "eval.json").read_text())["positives_vs_other"]["auroc"] == pytest.approx(1 - full)
    r = invoke("eval", output, "--scores", c, "--higher-is", "other", "-o", tmp_path / "d", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["positives_vs_other"]["auroc"] == pytest.approx(full)
    assert json.loads(r.output)["scores"]["higher_is"] == "other"


def test_absolute_paths_under_the_output_are_joined(tmp_path, output):
    rows = split_rows(output)
    soft = [(str((output / p[0]).resolve()), *p[1:]) for p in softmax_rows(rows, confused_label(rows))]
    r = invoke("eval", output, "--scores", write_csv(tmp_path / "s.csv", "filepath,dog,other,raccoon", soft),
               "-o", tmp_path / "ev", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["counts"]["scored"] == len(rows)


@pytest.mark.parametrize("header, message", [
    ("path,file,dog,other,raccoon", r"2 path columns \(path, file\).*--path-column"),
    ("path,score,dog,other,raccoon", "both a score column.*--score-column"),
    ("path,prob,score", "2 score columns.*--score-column"),
    ("path,dog,other", "none for raccoon.*--score-column"),
    ("path,x1,x2", "no score column.*--score-column"),
])
def test_ambiguous_or_missing_columns_are_refused_in_one_line(tmp_path, output, header, message):
    rows = split_rows(output)
    n = len(header.split(",")) - 1
    scores = write_csv(tmp_path / "s.csv", header, [(r["path"], *[0.5] * n) for r in rows])
    r = invoke("eval", output, "--scores", scores, "-o", tmp_path / "ev")
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1, r.output
    assert re.search(message, r.output), r.output
    assert not (tmp_path / "ev").exists()


def test_nan_missing_extra_and_one_class_are_refused_or_counted(tmp_path, output):
    rows = split_rows(output)
    soft = softmax_rows(rows, confused_label(rows))
    header = "path,dog,other,raccoon"
    nan = write_csv(tmp_path / "nan.csv", header, [soft[0][:2] + ("nan",) + soft[0][3:], *soft[1:]])
    r = invoke("eval", output, "--scores", nan, "-o", tmp_path / "ev")
    assert r.exit_code == 1 and "1 image(s) of split test have a missing, non-numeric or infinite score" in r.output
    empty = write_csv(tmp_path / "empty.csv", header, [soft[0][:2] + ("",) + soft[0][3:], *soft[1:]])
    assert "non-numeric" in invoke("eval", output, "--scores", empty, "-o", tmp_path / "ev").output

    missing = write_csv(tmp_path / "missing.csv", header, soft[1:])
    r = invoke("eval", output, "--scores", missing, "-o", tmp_path / "ev")
    assert r.exit_code == 1 and f"1 of the {len(rows)} images of split test have no score" in r.output
    r = invoke("eval", output, "--scores", missing, "--allow-missing", "-o", tmp_path / "ev", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["counts"]["missing"] == 1 and data["counts"]["scored"] == len(rows) - 1
    assert any("1 images of the split had no score" in w for w in data["warnings"])

    extra = write_csv(tmp_path / "extra.csv", header, [*soft, ("test/other/not-there.jpg", 0.1, 0.8, 0.1)])
    r = invoke("eval", output, "--scores", extra, "-o", tmp_path / "ev")
    assert r.exit_code == 1 and "1 row(s) name images not in" in r.output and "--allow-extra" in r.output
    r = invoke("eval", output, "--scores", extra, "--allow-extra", "-o", tmp_path / "ev", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["counts"]["extra"] == 1

    train = [r for r in read_manifest(output) if r["split"] == "train"][:2]
    other_split = write_csv(tmp_path / "train.csv", header, [*soft, *((t["path"], 0.3, 0.4, 0.3) for t in train)])
    r = invoke("eval", output, "--scores", other_split, "-o", tmp_path / "ev", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["counts"]["other_split"] == 2

    twice = write_csv(tmp_path / "twice.csv", header, [*soft, soft[0]])
    assert "appears twice" in invoke("eval", output, "--scores", twice, "-o", tmp_path / "ev").output

    negs = [p for p, row in zip(soft, rows) if row["role"] == "negative"]
    only = write_csv(tmp_path / "only.csv", header, negs)
    r = invoke("eval", output, "--scores", only, "--allow-missing", "-o", tmp_path / "ev", "--json")
    assert r.exit_code == 1 and "all negatives" in json.loads(r.output.splitlines()[0])["error"]   # stdout, then stderr

    r = invoke("eval", output, "--scores", write_csv(tmp_path / "v.csv", header, soft), "--split", "val")
    assert r.exit_code == 1 and "no images in split 'val'" in r.output


def test_a_missing_extra_is_named(tmp_path, output, monkeypatch):
    rows = split_rows(output)
    scores = write_csv(tmp_path / "s.csv", "path,dog,other,raccoon", softmax_rows(rows, confused_label(rows)))
    monkeypatch.setitem(sys.modules, "sklearn", None)
    r = invoke("eval", output, "--scores", scores, "-o", tmp_path / "ev")
    assert r.exit_code == 1 and "pip install 'negmine[eval]'" in r.output and "scikit-learn" in r.output
    monkeypatch.setitem(sys.modules, "matplotlib", None)          # both missing: both named, in one line
    r = invoke("eval", output, "--scores", scores, "-o", tmp_path / "ev")
    assert r.exit_code == 1 and "needs scikit-learn and matplotlib" in r.output, r.output


# ---- sweep members --------------------------------------------------------------------------------

def test_members_on_one_test_set_are_compared_and_different_test_sets_refused(tmp_path, output):
    sweep = tmp_path / "sweep"
    for name in ("ratio-1", "ratio-2"):
        shutil.copytree(output, sweep / name)
    rows = split_rows(output)
    confused = confused_label(rows)
    good = write_csv(tmp_path / "a.csv", "path,dog,other,raccoon", softmax_rows(rows, confused))
    flat = write_csv(tmp_path / "b.csv", "path,other", [(r["path"], 0.5) for r in rows])
    r = invoke("eval", sweep, "--scores", f"ratio-1={good}", "--scores", f"ratio-2={flat}")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    table = {ln.split()[0]: ln.split() for ln in lines if ln.startswith("ratio-")}
    soft = softmax_rows(rows, confused)
    auroc = pairwise_auroc([1 - p[2] for p, x in zip(soft, rows) if x["role"] == "positive"],
                           [1 - p[2] for p, x in zip(soft, rows) if x["role"] == "negative"])
    assert table["ratio-2"][1] == "0.500" and table["ratio-1"][1] == f"{auroc:.3f}"
    part = write_csv(tmp_path / "part.csv", "path,dog,other,raccoon", softmax_rows(rows, confused)[:-2])
    r = invoke("eval", sweep, "--scores", f"ratio-1={good}", "--scores", f"ratio-2={part}", "--allow-missing",
               "-o", tmp_path / "cmp2")             # each member on other images: not comparable, said
    assert r.exit_code == 1 and "scored on different images" in r.output, r.output
    assert f"ratio-1: {len(rows)}, ratio-2: {len(rows) - 2}" in r.output
    member = json.loads((sweep / "eval" / "ratio-1" / "eval.json").read_text())
    name = next(c["wordnet"] for c in member["false_positives"]["classes"] if c["label"] == confused)
    assert name.split(" (n")[0] in " ".join(table["ratio-1"])        # named as WordNet names it, not by wnid
    data = json.loads((sweep / "eval" / "eval.json").read_text())
    assert set(data["members"]) == {"ratio-1", "ratio-2"}
    assert (sweep / "eval" / "ratio-1" / "eval.json").is_file() and (sweep / "eval" / "index.html").is_file()

    other = build_output(tmp_path / "other", seed=7)
    shutil.copytree(other, sweep / "ratio-4")
    r = invoke("eval", sweep, "--scores", f"ratio-1={good}", "--scores", f"ratio-4={good}", "-o", tmp_path / "x")
    assert r.exit_code == 1 and "ratio-1 and ratio-4 do not share the test set" in r.output, r.output
    assert not (tmp_path / "x").exists()
    r = invoke("eval", sweep, "--scores", str(good), "--scores", str(flat))
    assert r.exit_code == 1 and "NAME=FILE" in r.output


# ---- mine --from-eval ------------------------------------------------------------------------------

def test_mine_from_eval_draws_the_confused_classes_under_the_same_exclusions(tmp_path, output):
    rows = split_rows(output)
    negs = [r for r in rows if r["role"] == "negative"]
    first = confused_label(rows)
    drawn = [r["label"] for r in read_manifest(output) if r["role"] == "negative"]
    # a second confused class with pool images left beyond those the evaluated output holds
    second = next(lab for lab in POOL_CLASSES if lab != first and any(r["label"] == lab for r in negs)
                  and drawn.count(lab) < 6)
    scores = []
    for k, r in enumerate(rows):           # `first` and `second` scored as dogs, the rest as other
        hot = r["role"] == "positive" or r.get("label") in (first, second)
        scores.append((r["path"], 0.8 - 0.001 * k if hot else 0.1, 0.1 if hot else 0.8, 0.1))
    ev = tmp_path / "ev"
    assert invoke("eval", output, "--scores", write_csv(tmp_path / "s.csv", "path,dog,other,raccoon", scores),
                  "-o", ev).exit_code == 0
    weights = {c["label"]: c["fp_95tpr"] for c in json.loads((ev / "eval.json").read_text())["false_positives"]["classes"]}
    assert weights[first] > 0 and weights[second] > 0
    pool = output.parent / "pool"
    # `-x` the first confused class: it stays excluded, and is said
    left = 6 - drawn.count(second)          # every pool image of `second` the evaluated output does not hold
    r = invoke("mine", "--from-eval", ev / "eval.json", "--pool", pool, "--count", left, "--workers", 1, "-q",
               "-x", first, "-o", tmp_path / "more")
    assert r.exit_code == 0, r.output
    assert f"note: confused class {first} stays excluded" in r.output
    kept = read_manifest(tmp_path / "more")
    assert len(kept) == left and {k["label"] for k in kept} == {second}
    # nothing already in the evaluated output is drawn again: its images of `second` are each refused
    evaluated = {r["file"] for r in read_manifest(output) if r["role"] == "negative"}
    assert not {k["file"] for k in kept} & evaluated
    again = [x["id"] for x in read_rejects(tmp_path / "more") if x["reason"] == "already in the evaluated output"]
    assert set(again) <= evaluated
    r = invoke("mine", "--from-eval", ev / "eval.json", "--pool", pool, "--count", left + 1, "--workers", 1, "-q",
               "-x", first, "-o", tmp_path / "more2")
    assert r.exit_code == 3 and f"only {left} candidates of the confused classes pass the filters" in r.output
    assert f"a --count of at most {left}" in r.output and "already in the evaluated output" in r.output, r.output
    assert all(x["id"].startswith(first) for x in read_rejects(tmp_path / "more") if "overlaps" in x["reason"])
    record = json.loads((tmp_path / "more" / "negmine.json").read_text())
    assert record["from_eval"]["excluded"][0]["label"] == first

    # without -x: both classes, each in proportion; an output's rule still keeps the positives' classes out
    r = invoke("mine", "--from-eval", ev, "--pool", pool, "--count", 3, "--workers", 1, "-q", "-o", tmp_path / "m2",
               "--json")
    assert r.exit_code == 0, r.output
    assert {k["label"] for k in read_manifest(tmp_path / "m2")} <= {first, second}

    # refusals: both inputs, --skip-top, an eval with no false positive
    r = invoke("mine", "--from-eval", ev, "--scores", tmp_path / "s.csv", "--pool", pool, "--count", 1, "-o", tmp_path / "z")
    assert r.exit_code == 1 and "one of them" in r.output
    r = invoke("mine", "--from-eval", ev, "--skip-top", 0.1, "--pool", pool, "--count", 1, "-o", tmp_path / "z")
    assert r.exit_code == 1 and "--skip-top" in r.output
    clean = write_csv(tmp_path / "clean.csv", "path,other", [(r["path"], 0.0 if r["role"] == "positive" else 1.0)
                                                             for r in rows])
    assert invoke("eval", output, "--scores", clean, "-o", tmp_path / "ev2").exit_code == 0
    r = invoke("mine", "--from-eval", tmp_path / "ev2" / "eval.json", "--pool", pool, "--count", 1, "-o", tmp_path / "z")
    assert r.exit_code == 1 and "no source class has a false positive" in r.output


def test_jsonl_and_parquet_read_as_csv(tmp_path, output):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = split_rows(output)
    soft = softmax_rows(rows, confused_label(rows))
    cols = {"path": [p[0] for p in soft], "dog": [p[1] for p in soft], "other": [p[2] for p in soft],
            "raccoon": [p[3] for p in soft]}
    (tmp_path / "s.jsonl").write_text("".join(json.dumps({k: v[i] for k, v in cols.items()}) + "\n"
                                              for i in range(len(soft))))
    pq.write_table(pa.table(cols), tmp_path / "s.parquet")
    write_csv(tmp_path / "s.csv", "path,dog,other,raccoon", soft)
    got = []
    for name in ("s.csv", "s.jsonl", "s.parquet"):
        r = invoke("eval", output, "--scores", tmp_path / name, "-o", tmp_path / name.replace(".", "-"), "--json")
        assert r.exit_code == 0, r.output
        got.append(json.loads(r.output)["positives_vs_other"])
    assert got[0]["auroc"] == got[1]["auroc"] == got[2]["auroc"]
    assert got[0]["target"] == got[1]["target"] == got[2]["target"]


def test_confused_classes_share_the_draw_by_their_false_positives_not_their_pool_size(tmp_path):
    from negmine.sampling.confused import Confused

    # class a: 3 false positives, 50 pool images; class b: 1 false positive, 500 pool images; c: none
    c = Confused(tmp_path / "eval.json", tmp_path, {"a": ("a", 3), "b": ("b", 1)}, [], {}, seed=5)
    labels = ["a"] * 50 + ["b"] * 500 + ["c"] * 100
    keys = c.draw_keys(labels, [f"id{i}" for i in range(len(labels))])
    assert len(keys) == 550                                      # class c is no candidate
    first = sorted(keys, key=lambda k: -keys[k])[:40]
    share_a = sum(int(k[2:]) < 50 for k in first) / 40
    assert 0.6 <= share_a <= 0.9                                 # ~3/4, though b has 10x the images
    assert c.absent(["a", "c"]) == ["b"]


# ---- the newcomer's findings: the wrong split, a member given as a path, stale files, the extra -----

def test_scores_of_another_split_name_that_split_and_no_useless_flag(tmp_path, output):
    rows = split_rows(output)
    scores = write_csv(tmp_path / "s.csv", "path,dog,other,raccoon", softmax_rows(rows, confused_label(rows)))
    for extra in ([], ["--allow-missing"]):          # --allow-missing once crashed (IndexError) on zero rows
        r = invoke("eval", output, "--scores", scores, "--split", "train", *extra, "-o", tmp_path / "ev")
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert r.output.strip().splitlines() == [
            f"Error: --scores {scores}: no score row is an image of split train: every score row ({len(rows)}) is an "
            "image of split test; --split test"]
        assert not (tmp_path / "ev").exists()


def test_a_member_given_as_a_path_is_written_under_dir_not_into_its_output(tmp_path, output):
    sweep = tmp_path / "sweep"
    shutil.copytree(output, sweep / "ratio-1")
    elsewhere = tmp_path / "elsewhere" / "v2"
    shutil.copytree(output, elsewhere)
    before = sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*"))
    rows = split_rows(output)
    scores = write_csv(tmp_path / "s.csv", "path,dog,other,raccoon", softmax_rows(rows, confused_label(rows)))
    r = invoke("eval", sweep, "--scores", f"ratio-1={scores}", "--scores", f"{elsewhere}={scores}")
    assert r.exit_code == 0, r.output
    assert sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*")) == before      # the dataset untouched
    assert (sweep / "eval" / "v2" / "eval.json").is_file() and (sweep / "eval" / "ratio-1" / "index.html").is_file()
    assert json.loads((sweep / "eval" / "eval.json").read_text())["members"]["v2"] == str(sweep / "eval" / "v2" / "eval.json")
    # --out into a negmine output is refused, nothing written there
    r = invoke("eval", sweep / "ratio-1", "--scores", scores, "-o", elsewhere)
    assert r.exit_code == 1 and "is a negmine output" in r.output
    assert sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*")) == before


def test_dir_holds_only_this_evaluation_and_files_eval_did_not_write_stay(tmp_path, output):
    sweep = tmp_path / "sweep"
    for name in ("ratio-1", "ratio-2", "ratio-3"):
        shutil.copytree(output, sweep / name)
    rows = split_rows(output)
    scores = write_csv(tmp_path / "s.csv", "path,dog,other,raccoon", softmax_rows(rows, confused_label(rows)))
    assert invoke("eval", sweep, "--scores", f"ratio-1={scores}", "--scores", f"ratio-2={scores}").exit_code == 0
    (sweep / "eval" / "notes.txt").write_text("mine")                       # not eval's: kept
    (sweep / "eval" / "ratio-2" / "mine.txt").write_text("mine")
    r = invoke("eval", sweep, "--scores", f"ratio-1={scores}", "--scores", f"ratio-3={scores}")
    assert r.exit_code == 0, r.output
    ev = sweep / "eval"
    assert sorted(p.name for p in ev.iterdir()) == ["eval.json", "index.html", "notes.txt", "ratio-1", "ratio-2",
                                                     "ratio-3", "roc.png"]
    assert [p.name for p in (ev / "ratio-2").iterdir()] == ["mine.txt"]     # eval's files of ratio-2 gone
    assert "ratio-2" not in (ev / "index.html").read_text()
    # a single evaluation into the same DIR replaces the comparison's member folders
    r = invoke("eval", sweep / "ratio-1", "--scores", scores, "-o", ev)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in ev.iterdir()) == ["eval.json", "fp_classes.png", "histogram.png", "index.html",
                                                     "notes.txt", "ratio-2", "roc.png"]


def test_mine_from_eval_on_the_pool_the_output_came_from_says_why_nothing_is_left(tmp_path, output):
    rows = split_rows(output)
    confused = confused_label(rows)
    ev = tmp_path / "ev"
    scores = write_csv(tmp_path / "s.csv", "path,dog,other,raccoon", softmax_rows(rows, confused))
    assert invoke("eval", output, "--scores", scores, "-o", ev).exit_code == 0
    # a pool holding exactly the evaluated output's negatives, by their labels: nothing new to draw
    pool = tmp_path / "same"
    negs = [r for r in read_manifest(output) if r["role"] == "negative"]
    for k, r in enumerate(negs):
        (pool / r["label"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(output / r["path"], pool / r["label"] / f"{k}.jpg")
    n = sum(r["label"] == confused for r in negs)
    r = invoke("mine", "--from-eval", ev / "eval.json", "--pool", pool, "--count", 2, "--workers", 1, "-q",
               "-o", tmp_path / "more")
    assert r.exit_code == 3, r.output
    line, = r.output.strip().splitlines()
    assert "scored" not in line and "only 0 candidates of the confused classes pass the filters, 2 asked" in line
    assert f"every image of the confused classes in the pool is already in the evaluated output ({n} of them)" in line
    assert "try --pool another pool" in line
    assert not (tmp_path / "more").exists()          # as a --scores shortfall: nothing written


def test_mine_from_eval_refuses_an_eval_of_an_output_since_replaced(tmp_path, output):
    """A sweep rerun with --overwrite replaces its members but not an earlier SWEEP/eval: that
    eval.json no longer measures the folder it names, and is not drawn from."""
    out = tmp_path / "ratio-1"
    shutil.copytree(output, out)
    rows = split_rows(out)
    scores = write_csv(tmp_path / "s.csv", "path,dog,other,raccoon", softmax_rows(rows, confused_label(rows)))
    assert invoke("eval", out, "--scores", scores, "-o", tmp_path / "ev").exit_code == 0
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(manifest.read_text().splitlines(keepends=True)[1:]))     # the member redrawn
    r = invoke("mine", "--from-eval", tmp_path / "ev" / "eval.json", "--pool", output.parent / "pool", "--count", 1,
               "--workers", 1, "-q", "-o", tmp_path / "more")
    assert r.exit_code == 1 and f"{out} changed since it was evaluated" in r.output, r.output
    assert not (tmp_path / "more").exists()
