"""What both decoders return, and how chosen tokens become text, boxes and a confidence."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import Tensor

from docsprint.data.encode import ITEM_SEP_ID, Batch, Encoded
from docsprint.eval.values import fits, key_kind, normalized
from docsprint.io.document import Box, Page
from docsprint.models.config import ModelConfig
from docsprint.models.model import DocsprintModel


def head_inputs(model: DocsprintModel, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One forward pass: the value tokens' hidden states (B, Q, H), their pointer logits and
    those of their key's first token (B, Q, Ld each), and their slots (B, Q)."""
    h = model.encode(batch.tokens, batch.pixels)  # (B, P + T, H)
    offset = h.shape[1] - batch.tokens.ids.shape[1]  # number of image patches
    doc = h[:, offset : offset + batch.n_doc_max]  # (B, Ld, H)
    idx = (batch.value_pos + offset)[..., None].expand(-1, -1, h.shape[-1])
    query = torch.gather(h, 1, idx)  # (B, Q, H)
    group = torch.gather(batch.tokens.group, 1, batch.value_pos)  # (B, Q) each value token's key
    bias = model.head.start_bias(batch.tokens, batch.n_doc_max, group, batch.value_valid & (batch.value_slot == 0),
                                 batch.key_scale)
    ptr = model.head.pointer(query, model.head.doc_keys(doc), batch.doc_copyable, bias)  # (B, Q, Ld)
    start_ptr = torch.gather(ptr, 1, batch.value_first[..., None].expand(-1, -1, ptr.shape[-1]))
    return query, ptr, start_ptr, batch.value_slot


def value_logits(model: DocsprintModel, batch: Batch) -> Tensor:
    """Logits (B, Q, V + Ld) of every value token of the batch, in one forward pass."""
    return model.head(*head_inputs(model, batch))


def value_choices(model: DocsprintModel, batch: Batch) -> tuple[Tensor, Tensor]:
    """Every value token's best log-probability and choice, (B, Q) each (as ``max`` returns
    values and indices), in one forward pass: ``log_softmax(value_logits(...)).max(-1)``, faster."""
    return model.head.best(*head_inputs(model, batch), chunked=True)


def value_scores(model: DocsprintModel, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """`value_choices`, plus every value token's copy log-probabilities (B, Q, Ld) and its
    log-probabilities of END and of the item separator (B, Q, 2), for `contiguous` and
    `item_runs`; the same one forward pass."""
    return model.head.scores(*head_inputs(model, batch), ids=(model.cfg.end_id, ITEM_SEP_ID))


def _alnum(text: str) -> str:
    return re.sub(r"\W+", "", text)


def _printed_runs(enc: Encoded, page: Page) -> Iterator[tuple[int, list[int]]]:
    """(key index, its words) for each run of words where the page prints an asked key whole,
    with the key's own letters and case ("Revised From:" asked of a form that prints
    "Revised From:"). A key named in other words ("total" for "TOTAL", "date" for "Date of
    issue") is not printed whole."""
    if enc.doc is None or not any(enc.mention):
        return
    wanted = {_alnum(k) for k in enc.keys} - {""}
    marks = enc.mention[1 : 1 + len(enc.doc.word_index)]  # document piece j's mark is at position j + 1
    for k, run in groupby(range(len(marks)), key=marks.__getitem__):
        if k == 0:
            continue
        words = sorted({enc.doc.word_index[j] for j in run})  # the words of a run naming key k - 1
        if _alnum("".join(page.words[w].text for w in words)) in wanted:
            yield k - 1, words


def printed_keys(enc: Encoded, page: Page) -> list[int]:
    """Copy positions (document piece + 1) of the words where the page prints an asked key
    whole (`_printed_runs`): a printed question is a label, never a value, of its own key or
    any other; a key named in other words leaves its words copyable."""
    if enc.doc is None:
        return []
    out: list[int] = []
    for _, words in _printed_runs(enc, page):
        out += [j + 1 for j, w in enumerate(enc.doc.word_index) if words[0] <= w <= words[-1]]
    return out


def _apart(page: Page, w: int) -> bool:
    """Does word ``w`` start a phrase: the page's first word, or not on the line of the word
    before it, or at least a line's height right of it?"""
    if w == 0:
        return True
    a, b = page.words[w - 1].box, page.words[w].box
    h = max(b[3] - b[1], 1)
    same_line = min(a[3], b[3]) - max(a[1], b[1]) > h / 2
    return not (same_line and 0 <= b[0] - a[2] < h)


def label_keys(enc: Encoded, page: Page) -> set[int]:
    """The keys (indices) the page prints as a label, exactly as asked, its punctuation too
    (a colon may follow): with the key's own closing colon ("Reporting Period:"), or as a
    phrase of its own, apart from the words before and after it (a column's "JAN", a form's
    "Subject"). A key printed inside running text ("enter your SSN", "Section 409A
    deferrals"), or as a paragraph's last word on a line of its own ("party." for "party"),
    is not a label there.

    `ModelConfig.label_geometry` weighs `KeyGeometry`'s bias for these keys. On FUNSD's dev
    forms (v22a), the factor against ANLS: 1 -> 57.08, 3 -> 63.37, 4 -> 66.03, 6 -> 67.53;
    SROIE, WildReceipt, Kleister-NDA dev and realworld-dev unchanged at 4. Every printed
    key at 4 lost 15 realworld-dev fields (the W-9's SSN read after "SSN" in its fine print)."""
    out = set()
    for k, words in _printed_runs(enc, page):
        key = re.sub(r"\s+", "", enc.keys[k])
        printed = re.sub(r"\s+", "", "".join(page.words[w].text for w in range(words[0], words[-1] + 1)))
        if printed not in (key, key + ":"):
            continue
        last = words[-1]
        if key.endswith(":") or (_apart(page, words[0]) and (last + 1 == len(page.words) or _apart(page, last + 1))):
            out.add(k)
    return out


def scale_labels(enc: Encoded, page: Page, cfg: ModelConfig) -> Encoded:
    """Set `ModelConfig.label_geometry` as the geometry factor of ``enc``'s label keys
    (`label_keys`; ``enc.key_scale``, which `collate` hands to the model) and return it."""
    if cfg.label_geometry != 1.0 and cfg.key_geometry:
        labels = label_keys(enc, page)
        enc.key_scale = [cfg.label_geometry if k in labels else 1.0 for k in range(len(enc.keys))]
    return enc


def drop_labels(best: Tensor, idx: Tensor, copy_lp: Tensor, end_lp: Tensor, labels: list[int],
                vocab_size: int, end_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """One window's slot choices (Q,) and copy log-probabilities (Q, Ld) with the ``labels``
    (`printed_keys`) made uncopyable: a slot that chose one takes the best of the rest of the
    page or END instead."""
    if not labels:
        return best, idx, copy_lp
    copy_lp = copy_lp.clone()
    copy_lp[:, labels] = -1e9
    hit = torch.isin(idx - vocab_size, torch.tensor(labels))  # labels are copy positions, >= 1
    if bool(hit.any()):
        c_best, c_idx = copy_lp.max(-1)
        take_copy = c_best > end_lp
        best = torch.where(hit, torch.where(take_copy, c_best, end_lp), best)
        idx = torch.where(hit, torch.where(take_copy, c_idx + vocab_size, torch.full_like(idx, end_id)), idx)
    return best, idx, copy_lp


def _runs(copy_lp: Tensor) -> Tensor:
    """(m, Ld) -> (m, Ld): entry [i, s] is slot i's log-probability of copying s + i, the piece
    slot i reads in a run starting at s (-1e9 past the window's end)."""
    m, ld = copy_lp.shape
    j = torch.arange(ld)[None, :] + torch.arange(m)[:, None]
    return torch.gather(copy_lp, 1, j.clamp(max=ld - 1)).masked_fill(j >= ld, -1e9)


def contiguous(chosen: list[int], logprobs: list[float], copy_lp: Tensor, end_lp: Tensor,
               vocab_size: int, end_id: int) -> tuple[list[int], list[float]]:
    """One key's value as one contiguous run of the document, when its tokens copy pieces
    from scattered places.

    Each slot takes its own argmax, so a value can come out stitched: "471102 452 9" from
    "Nr. 471102 vom ..." and a number two lines down. Values are almost always one run of
    the page, so such a value is replaced by the run (start s, length L) that maximises
    ``sum(copy_lp[i, s + i] for i < L) + end_lp[L]`` under the same slots' log-probabilities.
    Values that write vocabulary tokens, nulls and runs already contiguous are kept.
    copy_lp: (m, Ld) the key's m slots' copy log-probabilities; end_lp: (m,).
    """
    n = chosen.index(end_id) if end_id in chosen else len(chosen)
    pos = [c - vocab_size for c in chosen[:n]]
    m, ld = copy_lp.shape
    if not pos or min(pos) < 0 or all(b == a + 1 for a, b in zip(pos, pos[1:], strict=False)) or m < 2:
        return chosen, logprobs
    run, lps = best_run(copy_lp, end_lp, vocab_size, end_id)
    return run + chosen[len(run) :], lps + logprobs[len(run) :]


def _run_scores(copy_lp: Tensor, end_lp: Tensor) -> Tensor:
    """(m - 1, Ld): entry [L - 1, s] scores the run of the page of L pieces from s, then END in
    slot L: ``sum(copy_lp[i, s + i] for i < L) + end_lp[L]``."""
    return _runs(copy_lp[: copy_lp.shape[0] - 1]).cumsum(0) + end_lp[1:, None]


def _run_at(flat: int, copy_lp: Tensor, end_lp: Tensor, vocab_size: int, end_id: int) -> tuple[list[int], list[float]]:
    """The run at flat index ``flat`` of `_run_scores`: its chosen ids (END last) and their
    log-probabilities."""
    ld = copy_lp.shape[1]
    length, start = flat // ld + 1, flat % ld
    run = [vocab_size + start + k for k in range(length)]
    lps = [float(copy_lp[k, start + k]) for k in range(length)] + [float(end_lp[length])]
    return run + [end_id], lps


def best_run(copy_lp: Tensor, end_lp: Tensor, vocab_size: int, end_id: int) -> tuple[list[int], list[float]]:
    """The run of the page (start s, length L >= 1, then END) that maximises
    ``sum(copy_lp[i, s + i] for i < L) + end_lp[L]``: its chosen ids (END last) and their
    log-probabilities. copy_lp: (m, Ld), m >= 2; end_lp: (m,)."""
    return _run_at(int(_run_scores(copy_lp, end_lp).argmax()), copy_lp, end_lp, vocab_size, end_id)


def typed_run(key: str, copy_lp: Tensor, end_lp: Tensor, enc: Encoded, page: Page, cfg: ModelConfig,
              tok: Tokenizer, top: int = 32) -> KeyValue | None:
    """The answer of the best run of the page (`best_run`'s score) whose value has the type
    ``key`` asks for (`fits`: one number for an amount), among the ``top`` best runs; None when
    none has.

    The slots of an amount key sometimes copy the word beside the number, its label ("Total",
    "Tax") or its currency ("$", "Eur"), or run on into the next number ("100.30 10.03"); the
    number alone is usually one of the next best runs (`parallel._typed`). copy_lp: (m, Ld),
    m >= 2; end_lp: (m,)."""
    return next(typed_runs(key, copy_lp, end_lp, enc, page, cfg, tok, top), None)


def typed_runs(key: str, copy_lp: Tensor, end_lp: Tensor, enc: Encoded, page: Page, cfg: ModelConfig,
               tok: Tokenizer, top: int = 32) -> Iterator[KeyValue]:
    """The answers of the ``top`` best runs of the page (`best_run`'s score), best first, that
    have the type ``key`` asks for (`fits`). copy_lp: (m, Ld); end_lp: (m,)."""
    m, ld = copy_lp.shape
    if m < 2 or enc.doc is None:
        return
    total = _run_scores(copy_lp, end_lp)
    for flat in total.flatten().topk(min(top, total.numel())).indices.tolist():
        length, start = flat // ld + 1, flat % ld
        if start < 1 or start + length - 1 > len(enc.doc.ids):  # position 0 and the padding copy nothing
            continue
        kv = assemble(key, *_run_at(flat, copy_lp, end_lp, cfg.vocab_size, cfg.end_id), enc, page, cfg, tok)
        if isinstance(kv.value, str) and fits(key, kv.value):
            yield kv


def contiguous_items(chosen: list[int], logprobs: list[float], copy_lp: Tensor, vocab_size: int,
                     end_id: int, sep_id: int, lines: Callable[[list[int]], bool] = lambda item: False
                     ) -> tuple[list[int], list[float]]:
    """`contiguous` for the items of a list value (line items), one at a time: an item whose
    pieces all copy, in page order but with gaps ("1" "." "58" from three places, "12. 20"),
    becomes the run of the page of the same length whose pieces the item's slots score best
    (the sum of their copy log-probabilities). Items that write vocabulary tokens, go back in
    the page (re-read pieces, which `assemble` writes once), are one run already, or read as the
    next lines of one block (``lines`` of the item and an END: `next_lines`) are kept."""
    n = chosen.index(end_id) if end_id in chosen else len(chosen)
    out, lps = list(chosen), list(logprobs)
    a = 0
    while a < n:
        b = next((i for i in range(a, n) if chosen[i] == sep_id), n)
        pos = [c - vocab_size for c in chosen[a:b]]
        gaps = [y - x for x, y in zip(pos, pos[1:], strict=False)]
        if len(pos) >= 2 and min(pos) >= 0 and min(gaps) >= 1 and max(gaps) > 1 and not lines([*chosen[a:b], end_id]):
            start = int(_runs(copy_lp[a:b]).sum(0).argmax())
            out[a:b] = [vocab_size + start + k for k in range(b - a)]
            lps[a:b] = [float(copy_lp[a + k, start + k]) for k in range(b - a)]
        a = b + 1
    return out, lps


def piece_marks(enc: Encoded, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For each copy position of a window (``width`` of them: position 0 and the padding copy
    nothing): does its piece begin a word, and does it begin a new line (not on the line of
    the piece before it, to its right)? `item_runs`'s word starts and line breaks."""
    starts, breaks = np.zeros(width, dtype=bool), np.zeros(width, dtype=bool)
    if enc.doc is None:
        return starts, breaks
    d = enc.doc
    starts[1 : 1 + len(d.char_span)] = [a == 0 for a, _ in d.char_span]
    for j in range(1, len(d.bbox)):
        prev, box = d.bbox[j - 1], d.bbox[j]
        h = max(prev[3] - prev[1], 1)
        on_line = abs((prev[1] + prev[3]) - (box[1] + box[3])) < h and box[0] >= prev[0] - h  # centres within h / 2
        breaks[1 + j] = not on_line
    return starts, breaks


def item_runs(chosen: list[int], logprobs: list[float], copy_lp: Tensor, sep_lp: Tensor, starts: np.ndarray,
              breaks: np.ndarray, vocab_size: int, end_id: int, sep_id: int) -> tuple[list[int], list[float]]:
    """A list value (line items) as items that are each one run of one line of the page, in
    page order.

    Each slot takes its own argmax, so the slots of a long list lose their alignment: an item
    starts inside a word ("akhMaaz(" of "TabakhMaaz(OnlyMe)"), re-reads pieces, takes pieces
    of the next item, or a separator lands mid-run ("1 ugula wheatberries ... ocacciaBread" for
    nine items). This is the best path under the same slots' log-probabilities through the
    states "slot i copies piece j" and "slot i separates, the last item ended at j": an item
    goes on with piece j + 1 in the next slot unless j + 1 begins another line (``breaks``), or
    ends with a separator (more separators make empty items, which `assemble` drops, as the
    model writes them), and the next item starts at a piece after it that begins a word
    (``starts``); both (Ld,) bool, from `piece_marks`. Viterbi, O(slots x pieces). The model's own length is kept: END in the same slot, or every slot filled (and
    the key re-asked with more). Values that write vocabulary tokens and nulls are kept.
    copy_lp: (m, Ld) the key's m slots' copy log-probabilities; sep_lp: (m,).
    On the dev documents (v11 weights), entity F1 of the list keys: WildReceipt 42.7 -> 67.3
    (items 5.4 -> 73.6), synthetic line items 65.1 -> 89.6, Kleister-NDA parties 25.0 -> 25.7;
    without the line rule, items ran on into the next line's ("KRIK LEFFEBLONDE ...": 20.1)."""
    n = chosen.index(end_id) if end_id in chosen else len(chosen)
    ld = copy_lp.shape[1]
    if n < 2 or any(c < vocab_size and c != sep_id for c in chosen[:n]) or not starts.any():
        return chosen, logprobs
    copy, sep_at = copy_lp.float().numpy(), sep_lp.float().numpy()  # numpy: 2x faster than torch here
    run = np.where(starts, copy[0], -1e9)  # best path whose slot i copies piece j
    sep = np.full(ld, -1e9, dtype=np.float32)  # best path whose slot i separates, the last item ended at j
    pieces = np.arange(ld)
    new_item, sep_after_sep, after = [], [], []  # per slot >= 1, to trace the path back
    for i in range(1, n):  # slot n holds END (or n is every slot)
        top = np.maximum.accumulate(sep)  # best separator ending at or before j, and where
        arg = np.maximum.accumulate(np.where(sep >= top, pieces, 0))
        opened = np.where(starts, np.concatenate([[-1e9], top[:-1]]), -1e9)  # an item ended before j
        cont = np.where(breaks, -1e9, np.concatenate([[-1e9], run[:-1]]))  # piece j - 1 in slot i - 1, same line
        new_item.append(opened > cont)
        after.append(np.concatenate([[0], arg[:-1]]))
        sep_after_sep.append(sep > run)
        sep = np.maximum(run, sep) + sep_at[i]
        run = np.maximum(cont, opened) + copy[i]
    in_run = bool(run.max() >= sep.max())  # a list may end on separators (empty items)
    j = int(run.argmax() if in_run else sep.argmax())
    path: list[int] = []
    for i in range(n - 1, -1, -1):
        path.append(vocab_size + j if in_run else sep_id)
        if i == 0:
            break
        if not in_run:
            in_run = not sep_after_sep[i - 1][j]
        elif new_item[i - 1][j]:
            j, in_run = int(after[i - 1][j]), False
        else:
            j -= 1
    path.reverse()
    lps = [float(sep_at[i]) if c == sep_id else float(copy[i, c - vocab_size]) for i, c in enumerate(path)]
    return path + chosen[n:], lps + logprobs[n:]


def extend_run(chosen: list[int], logprobs: list[float], copy_lp: Tensor, end_lp: Tensor,
               vocab_size: int, end_id: int, bonus: float) -> tuple[list[int], list[float]]:
    """A copied run that ends early, carried on along the page when the slots after its END
    read the next pieces nearly as well.

    Out of its training domain the model puts END a word early ("Yale" for "Yale University",
    "Fishing" for "Fishing Company": 19 of realworld-dev's 24 cut answers, against 2 too long).
    A run (start s, END at slot n) becomes the longer run of the same start (length L >= n, the
    slots' own copy log-probabilities) maximising
    ``sum(copy_lp[i, s + i] for i < L) + end_lp[L] + bonus * L``; ``bonus`` 0 keeps every run.
    Values that write vocabulary tokens, nulls and stitched values are kept.
    """
    if bonus <= 0 or end_id not in chosen:
        return chosen, logprobs
    n = chosen.index(end_id)
    m, ld = copy_lp.shape
    pos = [c - vocab_size for c in chosen[:n]]
    if not pos or min(pos) < 0 or any(b != a + 1 for a, b in zip(pos, pos[1:], strict=False)) or n >= m - 1:
        return chosen, logprobs
    s = pos[0]
    best, best_score, carried = n, float(end_lp[n]) + bonus * n, 0.0  # the part after slot n - 1 only
    for length in range(n + 1, min(m, ld - s + 1)):  # piece s + length - 1 in slot length - 1, END after
        carried += float(copy_lp[length - 1, s + length - 1])
        score = carried + float(end_lp[length]) + bonus * length
        if score > best_score:
            best, best_score = length, score
    if best == n:
        return chosen, logprobs
    run = [vocab_size + s + k for k in range(best)]
    lps = [float(copy_lp[k, s + k]) for k in range(best)] + [float(end_lp[best])]
    return run + [end_id] + chosen[best + 1 :], lps + logprobs[best + 1 :]


MAX_LINES = 4  # lines one value may run over (`next_lines`)


def next_lines(chosen: list[int], enc: Encoded, page: Page, vocab_size: int, end_id: int) -> bool:
    """Whether a stitched value (copied pieces, not one run) reads as the lines of one block:
    each jump lands on the first piece of a word that starts the next line below, left-aligned
    with the value's first word ("43 Brooklyn Road" / "Alburquerque, NM 87102" in a column with
    other text beside it, so the two lines are not one run of the reading order), up to
    ``MAX_LINES`` lines. Such a value is kept as chosen; other stitched values go to
    `contiguous`. A "471102 789" (a number, then one further down and elsewhere) is not."""
    if enc.doc is None:
        return False
    n = chosen.index(end_id) if end_id in chosen else len(chosen)
    pos = [c - vocab_size - 1 for c in chosen[:n]]  # pieces of the window
    if not pos or min(pos) < 0 or max(pos) >= len(enc.doc.ids):
        return False
    d, words = enc.doc, page.words
    first = words[d.word_index[pos[0]]].box
    jumps = 0
    for a, b in zip(pos, pos[1:], strict=False):
        if b == a + 1:
            continue
        jumps += 1
        wa, wb = words[d.word_index[a]].box, words[d.word_index[b]].box
        h = max(wa[3] - wa[1], 1e-6)
        below = 0.5 * h <= wb[1] - wa[1] <= 3 * h  # the next line down (top to top)
        if b < a or jumps >= MAX_LINES or d.char_span[b][0] != 0 or not below or abs(wb[0] - first[0]) > h:
            return False
    return jumps > 0


def clean_items(chosen: list[int], logprobs: list[float], copy_lp: Tensor, sep_lp: Tensor, enc: Encoded,
                page: Page, cfg: ModelConfig) -> tuple[list[int], list[float]]:
    """A list value's items as both decoders write them: each one run of one line of the page,
    in page order (`item_runs`), and an item stitched from scattered pieces made one run
    (`contiguous_items`) unless it reads as the next lines of one block. copy_lp: (m, Ld) the
    key's slots' copy log-probabilities; sep_lp: (m,) their item separator's."""
    starts, breaks = piece_marks(enc, copy_lp.shape[-1])
    V, end = cfg.vocab_size, cfg.end_id
    ids, lps = item_runs(chosen, logprobs, copy_lp, sep_lp, starts, breaks, V, end, ITEM_SEP_ID)

    def lines(item: list[int]) -> bool:
        return next_lines(item, enc, page, V, end)

    return contiguous_items(ids, lps, copy_lp, V, end, ITEM_SEP_ID, lines)


@dataclass
class KeyValue:
    """One key's answer: its value (None when the key is absent), confidence and word boxes.
    ``complete`` is False when the value filled every slot without an END: it may be cut."""

    key: str
    value: str | list[str] | None
    confidence: float
    boxes: list[Box] = field(default_factory=list)
    complete: bool = True
    # Set by --min-confidence: the answer that was turned into null, and its confidence.
    rejected: dict | None = None
    page: int | None = None  # 0-based page of the document the answer (and its boxes) is on
    # Pieces of its window on the value's tighter side (inf where the window reaches the
    # page's edge, or nothing was copied): an answer read near a window's cut saw half its
    # context. `docsprint.pipeline.merge` prefers answers read with enough of it.
    context: float = math.inf
    # For a null of parallel decoding: the page's best run for the key (`best_run`, then
    # `extend_run`), which `docsprint.pipeline.merge` answers instead where the calibration
    # finds it likelier right.
    alternative: KeyValue | None = None


    def to_dict(self) -> dict:
        out: dict[str, object] = {
            "value": self.value,
            "confidence": round(self.confidence, 4),
            "boxes": [[round(c, 1) for c in b] for b in self.boxes],
        }
        if self.page is not None:
            out["page"] = self.page
        if isinstance(self.value, str) and (typed := normalized(self.key, self.value)) is not None:
            out["normalized"] = typed  # "2018-03-05" for "05.03.2018", 1234.56 for "1.234,56 €"
        if self.rejected is not None:
            out["rejected"] = self.rejected
        return out


def _run_on(a: list[str], b: list[str]) -> int:
    """How many of words ``a``'s last are words ``b``'s first (the last one copied in part may be
    the start of its word: "ORCUTT J" then "J. J. BUXTON"); 0 when none, and never all of ``a``.

    >>> _run_on("Joe Leinster Joyce".split(), "Joyce Bagby".split()), _run_on(["x", "J"], ["J.", "y"])
    (1, 1)
    """
    for k in range(min(len(a) - 1, len(b)), 0, -1):
        if a[len(a) - k : -1] == b[: k - 1] and b[k - 1].startswith(a[-1]):
            return k
    return 0


def cut_run_ons(answers: dict[str, KeyValue], list_keys: frozenset[str] = frozenset()) -> dict[str, KeyValue]:
    """Words that answer one key do not answer another too. Where a key's value ran on into
    another key's answer at least half as sure (the same words of the same page: its last
    words are the other's first, or the other's whole answer is its start), the run-on part is
    cut from it: "Location": "Leguna Seca, Monterey, Ca San Jose/ 933" where "Division"
    answers "San Jose/ 933" -> "Leguna Seca, Monterey, Ca"; "To": "Joe Leinster Joyce" where
    "From" answers "Joyce Bagby" -> "Joe Leinster". Values that are the same words whole stay
    as they are (a form may print one answer for two questions), and so does a value whose
    rest would be no word ("571.04 €" where "total" answers "571.04"). List keys are left
    alone. Changes and returns ``answers``.

    >>> b = (0.0, 0.0, 1.0, 1.0), (2.0, 0.0, 3.0, 1.0), (4.0, 0.0, 5.0, 1.0)
    >>> out = cut_run_ons({"a": KeyValue("a", "x y z", 0.9, list(b)), "b": KeyValue("b", "y z", 0.8, list(b[1:]))})
    >>> out["a"].value, out["a"].boxes == [b[0]], out["b"].value
    ('x', True, 'y z')
    """
    plain = [kv for k, kv in answers.items() if k not in list_keys and isinstance(kv.value, str) and kv.boxes]
    for a in sorted(plain, key=lambda kv: -len(kv.boxes)):
        for b in plain:
            va, vb = a.value, b.value
            if b is a or not isinstance(va, str) or not isinstance(vb, str) or a.page != b.page:
                continue
            mine, theirs = set(a.boxes), set(b.boxes)
            if mine == theirs or not mine & theirs or b.confidence < a.confidence / 2:
                continue
            ta = va.split()
            k = _run_on(ta, vb.split()) if a.boxes[-1] in theirs and b.boxes[0] in mine else 0
            if k:
                rest = " ".join(ta[:-k])
            elif theirs < mine and va.startswith(vb + " "):
                rest = va[len(vb) + 1 :].lstrip()
            else:
                continue
            if _alnum(rest):  # "571.04 €" for an amount due where the total reads "571.04" stays whole
                a.value, a.boxes = rest, [x for x in a.boxes if x not in theirs]
    return answers


def _one_run(a: str, b: str) -> bool:
    """Do characters ``a`` and ``b`` side by side belong to one run of digits or of letters?"""
    return (a.isdigit() and b.isdigit()) or (a.isalpha() and b.isalpha())


def _rest_of_word(copied: list[int], prev_word: int, enc: Encoded, page: Page) -> str:
    """The rest of the word a copied value stopped inside, when the cut splits a run of digits
    or of letters, or follows a hyphen or slash: a page writes "honeygrow", "489723-B" and "2022"
    whole, and an END one piece early ("honey", "489723-", "202") is never the value. A number
    cut at its decimal point or thousands separator, after it ("$374." of "$374.23", "1," of
    "1,234.50") or before it ("23" of "$23.26", "1" of "1,500"), takes the rest of the number
    (after it, v13 on its run's dev documents: WildReceipt 54.94 -> 55.56% of fields right,
    synth 94.00 -> 94.07, the rest unchanged; before it, v19 on its run's dev documents: 3 fields
    gained, none lost, and realworld-dev 71.64% -> 71.97%: "5,000", "1,500"). A count cut
    before its "x" ("1" of "1x") takes it: v22a on WildReceipt's 27 dev receipts F1 67.04 ->
    69.65 (item quantity 65.0 -> 76.6), SROIE, FUNSD and Kleister-NDA dev and realworld-dev
    unchanged. Any other cut between kinds ("12.00" of "12.00RM", "3" of "3kg") and trailing
    punctuation stay as they are. With v10 weights, realworld-dev 64.8% -> 65.7% of fields
    right (5 fields gained: "489723-B", "17-70009827-11", "Picard", ...; none lost); on the v10
    run's dev documents 8 fields gained, none lost."""
    if not copied or prev_word < 0 or enc.doc is None:
        return ""
    text = page.words[prev_word].text
    b = enc.doc.char_span[copied[-1]][1]
    if b <= 0 or b >= len(text):
        return ""
    last, nxt = text[b - 1], text[b]
    after_sep = last in ".," and b >= 2 and text[b - 2].isdigit() and nxt.isdigit()  # "1." of "1.74"
    before_sep = last.isdigit() and re.match(r"[.,]\d", text[b:])  # "23" of "$23.26", "1" of "1,500"
    if after_sep or before_sep:
        return re.match(r"[\d.,]*\d", text[b:])[0]  # type: ignore[index]  # the rest of the number
    if last.isdigit() and text[b:] in ("x", "X"):
        return text[b:]  # a count: "2x" whole
    if not (_one_run(last, nxt) or (last in "-/" and nxt.isalnum())):
        return ""
    rest = text[b:]
    return rest.rstrip(".,;:!?)]}\"'")


# Units of time a duration's count is written with ("1 year", "30 days", "6 Monate", "2 ans").
TIME_UNIT = re.compile(r"(days?|weeks?|months?|years?|tage?n?|wochen?|monate?n?|jahre?n?|jours?|semaines?|mois|ans|"
                       r"ann[ée]es?|d[íi]as?|semanas?|mes(es)?|a[ñn]os?)", re.IGNORECASE)


def _unit_after(value: str, word: int, page: Page) -> tuple[int, str] | None:
    """The word after a value that is a bare count (its index and its text, trailing punctuation
    left out), when it is a unit of time on the same line: a term or a notice period is "1 year",
    never "1", and a model that ends one word early has cut it (v31 on Kleister-NDA's dev
    contracts: "1 year" read "1")."""
    if word < 0 or word + 1 >= len(page.words) or not re.fullmatch(r"\d+", value):
        return None
    unit = page.words[word + 1].text.rstrip(".,;:)")
    on_line = _next_on_line(page.words[word].box, page.words[word + 1].box)
    return (word + 1, unit) if on_line and TIME_UNIT.fullmatch(unit) else None


def _next_on_line(a: Box, b: Box, gap: float = 1.5) -> bool:
    """Box ``b`` goes on the line of box ``a``: its middle within a word height of a's, and it
    starts at most ``gap`` heights after a ends (a wider gap is another column)."""
    h = max(a[3] - a[1], 1e-6)
    return abs((a[1] + a[3]) - (b[1] + b[3])) < h and -0.5 * h <= b[0] - a[2] <= gap * h


def _amount_after_sign(value: str, word: int, page: Page, boxes: dict[int, Box]) -> tuple[str, int]:
    """A bare currency sign is no answer where its amount follows on its line, however wide
    the gap of a column ("$" -> "$ 10.000." on a form's "JAN  $      10.000."): ``value`` (its
    last word is page word ``word``) with that amount (its box noted in ``boxes``), and its
    last word. Not for amount keys: their bare sign does not `fits`, and `typed_run` takes the
    page's best run with a number instead."""
    if not value or not all(unicodedata.category(ch) == "Sc" for ch in value) or word + 1 >= len(page.words):
        return value, word
    nxt = page.words[word + 1]
    if re.fullmatch(r"\d[\d.,']*", nxt.text) and _next_on_line(page.words[word].box, nxt.box, gap=4.0):
        boxes.setdefault(word + 1, nxt.box)
        return f"{value} {nxt.text}", word + 1
    return value, word


def _balance_brackets(value: str, word: int, page: Page, boxes: dict[int, Box]) -> str:
    """A value ``value`` (its last word is page word ``word``) with its brackets balanced along
    its line: a closing bracket it never opened, as a word of its own, is dropped ("X )" ->
    "X"); one it opens and does not close is read on to its close, at most six words along
    the line ("THE AMERICAN TOBACCO COMPANY (" -> "... (LUCKY STRIKE)"). The boxes of the words
    taken or dropped are noted in ``boxes``; a bracket that does not close on its line stays."""
    toks = value.split()
    depth = value.count("(") - value.count(")")
    if depth < 0 and len(toks) > 1 and not toks[-1].strip(")") and page.words[word].text.strip() == toks[-1]:
        boxes.pop(word, None)
        return " ".join(toks[:-1])
    if depth <= 0:
        return value
    taken = _whole_last(toks, page.words[word].text)[-1:]  # the word read in part: whole
    depth = " ".join(toks[:-1] + taken).count("(") - " ".join(toks[:-1] + taken).count(")")
    w = word
    while depth > 0 and w + 1 < len(page.words) and len(taken) <= 6 and _next_on_line(page.words[w].box, page.words[w + 1].box):
        w += 1
        taken.append(page.words[w].text)
        depth += page.words[w].text.count("(") - page.words[w].text.count(")")
    if depth > 0:
        return value
    for i in range(word, w + 1):
        boxes.setdefault(i, page.words[i].box)
    return " ".join(toks[:-1] + taken)


def _whole_last(toks: list[str], text: str) -> list[str]:
    """Words ``toks`` of a value whose last word is page word ``text``, that word whole where it
    was read in part ("(" of "(LUCKY")."""
    return toks[:-1] + [text] if toks and text != toks[-1] and text.startswith(toks[-1]) else toks


def _rest_of_phrase(value: str, word: int, page: Page, boxes: dict[int, Box], stop: set[int]) -> tuple[str, int]:
    """A printed label's answer does not stop inside its phrase: ``value`` (its last word is
    page word ``word``) with the words that follow on its line at a word's spacing (the next
    word at most a word height after the one before), and its new last word ("Reason: Lower
    Incidence" read "Lower"). A phrase that runs into a printed key (a word of ``stop``) or a
    label's colon ("Month of May Organization/ Employer Name:") is left as it was: where the
    answer ends in it is not to be told. The boxes of the words taken are noted in ``boxes``."""
    w = word
    while w + 1 < len(page.words) and _next_on_line(page.words[w].box, page.words[w + 1].box, gap=1.0):
        if w + 1 in stop or page.words[w + 1].text.rstrip().endswith(":"):
            return value, word
        w += 1
    for i in range(word + 1, w + 1):
        boxes.setdefault(i, page.words[i].box)
    toks = _whole_last(value.split(), page.words[word].text) if w > word else value.split()
    return " ".join(toks + [page.words[i].text for i in range(word + 1, w + 1)]), w


def _end_item(current: str, copied: list[int], prev_word: int, enc: Encoded, page: Page, boxes: dict[int, Box]) -> str:
    """An item's text once its last copied piece is known: the rest of a word it was cut in
    (`_rest_of_word`), and the unit of a bare count of time (`_unit_after`)."""
    text = current + _rest_of_word(copied, prev_word, enc, page)
    unit = _unit_after(text.strip(), prev_word, page)
    if unit is None:
        return text
    boxes.setdefault(unit[0], page.words[unit[0]].box)
    return text + " " + unit[1]


def _start_of_word(piece: int, enc: Encoded, page: Page) -> str:
    """The beginning of the word a copied value starts inside, when the cut splits a run of
    digits or of letters, or the value would start with a closing bracket: ") years" of
    "(2) years" is "(2) years", "23.26" of "$23.26" stays as it is."""
    if enc.doc is None:
        return ""
    a = enc.doc.char_span[piece][0]
    text = page.words[enc.doc.word_index[piece]].text
    if a <= 0 or a >= len(text):
        return ""
    last, first = text[a - 1], text[a]
    if _one_run(last, first) or first in ")]":
        return text[:a]
    return ""


def assemble(
    key: str,
    chosen: list[int],
    logprobs: list[float],
    enc: Encoded,
    page: Page,
    cfg: ModelConfig,
    tok: Tokenizer,
    is_list: bool = False,
) -> KeyValue:
    """Turn the chosen indices of one key's value tokens (vocabulary id, or vocab_size + a
    document position) into the value.

    Tokens after the first END are ignored. Copied pieces keep the document's characters; two
    pieces of the same word are joined without a space (with one where the word itself has a
    space between them: a dataset's "word" may be "Suzi Hicks"), pieces of different words with one; slots
    that go back into the word they are copying ("WATERWATER") add nothing (a page writes each
    piece once).
    Confidence = geometric mean of the chosen tokens' probabilities, END included.
    """
    V = cfg.vocab_size
    n = len(chosen)
    complete = False
    for i, c in enumerate(chosen):
        if c == cfg.end_id:
            n, complete = i + 1, True
            break
    confidence = math.exp(sum(logprobs[:n]) / max(n, 1))
    items: list[str] = []
    current = ""
    prev_word = -1
    boxes: dict[int, Box] = {}
    copied: list[int] = []
    prev_end = 0  # where the last copied piece ends in its word's text
    for c in chosen[:n]:
        if c == cfg.end_id:
            break
        if c == ITEM_SEP_ID:
            items.append(_end_item(current, copied, prev_word, enc, page, boxes))
            current, prev_word = "", -1
            continue
        if c >= V and enc.doc is not None:
            j = c - V - 1  # document position -> index into the window's pieces
            w = enc.doc.word_index[j]
            if copied and w == prev_word and j <= copied[-1]:
                continue  # slots re-reading the word they are in ("WATERWATER"): written once
            copied.append(j)
            a, b = enc.doc.char_span[j]
            text = page.words[w].text
            piece = text[a:b]
            if not current:  # an item starts: never inside a word
                piece = _start_of_word(j, enc, page) + piece
            boxes.setdefault(w, page.words[w].box)
            if w == prev_word:  # the same word: its own space, if it has one between the pieces
                sep = " " if any(ch.isspace() for ch in text[prev_end:a]) else ""
            else:
                sep = " " if current else ""
            current += sep + piece
            prev_word, prev_end = w, b
        else:
            piece = tok.id_to_token(c) or ""
            if piece.startswith("##"):
                current += piece[2:]
            else:
                current += (" " if current else "") + piece
            prev_word = -1
    items.append(_end_item(current, copied, prev_word, enc, page, boxes))
    if len(items) == 1 and not is_list and copied and enc.doc is not None:
        last, kind = enc.doc.word_index[copied[-1]], key_kind(key)
        if kind != "amount":
            items[0], last = _amount_after_sign(items[0].strip(), last, page, boxes)
        k = enc.keys.index(key) if key in enc.keys else -1
        if k >= 0 and enc.key_scale and enc.key_scale[k] > 1 and kind is None:  # a printed label's answer
            stop = {w for _, words in _printed_runs(enc, page) for w in range(words[0], words[-1] + 1)}
            items[0], last = _rest_of_phrase(items[0].strip(), last, page, boxes, stop)
        items[0] = _balance_brackets(items[0].strip(), last, page, boxes)
    items = [s.strip() for s in items if s.strip()]
    value: str | list[str] | None
    if not items:
        value = None
    elif is_list:
        value = items
    else:
        value = " ".join(items)
    context = math.inf
    if copied and value is not None and enc.doc is not None:
        d = enc.doc
        left = math.inf if d.word_index[0] == 0 else min(copied)
        right = math.inf if d.word_index[-1] == len(page.words) - 1 else len(d.ids) - 1 - max(copied)
        context = min(left, right)
    return KeyValue(key, value, confidence, [boxes[w] for w in sorted(boxes)], complete, context=context)


def _phrase(p: int, enc: Encoded, page: Page, gap: float = 1.5) -> list[int]:
    """The pieces from piece ``p`` on that read as one typed phrase: the same line, each word
    at most ``gap`` word heights after the one before (a wider gap is another column)."""
    d, words = enc.doc, page.words
    assert d is not None
    out = [p]
    for q in range(p + 1, len(d.ids)):
        if d.word_index[q] != d.word_index[q - 1] and not _next_on_line(words[d.word_index[q - 1]].box,
                                                                         words[d.word_index[q]].box, gap):
            break
        out.append(q)
    return out


def _lines_below(last: int, top: float, right: float, first: Box, h: float, reach: float, enc: Encoded,
                 page: Page) -> Iterator[list[int]]:
    """The phrases (`_phrase`) after piece ``last`` in the reading order that start a line
    0.5 to ``reach`` heights ``h`` under ``top``, left-aligned with ``first`` within a height,
    and do not go on a phrase to their left: "AD29094" after "P.O./S.O. Number:" is the next
    field of a column of values, not the next line of "14". It stops at the line below when the
    reading order runs on into it from ``last``, in the column (left of ``right``): the block is
    one run there, `contiguous`'s."""
    d, words = enc.doc, page.words
    assert d is not None
    for q in range(last + 1, len(d.ids)):
        b = words[d.word_index[q]].box
        if d.char_span[q][0] != 0 or not 0.5 * h <= b[1] - top <= reach * h:
            continue
        if q == last + 1 and b[0] <= right:
            return
        if abs(b[0] - first[0]) > h:
            continue
        a = words[d.word_index[q - 1]].box
        if abs((a[1] + a[3]) - (b[1] + b[3])) < h and -0.5 * h <= b[0] - a[2] <= 1.5 * h:
            continue  # the word before it is on its line, close: a label and its value
        yield _phrase(q, enc, page)


def block_phrases(chosen: list[int], logprobs: list[float], enc: Encoded, page: Page, vocab_size: int,
                  end_id: int, reach: float = 4.0) -> tuple[list[int], list[float]] | None:
    """A stitched value whose slots reach for the lines under its first one, read as the block
    of phrases those lines hold; None when the slots do not reach for a line below.

    On a form a value's lines are often far apart in the reading order: a 1099's payer address
    "P.O. Box 202032" and "New Haven, CT 06520-8283" have the money boxes' captions between
    them. The slots copy pieces of both lines, but after the gap they lose their alignment
    ("p . o . box 2020 ##32 , ct ct": "new haven" skipped, "ct" twice), so the value is
    neither one run nor `next_lines`, and `contiguous` would keep the first line only (the
    slots' log-probabilities put "new" two slots early: no path that keeps one piece a slot
    scores the second line above END). Here the value is the phrase (`_phrase`) from the first
    chosen piece, then, line by line (up to ``MAX_LINES``), the first phrase that starts a line
    below (its top 0.5 to ``reach`` heights under the last line's, left-aligned with the first
    word within a height) and holds at least two of the chosen pieces (or all of a shorter
    phrase), when other words come between the two in the reading order (lines that follow
    each other are one run, which `contiguous` reads). Left-aligned lines the slots do not
    reach for are passed over: a 1099's "150 Murray Avenue APT 104" and "New Haven, CT 06511"
    have the caption "City or town, state ..." between them, in the same column. Its
    confidence is the slots' own: the mean log-probability of what they chose."""
    if enc.doc is None:
        return None
    d, words = enc.doc, page.words

    def box(piece: int) -> Box:
        return words[d.word_index[piece]].box

    n = chosen.index(end_id) if end_id in chosen else len(chosen)
    raw = [c - vocab_size - 1 for c in chosen[:n]]
    if not raw or min(raw) < 0 or max(raw) >= len(d.ids):
        return None
    first = box(raw[0])
    h = max(first[3] - first[1], 1e-6)
    lines = [_phrase(raw[0], enc, page)]
    while len(lines) < MAX_LINES:
        last, top = lines[-1][-1], box(lines[-1][0])[1]
        right = max(box(p)[2] for p in lines[-1])
        line = next((c for c in _lines_below(last, top, right, first, h, reach, enc, page)
                     if sum(p in c for p in raw) >= min(2, len(c))), None)
        if line is None:
            break
        lines.append(line)
    if len(lines) == 1:
        return None
    pieces = [p for line in lines for p in line]
    own = logprobs[: n + 1]  # the chosen slots, END included when there is one
    mean = sum(own) / len(own)
    return [vocab_size + 1 + p for p in pieces] + [end_id], [mean] * (len(pieces) + 1)
