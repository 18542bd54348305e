"""``docsprint eval classify``: accuracy, calibration and real wall-clock savings of early exit.

Three measurements, all on the chosen split:

1. **Every decision point** (one full pass per page, batch 1, all exits computed): accuracy
   and ECE per exit before and after temperature scaling.
2. **The policy sweep**: every policy and threshold (chosen on val), calibrated and not, applied
   offline to those logits; latency is the measured time of the decision point each page
   leaves at. These are the Pareto plot's points.
3. **The real thing**: the policy (given, or the checkpoint's recommended one) run with
   `docsprint.exits.anytime.classify_batch`, layers after the exit not computed, against the
   plain full-depth model: model seconds per page at batch 1 (the two interleaved page by
   page, so drift hits both), and pages per second at batch 16.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from docsprint.data.classify import collate_pages, encode_page, load_pages
from docsprint.exits.anytime import classify_batch
from docsprint.exits.calibrate import ece
from docsprint.exits.policies import resolve_policy
from docsprint.exits.sweep import collect, exit_metrics, pareto, proxy_latency, sweep
from docsprint.models.checkpoint import load_classifier


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def evaluate_classify(
    model_path: str | Path,
    data: str,
    split: str = "test",
    data_dir: str | None = None,
    policy: str | None = None,
    limit: int | None = None,
    batch_size: int = 16,
    plot: str | Path | None = None,
    **policy_options,
) -> dict:
    """Evaluate a classifier checkpoint; ``policy`` (a name, with ``threshold``, ``patience``,
    ``max_depth``, ``deadline_ms`` options) defaults to the checkpoint's recommended one.

    >>> r = evaluate_classify("runs/classify-tobacco/final", "tobacco3482", limit=20)
    >>> r["accuracy"], r["seconds_per_doc"], r["full_depth_seconds_per_doc"]
    """
    model, tok = load_classifier(model_path)
    cfg = model.cfg
    chosen, calibrated = resolve_policy(cfg.policies, policy, **policy_options)
    label_id = {c: i for i, c in enumerate(cfg.labels)}
    sets = {}
    for name in ("val", split):
        pages = load_pages(data, name, data_dir, limit)
        unknown = {p.label for p in pages} - set(label_id)
        if unknown:
            raise ValueError(f"{data} {name}: labels {sorted(unknown)} unknown to the model ({cfg.labels})")
        sets[name] = ([encode_page(tok, cfg, p.page) for p in pages], [label_id[p.label] for p in pages])
    items, labels = sets[split]
    if not items:
        raise ValueError(f"{data} {split}: no pages")
    one = [collate_pages([e], [y]) for e, y in zip(items, labels, strict=True)]

    # 1 + 2: every decision point, and the sweep over policies.
    for b in one[:5]:  # warm-up
        classify_batch(model, b, None)
    val_dec = collect(model, (collate_pages([e], [y]) for e, y in zip(*sets["val"], strict=True)))
    dec = collect(model, one)
    temps = model.temperature.clone()
    before, after = exit_metrics(dec, None), exit_metrics(dec, temps)
    rows = sweep(val_dec, temps, dec)

    # 3: real early exit against the plain model, batch 1 interleaved, then batch 16.
    full_s, exit_s, hist = 0.0, 0.0, [0] * model.num_decisions
    correct = full_correct = layers = 0
    confs, rights = [], []
    for b, y in zip(one, labels, strict=True):
        dt, full = _timed(lambda b=b: classify_batch(model, b, None))
        full_s += dt
        dt, res = _timed(lambda b=b: classify_batch(model, b, chosen, calibrated))
        exit_s += dt
        r = res[0]  # type: ignore[index]
        full_correct += full[0].label == y  # type: ignore[index]
        correct += r.label == y
        hist[r.exit_index] += 1
        layers += r.layers_run
        confs.append(r.confidence)
        rights.append(r.label == y)
    n = len(one)

    full_t = exit_t = 0.0  # batches of batch_size in dataset order, the two runs interleaved
    for i in range(0, n, batch_size):
        batch = collate_pages(items[i : i + batch_size], labels[i : i + batch_size])
        dt, _ = _timed(lambda batch=batch: classify_batch(model, batch, None))
        full_t += dt
        dt, _ = _timed(lambda batch=batch: classify_batch(model, batch, chosen, calibrated))
        exit_t += dt
    full_tp, exit_tp = n / full_t, n / exit_t
    names = [*cfg.exits, "final"]
    result = {
        "model": str(model_path),
        "data": data,
        "split": split,
        "n": n,
        "policy": {**chosen.describe(), "calibrated": calibrated},
        "accuracy": 100 * correct / n,
        "full_depth_accuracy": 100 * full_correct / n,
        "seconds_per_doc": exit_s / n,
        "full_depth_seconds_per_doc": full_s / n,
        "time_saved": 1 - exit_s / full_s,
        "docs_per_second": exit_tp,
        "full_depth_docs_per_second": full_tp,
        "throughput_gain": exit_tp / full_tp,
        "batch_size": batch_size,
        "mean_layers_run": layers / n,
        "proxy_latency": proxy_latency(torch.tensor([i for i, c in enumerate(hist) for _ in range(c)]), len(names)),
        "exit_histogram": dict(zip(names, hist, strict=True)),
        "ece": ece(torch.tensor(confs), torch.tensor(rights)),
        "per_exit": {
            "names": names,
            "depth": cfg.depths,
            "accuracy": [100 * a for a in before["accuracy"]],
            "ece_uncalibrated": before["ece"],
            "ece_calibrated": after["ece"],
            "temperature": temps.tolist(),
            "ms_to_reach": dec.times_ms.mean(1).tolist(),
        },
        "sweep": rows,
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__},
    }
    if plot:
        pareto_plot(rows, result, plot)
        result["plot"] = str(plot)
    return result


def pareto_plot(rows: list[dict], result: dict, path: str | Path) -> None:
    """Test accuracy against measured ms per page, every policy and threshold, calibrated
    (filled) and not (hollow); the Pareto frontier as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"full": "black", "global": "tab:blue", "per-exit": "tab:orange", "heuristic": "tab:green",
               "patience": "tab:purple", "budget": "tab:grey"}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    seen = set()
    pts = [(r["test"]["ms_per_doc"], r["test"]["accuracy"]) for r in rows]
    for r, (x, y) in zip(rows, pts, strict=True):
        name, cal = r["policy"]["name"], r["calibrated"]
        label = f"{name} ({'calibrated' if cal else 'uncalibrated'})"
        ax.scatter(x, y, s=28, marker="o" if cal else "s", facecolors=colours[name] if cal else "none",
                   edgecolors=colours[name], label=None if label in seen else label, zorder=3)
        seen.add(label)
    front = pareto(pts)
    ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=1, label="Pareto frontier", zorder=2)
    full = result["full_depth_accuracy"]
    ax.axhline(full - 0.5, color="red", lw=0.8, ls=":", label="full depth - 0.5 points")
    ax.set_xlabel("model time per page, ms (batch 1, measured)")
    ax.set_ylabel(f"{result['data']} {result['split']} accuracy, %")
    lo = min(y for _, y in pts)
    ax.set_ylim(max(lo, full - 15) - 1, max(y for _, y in pts) + 1)
    ax.set_title("Early exit: accuracy against wall-clock latency")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=130)
    plt.close(fig)
    tmp.replace(path)

