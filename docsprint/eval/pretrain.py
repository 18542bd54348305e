"""``docsprint eval pretrain``: the mask pre-training objective on held-out pages.

The loss (nats per masked piece) and the share of masked pieces whose argmax is right, with
fixed spans (seeded by page), so two checkpoints are compared on exactly the same masks.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from docsprint.data.corpus import load_corpus
from docsprint.data.encode import collate, page_pixels, tokenize_page, windows
from docsprint.decode.common import value_logits
from docsprint.models.checkpoint import from_pretrained
from docsprint.train.losses import value_loss
from docsprint.train.pretrain import PretrainConfig, span_example


@torch.inference_mode()
def evaluate_pretrain(model: str | Path, sources: list[str], split: str = "test", limit: int = 50,
                      batch_size: int = 8) -> dict:
    m, tok = from_pretrained(model)
    m.eval()
    pc = PretrainConfig()
    out: dict = {"model": str(model), "split": split, "sources": {}}
    for src, pages in load_corpus(sources, {s: limit for s in sources}, split=split).items():
        items = []
        for i, page in enumerate(pages):
            doc = windows(tokenize_page(tok, page), pc.max_doc_tokens, pc.max_doc_tokens)[0]
            enc = span_example(tok, m.cfg, doc, page_pixels(page.get_image(), m.cfg), random.Random(i), pc)
            if enc is not None:
                items.append(enc)
        total_loss = total_right = n = 0.0
        for i in range(0, len(items), batch_size):
            batch = collate(items[i : i + batch_size])
            assert batch.targets is not None
            logits = value_logits(m, batch)
            k = int(batch.value_valid.sum())
            total_loss += float(value_loss(logits, batch.targets, batch.value_valid, m.cfg.vocab_size)) * k
            best = logits.argmax(-1, keepdim=True)  # (B, Q, 1)
            right = (batch.targets == best).any(-1) & batch.value_valid
            total_right, n = total_right + float(right.sum()), n + k
        out["sources"][src] = {"pages": len(items), "masked_pieces": int(n),
                               "loss": total_loss / max(n, 1), "accuracy": 100 * total_right / max(n, 1)}
    return out
