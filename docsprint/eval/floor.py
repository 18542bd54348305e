"""The physical floor: how many floating-point operations a document costs, how fast this
machine multiplies matrices, and hence the least time a compute-bound run could take.

>>> flops = count_flops(lambda: extractor.decode(work, "parallel"))  # doctest: +SKIP
>>> rate = matmul_rate()  # FLOP/s of this machine, measured now      # doctest: +SKIP
>>> floor_seconds = flops / rate                                      # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count


# torch's counter knows the CUDA attention kernels but not the CPU one that
# scaled_dot_product_attention dispatches to here: without this line, attention (about 12% of
# a receipt's arithmetic) would count as free and the floor would come out too low.
def _attention_flops(query_shape, key_shape, value_shape, *_args, **_kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)  # QK^T and PV


_CPU_ATTENTION = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops}


def count_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call of ``fn`` (matrix products, attention and
    convolutions, as counted by ``torch.utils.flop_counter``; a multiply-add is 2)."""
    with FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION) as counter:
        fn()
    return int(counter.get_total_flops())


def matmul_rate(dtype: torch.dtype = torch.float32, size: int = 1536, seconds: float = 1.0) -> float:
    """FLOP/s of a square ``size`` matrix product in ``dtype``, measured now with the current
    torch threads: the compute roof the floor is computed against (best of the runs)."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    for _ in range(3):  # warm-up: thread pool, caches, AMX tiles
        a @ b
    best, runs = float("inf"), 0
    deadline = time.perf_counter() + seconds
    while runs < 5 or time.perf_counter() < deadline:  # at least 5: one stalled run is not the rate
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return 2 * size**3 / best
