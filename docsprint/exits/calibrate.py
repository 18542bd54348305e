"""Calibration of every decision point: temperature scaling fitted on val, and ECE.

For a ramp (and the final classifier) the calibrated quantity is the K-class softmax; for a
gate it is its 2-way softmax, whose target is "the shared classifier is right here". Either
way a decision point yields (confidence, correct) pairs, and ECE is measured on those.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

TEMPERATURES = torch.logspace(-1.5, 1.5, 301)  # 0.03 .. 31.6, a grid: exact and deterministic


def fit_temperature(logits: Tensor, targets: Tensor) -> float:
    """The temperature T minimising the NLL of softmax(logits / T) on ``targets``.

    >>> fit_temperature(torch.tensor([[4.0, 0.0], [4.0, 0.0]]), torch.tensor([0, 1]))  # 50% right
    31.6...
    """
    logits = logits.float()
    nll = torch.stack([F.cross_entropy(logits / t, targets) for t in TEMPERATURES])
    return float(TEMPERATURES[int(nll.argmin())])


def ece(confidence: Tensor, correct: Tensor, bins: int = 15) -> float:
    """Expected calibration error: sum over equal-width confidence bins of
    |accuracy - mean confidence| weighted by the bin's share of samples.

    >>> ece(torch.tensor([0.9, 0.9]), torch.tensor([True, False]))
    0.4...
    """
    if len(confidence) == 0:
        return 0.0
    edges = torch.linspace(0, 1, bins + 1)
    idx = torch.bucketize(confidence.float().clamp(0, 1), edges[1:-1], right=True)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += float(m.float().mean() * (correct[m].float().mean() - confidence[m].float().mean()).abs())
    return total
