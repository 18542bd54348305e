"""PIP decoding: every value token of every key is a [MASK] slot, all filled in one forward
pass with bidirectional attention, each slot by its own argmax; a copied value stitched from
scattered places is then replaced by the best contiguous run of the page (`contiguous`),
unless it reads as the next lines of one block (`next_lines`: a two-line address). Words
where the page prints an asked key whole are labels, never copied (`printed_keys`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from tokenizers import Tokenizer
from torch import Tensor

from docsprint.data.encode import Batch, Encoded, collate
from docsprint.decode.common import (
    KeyValue,
    assemble,
    best_run,
    block_phrases,
    clean_items,
    contiguous,
    drop_labels,
    extend_run,
    next_lines,
    printed_keys,
    scale_labels,
    typed_run,
    typed_runs,
    value_scores,
)
from docsprint.decode.sums import balance
from docsprint.eval.values import fits
from docsprint.io.document import Page
from docsprint.models.config import ModelConfig
from docsprint.models.model import DocsprintModel

Choose = Callable[[DocsprintModel, Batch], tuple[Tensor, Tensor, Tensor, Tensor]]


def compiled_choices() -> Choose:
    """``value_scores`` through torch.compile (inductor): the forward pass and the slots'
    argmax as generated kernels, with the element-wise work between the matrix products fused
    (0-12% less time than eager in paired runs on a 2-core CPU). Shapes are symbolic
    (``dynamic=True``), so one graph serves every sequence length; a batch of one window and a
    batch of several are two graphs. Each is compiled at its first call: about half a minute
    on 2 cores."""
    return torch.compile(value_scores, dynamic=True)


def _typed(kv: KeyValue, copy_lp: Tensor, end_lp: Tensor, enc: Encoded, page: Page, cfg: ModelConfig,
           tok: Tokenizer) -> KeyValue:
    """``kv``, or where its value has not the type its key asks for ("Total" or "$" for a
    total, two numbers for one: `fits`) the best run of the page that has (`typed_run`), when
    one of the best runs has."""
    if not isinstance(kv.value, str) or fits(kv.key, kv.value):
        return kv
    typed = typed_run(kv.key, copy_lp, end_lp, enc, page, cfg, tok)
    return typed if typed is not None else kv


def _runs_of(slots: list[tuple[Tensor, Tensor]], enc: Encoded, page: Page, cfg: ModelConfig,
             tok: Tokenizer) -> Callable[[int], Iterator[KeyValue]]:
    """Key ``k`` of the window -> the fitting answers of its slots' best runs (`typed_runs`)."""
    return lambda k: typed_runs(enc.keys[k], *slots[k], enc, page, cfg, tok)


@torch.inference_mode()
def decode_parallel(
    model: DocsprintModel,
    tok: Tokenizer,
    encs: list[Encoded],
    pages: list[Page],
    list_keys: frozenset[str] = frozenset(),
    choose: Choose = value_scores,
) -> list[list[KeyValue]]:
    """Answers for a batch of windows encoded in parallel mode (one model forward in all);
    each window may ask its own keys. ``choose`` runs the forward pass (``value_scores``, or
    `compiled_choices`).

    >>> enc = encode(tok, model.cfg, tokenize_page(tok, page), ["total"])  # doctest: +SKIP
    >>> decode_parallel(model, tok, [enc], [page])[0][0].value  # doctest: +SKIP
    '9.00'
    """
    encs = [scale_labels(e, page, model.cfg) for e, page in zip(encs, pages, strict=True)]
    batch = collate(encs).to(next(model.parameters()).device)
    best, idx, copy_lp, special_lp = choose(model, batch)  # (B, Q) log-probability and choice, ...
    best, idx, copy_lp, special_lp = best.cpu(), idx.cpu(), copy_lp.cpu(), special_lp.cpu()
    end_lp, sep_lp = special_lp[..., 0], special_lp[..., 1]
    V, end = model.cfg.vocab_size, model.cfg.end_id
    out = []
    for b, (enc, page) in enumerate(zip(encs, pages, strict=True)):
        best_b, idx_b, copy_b = drop_labels(best[b], idx[b], copy_lp[b], end_lp[b], printed_keys(enc, page), V, end)
        chosen = [int(i) for i in idx_b]
        answers = []
        slots = []  # each key's slots' copy and END log-probabilities
        for k, key in enumerate(enc.keys):
            qs = [q for q, kk in enumerate(enc.value_key) if kk == k]
            ids, lps = [chosen[q] for q in qs], [float(best_b[q]) for q in qs]
            copy_k, end_k = copy_b[qs], end_lp[b, qs]  # this key's slots
            slots.append((copy_k, end_k))
            if key in list_keys:  # each item one run of one line of the page, in page order
                ids, lps = clean_items(ids, lps, copy_k, sep_lp[b, qs], enc, page, model.cfg)
            elif not next_lines(ids, enc, page, V, end):  # the lines of one block stay stitched
                block = block_phrases(ids, lps, enc, page, V, end)
                ids, lps = block or contiguous(ids, lps, copy_k, end_k, V, end)
            ids, lps = extend_run(ids, lps, copy_k, end_k, V, end, model.cfg.end_bonus)
            kv = _typed(assemble(key, ids, lps, enc, page, model.cfg, tok, key in list_keys), copy_k, end_k, enc, page,
                        model.cfg, tok)
            # what a null would answer instead (`pipeline.answer_over_null` weighs it by the calibration)
            if kv.value is None and key not in list_keys and len(qs) >= 2 and model.cfg.calibration:
                run = extend_run(*best_run(copy_k, end_k, V, end), copy_k, end_k, V, end, model.cfg.end_bonus)
                kv.alternative = _typed(assemble(key, *run, enc, page, model.cfg, tok), copy_k, end_k, enc, page,
                                        model.cfg, tok)
            answers.append(kv)
        # subtotal + tax (+ tips) = total: an amount that breaks the sum may take one of its next best runs
        out.append(balance(answers, _runs_of(slots, enc, page, model.cfg, tok)))
    return out
