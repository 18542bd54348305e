"""The physical floor: how many floating-point operations a document costs, how fast this
machine multiplies matrices, and hence the least time a compute-bound run could take.

>>> flops = count_flops(lambda: extractor.decode(work, "parallel"))  # doctest: +SKIP
>>> rate = matmul_rate()  # FLOP/s of this machine, measured now      # doctest: +SKIP
>>> floor_seconds = flops / rate                                      # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch.profiler import record_function
from torch.utils.flop_counter import FlopCounterMode, addmm_flop, bmm_flop, mm_flop, sdpa_flop_count


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
    """FLOP/s of a square matrix product in ``dtype``, measured now with the current torch
    threads: the compute roof the floor is computed against (best of the runs).

    The product is ``size`` wide where one takes at most a tenth of a second (a 1536-wide fp32
    product takes about 60 ms on 2 cores); where the dtype is emulated (bf16 on a CPU without
    AMX or AVX512-BF16 runs at about 1 GFLOP/s) a smaller one measures the same rate in time."""
    n = min(256, size)
    while n < size:
        t0 = time.perf_counter()
        torch.ones(n, n, dtype=dtype) @ torch.ones(n, n, dtype=dtype)
        if 8 * (time.perf_counter() - t0) > max(0.1, seconds / 5):
            break
        n = min(2 * n, size)
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    for _ in range(3):  # warm-up: thread pool, caches, AMX tiles
        a @ b
    best, runs = float("inf"), 0
    deadline = time.perf_counter() + seconds
    while runs < 5 or time.perf_counter() < deadline:  # at least 5: one stalled run is not the rate
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return 2 * n**3 / best


# --- where the time goes: each part of a forward pass, its time and its arithmetic -----------

VOCAB_RANGE = "vocabulary projection"
# FLOPs of an operator from its input shapes, by torch's own formulas (those FlopCounterMode uses).
FLOPS_OF: dict[str, Callable[..., int]] = {"aten::addmm": addmm_flop, "aten::mm": mm_flop, "aten::bmm": bmm_flop,
            "aten::_scaled_dot_product_flash_attention_for_cpu": _attention_flops}
LINEAR = ("aten::addmm", "aten::mm", "aten::bmm", "aten::linear", "quantized::linear_dynamic")
CONVOLUTION = ("aten::conv2d", "aten::convolution", "aten::_convolution", "aten::mkldnn_convolution")
PARTS = ("vocabulary projection", "other linear layers", "attention", "patch embedding",
         "element-wise, reductions, copies", "outside torch ops (Python, dispatch)")


@contextmanager
def labelled(owner: object, method: str, label: str) -> Iterator[None]:
    """While the block runs, calls of ``owner.method`` show in profiles as a range named
    ``label`` (an instance attribute shadows the method; removed after). The label lives here,
    not in the model, so that unprofiled forward passes pay nothing for it."""
    inner = getattr(owner, method)

    def wrapped(*args, **kwargs):
        with record_function(label):
            return inner(*args, **kwargs)

    setattr(owner, method, wrapped)
    try:
        yield
    finally:
        delattr(owner, method)


def _part(ev) -> str:
    """The part an operator belongs to: the ``VOCAB_RANGE`` range if one encloses it, else that of
    the outermost operator of a known kind that encloses it (so the bias copy inside a linear
    layer's addmm counts to that layer)."""
    found = "element-wise, reductions, copies"
    while ev is not None:
        name = ev.name
        if name == VOCAB_RANGE:
            return "vocabulary projection"
        if name in LINEAR:
            found = "other linear layers"  # unless a vocabulary range encloses it
        elif "scaled_dot_product" in name:
            found = "attention"
        elif name in CONVOLUTION:
            found = "patch embedding"
        ev = ev.cpu_parent
    return found


def time_breakdown(fn: Callable[[], object], docs: int) -> list[dict]:
    """Run ``fn`` (which decodes ``docs`` documents) under torch.profiler and split its time
    per document into the parts of a forward pass, each with the FLOPs it does and hence the
    rate it runs at: where a run stands against the floor, part by part. The vocabulary
    projection is what runs in a ``VOCAB_RANGE`` range (see `labelled`).

    Times are the operators' own (self) times on the calling thread, and profiling adds a
    little to each operator call, so the parts sum to somewhat more than an unprofiled run.
    FLOPs come from the shapes of fp32/bf16 matrix products; int8 linear layers hide theirs
    (packed weights), so their parts show 0 FLOPs.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as prof:
        t0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
    ms = dict.fromkeys(PARTS, 0.0)
    flops = dict.fromkeys(PARTS, 0)
    for ev in prof.events():
        name, shapes = ev.name, ev.input_shapes or []
        if name == VOCAB_RANGE:
            continue  # a label, not an operator: its own time is Python, counted outside ops
        part = _part(ev)
        ms[part] += ev.self_cpu_time_total / 1e3
        if name in FLOPS_OF:
            flops[part] += FLOPS_OF[name](*shapes[:3])
        elif name == "aten::conv2d":
            flops[part] += int(ev.flops or 0)
    ms["outside torch ops (Python, dispatch)"] = max(0.0, 1000 * wall - sum(ms.values()))
    return [{"part": p, "ms_per_doc": ms[p] / docs, "flops_per_doc": flops[p] / docs,
             "share": ms[p] / (1000 * wall) if wall else 0.0} for p in PARTS]
