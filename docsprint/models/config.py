"""Model configuration and the one place where special tokens and token types are named."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Token types (row of the token-type embedding). BERT has 2; rows 2 and 3 are added.
DOC, IMAGE, KEY, VALUE = 0, 1, 2, 3


@dataclass
class ModelConfig:
    """Shape of the multimodal encoder and its heads (defaults = all-MiniLM-L6-v2 + layout).

    Special token ids are those of the BERT uncased WordPiece vocabulary.
    """

    vocab_size: int = 30522
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    max_positions: int = 512  # 1D positions of document tokens (BERT's table)
    max_coordinate: int = 1000  # boxes are normalised to 0..1000
    image_size: int = 128  # square page thumbnail; 128 / 16 = 8 x 8 = 64 patches
    patch_size: int = 16
    max_keys: int = 64  # keys per prompt
    max_slots: int = 64  # value tokens per key (mask slots in parallel mode)
    # Document tokens that print a key's name get that key's group embedding, gated (model.py
    # `KeyMentions`, data/encode.py `key_mentions`); off in checkpoints trained before it.
    key_mentions: bool = False
    # A start-pointer bias from each document token's place relative to its key's mention
    # (model.py `KeyGeometry`); needs key_mentions.
    key_geometry: bool = False
    dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    pad_id: int = 0
    cls_id: int = 101
    sep_id: int = 102
    mask_id: int = 103  # input of every parallel slot
    end_id: int = 102  # "end of value" target: [SEP]
    bos_id: int = 1  # input of the first autoregressive step: [unused0]
    # Mask slots per key, measured on training data (99th percentile of value length + 1 for
    # the end token); keys not listed get `default_slots`.
    slot_budgets: dict[str, int] = field(default_factory=dict)
    default_slots: int = 16
    # Field confidence calibration (docsprint.eval.confidence): Platt parameters a, c, b per group
    # ("answer", "null"), fitted on dev answers by `docsprint calibrate`; empty = raw.
    calibration: dict[str, dict[str, float]] = field(default_factory=dict)
    # Parallel decoding: a log-probability bonus per token for carrying a copied run on past an
    # early END (`decode.common.extend_run`); 0 decodes each slot by its own argmax.
    end_bonus: float = 0.0
    # Decoding: the factor on `KeyGeometry`'s start bias for a key the page prints as a label,
    # exactly as asked (`decode.common.label_keys`: "Reporting Period:" on a form). FUNSD's
    # models read its training forms by their text and lean on the geometry too little
    # on forms they have never seen; 1 decodes as trained.
    label_geometry: float = 1.0

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError("hidden_size must be divisible by num_heads")
        if self.hidden_size % 6:
            raise ValueError("hidden_size must be divisible by 6 (six layout embeddings)")
        if self.image_size % self.patch_size:
            raise ValueError("image_size must be a multiple of patch_size")
        if self.key_geometry and not self.key_mentions:
            raise ValueError("key_geometry needs key_mentions")
        if self.label_geometry < 0:
            raise ValueError("label_geometry must be >= 0")
        if not 1 <= self.default_slots <= self.max_slots:
            raise ValueError("default_slots must be in 1..max_slots")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def slots_for(self, key: str) -> int:
        return min(self.slot_budgets.get(key.strip().lower(), self.default_slots), self.max_slots)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelConfig:
        data = json.loads(Path(path).read_text())
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})
