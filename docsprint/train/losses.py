"""Training objective of the value tokens, shared by parallel and autoregressive examples."""

from __future__ import annotations

import torch
from torch import Tensor

from docsprint.data.encode import Batch
from docsprint.decode.common import head_inputs
from docsprint.models.model import DocsprintModel


def target_nll(vocab: Tensor, copy: Tensor, targets: Tensor) -> Tensor:
    """-log of the probability mass on the acceptable targets, per value token.

    vocab (N, V) and copy (N, Ld) are the two halves of one softmax over [vocabulary |
    document tokens]; targets (N, M) lists every acceptable index into it (a value copied from
    any of its occurrences is right), padded with -1. Each half is normalised by its own
    logsumexp, so the (N, V + Ld) concatenation is never built.
    """
    vocab, copy = vocab.float(), copy.float()
    V, Ld = vocab.shape[-1], copy.shape[-1]
    log_z = torch.logaddexp(torch.logsumexp(vocab, -1), torch.logsumexp(copy, -1))  # (N,)
    in_vocab = targets < V
    picked = torch.where(in_vocab, torch.gather(vocab, -1, targets.clamp(0, V - 1)),
                         torch.gather(copy, -1, (targets - V).clamp(0, max(Ld - 1, 0))))  # (N, M)
    picked = picked.masked_fill(targets < 0, -1e9)  # finite: no NaN gradients from padding
    return log_z - torch.logsumexp(picked, -1)


def value_loss(logits: Tensor, targets: Tensor, valid: Tensor, vocab_size: int) -> Tensor:
    """The mean `target_nll` over the valid value tokens of full logits (B, Q, V + Ld)."""
    mask = valid & (targets[..., 0] >= 0)
    nll = target_nll(logits[mask][:, :vocab_size], logits[mask][:, vocab_size:], targets[mask])
    return nll.sum() / mask.sum().clamp(min=1)


def batch_value_loss(model: DocsprintModel, batch: Batch) -> Tensor:
    """The training loss of a batch: one forward pass, then the value head on the value tokens
    that have a target only (padding rows never reach the 30k-wide vocabulary projection)."""
    assert batch.targets is not None
    query, ptr, start_ptr, slot = head_inputs(model, batch)  # (B, Q, H), (B, Q, Ld) x2, (B, Q)
    rows = batch.value_valid & (batch.targets[..., 0] >= 0)  # (B, Q)
    vocab = model.head.vocab_logits(query[rows])  # (N, V)
    copy = model.head.copy_logits(ptr[rows][None], start_ptr[rows][None], slot[rows][None])[0]  # (N, Ld)
    nll = target_nll(vocab, copy, batch.targets[rows])
    return nll.sum() / rows.sum().clamp(min=1)
