"""Stage 1: mask pre-training (``docsprint train pretrain --config configs/pretrain.yaml``).

Spans of whole words are taken out of a page's text stream; each must be regenerated, in one
bidirectional pass, in a group of [MASK] slots (as many slots as the span has tokens, as in
the paper) from the page image and the rest of the page. A group is prompted like a key of
the fine-tuning stage: its "key" is the text just before the span (or just after it, at the
start of a page), so pre-training already exercises the prompt, the slots and the value head
that extraction uses. Targets are vocabulary ids, or a copy of the same token where it also
occurs elsewhere on the page.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from docsprint.data.corpus import load_corpus
from docsprint.data.encode import (
    DocTokens,
    Encoded,
    collate,
    encode,
    page_pixels,
    tokenize_page,
    windows,
)
from docsprint.models.checkpoint import load_tokenizer
from docsprint.models.config import ModelConfig
from docsprint.train.kie import build_model, tokenizer_file
from docsprint.train.loop import TrainConfig, ValueLoss, fit, setup_distributed


@dataclass
class PretrainConfig(TrainConfig):
    sources: list[str] = field(default_factory=lambda: ["wildreceipt-unlabelled", "tobacco3482", "kleister-nda",
                                                         "sroie", "funsd", "wildreceipt"])
    limits: dict[str, int] = field(default_factory=dict)  # source -> at most N documents
    data_dir: dict[str, str] = field(default_factory=dict)  # dataset -> folder
    mask_fraction: float = 0.15  # of a window's tokens
    max_span_words: int = 6
    max_span_tokens: int = 12
    max_spans: int = 16
    context_words: int = 3  # the span's "key"
    max_doc_tokens: int = 500
    out: str = "runs/pretrain"


def choose_spans(doc: DocTokens, rng: random.Random, pc: PretrainConfig) -> list[tuple[int, int]]:
    """Non-overlapping spans of whole words, as (first piece, end piece), about
    ``mask_fraction`` of the pieces in all, with a gap of at least one word between spans."""
    starts = [i for i in range(len(doc.ids)) if i == 0 or doc.word_index[i] != doc.word_index[i - 1]]
    n_words = len(starts)
    if n_words < 4:
        return []
    bounds = starts + [len(doc.ids)]
    budget = max(1, int(pc.mask_fraction * len(doc.ids)))
    taken = [False] * n_words
    spans: list[tuple[int, int]] = []
    for _ in range(4 * pc.max_spans):
        if budget <= 0 or len(spans) >= pc.max_spans:
            break
        n = min(1 + int(rng.expovariate(0.6)), pc.max_span_words)
        w = rng.randrange(n_words)
        n = min(n, n_words - w)
        lo, hi = max(0, w - 1), min(n_words, w + n + 1)
        if any(taken[lo:hi]):
            continue
        a, b = bounds[w], bounds[w + n]
        if b - a > pc.max_span_tokens:
            continue
        for j in range(w, w + n):
            taken[j] = True
        spans.append((a, b))
        budget -= b - a
    return sorted(spans)


def span_example(tok, cfg: ModelConfig, doc: DocTokens, pixels, rng: random.Random,
                 pc: PretrainConfig) -> Encoded | None:
    spans = choose_spans(doc, rng, pc)
    if not spans:
        return None
    removed = {i for a, b in spans for i in range(a, b)}
    keep = [i for i in range(len(doc.ids)) if i not in removed]
    rest = DocTokens([doc.ids[i] for i in keep], [doc.bbox[i] for i in keep],
                     [doc.word_index[i] for i in keep], [doc.char_span[i] for i in keep])
    keys = []
    for a, b in spans:
        before = [i for i in keep if i < a][-pc.context_words * 3 :]
        context = before or [i for i in keep if i >= b][: pc.context_words * 3]
        keys.append(tok.decode([doc.ids[i] for i in context]) or "text")
    enc = encode(tok, cfg, rest, keys, "parallel", pixels=pixels, slots=[b - a for a, b in spans])
    # The targets are the span's own pieces: the vocabulary id, and a copy of the same piece
    # where it occurs elsewhere on the page at a position the copy prior allows (more than i
    # places in for token i: a value cannot start at [CLS]).
    for a, b in spans:
        for i, t in enumerate(doc.ids[a:b]):
            copies = [p + 1 for p, x in enumerate(rest.ids) if x == t and p + 1 > i]  # +1: [CLS]
            enc.targets.append([t] + [cfg.vocab_size + p for p in copies])
    return enc


def train_pretrain(pc: PretrainConfig) -> Path:
    """Pre-train on the corpus and return the final checkpoint folder (``out/final``)."""
    from tqdm import tqdm

    env = setup_distributed()
    tok = load_tokenizer(tokenizer_file(pc))
    torch.manual_seed(pc.seed)
    model, tok_file = build_model(pc, {}, 16)
    cfg = model.cfg
    units: list[tuple[DocTokens, torch.Tensor | None]] = []
    for src, pages in load_corpus(pc.sources, pc.limits, pc.data_dir).items():
        before = len(units)
        for page in tqdm(pages, desc=f"tokenise {src}", leave=False, mininterval=5):
            pixels = page_pixels(page.get_image(), cfg)
            units += [(w, pixels) for w in windows(tokenize_page(tok, page), pc.max_doc_tokens, pc.max_doc_tokens)
                      if len(w.ids) >= 8]
        if env.main:
            print(f"{src}: {len(pages)} pages, {len(units) - before} windows")
    if not units:
        raise ValueError("no pre-training text (check sources and data_dir)")

    def make_items(idx: list[int], rng: random.Random) -> list[Encoded]:
        out = []
        for i in idx:
            doc, pixels = units[i]
            enc = span_example(tok, cfg, doc, pixels, rng, pc)
            if enc is not None:
                out.append(enc)
        return out or [span_example(tok, cfg, units[0][0], units[0][1], rng, pc) or _never()]

    return fit(model, tok_file, pc, len(units), lambda idx, rng: collate(make_items(idx, rng)),
               ValueLoss(model), name="pretrain", env=env)


def _never() -> Encoded:
    raise ValueError("pre-training windows are too short to mask")
