"""Exit policies: who leaves at each decision point, from confidences and predictions only.

A policy sees, at decision point j (an exit, or the final classifier), the (N,) confidence and
prediction of the rows still running, and a `Track` of what those rows saw before; it returns
an (N,) bool: who exits here. The final classifier always answers. Policies are pure and
vectorised, so the same code decides inside the encoder loop (`docsprint.exits.anytime`),
where exited rows leave the batch, and offline over logits kept from one full pass
(`simulate`), where thresholds are swept.

    >>> policy = make_policy({"name": "global", "threshold": 0.9})
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Track:
    """Per row: the most confident answer so far, and how many decision points in a row
    predicted the current class."""

    best_conf: Tensor
    best_pred: Tensor
    best_j: Tensor
    last_pred: Tensor
    streak: Tensor

    @classmethod
    def new(cls, n: int, device: torch.device | str = "cpu") -> Track:
        minus = torch.full((n,), -1, dtype=torch.long, device=device)
        return cls(torch.full((n,), -1.0, device=device), minus.clone(), minus.clone(), minus.clone(),
                   torch.zeros(n, dtype=torch.long, device=device))

    def update(self, j: int, conf: Tensor, pred: Tensor) -> None:
        better = conf > self.best_conf
        self.best_conf = torch.where(better, conf, self.best_conf)
        self.best_pred = torch.where(better, pred, self.best_pred)
        self.best_j = torch.where(better, torch.full_like(self.best_j, j), self.best_j)
        self.streak = torch.where(pred == self.last_pred, self.streak + 1, torch.ones_like(self.streak))
        self.last_pred = pred

    def rows(self, keep: Tensor) -> Track:
        return Track(self.best_conf[keep], self.best_pred[keep], self.best_j[keep], self.last_pred[keep], self.streak[keep])


@dataclass
class Policy:
    """Base: never leaves early. ``max_depth`` / ``deadline_ms`` make any policy *anytime*:
    blocks past the depth, or past the deadline, are not run and the most confident answer
    reached so far is given."""

    max_depth: int | None = None
    deadline_ms: float | None = None

    def exits(self, j: int, conf: Tensor, pred: Tensor, track: Track) -> Tensor:
        return torch.zeros_like(conf, dtype=torch.bool)

    def describe(self) -> dict:
        out: dict = {"name": "full"}
        if self.max_depth is not None:
            out["max_depth"] = self.max_depth
        if self.deadline_ms is not None:
            out["deadline_ms"] = self.deadline_ms
        return out


@dataclass
class GlobalThreshold(Policy):
    """The first decision point whose confidence reaches ``threshold``."""

    threshold: float = 0.9

    def exits(self, j: int, conf: Tensor, pred: Tensor, track: Track) -> Tensor:
        return conf >= self.threshold

    def describe(self) -> dict:
        return {**super().describe(), "name": "global", "threshold": self.threshold}


@dataclass
class PerExit(Policy):
    """One threshold per exit (``thresholds[j]`` for exit j)."""

    thresholds: list[float] = field(default_factory=list)
    name: str = "per-exit"

    def exits(self, j: int, conf: Tensor, pred: Tensor, track: Track) -> Tensor:
        if j >= len(self.thresholds):
            return torch.zeros_like(conf, dtype=torch.bool)
        return conf >= self.thresholds[j]

    def describe(self) -> dict:
        return {**super().describe(), "name": self.name, "thresholds": [round(t, 6) for t in self.thresholds]}


@dataclass
class Patience(Policy):
    """Leave once ``patience`` decision points in a row predicted the same class (PABEE)."""

    patience: int = 2

    def exits(self, j: int, conf: Tensor, pred: Tensor, track: Track) -> Tensor:
        return track.streak >= self.patience

    def describe(self) -> dict:
        return {**super().describe(), "name": "patience", "patience": self.patience}


@dataclass
class Budget(GlobalThreshold):
    """Anytime: run up to ``max_depth`` blocks or ``deadline_ms``, leave earlier only above
    ``threshold`` (default: never), and answer with the most confident exit reached."""

    threshold: float = 2.0

    def describe(self) -> dict:
        return {**super().describe(), "name": "budget"}


def heuristic_thresholds(accuracy: list[float], ece: list[float], margin: float = 0.05) -> list[float]:
    """The paper's accuracy-calibration heuristic: m_i = 1 - acc_i / ECE_i, min-max scaled
    into [margin, 1 - margin]. An accurate, well-calibrated exit gets a low threshold.

    >>> heuristic_thresholds([0.5, 0.9], [0.2, 0.02])
    [0.95, 0.05]
    """
    m = [1 - a / max(e, 1e-6) for a, e in zip(accuracy, ece, strict=True)]
    lo, hi = min(m), max(m)
    if hi - lo < 1e-12:
        return [0.5] * len(m)
    return [round(margin + (1 - 2 * margin) * (v - lo) / (hi - lo), 6) for v in m]


POLICIES = ("full", "global", "per-exit", "heuristic", "patience", "budget")


def make_policy(spec: dict) -> Policy:
    """A policy from its description (as stored in a checkpoint or given on the command line)."""
    name = spec.get("name", "full")
    common = {"max_depth": spec.get("max_depth"), "deadline_ms": spec.get("deadline_ms")}
    if name == "full":
        return Policy(**common)
    if name == "global":
        return GlobalThreshold(threshold=float(spec.get("threshold", 0.9)), **common)
    if name in ("per-exit", "heuristic"):
        if "thresholds" not in spec:
            raise ValueError(f"policy {name!r} needs thresholds")
        return PerExit(thresholds=[float(t) for t in spec["thresholds"]], name=name, **common)
    if name == "patience":
        return Patience(patience=int(spec.get("patience", 2)), **common)
    if name == "budget":
        if common["max_depth"] is None and common["deadline_ms"] is None:
            raise ValueError("policy 'budget' needs max_depth or deadline_ms")
        return Budget(threshold=float(spec.get("threshold", 2.0)), **common)
    raise ValueError(f"unknown policy {name!r}; known: {POLICIES}")


@dataclass
class Outcome:
    """Per row: the decision point that answered, the class, its confidence."""

    exit_index: Tensor
    pred: Tensor
    conf: Tensor


def simulate(policy: Policy, conf: Tensor, pred: Tensor, depths: list[int], times_ms: Tensor | None = None) -> Outcome:
    """Apply ``policy`` offline to decisions kept from full passes.

    conf, pred: (D, N), decision points in order (exits, then final); depths: blocks run
    before each; times_ms (D, N): when each decision was available (for deadlines).
    Gives exactly what `docsprint.exits.anytime.classify_batch` gives on the same logits.
    """
    D, N = conf.shape
    out = Outcome(torch.full((N,), D - 1), pred[-1].clone(), conf[-1].clone())
    done = torch.zeros(N, dtype=torch.bool)
    track = Track.new(N)
    for j in range(D):
        reached = torch.ones(N, dtype=torch.bool)
        if j and policy.max_depth is not None and depths[j] > policy.max_depth:
            reached[:] = False
        if j and policy.deadline_ms is not None and times_ms is not None:
            reached &= times_ms[j] <= policy.deadline_ms
        cut = ~done & ~reached  # out of budget: the best answer so far
        out.exit_index[cut], out.pred[cut], out.conf[cut] = track.best_j[cut], track.best_pred[cut], track.best_conf[cut]
        done |= cut
        track.update(j, conf[j], pred[j])
        leave = ~done & (policy.exits(j, conf[j], pred[j], track) | (j == D - 1))
        out.exit_index[leave], out.pred[leave], out.conf[leave] = j, pred[j][leave], conf[j][leave]
        done |= leave
    return out


def resolve_policy(stored: dict, name: str | None = None, threshold: float | None = None,
                   patience: int | None = None, max_depth: int | None = None,
                   deadline_ms: float | None = None, calibrated: bool | None = None) -> tuple[Policy, bool]:
    """The policy a user asked for, filled in from a checkpoint's ``policies``: no name ->
    the recommended one; ``per-exit`` / ``heuristic`` -> their thresholds chosen on val;
    ``threshold`` / ``patience`` override; ``max_depth`` / ``deadline_ms`` cap any policy.
    Returns the policy and whether calibrated confidences are used."""
    spec = dict(stored.get(name or "recommended", {"name": name or "full"}))
    spec.setdefault("name", name or "full")
    if threshold is not None:
        if spec["name"] not in ("global", "budget"):
            raise ValueError(f"--threshold applies to the global and budget policies, not {spec['name']!r}")
        spec["threshold"] = threshold
    if patience is not None:
        if spec["name"] != "patience":
            raise ValueError("--patience applies to the patience policy")
        spec["patience"] = patience
    if max_depth is not None:
        spec["max_depth"] = max_depth
    if deadline_ms is not None:
        spec["deadline_ms"] = deadline_ms
    use_calibrated = bool(spec.pop("calibrated", True)) if calibrated is None else calibrated
    return make_policy(spec), use_calibrated
