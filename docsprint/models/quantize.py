"""int8 dynamic quantisation of a model's linear layers, for CPU inference.

Weights of every ``nn.Linear`` are stored as int8 (one scale per output channel); activations
are quantised on the fly, per batch, and the matrix products run in int8. The value head's
vocabulary projection, a product with the tied word-embedding table rather than an
``nn.Linear``, gets an untied int8 copy of that table: it is a sixth of a receipt's arithmetic.
Embeddings, layer norms and attention itself stay in fp32.

The kernels are oneDNN's where this torch has them: on the Xeon the benchmarks ran on, its
dynamic int8 linear layers are about 25% faster than fbgemm's (torch's default ``x86`` engine
picks fbgemm here). The engine is process-wide and is set when a model is quantised, since the
weights are packed for one engine.

>>> model = quantize_int8(model)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import warnings
from typing import TypeVar

import torch
from torch import nn

from docsprint.models.model import ValueHead

QUANTIZE = ("int8",)
M = TypeVar("M", bound=nn.Module)
ENGINE = "onednn" if "onednn" in torch.backends.quantized.supported_engines else torch.backends.quantized.engine


def quantize_int8(model: M, inplace: bool = False) -> M:
    """The model with its linear layers (and an untied copy of the tied vocabulary projection,
    if it has one) replaced by dynamically quantised int8 ones: a copy, or with ``inplace``
    the model itself (which saves holding both in memory: the Extractor owns its model)."""
    # torch.ao.quantization is deprecated in favour of torchao, whose int8 CPU kernels are not
    # faster than these here; the eager API still works in this torch and says so loudly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import QConfig, default_dynamic_quant_observer, quantize_dynamic
        from torch.ao.quantization.observer import per_channel_weight_observer_range_neg_127_to_127

        model = (model if inplace else copy.deepcopy(model)).float().eval()
        for head in model.modules():
            if isinstance(head, ValueHead):
                head.untied = _untied_vocab(head)
        torch.backends.quantized.engine = ENGINE
        qconfig = QConfig(activation=default_dynamic_quant_observer,
                          weight=per_channel_weight_observer_range_neg_127_to_127)
        return quantize_dynamic(model, {nn.Linear: qconfig}, dtype=torch.qint8, inplace=True)


def _untied_vocab(head: ValueHead) -> nn.Linear:
    """An nn.Linear computing what ``F.linear(h, word.weight, bias)`` does, with its own weights."""
    V, H = head.word.weight.shape
    vocab = nn.Linear(H, V)
    vocab.weight = nn.Parameter(head.word.weight.detach().clone())
    vocab.bias = nn.Parameter(head.bias.detach().clone())
    return vocab
