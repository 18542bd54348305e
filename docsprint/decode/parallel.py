"""PIP decoding: every value token of every key is a [MASK] slot, all filled in one forward
pass with bidirectional attention, each slot by its own argmax."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer

from docsprint.data.encode import Encoded, collate
from docsprint.decode.common import KeyValue, assemble, value_choices
from docsprint.io.document import Page
from docsprint.models.model import DocsprintModel


@torch.inference_mode()
def decode_parallel(
    model: DocsprintModel,
    tok: Tokenizer,
    encs: list[Encoded],
    pages: list[Page],
    list_keys: frozenset[str] = frozenset(),
) -> list[list[KeyValue]]:
    """Answers for a batch of windows encoded in parallel mode (one model forward in all);
    each window may ask its own keys.

    >>> enc = encode(tok, model.cfg, tokenize_page(tok, page), ["total"])  # doctest: +SKIP
    >>> decode_parallel(model, tok, [enc], [page])[0][0].value  # doctest: +SKIP
    '9.00'
    """
    batch = collate(encs).to(next(model.parameters()).device)
    best, idx = value_choices(model, batch)  # (B, Q) each: log-probability and choice
    out = []
    for b, (enc, page) in enumerate(zip(encs, pages, strict=True)):
        chosen = [int(i) for i in idx[b]]  # padding sits after each document: positions hold
        answers = []
        for k, key in enumerate(enc.keys):
            qs = [q for q, kk in enumerate(enc.value_key) if kk == k]
            answers.append(
                assemble(key, [chosen[q] for q in qs], [float(best[b, q]) for q in qs], enc, page,
                         model.cfg, tok, key in list_keys)
            )
        out.append(answers)
    return out
