"""BENCHMARKS.md from the results of ``docsprint bench`` (``results.json``)."""

from __future__ import annotations

from docsprint.eval.bench import FLOOR_DEFAULT, FLOOR_INT8, KEPT_SECTIONS
from docsprint.eval.bench_train import training_report
from docsprint.eval.report import PAPER, PRIMARY


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _checkpoint(path: str | None) -> str:
    if not path or path == "default":
        return "shipped (`kie-general`)"
    parts = path.rstrip("/").split("/")
    return f"`{parts[-2] if parts[-1] == 'final' and len(parts) > 1 else parts[-1]}`"


def _label(r: dict) -> str:
    return r["precision"]  # fp32, bf16 or int8 (quantised from fp32)


def extraction(rows: list[dict]) -> str:
    fp32 = {(r["dataset"], r["mode"]): r for r in rows if r["precision"] == "fp32"}
    out = []
    for (d, mode), par in fp32.items():
        if mode != "parallel" or (d, "autoregressive") not in fp32:
            continue
        ar = fp32[(d, "autoregressive")]
        m = PRIMARY.get(d, "anls")
        out.append([d, _checkpoint(par["model"]), str(par["n_docs"]), m.upper(), f"**{par[m]:.2f}**", f"{ar[m]:.2f}",
                    f"{par['seconds_per_doc']:.3f}", f"{ar['seconds_per_doc']:.3f}",
                    f"**{ar['seconds_per_doc'] / par['seconds_per_doc']:.1f}×**",
                    f"+{100 * par['mask_overhead']:.0f}%",
                    f"{par['peak_rss_mb']:.0f} / {ar['peak_rss_mb']:.0f}",
                    f"{par['times_floor']:.1f}× / {ar['times_floor']:.1f}×",
                    PAPER.get(d, "—")])
    head = ["dataset", "checkpoint", "docs", "metric", "parallel", "autoregressive", "s/doc parallel", "s/doc autoregressive",
            "speedup", "mask-slot input overhead", "peak RSS MB (par / AR)", "time / floor (par / AR)",
            "paper: Qwen2-VL-7B AR → PIP (8×A100, theirs)"]
    return _table(head, out)


def precisions(rows: list[dict]) -> str:
    sroie = [r for r in rows if r["dataset"] == "sroie"]
    base = {r["mode"]: r for r in sroie if r["precision"] == "fp32"}
    out = []
    for r in sroie:
        b = base.get(r["mode"])
        speed = f"{b['seconds_per_doc'] / r['seconds_per_doc']:.2f}×" if b else "—"
        delta = f"{r['anls'] - b['anls']:+.2f}" if b else "—"
        runs = r.get("seconds_per_doc_runs", [r["seconds_per_doc"]])
        out.append([_label(r), r["mode"], f"{r['anls']:.2f}", delta, f"{r['seconds_per_doc']:.3f}",
                    " / ".join(f"{x:.3f}" for x in runs), speed, f"{r['peak_rss_mb']:.0f}", f"{r['times_floor']:.1f}×"])
    return _table(["weights", "mode", "ANLS", "vs fp32", "s/doc", "s/doc of each run", "faster than fp32",
                   "peak RSS MB", "time / floor"], out)


def keys(rows: list[dict]) -> str:
    out = [[str(r["keys"]), str(r["docs"]), f"{r['parallel']['seconds_per_doc']:.3f}",
            f"{r['autoregressive']['seconds_per_doc']:.3f}", f"**{r['speedup']:.1f}×**",
            f"{r['parallel']['anls']:.1f} / {r['autoregressive']['anls']:.1f}",
            str(r["slot_tokens_per_doc"])] for r in rows]
    return _table(["keys", "docs", "s/doc parallel", "s/doc autoregressive", "speedup", "ANLS par / AR",
                   "mask slots"], out)


def kept_from(kept: dict | None, section: str, ours: str = "") -> str:
    """The note over a section carried over from an earlier run (`bench.carry_over`)."""
    if not kept:
        return ""
    return (f"*Kept from the run of {kept['date']}* (`{kept['command']}`): this run was not given "
            f"`{KEPT_SECTIONS[section]}`{ours}.\n\n")


def peer(results: list[dict], extraction_rows: list[dict], kept: dict | None = None) -> str:
    if not results:
        return ("Not run: no peer checkpoint was given (`--peer DIR ...`; train them with "
                "`docsprint train peer --config configs/peer-sroie.yaml` and `configs/peer-funsd.yaml`).")
    parts = []
    for r in results:
        ours = {x["mode"]: x for x in extraction_rows if x["dataset"] == r["dataset"] and x["precision"] == "fp32"}
        rows = [[f"docsprint, {m} (PIP)" if m == "parallel" else f"docsprint, {m}", f"{x['anls']:.2f}", f"{x['f1']:.2f}",
                 f"{x['seconds_per_doc']:.3f}", f"{x['peak_rss_mb']:.0f}"] for m, x in ours.items()]
        t = r["train"]
        how = ("tags question and answer entities (learnt from FUNSD's entity annotation); each asked "
               "question is found on the page by its text and linked to the nearest tagged answer to its "
               "right or below it" if t.get("link") else "answers each key with its best-scoring span of "
               "BIO-tagged words")
        rows.append([f"LayoutLMv3ForTokenClassification, {'entities + linking' if t.get('link') else 'BIO tags'}",
                     f"{r['anls']:.2f}", f"{r['f1']:.2f}", f"{r['seconds_per_doc']:.3f}", f"{r['peak_rss_mb']:.0f}"])
        parts.append(
            f"**{r['dataset']}** test, {r['n_docs']} documents. The peer has {r['parameters'] / 1e6:.1f} M "
            f"parameters, was trained for {t['steps']} steps of batch {t['batch_size']} on {t['train_pages']} "
            f"{r['dataset']} train pages from the MiniLM weights, and {how}.\n\n"
            + _table(["model", "ANLS", "F1", "s/doc", "peak RSS MB"], rows)
            + "\n\nPer key (ANLS), peer: " + ", ".join(f"{k} {v:.1f}" for k, v in r["per_key"].items())
            + ("" if r.get("linking_with_gold_tags_anls") is None else
               f". The linking rule alone, given the annotated answers instead of the tagged ones, scores "
               f"{r['linking_with_gold_tags_anls']:.1f} ANLS: the rest of the gap is the tagging."))
    return kept_from(kept, "peer", "; the peer's rows are that run's, docsprint's this run's") + "\n\n".join(parts)


def floor(rows: list[dict]) -> str:
    out = [[r["setting"], f"{1000 * r['seconds_per_doc']:.1f}", " / ".join(f"{1000 * x:.0f}" for x in r.get("passes", [])),
            f"{r['achieved_gflops']:.0f}", f"{1000 * r['floor_seconds_per_doc']:.1f} ({r['roof']})",
            f"**{r['times_floor']:.2f}×**",
            f"{r['times_floor_best_each']:.2f}×" if "times_floor_best_each" in r else "—"] for r in rows]
    return _table(["setting", "ms/doc", "ms/doc of each round", "GFLOP/s achieved", "floor ms/doc (roof)",
                   "time / floor", "each batch's best / floor"], out)


def round_by_round(rows: list[dict], setting: str, against: str) -> list[float]:
    """How many times faster ``setting`` ran than ``against``, in each round of the floor's
    passes (both measured within minutes of each other)."""
    by = {r["setting"]: r.get("passes", []) for r in rows}
    return [b / a for a, b in zip(by.get(setting, []), by.get(against, []), strict=False)]


def breakdown(parts: dict[str, list[dict]], roof_gflops: float) -> str:
    fp32, int8 = parts["fp32"], parts.get("int8")
    out = []
    for i, r in enumerate(fp32):
        gflop = r["flops_per_doc"] / 1e9
        q = int8[i] if int8 else None
        out.append([r["part"], f"{r['ms_per_doc']:.1f}", f"{r['share']:.0%}",
                    f"{gflop:.2f}", f"{gflop / r['ms_per_doc'] * 1e3:.0f}" if gflop and r["ms_per_doc"] else "—",
                    f"{gflop / roof_gflops * 1e3:.1f}" if gflop else "0",
                    f"{q['ms_per_doc']:.1f}" if q else "—",
                    f"{r['ms_per_doc'] / q['ms_per_doc']:.2f}×" if q and q["ms_per_doc"] else "—"])
    total = sum(r["ms_per_doc"] for r in fp32)
    flops = sum(r["flops_per_doc"] for r in fp32) / 1e9
    q_total = sum(r["ms_per_doc"] for r in int8) if int8 else 0.0
    out.append(["**all**", f"**{total:.1f}**", "100%", f"{flops:.2f}", "", f"{flops / roof_gflops * 1e3:.1f}",
                f"**{q_total:.1f}**" if int8 else "—", f"{total / q_total:.2f}×" if q_total else "—"])
    table = _table(["part", "fp32 ms/doc", "share", "GFLOP/doc", "fp32 GFLOP/s", "fp32 ms/doc at the roof",
                    "int8 ms/doc", "int8 faster"], out)
    if not int8:
        return table
    linear = ("vocabulary projection", "other linear layers")
    lin32 = sum(r["ms_per_doc"] for r in fp32 if r["part"] in linear)
    lin8 = sum(r["ms_per_doc"] for r in int8 if r["part"] in linear)
    rest = total - lin32
    return (table + f"\n\nint8 makes the linear layers {lin32 / lin8:.1f}× faster ({lin32:.0f} → {lin8:.0f} ms) and "
            f"leaves the rest, {rest:.0f} ms of fp32's {total:.0f}, as it was: hence {total / q_total:.2f}× for the "
            f"whole pass (profiled). Even linear layers that took no time at all would make it at most "
            f"{total / rest:.2f}× faster (Amdahl): the attention, the element-wise work and Python around the "
            "products bound what int8 can gain.")


def int8_rounds(rows: list[dict]) -> str:
    ratios = round_by_round(rows, FLOOR_INT8, FLOOR_DEFAULT)
    if not ratios:
        return ""
    return ("int8 against fp32 (batch 1, `inference_mode`), round by round: "
            + ", ".join(f"{x:.2f}×" for x in ratios) + ".")


def early_exit(r: dict | None, kept: dict | None = None) -> str:
    if r is None:
        return ("Not run: no early-exit checkpoint was given (`--classifier DIR`; train one with "
                "`docsprint train classify --config configs/classify-tobacco.yaml`).")
    pe = r["per_exit"]
    rows = [[n, str(pe["depth"][i]), f"{pe['accuracy'][i]:.2f}", f"{pe['ece_uncalibrated'][i]:.3f}",
             f"{pe['ece_calibrated'][i]:.3f}", f"{pe['ms_to_reach'][i]:.1f}"] for i, n in enumerate(pe["names"])]
    summary = _table(
        ["policy (chosen on val)", "accuracy", "full depth", "ms/page", "full depth ms/page", "time saved",
         "pages/s batch 16", "full depth pages/s", "gain", "paper's proxy"],
        [[", ".join(f"{k} {v}" for k, v in r["policy"].items()), f"{r['accuracy']:.2f}", f"{r['full_depth_accuracy']:.2f}",
          f"{1000 * r['seconds_per_doc']:.1f}", f"{1000 * r['full_depth_seconds_per_doc']:.1f}",
          f"**{100 * r['time_saved']:.1f}%**", f"{r['docs_per_second']:.1f}", f"{r['full_depth_docs_per_second']:.1f}",
          f"**{r['throughput_gain']:.2f}×**", f"{r['proxy_latency']:.2f}"]])
    return (kept_from(kept, "early_exit") + f"Tobacco-3482 test, {r['n']} pages.\n\n{summary}\n\n"
            + _table(["exit", "depth", "accuracy %", "ECE", "ECE calibrated", "ms to reach"], rows)
            + "\n\n![early exit: accuracy against latency](figures/early-exit-pareto.png)")


def pictures(rows: list[dict]) -> str:
    parts = []
    for p in rows:
        top = ", ".join(f"{w} ({v:.3f})" for w, v in p["top_words"][:5])
        parts.append(f"**{p['dataset']}** `{p['document']}`, key `{p['key']}` → `{p['value']}` "
                     f"(gold `{p['gold']}`). The slots' attention: words {100 * p['shares']['words']:.0f}%, "
                     f"image patches {100 * p['shares']['patches']:.0f}%, prompt {100 * p['shares']['prompt']:.0f}%; "
                     f"most-attended words: {top}.\n\n![{p['dataset']}]({p['picture']})")
    return "\n\n".join(parts)


def render(res: dict) -> str:
    m = res["machine"]
    g = res["matmul_gflops"]
    sections = [
        "# docsprint benchmarks",
        f"Generated by `{res['command'] or 'docsprint bench'}` in {res['seconds'] / 60:.1f} minutes; "
        "every number below comes from `results.json` beside this file. Times are model time "
        "(inputs tokenised, OCR excluded), batch size 1 unless stated, after warm-up.",
        _table(["CPU", "cores", "torch threads", "ISA", "torch", "python", "device", "date"],
               [[m["cpu"], str(m["cores"]), str(m["torch_threads"]), " ".join(m["isa"]), m["torch"], m["python"],
                 m["device"], m["date"]]]),
        f"Measured matrix-product throughput (1536² square, the best of every measurement in this "
        f"run: before it and between the floor settings): **{g['fp32']:.0f} GFLOP/s fp32**, "
        + (f"**{g['bf16']:.0f} GFLOP/s bf16**. " if res.get("bf16_native", True) else
           f"and bf16 only {g['bf16']:.1f} GFLOP/s: this CPU does not multiply bf16 natively, so the bf16 "
           "rows are left out and every floor is fp32's. ")
        + "The compute-bound floor of a document is its FLOPs divided "
        "by this rate; taking the best rate makes the floor the lowest, the hardest to come near.",
        "Minutes per section: " + ", ".join(f"{k} {v / 60:.1f}" for k, v in res["section_seconds"].items()) + ".",
        "## 1. Extraction: parallel (PIP) against autoregressive decoding",
        "Both modes from the same checkpoint on the same documents, fp32, batch size 1. Without "
        "`--limit`, every test document except the first 100 of WildReceipt and the first 50 of "
        "Kleister-NDA (time). Peak RSS is the resident memory of the process that ran that row "
        "(model included). The paper's column is quoted from its Table 2 (2–8B-parameter models "
        "on 8×A100): not ours, for scale only.",
        extraction(res["extraction"]),
        "SROIE with int8 dynamic quantisation (`--quantize int8`) and bf16 weights (`--precision bf16`):",
        precisions(res["extraction"]),
        "## 2. Speedup against the number of keys",
        "Synthetic two-column forms with exactly n filled fields, every field asked for "
        "(`docsprint.data.synth.form_with_keys`).",
        keys(res["keys"]),
        "![speedup against keys](figures/speedup-vs-keys.png)",
        "## 3. A peer users would pick instead",
        peer(res.get("peer") or [], res["extraction"], res.get("kept", {}).get("peer")),
        "## 4. Against the physical floor",
        f"Parallel mode on SROIE test receipts: {res['floor'][0]['flops_per_doc'] / 1e9:.2f} GFLOP per "
        "receipt (counted by `torch.utils.flop_counter`: matrix products, attention, the patch "
        "convolution). Each setting's time is one forward pass plus the slots' argmax, the fastest of "
        "three passes over the receipts. The settings take turns: each round makes one pass per "
        "setting, so that a busy minute of the machine does not fall on one setting alone. \"Sorted "
        "by length\" batches receipts of similar length together, so that little of a batch is padding. "
        "The last column measures like the roof, which is the best of many single products: each "
        "forward pass's best of the three rounds, summed (the headline column, the best whole pass, "
        "is the stricter).",
        floor(res["floor"]),
        int8_rounds(res["floor"]),
        "Where the default setting's time goes (batch 1, `inference_mode`; `torch.profiler` over the "
        "same receipts, each operator's own time, FLOPs from its shapes). Profiling adds a little to "
        "every operator call, most visibly to the many small element-wise ones, so the parts sum to "
        "more than the unprofiled time above:",
        breakdown(res["breakdown"], g["fp32"]),
        "## 5. Early exit",
        early_exit(res["early_exit"], res.get("kept", {}).get("early_exit")),
        "## 6. Training speed",
        "Key-value fine-tuning and mask pre-training steps on SROIE training receipts "
        "(`docsprint.eval.bench_train`): from the same initial weights, the same batches, each "
        "speed-up of the loop switched on in turn. A step's time is split into building the batch "
        "(the loop builds the next one in a thread while a step trains: the third column leaves it "
        "out), forward, backward and optimizer; GFLOP are counted by `torch.utils.flop_counter` "
        "(forward and backward) and set against the run's best matrix-product roof.",
        training_report(res["training"], {k: 1e9 * v for k, v in res["matmul_gflops"].items()}),
        "## 7. Where the mask slots look",
        "`docsprint explain FILE --key KEY --out PNG`: left, the attention of the key's slots "
        "(mean over heads of the last two layers) per word in red and per image patch in blue; "
        "right, the pointer head's copy probability per word in green.",
        pictures(res["pictures"]),
    ]
    return "\n\n".join(sections) + "\n"
