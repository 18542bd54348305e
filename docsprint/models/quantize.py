"""int8 dynamic quantisation of a model's linear layers, for CPU inference.

Weights of every ``nn.Linear`` are stored as int8 (one scale per output channel); activations
are quantised on the fly, per batch, and the matrix products run in int8 (fbgemm on x86).
Embeddings, layer norms, attention itself and the tied vocabulary projection of the value
head (a product with the word-embedding table, not an ``nn.Linear``) stay in fp32.

>>> model = quantize_int8(model)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from typing import TypeVar

import torch
from torch import nn

QUANTIZE = ("int8",)
M = TypeVar("M", bound=nn.Module)


def quantize_int8(model: M) -> M:
    """The model with its linear layers replaced by dynamically quantised int8 ones (a copy)."""
    # torch.ao.quantization is deprecated in favour of torchao, whose int8 CPU kernels are not
    # faster than fbgemm's here; the eager API still works in this torch and says so loudly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import QConfig, default_dynamic_quant_observer, quantize_dynamic
        from torch.ao.quantization.observer import per_channel_weight_observer_range_neg_127_to_127

        qconfig = QConfig(activation=default_dynamic_quant_observer,
                          weight=per_channel_weight_observer_range_neg_127_to_127)
        return quantize_dynamic(model.float().eval(), {nn.Linear: qconfig}, dtype=torch.qint8,
                                inplace=False)
