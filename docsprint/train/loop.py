"""The training loop shared by mask pre-training, key-value fine-tuning and classification.

One process, or many under ``torchrun`` with PyTorch's DistributedDataParallel (gloo on CPU,
NCCL on GPUs)::

    torchrun --nproc_per_node 2 -m docsprint.cli train kie --config configs/kie-general.yaml

Every rank walks the same shuffled order of training items and takes its own slice of each
global batch (``batch_size`` items per rank). The randomness of a step (augmentations, key
order, dropout) is a function of (seed, step, rank) only, so a run resumed from ``out/last``
continues exactly where it stopped. Rank 0 writes the checkpoints; at the end every rank's
weights are compared (``out/ddp_check.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn
from tqdm import tqdm

from docsprint.data.encode import Batch
from docsprint.decode.common import value_logits
from docsprint.models.checkpoint import load_weights, save_pretrained
from docsprint.models.classifier import ExitClassifier
from docsprint.models.model import DocsprintModel
from docsprint.train.losses import value_loss


@dataclass
class TrainConfig:
    """Settings every training run has; each task's config adds its own."""

    init: str = "minilm"  # "minilm", "random", or a checkpoint folder
    model: dict | None = None  # ModelConfig overrides (new models only)
    epochs: int = 10
    batch_size: int = 8  # per process
    lr: float = 1e-4
    head_lr: float = 5e-4  # new parameters (layout, image, pointer, slots) learn faster
    weight_decay: float = 0.01
    warmup: float = 0.06
    checkpoint_every: int = 100  # steps
    out: str = "runs/train"
    seed: int = 0
    bf16: bool = True  # autocast to bfloat16 (CPU with AMX, or GPU)
    max_steps: int | None = None  # stop early (tests, smoke runs)

    @classmethod
    def from_yaml(cls, path: str | Path):  # -> the subclass
        data = yaml.safe_load(Path(path).read_text()) or {}
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown settings {sorted(unknown)}")
        return cls(**data)


class ValueLoss(nn.Module):
    """Key-value training as DDP needs it: one ``forward`` from a batch to the loss."""

    def __init__(self, model: DocsprintModel):
        super().__init__()
        self.model = model

    def forward(self, batch: Batch, step: int) -> torch.Tensor:
        assert batch.targets is not None
        return value_loss(value_logits(self.model, batch), batch.targets, batch.value_valid)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world == 1:
        return Dist(device=torch.device("cuda" if cuda else "cpu"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return Dist(dist.get_rank(), dist.get_world_size(), device)


def param_groups(model: DocsprintModel | ExitClassifier, tc: TrainConfig) -> list[dict]:
    """Pre-trained weights at ``lr``, new ones at ``head_lr``; no decay on norms and biases."""
    pretrained = {"embed.word.weight", "embed.position.weight", "embed.norm.weight", "embed.norm.bias"}
    groups: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        is_old = name in pretrained or name.startswith("blocks.")
        lr = tc.lr if (is_old and tc.init != "random") else tc.head_lr
        wd = 0.0 if (p.ndim == 1 or "norm" in name) else tc.weight_decay
        groups.setdefault((lr, wd), []).append(p)
    return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]


def _seed_of(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("-".join(map(str, parts)).encode()).digest()[:8], "little")


def weights_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class Movable(Protocol):
    def to(self, device: torch.device | str) -> Movable: ...


def warmup_then_linear_decay(opt: torch.optim.Optimizer, warmup: float, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first ``warmup`` share of ``total`` steps, then linear decay to 0."""
    warm = max(1, int(warmup * total))
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, 1 - max(0, s - warm) / max(1, total - warm))
    )


def fit(
    model: DocsprintModel | ExitClassifier,
    tok_file: Path,
    tc: TrainConfig,
    n_items: int,
    make_batch: Callable[[list[int], random.Random], Movable],
    loss_net: nn.Module,
    name: str = "train",
    env: Dist | None = None,
) -> Path:
    """Train ``model`` on items 0..n_items-1 and return the final checkpoint, ``out/final``.

    ``make_batch(indices, rng)`` builds a batch; ``loss_net(batch, step)`` (a module holding
    ``model``, so DDP can wrap it) returns the loss of the step.
    """
    env = env or setup_distributed()
    out = Path(tc.out)
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.yaml").write_text(yaml.safe_dump(asdict(tc), sort_keys=False))
    batch_size = min(tc.batch_size, max(1, n_items // env.world))
    global_batch = batch_size * env.world
    steps_per_epoch = max(1, n_items // global_batch)
    total = tc.max_steps or tc.epochs * steps_per_epoch
    model.to(env.device).train()
    net = loss_net
    if env.world > 1:
        ids = [env.device.index] if env.device.type == "cuda" else None
        # find_unused_parameters: a batch of text-only pages leaves the image patches unused.
        net = nn.parallel.DistributedDataParallel(net, device_ids=ids, find_unused_parameters=True)
    opt = torch.optim.AdamW(param_groups(model, tc), betas=(0.9, 0.98), eps=1e-6)
    sched = warmup_then_linear_decay(opt, tc.warmup, total)
    step = 0
    last = out / "last"
    if (last / "trainer_state.pt").is_file():
        state = torch.load(last / "trainer_state.pt", weights_only=True, map_location="cpu")
        model.load_state_dict(load_weights(last / "model.safetensors"), strict=False)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
        if env.main:
            print(f"resumed from {last} at step {step}")
    autocast = torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=tc.bf16)
    bar = tqdm(total=total, initial=step, desc=name, dynamic_ncols=True, mininterval=5, disable=not env.main)
    t0, losses, order, order_epoch = time.time(), [], [], -1
    seen = hashlib.sha256()  # which items this rank trained on (ranks must differ)
    while step < total:
        epoch, k = divmod(step, steps_per_epoch)
        if epoch != order_epoch:  # the same permutation on every rank
            order = list(range(n_items))
            random.Random(_seed_of(tc.seed, "order", epoch)).shuffle(order)
            order_epoch = epoch
        start = k * global_batch + env.rank * batch_size
        rng = random.Random(_seed_of(tc.seed, step, env.rank))
        torch.manual_seed(_seed_of(tc.seed, "torch", step, env.rank) % 2**63)
        idx = order[start : start + batch_size]
        seen.update(str(idx).encode())
        batch = make_batch(idx, rng).to(env.device)
        with autocast:
            loss = net(batch, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        if env.main and (step % tc.checkpoint_every == 0 or step == total):
            _save_last(model, tok_file, opt, sched, step, last)
    bar.close()
    final = out / "final"
    if env.world > 1:
        digests: list[tuple[str, str] | None] = [None] * env.world
        dist.all_gather_object(digests, (weights_digest(model), seen.hexdigest()[:16]))
        if env.main:
            weights = [d[0] for d in digests if d]
            check = {"world_size": env.world, "weights": weights, "data": [d[1] for d in digests if d],
                     "identical": len(set(weights)) == 1}
            (out / "ddp_check.json").write_text(json.dumps(check, indent=2) + "\n")
            print(f"weights on {env.world} ranks identical: {check['identical']}")
    if env.main:
        save_pretrained(model, final, tok_file)
        print(f"trained {step} steps in {time.time() - t0:.0f}s; checkpoint: {final}")
    if env.world > 1:
        dist.barrier()
    return final


def _save_last(model: DocsprintModel | ExitClassifier, tok_file: Path, opt, sched, step: int, last: Path) -> None:
    """Write the weights and the resumable state together, atomically."""
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step}
    save_pretrained(model, last, tok_file, write_extra=lambda folder: torch.save(state, folder / "trainer_state.pt"))
