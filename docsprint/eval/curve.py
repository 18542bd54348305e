"""The fine-tuning learning curve: value match on held-out documents of a new kind against the
number of labelled documents and the CPU minutes spent.

    python -m docsprint.eval.curve --labels runs/curve/labels-50 --test runs/curve/payslip-test \\
        --sizes 5,10,25,50 --minutes 20 --out runs/curve/result.json --plot figures/learning-curve.png

``--labels`` is a labels folder (`docsprint data import`), its documents taken in order: the
first 5, the first 10, ... Each size is one `docsprint train kie --data` run from the shipped
model (``OUT_DIR/ft-N``), then `docsprint eval kie --data TEST` with its model: the test
documents are read from their files (OCR included), exactly as a user's would be. Size 0 is
the shipped model itself. Finished sizes are kept in the JSON and not run again.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from docsprint.data.labels import read_records, write_labels


def subset(labels: Path, n: int, out: Path) -> Path:
    """A labels folder with the first ``n`` documents of ``labels`` (images where they are)."""
    records = read_records(labels)
    if n > len(records):
        raise ValueError(f"{labels}: {len(records)} documents, fewer than {n}")
    out.mkdir(parents=True, exist_ok=True)
    chosen = []
    for rec in records[:n]:
        rec = dict(rec)
        rec["pages"] = [{**p, "image": str((labels / p["image"]).resolve()) if p.get("image") else None}
                        for p in rec["pages"]]
        chosen.append(rec)
    write_labels(out, chosen)
    return out


def _save(path: Path, result: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, path)


def run_curve(labels: Path, test: Path, sizes: list[int], minutes: float, out: Path,
              plot: Path | None = None, replay: float = 0.25) -> dict:
    from docsprint.eval.folder import evaluate_folder
    from docsprint.pipeline import Extractor
    from docsprint.train.finetune import FinetuneConfig, finetune

    result: dict = (json.loads(out.read_text()) if out.is_file()
                    else {"labels": str(labels), "test": str(test), "points": []})
    done = {p["documents"] for p in result["points"]}
    work = out.parent / out.stem
    for n in [0, *sizes]:
        if n in done:
            continue
        model: str | None = None
        summary: dict = {"minutes": 0.0, "best_dev_value_match": None}
        if n:
            summary = finetune(FinetuneConfig(data=str(subset(labels, n, work / f"labels-{n}")),
                                              out=str(work / f"ft-{n}"), minutes=minutes, replay=replay))
            model = summary["model"]
        scored = evaluate_folder(test, Extractor(model))
        result["points"].append({"documents": n, "value_match": round(scored["value_match"], 2),
                                 "train_minutes": summary["minutes"], "dev_value_match": summary["best_dev_value_match"],
                                 "test_fields": scored["n_fields"], "per_key": {k: round(v["value_match"], 1)
                                                                                 for k, v in scored["per_key"].items()}})
        result["points"].sort(key=lambda p: p["documents"])
        _save(out, result)
        print(f"{n} documents: {scored['value_match']:.1f}% of {scored['n_fields']} test fields "
              f"({summary['minutes']:.1f} min of training)", flush=True)
    if plot:
        draw(result, plot)
    return result


def draw(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = result["points"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot([p["documents"] for p in pts], [p["value_match"] for p in pts], "o-", color="C0")
    for p in pts:
        note = "shipped" if p["documents"] == 0 else f"{p['train_minutes']:.0f} min"
        ax.annotate(note, (p["documents"], p["value_match"]), textcoords="offset points", xytext=(4, -12), fontsize=8)
    ax.axhline(80, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("labelled documents of the new kind")
    ax.set_ylabel("held-out fields right by value (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Fine-tuning on a new kind ({Path(result['test']).name})", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--labels", required=True)
    p.add_argument("--test", required=True, help="a folder with truth.jsonl (read from the files)")
    p.add_argument("--sizes", default="5,10,25,50")
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--out", required=True, help="the result JSON (its folder holds the runs)")
    p.add_argument("--plot")
    p.add_argument("--replay", type=float, default=0.25, help="as `train kie --data --replay`")
    a = p.parse_args()
    print(f"command: python -m docsprint.eval.curve --labels {a.labels} --test {a.test} --sizes {a.sizes} "
          f"--minutes {a.minutes:g} --replay {a.replay:g} --out {a.out}" + (f" --plot {a.plot}" if a.plot else ""),
          flush=True)
    run_curve(Path(a.labels), Path(a.test), [int(x) for x in a.sizes.split(",")], a.minutes, Path(a.out),
              Path(a.plot) if a.plot else None, a.replay)


if __name__ == "__main__":
    main()
