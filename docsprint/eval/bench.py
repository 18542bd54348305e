"""``docsprint bench``: one command whose report says how docsprint stands against the papers,
against the machine's limit, and how its speed changes with the number of keys.

Writes ``OUT/BENCHMARKS.md``, ``OUT/results.json`` and ``OUT/figures/*.png``. Every timing is
model time (inputs already tokenised), after warm-up, with fixed seeds; the machine is recorded.

>>> run_bench(BenchConfig(out=Path("out/bench"), quick=True))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import json
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

from docsprint.eval.bench_train import bench_training
from docsprint.eval.floor import count_flops, matmul_rate
from docsprint.eval.kie import write_json
from docsprint.train.loop import native_bf16

KIE_DATASETS = ("sroie", "funsd", "wildreceipt", "kleister-nda")
BF16_NATIVE = native_bf16(torch.device("cpu"))  # AMX / AVX512-BF16: else bf16 rows are left out
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
    peer: tuple[str, ...] = ()  # LayoutLMv3 peer checkpoints (docsprint train peer), one per dataset
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
        from docsprint.peer import PeerConfig

        self.out = Path(self.out)
        for path in self.peer:  # fail now, not after twenty minutes of the other sections
            PeerConfig.of_checkpoint(path)
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
    from docsprint.eval.kie import evaluate_kie
    from docsprint.pipeline import Extractor

    torch.manual_seed(0)
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    ex = Extractor(job["model"], precision=job["precision"], quantize=job["quantize"])
    rss_loaded = peak_rss_mb()
    r = evaluate_kie(job["dataset"], "test", job["mode"], job["model"], job["data_dir"], job["limit"], ex)
    r["peak_rss_mb"] = peak_rss_mb()
    r["loaded_rss_mb"] = rss_loaded
    r.pop("predictions")
    return r


def _flops_per_doc(ex, dataset: str, mode: str, data_dir: str | None, limit: int | None, n_docs: int) -> float:
    """Mean FLOPs of decoding one of the first ``n_docs`` test documents (the same arithmetic in
    every precision: the counter does not see int8 kernels, so all rows take the fp32 count).
    Counted here, not in the rows' processes: the counter's first use imports torch._dynamo,
    five seconds a process."""
    from docsprint.data import datasets

    flops = []
    for e in datasets.load(dataset, "test", data_dir, limit)[:n_docs]:
        if e.fields:
            _, work = ex.prepare(e.doc, list(e.fields), mode)
            flops.append(count_flops(partial(ex.decode, work, mode, datasets.list_keys(dataset, e))))
    return float(np.mean(flops)) if flops else 0.0


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB. Linux's VmHWM belongs to the address space, so
    a spawned child starts from zero; ``ru_maxrss`` survives fork and exec, and would report
    the parent's peak when the parent had been bigger (macOS has only that)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _in_child(fn: Callable[[dict], dict], job: dict) -> dict:
    """``fn(job)`` in a fresh process, so that its peak memory is its own."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), max_tasks_per_child=1) as pool:
        return pool.submit(fn, job).result()


def bench_extraction(cfg: BenchConfig) -> list[dict]:
    """Every dataset in both modes (fp32), and SROIE in int8 and bf16 too (parallel only with
    --quick: every row is a process of its own, and CI's five minutes do not fit them all).

    The full run evaluates SROIE's parallel rows (fp32, int8, bf16) a second time once the
    others are done, and keeps each one's faster run: the precisions' speed ratios are claims
    of the report, and runs minutes apart on a shared machine differ by up to 30%."""
    runs: list[tuple[str, str, str, str | None]] = [
        (d, m, "fp32", None) for d in cfg.datasets for m in ("parallel", "autoregressive")]
    again: list[tuple[str, str, str, str | None]] = []
    if "sroie" in cfg.datasets:
        modes = ("parallel",) if cfg.quick else ("parallel", "autoregressive")
        # bf16 only where the CPU multiplies it natively: emulated, a receipt takes 15 s
        precisions = (("fp32", "int8"), ("bf16", None)) if BF16_NATIVE else (("fp32", "int8"),)
        runs += [("sroie", m, p, q) for p, q in precisions for m in modes]
        if not cfg.quick:
            again = [("sroie", "parallel", p, q) for p, q in (("fp32", None), *precisions)]
    from docsprint.pipeline import Extractor

    rows: list[dict] = []
    extractors: dict[str | None, Extractor] = {}
    flops: dict[tuple[str, str], float] = {}

    def evaluate(dataset: str, mode: str, precision: str, quantize: str | None) -> dict:
        job = {"dataset": dataset, "mode": mode, "precision": precision, "quantize": quantize,
               "model": cfg.model_for(dataset), "data_dir": cfg.dataset_dir(dataset), "limit": cfg.limit_for(dataset),
               "threads": cfg.threads}
        print(f"bench: extraction {dataset} {mode} {quantize or precision}", file=sys.stderr)
        r = _in_child(_eval_child, job)
        r["seconds_per_doc_runs"] = [r["seconds_per_doc"]]
        return r

    for dataset, mode, precision, quantize in runs:
        model, data_dir, limit = cfg.model_for(dataset), cfg.dataset_dir(dataset), cfg.limit_for(dataset)
        r = evaluate(dataset, mode, precision, quantize)
        if (dataset, mode) not in flops:
            if model not in extractors:
                extractors[model] = Extractor(model, precision="fp32")
            flops[dataset, mode] = _flops_per_doc(extractors[model], dataset, mode, data_dir, limit, 1 if cfg.quick else 10)
        r["flops_per_doc"] = flops[dataset, mode]
        r["roof"] = "bf16" if precision == "bf16" else "fp32"
        rows.append(r)
    for run in again:
        i = runs.index(run)
        r = evaluate(*run)
        timings = rows[i]["seconds_per_doc_runs"] + r["seconds_per_doc_runs"]
        if r["seconds_per_doc"] < rows[i]["seconds_per_doc"]:  # same answers (one seed), faster run
            rows[i] = {**r, "flops_per_doc": rows[i]["flops_per_doc"], "roof": rows[i]["roof"]}
        rows[i]["seconds_per_doc_runs"] = timings
    return rows


def _peer_child(job: dict) -> dict:
    from docsprint.peer import evaluate_peer

    if job["threads"]:
        torch.set_num_threads(job["threads"])
    r = evaluate_peer(job["model"], job["dataset"], "test", job["data_dir"], job["limit"])
    r["peak_rss_mb"] = peak_rss_mb()
    return r


def bench_peer(cfg: BenchConfig) -> list[dict]:
    """Each LayoutLMv3 peer on the test documents of the dataset it was trained on."""
    from docsprint.peer import PeerConfig

    rows = []
    for path in cfg.peer:
        dataset = PeerConfig.of_checkpoint(path).dataset
        print(f"bench: peer {dataset}", file=sys.stderr)
        rows.append(_in_child(_peer_child, {"model": path, "dataset": dataset, "data_dir": cfg.dataset_dir(dataset),
                                            "limit": cfg.limit_for(dataset), "threads": cfg.threads}))
    return rows


# --- speedup against the number of keys -------------------------------------------------------

def bench_keys(cfg: BenchConfig) -> list[dict]:
    """Synthetic forms with exactly n filled keys, all asked: time per document in both modes."""
    from docsprint.data.synth import form_with_keys
    from docsprint.eval.metrics import anls
    from docsprint.io.document import Document, Page
    from docsprint.pipeline import Extractor

    ex = Extractor(cfg.model_for("forms"), precision="fp32")
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

FLOOR_DEFAULT = "batch 1, inference_mode (the default)"
FLOOR_INT8 = "batch 1, int8 dynamic quantisation"

def measure_roof(rates: dict[str, float], seconds: float = 1.0) -> dict[str, float]:
    """Measure the matmul roof again and keep, per dtype, the best rate seen in this run: a busy
    moment of a shared machine can only slow a measurement down, so the best one is the
    machine's roof (and the floor computed from it is the lowest, the strictest to meet)."""
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        rates[name] = max(rates.get(name, 0.0), matmul_rate(dtype, seconds=seconds))
    return rates


def against_roof(rows: list[dict], rates: dict[str, float]) -> None:
    """Fill in each row's floor (its FLOPs at the roof of its dtype) and time / floor."""
    for r in rows:
        r["floor_seconds_per_doc"] = r["flops_per_doc"] / rates[r["roof"]]
        r["times_floor"] = r["seconds_per_doc"] / r["floor_seconds_per_doc"] if r["flops_per_doc"] else 0.0
        if "seconds_per_doc_best_each" in r and r["flops_per_doc"]:
            r["times_floor_best_each"] = r["seconds_per_doc_best_each"] / r["floor_seconds_per_doc"]
        r["achieved_gflops"] = r["flops_per_doc"] / r["seconds_per_doc"] / 1e9 if r["seconds_per_doc"] else 0.0


def bench_floor(cfg: BenchConfig, rates: dict[str, float], repeats: int = 3) -> list[dict]:
    """Parallel-mode model time per SROIE receipt under each setting, against the floor.

    Timed: one forward pass plus the slot argmax (what ``decode_parallel`` does before it
    turns ids into text), so that autograd on/off can be compared too. The settings take turns:
    each of ``repeats`` rounds makes one pass over the receipts per setting (each round in a
    rotated order), so that a slow minute of a shared machine falls on every setting alike
    rather than on whichever ran then. A setting's time is its fastest pass (timeit's rule:
    slower passes measure the machine's other work); the roof is measured again after each pass.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from docsprint.decode.parallel import compiled_choices
    from docsprint.models.quantize import quantize_int8

    ex, encs = _floor_receipts(cfg)
    by_length = sorted(encs, key=lambda e: len(e.ids))  # batches of similar length pad little
    fp32 = ex.model.eval()
    flops = [count_flops(partial(_forward, fp32, [enc])) for enc in encs]
    per_doc = float(np.mean(flops))
    int8 = quantize_int8(fp32)
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)

    def run(model, batch: int, grad: str = "inference", math: bool = False, threads: int | None = None,
            order: list | None = None, step: Callable | None = None) -> list[float]:
        """Seconds of each forward pass (batch) of one pass over the receipts, after one
        warm-up batch."""
        saved = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        ctx = {"inference": torch.inference_mode, "no_grad": torch.no_grad, "autograd": torch.enable_grad}[grad]
        items = order or encs
        try:
            with ctx(), sdpa_kernel(SDPBackend.MATH if math else [SDPBackend.FLASH_ATTENTION,
                                                                  SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
                _forward(model, items[:batch], step)  # warm-up (and, compiled, the compilation)
                seconds = []
                for i in range(0, len(items), batch):
                    t0 = time.perf_counter()
                    _forward(model, items[i : i + batch], step)
                    seconds.append(time.perf_counter() - t0)
                return seconds
        finally:
            torch.set_num_threads(saved)

    # torch.compile, as `extract --compile` runs it (inductor; a graph for batch 1 and one for
    # larger batches, every sequence length): about a minute to compile on 2 cores, so the full
    # run only.
    compiled: list[tuple[str, str, Callable[[], list[float]]]] = []
    if not cfg.quick:
        step = compiled_choices()
        compiled = [("batch 1, torch.compile (inductor)", "fp32", lambda: run(fp32, 1, step=step)),
                    ("batch 8 sorted, torch.compile (inductor)", "fp32",
                     lambda: run(fp32, 8, order=by_length, step=step))]

    variants: list[tuple[str, str, Callable[[], list[float]]]] = [
        ("batch 1, autograd on", "fp32", lambda: run(fp32, 1, "autograd")),
        ("batch 1, torch.no_grad", "fp32", lambda: run(fp32, 1, "no_grad")),
        (FLOOR_DEFAULT, "fp32", lambda: run(fp32, 1)),
        ("batch 1, unfused (math) attention", "fp32", lambda: run(fp32, 1, math=True)),
        ("batch 1, 1 thread", "fp32", lambda: run(fp32, 1, threads=1)),
        ("batch 8, in dataset order", "fp32", lambda: run(fp32, 8)),
        ("batch 8, sorted by length", "fp32", lambda: run(fp32, 8, order=by_length)),
        *compiled,
        (FLOOR_INT8, "fp32", lambda: run(int8, 1)),
        ("batch 8 sorted, int8 dynamic quantisation", "fp32", lambda: run(int8, 8, order=by_length)),
    ]
    if BF16_NATIVE:
        variants += [("batch 1, bf16 weights", "bf16", lambda: run(bf16, 1)),
                     ("batch 8 sorted, bf16 weights", "bf16", lambda: run(bf16, 8, order=by_length))]
    calls: dict[str, list[list[float]]] = {name: [] for name, _, _ in variants}  # [round][batch]
    for r in range(repeats):
        first = r * len(variants) // repeats
        for name, _, fn in variants[first:] + variants[:first]:
            calls[name].append(fn())
            ms = 1000 * sum(calls[name][-1]) / len(encs)
            print(f"bench: floor round {r + 1} {name:<42} {ms:8.1f} ms/doc", file=sys.stderr)
            measure_roof(rates, 0.2 if cfg.quick else 0.5)
    rows = []
    for name, roof, _ in variants:
        passes = [sum(c) / len(encs) for c in calls[name]]
        # Like the roof (the best of many single products): each batch's best round, summed.
        best_each = sum(min(times) for times in zip(*calls[name], strict=True)) / len(encs)
        rows.append({"setting": name, "seconds_per_doc": min(passes), "passes": passes,
                     "seconds_per_doc_best_each": best_each, "flops_per_doc": per_doc, "roof": roof})
    return rows


def bench_breakdown(cfg: BenchConfig) -> dict[str, list[dict]]:
    """Where batch-1 time goes (inference_mode), part by part, in fp32 and in int8: which parts
    int8 speeds up, and how much of the pass it leaves as it was."""
    from docsprint.eval.floor import VOCAB_RANGE, labelled, time_breakdown
    from docsprint.models.quantize import quantize_int8

    ex, encs = _floor_receipts(cfg)
    out = {}
    for name, model in (("fp32", ex.model.eval()), ("int8", quantize_int8(ex.model))):

        def decode_all(model=model) -> None:
            for enc in encs:
                _forward(model, [enc])

        with torch.inference_mode(), labelled(model.head, "project_vocab", VOCAB_RANGE):
            decode_all()  # warm-up
            out[name] = time_breakdown(decode_all, len(encs))
    for fp32, int8 in zip(out["fp32"], out["int8"], strict=True):
        int8["flops_per_doc"] = fp32["flops_per_doc"]  # the same arithmetic; int8 kernels hide theirs
    return out


def _floor_receipts(cfg: BenchConfig) -> tuple:
    """An Extractor of the SROIE model and the encoded windows of the floor's receipts."""
    from docsprint.data import datasets
    from docsprint.pipeline import Extractor

    ex = Extractor(cfg.model, precision="fp32")
    examples = [e for e in datasets.load("sroie", "test", cfg.dataset_dir("sroie"), cfg.floor_docs) if e.fields]
    return ex, [enc for e in examples for enc, _ in ex.prepare(e.doc, list(e.fields), "parallel")[1]]


def _forward(model, encs, step: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Collate encoded windows (Python, outside any compiled graph), then one parallel forward
    pass and the slots' argmax: ``step``, by default ``value_choices`` (what
    ``decode_parallel`` does before it turns choices into text)."""
    from docsprint.data.encode import collate
    from docsprint.decode.common import value_choices

    return (step or value_choices)(model, collate(encs))


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
        view = explain(Extractor(cfg.model_for(d), precision="fp32"), e.doc, key)
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
    rates = measure_roof({})
    results: dict = {"command": shlex.join(cfg.command) if cfg.command else "", "config": _jsonable(asdict(cfg)),
                     "machine": machine(), "section_seconds": {}}

    def section(name: str, fn: Callable[[], object]) -> None:
        t = time.perf_counter()
        results[name] = fn()
        results["section_seconds"][name] = time.perf_counter() - t

    section("extraction", lambda: bench_extraction(cfg))
    section("keys", lambda: bench_keys(cfg))
    keys_plot(results["keys"], figures / "speedup-vs-keys.png")
    section("peer", lambda: bench_peer(cfg))
    section("floor", lambda: bench_floor(cfg, measure_roof(rates)))
    section("breakdown", lambda: bench_breakdown(cfg))
    section("early_exit", lambda: bench_early_exit(cfg, figures))
    section("pictures", lambda: bench_pictures(cfg, figures))
    section("training", lambda: bench_training(cfg, BF16_NATIVE))
    carry_over(results, _previous(cfg.out / "results.json"))
    # Every floor uses the best roof measured in the whole run (see measure_roof).
    results["matmul_gflops"] = {k: v / 1e9 for k, v in rates.items()}
    results["bf16_native"] = BF16_NATIVE
    against_roof(results["extraction"] + results["floor"], rates)
    results["seconds"] = time.perf_counter() - t0
    from docsprint.eval.bench_report import render
    from docsprint.eval.bench_serve import kept_section

    write_json(results, cfg.out / "results.json")
    report = cfg.out / "BENCHMARKS.md"
    tmp = report.with_name(report.name + ".tmp")
    serve = kept_section(report)  # `docsprint bench serve`'s section, measured on its own
    tmp.write_text(render(results) + ("\n" + serve if serve else ""))
    tmp.replace(report)
    return results


# Sections that need a checkpoint of their own, and the option that names it.
KEPT_SECTIONS = {"peer": "--peer", "early_exit": "--classifier"}


def _previous(path: Path) -> dict | None:
    """The results a run rewrites; None where there are none, or none a run of ours wrote."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return previous if isinstance(previous, dict) and isinstance(previous.get("machine"), dict) else None


def carry_over(results: dict, previous: dict | None) -> None:
    """A section this run had no checkpoint for (the peer without ``--peer``, the early exit
    without ``--classifier``) keeps the numbers of the ``results.json`` it rewrites, marked with
    the date and command of the run that measured them (``results["kept"]``), so that measuring
    the extraction again does not erase what other runs' checkpoints measured."""
    if not previous:
        return
    for name in KEPT_SECTIONS:
        if not results.get(name) and previous.get(name):
            results[name] = previous[name]
            results.setdefault("kept", {})[name] = (previous.get("kept", {}).get(name) or
                                                    {"date": previous["machine"].get("date", "?"),
                                                     "command": previous.get("command", "")})


def _jsonable(d: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

