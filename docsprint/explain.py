"""Where a key's mask slots look: attention of the value slots over the page.

As in the PIP paper's attention figure, the slots of one key are expected to attend to that
value's region of the page. We average the attention weights of the key's slots over every
head of the last ``layers`` blocks, then sum them per word (its word pieces) and per image
patch, and draw them over the page image. Beside it we draw the pointer head's copy
distribution of the same slots: the part of our model that actually picks the words.

>>> view = explain(Extractor(), "receipt.jpg", "total")   # doctest: +SKIP
>>> view.top_words(3)                                     # doctest: +SKIP
[('9.00', 0.41), ('TOTAL', 0.12), ('CASH', 0.05)]
>>> draw(view, "total.png")                               # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from docsprint.data.encode import Batch, collate
from docsprint.decode.common import KeyValue, value_logits
from docsprint.decode.parallel import decode_parallel
from docsprint.errors import DocsprintError
from docsprint.io.document import Document, Page
from docsprint.models.model import Block, DocsprintModel, SelfAttention
from docsprint.pipeline import Extractor


@dataclass
class AttentionView:
    """One key on one page: the answer, and the slots' attention per word and per patch."""

    key: str
    answer: KeyValue
    page: Page
    word_weights: list[float]  # per page word (0 for words outside the window)
    pointer_weights: list[float]  # per page word: the slots' mean copy probability
    patch_weights: list[float]  # per image patch, row-major (empty without an image)
    shares: dict[str, float]  # attention mass on words, image patches, [CLS]/[SEP], the prompt

    def top_words(self, n: int = 5) -> list[tuple[str, float]]:
        order = sorted(range(len(self.word_weights)), key=lambda i: -self.word_weights[i])[:n]
        return [(self.page.words[i].text, round(self.word_weights[i], 4)) for i in order]

    def to_dict(self) -> dict:
        return {"key": self.key, **self.answer.to_dict(), "shares": {k: round(v, 4) for k, v in self.shares.items()},
                "top_words": self.top_words(10)}


def _attention_probs(attn: SelfAttention, x: Tensor, mask: Tensor | None) -> Tensor:
    """The softmax attention weights (B, nh, T, T) that ``attn`` computes inside its fused kernel."""
    B, T, C = x.shape
    hs = C // attn.n_head
    q = attn.query(x).view(B, T, attn.n_head, hs).transpose(1, 2).float()  # (B, nh, T, hs)
    k = attn.key(x).view(B, T, attn.n_head, hs).transpose(1, 2).float()
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hs)  # (B, nh, T, T)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1)


@torch.inference_mode()
def attention_and_logits(model: DocsprintModel, batch: Batch, layers: int = 2) -> tuple[Tensor, Tensor]:
    """One parallel forward pass of one encoded window: its attention (T, T), averaged over
    heads and the last ``layers`` blocks, and its value logits (Q, V + Ld)."""
    if not 1 <= layers <= len(model.blocks):
        raise ValueError(f"layers must be in 1..{len(model.blocks)}")
    maps: list[Tensor] = []

    def hook(module: torch.nn.Module, args: tuple, _out: Tensor) -> None:
        assert isinstance(module, SelfAttention)
        maps.append(_attention_probs(module, args[0], args[1])[0].mean(0))  # (T, T)

    handles = [cast(Block, b).attn.register_forward_hook(hook) for b in model.blocks[-layers:]]
    try:
        logits = value_logits(model, batch)[0]
    finally:
        for h in handles:
            h.remove()
    return torch.stack(maps).mean(0), logits


def explain(extractor: Extractor, document: Document | str | Path, key: str, layers: int = 2) -> AttentionView:
    """The attention view of ``key`` on the window (of any page) that answers it most surely."""
    out, work = extractor.prepare(document, [key], "parallel")
    if not any(page.words for _, page in work):
        raise DocsprintError(f"{out.source}: no words on the page, nothing to explain")
    model, cfg = extractor.model, extractor.model.cfg
    best = max(((decode_parallel(model, extractor.tok, [enc], [page])[0][0], enc, page) for enc, page in work),
               key=lambda t: (t[0].value is not None, t[0].confidence))
    answer, enc, page = best
    batch = collate([enc]).to(next(model.parameters()).device)
    att, logits = attention_and_logits(model, batch, layers)  # (P + T, P + T), (Q, V + Ld)
    n_patches = cfg.num_patches if batch.pixels is not None else 0
    slots = [n_patches + p for p in enc.value_pos]
    row = att[slots].mean(0)  # (P + T,): where the key's slots look, on average
    probs = logits.float().softmax(-1)  # one key: its Q slots
    chosen = probs.argmax(-1).tolist()
    n_value = chosen.index(cfg.end_id) if cfg.end_id in chosen else len(chosen)
    # The slots that hold the value (the first one alone when the answer is null).
    pointer = probs[: max(n_value, 1), cfg.vocab_size :].mean(0)  # (Ld,): copy probability
    words, pointed = [0.0] * len(page.words), [0.0] * len(page.words)
    assert enc.doc is not None
    for j, w in enumerate(enc.doc.word_index):  # document piece j sits at position 1 + j
        words[w] += float(row[n_patches + 1 + j])
        pointed[w] += float(pointer[1 + j])
    patches = [float(v) for v in row[:n_patches]]
    shares = {"words": sum(words), "patches": sum(patches),
              "separators": float(row[n_patches] + row[n_patches + enc.n_doc - 1]),  # [CLS], [SEP]
              "prompt": float(row[n_patches + enc.n_doc :].sum())}
    return AttentionView(key, answer, page, words, pointed, patches, shares)


def _panel(base: Image.Image, page: Page, scale: float, weights: list[float], colour: tuple[int, int, int],
           patches: list[float]) -> Image.Image:
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(overlay)
    if patches:
        side = math.isqrt(len(patches))
        top = max(patches) or 1.0
        cw, ch = base.width / side, base.height / side
        for i, w in enumerate(patches):
            r, c = divmod(i, side)
            d.rectangle([c * cw, r * ch, (c + 1) * cw, (r + 1) * ch], fill=(40, 90, 255, int(90 * w / top)))
    top = max(weights) or 1.0
    for word, w in zip(page.words, weights, strict=True):
        if w > 0.02 * top:
            x0, y0, x1, y1 = (v * scale for v in word.box)
            d.rectangle([x0 - 1, y0 - 1, x1 + 1, y1 + 1], fill=(*colour, int(40 + 170 * w / top)),
                        outline=(*colour, 255))
    return Image.alpha_composite(base, overlay)


def draw(view: AttentionView, out: str | Path, width: int = 700) -> Path:
    """Two copies of the page side by side, written atomically as PNG. Left: the attention of
    the key's slots, per word (red) and per image patch (blue grid). Right: the pointer head's
    copy probability per word (green)."""
    page = view.page
    image = page.get_image()
    base = (image.convert("RGB") if image is not None
            else Image.new("RGB", (max(page.width, 1), max(page.height, 1)), "white"))
    scale = width / base.width
    base = base.resize((width, max(1, round(base.height * scale)))).convert("RGBA")
    if image is None:  # a text-only page: write the words themselves
        d = ImageDraw.Draw(base)
        for word in page.words:
            d.text((word.box[0] * scale, word.box[1] * scale), word.text, fill=(0, 0, 0, 255))
    left = _panel(base, page, scale, view.word_weights, (230, 0, 0), view.patch_weights)
    right = _panel(base, page, scale, view.pointer_weights, (0, 170, 0), [])
    head = 36
    full = Image.new("RGB", (2 * width + 10, base.height + head), "white")
    d = ImageDraw.Draw(full)
    d.text((6, 4), f"key {view.key!r} -> {view.answer.value!r} (confidence {view.answer.confidence:.2f})", fill="black")
    d.text((6, 20), f"attention of its slots: words {view.shares['words']:.0%}, image patches "
                    f"{view.shares['patches']:.0%}, prompt {view.shares['prompt']:.0%}", fill="black")
    d.text((width + 16, 20), "pointer head: copy probability per word", fill="black")
    full.paste(left.convert("RGB"), (0, head))
    full.paste(right.convert("RGB"), (width + 10, head))
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out must be a .png file, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.png")
    full.quantize(colors=128).save(tmp, optimize=True)  # a palette: a quarter of the bytes
    tmp.replace(out)
    return out
