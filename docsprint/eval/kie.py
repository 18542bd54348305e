"""``docsprint eval kie``: score a checkpoint on a dataset split in one decoding mode, or both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from docsprint.data import datasets
from docsprint.data.encode import value_ids
from docsprint.data.kleister import as_task, pair_counts, task_pairs
from docsprint.errors import OutputError
from docsprint.eval.confidence import confidence_report
from docsprint.eval.metrics import anls, f1_from_counts, match_counts
from docsprint.pipeline import MODES, Extraction, Extractor


def listed(dataset: str, split: str, data_dir: str | Path | None, ids: set[str],
           limit: int | None = None) -> list[datasets.Example]:
    """The documents of a split that ``ids`` names (a training run's ``dev_ids.txt``), in the
    split's order, the first ``limit`` of them."""
    return [e for e in datasets.load(dataset, split, data_dir) if e.id in ids][:limit]


def evaluate_kie(
    dataset: str,
    split: str = "test",
    mode: str = "parallel",
    model: str | Path | None = None,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    extractor: Extractor | None = None,
    warmup: int = 2,
    ocr: str | None = None,
    repeat: int = 1,
    ids: set[str] | None = None,
) -> dict:
    """ANLS (mean over every document-key pair), field F1, per-key ANLS and model time; with
    ``ids``, of those documents of the split only (a training run's ``dev_ids.txt``, say).

    Time is model time only (tokenised dataset OCR in, answers out), batch size 1, after
    ``warmup`` documents that are decoded once untimed; with ``repeat`` > 1 each document is
    decoded that many times and its fastest time kept (see `decode_examples`). ``mode``
    "both": the parallel result with the autoregressive one under "autoregressive" and the
    speedup, the two modes timed document by document.
    """
    if ids is None:
        examples = datasets.load(dataset, split, data_dir, limit)
    else:
        examples = listed(dataset, split, data_dir, ids, limit)
        if not examples:
            raise datasets.DatasetError(f"none of the {len(ids)} listed ids is a document of {dataset} {split}")
    if ocr:  # end to end: the page images re-read by our own OCR, not the dataset's words
        from docsprint.eval.folder import reocr

        examples = reocr(examples, dataset, split, ocr)
    result = score_examples(dataset, examples, mode, extractor or Extractor(model), warmup, repeat)
    extra = {"split": split, "model": str(model or "default"), "ocr": ocr or "dataset",
             **({"ids": len(ids)} if ids is not None else {})}
    if mode == "both":
        result["autoregressive"].update(extra)
    return {**result, **extra}


def decode_examples(dataset: str, examples: list[datasets.Example], modes: list[str], ex: Extractor,
                    warmup: int = 2, repeat: int = 1) -> tuple[dict[str, list[Extraction | None]], dict[str, int]]:
    """Every document decoded in every mode (None for a document that asks nothing), and the
    keys each mode asked again with more slots.

    Each document is decoded ``repeat`` times per mode and its fastest model time kept; the
    answers are the same each time (decoding is deterministic), only the clock differs. On a
    shared machine a decode is slowed now and then by other work, and more when it takes
    longer: a speedup of two passes timed once each moved between 3.2x and 6.7x on identical
    runs here. With two modes the document's decodes take turns (parallel, autoregressive,
    parallel, ...), so both meet the machine in the same state; a speedup measured mode after
    mode moved with the machine's state between the two halves of the run.
    """
    for e in examples[:warmup]:
        for mode in modes:
            ex.extract(e.doc, list(e.fields) or ["total"], mode, datasets.list_keys(dataset, e))
    outs: dict[str, list[Extraction | None]] = {m: [] for m in modes}
    reasked = dict.fromkeys(modes, 0)
    for e in tqdm(examples, desc=f"eval {dataset} {'+'.join(modes)}", leave=False, mininterval=5):
        keys = list(e.fields)
        if not keys:
            for mode in modes:
                outs[mode].append(None)
            continue
        for r in range(repeat):
            for mode in modes:
                before = ex.reasked
                out = ex.extract(e.doc, keys, mode, datasets.list_keys(dataset, e))
                if r == 0:
                    outs[mode].append(out)
                    reasked[mode] += ex.reasked - before
                else:  # a repeat asks the same keys again: count them once
                    kept = outs[mode][-1]
                    assert kept is not None
                    kept.model_seconds = min(kept.model_seconds, out.model_seconds)
                    ex.reasked = before
    return outs, reasked


def score_examples(dataset: str, examples: list[datasets.Example], mode: str, ex: Extractor,
                   warmup: int = 2, repeat: int = 1) -> dict:
    """`evaluate_kie` on documents already loaded (a training run's dev sample, say)."""
    dataset = datasets.base_dataset(dataset)  # a second view (sroie@rapidocr) is scored as its dataset
    modes = list(MODES) if mode == "both" else [mode]
    outs, reasked = decode_examples(dataset, examples, modes, ex, warmup, repeat)
    results = [score_outputs(dataset, examples, m, outs[m], reasked[m], ex, repeat) for m in modes]
    return both_modes(*results) if mode == "both" else results[0]


def both_modes(par: dict, ar: dict) -> dict:
    """The parallel result with the autoregressive one under "autoregressive" and the speedup
    (autoregressive over parallel model time)."""
    return {**par, "mode": "both", "autoregressive": ar,
            "speedup": ar["seconds_per_doc"] / par["seconds_per_doc"] if par["seconds_per_doc"] else 0.0}


def score_outputs(dataset: str, examples: list[datasets.Example], mode: str, outs: list[Extraction | None],
                  reasked: int, ex: Extractor, repeat: int = 1) -> dict:
    """The scores of one mode's answers (``outs``, one per example)."""
    scores: dict[str, list[float]] = {}
    all_scores: list[float] = []
    tp = n_pred = n_gold = 0
    key_counts: dict[str, list[int]] = {}
    seconds = []
    rows = []
    input_tokens = slot_tokens = truncated = n_values = cut = 0
    records: list[tuple[float, bool]] = []  # (confidence, right) of every field
    cfg = ex.model.cfg
    for e, out in zip(examples, outs, strict=True):
        if out is None:
            continue
        keys = list(e.fields)
        seconds.append(out.model_seconds)
        input_tokens, slot_tokens = input_tokens + out.input_tokens, slot_tokens + out.slot_tokens
        row: dict[str, Any] = {"id": e.id, "fields": {}}
        for k in keys:
            pred, gold = out.fields[k].value, e.fields[k]
            if dataset == "kleister-nda":  # the page's "April 18, 2001" is the task's 2001-04-18
                pred = as_task(k, pred)
            s = anls(pred, gold)
            scores.setdefault(k if dataset != "funsd" else "answer", []).append(s)
            all_scores.append(s)
            if dataset != "kleister-nda":
                a, b, c = match_counts(pred, gold, ignore_spaces=dataset == "wildreceipt")
                tp, n_pred, n_gold = tp + a, n_pred + b, n_gold + c
                key_counts.setdefault(k, [0, 0, 0])
                key_counts[k] = [x + y for x, y in zip(key_counts[k], (a, b, c), strict=True)]
            ok = field_right(dataset, pred, gold)
            conf = out.fields[k].confidence
            records.append((conf, ok))
            row["fields"][k] = {"pred": pred, "gold": gold, "anls": round(s, 4), "right": ok,
                                "confidence": round(conf, 4), "complete": out.fields[k].complete}
            cut += not out.fields[k].complete
            if gold is not None:  # longer than its first budget: it needs a second pass
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
        "precision": ex.precisions[mode],
        "compiled": ex.compiled and mode == "parallel",
        "n_docs": len(rows),
        "anls": 100 * float(np.mean(all_scores)) if all_scores else 0.0,
        "f1": 100 * f1_from_counts(tp, n_pred, n_gold),
        "f1_definition": F1_DEFINITIONS.get(dataset, F1_DEFINITIONS["default"]),
        "precision_recall": [100 * tp / max(n_pred, 1), 100 * tp / max(n_gold, 1)],
        "per_key": {k: 100 * float(np.mean(v)) for k, v in scores.items()},
        "per_key_f1": {k: 100 * f1_from_counts(*c) for k, c in key_counts.items()} if dataset != "funsd" else {},
        "seconds_per_doc": mean_s,
        "timing_repeats": repeat,
        "docs_per_second": 1.0 / mean_s if mean_s else 0.0,
        "input_tokens_per_doc": input_tokens / max(len(rows), 1),
        "slot_tokens_per_doc": slot_tokens / max(len(rows), 1),
        "mask_overhead": slot_tokens / input_tokens if input_tokens else 0.0,
        "gold_longer_than_budget": truncated / max(n_values, 1),
        "truncated_values": cut,
        "reasked_keys": reasked,
        "confidence": {**confidence_report(records), "calibrated": bool(ex.calibrate and cfg.calibration)},
        "predictions": rows,
    }


def field_right(dataset: str, pred: Any, gold: Any) -> bool:
    """Is a field's answer exactly right (every item, after normalisation; null for null)?"""
    tp, n_pred, n_gold = match_counts(pred, gold, ignore_spaces=dataset == "wildreceipt")
    return tp == n_pred == n_gold


def calibrate_checkpoint(model: str | Path, dev_ids: str | Path, names: list[str],
                         data_dirs: dict[str, str] | None = None, limit: int | None = None) -> dict:
    """Fit the field-confidence calibration on a training run's dev documents (ids listed in
    its ``dev_ids.txt``, from each dataset's train split) and write it into the checkpoint's
    ``config.json``. Returns the fit, with ECE before and after on those documents."""
    from docsprint.eval import confidence

    wanted = set(Path(dev_ids).read_text().split())
    ex = Extractor(model, calibrate=False, precision="fp32")  # the same fit on any machine
    raw: list[tuple[float, bool, bool, int]] = []
    sources: list[str] = []
    for name in names:
        examples = listed(name, "train", (data_dirs or {}).get(name), wanted, limit)
        result = score_examples(name, examples, "parallel", ex, warmup=0)
        fields = [f for r in result["predictions"] for f in r["fields"].values()]
        raw += [(f["confidence"], f["pred"] is not None, f["right"], confidence.words_in(f["pred"])) for f in fields]
        sources += [name] * len(fields)
    if not raw:
        raise ValueError(f"no dev documents of {names} found in {dev_ids}")
    table = confidence.fit(raw, sources)  # each dataset weighs the same
    after = [(confidence.calibrated(c, a, table, w), ok) for c, a, ok, w in raw]
    cfg_path = Path(model) / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["calibration"] = table
    tmp = cfg_path.with_name("config.json.tmp")
    tmp.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    tmp.replace(cfg_path)
    return {"calibration": table, "fields": len(raw), "ece_before": confidence.ece([c for c, *_ in raw], [o for _, _, o, _ in raw]),
            "ece_after": confidence.ece([c for c, _ in after], [o for _, o in after])}


F1_DEFINITIONS = {
    "default": "micro F1 over (document, key, item): exact match after lower-casing and collapsing spaces",
    "wildreceipt": ("entity-level micro F1 over the 12 value classes: each predicted item must equal a gold "
                    "entity of the same class exactly once spaces are removed (the published texts have "
                    "none) and case is folded; a class's boxes are one value, written once each (a total "
                    "printed twice is \"$9.93\"); line items (item, item quantity, item price) are matched as "
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


def check_output_path(path: str | Path) -> Path:
    """``path`` as a Path, or an `OutputError` if no file can be written there: a directory,
    or a path under a file. Nothing is created."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory (give a file name for the JSON)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{path}: {parent} is a file, not a folder")
            break
    return path


def write_json(result: dict | list, path: str | Path) -> None:
    """Write atomically: a reader never sees half a file, and a path that cannot be a file (a
    directory, or under a file) is an `OutputError` before anything is written."""
    path = check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
