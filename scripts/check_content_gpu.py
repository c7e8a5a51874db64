"""Device check for `--content-check`: on a GPU machine, ClipScorer picks CUDA by default and its
scores equal the CPU's (tiny random CLIP, no download). `PYTHONPATH=. python scripts/check_content_gpu.py`;
exit 0 when they agree within 1e-3. Not run by the tests (no GPU there)."""
import sys, tempfile, time
import numpy as np, torch
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast
from negmine.filters.content import PROMPT, ClipScorer, ContentCheck

print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
terms, bank = ["raccoon"], [f"thing {i}" for i in range(300)]
words = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"] + sorted({w for l in terms + bank for w in PROMPT.format(l).replace(".", " .").split()})
tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
tok.pre_tokenizer = pre_tokenizers.Whitespace()
tok.post_processor = processors.TemplateProcessing(single="[BOS] $A [EOS]", special_tokens=[("[BOS]", 2), ("[EOS]", 3)])
fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]", eos_token="[EOS]", model_max_length=32)
cfg = CLIPConfig(text_config=dict(vocab_size=len(words), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=32, bos_token_id=2, eos_token_id=3, pad_token_id=0),
                 vision_config=dict(image_size=64, patch_size=16, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2), projection_dim=32)
torch.manual_seed(0)
d = tempfile.mkdtemp()
CLIPModel(cfg).save_pretrained(d); fast.save_pretrained(d)
CLIPImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}).save_pretrained(d)
rng = np.random.default_rng(0)
images = [Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)) for _ in range(200)]
res = {}
for dev in ("cpu", "cuda"):
    t = time.time()
    chk = ContentCheck(ClipScorer.load(d, device=dev, batch_size=64), terms, bank)
    assert chk.scorer.device == dev and next(chk.scorer.model.parameters()).device.type == dev
    info = chk.calibrate(images[:50])
    s, best = chk.scores(images)
    res[dev] = (s, info["threshold"], best)
    print(dev, "threshold", info["threshold"], "flagged", int((s >= chk.threshold).sum()), "s", round(time.time() - t, 2))
print("default device", ClipScorer.load(d).device)
diff = float(np.abs(res["cpu"][0] - res["cuda"][0]).max())
print("max |cpu - cuda| score", diff, "same best label share", np.mean([a == b for a, b in zip(res["cpu"][2], res["cuda"][2])]))
sys.exit(0 if diff < 1e-3 and ClipScorer.load(d).device == "cuda" else 1)
