"""``docsprint bench``: one command whose report says how docsprint stands against the papers,
against the machine's limit, and how its speed changes with the number of keys.

Writes ``OUT/BENCHMARKS.md``, ``OUT/results.json`` and ``OUT/figures/*.png``. Every timing is
model time (inputs already tokenised), after warm-up, with fixed seeds; the machine is recorded.

>>> run_bench(BenchConfig(out=Path("out/bench"), quick=True))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import platform
import resource
import shlex
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from docsprint.eval.floor import count_flops, matmul_rate
from docsprint.eval.kie import write_json

KIE_DATASETS = ("sroie", "funsd", "wildreceipt", "kleister-nda")
KEY_COUNTS = (1, 2, 4, 8, 16, 32, 64)
# Without --limit: every test document, except the two largest sets, capped to keep the full
# run near 25 minutes on 2 CPU cores (WildReceipt has 472 test receipts, Kleister-NDA 203
# multi-page contracts).
FULL_RUN_LIMITS = {"wildreceipt": 100, "kleister-nda": 50}


@dataclass
class BenchConfig:
    out: Path
    quick: bool = False
    model: str | None = None  # KIE checkpoint for SROIE, the peer and the floor (default: shipped)
    general_model: str | None = None  # for the other datasets and the keys sweep (default: model)
    classifier: str | None = None  # early-exit checkpoint; its section is skipped without one
    peer: str | None = None  # LayoutLMv3 peer checkpoint (docsprint train peer); skipped without one
    datasets: tuple[str, ...] = KIE_DATASETS
    data_dir: str | None = None  # a folder holding the datasets (default ../shared/data)
    limit: int | None = None  # documents per dataset (default: all; --quick: 2)
    key_counts: tuple[int, ...] = KEY_COUNTS
    key_docs: int = 3  # synthetic forms per number of keys
    floor_docs: int = 40  # SROIE receipts for the floor and its variants
    classify_limit: int | None = None
    threads: int | None = None
    seed: int = 0
    command: list[str] = field(default_factory=list)

    def model_for(self, dataset: str) -> str | None:
        """SROIE (and the synthetic forms, as "forms") may use different checkpoints."""
        return self.model if dataset == "sroie" else self.general_model or self.model

    def limit_for(self, dataset: str) -> int | None:
        if self.quick and dataset == "kleister-nda":
            return 1  # one multi-page contract costs as much as all the other quick documents
        return self.limit or FULL_RUN_LIMITS.get(dataset)

    def dataset_dir(self, name: str) -> str | None:
        return str(Path(self.data_dir) / name) if self.data_dir else None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.quick:
            self.limit = self.limit or 2
            self.key_counts = (1, 4, 8)
            self.key_docs = 1
            self.floor_docs = 2
            self.classify_limit = self.classify_limit or 20


def machine() -> dict:
    """What ran the benchmark: CPU, cores, threads, library versions, device."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    with contextlib.suppress(OSError, StopIteration):
        flags = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "isa": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8") if f" {f}" in flags],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": "cpu",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


# --- extraction, one (dataset, mode, precision) per child process: its own peak memory -------

def _eval_child(job: dict) -> dict:
    from docsprint.data import datasets
    from docsprint.eval.kie import evaluate_kie
    from docsprint.pipeline import Extractor

    torch.manual_seed(0)
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    ex = Extractor(job["model"], precision=job["precision"], quantize=job["quantize"])
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = evaluate_kie(job["dataset"], "test", job["mode"], job["model"], job["data_dir"], job["limit"], ex)
    r["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    r["loaded_rss_mb"] = rss_loaded / 1024
    flops = []
    for e in datasets.load(job["dataset"], "test", job["data_dir"], job["limit"])[: job["flop_docs"]]:
        if e.fields:
            _, work = ex.prepare(e.doc, list(e.fields), job["mode"])
            flops.append(count_flops(partial(ex.decode, work, job["mode"], datasets.list_keys(job["dataset"], e))))
    r["flops_per_doc"] = float(np.mean(flops)) if flops else 0.0
    r.pop("predictions")
    return r


def _in_child(fn: Callable[[dict], dict], job: dict) -> dict:
    """``fn(job)`` in a fresh process, so that its peak memory is its own."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), max_tasks_per_child=1) as pool:
        return pool.submit(fn, job).result()


def bench_extraction(cfg: BenchConfig, rates: dict[str, float]) -> list[dict]:
    """Every dataset in both modes (fp32), and SROIE in int8 and bf16 too."""
    runs: list[tuple[str, str, str, str | None]] = [
        (d, m, "fp32", None) for d in cfg.datasets for m in ("parallel", "autoregressive")]
    if "sroie" in cfg.datasets:
        runs += [("sroie", m, p, q) for p, q in (("fp32", "int8"), ("bf16", None)) for m in ("parallel", "autoregressive")]
    rows: list[dict] = []
    for dataset, mode, precision, quantize in runs:
        job = {"dataset": dataset, "mode": mode, "precision": precision, "quantize": quantize,
               "model": cfg.model_for(dataset), "data_dir": cfg.dataset_dir(dataset), "limit": cfg.limit_for(dataset), "threads": cfg.threads,
               "flop_docs": 1 if cfg.quick else 10}
        print(f"bench: extraction {dataset} {mode} {quantize or precision}", file=sys.stderr)
        r = _in_child(_eval_child, job)
        if quantize:  # the flop counter does not see int8 kernels: same arithmetic as fp32
            r["flops_per_doc"] = next(x["flops_per_doc"] for x in rows
                                      if (x["dataset"], x["mode"], x["precision"]) == (dataset, mode, "fp32"))
        rate = rates["bf16" if precision == "bf16" else "fp32"]
        r["floor_seconds_per_doc"] = r["flops_per_doc"] / rate
        r["times_floor"] = r["seconds_per_doc"] / r["floor_seconds_per_doc"] if r["flops_per_doc"] else 0.0
        rows.append(r)
    return rows


def _peer_child(job: dict) -> dict:
    from docsprint.peer import evaluate_peer

    if job["threads"]:
        torch.set_num_threads(job["threads"])
    r = evaluate_peer(job["model"], "sroie", "test", job["data_dir"], job["limit"])
    r["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return r


def bench_peer(cfg: BenchConfig) -> dict | None:
    """The LayoutLMv3 BIO-tagging peer on the same SROIE test documents."""
    if not cfg.peer:
        return None
    print("bench: peer", file=sys.stderr)
    return _in_child(_peer_child, {"model": cfg.peer, "data_dir": cfg.dataset_dir("sroie"), "limit": cfg.limit,
                                   "threads": cfg.threads})


# --- speedup against the number of keys -------------------------------------------------------

def bench_keys(cfg: BenchConfig) -> list[dict]:
    """Synthetic forms with exactly n filled keys, all asked: time per document in both modes."""
    from docsprint.data.synth import form_with_keys
    from docsprint.eval.metrics import anls
    from docsprint.io.document import Document, Page
    from docsprint.pipeline import Extractor

    ex = Extractor(cfg.model_for("forms"))
    rows = []
    for n in cfg.key_counts:
        docs = []
        for i in range(cfg.key_docs):
            img, words, fields = form_with_keys(n, cfg.seed + i)
            docs.append((Document([Page(img, img.width, img.height, words)], source=f"form-{n}-{i}"), fields))
        row: dict = {"keys": n, "docs": len(docs)}
        for mode in ("parallel", "autoregressive"):
            ex.extract(docs[0][0], list(docs[0][1]), mode)  # warm-up
            seconds, scores = [], []
            for doc, fields in docs:
                out = ex.extract(doc, list(fields), mode)
                seconds.append(out.model_seconds)
                scores += [anls(out.fields[k].value, v) for k, v in fields.items()]
            row[mode] = {"seconds_per_doc": float(np.mean(seconds)), "anls": 100 * float(np.mean(scores))}
            if mode == "parallel":
                row["slot_tokens_per_doc"] = out.slot_tokens
                row["input_tokens_per_doc"] = out.input_tokens
        row["speedup"] = row["autoregressive"]["seconds_per_doc"] / row["parallel"]["seconds_per_doc"]
        print(f"bench: keys {n:>3}: parallel {row['parallel']['seconds_per_doc']:.3f} s, autoregressive "
              f"{row['autoregressive']['seconds_per_doc']:.3f} s, {row['speedup']:.1f}x", file=sys.stderr)
        rows.append(row)
    return rows


def keys_plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["keys"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    ax[0].plot(n, [r["parallel"]["seconds_per_doc"] for r in rows], "o-", label="parallel (PIP)")
    ax[0].plot(n, [r["autoregressive"]["seconds_per_doc"] for r in rows], "s-", label="autoregressive + KV cache")
    ax[0].set(xscale="log", yscale="log", xlabel="keys asked", ylabel="model seconds per document")
    ax[0].legend()
    ax[1].plot(n, [r["speedup"] for r in rows], "o-", color="tab:green")
    ax[1].set(xscale="log", xlabel="keys asked", ylabel="speedup (autoregressive / parallel)")
    for a in ax:
        a.set_xticks(n, [str(x) for x in n])
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- against the floor: what each setting does to parallel-mode time on SROIE ----------------

def bench_floor(cfg: BenchConfig, rates: dict[str, float]) -> list[dict]:
    """Parallel-mode model time per SROIE receipt under each setting, against the floor.

    Timed: one forward pass plus the slot argmax (what ``decode_parallel`` does before it
    turns ids into text), so that autograd on/off can be compared too.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from docsprint.data import datasets
    from docsprint.models.quantize import quantize_int8
    from docsprint.pipeline import Extractor

    ex = Extractor(cfg.model)
    examples = [e for e in datasets.load("sroie", "test", cfg.dataset_dir("sroie"), cfg.floor_docs) if e.fields]
    encs = [enc for e in examples for enc, _ in ex.prepare(e.doc, list(e.fields), "parallel")[1]]
    fp32, bf16, int8 = ex.model.eval(), None, None
    flops = [count_flops(partial(_forward, fp32, [enc])) for enc in encs]
    per_doc = float(np.mean(flops))

    def run(model, batch: int, grad: str = "inference", math: bool = False, threads: int | None = None) -> float:
        saved = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        ctx = {"inference": torch.inference_mode, "no_grad": torch.no_grad, "autograd": torch.enable_grad}[grad]
        try:
            with ctx(), sdpa_kernel(SDPBackend.MATH if math else [SDPBackend.FLASH_ATTENTION,
                                                                  SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
                _forward(model, encs[:batch])  # warm-up
                t0 = time.perf_counter()
                for i in range(0, len(encs), batch):
                    _forward(model, encs[i : i + batch])
                return (time.perf_counter() - t0) / len(encs)
        finally:
            torch.set_num_threads(saved)

    variants: list[tuple[str, str, Callable[[], float]]] = [
        ("batch 1, autograd on", "fp32", lambda: run(fp32, 1, "autograd")),
        ("batch 1, torch.no_grad", "fp32", lambda: run(fp32, 1, "no_grad")),
        ("batch 1, inference_mode (the default)", "fp32", lambda: run(fp32, 1)),
        ("batch 1, unfused (math) attention", "fp32", lambda: run(fp32, 1, math=True)),
        ("batch 1, 1 thread", "fp32", lambda: run(fp32, 1, threads=1)),
        ("batch 8", "fp32", lambda: run(fp32, 8)),
        ("batch 1, int8 dynamic quantisation", "fp32", lambda: run(int8, 1)),
        ("batch 8, int8 dynamic quantisation", "fp32", lambda: run(int8, 8)),
        ("batch 1, bf16 weights", "bf16", lambda: run(bf16, 1)),
        ("batch 8, bf16 weights", "bf16", lambda: run(bf16, 8)),
    ]
    rows = []
    for name, roof, fn in variants:
        if "int8" in name and int8 is None:
            int8 = quantize_int8(ex.model)
        if "bf16" in name and bf16 is None:
            import copy

            bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
        s = fn()
        floor = per_doc / rates[roof]
        rows.append({"setting": name, "seconds_per_doc": s, "flops_per_doc": per_doc, "roof": roof,
                     "achieved_gflops": per_doc / s / 1e9, "floor_seconds_per_doc": floor, "times_floor": s / floor})
        print(f"bench: floor {name:<40} {1000 * s:8.1f} ms/doc  {s / floor:5.2f}x floor", file=sys.stderr)
    return rows


def _forward(model, encs) -> torch.Tensor:
    """One parallel forward pass and the slots' argmax."""
    from docsprint.data.encode import collate
    from docsprint.decode.common import value_logits

    batch = collate(encs)
    return torch.log_softmax(value_logits(model, batch).float(), -1).max(-1).indices


# --- early exit and pictures -------------------------------------------------------------------

def bench_early_exit(cfg: BenchConfig, figures: Path) -> dict | None:
    if not cfg.classifier:
        return None
    from docsprint.eval.classify import evaluate_classify

    print("bench: early exit", file=sys.stderr)
    r = evaluate_classify(cfg.classifier, "tobacco3482", "test", cfg.dataset_dir("tobacco3482"),
                          None, cfg.classify_limit, 16, figures / "early-exit-pareto.png")
    r.pop("sweep", None)
    return r


def bench_pictures(cfg: BenchConfig, figures: Path) -> list[dict]:
    """One attention picture per dataset: the first test document, its first key."""
    from docsprint.data import datasets
    from docsprint.explain import draw, explain
    from docsprint.pipeline import Extractor

    out = []
    for d in cfg.datasets:
        e = next(e for e in datasets.load(d, "test", cfg.dataset_dir(d), 5) if e.fields)
        key = next(iter(e.fields))
        view = explain(Extractor(cfg.model_for(d)), e.doc, key)
        path = draw(view, figures / f"explain-{d}.png", width=420)
        out.append({"dataset": d, "document": e.id, "gold": e.fields[key], **view.to_dict(),
                    "picture": str(path.relative_to(cfg.out))})
    return out


def run_bench(cfg: BenchConfig) -> dict:
    """Run every section and write the report; returns the results written to results.json."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    figures = cfg.out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rates = {"fp32": matmul_rate(torch.float32), "bf16": matmul_rate(torch.bfloat16)}
    results: dict = {"command": shlex.join(cfg.command) if cfg.command else "", "config": _jsonable(asdict(cfg)),
                     "machine": machine(), "matmul_gflops": {k: v / 1e9 for k, v in rates.items()}}
    results["extraction"] = bench_extraction(cfg, rates)
    results["keys"] = bench_keys(cfg)
    keys_plot(results["keys"], figures / "speedup-vs-keys.png")
    results["peer"] = bench_peer(cfg)
    results["floor"] = bench_floor(cfg, rates)
    results["early_exit"] = bench_early_exit(cfg, figures)
    results["pictures"] = bench_pictures(cfg, figures)
    results["seconds"] = time.perf_counter() - t0
    from docsprint.eval.bench_report import render

    write_json(results, cfg.out / "results.json")
    report = cfg.out / "BENCHMARKS.md"
    tmp = report.with_name(report.name + ".tmp")
    tmp.write_text(render(results))
    tmp.replace(report)
    return results


def _jsonable(d: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

