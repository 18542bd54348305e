"""ANLS and field-level F1, as used for key information extraction.

>>> anls("9.00", "9.00"), anls("RM9.00", "9.00"), anls(None, "9.00")
(1.0, 0.6666666666666667, 0.0)
"""

from __future__ import annotations

from collections import Counter

Value = str | list[str] | None


def normalize(text: str) -> str:
    """Strip, lower-case and collapse whitespace."""
    return " ".join(text.strip().lower().split())


def _as_text(v: Value) -> str:
    if v is None:
        return ""
    return " ".join(v) if isinstance(v, list) else v


def anls(pred: Value, gold: Value, threshold: float = 0.5) -> float:
    """1 - normalised Levenshtein distance, or 0 when that is below ``threshold``.

    A null prediction counts as the empty string; two empty strings score 1.
    """
    from rapidfuzz.distance import Levenshtein  # here: training and extraction do not need it

    p, g = normalize(_as_text(pred)), normalize(_as_text(gold))
    if not p and not g:
        return 1.0
    nl = Levenshtein.distance(p, g) / max(len(p), len(g))
    score = 1.0 - nl
    return score if score >= threshold else 0.0


def _items(v: Value, ignore_spaces: bool = False) -> list[str]:
    if v is None:
        return []
    items = v if isinstance(v, list) else [v]
    norm = [normalize(i) for i in items]
    return [n.replace(" ", "") if ignore_spaces else n for n in norm if n]


def match_counts(pred: Value, gold: Value, ignore_spaces: bool = False) -> tuple[int, int, int]:
    """(true positives, predicted items, gold items) by exact match after normalisation.

    A list value is a multiset of items; each gold item can be matched once, in any order.
    ``ignore_spaces`` compares with every space removed (WildReceipt writes "KOREANRESTAURANT").

    >>> match_counts(["Tea", "Cake", "Tea"], ["tea", "Tea", "Pie"])
    (2, 3, 3)
    """
    p, g = _items(pred, ignore_spaces), _items(gold, ignore_spaces)
    tp = sum((Counter(p) & Counter(g)).values())
    return tp, len(p), len(g)


def f1_from_counts(tp: int, n_pred: int, n_gold: int) -> float:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0
