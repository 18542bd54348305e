"""``docsprint train status OUT``: where a training run stands, read from its files only (it
may be running, killed, or finished): step, examples seen, recent loss, the last dev scores,
rate and ETA; and a picture of the loss and dev curves, ``OUT/progress.png``.

>>> print(format_status(run_status(Path("runs/kie-sroie"))))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import yaml

from docsprint.train.loop import STATE_FILE, read_jsonl_lines, resumable


def run_status(out: Path, window_s: float = 600.0) -> dict:
    """The state of the run in ``out``; the rate is measured over its last ``window_s`` seconds
    of logged steps (a resumed run's gap while it was not running is left out)."""
    if not (out / "train_config.yaml").is_file():
        raise FileNotFoundError(f"{out}: not a training run (no train_config.yaml)")
    config = yaml.safe_load((out / "train_config.yaml").read_text()) or {}
    steps = read_jsonl_lines(out / "log.jsonl")
    dev = read_jsonl_lines(out / "dev.jsonl")
    total = config.get("max_steps")
    last = resumable(out / "last")
    checkpoint_step = None
    if last is not None:
        checkpoint_step = json.loads((last / STATE_FILE).read_text())["step"]
    status: dict = {"out": str(out), "total_steps": total, "step": steps[-1]["step"] if steps else 0,
                    "checkpoint_step": checkpoint_step, "finished": (out / "final").is_dir(),
                    "examples": steps[-1]["examples"] if steps else 0,
                    "recent_loss": float(np.mean([r["loss"] for r in steps[-50:]])) if steps else None,
                    "dev": dev[-1] if dev else None,
                    "best_dev": max(reversed(dev), key=lambda r: r["score"]) if dev else None}  # a tie: the later
    rate = None
    if len(steps) >= 2:
        recent = [r for r in steps if r["time"] >= steps[-1]["time"] - window_s]
        if len(recent) < 2:
            recent = steps[-2:]
        # seconds per step over the window, without the gaps between a kill and its resume
        gaps = np.diff([r["time"] for r in recent])
        typical = float(np.median(gaps))
        busy = float(np.sum(gaps[gaps <= max(10 * typical, 60.0)]))
        if busy > 0:
            rate = (recent[-1]["examples"] - recent[0]["examples"]) / busy
            status["steps_per_second"] = (len(recent) - 1) / busy
    status["examples_per_second"] = rate
    if rate and total and status["step"] < total and not status["finished"]:
        status["eta_seconds"] = (total - status["step"]) / status["steps_per_second"]
    status["last_update"] = steps[-1]["time"] if steps else None
    return status


def format_status(s: dict) -> str:
    lines = [f"run        {s['out']}" + ("  (finished)" if s["finished"] else "")]
    lines.append(f"step       {s['step']} / {s['total_steps'] or '?'}   "
                 f"(checkpoint at {s['checkpoint_step'] if s['checkpoint_step'] is not None else 'none yet'})")
    lines.append(f"examples   {s['examples']}")
    if s["recent_loss"] is not None:
        lines.append(f"loss       {s['recent_loss']:.3f} (mean of the last 50 steps)")
    if s["examples_per_second"]:
        lines.append(f"rate       {s['examples_per_second']:.2f} examples/s")
    if s.get("eta_seconds") is not None:
        lines.append(f"ETA        {s['eta_seconds'] / 60:.1f} min of training")
    if s["last_update"]:
        lines.append(f"updated    {(time.time() - s['last_update']) / 60:.1f} min ago")
    if s["dev"]:
        d, b = s["dev"], s["best_dev"]
        lines.append(f"dev        {d['score']:.2f} at step {d['step']}  {d.get('anls', '')}")
        lines.append(f"best dev   {b['score']:.2f} at step {b['step']} (out/best)")
    return "\n".join(lines)


def plot_progress(out: Path, path: Path | None = None) -> Path:
    """Loss per step (and its running mean) with the dev score on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = read_jsonl_lines(out / "log.jsonl")
    dev = read_jsonl_lines(out / "dev.jsonl")
    path = path or out / "progress.png"
    fig, ax = plt.subplots(figsize=(7, 4))
    if steps:
        x = [r["step"] for r in steps]
        y = [r["loss"] for r in steps]
        ax.plot(x, y, color="0.75", lw=0.8, label="loss")
        k = max(1, min(50, len(y) // 10))
        ax.plot(x[k - 1:], np.convolve(y, np.ones(k) / k, mode="valid"), color="C0", label=f"loss, mean of {k}")
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    if dev:
        ax2 = ax.twinx()
        ax2.plot([r["step"] for r in dev], [r["score"] for r in dev], "o-", color="C3", label="dev score")
        ax2.set_ylabel("dev score (mean ANLS)")
        ax2.legend(loc="upper right")
    ax.legend(loc="upper left")
    ax.set_title(out.name)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
