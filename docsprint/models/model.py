"""The docsprint encoder: text + 2D layout + page-image patches, then the prompt.

Reads top to bottom: embeddings -> attention (with an optional KV cache) -> block -> model
-> the value head (vocabulary + pointer over the document's tokens). Decoding lives in
`docsprint.decode`, losses in `docsprint.train`.

One flat sequence per document: ``[image patches][CLS doc tokens SEP][key names + values]``.
Who may attend to whom is given by ``rank``: rank 0 tokens (the prefix) see every rank 0
token; a token of rank r > 0 also sees the tokens of rank 1..r. Parallel decoding puts
everything at rank 0 (full bidirectional attention); autoregressive decoding gives the i-th
generated token rank i (causal among values, prefix computed once and cached).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from docsprint.models.config import IMAGE, KEY, VALUE, ModelConfig


@dataclass
class TokenInputs:
    """Per-token inputs of the text side, all (B, T) except ``bbox`` (B, T, 4)."""

    ids: Tensor  # word-piece ids; MASK for parallel slots, previous token for AR values
    bbox: Tensor  # 0..1000 boxes; zeros for prompt tokens
    position: Tensor  # 1D position: index in the document, or in the prompt
    token_type: Tensor  # DOC / KEY / VALUE
    group: Tensor  # 0 for the document, k + 1 for tokens of the k-th key
    mention: Tensor  # k + 1 on document tokens that print the k-th key's name, else 0
    slot: Tensor  # 0 except for value tokens: i + 1 for the one predicting token i
    rank: Tensor  # attention rank, see module docstring
    valid: Tensor  # bool, False for padding

    def to(self, device: torch.device | str) -> TokenInputs:
        return TokenInputs(**{k: v.to(device) for k, v in self.__dict__.items()})


def attention_mask(rank_q: Tensor, rank_k: Tensor, valid_k: Tensor) -> Tensor | None:
    """Boolean (B, 1, Tq, Tk) mask, True where a query may attend to a key; None when every
    query may attend to every key (one unpadded parallel window), which lets the fused
    attention kernel skip reading a mask (about 20% of its time on CPU). Under torch.compile
    the mask is always returned: the check reads a value, which would split the graph."""
    rq, rk = rank_q[:, :, None], rank_k[:, None, :]  # (B, Tq, 1), (B, 1, Tk)
    allowed = (rk == 0) | ((rq > 0) & (rk <= rq))
    mask = (allowed & valid_k[:, None, :])[:, None]
    if torch.compiler.is_compiling():
        return mask
    return None if bool(mask.all()) else mask


class LayoutEmbedding(nn.Module):
    """LayoutLMv3's 2D embedding: x0, y0, x1, y1, width, height, each H/6 wide."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        n, d = cfg.max_coordinate + 1, cfg.hidden_size // 6
        self.x = nn.Embedding(n, d)
        self.y = nn.Embedding(n, d)
        self.w = nn.Embedding(n, d)
        self.h = nn.Embedding(n, d)

    def forward(self, bbox: Tensor) -> Tensor:
        bbox = bbox.clamp(0, self.x.num_embeddings - 1)
        x0, y0, x1, y1 = bbox.unbind(-1)
        w, h = (x1 - x0).clamp(min=0), (y1 - y0).clamp(min=0)
        return torch.cat([self.x(x0), self.y(y0), self.x(x1), self.y(y1), self.w(w), self.h(h)], -1)


class KeyMentions(nn.Module):
    """What a document token that prints a key's name gets added (``cfg.key_mentions``):
    ``gate * group(k + 1) + mark``, i.e. a learnt share of that key's group embedding, which the
    key's prompt tokens carry too, plus one vector saying "this names some key". Both start at
    zero, so a checkpoint trained without mentions decodes unchanged when they are added."""

    def __init__(self, hidden: int):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(hidden))
        self.mark = nn.Parameter(torch.zeros(hidden))

    def forward(self, mention: Tensor, group: nn.Embedding) -> Tensor:
        return self.gate * group(mention) + self.mark * (mention > 0)[..., None]


class KeyGeometry(nn.Module):
    """Where a key's value starts, from where the page prints the key's name
    (``cfg.key_geometry``): a logit bias (B, max_keys + 1, Ld) for the start pointer.

    Every mention run of key k (see `KeyMentions`) is an anchor; a small MLP scores each
    document token from its offset to the anchor (gap to the right, left alignment, lines
    below, same line, order after it, whether it names a key itself). A key's bias on a token
    is its best anchor's score; keys the page does not print get none. Forms place an answer
    right of or under its question: attention has to find that from the embeddings, this
    says it directly. The output layer starts at zero, so a checkpoint trained without it
    decodes unchanged when it is added.
    """

    FEATURES = 10

    def __init__(self, width: int = 32):
        super().__init__()
        self.hidden = nn.Linear(self.FEATURES, width)
        self.out = nn.Linear(width, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.hidden.reset_parameters()  # PyTorch's default: the features are O(1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @staticmethod
    def features(bbox: Tensor, mention: Tensor, anchor: Tensor) -> Tensor:
        """(B, A, Ld, FEATURES): every document token seen from every anchor.
        bbox (B, Ld, 4) in 0..1000, mention (B, Ld), anchor (B, A) positions."""
        box = bbox.float() / 1000
        a = torch.gather(box, 1, anchor[..., None].expand(-1, -1, 4))[:, :, None]  # (B, A, 1, 4)
        t = box[:, None]  # (B, 1, Ld, 4)
        height = (a[..., 3] - a[..., 1]).clamp(min=0.005)
        dy = (t[..., 1] + t[..., 3] - a[..., 1] - a[..., 3]) / 2  # centre to centre
        gap = t[..., 0] - a[..., 2]  # anchor's right edge to the token's left edge
        order = torch.arange(bbox.shape[1], device=bbox.device)[None, None, :] - anchor[..., None]  # (B, A, Ld)
        key = torch.gather(mention, 1, anchor)[..., None]  # (B, A, 1)
        named = mention[:, None, :]  # (B, 1, Ld)
        return torch.stack([
            gap,
            t[..., 0] - a[..., 0],  # left alignment
            dy,
            (dy / height).clamp(-8, 8) / 8,  # lines below
            (dy.abs() < height / 2).to(gap.dtype),  # same line
            (gap / height).clamp(-8, 8) / 8,
            order.clamp(-16, 16).to(gap.dtype) / 16,
            (order == 1).to(gap.dtype),
            (named > 0).expand_as(order).to(gap.dtype),  # prints some key's name
            (named == key).to(gap.dtype),  # prints this key's name
        ], -1)

    def forward(self, bbox: Tensor, mention: Tensor, n_groups: int) -> Tensor:
        """Start-pointer bias (B, n_groups, Ld) of the document tokens (bbox (B, Ld, 4),
        mention (B, Ld)); row 0 (no key) is zero, as is every key without a mention."""
        B, Ld = mention.shape
        nxt = torch.cat([mention[:, 1:], mention.new_zeros(B, 1)], 1)
        ends = (mention > 0) & (nxt != mention)  # last piece of each mention run
        n = max(int(ends.sum(1).max()), 1)
        anchor = torch.sort(ends.to(torch.int8), dim=1, descending=True, stable=True).indices[:, :n]  # (B, A)
        key = torch.where(torch.gather(ends, 1, anchor), torch.gather(mention, 1, anchor), 0)  # (B, A); 0 = none
        w = self.hidden.weight  # a method once the layer is int8-quantised (fp32 in, fp32 out)
        f = self.features(bbox, mention, anchor).to(w.dtype if isinstance(w, Tensor) else torch.float32)
        score = self.out(F.gelu(self.hidden(f)))[..., 0].float()  # (B, A, Ld)
        out = score.new_zeros(B, n_groups, Ld)
        out = out.scatter_reduce(1, key[..., None].expand(-1, -1, Ld), score, "amax", include_self=False)
        return out * (torch.arange(n_groups, device=out.device) > 0)[None, :, None]


class Embeddings(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        h = cfg.hidden_size
        self.word = nn.Embedding(cfg.vocab_size, h, padding_idx=cfg.pad_id)
        self.position = nn.Embedding(cfg.max_positions, h)
        self.token_type = nn.Embedding(4, h)
        # Row 0 of these two is a fixed zero vector: document tokens get nothing added.
        self.group = nn.Embedding(cfg.max_keys + 1, h, padding_idx=0)
        self.slot = nn.Embedding(cfg.max_slots + 1, h, padding_idx=0)
        self.layout = LayoutEmbedding(cfg)
        self.mentions = KeyMentions(h) if cfg.key_mentions else None
        # Stride = kernel = patch size: a linear embedding of each patch (LayoutLMv3).
        self.patch = nn.Conv2d(3, h, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.patch_position = nn.Embedding(cfg.num_patches, h)
        self.norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)
        side = cfg.image_size // cfg.patch_size
        cells = torch.arange(side) * 1000 // side
        y0, x0 = torch.meshgrid(cells, cells, indexing="ij")
        step = 1000 // side
        grid = torch.stack([x0, y0, x0 + step, y0 + step], -1).reshape(-1, 4)  # (P, 4)
        self.register_buffer("patch_bbox", grid, persistent=False)

    def key_names(self, t: TokenInputs) -> Tensor:
        """Mean word embedding of each key's name, (B, max_keys + 1, H); row 0 stays zero."""
        B, _, H = t.ids.shape[0], t.ids.shape[1], self.word.embedding_dim
        is_key = (t.token_type == KEY) & t.valid  # (B, T)
        group = torch.where(is_key, t.group, 0)
        words = self.word(t.ids) * is_key[..., None]  # (B, T, H)
        sums = words.new_zeros(B, self.group.num_embeddings, H).scatter_add_(1, group[..., None].expand(-1, -1, H), words)
        counts = is_key.new_zeros(B, self.group.num_embeddings, dtype=words.dtype).scatter_add_(1, group, is_key.to(words.dtype))
        return sums / counts.clamp(min=1)[..., None]

    def text(self, t: TokenInputs, key_names: Tensor | None = None) -> Tensor:
        """Embeddings (B, T, H). Value tokens also get their key's name (``key_names`` from
        `key_names`, computed from ``t`` itself when it holds the key names)."""
        if key_names is None:
            key_names = self.key_names(t)
        is_value = (t.token_type == VALUE)[..., None]
        named = torch.gather(key_names, 1, t.group[..., None].expand(-1, -1, key_names.shape[-1]))
        x = (
            self.word(t.ids)
            + self.position(t.position)
            + self.token_type(t.token_type)
            + self.group(t.group)
            + self.slot(t.slot)
            + self.layout(t.bbox)
            + named * is_value
        )
        if self.mentions is not None:
            x = x + self.mentions(t.mention, self.group)
        return self.drop(self.norm(x))  # (B, T, H)

    def image(self, pixels: Tensor) -> Tensor:
        x = self.patch(pixels.to(self.patch.weight.dtype)).flatten(2).transpose(1, 2)  # (B, P, H)
        pos = torch.arange(x.shape[1], device=x.device)
        x = x + self.patch_position(pos) + self.token_type.weight[IMAGE] + self.layout(self.patch_bbox)
        return self.drop(self.norm(x))


class KVCache:
    """Pre-allocated keys and values of one layer: (B, nh, max_len, hs) buffers and a length."""

    def __init__(self, batch: int, heads: int, max_len: int, head_size: int, like: Tensor):
        shape = (batch, heads, max_len, head_size)
        self.k = torch.zeros(shape, dtype=like.dtype, device=like.device)
        self.v = torch.zeros(shape, dtype=like.dtype, device=like.device)
        self.length = 0

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        n = k.shape[2]
        if self.length + n > self.k.shape[2]:
            raise RuntimeError("KV cache is full")
        self.k[:, :, self.length : self.length + n] = k
        self.v[:, :, self.length : self.length + n] = v
        self.length += n
        return self.k[:, :, : self.length], self.v[:, :, : self.length]


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        h = cfg.hidden_size
        self.n_head = cfg.num_heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.out = nn.Linear(h, h)

    def forward(self, x: Tensor, mask: Tensor | None, cache: KVCache | None = None) -> Tensor:
        B, T, C = x.shape
        hs = C // self.n_head

        def heads(t: Tensor) -> Tensor:
            return t.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        if cache is not None:
            k, v = cache.append(k, v)  # (B, nh, T_past + T, hs)
        # Attention runs in the residual stream's precision, without dropout on the weights
        # (dropout forces the slow unfused path): fp32 under training's bf16 autocast (q, k, v
        # come out of it in bf16, the stream stays fp32), bf16 with bf16 weights (decoding:
        # AMX's fused kernel is faster there; FUNSD's parallel pass 0.134 -> 0.106 s per form,
        # ANLS unchanged on SROIE, FUNSD and WildReceipt).
        dt = x.dtype
        y = F.scaled_dot_product_attention(q.to(dt), k.to(dt), v.to(dt), attn_mask=mask)  # (B, nh, T, hs)
        return self.out(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """A post-norm BERT layer, so the MiniLM weights load as they are."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        h = cfg.hidden_size
        self.attn = SelfAttention(cfg)
        self.norm1 = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.ff_in = nn.Linear(h, cfg.intermediate_size)
        self.ff_out = nn.Linear(cfg.intermediate_size, h)
        self.norm2 = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor | None, cache: KVCache | None = None) -> Tensor:
        x = self.norm1(x + self.drop(self.attn(x, mask, cache)))
        return self.norm2(x + self.drop(self.ff_out(F.gelu(self.ff_in(x)))))


NEG = -1e4  # an impossible logit; finite, so gradients never meet inf - inf
VOCAB_CHUNK = 2048  # vocabulary rows per product in `ValueHead.vocab_summary`


class ValueHead(nn.Module):
    """Scores every value token over [vocabulary | document tokens] in one softmax.

    The vocabulary half is BERT's masked-LM head (decoder tied to the word embeddings): it
    writes values the document does not contain and the end-of-value token. The pointer half
    copies a document token, so a copied value keeps the document's exact characters.

    Copy prior: token i of a value adds the log-probabilities of its key's first token's
    pointer, shifted by i positions. "Token i is i places after where the value starts" is
    then the default, and each token's own pointer only has to overrule it where a value is
    not one contiguous run of the document. Each token still takes its own argmax.
    """

    def __init__(self, cfg: ModelConfig, word: nn.Embedding):
        super().__init__()
        h = cfg.hidden_size
        self.transform = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.LayerNorm(h, eps=cfg.layer_norm_eps))
        self.word = word
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.ptr_query = nn.Linear(h, h)
        self.ptr_key = nn.Linear(h, h)
        self.geometry = KeyGeometry() if cfg.key_geometry else None
        self.n_groups = cfg.max_keys + 1
        # An untied copy of the vocabulary projection, set only by `quantize_int8` (which can
        # quantise an nn.Linear, not a product with the embedding table); never saved.
        self.untied: nn.Module | None = None

    def vocab_logits(self, query: Tensor) -> Tensor:
        """Logits (B, Q, V) over the vocabulary."""
        return self.project_vocab(self.transform(query))

    def project_vocab(self, h: Tensor, start: int = 0, stop: int | None = None) -> Tensor:
        """The vocabulary projection: one fused addmm with the tied word embeddings (or the
        int8 untied copy of them); ``start:stop`` projects onto those vocabulary rows only."""
        if self.untied is not None and start == 0 and stop is None:
            return self.untied(h)
        return F.linear(h, self.word.weight[start:stop], self.bias[start:stop])

    def doc_keys(self, doc_hidden: Tensor) -> Tensor:
        return self.ptr_key(doc_hidden)  # (B, Ld, H)

    def pointer(self, query: Tensor, doc_keys: Tensor, doc_copyable: Tensor, bias: Tensor | None = None) -> Tensor:
        """Content pointer logits: query (B, Q, H), doc_keys (B, Ld, H) -> (B, Q, Ld), plus
        ``bias`` (B, Q, Ld) if given (`start_bias`)."""
        scale = 1.0 / math.sqrt(query.shape[-1])
        ptr = (self.ptr_query(query) @ doc_keys.transpose(1, 2)).float() * scale  # (B, Q, Ld)
        if bias is not None:
            ptr = ptr + bias
        return ptr.masked_fill(~doc_copyable[:, None, :], NEG)

    def start_bias(self, tokens: TokenInputs, n_doc: int, group: Tensor, first: Tensor,
                   key_scale: Tensor | None = None) -> Tensor | None:
        """`KeyGeometry`'s bias for value tokens of key groups ``group`` (B, Q) where ``first``
        (B, Q) marks the first token of a value, zero elsewhere; None without geometry.
        ``key_scale`` (B, 1 + keys): a factor per key group (`ModelConfig.label_geometry`)."""
        if self.geometry is None:
            return None
        geo = self.geometry(tokens.bbox[:, :n_doc], tokens.mention[:, :n_doc], self.n_groups)  # (B, K + 1, Ld)
        bias = torch.gather(geo, 1, group[..., None].expand(-1, -1, n_doc))  # (B, Q, Ld)
        if key_scale is not None:
            first = first * torch.gather(key_scale.to(bias.dtype), 1, group)
        return bias * first[..., None]

    def copy_logits(self, ptr: Tensor, start_ptr: Tensor, slot: Tensor) -> Tensor:
        """Logits (B, Q, Ld) of copying each document token: the content pointer plus the
        copy prior (see the class docstring)."""
        start = torch.log_softmax(start_ptr, -1)  # where the value starts
        Ld = ptr.shape[-1]
        src = torch.arange(Ld, device=ptr.device)[None, None, :] - slot[..., None]  # (B, Q, Ld): j - i
        prior = torch.gather(start, 2, src.clamp(min=0)).masked_fill(src < 0, NEG)
        prior = torch.where(slot[..., None] > 0, prior, 0.0)  # token 0 is the start itself
        return (ptr + prior).clamp(min=NEG)

    def forward(self, query: Tensor, ptr: Tensor, start_ptr: Tensor, slot: Tensor) -> Tensor:
        """Logits (B, Q, V + Ld) of value tokens.

        ptr (B, Q, Ld): their content pointer logits; start_ptr (B, Q, Ld): the pointer logits
        of the first token of each one's key; slot (B, Q): each one's index i in its value.
        """
        return torch.cat([self.vocab_logits(query).float(), self.copy_logits(ptr, start_ptr, slot)], -1)

    def best(self, query: Tensor, ptr: Tensor, start_ptr: Tensor, slot: Tensor,
             chunked: bool = False) -> tuple[Tensor, Tensor]:
        """Each value token's log-probability and choice, (B, Q) each: the max and argmax of
        ``log_softmax(forward(...))`` without the 31k-wide concatenation (about 3 ms of a
        receipt's 110 on CPU). The vocabulary is reduced on its own (`vocab_summary`: max,
        argmax, logsumexp), then both halves are put over the joint normaliser. Ties go to the
        vocabulary, as ``max`` over the concatenation would."""
        best, idx, *_ = self._choose(query, ptr, start_ptr, slot, chunked=chunked)
        return best, idx

    def scores(self, query: Tensor, ptr: Tensor, start_ptr: Tensor, slot: Tensor,
               ids: tuple[int, ...]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """`best`'s (log-probability, choice), plus what a span search needs: every document
        token's copy log-probability (B, Q, Ld) and the log-probabilities of vocabulary tokens
        ``ids`` (B, Q, len(ids)): END, the item separator. For a parallel pass: the vocabulary
        is reduced chunk by chunk (`vocab_summary`)."""
        best, idx, special, copy, log_z = self._choose(query, ptr, start_ptr, slot, ids, chunked=True)
        return best, idx, copy - log_z[..., None], special - log_z[..., None]

    def _choose(self, query: Tensor, ptr: Tensor, start_ptr: Tensor, slot: Tensor, ids: tuple[int, ...] = (0,),
                chunked: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """`best`'s work: (log-probability, choice), the logits of vocabulary tokens ``ids``,
        the copy logits and the joint normaliser."""
        v_best, v_idx, v_lse, v_special = self.vocab_summary(query, ids, chunked)
        copy = self.copy_logits(ptr, start_ptr, slot)  # (B, Q, Ld)
        c_best, c_idx = copy.max(-1)
        log_z = torch.logaddexp(v_lse, torch.logsumexp(copy, -1))  # log Z_vocab, log Z_copy
        take_copy = c_best > v_best
        idx = torch.where(take_copy, c_idx + self.bias.shape[0], v_idx)
        return torch.where(take_copy, c_best, v_best) - log_z, idx, v_special, copy, log_z

    def vocab_summary(self, query: Tensor, ids: tuple[int, ...] = (0,),
                      chunked: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """What decoding needs of the vocabulary logits of value tokens ``query`` (B, Q, H):
        their max, argmax and logsumexp, (B, Q) each, and the logits of tokens ``ids``
        (B, Q, len(ids)).

        ``chunked`` (for the few hundred value tokens of a parallel pass): the vocabulary is
        projected ``VOCAB_CHUNK`` rows at a time and each chunk reduced while it is still in
        cache, so the (Q, 30522) logits are never written out whole: about a quarter less
        time for the head on CPU. Ties go to the lower id either way. One token (an
        autoregressive step) is faster through the one fused product. The int8 model's
        untied projection is one quantised layer: never chunked."""
        h = self.transform(query)
        shape = h.shape[:-1]
        if self.untied is not None or not chunked:
            vocab = self.project_vocab(h).float()
            v_best, v_idx = vocab.max(-1)
            return v_best, v_idx, torch.logsumexp(vocab, -1), vocab[..., list(ids)]
        flat = h.reshape(-1, h.shape[-1])
        best = idx = lse = flat.new_empty(0)
        for s in range(0, self.bias.shape[0], VOCAB_CHUNK):
            part = self.project_vocab(flat, s, s + VOCAB_CHUNK).float()
            m, i = part.max(-1)
            z = torch.logsumexp(part, -1)
            if s == 0:
                best, idx, lse = m, i, z
            else:
                better = m > best
                best, idx, lse = torch.where(better, m, best), torch.where(better, i + s, idx), torch.logaddexp(lse, z)
        rows = torch.tensor(ids, device=flat.device)
        special = F.linear(flat, self.word.weight[rows], self.bias[rows]).float()
        return best.view(shape), idx.view(shape), lse.view(shape), special.view(*shape, len(ids))


class DocsprintModel(nn.Module):
    """Encoder + value head. ``encode`` returns hidden states; heads are applied by callers."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = Embeddings(cfg)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.head = ValueHead(cfg, self.embed.word)
        self.apply(self._init)
        if self.head.geometry is not None:
            self.head.geometry.reset_parameters()

    def enable_key_mentions(self) -> None:
        """Add the (zero) key-mention embedding to a model built without it, e.g. to fine-tune
        an older checkpoint with mentions: its outputs stay the same until it trains."""
        if self.embed.mentions is None:
            p = self.embed.word.weight
            self.embed.mentions = KeyMentions(self.cfg.hidden_size).to(device=p.device, dtype=p.dtype)
        self.cfg.key_mentions = True

    def enable_key_geometry(self) -> None:
        """Add the (zero-output) `KeyGeometry` start-pointer bias to a model built without it;
        it needs key mentions, which this enables too."""
        self.enable_key_mentions()
        if self.head.geometry is None:
            p = self.embed.word.weight
            self.head.geometry = KeyGeometry().to(device=p.device, dtype=p.dtype)
        self.cfg.key_geometry = True

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding | nn.Conv2d):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            nn.init.zeros_(m.weight[m.padding_idx])
        if isinstance(m, nn.Linear | nn.Conv2d) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def embed_inputs(
        self, tokens: TokenInputs, pixels: Tensor | None, key_names: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Embeddings of [patches][tokens] with their rank and validity, each (B, P + T, ...)."""
        x = self.embed.text(tokens, key_names)
        rank, valid = tokens.rank, tokens.valid
        if pixels is not None:
            img = self.embed.image(pixels)  # (B, P, H)
            B, P = img.shape[:2]
            x = torch.cat([img, x], 1)
            rank = torch.cat([rank.new_zeros(B, P), rank], 1)
            valid = torch.cat([valid.new_ones(B, P), valid], 1)
        return x, rank, valid

    def encode(
        self,
        tokens: TokenInputs,
        pixels: Tensor | None = None,
        caches: list[KVCache] | None = None,
        past_rank: Tensor | None = None,
        past_valid: Tensor | None = None,
        key_names: Tensor | None = None,
    ) -> Tensor:
        """Hidden states (B, P + T, H) of the new tokens (image patches first, if given).

        With ``caches``, keys/values of earlier calls are attended to as well; ``past_rank``
        and ``past_valid`` (B, T_past) describe those cached tokens, and ``key_names`` (from
        ``embed.key_names`` of the prefix) names the keys of new value tokens.
        """
        x, rank, valid = self.embed_inputs(tokens, pixels, key_names)
        rank_k, valid_k = rank, valid
        if past_rank is not None and past_valid is not None:
            rank_k, valid_k = torch.cat([past_rank, rank], 1), torch.cat([past_valid, valid], 1)
        mask = attention_mask(rank, rank_k, valid_k)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, caches[i] if caches is not None else None)
        return x

    def new_caches(self, batch: int, max_len: int, like: Tensor) -> list[KVCache]:
        hs = self.cfg.hidden_size // self.cfg.num_heads
        return [KVCache(batch, self.cfg.num_heads, max_len, hs, like) for _ in self.blocks]
