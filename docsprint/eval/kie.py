"""``docsprint eval kie``: score a checkpoint on a dataset split in one decoding mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from docsprint.data import datasets
from docsprint.data.encode import value_ids
from docsprint.data.kleister import pair_counts, task_pairs
from docsprint.eval.metrics import anls, f1_from_counts, match_counts
from docsprint.pipeline import Extractor


def evaluate_kie(
    dataset: str,
    split: str = "test",
    mode: str = "parallel",
    model: str | Path | None = None,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    extractor: Extractor | None = None,
    warmup: int = 2,
) -> dict:
    """ANLS (mean over every document-key pair), field F1, per-key ANLS and model time.

    Time is model time only (tokenised dataset OCR in, answers out), batch size 1, after
    ``warmup`` documents that are decoded once untimed.
    """
    examples = datasets.load(dataset, split, data_dir, limit)
    result = score_examples(dataset, examples, mode, extractor or Extractor(model), warmup)
    return {**result, "split": split, "model": str(model or "default")}


def score_examples(dataset: str, examples: list[datasets.Example], mode: str, ex: Extractor,
                   warmup: int = 2) -> dict:
    """`evaluate_kie` on documents already loaded (a training run's dev sample, say)."""
    for e in examples[:warmup]:
        ex.extract(e.doc, list(e.fields) or ["total"], mode, datasets.list_keys(dataset, e))
    scores: dict[str, list[float]] = {}
    all_scores: list[float] = []
    tp = n_pred = n_gold = 0
    key_counts: dict[str, list[int]] = {}
    seconds = []
    rows = []
    input_tokens = slot_tokens = truncated = n_values = 0
    cfg = ex.model.cfg
    for e in tqdm(examples, desc=f"eval {dataset} {mode}", leave=False, mininterval=5):
        keys = list(e.fields)
        if not keys:
            continue
        out = ex.extract(e.doc, keys, mode, datasets.list_keys(dataset, e))
        seconds.append(out.model_seconds)
        input_tokens, slot_tokens = input_tokens + out.input_tokens, slot_tokens + out.slot_tokens
        row: dict[str, Any] = {"id": e.id, "fields": {}}
        for k in keys:
            pred, gold = out.fields[k].value, e.fields[k]
            s = anls(pred, gold)
            scores.setdefault(k if dataset != "funsd" else "answer", []).append(s)
            all_scores.append(s)
            if dataset != "kleister-nda":
                a, b, c = match_counts(pred, gold, ignore_spaces=dataset == "wildreceipt")
                tp, n_pred, n_gold = tp + a, n_pred + b, n_gold + c
                key_counts.setdefault(k, [0, 0, 0])
                key_counts[k] = [x + y for x, y in zip(key_counts[k], (a, b, c), strict=True)]
            row["fields"][k] = {"pred": pred, "gold": gold, "anls": round(s, 4)}
            if gold is not None:  # a value longer than its slots cannot come back whole
                n_values += 1
                truncated += len(value_ids(ex.tok, gold)) >= cfg.slots_for(k)
        if dataset == "kleister-nda":  # the task's F1: KEY=VALUE items, upper-cased
            pred_fields = {k: v.value for k, v in out.fields.items()}
            a, b, c = pair_counts(pred_fields, e.fields)
            tp, n_pred, n_gold = tp + a, n_pred + b, n_gold + c
            row["pairs"] = {"pred": task_pairs(pred_fields), "gold": task_pairs(e.fields)}
        rows.append(row)
    mean_s = float(np.mean(seconds)) if seconds else 0.0
    return {
        "dataset": dataset,
        "mode": mode,
        "precision": ex.precision,
        "compiled": ex.compiled and mode == "parallel",
        "n_docs": len(rows),
        "anls": 100 * float(np.mean(all_scores)) if all_scores else 0.0,
        "f1": 100 * f1_from_counts(tp, n_pred, n_gold),
        "f1_definition": F1_DEFINITIONS.get(dataset, F1_DEFINITIONS["default"]),
        "precision_recall": [100 * tp / max(n_pred, 1), 100 * tp / max(n_gold, 1)],
        "per_key": {k: 100 * float(np.mean(v)) for k, v in scores.items()},
        "per_key_f1": {k: 100 * f1_from_counts(*c) for k, c in key_counts.items()} if dataset != "funsd" else {},
        "seconds_per_doc": mean_s,
        "docs_per_second": 1.0 / mean_s if mean_s else 0.0,
        "input_tokens_per_doc": input_tokens / max(len(rows), 1),
        "slot_tokens_per_doc": slot_tokens / max(len(rows), 1),
        "mask_overhead": slot_tokens / input_tokens if input_tokens else 0.0,
        "truncated_values": truncated / max(n_values, 1),
        "predictions": rows,
    }


F1_DEFINITIONS = {
    "default": "micro F1 over (document, key, item): exact match after lower-casing and collapsing spaces",
    "wildreceipt": ("entity-level micro F1 over the 12 value classes: each predicted item must equal a gold "
                    "entity of the same class exactly once spaces are removed (the published texts have "
                    "none) and case is folded; line items (item, item quantity, item price) are matched as "
                    "multisets per class, each gold entity at most once, in any order"),
    "kleister-nda": "the task's F1: micro F1 over KEY=VALUE items, upper-cased, spaces as underscores",
}


def format_table(results: list[dict]) -> str:
    """A plain-text table of one or more evaluation results."""
    head = (f"{'dataset':<12}{'mode':<16}{'docs':>6}{'ANLS':>8}{'F1':>8}{'s/doc':>10}{'docs/s':>9}"
            f"{'input':>8}{'+slots':>8}")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r['dataset']:<12}{r['mode']:<16}{r['n_docs']:>6}{r['anls']:>8.2f}{r['f1']:>8.2f}"
            f"{r['seconds_per_doc']:>10.4f}{r['docs_per_second']:>9.2f}"
            f"{r['input_tokens_per_doc']:>8.0f}{100 * r['mask_overhead']:>7.1f}%"
        )
        for k, v in r["per_key"].items():
            lines.append(f"    {k:<40}{v:>8.2f}")
    return "\n".join(lines)


def write_json(result: dict | list, path: str | Path) -> None:
    """Write atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)
