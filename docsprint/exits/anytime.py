"""Early-exit inference that really stops computing.

The encoder runs one block at a time. At each decision point the policy says which rows leave;
they are answered and dropped from the batch (and padding columns no remaining row needs are
cut), so later blocks run on fewer, shorter rows. Batch size 1 is simply the case where the
only row leaves.

    >>> results = classify_batch(model, batch, make_policy(model.cfg.policy))
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from docsprint.exits.policies import Policy, Track
from docsprint.models.classifier import ExitClassifier, PageBatch, State


@dataclass
class Result:
    label: int
    confidence: float
    exit_index: int  # decision point (exits, then final = len(exits))
    exit_name: str  # "concat", "3", ... or "final"
    layers_run: int


def _cut_padding(s: State) -> State:
    """Drop trailing columns that are padding in every remaining row."""
    cols = s.valid.any(0).nonzero()
    S = int(cols.max().item()) + 1 if len(cols) else 1
    if s.x.shape[1] == S:
        return s
    mask = None if s.mask is None else s.mask[..., :S, :S]
    if mask is not None and bool(mask.all()):
        mask = None  # what is left is unpadded: the fused attention's fast path
    return State(s.x[:, :S], mask, s.valid[:, :S], s.n_patches, s.text_avg, s.vision_avg, s.depth)


@torch.inference_mode()
def classify_batch(model: ExitClassifier, batch: PageBatch, policy: Policy | None, calibrated: bool = True) -> list[Result]:
    """Classify a batch, leaving at the decision points ``policy`` picks.

    ``policy=None`` runs the plain full-depth model: no exit heads are computed at all (the
    baseline the savings are measured against).
    """
    cfg = model.cfg
    names = [*cfg.exits, "final"]
    L = cfg.encoder.num_layers
    # Decision points after each number of blocks: the exits (unless the plain model is
    # asked for), then the final classifier after block L.
    by_depth = {d: list(js) for d, js in model.exits_at.items()} if policy is not None else {}
    by_depth.setdefault(L, []).append(len(cfg.exits))
    B = batch.tokens.ids.shape[0]
    results: list[Result | None] = [None] * B
    remaining = torch.arange(B)
    track = Track.new(B, batch.tokens.ids.device)
    s = model.start(batch)
    t0, layer_s = time.perf_counter(), 0.0

    def answer(rows: torch.Tensor, conf: torch.Tensor, pred: torch.Tensor, j: torch.Tensor) -> None:
        for r, c, p, jj in zip(rows.tolist(), conf.tolist(), pred.tolist(), j.tolist(), strict=True):
            jj = max(jj, 0)
            results[r] = Result(int(p), float(c), int(jj), names[jj], s.depth)

    for depth in range(L + 1):
        if depth:
            over_depth = policy is not None and policy.max_depth is not None and depth > policy.max_depth
            deadline = policy.deadline_ms if policy is not None else None
            over_time = deadline is not None and (time.perf_counter() - t0 + layer_s) * 1000 > deadline
            if (over_depth or over_time) and track.best_j.min() >= 0:
                answer(remaining, track.best_conf, track.best_pred, track.best_j)
                break
            t_layer = time.perf_counter()
            s = model.layer(s)
            layer_s = time.perf_counter() - t_layer
        for j in by_depth.get(depth, []):
            final = j == len(cfg.exits)
            if final:
                own, shared = model.final_logits(s), None
            else:
                own, shared = model.exit_logits(j, model.exit_repr(cfg.exits[j], s))
            conf, pred = model.decision(j, own, shared, calibrated)
            track.update(j, conf, pred)
            leave = torch.ones_like(conf, dtype=torch.bool) if final else policy.exits(j, conf, pred, track)  # type: ignore[union-attr]
            if leave.any():
                answer(remaining[leave.cpu()], conf[leave], pred[leave], torch.full((int(leave.sum()),), j))
                keep = (~leave).nonzero().squeeze(1)
                remaining = remaining[keep.cpu()]
                s, track = s.rows(keep), track.rows(keep)
                s = _cut_padding(s)
            if not len(remaining):
                break
        if not len(remaining):
            break
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]
