"""Training objective of the value tokens, shared by parallel and autoregressive examples."""

from __future__ import annotations

import torch
from torch import Tensor

from docsprint.data.encode import Batch
from docsprint.models.model import DocsprintModel


def value_logits(model: DocsprintModel, batch: Batch) -> Tensor:
    """Logits (B, Q, V + Ld) of every value token of the batch, in one forward pass."""
    h = model.encode(batch.tokens, batch.pixels)  # (B, P + T, H)
    offset = h.shape[1] - batch.tokens.ids.shape[1]  # number of image patches
    doc = h[:, offset : offset + batch.n_doc_max]  # (B, Ld, H)
    idx = (batch.value_pos + offset)[..., None].expand(-1, -1, h.shape[-1])
    query = torch.gather(h, 1, idx)  # (B, Q, H)
    return model.head(query, model.head.doc_keys(doc), batch.doc_copyable)


def value_loss(logits: Tensor, targets: Tensor, valid: Tensor) -> Tensor:
    """-log of the probability mass on the valid targets, averaged over value tokens.

    ``targets`` (B, Q, M) lists every acceptable index (a value copied from any of its
    occurrences in the document is right), padded with -1.
    """
    logp = torch.log_softmax(logits.float(), -1)  # (B, Q, V + Ld)
    picked = torch.gather(logp, 2, targets.clamp(min=0))  # (B, Q, M)
    picked = picked.masked_fill(targets < 0, float("-inf"))
    mask = valid & (targets[..., 0] >= 0)
    nll = torch.where(mask, -torch.logsumexp(picked, -1), 0.0)  # (B, Q)
    return nll.sum() / mask.sum().clamp(min=1)
