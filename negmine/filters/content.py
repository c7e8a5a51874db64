"""A look at the pixels: zero-shot CLIP scoring of candidate negatives (`--content-check clip`).

Optional extra (`pip install negmine[clip]`: torch and transformers). For pools whose labels say
nothing useful (or lie: a "muzzle" photo with a dog), each candidate negative is scored against
prompts for the positive concepts *and* a bank of neighbour labels from WordNet, NegLabel-style
(Jiang et al., "Negative Label Guided OOD Detection with Pretrained Vision-Language Models", ICLR
2024): the score is the softmax mass the positive prompts take among all prompts, so a candidate
counts as a positive only when a positive prompt beats every neighbour, not when it is merely
closer to "dog" than to nothing. The threshold is not a fixed number: it is a low quantile of the
same score over the user's own positives ("looks at least as much like a positive as the
least-positive-looking tenth of your positives").

Quality NOT measured here: the model weights come from the Hub at run time, and no machine this
was built on can reach the Hub; the tests run the whole path on a tiny randomly initialised CLIP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from negmine.errors import NegmineError

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
CALIBRATION_QUANTILE = 0.1       # of the positives' scores: the flagging threshold
BANK_SIZE = 1000                 # neighbour labels; NegLabel used ~10k, 1k keeps a CPU run bearable
PROMPT = "a photo of a {}."


def _require():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise NegmineError("--content-check clip needs torch and transformers: pip install 'negmine[clip]' "
                           f"({exc.name} is missing)") from None


class ClipScorer:
    """A CLIP model (transformers) that embeds texts and images, batched, on a GPU when there is one."""

    def __init__(self, model, tokenizer, processor, device: str | None = None, batch_size: int = 64):
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.processor = processor
        self.batch_size = batch_size
        self.logit_scale = float(model.logit_scale.exp().item())

    @classmethod
    def load(cls, name: str = DEFAULT_MODEL, device: str | None = None, batch_size: int = 64) -> "ClipScorer":
        """From a Hub id or a local folder saved with save_pretrained (model, tokenizer, image
        processor). Raises NegmineError when it cannot be loaded (offline and not cached, ...)."""
        _require()
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel
        from transformers.utils import logging

        logging.set_verbosity_error()          # one-line errors are ours; its warnings are not for users
        logging.disable_progress_bar()         # "Loading weights" on stderr: also under --quiet, and instant
        try:
            model = CLIPModel.from_pretrained(name)
            tokenizer = AutoTokenizer.from_pretrained(name)
            processor = AutoImageProcessor.from_pretrained(name)
        except Exception as exc:                       # OSError offline, ValueError for a non-CLIP repo, ...
            raise NegmineError(f"cannot load the CLIP model {name!r}: {str(exc).splitlines()[0]}") from None
        return cls(model, tokenizer, processor, device, batch_size)

    @staticmethod
    def _features(out):
        # transformers 5 returns an output object whose pooler_output is the projected embedding
        return out if hasattr(out, "norm") else out.pooler_output

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), d) float32, L2-normalised."""
        import torch

        out = []
        with torch.inference_mode():
            for a in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(list(texts[a:a + self.batch_size]), padding=True, truncation=True,
                                     return_tensors="pt").to(self.device)
                f = self._features(self.model.get_text_features(input_ids=enc["input_ids"],
                                                                attention_mask=enc.get("attention_mask")))
                out.append(torch.nn.functional.normalize(f.float(), dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def embed_images(self, images: list) -> np.ndarray:
        """(len(images), d) float32, L2-normalised; `images`: PIL images (RGB)."""
        import torch

        out = []
        with torch.inference_mode():
            for a in range(0, len(images), self.batch_size):
                px = self.processor(images=images[a:a + self.batch_size], return_tensors="pt")["pixel_values"]
                f = self._features(self.model.get_image_features(pixel_values=px.to(self.device)))
                out.append(torch.nn.functional.normalize(f.float(), dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def neighbour_labels(terms: Sequence[str], size: int = BANK_SIZE) -> list[str]:
    """A bank of labels that are *not* the positives: the ImageNet-1k classes the positives do not
    cover, then WordNet co-hyponyms of the positives' senses (siblings, then cousins), first lemma
    each, without repeats; deterministic, at most `size`."""
    from negmine.filters.concepts import UnplacedName, judge_classes, resolve_concepts
    from negmine.filters.taxonomy import Taxonomy

    tax = Taxonomy.load()
    try:
        concepts, _ = resolve_concepts(list(terms), tax)
    except UnplacedName:                    # a name WordNet cannot place has no neighbours; the rest do
        concepts = []
        for t in terms:
            try:
                concepts += resolve_concepts([t], tax)[0]
            except UnplacedName:
                pass
    positive = {s for c in concepts for s in c.synsets}
    inet = sorted(tax.imagenet)
    verdicts = judge_classes([tax.wnid(s) for s in inet], concepts, tax) if concepts else []
    covered = {s for s, v in zip(inet, verdicts) if v.excluded}
    names: list[str] = []
    seen = {t.lower() for t in terms}

    def add(s: int) -> None:
        name = tax.lemmas[s][0].replace("_", " ")
        if s not in positive and s not in covered and name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)

    # the positives' neighbours first (siblings, then cousins): the informative part of the bank
    for up in (1, 2):
        for c in concepts:
            for p in c.visual(tax):
                for a, d in sorted(tax.levels_up(p).items()):
                    if d == up:
                        for h in sorted(tax.hyponyms(a)):
                            if p not in tax.ancestors(h):
                                add(h)
    for s in inet:
        add(s)
    return names[:size]


@dataclass
class ContentCheck:
    """Scores images against the positive prompts and the neighbour bank; flags at `threshold`."""

    scorer: ClipScorer
    terms: list[str]
    bank: list[str]
    threshold: float | None = None
    quantile: float = CALIBRATION_QUANTILE

    def __post_init__(self):
        prompts = [PROMPT.format(t.replace("_", " ")) for t in self.terms] + [PROMPT.format(b) for b in self.bank]
        self._text = self.scorer.embed_texts(prompts)
        self.labels = list(self.terms) + list(self.bank)

    def scores(self, images: list) -> tuple[np.ndarray, list[str]]:
        """(positive softmax mass per image in [0, 1], the best-matching label per image)."""
        if not images:
            return np.zeros(0), []
        logits = self.scorer.logit_scale * self.scorer.embed_images(images) @ self._text.T
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return p[:, :len(self.terms)].sum(axis=1), [self.labels[i] for i in logits.argmax(axis=1)]

    def calibrate(self, positive_images: list) -> dict:
        """Set the threshold to the `quantile` of the positives' scores; returns what was measured."""
        if not positive_images:
            raise NegmineError("--content-check needs readable positives to calibrate its threshold")
        s, _ = self.scores(positive_images)
        self.threshold = float(np.quantile(s, self.quantile))
        return {"threshold": round(self.threshold, 6), "quantile": self.quantile, "positives_scored": len(s),
                "positive_scores": {"min": round(float(s.min()), 6), "median": round(float(np.median(s)), 6),
                                    "max": round(float(s.max()), 6)}}

    def flags(self, score: float) -> bool:
        return self.threshold is not None and score >= self.threshold


def open_rgb(data_or_path, max_side: int = 512):
    """A PIL RGB image, EXIF orientation applied, shrunk (draft) for speed; None when unreadable."""
    import io

    from PIL import Image, ImageOps

    try:
        im = Image.open(io.BytesIO(data_or_path) if isinstance(data_or_path, (bytes, bytearray)) else data_or_path)
        im.draft("RGB", (max_side, max_side))
        return ImageOps.exif_transpose(im).convert("RGB")
    except Exception:
        return None


class ContentFilter:
    """The draw filter: a candidate whose score reaches the threshold is dropped (and the draw moves
    on to the next of the plan); every scored candidate keeps its score (`c.content`)."""

    def __init__(self, check: ContentCheck, read_bytes):
        self.check_ = check
        self.read_bytes = read_bytes                  # candidate -> its encoded bytes (scratch)
        self.flagged = 0

    def prepare(self, cands) -> None:
        live = [c for c in cands if c.reason is None and c.tmp is not None and c.content is None]
        images, keep = [], []
        for c in live:
            im = open_rgb(self.read_bytes(c))
            if im is not None:
                images.append(im)
                keep.append(c)
        scores, best = self.check_.scores(images)
        for c, s, b in zip(keep, scores.tolist(), best):
            c.content = (round(s, 6), b)

    def check(self, c) -> str | None:
        if c.content is not None and self.check_.flags(c.content[0]):
            self.flagged += 1
            return (f"looks like a positive (content check: score {c.content[0]:.3f} >= "
                    f"{self.check_.threshold:.3f}, best label {c.content[1]!r})")
        return None

    def accept(self, c) -> None:
        pass


def audit_images(paths: Sequence, names: Sequence[str], positive_paths: Sequence, terms: Sequence[str],
                 model: str | None = None, top: int = 24, batch: int = 256) -> dict:
    """Score existing images (`paths`, shown as `names`) against `terms`, the threshold calibrated
    on `positive_paths`: which look like a positive. Nothing is changed. Unreadable images are
    skipped (`unreadable` counts them). Raises NegmineError without readable positives or when the
    model cannot load."""
    check = ContentCheck(ClipScorer.load(model or DEFAULT_MODEL), list(terms), neighbour_labels(list(terms)))
    info = check.calibrate([im for im in (open_rgb(p) for p in positive_paths) if im is not None])
    scored, unreadable = [], 0
    for a in range(0, len(paths), batch):              # bounded memory: `batch` decoded images at a time
        pairs = [(n, open_rgb(p)) for p, n in zip(paths[a:a + batch], names[a:a + batch])]
        unreadable += sum(im is None for _, im in pairs)
        pairs = [(n, im) for n, im in pairs if im is not None]
        s, best = check.scores([im for _, im in pairs])
        scored += [{"path": n, "content_score": round(float(x), 6), "content_label": b}
                   for (n, _), x, b in zip(pairs, s, best)]
    scored.sort(key=lambda x: -x["content_score"])
    return {"model": model or DEFAULT_MODEL, "prompts": len(check.labels), "terms": list(terms), **info,
            "scored": len(scored), "unreadable": unreadable,
            "flagged": [x for x in scored if check.flags(x["content_score"])], "highest_scoring": scored[:top]}
