"""Training the early-exit classifier: ``docsprint train classify --config FILE``.

Strategies (``strategy``):

- ``joint``: final head and every exit, equal weights;
- ``weighted``: exit j's loss weight is proportional to 1 / (parameters up to exit j),
  normalised; ``gamma`` of the loss goes to the exits, 1 - gamma to the final head;
- ``two-stage``: backbone + final head first (``stage1_fraction`` of the steps), then the
  exits on the frozen backbone (their inputs are detached, the final head gets no loss);
- ``alternating``: even steps train the final head, odd steps the exits (BERxiT).

``entropy_reg: true`` adds the paper's entropy regularisation to any of them: the gradient
each exit sends into the backbone is scaled by 1 - min(1, E * softmax(mean entropies)_j),
so the exits that are most unsure disturb the shared layers least (the exit heads themselves
always learn).

After training, every decision point gets a temperature fitted on val, and the recommended
exit policy (the fastest on val within ``max_drop`` points of full depth) is written into the
checkpoint's config.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from docsprint.data.classify import LabelledPage, collate_pages, encode_page, load_pages
from docsprint.data.encode import Encoded
from docsprint.exits.sweep import choose_policies, collect, fit_temperatures, sweep
from docsprint.models.checkpoint import (
    init_encoder_from,
    init_from_minilm,
    load_tokenizer,
    save_pretrained,
)
from docsprint.models.classifier import (
    ClassifierConfig,
    ExitClassifier,
    ExitOutputs,
    exit_depth,
    preset_exits,
)
from docsprint.models.config import ModelConfig
from docsprint.train.kie import tokenizer_file
from docsprint.train.loop import TrainConfig, fit, setup_distributed

STRATEGIES = ("joint", "weighted", "two-stage", "alternating")


@dataclass
class ClassifyTrainConfig(TrainConfig):
    data: str = "tobacco3482"  # tobacco3482, doctypes, or a folder of class sub-folders
    data_dir: str | None = None
    limit: int | None = None  # pages per split (tobacco3482) / per class (doctypes, folders)
    exits: str | list[str] = "concat-all"  # a preset name or a list ("concat", "3", ...)
    exit_kind: str = "ramp"
    strategy: str = "weighted"
    entropy_reg: bool = False
    gamma: float = 0.7  # share of the loss given to the exits (weighted)
    stage1_fraction: float = 0.5  # two-stage: steps spent on backbone + final head
    max_tokens: int = 256  # pieces read per page
    pooling: str = "mean"  # or "cls" (see ClassifierConfig)
    max_drop: float = 0.5  # recommended policy: val accuracy points it may lose
    epochs: int = 3
    lr: float = 5e-5
    head_lr: float = 1e-3
    batch_size: int = 16
    labels: list[str] = field(default_factory=list)  # empty: the classes found in train

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}")
        if not 0 <= self.gamma <= 1 or not 0 < self.stage1_fraction < 1:
            raise ValueError("gamma must be in [0, 1] and stage1_fraction in (0, 1)")


def exit_weights(model: ExitClassifier) -> Tensor:
    """Per exit, 1 / (parameters computed up to and including it), normalised to sum 1."""
    embed = sum(p.numel() for p in model.embed.parameters())
    block = [sum(p.numel() for p in b.parameters()) for b in model.blocks]
    counts = []
    for j, name in enumerate(model.cfg.exits):
        n = embed + sum(block[: exit_depth(name)]) + sum(p.numel() for p in model.exit_heads[j].parameters())
        if name == "concat" and model.concat_proj is not None:
            n += sum(p.numel() for p in model.concat_proj.parameters())
        counts.append(1.0 / n)
    w = torch.tensor(counts)
    return w / w.sum()


def exit_losses(out: ExitOutputs, labels: Tensor) -> list[Tensor]:
    """Ramps: cross-entropy on the class; gates: on "the shared classifier is right here"."""
    if not out.shared_logits:
        return [F.cross_entropy(lg.float(), labels) for lg in out.exit_logits]
    return [F.cross_entropy(lg.float(), (sh.argmax(-1) == labels).long())
            for lg, sh in zip(out.exit_logits, out.shared_logits, strict=True)]


def entropy_scales(out: ExitOutputs) -> Tensor:
    """1 - min(1, E * softmax over exits of their mean prediction entropy)."""
    ent = torch.stack([-(torch.softmax(lg.detach().float(), -1) * torch.log_softmax(lg.detach().float(), -1)).sum(-1).mean()
                       for lg in out.exit_logits])
    return 1 - (torch.softmax(ent, 0) * len(ent)).clamp(max=1)


class ExitLoss(nn.Module):
    weights: Tensor

    def __init__(self, model: ExitClassifier, tc: ClassifyTrainConfig, total_steps: int):
        super().__init__()
        self.model = model
        self.tc = tc
        self.stage2_from = int(tc.stage1_fraction * total_steps)
        self.register_buffer("weights", exit_weights(model), persistent=False)

    def forward(self, batch, step: int) -> Tensor:
        tc, y = self.tc, batch.labels
        stage2 = tc.strategy == "two-stage" and step >= self.stage2_from
        scale = torch.ones(len(self.model.cfg.exits), device=y.device) if tc.entropy_reg else None
        out = self.model(batch, detach_backbone=stage2, grad_scale=scale)
        final = F.cross_entropy(out.final_logits.float(), y)
        exits = exit_losses(out, y)
        if not exits:
            return final
        if scale is not None:
            scale.copy_(entropy_scales(out))  # read by the gradient hooks during backward
        mean_exit = torch.stack(exits).mean()
        if tc.strategy == "joint":
            return (final + torch.stack(exits).sum()) / (len(exits) + 1)
        if tc.strategy == "weighted":
            return (1 - tc.gamma) * final + tc.gamma * (self.weights * torch.stack(exits)).sum()
        if tc.strategy == "two-stage":
            return mean_exit if stage2 else final
        return final if step % 2 == 0 else mean_exit  # alternating


def build_classifier(tc: ClassifyTrainConfig, labels: list[str]) -> tuple[ExitClassifier, Path]:
    pretrained = tc.init not in ("minilm", "random")
    enc = ModelConfig.load(Path(tc.init) / "config.json") if pretrained else ModelConfig(**(tc.model or {}))
    exits = preset_exits(tc.exits, enc.num_layers) if isinstance(tc.exits, str) else [str(e) for e in tc.exits]
    cfg = ClassifierConfig(labels=labels, exits=exits, exit_kind=tc.exit_kind, max_tokens=tc.max_tokens,
                           pooling=tc.pooling, encoder=enc)
    model = ExitClassifier(cfg)
    if tc.init == "minilm":
        init_from_minilm(model)
    elif pretrained:
        init_encoder_from(model, tc.init)
    return model, tokenizer_file(tc)


def encode_pages(tok, cfg: ClassifierConfig, pages: list[LabelledPage], desc: str) -> list[Encoded]:
    return [encode_page(tok, cfg, p.page) for p in tqdm(pages, desc=desc, mininterval=5, leave=False)]


def calibrate_and_recommend(model: ExitClassifier, tok, val: list[LabelledPage], max_drop: float) -> dict:
    """Fit the temperatures on val and choose each policy family's thresholds and the
    recommended policy; all go into ``model`` (saved with it)."""
    model.eval()
    label_id = {c: i for i, c in enumerate(model.cfg.labels)}
    items = encode_pages(tok, model.cfg, val, "encode val")
    batches = (collate_pages([e], [label_id[p.label]]) for e, p in zip(items, val, strict=True))
    dec = collect(model, batches)
    temps = fit_temperatures(dec)
    model.temperature.copy_(temps)
    model.cfg.policies = choose_policies(sweep(dec, temps), max_drop)
    return model.cfg.policies["recommended"]


def train_classify(tc: ClassifyTrainConfig) -> Path:
    env = setup_distributed()
    train = load_pages(tc.data, "train", tc.data_dir, tc.limit)
    val = load_pages(tc.data, "val", tc.data_dir, tc.limit)
    labels = tc.labels or sorted({p.label for p in train + val})
    unknown = {p.label for p in train + val} - set(labels)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not in the config's labels")
    model, tok_file = build_classifier(tc, labels)
    tok = load_tokenizer(tok_file)
    items = encode_pages(tok, model.cfg, train, "encode train")
    label_id = {c: i for i, c in enumerate(labels)}
    targets = [label_id[p.label] for p in train]

    def make_batch(idx: list[int], rng: random.Random):
        return collate_pages([items[i] for i in idx], [targets[i] for i in idx])

    steps = tc.max_steps or tc.epochs * max(1, len(items) // (tc.batch_size * env.world))
    final = fit(model, tok_file, tc, len(items), make_batch, ExitLoss(model, tc, steps), name="train classify", env=env)
    if env.main:
        policy = calibrate_and_recommend(model, tok, val, tc.max_drop)
        save_pretrained(model, final, tok_file)
        print(f"temperatures {[round(t, 3) for t in model.temperature.tolist()]}; recommended policy {policy}")
    return final
