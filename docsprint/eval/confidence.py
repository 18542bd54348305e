"""Field confidence you can act on: calibration fitted on dev answers, ECE and risk-coverage.

A field's raw confidence is the geometric mean of its chosen tokens' probabilities, which an
over-confident model puts at 0.9 for answers that are wrong half the time. Being a mean per
token, it also says nothing of length, while a long answer (an address, a list of line items)
has more places to be wrong. Calibration maps it to the probability that the answer is right,
by Platt scaling on the raw confidence's logit and the answer's length in words, fitted apart
for answers and for nulls (the two err differently):

    p(right) = sigmoid(a * logit(raw) + c * log(1 + words) + b)

The parameters live in the checkpoint's ``config.json`` (``calibration``) and `Extractor`
applies them; ``--min-confidence`` then turns an answer below the threshold into null and keeps
the rejected candidate beside it, so a person can look at it.

``docsprint calibrate --model M`` fits them on the dev documents a training run kept out
(``dev_ids.txt``); ``eval kie`` reports ECE and the risk-coverage curve (the share of fields
accepted at each threshold against the accuracy of those accepted).
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from docsprint.exits.calibrate import ece as _ece

GROUPS = ("answer", "null")


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-6, 1 - 1e-6)
    return torch.log(p) - torch.log1p(-p)


def words_in(value: object) -> int:
    """The length of an answer in words (every item of a list; 0 for null)."""
    if value is None:
        return 0
    items = value if isinstance(value, list) else [value]
    return sum(len(str(v).split()) for v in items)


def fit_platt(confidence: list[float], correct: list[bool], words: list[int] | None = None,
              steps: int = 200, weights: list[float] | None = None) -> dict[str, float]:
    """``a, c, b`` minimising the log-loss of sigmoid(a * logit(confidence) + c * log(1 + words)
    + b) on ``correct`` (``c`` only when ``words`` are given), each record weighted by
    ``weights`` (mean 1; equal when not given)."""
    x = torch.stack([_logit(torch.tensor(confidence, dtype=torch.float64)),
                     torch.log1p(torch.tensor(words or [0] * len(confidence), dtype=torch.float64))], 1)
    y = torch.tensor(correct, dtype=torch.float64)
    wt = torch.tensor(weights or [1.0] * len(confidence), dtype=torch.float64)
    wt = wt / wt.mean()
    start = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)  # a, c, b: the identity
    acb = start.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([acb], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        # a small pull towards the identity keeps a tiny dev set from fitting noise
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ acb[:2] + acb[2], y, weight=wt) + \
            1e-3 * ((acb - start) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    a, c, b = (round(float(v), 5) for v in acb.detach())
    return {"a": a, "b": b, "n": len(confidence), **({"c": c} if words is not None else {})}


def fit(records: list[tuple[float, bool, bool, int]], sources: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Calibration from (raw confidence, answered, right, words) records: one Platt fit per
    group with at least 10 records (a group with fewer keeps its raw confidence); the answers'
    fit weighs their length too.

    ``sources`` (each record's dataset): every source weighs the same in each fit, however
    many fields it brings, so a hundred easy synthetic pages do not decide how sure the model
    is on receipts and forms. On held-out halves of the v8 run's dev documents, ECE pooled ->
    balanced: WildReceipt 0.16 -> 0.09, SROIE 0.105 -> 0.11, FUNSD 0.10 -> 0.13, Kleister-NDA
    0.25 -> 0.24 (mean of the four 0.153 -> 0.144)."""
    out = {}
    src = sources or [""] * len(records)
    for group in GROUPS:
        rows = [(r, s) for r, s in zip(records, src, strict=True) if r[1] == (group == "answer")]
        right = [ok for (_, _, ok, _), _ in rows]
        if len(rows) >= 10 and 0 < sum(right) < len(rows):
            words = [w for (*_, w), _ in rows] if group == "answer" else None
            count = Counter(s for _, s in rows)
            out[group] = fit_platt([c for (c, *_), _ in rows], right, words, weights=[1 / count[s] for _, s in rows])
    return out


def calibrated(raw: float, answered: bool, calibration: dict, words: int = 0) -> float:
    """The calibrated confidence of one field (raw when there is no fit for its group); a fit
    without ``c`` (older checkpoints) ignores the length."""
    p = calibration.get("answer" if answered else "null")
    if not p:
        return raw
    r = min(max(raw, 1e-6), 1 - 1e-6)
    z = p["a"] * math.log(r / (1 - r)) + p.get("c", 0.0) * math.log1p(words) + p["b"]
    return 1 / (1 + math.exp(-z)) if z > -700 else 0.0


def ece(confidence: list[float], correct: list[bool], bins: int = 15) -> float:
    """Expected calibration error (equal-width bins), in [0, 1]."""
    return _ece(torch.tensor(confidence), torch.tensor(correct), bins)


def risk_coverage(confidence: list[float], correct: list[bool],
                  thresholds: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)) -> list[dict]:
    """Per threshold: the share of fields whose confidence reaches it (coverage) and the
    accuracy of those (1 - risk). Sending the rest to a person buys that accuracy."""
    rows = []
    n = len(confidence)
    for t in thresholds:
        kept = [ok for c, ok in zip(confidence, correct, strict=True) if c >= t]
        rows.append({"threshold": t, "coverage": 100 * len(kept) / max(n, 1),
                     "accuracy": 100 * sum(kept) / len(kept) if kept else None})
    return rows


def confidence_report(records: list[tuple[float, bool]]) -> dict:
    """ECE and the risk-coverage curve of (confidence, right) pairs."""
    conf = [c for c, _ in records]
    ok = [r for _, r in records]
    return {"ece": ece(conf, ok) if conf else 0.0, "fields": len(conf),
            "accuracy": 100 * sum(ok) / max(len(ok), 1), "risk_coverage": risk_coverage(conf, ok)}
