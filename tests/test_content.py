"""`--content-check clip` end to end on a tiny randomly initialised CLIP built from a config here
(no weights can be downloaded): the scores are checked against the model's own forward pass, the
threshold against the positives' scores, and the draw against both. Says nothing about quality."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import SHARED, read_manifest
from negmine.cli import cli
from negmine.filters.content import PROMPT, ClipScorer, ContentCheck, neighbour_labels

import torch  # noqa: E402  (the test extra installs torch and transformers)
TERMS = ["raccoon"]


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A 2-layer CLIP (16-d, 32 px images) with random weights and a word-level tokenizer over the
    prompts' words, saved as a checkpoint folder: loaded the way a Hub checkpoint is."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
    for label in TERMS + neighbour_labels(TERMS) + ["a photo of a"]:
        for w in PROMPT.format(label).lower().replace(".", " .").split():
            if w not in words:
                words.append(w)
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="[BOS] $A [EOS]",
                                                       special_tokens=[("[BOS]", 2), ("[EOS]", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]",
                                   eos_token="[EOS]", model_max_length=32)
    cfg = CLIPConfig(text_config=dict(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, max_position_embeddings=32, bos_token_id=2, eos_token_id=3,
                                      pad_token_id=0),
                     vision_config=dict(image_size=32, patch_size=8, hidden_size=16, intermediate_size=32,
                                        num_hidden_layers=2, num_attention_heads=2),
                     projection_dim=16)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-clip")
    CLIPModel(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def forward_scores(folder, files, terms=TERMS, bank=None):
    """The positive softmax mass straight from CLIPModel's forward (logits_per_image), one image at a
    time and all prompts in one padded batch: independent of negmine's batching and embedding code."""
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(folder).eval()
    tok, proc = AutoTokenizer.from_pretrained(folder), AutoImageProcessor.from_pretrained(folder)
    prompts = [PROMPT.format(t) for t in terms + (neighbour_labels(terms) if bank is None else bank)]
    text = tok(prompts, padding=True, return_tensors="pt")
    out = []
    with torch.inference_mode():
        for f in files:
            px = proc(images=[Image.open(f).convert("RGB")], return_tensors="pt")["pixel_values"]
            logits = model(input_ids=text["input_ids"], attention_mask=text["attention_mask"],
                           pixel_values=px).logits_per_image
            out.append(float(logits.softmax(-1)[0, :len(terms)].sum()))
    return np.array(out)


def test_scores_match_the_models_forward_pass(tiny_clip):
    files = sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))[:5]
    bank = neighbour_labels(TERMS)[:25]            # small: batches of 2 over 26 prompts and 5 images
    check = ContentCheck(ClipScorer.load(str(tiny_clip), batch_size=2), TERMS, bank)
    scores, best = check.scores([Image.open(f).convert("RGB") for f in files])
    assert np.allclose(scores, forward_scores(tiny_clip, files, bank=bank), atol=1e-5)
    assert all(b in check.labels for b in best) and ((scores >= 0) & (scores <= 1)).all()


def test_threshold_is_a_quantile_of_the_positives_scores(tiny_clip):
    files = sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[:20]
    check = ContentCheck(ClipScorer.load(str(tiny_clip)), TERMS, neighbour_labels(TERMS))
    info = check.calibrate([Image.open(f).convert("RGB") for f in files])
    expect = np.quantile(forward_scores(tiny_clip, files), 0.1)
    assert check.threshold == pytest.approx(expect, abs=1e-5) and info["positives_scored"] == 20
    assert check.flags(check.threshold) and not check.flags(check.threshold - 1e-3)


def test_neighbour_bank_holds_neighbours_not_positives():
    bank = neighbour_labels(["dog"])
    assert "wolf" in bank and "fox" in bank                      # siblings under canine
    assert "beagle" not in bank and "dog" not in bank and len(bank) == len(set(bank)) <= 1000


def test_sample_drops_what_looks_like_a_positive_and_records_scores(tiny_clip, tmp_path):
    photos = sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))
    pos = tmp_path / "pos" / "raccoon"
    pos.mkdir(parents=True)
    for f in photos[:10]:
        shutil.copy(f, pos / f.name)
    pool = tmp_path / "pool"
    (pool / "box").mkdir(parents=True)
    for f in sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))[:30]:
        shutil.copy(f, pool / "box" / f.name)
    for f in photos[:10]:                      # re-encoded copies of the positives, under another label
        Image.open(f).save(pool / "box" / f"copy_{f.stem}.jpg", quality=85)
    out = tmp_path / "ds"
    r = invoke("sample", "-q", "--workers", "1", "-p", pos.parent, "-s", pool, "--count", 40, "--allow-short",
               "--hash", "none", "--seed", 2, "--content-check", "clip", "--content-model", tiny_clip, "-o", out,
               "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    info = summary["content_check"]
    assert info["threshold"] == pytest.approx(np.quantile(forward_scores(tiny_clip, sorted(pos.glob("*.jpg"))), 0.1),
                                              abs=1e-5)
    neg = [x for x in read_manifest(out) if x["role"] == "negative"]
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    flagged = [x for x in rejects if x["reason"].startswith("looks like a positive")]
    assert flagged and info["flagged"] == len(flagged) and len(neg) + len(flagged) == 40
    assert all(x["content_score"] >= info["threshold"] for x in flagged)
    assert all(x["content_score"] < info["threshold"] for x in neg)
    # the recorded scores are the model's: recomputed from the written files (kept byte for byte)
    some = neg[:4]
    assert np.allclose([x["content_score"] for x in some], forward_scores(tiny_clip, [out / x["path"] for x in some]),
                       atol=1e-5)
    assert json.loads((out / "negmine.json").read_text())["content_check"]["flagged"] == len(flagged)
    rep = json.loads(invoke("report", out, "--json").output)
    assert {x["file"] for x in rep["possible_positives"]["flagged"]} == {x["file"] for x in flagged}
    top = rep["possible_positives"]["highest_scoring_kept"]
    assert top[0]["content_score"] == max(x["content_score"] for x in neg)
    section = (out / "report" / "report.html").read_text().split('id="possible-positives"')[1].split("<h2>")[0]
    assert "Flagged by the content check" in section and f"{flagged[0]['content_score']:.3f}" in section


def test_a_model_that_cannot_load_is_one_line_and_exit_1(tmp_path):
    pos = tmp_path / "pos" / "raccoon"
    pos.mkdir(parents=True)
    shutil.copy(sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[0], pos / "a.jpg")
    pool = tmp_path / "pool" / "box"
    pool.mkdir(parents=True)
    shutil.copy(sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))[0], pool / "b.jpg")
    r = invoke("sample", "-q", "--workers", "1", "-p", pos.parent, "-s", pool.parent, "--count", 1, "--seed", 1,
               "--allow-missing-classes", "--content-check", "clip", "--content-model", tmp_path / "no-such-model",
               "-o", tmp_path / "ds")
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "cannot load the CLIP model" in r.output


def test_report_audits_an_existing_output(tiny_clip, tmp_path):
    photos = sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))
    pos = tmp_path / "pos" / "raccoon"
    pos.mkdir(parents=True)
    for f in photos[:8]:
        shutil.copy(f, pos / f.name)
    pool = tmp_path / "pool" / "box"
    pool.mkdir(parents=True)
    for f in sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))[:12]:
        shutil.copy(f, pool / f.name)
    out = tmp_path / "ds"
    assert invoke("sample", "-q", "--workers", "1", "-p", pos.parent, "-s", pool.parent, "--count", 12,
                  "--seed", 3, "-o", out).exit_code == 0
    before = (out / "manifest.jsonl").read_bytes()
    r = invoke("report", out, "--content-check", "clip", "--content-model", tiny_clip, "--json")
    assert r.exit_code == 0, r.output
    audit = json.loads(r.output)["possible_positives"]["audit"]
    rows = read_manifest(out)
    positives = [out / x["path"] for x in rows if x["role"] == "positive"]
    negatives = [x for x in rows if x["role"] == "negative"]
    assert audit["threshold"] == pytest.approx(np.quantile(forward_scores(tiny_clip, positives), 0.1), abs=1e-5)
    direct = dict(zip([x["path"] for x in negatives], forward_scores(tiny_clip, [out / x["path"] for x in negatives])))
    assert audit["scored"] == len(negatives)
    # negmine decodes large JPEGs at reduced size (draft), so a score may differ in the 6th decimal:
    # only images clear of the threshold by more than that are compared
    flagged, t = {x["path"] for x in audit["flagged"]}, audit["threshold"]
    assert {p for p, v in direct.items() if v > t + 1e-5} <= flagged
    assert not flagged & {p for p, v in direct.items() if v < t - 1e-5}
    assert flagged and len(flagged) < len(negatives)
    assert all(x["content_score"] == pytest.approx(direct[x["path"]], abs=1e-5) for x in audit["highest_scoring"])
    assert (out / "manifest.jsonl").read_bytes() == before                # an audit changes nothing


def test_dedup_audits_any_folder(tiny_clip, tmp_path):
    photos = sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))
    pos = tmp_path / "pos" / "raccoon"
    pos.mkdir(parents=True)
    for f in photos[:8]:
        shutil.copy(f, pos / f.name)
    folder = tmp_path / "other"
    folder.mkdir()
    files = sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))[:10]
    for f in files:
        shutil.copy(f, folder / f.name)
    (folder / "broken.jpg").write_bytes(b"not an image")
    r = invoke("dedup", folder, "-q", "--workers", 1, "--content-check", "clip", "-p", pos.parent,
               "--content-model", tiny_clip, "--report", tmp_path / "audit.json", "--json")
    assert r.exit_code == 0, r.output
    audit = json.loads(r.output)["content_audit"]
    assert json.loads((tmp_path / "audit.json").read_text())["content_audit"] == audit
    assert audit["scored"] == 10 and audit["unreadable"] == 1
    assert audit["threshold"] == pytest.approx(np.quantile(forward_scores(tiny_clip, sorted(pos.glob("*.jpg"))), 0.1),
                                               abs=1e-5)
    direct = dict(zip([f.name for f in files], forward_scores(tiny_clip, files)))
    t, flagged = audit["threshold"], {x["path"] for x in audit["flagged"]}
    assert {p for p, v in direct.items() if v > t + 1e-5} <= flagged          # see test_report_audits_...
    assert not flagged & {p for p, v in direct.items() if v < t - 1e-5}
    assert sorted(p.name for p in folder.iterdir()) == sorted([f.name for f in files] + ["broken.jpg"])  # untouched
    r = invoke("dedup", folder, "-q", "--content-check", "clip")
    assert r.exit_code == 1 and "--positives" in r.output and r.output.count("\n") == 1
