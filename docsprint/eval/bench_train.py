"""The training section of ``docsprint bench``: how fast key-value fine-tuning and mask
pre-training run on SROIE training receipts, where a step's time goes (building the batch,
forward, backward, optimizer), and the FLOP rate against this machine's roof, with each
speed-up of the loop switched on in turn on the same receipts.

>>> bench_training(BenchConfig(out=Path("out/bench"), quick=True), native=False)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from docsprint.data.encode import Batch
from docsprint.eval.floor import count_flops
from docsprint.models.config import ModelConfig
from docsprint.models.model import DocsprintModel

# (name, batches grouped by length, loss on value rows only, fused AdamW, bf16 autocast)
PLAIN = ("plain loop: shuffled order, full logits, per-tensor AdamW", False, False, False, False)
SETTINGS = [
    PLAIN,
    ("+ batches grouped by length", True, False, False, False),
    ("+ loss on value rows only", True, True, False, False),
    ("+ fused AdamW (the default loop)", True, True, True, False),
]
BF16 = ("+ bf16 autocast", True, True, True, True)


@dataclass
class Objective:
    name: str
    items: int
    make_batch: Callable[[list[int], random.Random], Batch]
    lengths: list[int]
    model: DocsprintModel


def _objectives(cfg, docs: int | None, cache_dir: str) -> list[Objective]:
    from docsprint.data.encode import collate
    from docsprint.models.checkpoint import load_tokenizer
    from docsprint.models.config import ModelConfig
    from docsprint.train.kie import (
        KIETrainConfig,
        build_model,
        load_prepared,
        make_example,
        measure_slot_budgets,
    )
    from docsprint.train.kie import tokenizer_file as tok_path
    from docsprint.train.pretrain import PretrainConfig, span_example

    tc = KIETrainConfig(datasets=["sroie"], limit=docs, data_dir={"sroie": cfg.dataset_dir("sroie")} if cfg.data_dir else {},
                        cache_dir=cache_dir)
    tok_file = tok_path(tc)
    tok = load_tokenizer(tok_file)
    prepared = [p for _, p in load_prepared(tok, tok_file, ModelConfig(), tc, "sroie") if p is not None]
    budgets, default = measure_slot_budgets(tok, [w.fields for p in prepared for w in p.windows],
                                            tc.slot_percentile, tc.default_slot_percentile)
    torch.manual_seed(0)
    kie_model, _ = build_model(tc, budgets, default)

    def kie_batch(idx, rng):
        return collate([make_example(tok, kie_model.cfg, tc, prepared[i], rng) for i in idx])

    pc = PretrainConfig(init="minilm", model={"max_slots": 128})
    torch.manual_seed(0)
    pre_model, _ = build_model(pc, {}, 16)
    from docsprint.data.encode import thumbnail_pixels

    def pre_batch(idx, rng):
        items = []
        for i in idx:
            w = prepared[i].windows[0]
            enc = span_example(tok, pre_model.cfg, w.doc, thumbnail_pixels(w.image), rng, pc)
            if enc is not None:
                items.append(enc)
        return collate(items)

    lengths = [p.length for p in prepared]
    return [Objective("key-value fine-tuning (configs/kie-sroie.yaml's batches)", len(prepared), kie_batch, lengths, kie_model),
            Objective("mask pre-training (span masking of the same pages)", len(prepared), pre_batch, lengths, pre_model)]


def _loss(model, batch, rows: bool) -> torch.Tensor:
    from docsprint.decode.common import value_logits
    from docsprint.train.losses import batch_value_loss, value_loss

    if rows:
        return batch_value_loss(model, batch)
    return value_loss(value_logits(model, batch), batch.targets, batch.value_valid, model.cfg.vocab_size)


def _tokens(batch: Batch, cfg: ModelConfig) -> int:
    patches = batch.pixels.shape[0] * cfg.num_patches if batch.pixels is not None else 0
    return int(batch.tokens.valid.sum()) + patches


def run_setting(obj: Objective, setting: tuple, steps: int, batch_size: int, flops: dict) -> dict:
    """``steps`` timed steps (after one untimed) of one setting, from the same initial weights."""
    from docsprint.train.kie import KIETrainConfig
    from docsprint.train.loop import _seed_of, epoch_order, param_groups

    name, grouped, rows, fused, bf16 = setting
    model = copy.deepcopy(obj.model).train()
    opt = torch.optim.AdamW(param_groups(model, KIETrainConfig()), betas=(0.9, 0.98), eps=1e-6, fused=fused or None)
    order = epoch_order(obj.items, 0, 0, batch_size, obj.lengths if grouped else None)
    split = {"batch": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    examples = tokens = 0
    step_flops = 0.0
    for s in range(steps + 1):
        t0 = time.perf_counter()
        idx = [order[(s * batch_size + j) % len(order)] for j in range(batch_size)]
        batch = obj.make_batch(idx, random.Random(_seed_of(0, s, 0)))
        t1 = time.perf_counter()
        torch.manual_seed(s)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = _loss(model, batch, rows)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        t4 = time.perf_counter()
        if s == 0:
            continue  # warm-up
        for k, dt in zip(split, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            split[k] += dt
        examples += len(idx)
        tokens += _tokens(batch, model.cfg)
        key = (grouped, rows, s)
        if key not in flops:  # forward + backward, counted on a copy (the same for every setting alike)
            counted = copy.deepcopy(model)

            def forward_backward(counted: DocsprintModel = counted, batch: Batch = batch) -> None:
                _loss(counted, batch, rows).backward()

            flops[key] = count_flops(forward_backward)
        step_flops += flops[key]
    seconds = sum(split.values())
    loop = seconds - split["batch"]  # the loop builds the next batch in a thread while this one trains
    return {"setting": name, "steps": steps, "batch_size": batch_size, "seconds": seconds,
            "examples_per_second": examples / seconds, "examples_per_second_prefetched": examples / loop,
            "tokens_per_second": tokens / seconds, "gflop_per_step": step_flops / steps / 1e9,
            "achieved_gflops": step_flops / loop / 1e9, "split_seconds_per_step": {k: v / steps for k, v in split.items()},
            "roof": "bf16" if bf16 else "fp32"}


def bench_training(cfg, native: bool) -> dict:
    """Every setting on both objectives (--quick: the plain loop and the default loop on key-value
    fine-tuning, the default loop on pre-training); the bf16 setting only where ``native``."""
    steps = 3 if cfg.quick else 10
    docs = 48 if cfg.quick else None
    settings = [PLAIN, SETTINGS[-1]] if cfg.quick else list(SETTINGS)
    if native:
        settings.append(BF16)
    out: dict = {"bf16_native": native, "objectives": []}
    # the receipts' encoding cache lives as long as the section: none is left in the report's folder
    with tempfile.TemporaryDirectory(prefix="docsprint-bench-") as cache_dir:
        kie, pretrain = _objectives(cfg, docs, cache_dir)
        per_objective = [(kie, settings), (pretrain, settings[-1:] if cfg.quick else [PLAIN, *settings[-1:]])]
        for obj, chosen in per_objective:
            flops: dict = {}
            rows = []
            for setting in chosen:
                print(f"bench: training {obj.name.split(' (')[0]}: {setting[0]}", file=sys.stderr)
                rows.append(run_setting(obj, setting, steps, 8, flops))
            out["objectives"].append({"objective": obj.name, "rows": rows})
    return out


def training_report(res: dict, rates: dict[str, float]) -> str:
    """The report's training section as markdown."""
    lines = []
    for o in res["objectives"]:
        lines.append(f"**{o['objective']}**, batch {o['rows'][0]['batch_size']}, "
                     f"{o['rows'][0]['steps']} timed steps per setting:")
        lines.append("")
        lines.append("| setting | examples/s | examples/s, batch built in a thread | tokens/s | GFLOP/step | "
                     "GFLOP/s | share of roof | batch / fwd / bwd / opt (ms per step) |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for r in o["rows"]:
            sp = r["split_seconds_per_step"]
            lines.append(f"| {r['setting']} | {r['examples_per_second']:.2f} | {r['examples_per_second_prefetched']:.2f} | "
                         f"{r['tokens_per_second']:.0f} | {r['gflop_per_step']:.0f} | {r['achieved_gflops']:.0f} | "
                         f"{100 * r['achieved_gflops'] * 1e9 / rates[r['roof']]:.0f}% ({r['roof']}) | "
                         + " / ".join(f"{1000 * sp[k]:.0f}" for k in ("batch", "forward", "backward", "optimizer"))
                         + " |")
        base, best = o["rows"][0], o["rows"][-1]
        if len(o["rows"]) > 1:
            lines.append("")
            lines.append(f"Default loop against the plain one: "
                         f"{best['examples_per_second_prefetched'] / base['examples_per_second']:.2f}x the examples per second.")
        lines.append("")
    if not res["bf16_native"]:
        lines.append(f"This CPU has no native bf16 (no AMX, no AVX512-BF16): bf16 products ran at "
                     f"{rates.get('bf16', 0) / 1e9:.1f} GFLOP/s against {rates['fp32'] / 1e9:.0f} in fp32, so the "
                     "bf16 rows are left out and `bf16: auto` trains in fp32 here.")
    return "\n".join(lines)
