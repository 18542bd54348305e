"""Training objective of the value tokens, shared by parallel and autoregressive examples."""

from __future__ import annotations

import torch
from torch import Tensor


def value_loss(logits: Tensor, targets: Tensor, valid: Tensor) -> Tensor:
    """-log of the probability mass on the valid targets, averaged over value tokens.

    ``targets`` (B, Q, M) lists every acceptable index (a value copied from any of its
    occurrences in the document is right), padded with -1.
    """
    logp = torch.log_softmax(logits.float(), -1)  # (B, Q, V + Ld)
    picked = torch.gather(logp, 2, targets.clamp(min=0))  # (B, Q, M)
    picked = picked.masked_fill(targets < 0, -1e9)  # finite: no NaN gradients from padding
    mask = valid & (targets[..., 0] >= 0)
    nll = torch.where(mask, -torch.logsumexp(picked, -1), 0.0)  # (B, Q)
    return nll.sum() / mask.sum().clamp(min=1)
