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
import math
import os
import random
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist
import yaml
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from docsprint.data.encode import Batch
from docsprint.models.checkpoint import WEIGHTS_FILE, load_weights, save_pretrained
from docsprint.models.classifier import ExitClassifier
from docsprint.models.model import DocsprintModel
from docsprint.train.losses import batch_value_loss


@dataclass
class TrainConfig:
    """Settings every training run has; each task's config adds its own."""

    init: str = "minilm"  # "minilm", "random", or a checkpoint folder
    model: dict | None = None  # ModelConfig overrides (new models; from a checkpoint key_mentions, key_geometry)
    epochs: int = 10
    batch_size: int = 8  # per process
    lr: float = 1e-4
    head_lr: float = 5e-4  # new parameters (layout, image, pointer, slots) learn faster
    # The key-mention vectors start at zero and must grow to the size of an embedding (gate ~1)
    # within one fine-tuning round: Adam moves a weight by about its lr a step, so at head_lr
    # they reached 0.01 in 400 steps. The key geometry's MLP (zero output layer) learns at it too.
    mention_lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    checkpoint_every: int = 100  # steps; and at least every checkpoint_minutes of wall clock
    checkpoint_minutes: float = 10.0
    out: str = "runs/train"
    seed: int = 0
    # bf16 autocast: True, False or "auto" (where this device multiplies bf16 natively: CUDA,
    # or a CPU with AMX / AVX512-BF16; elsewhere bf16 is emulated and ~100x slower than fp32).
    bf16: bool | str = "auto"
    max_steps: int | None = None  # stop early (tests, smoke runs)
    group_by_length: bool = True  # batches of similar length: little compute spent on padding
    prefetch: bool = True  # build the next batch in a thread while this one trains
    # processes building batches ahead (0: the prefetch thread only). A GPU step is far faster
    # than building its batch in Python: one process cannot keep a GPU busy.
    loader_workers: int = 0
    max_minutes: float | None = None  # stop (and save out/final) after this long training (this process)
    fused_optimizer: bool = True  # AdamW's fused kernel (one pass over the parameters)
    eval_every: int = 0  # steps between dev evaluations (0: none); the best is kept in out/best
    eval_docs: int = 50  # documents per dataset in the fixed dev sample
    early_stop: int = 0  # stop after this many evaluations without a better dev score (0: never)
    cache_dir: str = "runs/cache"  # training windows encoded once, kept as memory-mapped arrays
    max_shard_mb: float | None = None  # write out/final and out/best as shards of at most this size

    def __post_init__(self) -> None:
        if self.bf16 not in (True, False, "auto"):
            raise ValueError(f"bf16 must be true, false or auto, not {self.bf16!r}")
        if self.batch_size < 1 or self.checkpoint_every < 1:
            raise ValueError("batch_size and checkpoint_every must be at least 1")

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
        return batch_value_loss(self.model, batch)


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
        if name.startswith(("embed.mentions.", "head.geometry.")):
            lr = tc.mention_lr
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


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``); empty where that file is not there."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16(device: torch.device) -> bool:
    """Does ``device`` multiply bfloat16 matrices in hardware? (CUDA; AMX or AVX512-BF16 CPUs.)"""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})


def use_bf16(setting: bool | str, device: torch.device) -> bool:
    """Resolve the ``bf16`` setting; ``True`` on a device that only emulates bf16 is kept, with
    a warning (it is about a hundred times slower than fp32 there)."""
    native = native_bf16(device)
    if setting == "auto":
        return native
    if setting and not native:
        print(f"warning: bf16 is emulated on this {device.type} (no AMX / AVX512-BF16): "
              "expect fp32 to be far faster; use bf16: auto")
    return bool(setting)


def epoch_order(n_items: int, epoch: int, seed: int, global_batch: int,
                lengths: list[int] | None = None, pool_batches: int = 50) -> list[int]:
    """The items of one epoch in training order, the same on every rank and after a resume.

    Without ``lengths``: a seeded permutation. With them: that permutation is cut into pools of
    ``pool_batches`` global batches, each pool sorted by length and cut into batches, and the
    batches shuffled: each batch holds windows of similar length, so little compute goes to
    padding, while which items meet in a batch stays random. Items of a last partial batch
    come at the end (an epoch uses whole batches only).
    """
    order = list(range(n_items))
    random.Random(_seed_of(seed, "order", epoch)).shuffle(order)
    if lengths is None:
        return order
    batches: list[list[int]] = []
    rest: list[list[int]] = []
    pool = global_batch * pool_batches
    for p in range(0, n_items, pool):
        part = sorted(order[p : p + pool], key=lambda i: -lengths[i])
        for b in range(0, len(part), global_batch):
            (batches if len(part) - b >= global_batch else rest).append(part[b : b + global_batch])
    random.Random(_seed_of(seed, "batches", epoch)).shuffle(batches)
    return [i for b in batches + rest for i in b]


class RunLog:
    """``out/log.jsonl`` (one line per step) and ``out/dev.jsonl`` (one per dev evaluation).

    After a resume from step s, lines of later steps (trained after the checkpoint by the run
    that was killed) are dropped: those steps are trained again.
    """

    def __init__(self, out: Path, resumed_step: int):
        self.steps, self.dev = out / "log.jsonl", out / "dev.jsonl"
        for path in (self.steps, self.dev):
            kept = [r for r in read_jsonl_lines(path) if r["step"] <= resumed_step]
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
            tmp.replace(path)

    def dev_history(self) -> list[dict]:
        return read_jsonl_lines(self.dev)

    @staticmethod
    def append(path: Path, record: dict) -> None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def read_jsonl_lines(path: Path) -> list[dict]:
    """The complete lines of a JSON-lines log (a line cut by a kill is skipped)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def fit(
    model: DocsprintModel | ExitClassifier,
    tok_file: Path,
    tc: TrainConfig,
    n_items: int,
    make_batch: Callable[[list[int], random.Random], Movable],
    loss_net: nn.Module,
    name: str = "train",
    env: Dist | None = None,
    lengths: list[int] | None = None,
    evaluate: Callable[[], dict] | None = None,
) -> Path:
    """Train ``model`` on items 0..n_items-1 and return the final checkpoint, ``out/final``.

    ``make_batch(indices, rng)`` builds a batch; ``loss_net(batch, step)`` (a module holding
    ``model``, so DDP can wrap it) returns the loss of the step. ``lengths`` (tokens per item)
    lets ``group_by_length`` batch similar lengths; ``evaluate()`` (the model already in eval
    mode, no gradients) returns ``{"score": float, ...}`` on the dev sample, every
    ``eval_every`` steps: the best scoring weights are kept in ``out/best``.

    The run can be killed at any moment: ``out/last`` (weights, optimizer, step) is replaced
    atomically every ``checkpoint_every`` steps or ``checkpoint_minutes``, whichever comes
    first, and the same command continues from it. A step's data and dropout depend only on
    (seed, step, rank), so the resumed run ends with the weights an uninterrupted run has.
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
    fused = tc.fused_optimizer and env.device.type in ("cpu", "cuda")
    opt = torch.optim.AdamW(param_groups(model, tc), betas=(0.9, 0.98), eps=1e-6, fused=fused or None)
    sched = warmup_then_linear_decay(opt, tc.warmup, total)
    step, last = 0, out / "last"
    resume = resumable(last)
    if resume is not None:
        model.load_state_dict(load_weights(resume / WEIGHTS_FILE), strict=False)
        step = load_trainer_state(resume, opt, sched)
        if env.main:
            print(f"resumed from {last} at step {step}")
    log = RunLog(out, step) if env.main else None
    history = log.dev_history() if log else []
    best = max((r["score"] for r in history), default=-math.inf)
    stale = _evaluations_since_best(history)
    bf16 = use_bf16(tc.bf16, env.device)
    autocast = torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=bf16)
    if env.main:
        print(f"{name}: {n_items} items, {total} steps of {global_batch}, "
              f"{'bf16 autocast' if bf16 else 'fp32'} on {env.device.type}")
    orders: dict[int, list[int]] = {}

    def batch_for(s: int) -> tuple[list[int], Movable]:
        epoch, k = divmod(s, steps_per_epoch)
        if epoch not in orders:  # the same order on every rank
            orders.clear()
            orders[epoch] = epoch_order(n_items, epoch, tc.seed, global_batch,
                                        lengths if tc.group_by_length else None)
        start = k * global_batch + env.rank * batch_size
        idx = orders[epoch][start : start + batch_size]
        return idx, make_batch(idx, random.Random(_seed_of(tc.seed, s, env.rank)))

    batches = _batches(batch_for, step, total, tc)
    bar = tqdm(total=total, initial=step, desc=name, dynamic_ncols=True, mininterval=5, disable=not env.main)
    t0 = last_save = time.time()
    losses: list[float] = []
    seen = hashlib.sha256()  # which items this rank trained on (ranks must differ)
    try:
        while step < total:
            idx, batch = next(batches)
            seen.update(str(idx).encode())
            torch.manual_seed(_seed_of(tc.seed, "torch", step, env.rank) % 2**63)
            with autocast:
                loss = net(batch.to(env.device), step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if log:
                log.append(log.steps, {"step": step, "loss": round(losses[-1], 5), "lr": sched.get_last_lr()[0],
                                       "examples": step * global_batch, "time": round(time.time(), 2)})
            stop = False
            if evaluate is not None and tc.eval_every and (step % tc.eval_every == 0 or step == total):
                score = _dev_eval(model, evaluate, step)
                if log:
                    log.append(log.dev, score)
                    # a tie keeps the longer-trained weights, but only a better score is progress
                    stale = 0 if score["score"] > best else stale + 1
                    if score["score"] >= best:
                        best = score["score"]
                        save_pretrained(model, out / "best", tok_file, max_shard_mb=tc.max_shard_mb)
                    stop = bool(tc.early_stop) and stale >= tc.early_stop
                stop = _agree(env, stop)
                if stop and env.main:
                    print(f"early stop at step {step}: no better dev score in {stale} evaluations")
            if tc.max_minutes and step < total and _agree(env, time.time() - t0 >= 60 * tc.max_minutes):
                stop = True
                if env.main:
                    print(f"time budget of {tc.max_minutes} minutes spent: stopping at step {step} of {total}")
            due = step % tc.checkpoint_every == 0 or time.time() - last_save >= 60 * tc.checkpoint_minutes
            if env.main and (due or step == total or stop):
                save_last(model, tok_file, opt, sched, step, last)
                last_save = time.time()
            if stop:
                break
    finally:
        batches.close()
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
        save_pretrained(model, final, tok_file, max_shard_mb=tc.max_shard_mb)
        print(f"trained {step} steps in {time.time() - t0:.0f}s; checkpoint: {final}")
    if env.world > 1:
        dist.barrier()
    return final


def _batches(batch_for: Callable[[int], tuple[list[int], Movable]], start: int, total: int,
             tc: TrainConfig) -> Generator[tuple[list[int], Movable], None, None]:
    """(indices, batch) of steps start..total-1, in order: built in this thread, one step ahead
    in a thread (``prefetch``), or ``loader_workers`` steps ahead in that many processes (a
    DataLoader over step numbers; a batch depends on its step only, so nothing changes but speed)."""
    if tc.loader_workers > 0 and start < total:
        loader = torch.utils.data.DataLoader(
            _StepBatches(batch_for), sampler=range(start, total), batch_size=None,
            num_workers=tc.loader_workers, prefetch_factor=4, multiprocessing_context="fork")
        yield from loader
        return
    pool = ThreadPoolExecutor(1) if tc.prefetch else None
    try:
        pending = pool.submit(batch_for, start) if pool and start < total else None
        for s in range(start, total):
            item = pending.result() if pending else batch_for(s)
            if pool and s + 1 < total:
                pending = pool.submit(batch_for, s + 1)  # built while this step trains
            yield item
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)


class _StepBatches(torch.utils.data.Dataset):
    def __init__(self, batch_for: Callable[[int], tuple[list[int], Movable]]):
        self.batch_for = batch_for

    def __getitem__(self, step: int) -> tuple[list[int], Movable]:
        return self.batch_for(step)


def _agree(env: Dist, flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (each rank's clock differs)."""
    if env.world > 1:
        t = torch.tensor([int(flag)])
        dist.broadcast(t, 0)
        return bool(t.item())
    return flag


def _dev_eval(model: nn.Module, evaluate: Callable[[], dict], step: int) -> dict:
    model.eval()
    try:
        with torch.no_grad():
            result = evaluate()
    finally:
        model.train()
    return {"step": step, **result}


def _evaluations_since_best(history: list[dict]) -> int:
    best, stale = -math.inf, 0
    for r in history:
        best, stale = (r["score"], 0) if r["score"] > best else (best, stale + 1)
    return stale


# --- the resumable state: out/last holds the weights, the optimizer's tensors and the step -----

OPTIMIZER_FILE, STATE_FILE = "optimizer.safetensors", "trainer_state.json"


def save_last(model: DocsprintModel | ExitClassifier, tok_file: Path, opt: torch.optim.Optimizer,
              sched: torch.optim.lr_scheduler.LRScheduler, step: int, last: Path) -> None:
    """Write the weights and the resumable state together, atomically (nothing is pickled:
    the optimizer's tensors go to safetensors, the rest to JSON)."""
    state = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    meta = {"step": step, "param_groups": state["param_groups"], "scalars": scalars,
            "scheduler": sched.state_dict()}

    def extra(folder: Path) -> None:
        save_file(tensors, str(folder / OPTIMIZER_FILE))
        (folder / STATE_FILE).write_text(json.dumps(meta) + "\n")

    save_pretrained(model, last, tok_file, write_extra=extra)


def resumable(last: Path) -> Path | None:
    """``last``, or the ``last.old`` a kill between two renames left, if it holds a trainer state."""
    for folder in (last, last.with_name(last.name + ".old")):
        if (folder / STATE_FILE).is_file() and (folder / OPTIMIZER_FILE).is_file():
            return folder
    return None


def load_trainer_state(folder: Path, opt: torch.optim.Optimizer,
                       sched: torch.optim.lr_scheduler.LRScheduler) -> int:
    """Restore the optimizer and scheduler saved by `save_last`; returns the step."""
    meta = json.loads((folder / STATE_FILE).read_text())
    tensors = load_file(str(folder / OPTIMIZER_FILE))
    per_param: dict[int, dict] = {}
    for key, value in [*tensors.items(), *meta["scalars"].items()]:
        pid, name = key.split(".", 1)
        per_param.setdefault(int(pid), {})[name] = value
    opt.load_state_dict({"state": per_param, "param_groups": meta["param_groups"]})
    sched.load_state_dict(meta["scheduler"])
    return int(meta["step"])
