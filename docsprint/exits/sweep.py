"""Run once, keep every decision point, sweep policies offline.

`collect` runs each page once at full depth (batch 1) and keeps every decision point's logits
and the wall-clock time at which it was available. Policies and thresholds are then applied
to those with `docsprint.exits.policies.simulate`: the accuracy is exact, the latency is the
measured time of the decision point each page leaves at.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from docsprint.exits.calibrate import ece, fit_temperature
from docsprint.exits.policies import (
    Budget,
    GlobalThreshold,
    Patience,
    PerExit,
    Policy,
    heuristic_thresholds,
    simulate,
)
from docsprint.models.classifier import ExitClassifier, PageBatch, confidence, exit_depth

GLOBAL_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)
DROPS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # % of answers per-exit thresholds may change on val


@dataclass
class Decisions:
    """Every decision point of N pages: own logits (N, C_j) each, the shared classifier's
    prediction at gates, labels (N,), times (D, N) in ms since the page started."""

    logits: list[Tensor]
    shared_pred: list[Tensor | None]
    labels: Tensor
    times_ms: Tensor
    depths: list[int]

    def conf_pred(self, temperatures: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(D, N) confidence and prediction of every decision point."""
        confs, preds = [], []
        for j, (lg, sh) in enumerate(zip(self.logits, self.shared_pred, strict=True)):
            c, y = confidence(lg, float(temperatures[j]) if temperatures is not None else 1.0, sh)
            confs.append(c)
            preds.append(y)
        return torch.stack(confs), torch.stack(preds)

    def targets(self, j: int) -> Tensor:
        """What decision point j's logits are trained and calibrated against."""
        sh = self.shared_pred[j]
        return self.labels if sh is None else (sh == self.labels).long()


@torch.inference_mode()
def collect(model: ExitClassifier, batches: Iterable[PageBatch]) -> Decisions:
    """Full passes over ``batches`` (use batch size 1 for per-page times)."""
    cfg = model.cfg
    D = model.num_decisions
    logits: list[list[Tensor]] = [[] for _ in range(D)]
    shared: list[list[Tensor]] = [[] for _ in range(D)]
    labels, times = [], []
    for batch in batches:
        t0 = time.perf_counter()
        s = model.start(batch)
        stamps = []
        for j, name in enumerate(cfg.exits):
            while s.depth < exit_depth(name):
                s = model.layer(s)
            own, sh = model.exit_logits(j, model.exit_repr(name, s))
            logits[j].append(own.float())
            if sh is not None:
                shared[j].append(sh.argmax(-1))
            stamps.append(time.perf_counter() - t0)
        while s.depth < cfg.encoder.num_layers:
            s = model.layer(s)
        logits[-1].append(model.final_logits(s).float())
        stamps.append(time.perf_counter() - t0)
        B = own.shape[0] if cfg.exits else logits[-1][-1].shape[0]
        times.append(torch.tensor(stamps)[:, None].expand(-1, B) * 1000)
        assert batch.labels is not None
        labels.append(batch.labels)
    return Decisions(
        [torch.cat(x) for x in logits],
        [torch.cat(x) if x else None for x in shared],
        torch.cat(labels),
        torch.cat(times, 1),
        cfg.depths,
    )


def fit_temperatures(val: Decisions) -> Tensor:
    return torch.tensor([fit_temperature(val.logits[j], val.targets(j)) for j in range(len(val.logits))])


def exit_metrics(d: Decisions, temperatures: Tensor | None) -> dict[str, list[float]]:
    """Per decision point: accuracy of its answer, and ECE of its confidence."""
    conf, pred = d.conf_pred(temperatures)
    acc, eces = [], []
    for j in range(conf.shape[0]):
        correct = pred[j] == d.labels
        acc.append(float(correct.float().mean()))
        # A gate's confidence is "the shared classifier is right": the same event as `correct`.
        eces.append(ece(conf[j], correct))
    return {"accuracy": acc, "ece": eces}


def lost(pred: Tensor, full_pred: Tensor, labels: Tensor) -> float:
    """Points of accuracy given up: the share of pages the full-depth model gets right and
    the early answer gets wrong (pages where the early answer is luckier are not credited)."""
    return float(((pred != labels) & (full_pred == labels)).float().mean()) * 100


def changed(pred: Tensor, full_pred: Tensor) -> float:
    """Share of pages (%) whose early answer differs from the full-depth answer. Accuracy can
    only be lost on those, so it bounds `lost`, and it is the criterion thresholds are chosen
    by: it counts every page that moved, not only the ones a small val split happens to
    label against the early answer."""
    return float((pred != full_pred).float().mean()) * 100


def per_exit_thresholds(conf: Tensor, pred: Tensor, labels: Tensor, depths: list[int], max_drop: float) -> list[float]:
    """Greedy, earliest exit first: the lowest threshold of each exit that keeps the share of
    `changed` answers within ``max_drop`` (later exits see who is left)."""
    E = conf.shape[0] - 1
    thresholds = [2.0] * E  # 2.0: never
    for j in range(E):
        candidates = sorted(set(torch.quantile(conf[j], torch.linspace(0, 1, 41)).tolist()))
        for t in candidates:
            trial = thresholds[:j] + [t] + thresholds[j + 1 :]
            out = simulate(PerExit(thresholds=trial), conf, pred, depths)
            if changed(out.pred, pred[-1]) <= max_drop + 1e-9:
                thresholds[j] = t
                break
    return thresholds


def candidate_policies(val: Decisions, temperatures: Tensor | None) -> list[Policy]:
    """Every policy and threshold the sweep tries; thresholds are chosen on ``val``."""
    conf, pred = val.conf_pred(temperatures)
    D = conf.shape[0]
    out: list[Policy] = [Policy()]
    out += [GlobalThreshold(threshold=t) for t in GLOBAL_GRID]
    out += [PerExit(thresholds=per_exit_thresholds(conf, pred, val.labels, val.depths, d)) for d in DROPS]
    m = exit_metrics(val, temperatures)
    out.append(PerExit(thresholds=heuristic_thresholds(m["accuracy"][:-1], m["ece"][:-1]), name="heuristic"))
    out += [Patience(patience=k) for k in range(1, D)]
    out += [Budget(max_depth=dep) for dep in sorted(set(val.depths[:-1]))]
    return out


def proxy_latency(exit_index: Tensor, n_decisions: int) -> float:
    """The paper's analytic proxy: sum_i share leaving at i x (i + 1) / n_decisions."""
    return float(((exit_index.float() + 1) / n_decisions).mean())


def evaluate_policy(policy: Policy, d: Decisions, temperatures: Tensor | None) -> dict:
    conf, pred = d.conf_pred(temperatures)
    out = simulate(policy, conf, pred, d.depths, d.times_ms)
    took = d.times_ms.gather(0, out.exit_index[None])[0]
    return {
        "accuracy": float((out.pred == d.labels).float().mean()) * 100,
        "lost": lost(out.pred, pred[-1], d.labels),
        "changed": changed(out.pred, pred[-1]),
        "ms_per_doc": float(took.mean()),
        "proxy_latency": proxy_latency(out.exit_index, conf.shape[0]),
        "exit_histogram": torch.bincount(out.exit_index, minlength=conf.shape[0]).tolist(),
    }


def sweep(val: Decisions, temperatures: Tensor, test: Decisions | None = None) -> list[dict]:
    """Every candidate policy, uncalibrated and calibrated: val (and test) points."""
    rows = []
    for calibrated in (False, True):
        temps = temperatures if calibrated else None
        for policy in candidate_policies(val, temps):
            row = {"policy": policy.describe(), "calibrated": calibrated, "val": evaluate_policy(policy, val, temps)}
            if test is not None:
                row["test"] = evaluate_policy(policy, test, temps)
            rows.append(row)
    return rows


RECOMMENDABLE = ("global", "patience")


def choose_policies(rows: list[dict], max_drop: float = 0.5) -> dict:
    """Per policy family, the fastest setting on val that changes at most ``max_drop`` % of
    the full model's answers (`changed`, which bounds the points lost), else the one changing
    fewest; and the fastest of the one-parameter families (``RECOMMENDABLE``) as
    ``recommended``. Per-exit thresholds fit a small val split too well to be trusted on new
    pages (see the README), and anytime budgets are a caller's choice."""
    out: dict[str, dict] = {}
    within: dict[str, dict] = {}
    for name in ("global", "per-exit", "heuristic", "patience"):
        family = [r for r in rows if r["policy"]["name"] == name]
        if not family:
            continue
        ok = [r for r in family if r["val"]["changed"] <= max_drop + 1e-9]
        best = (min(ok, key=lambda r: (r["val"]["ms_per_doc"], r["val"]["changed"])) if ok
                else min(family, key=lambda r: r["val"]["changed"]))
        out[name] = {**best["policy"], "calibrated": best["calibrated"]}
        if ok and name in RECOMMENDABLE:
            within[name] = best
    if within:
        top = min(within.values(), key=lambda r: (r["val"]["ms_per_doc"], r["val"]["changed"]))
        out["recommended"] = {**top["policy"], "calibrated": top["calibrated"]}
    else:
        out["recommended"] = {"name": "full", "calibrated": True}
    return out


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (latency, accuracy) points no other point beats on both."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -1.0
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front
