"""Fine-tuning on a user's own labelled documents, without a config file.

``docsprint train kie --data DIR [--init default] [--minutes M] [--out RUN]`` takes a labels
folder (`docsprint data import` writes one), holds out a dev split, starts from the shipped
model and trains both decoding modes as `docsprint.train.kie` does. The dev documents are
scored every few epochs by value match (the share of values right, as `eval kie --data` counts
it); the best weights are kept, the run stops early when the score stops rising or when the
time is spent, and ``RUN/model`` is written compact: ``extract``, ``serve`` and ``batch`` take it
with ``--model``. Killed, the same command continues from ``RUN/last``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from docsprint.data.labels import LABELS_FILE, LabelError

MIN_STEPS = 80


@dataclass
class FinetuneConfig:
    data: str
    out: str = ""  # default: runs/finetune-<folder name>
    init: str = "default"  # the shipped model, or a checkpoint folder
    minutes: float = 20.0  # time budget of the training loop
    epochs: int = 50  # at most; early stopping or the time budget may end the run sooner
    dev_fraction: float = 0.2  # held out for model selection (at least 1, at most 50 documents)
    batch_size: int = 8
    lr: float = 1e-4
    head_lr: float = 3e-4
    seed: int = 0
    # A share of the examples from synthetic business pages (made here, no data needed), so the
    # model keeps what it knew: without it, 20 payslips cost 5.6 ANLS on SROIE.
    replay: float = 0.25


def count_documents(folder: Path) -> int:
    path = folder / LABELS_FILE
    if not path.is_file():
        raise LabelError(f"{path}: no labels here (make them with `docsprint data import FORMAT SRC --out {folder}`)")
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def finetune(fc: FinetuneConfig) -> dict:
    """Train, keep the best, export ``out/model``; returns a summary (also ``out/summary.json``)."""
    from docsprint.models.checkpoint import (
        TOKENIZER_FILE,
        checkpoint_folder,
        from_pretrained,
        save_pretrained,
    )
    from docsprint.pipeline import DEFAULT_MODEL
    from docsprint.train.kie import KIETrainConfig, train_kie

    data = Path(fc.data)
    n = count_documents(data)
    if n < 2:
        raise LabelError(f"{data}: {n} labelled document(s); fine-tuning needs at least 2")
    init = checkpoint_folder(DEFAULT_MODEL if fc.init == "default" else fc.init)
    out = Path(fc.out or f"runs/finetune-{data.resolve().name}")
    n_dev = min(50, max(1, round(n * fc.dev_fraction))) if n >= 5 else 0
    n_train = n - n_dev
    batch = min(fc.batch_size, n_train)
    steps_per_epoch = max(1, n_train // batch)
    # a few documents still need some steps: at least MIN_STEPS (the time budget bounds them)
    steps = max(fc.epochs * steps_per_epoch, MIN_STEPS)
    datasets, data_dir, repeat = ["labels"], {"labels": str(data)}, {}
    if fc.replay > 0:
        # the user's documents 3 times per epoch, as many replay pages once: a quarter of the
        # examples (at 0.25), each replay page seen a third as often as a user's
        repeat = {"labels": 3}
        n_replay = max(1, round(3 * n_train * fc.replay / (1 - fc.replay)))
        replay = out / "replay"
        if not (replay / "train.jsonl").is_file() or count_documents(replay) != n_replay:
            from docsprint.data.synth import generate

            generate("business", n_replay, 11, replay, progress=False)
        datasets.append("synth")
        data_dir["synth"] = str(replay)
        steps = round(steps * (1 + fc.replay / (1 - fc.replay)))
        steps_per_epoch = max(1, (3 * n_train + n_replay) // batch)
    tc = KIETrainConfig(
        datasets=datasets, data_dir=data_dir, repeat=repeat, dev_datasets=["labels"], dev_fraction=n_dev / n,
        init=str(init),
        out=str(out), cache_dir=str(out / "cache"), seed=fc.seed, batch_size=batch, lr=fc.lr,
        head_lr=fc.head_lr, warmup=0.1, max_steps=steps, max_minutes=fc.minutes, ar_fraction=0.3,
        absent_prob=0.1, checkpoint_every=max(10, steps_per_epoch), checkpoint_minutes=2.0,
        # a dev evaluation about every two epochs (at most 12 in the run), all dev documents;
        # stopping early on fewer than 5 of them would follow noise
        eval_every=max(min(2 * steps_per_epoch, steps // 6), math.ceil(steps / 12)) if n_dev else 0,
        eval_docs=n_dev, early_stop=5 if n_dev >= 5 else 0, max_doc_tokens=500, stride=400,
    )
    t0 = time.time()
    final = train_kie(tc)
    minutes = (time.time() - t0) / 60
    best = out / "best"
    chosen = best if n_dev and (best / "config.json").is_file() else final
    model, _ = from_pretrained(chosen)
    save_pretrained(model, out / "model", chosen / TOKENIZER_FILE, compact=True)
    dev = [json.loads(line) for line in (out / "dev.jsonl").read_text().splitlines()] if (out / "dev.jsonl").is_file() else []
    summary = {"data": str(data), "documents": n, "train": n_train, "dev": n_dev, "init": str(init),
               "replay": fc.replay,
               "minutes": round(minutes, 2), "steps": max((d["step"] for d in dev), default=0),
               "dev_value_match": [{"step": d["step"], "value_match": d["anls"].get("labels")} for d in dev],
               "best_dev_value_match": max((d["score"] for d in dev), default=None),
               "model": str(out / "model")}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
