"""Anytime early-exit document classifier on the same encoder as extraction.

The encoder (embeddings + blocks) is `docsprint.models.model`'s, so MiniLM or a stage-1/2
checkpoint initialises it. One sequence per page: ``[image patches][CLS doc tokens SEP]``;
a page without an image has no patches.

Exits sit before the encoder (``text_avg``, ``vision_avg``, ``concat``: mean embeddings of the
text, of the patches, or a projection of both) or after any block ``1 .. L-1`` (the mean of
the text tokens' states, or the [CLS] state: ``pooling``). After block L the final classifier
answers, on the same pooling. Two kinds of exit:

- **ramp**: a K-class head of its own (dense -> tanh -> linear);
- **gate**: a 2-way head predicting whether the *shared final classifier*, applied to this
  exit's representation, is right; a sample leaving at a gate takes that classifier's label.

Every exit turns into a (confidence, prediction) pair (`ExitClassifier.decision`); exit
policies (`docsprint.exits.policies`) only ever see those. The encoder can be run one block
at a time (`start`, `layer`, `exit_repr`), so inference stops computing where samples leave
(`docsprint.exits.anytime`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from docsprint.models.config import ModelConfig
from docsprint.models.model import Block, Embeddings, TokenInputs, attention_mask

PRE_ENCODER = ("text_avg", "vision_avg", "concat")
EXIT_KINDS = ("ramp", "gate")


def preset_exits(name: str, num_layers: int) -> list[str]:
    """The paper's named placements (for 12 layers), scaled to ``num_layers``.

    >>> preset_exits("concat-quarter", 6)
    ['concat', '1', '2', '4', '5']
    """
    def scale(layers: list[int]) -> list[str]:
        return [str(i) for i in sorted({min(num_layers - 1, max(1, math.ceil(n * num_layers / 12))) for n in layers})]

    inner = [str(i) for i in range(1, num_layers)]
    presets = {
        "concat-single": ["concat"],
        "concat-quarter": ["concat", *scale([1, 4, 8, 10])],
        "concat-alternate": ["concat", *scale([2, 5, 9, 11])],
        "concat-all": ["concat", *inner],
        "independent-all": ["text_avg", "vision_avg", *inner],
    }
    if name not in presets:
        raise ValueError(f"unknown exit preset {name!r}; known: {sorted(presets)}")
    return presets[name]


def exit_depth(name: str) -> int:
    """Blocks run before an exit can answer: 0 before the encoder, else the layer number."""
    return 0 if name in PRE_ENCODER else int(name)


@dataclass
class ClassifierConfig:
    """Encoder shape, labels and exits. ``policies``: per policy family the thresholds chosen
    on val, and the ``recommended`` policy (see `docsprint.exits.sweep.choose_policies`)."""

    labels: list[str]
    exits: list[str] = field(default_factory=lambda: ["concat", "1", "2", "3", "4", "5"])
    exit_kind: str = "ramp"
    max_tokens: int = 510  # document pieces read per page (one window)
    # How a layer's states become one vector: "mean" of the text tokens (all-MiniLM-L6-v2 was
    # trained with mean pooling; its [CLS] state is not a sentence summary) or "cls".
    pooling: str = "mean"
    encoder: ModelConfig = field(default_factory=ModelConfig)
    policies: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = ModelConfig(**self.encoder)
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be at least two distinct class names")
        if self.pooling not in ("mean", "cls"):
            raise ValueError("pooling must be 'mean' or 'cls'")
        if self.exit_kind not in EXIT_KINDS:
            raise ValueError(f"exit_kind must be one of {EXIT_KINDS}")
        for e in self.exits:
            if e not in PRE_ENCODER and not (e.isdigit() and 1 <= int(e) < self.encoder.num_layers):
                raise ValueError(f"exit {e!r}: use {PRE_ENCODER} or a layer 1..{self.encoder.num_layers - 1}")
        if len(set(self.exits)) != len(self.exits):
            raise ValueError("exits must be distinct")
        # Canonical order: the order in which a forward pass reaches them.
        self.exits = sorted(self.exits, key=lambda e: (exit_depth(e), PRE_ENCODER.index(e) if e in PRE_ENCODER else 0))
        if not 1 <= self.max_tokens <= self.encoder.max_positions - 2:
            raise ValueError(f"max_tokens must be in 1..{self.encoder.max_positions - 2}")

    @property
    def depths(self) -> list[int]:
        """Depth of every decision point: the exits, then the final classifier."""
        return [exit_depth(e) for e in self.exits] + [self.encoder.num_layers]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ClassifierConfig:
        data = json.loads(Path(path).read_text())
        if "labels" not in data:
            raise ValueError(f"{path}: not a classifier config (no labels)")
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class PageBatch:
    """Pages ready for the classifier. ``pixels`` is None when no page has an image."""

    tokens: TokenInputs  # (B, T) document tokens: [CLS] pieces [SEP]
    pixels: Tensor | None  # (B, 3, S, S)
    has_image: Tensor  # (B,) bool
    labels: Tensor | None = None  # (B,) class ids

    def to(self, device: torch.device | str) -> PageBatch:
        return PageBatch(self.tokens.to(device), None if self.pixels is None else self.pixels.to(device),
                         self.has_image.to(device), None if self.labels is None else self.labels.to(device))

    def rows(self, keep: Tensor) -> PageBatch:
        """The rows ``keep`` (indices), with padding columns no kept row needs cut off."""
        t = TokenInputs(**{k: v[keep] for k, v in self.tokens.__dict__.items()})
        T = int(t.valid.sum(1).max().item()) if len(keep) else 0
        t = TokenInputs(**{k: v[:, :T] for k, v in t.__dict__.items()})
        return PageBatch(t, None if self.pixels is None else self.pixels[keep], self.has_image[keep],
                         None if self.labels is None else self.labels[keep])


@dataclass
class State:
    """Where a forward pass is: hidden states (B, S, H) after ``depth`` blocks."""

    x: Tensor
    mask: Tensor | None  # (B, 1, S, S) attention mask; None when nothing is masked
    valid: Tensor  # (B, S)
    n_patches: int  # [CLS] sits at index n_patches
    text_avg: Tensor  # (B, H) mean text embedding
    vision_avg: Tensor  # (B, H) mean patch embedding (zeros without an image)
    depth: int = 0

    def rows(self, keep: Tensor) -> State:
        return State(self.x[keep], None if self.mask is None else self.mask[keep], self.valid[keep], self.n_patches,
                     self.text_avg[keep], self.vision_avg[keep], self.depth)


@dataclass
class ExitOutputs:
    """Every decision point's logits at once (training, calibration, offline sweeps)."""

    exit_logits: list[Tensor]  # per exit (B, K) for ramps, (B, 2) for gates
    shared_logits: list[Tensor]  # gates only: the final classifier on each exit's representation
    final_logits: Tensor  # (B, K)


def confidence(own: Tensor, temperature: float | Tensor, shared_pred: Tensor | None) -> tuple[Tensor, Tensor]:
    """(confidence, prediction) from an exit's own logits (B, C). Ramp / final: the top
    softmax probability and its class; gate (``shared_pred`` given): the probability that the
    shared classifier is right, and that classifier's class."""
    p = torch.softmax(own.float() / temperature, -1)
    if shared_pred is None:
        conf, pred = p.max(-1)
        return conf, pred
    return p[:, 1], shared_pred


class ExitHead(nn.Sequential):
    """dense -> tanh -> dropout -> linear, as the paper's ramps (and BERT's pooler)."""

    def __init__(self, hidden: int, out: int, dropout: float):
        super().__init__(nn.Linear(hidden, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, out))


class ExitClassifier(nn.Module):
    temperature: Tensor  # (num_decisions,) buffer

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        enc = cfg.encoder
        H, K = enc.hidden_size, len(cfg.labels)
        self.embed = Embeddings(enc)
        self.blocks = nn.ModuleList(Block(enc) for _ in range(enc.num_layers))
        self.concat_proj = nn.Linear(2 * H, H) if "concat" in cfg.exits else None
        self.final = ExitHead(H, K, enc.dropout)
        out = K if cfg.exit_kind == "ramp" else 2
        self.exit_heads = nn.ModuleList(ExitHead(H, out, enc.dropout) for _ in cfg.exits)
        # Which exits answer after each number of blocks (the final classifier is not listed).
        self.exits_at: dict[int, list[int]] = {}
        for j, name in enumerate(cfg.exits):
            self.exits_at.setdefault(exit_depth(name), []).append(j)
        # One temperature per decision point (exits, then final), fitted on val.
        self.register_buffer("temperature", torch.ones(len(cfg.exits) + 1))
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Embedding | nn.Conv2d):
                nn.init.normal_(m.weight, std=0.02)
                if not isinstance(m, nn.Embedding) and m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def num_decisions(self) -> int:
        return len(self.cfg.exits) + 1

    # -- running the encoder a block at a time ------------------------------------------------

    def start(self, batch: PageBatch) -> State:
        """Embeddings of the batch: depth 0."""
        t = batch.tokens
        x = self.embed.text(t)  # (B, T, H)
        valid = t.valid
        w = valid[..., None].to(x.dtype)
        text_avg = (x * w).sum(1) / w.sum(1).clamp(min=1)  # (B, H)
        vision_avg = x.new_zeros(x.shape[0], x.shape[2])
        n_patches = 0
        if batch.pixels is not None:
            img = self.embed.image(batch.pixels)  # (B, P, H)
            n_patches = img.shape[1]
            has = batch.has_image[:, None]  # (B, 1)
            vision_avg = img.mean(1) * has.to(x.dtype)
            x = torch.cat([img, x], 1)  # (B, P + T, H)
            valid = torch.cat([has.expand(-1, n_patches), valid], 1)
        rank = torch.zeros_like(valid, dtype=torch.long)
        return State(x, attention_mask(rank, rank, valid), valid, n_patches, text_avg, vision_avg)

    def layer(self, s: State) -> State:
        """Run the next block."""
        x = self.blocks[s.depth](s.x, s.mask)
        return State(x, s.mask, s.valid, s.n_patches, s.text_avg, s.vision_avg, s.depth + 1)

    def exit_repr(self, name: str, s: State) -> Tensor:
        """The (B, H) representation an exit reads."""
        if name == "text_avg":
            return s.text_avg
        if name == "vision_avg":
            return s.vision_avg
        if name == "concat":
            assert self.concat_proj is not None
            return self.concat_proj(torch.cat([s.text_avg, s.vision_avg], -1))
        if s.depth != int(name):
            raise RuntimeError(f"exit {name} read at depth {s.depth}")
        return self.pool(s)

    def exit_logits(self, j: int, rep: Tensor) -> tuple[Tensor, Tensor | None]:
        """Exit j's own logits, and for gates the shared classifier's logits on ``rep``."""
        own = self.exit_heads[j](rep)
        return own, (self.final(rep) if self.cfg.exit_kind == "gate" else None)

    def pool(self, s: State) -> Tensor:
        """(B, H): the mean of the text tokens' states, or the [CLS] state."""
        if self.cfg.pooling == "cls":
            return s.x[:, s.n_patches]
        text = s.x[:, s.n_patches :]  # (B, T, H)
        w = s.valid[:, s.n_patches :, None].to(text.dtype)
        return (text * w).sum(1) / w.sum(1).clamp(min=1)

    def final_logits(self, s: State) -> Tensor:
        return self.final(self.pool(s))

    def decision(self, j: int, own: Tensor, shared: Tensor | None, calibrated: bool = True) -> tuple[Tensor, Tensor]:
        """(confidence, prediction), each (B,), of decision point j (j = num_decisions - 1
        is the final classifier); see `confidence`."""
        T = self.temperature[j] if calibrated else 1.0  # a tensor: no device sync
        return confidence(own, T, None if shared is None else shared.argmax(-1))

    # -- every exit at once ---------------------------------------------------------------

    def forward(self, batch: PageBatch, detach_backbone: bool = False, grad_scale: Tensor | None = None) -> ExitOutputs:
        """All decision points' logits.

        ``detach_backbone``: the exits' inputs are cut from the graph (two-stage training
        trains the exits on a frozen backbone). ``grad_scale`` (one per exit): the gradient
        each exit sends into the backbone is multiplied by it (entropy regularisation); it is
        read during backward, so it may be filled in after the forward.
        """
        s = self.start(batch)
        exit_logits: list[Tensor] = []
        shared: list[Tensor] = []
        for depth in range(self.cfg.encoder.num_layers + 1):
            if depth:
                s = self.layer(s)
            for j in self.exits_at.get(depth, []):
                rep = self.exit_repr(self.cfg.exits[j], s)
                if detach_backbone:
                    rep = rep.detach()
                elif grad_scale is not None and rep.requires_grad:
                    rep.register_hook(lambda g, j=j: g * grad_scale[j])
                own, sh = self.exit_logits(j, rep)
                exit_logits.append(own)
                if sh is not None:
                    shared.append(sh)
        return ExitOutputs(exit_logits, shared, self.final_logits(s))
