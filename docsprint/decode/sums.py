"""Amounts that add up: on a receipt or an invoice, subtotal + tax (+ tips) = total.

Each key's slots read their own value, so a receipt can come out with its total as the
subtotal too ("14.20", "0.93", "14.20"), or an invoice with the net amount as its tax. When a
prompt asks for all three (one key each: `amount_role`) and the answers do not add up, the one
answer that can be changed to make them add up, to a value among its own slots' best runs
(`common.typed_runs`), is changed: the one whose fitting run ranks best, as sure as the least
sure of the amounts it agrees with. Nothing else moves: a page whose amounts add up, or where
no single change makes them, keeps its answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from docsprint.decode.common import KeyValue
from docsprint.eval.values import TAX_WORDS, TIP_WORDS, amount_value, fold

_NET = {"subtotal", "net", "sub", "before", "excl", "excluding"}
_TAX = {*TAX_WORDS, "taxes", "gst"}
_TIP = set(TIP_WORDS)
_TOTAL = {"total", "grand", "gross"}
_WORDS = _NET | _TAX | _TIP | _TOTAL | {"amount", "sum", "invoice", "incl", "including"}
TOLERANCE = 0.011  # a cent, and a float's rounding


def amount_role(key: str) -> str | None:
    """"net", "tax", "tip" or "total" for a key made of those words ("subtotal", "net total",
    "total tax", "VAT", "tips", "Grand Total:", "total incl. VAT"), else None ("amount due",
    "state tax withheld": other sums)."""
    words = set(fold(key).split())
    if not words or words - _WORDS:
        return None
    if words & _NET:
        return "net"
    if words & _TIP:
        return "tip"
    if words & _TAX and not words & {"incl", "including"}:
        return "tax"
    return "total" if words & _TOTAL else None


def _amount(kv: KeyValue) -> float | None:
    value = amount_value(kv.value) if isinstance(kv.value, str) else None
    return abs(value) if value is not None else None  # credit notes print their sums negative


def balance(answers: list[KeyValue], candidates: Callable[[int], Iterable[KeyValue]]) -> list[KeyValue]:
    """``answers`` (one window's, in key order) with at most one amount changed so that net +
    tax (+ tip) = total, when one key of each role is asked and all three are answered with a
    number. ``candidates(i)``: the fitting answers of key ``i``'s best runs, best first."""
    roles: dict[str, list[int]] = {}
    for i, kv in enumerate(answers):
        if (role := amount_role(kv.key)) is not None:
            roles.setdefault(role, []).append(i)
    if any(len(roles.get(r, [])) != 1 for r in ("net", "tax", "total")) or len(roles.get("tip", [])) > 1:
        return answers
    (n_i,), (t_i,), (g_i,) = roles["net"], roles["tax"], roles["total"]
    net, tax, total = _amount(answers[n_i]), _amount(answers[t_i]), _amount(answers[g_i])
    tips = [_amount(answers[i]) if answers[i].value is not None else 0.0 for i in roles.get("tip", [])]
    tip = tips[0] if tips else 0.0  # no tips asked, or none on the page
    if net is None or tax is None or total is None or tip is None or abs(net + tax + tip - total) <= TOLERANCE:
        return answers
    targets = {n_i: total - tax - tip, t_i: total - net - tip, g_i: net + tax + tip}
    best: tuple[int, int, KeyValue] | None = None  # (rank, key index, answer)
    for i, target in targets.items():
        if target < (-TOLERANCE if i == t_i else TOLERANCE):  # a tax may be 0, a net or a total not
            continue
        for rank, kv in enumerate(candidates(i)):
            if best is not None and rank >= best[0]:
                break
            if (a := _amount(kv)) is not None and abs(a - target) <= TOLERANCE:
                best = (rank, i, kv)
                break
    if best is None:
        return answers
    out = list(answers)
    # as sure as the sum it completes: the least sure of the other amounts (its run's own
    # confidence is that of a run the slots ranked below another)
    others = [answers[i].confidence for i in (n_i, t_i, g_i, *roles.get("tip", [])) if i != best[1]]
    out[best[1]] = replace(best[2], confidence=max(best[2].confidence, min(others)))
    return out
