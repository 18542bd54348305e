"""Markdown tables from ``eval kie --mode both --json`` results, beside the paper's numbers.

``docsprint eval report out/eval/*.json`` prints one row per result file.
"""

from __future__ import annotations

import json
from pathlib import Path

# The score each dataset is reported with (as in the PIP paper; Kleister-NDA: the task's F1).
PRIMARY = {"sroie": "anls", "funsd": "anls", "wildreceipt": "f1", "kleister-nda": "f1", "synth": "anls"}
# PIP paper, Table 2, best row per dataset (Qwen2-VL-7B): autoregressive -> PIP (speedup), 8xA100.
PAPER = {"sroie": "94.1 → 97.0 (10.4×)", "funsd": "77.9 → 79.3 (8.6×)", "wildreceipt": "54.9 → 71.6 (36.3×)"}


def kie_rows(paths: list[str | Path]) -> str:
    """A markdown table: score in both modes, model seconds per document, speedup."""
    head = ("| model | dataset | docs | metric | parallel | autoregressive | s/doc parallel | "
            "s/doc autoregressive | speedup | paper (Qwen2-VL-7B, GPU) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for path in paths:
        r = json.loads(Path(path).read_text())
        metric = PRIMARY.get(r["dataset"], "anls")
        ar = r.get("autoregressive")
        ar_score = f"{ar[metric]:.2f}" if ar else "—"
        ar_s = f"{ar['seconds_per_doc']:.3f}" if ar else "—"
        speedup = f"{r['speedup']:.1f}×" if ar else "—"
        model = Path(r["model"]).parent.name if Path(r["model"]).name == "final" else Path(r["model"]).name
        lines.append(
            f"| {model} | {r['dataset']} | {r['n_docs']} | {metric.upper()} | **{r[metric]:.2f}** | {ar_score} | "
            f"{r['seconds_per_doc']:.3f} | {ar_s} | {speedup} | {PAPER.get(r['dataset'], '—')} |"
        )
    return "\n".join(lines)
