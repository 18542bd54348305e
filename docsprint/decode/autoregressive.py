"""Autoregressive decoding from the same checkpoint: prefix = document + image + key names,
computed once into a KV cache; then each key's value is generated greedily, token by token.

Value token i of a key sees the prefix and every earlier value token (of this key and the
keys before it); its input is the previous token (the copied piece's id and box, or the
vocabulary id), exactly as in training. A list value's items are then cleaned as parallel
decoding cleans them (`clean_items`), from the log-probabilities of the steps taken, so the two
modes are compared on equal terms. Where the page prints an asked key whole, those words are
labels and never copied (`printed_keys`), as in parallel decoding.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer

from docsprint.data.encode import ITEM_SEP_ID, Encoded, collate
from docsprint.decode.common import KeyValue, assemble, clean_items, printed_keys, scale_labels
from docsprint.io.document import Page
from docsprint.models.config import VALUE
from docsprint.models.model import DocsprintModel, TokenInputs


def _one_token(ids: int, box: tuple, position: int, group: int, slot: int, rank: int,
               dev: torch.device) -> TokenInputs:
    def t(v: int) -> torch.Tensor:
        return torch.tensor([[v]], dtype=torch.long, device=dev)

    return TokenInputs(
        ids=t(ids),
        bbox=torch.tensor([[list(box)]], dtype=torch.long, device=dev),
        position=t(position),
        token_type=t(VALUE),
        group=t(group),
        mention=t(0),
        slot=t(slot),
        rank=t(rank),
        valid=torch.ones((1, 1), dtype=torch.bool, device=dev),
    )


def _cat(a: TokenInputs, b: TokenInputs) -> TokenInputs:
    return TokenInputs(**{k: torch.cat([getattr(a, k), getattr(b, k)], 1) for k in a.__dict__})


@torch.inference_mode()
def decode_autoregressive(
    model: DocsprintModel,
    tok: Tokenizer,
    enc: Encoded,
    page: Page,
    list_keys: frozenset[str] = frozenset(),
    use_cache: bool = True,
) -> list[KeyValue]:
    """Greedy generation for one window encoded in autoregressive mode (prefix only).

    ``use_cache=False`` recomputes the whole sequence at every step: slow, and only there to
    check that the cache changes nothing.
    """
    cfg = model.cfg
    keys = enc.keys
    dev = next(model.parameters()).device
    batch = collate([scale_labels(enc, page, cfg)]).to(dev)
    prefix, pixels, copyable = batch.tokens, batch.pixels, batch.doc_copyable
    labels = printed_keys(enc, page)
    if labels:  # a printed question is a label, never a value
        copyable = copyable.clone()
        copyable[0, labels] = False
    budgets = enc.budget
    n_patches = cfg.num_patches if pixels is not None else 0
    max_len = n_patches + prefix.ids.shape[1] + sum(budgets)
    caches = model.new_caches(1, max_len, next(model.parameters())) if use_cache else None
    h = model.encode(prefix, pixels, caches)  # (1, P + T, H): the prefix, computed once
    key_names = model.embed.key_names(prefix)  # (1, max_keys + 1, H)
    doc_keys = model.head.doc_keys(h[:, n_patches : n_patches + enc.n_doc])
    # the first token of key k's value gets its start bias (row k + 1), as in parallel decoding
    groups = torch.arange(len(keys) + 1, device=dev)[None]  # (1, K + 1)
    start_bias = model.head.start_bias(prefix, enc.n_doc, groups, groups > 0, batch.key_scale)  # (1, K + 1, Ld) or None
    past_rank = torch.zeros((1, h.shape[1]), dtype=torch.long, device=dev)
    past_valid = torch.cat([torch.ones((1, n_patches), dtype=torch.bool, device=dev), prefix.valid], 1)
    seq = prefix
    rank = 0
    answers = []
    for k, key in enumerate(keys):
        chosen: list[int] = []
        logprobs: list[float] = []
        listed = key in list_keys
        copy_rows, sep_lps = [], []  # a list key's steps: copy and separator log-probabilities
        prev_id, prev_box = cfg.bos_id, (0, 0, 0, 0)
        for i in range(budgets[k]):
            rank += 1
            position = min(enc.value_base[k] + i, cfg.max_positions - 1)
            step = _one_token(prev_id, prev_box, position, k + 1, i + 1, rank, dev)
            if use_cache:
                h = model.encode(step, None, caches, past_rank, past_valid, key_names)  # (1, 1, H)
                past_rank = torch.cat([past_rank, step.rank], 1)
                past_valid = torch.cat([past_valid, step.valid], 1)
            else:
                seq = _cat(seq, step)
                h = model.encode(seq, pixels)[:, -1:]
            bias = start_bias[:, k + 1 : k + 2] if start_bias is not None and i == 0 else None
            ptr = model.head.pointer(h, doc_keys, copyable, bias)  # (1, 1, Ld)
            if i == 0:
                start_ptr = ptr  # where this key's value starts: the copy prior of its tokens
            slot = torch.full((1, 1), i, dtype=torch.long, device=dev)
            if listed:
                best_lp, best, copy_lp, special = (t[0, 0] for t in model.head.scores(
                    h, ptr, start_ptr, slot, ids=(cfg.end_id, ITEM_SEP_ID)))
                copy_rows.append(copy_lp)
                sep_lps.append(special[1])
            else:
                best_lp, best = (t[0, 0] for t in model.head.best(h, ptr, start_ptr, slot))
            c = int(best)
            chosen.append(c)
            logprobs.append(float(best_lp))
            if c == cfg.end_id:
                break
            if c >= cfg.vocab_size:  # copied: feed the document piece and its box
                pos = c - cfg.vocab_size
                prev_id, prev_box = enc.ids[pos], enc.bbox[pos]
            else:
                prev_id, prev_box = c, (0, 0, 0, 0)
        if listed and copy_rows:
            chosen, logprobs = clean_items(chosen, logprobs, torch.stack(copy_rows), torch.stack(sep_lps),
                                           enc, page, cfg)
        answers.append(assemble(key, chosen, logprobs, enc, page, cfg, tok, listed))
    return answers
