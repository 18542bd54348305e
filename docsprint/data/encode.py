"""From a page and a list of keys to model inputs: word pieces with boxes, the key prompt with
its value slots, and (for training) the targets of every value token.

Layout of one sequence: ``[CLS] document tokens [SEP]`` then the prompt: per key, the key's
name tokens followed by its value tokens. Prompt tokens count their 1D positions from 0, like
a second sentence; value token i of a key sits at the same position in both modes.
In *parallel* mode every value token is a [MASK] slot
(rank 0, bidirectional). In *autoregressive* mode value token i of a key holds token i-1 of
the value (teacher forcing) and has a rank one higher than the previous value token.

A value token's target is an index into ``[vocabulary | document tokens]``: a document
position when the token can be copied (so the document's exact spelling comes back), else a
vocabulary id. Values are lists of items joined by ``ITEM_SEP``; a value ends with END.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer

from docsprint.io.document import Page
from docsprint.models.config import DOC, KEY, VALUE, ModelConfig
from docsprint.models.model import TokenInputs

ITEM_SEP_ID = 2  # [unused1]: separates the items of a repeated field (line items)
Value = str | list[str] | None


@dataclass
class DocTokens:
    """The word pieces of a window of a page, aligned with its words."""

    ids: list[int]
    bbox: list[tuple[int, int, int, int]]
    word_index: list[int]  # index into page.words of the word each piece comes from
    char_span: list[tuple[int, int]]  # characters of that word the piece covers


@dataclass
class Encoded:
    """One window of a document with one prompt, ready to be collated."""

    ids: list[int]
    bbox: list[tuple[int, int, int, int]]
    position: list[int]
    token_type: list[int]
    group: list[int]
    slot: list[int]
    rank: list[int]
    n_doc: int  # sequence positions 0..n_doc-1 are [CLS] doc [SEP]
    value_pos: list[int]  # sequence positions of value tokens
    value_key: list[int]  # which key each value token belongs to
    mention: list[int] = field(default_factory=list)  # k + 1 on document pieces naming key k, else 0
    value_base: list[int] = field(default_factory=list)  # per key: prompt position of token 0
    budget: list[int] = field(default_factory=list)  # per key: its number of value slots
    keys: list[str] = field(default_factory=list)  # the keys asked, in prompt order
    targets: list[list[int]] = field(default_factory=list)  # per value token, valid targets
    doc: DocTokens | None = None
    pixels: torch.Tensor | None = None
    # per key: the factor on its start pointer's geometry bias (decoding sets it, see
    # `ModelConfig.label_geometry`); empty = 1 for every key
    key_scale: list[float] = field(default_factory=list)


def tokenize_page(tok: Tokenizer, page: Page) -> DocTokens:
    """Word pieces of every word, each piece with its word's 0-1000 box and character span."""
    words = [w.text for w in page.words]
    if not words:
        return DocTokens([], [], [], [])
    enc = tok.encode(words, is_pretokenized=True, add_special_tokens=False)
    boxes = [page.norm_box(w) for w in page.words]
    word_ids = [w if w is not None else 0 for w in enc.word_ids]  # every piece comes from a word
    return DocTokens(
        ids=list(enc.ids),
        bbox=[boxes[w] for w in word_ids],
        word_index=word_ids,
        char_span=[(int(a), int(b)) for a, b in enc.offsets],
    )


def windows(doc: DocTokens, size: int, stride: int) -> list[DocTokens]:
    """Cut a long page into overlapping windows of at most ``size`` pieces, never mid-word."""
    n = len(doc.ids)
    if n <= size:
        return [doc]
    out, start = [], 0
    while start < n:
        end = min(start + size, n)
        while end < n and end > start + 1 and doc.word_index[end] == doc.word_index[end - 1]:
            end -= 1
        out.append(DocTokens(doc.ids[start:end], doc.bbox[start:end], doc.word_index[start:end], doc.char_span[start:end]))
        if end == n:
            break
        nxt = max(end - (size - stride), start + 1)
        while nxt < end and doc.word_index[nxt] == doc.word_index[nxt - 1]:
            nxt += 1
        start = nxt
    return out


def thumbnail(image: Image.Image | None, size: int) -> np.ndarray | None:
    """The page as the model sees it: a (size, size, 3) uint8 RGB array, or None."""
    if image is None:
        return None
    return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def thumbnail_pixels(thumb: np.ndarray | None) -> torch.Tensor | None:
    """A `thumbnail` as the model's (3, S, S) input in [-1, 1]."""
    if thumb is None:
        return None
    arr = np.asarray(thumb, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def page_pixels(image: Image.Image | None, cfg: ModelConfig) -> torch.Tensor | None:
    """The page as a (3, S, S) tensor in [-1, 1], or None for a page without an image."""
    return thumbnail_pixels(thumbnail(image, cfg.image_size))


def value_ids(tok: Tokenizer, value: Value) -> list[int]:
    """Token ids of a value; the items of a list are joined by ITEM_SEP. None -> []."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[int] = []
    for i, item in enumerate(items):
        if i:
            out.append(ITEM_SEP_ID)
        out.extend(tok.encode(item, add_special_tokens=False).ids)
    return out


def align(doc_ids: list[int], target: list[int]) -> list[list[int]]:
    """For each target token, the document positions it may be copied from (maybe none).

    Every exact occurrence of the whole value is accepted (the loss sums over them); without
    one, a monotone alignment (difflib) copies the tokens that match and leaves the rest to
    the vocabulary.
    """
    n, m = len(doc_ids), len(target)
    if m == 0:
        return []
    starts = [s for s in range(n - m + 1) if doc_ids[s : s + m] == target]
    if starts:
        return [[s + i for s in starts] for i in range(m)]
    out: list[list[int]] = [[] for _ in range(m)]
    matcher = difflib.SequenceMatcher(None, doc_ids, target, autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for j in range(size):
            out[b + j] = [a + j]
    return out


def key_name_ids(tok: Tokenizer, key: str) -> list[int]:
    """The word pieces of a key's name in the prompt (at most 16)."""
    return tok.encode(key, add_special_tokens=False).ids[:16] or [tok.token_to_id("[UNK]") or 100]


def key_chunks(tok: Tokenizer, cfg: ModelConfig, keys: list[str], max_tokens: int | None = None) -> list[list[str]]:
    """Split ``keys`` into prompts that fit the model: at most ``max_keys`` keys and
    ``max_tokens`` (default ``max_positions``) prompt tokens, names and slots, each. One
    prompt is one forward pass; FUNSD forms with 40 questions need two or three."""
    limit = max_tokens or cfg.max_positions
    chunks: list[list[str]] = [[]]
    used = 0
    for key in keys:
        n = len(key_name_ids(tok, key)) + cfg.slots_for(key)
        if chunks[-1] and (used + n > limit or len(chunks[-1]) >= cfg.max_keys):
            chunks.append([])
            used = 0
        chunks[-1].append(key)
        used += n
    return chunks if keys else []


# Words that alone never make a mention: "of the" in a page is not the key "date of the order".
_STOP = frozenset("a an and as at by de del der des die das du el en et for from in is la le les no "
                  "of on or the to und von with y".split())


def key_mentions(tok: Tokenizer, doc_ids: list[int], keys: list[str]) -> list[int]:
    """For each document piece: k + 1 where the page prints (part of) the k-th key's name, else 0.

    A mention is a run of document pieces equal to a contiguous part of a key's name, both
    read without punctuation ("Date of Birth:" names "date of birth"), at least two pieces
    long or the whole name ("Total" names "total"), and not stop words only. Where runs
    overlap, the longest wins. The model adds the key's group embedding to these pieces
    (`Embeddings.text`), so a question printed on a form points at its own key.
    """
    def skip(i: int) -> bool:
        t = tok.id_to_token(i) or ""
        return not any(c.isalnum() for c in t)

    def stop(i: int) -> bool:
        return (tok.id_to_token(i) or "") in _STOP

    kept = [p for p, i in enumerate(doc_ids) if not skip(i)]
    text = [doc_ids[p] for p in kept]
    full = [key_name_ids(tok, key) for key in keys]  # each key's pieces, its punctuation too
    names = [[i for i in ids if not skip(i)] for ids in full]
    starts: dict[int, list[tuple[int, int]]] = {}  # piece -> (key, index in its name)
    for k, name in enumerate(names):
        for j, i in enumerate(name):
            starts.setdefault(i, []).append((k, j))
    runs = []  # (length, start in text, key)
    for a, i in enumerate(text):
        for k, j in starts.get(i, ()):
            n = 1
            while a + n < len(text) and j + n < len(names[k]) and text[a + n] == names[k][j + n]:
                n += 1
            if (n >= 2 or n == len(names[k])) and not all(stop(t) for t in text[a : a + n]):
                runs.append((n, a, k))
    out = [0] * len(doc_ids)
    for n, a, k in sorted(runs, key=lambda r: (-r[0], r[1], r[2])):
        if all(out[kept[a + m]] == 0 for m in range(n)):
            for m in range(n):
                out[kept[a + m]] = k + 1
    # A key of small words only ("TO:", "From:", "No.") is named where the page prints it
    # with its punctuation: a memo's "TO:" is its question, the "to" of a sentence is not.
    for k, ids in enumerate(full):
        if names[k] and all(stop(i) for i in names[k]) and len(ids) > len(names[k]):
            for a in range(len(doc_ids) - len(ids) + 1):
                span = range(a, a + len(ids))
                if doc_ids[a : a + len(ids)] == ids and all(out[p] == 0 for p in span):
                    for p in span:
                        out[p] = 0 if skip(doc_ids[p]) else k + 1
    return out


def encode(
    tok: Tokenizer,
    cfg: ModelConfig,
    doc: DocTokens,
    keys: list[str],
    mode: str = "parallel",
    values: list[Value] | None = None,
    pixels: torch.Tensor | None = None,
    slots: list[int] | None = None,
) -> Encoded:
    """Build the sequence for ``keys`` over one document window.

    ``values`` (training only) gives each key's true value; in autoregressive mode the value
    tokens are then teacher-forced. Without values, autoregressive mode returns the prefix only.
    ``slots`` (mask pre-training) gives each key exactly that many slots instead of its budget:
    as many masks as the span has pieces.
    """
    if mode not in ("parallel", "autoregressive"):
        raise ValueError(f"unknown mode {mode!r}")
    if len(keys) > cfg.max_keys:
        raise ValueError(f"at most {cfg.max_keys} keys per prompt, got {len(keys)}")
    V = cfg.vocab_size
    n_doc = len(doc.ids) + 2
    e = Encoded(
        ids=[cfg.cls_id, *doc.ids, cfg.sep_id],
        bbox=[(0, 0, 0, 0), *doc.bbox, (1000, 1000, 1000, 1000)],
        position=list(range(n_doc)),
        token_type=[DOC] * n_doc,
        group=[0] * n_doc,
        slot=[0] * n_doc,
        rank=[0] * n_doc,
        n_doc=n_doc,
        value_pos=[],
        value_key=[],
        mention=[0, *(key_mentions(tok, doc.ids, keys) if cfg.key_mentions else [0] * len(doc.ids)), 0],
        doc=doc,
        pixels=pixels,
        keys=list(keys),
    )
    rank = 0
    prompt_pos = 0
    last_pos = cfg.max_positions - 1
    for k, key in enumerate(keys):
        name = key_name_ids(tok, key)
        for t in name:
            e.ids.append(t)
            e.bbox.append((0, 0, 0, 0))
            e.position.append(min(prompt_pos, last_pos))
            prompt_pos += 1
            e.token_type.append(KEY)
            e.group.append(k + 1)
            e.mention.append(0)
            e.slot.append(0)
            e.rank.append(0)
        budget = slots[k] if slots is not None else cfg.slots_for(key)
        target: list[int] = []
        copy_from: list[list[int]] = []
        if values is not None:
            target = value_ids(tok, values[k])
            if slots is None:  # training never cuts a value: its END is always where it ends
                budget = max(budget, min(len(target) + 1, cfg.max_slots))
            target = target[: budget - 1]
            copy_from = [[p + 1 for p in ps] for ps in align(doc.ids, target)]  # +1: [CLS]
        e.value_base.append(prompt_pos)
        e.budget.append(budget)
        n_slots = budget  # parallel: every slot; autoregressive: the teacher-forced tokens
        if mode == "autoregressive":
            n_slots = len(target) + 1 if values is not None else 0
        for i in range(n_slots):
            if mode == "parallel":
                inp, box = cfg.mask_id, (0, 0, 0, 0)
            elif i == 0:
                inp, box = cfg.bos_id, (0, 0, 0, 0)
            else:
                inp = target[i - 1]
                box = e.bbox[copy_from[i - 1][0]] if copy_from[i - 1] else (0, 0, 0, 0)
            rank += mode == "autoregressive"
            e.value_pos.append(len(e.ids))
            e.value_key.append(k)
            e.ids.append(inp)
            e.bbox.append(box)
            e.position.append(min(prompt_pos + i, last_pos))
            e.token_type.append(VALUE)
            e.group.append(k + 1)
            e.mention.append(0)
            e.slot.append(i + 1)
            e.rank.append(rank)  # stays 0 in parallel mode
            if values is not None:
                if i < len(target):
                    # The copy prior reads token i's position p as a value starting at p - i
                    # (models/model.py), which must be a document token: p - i >= 1, since
                    # position 0 is [CLS]. Any other copy target costs ~1e4 nats, unlearnable.
                    copies = [V + p for p in copy_from[i] if p > i]
                    e.targets.append(copies or [target[i]])
                else:
                    e.targets.append([cfg.end_id])
        prompt_pos += budget
    return e


@dataclass
class Batch:
    tokens: TokenInputs
    pixels: torch.Tensor | None
    doc_copyable: torch.Tensor  # (B, Ld) bool: document pieces that may be copied
    n_doc_max: int
    value_pos: torch.Tensor  # (B, Q) sequence positions of value tokens (0 where padding)
    value_valid: torch.Tensor  # (B, Q) bool
    value_slot: torch.Tensor  # (B, Q) index i of each value token in its value
    value_first: torch.Tensor  # (B, Q) which value token is token 0 of the same key
    targets: torch.Tensor | None  # (B, Q, M) indices into [vocab | doc], -1 padding
    key_scale: torch.Tensor | None = None  # (B, 1 + keys) factor on each key group's geometry bias

    def to(self, device: torch.device | str) -> Batch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return t.to(device) if t is not None else None

        return Batch(self.tokens.to(device), move(self.pixels), self.doc_copyable.to(device), self.n_doc_max,
                     self.value_pos.to(device), self.value_valid.to(device), self.value_slot.to(device),
                     self.value_first.to(device), move(self.targets), move(self.key_scale))


def collate(items: list[Encoded]) -> Batch:
    """Pad a list of encoded windows into one batch. Documents go first so that document
    position p is sequence position p in every row."""
    B = len(items)
    Ld = max(e.n_doc for e in items)
    Q = max(max(len(e.value_pos) for e in items), 1)
    # Document tokens must sit at the same positions in every row: pad documents to Ld.
    items = [_pad_doc(e, Ld) for e in items]
    T = max(len(e.ids) for e in items)

    def pad(name: str) -> torch.Tensor:
        out = torch.zeros((B, T), dtype=torch.long)
        for b, e in enumerate(items):
            seq = getattr(e, name)
            out[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        return out

    bbox = torch.zeros((B, T, 4), dtype=torch.long)
    valid = torch.zeros((B, T), dtype=torch.bool)
    copyable = torch.zeros((B, Ld), dtype=torch.bool)
    value_pos = torch.zeros((B, Q), dtype=torch.long)
    value_valid = torch.zeros((B, Q), dtype=torch.bool)
    value_slot = torch.zeros((B, Q), dtype=torch.long)
    value_first = torch.zeros((B, Q), dtype=torch.long)
    has_targets = all(len(e.targets) == len(e.value_pos) for e in items) and any(e.targets for e in items)
    M = max((len(t) for e in items for t in e.targets), default=1)
    targets = torch.full((B, Q, M), -1, dtype=torch.long)
    for b, e in enumerate(items):
        bbox[b, : len(e.ids)] = torch.tensor(e.bbox, dtype=torch.long)
        valid[b, : len(e.ids)] = torch.tensor([t >= 0 for t in e.ids])
        real_doc = len(e.doc.ids) if e.doc else 0
        copyable[b, 1 : 1 + real_doc] = True
        value_pos[b, : len(e.value_pos)] = torch.tensor(e.value_pos, dtype=torch.long)
        value_valid[b, : len(e.value_pos)] = True
        first: dict[int, int] = {}
        for q, k in enumerate(e.value_key):
            first.setdefault(k, q)
        # Built as lists, assigned once: element-wise tensor writes cost a millisecond a window.
        value_slot[b, : len(e.value_pos)] = torch.tensor([e.slot[p] - 1 for p in e.value_pos], dtype=torch.long)
        value_first[b, : len(e.value_key)] = torch.tensor([first[k] for k in e.value_key], dtype=torch.long)
        for q, ts in enumerate(e.targets):
            targets[b, q, : len(ts)] = torch.tensor(ts, dtype=torch.long)
    ids = pad("ids").clamp(min=0)
    tokens = TokenInputs(
        ids=ids,
        bbox=bbox,
        position=pad("position"),
        token_type=pad("token_type"),
        group=pad("group"),
        mention=pad("mention"),
        slot=pad("slot"),
        rank=pad("rank"),
        valid=valid,
    )
    pix = [e.pixels for e in items if e.pixels is not None]
    pixels = torch.stack(pix) if len(pix) == len(items) else None
    key_scale = None
    if any(e.key_scale for e in items):  # group 0 (no key) and keys without a factor: 1
        key_scale = torch.ones((B, 1 + max(len(e.keys) for e in items)))
        for b, e in enumerate(items):
            key_scale[b, 1 : 1 + len(e.key_scale)] = torch.tensor(e.key_scale)
    return Batch(tokens, pixels, copyable, Ld, value_pos, value_valid, value_slot, value_first,
                 targets if has_targets else None, key_scale)


def _pad_doc(e: Encoded, Ld: int) -> Encoded:
    """Insert padding (id -1, invalid) after the document so it spans exactly Ld positions."""
    n = Ld - e.n_doc
    if n == 0:
        return e
    cut = e.n_doc

    def ins(seq: list, fill: object) -> list:
        return seq[:cut] + [fill] * n + seq[cut:]

    return Encoded(
        ids=ins(e.ids, -1),
        bbox=ins(e.bbox, (0, 0, 0, 0)),
        position=ins(e.position, 0),
        token_type=ins(e.token_type, DOC),
        group=ins(e.group, 0),
        mention=ins(e.mention, 0),
        slot=ins(e.slot, 0),
        rank=ins(e.rank, 0),
        n_doc=Ld,
        value_pos=[p + n for p in e.value_pos],
        value_key=e.value_key,
        value_base=e.value_base,
        budget=e.budget,
        keys=e.keys,
        targets=e.targets,
        doc=e.doc,
        pixels=e.pixels,
        key_scale=e.key_scale,
    )
