"""Key-value fine-tuning: one checkpoint trained for both parallel and autoregressive decoding.

Each training document is encoded in one of the two modes at random (``ar_fraction``):
parallel (all value tokens are [MASK] slots, bidirectional) or autoregressive (teacher-forced,
causal among values). Both go through the same weights and the same value head.

Resumable: ``out/last`` holds the model, optimizer, scheduler, step and RNG states; a killed
run started again with the same config continues from there.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from docsprint.data import datasets
from docsprint.data.encode import (
    DocTokens,
    Encoded,
    align,
    collate,
    encode,
    page_pixels,
    tokenize_page,
    value_ids,
)
from docsprint.decode.common import value_logits
from docsprint.io.document import Page
from docsprint.models.checkpoint import (
    TOKENIZER_FILE,
    from_pretrained,
    init_from_minilm,
    load_tokenizer,
    load_weights,
    minilm_dir,
    save_pretrained,
)
from docsprint.models.config import ModelConfig
from docsprint.models.model import DocsprintModel
from docsprint.train.losses import value_loss


@dataclass
class KIETrainConfig:
    datasets: list[str] = field(default_factory=lambda: ["sroie"])
    data_dir: dict[str, str] = field(default_factory=dict)  # dataset -> folder
    dev_fraction: float = 0.1  # of the train split, kept out for model selection
    init: str = "minilm"  # "minilm", "random", or a checkpoint folder
    model: dict = field(default_factory=dict)  # ModelConfig overrides
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-4
    head_lr: float = 5e-4  # new parameters (layout, image, pointer, slots) learn faster
    weight_decay: float = 0.01
    warmup: float = 0.06
    ar_fraction: float = 0.5
    absent_prob: float = 0.1  # remove a key's value from the page and expect null
    shuffle_keys: bool = True
    max_doc_tokens: int = 500
    slot_percentile: float = 99.0
    checkpoint_every: int = 100  # steps
    out: str = "runs/kie"
    seed: int = 0
    bf16: bool = True  # autocast to bfloat16 (CPU with AMX, or GPU)
    max_steps: int | None = None  # stop early (tests, smoke runs)
    limit: int | None = None  # documents per dataset (tests, smoke runs)

    @classmethod
    def from_yaml(cls, path: str | Path) -> KIETrainConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown settings {sorted(unknown)}")
        return cls(**data)


@dataclass
class Prepared:
    """A training document, tokenised once."""

    page: Page
    doc: DocTokens
    pixels: torch.Tensor | None
    fields: dict


def measure_slot_budgets(tok, examples: list[Prepared], percentile: float) -> dict[str, int]:
    """Slots per key = the percentile of its value length (tokens) + 1 for the end token."""
    lengths: dict[str, list[int]] = {}
    for ex in examples:
        for k, v in ex.fields.items():
            lengths.setdefault(k.strip().lower(), []).append(len(value_ids(tok, v)))
    return {k: int(math.ceil(np.percentile(v, percentile))) + 1 for k, v in lengths.items() if len(v) >= 20}


def without_value(tok, ex: Prepared, key: str) -> Prepared | None:
    """The document with every word of ``key``'s value removed; None if it cannot be found."""
    target = value_ids(tok, ex.fields[key])
    spots = {p for ps in align(ex.doc.ids, target) for p in ps}
    if not target or len(spots) < len(target) // 2 + 1:
        return None
    drop = {ex.doc.word_index[p] for p in spots}
    page = Page(None, ex.page.width, ex.page.height, [w for i, w in enumerate(ex.page.words) if i not in drop])
    fields = dict(ex.fields)
    fields[key] = None
    return Prepared(page, tokenize_page(tok, page), ex.pixels, fields)


def make_example(tok, cfg: ModelConfig, tc: KIETrainConfig, ex: Prepared, rng: random.Random) -> Encoded:
    if rng.random() < tc.absent_prob and ex.fields:
        ex = without_value(tok, ex, rng.choice(list(ex.fields))) or ex
    keys = list(ex.fields)
    if tc.shuffle_keys:
        rng.shuffle(keys)
    doc = ex.doc
    if len(doc.ids) > tc.max_doc_tokens:
        doc = DocTokens(doc.ids[: tc.max_doc_tokens], doc.bbox[: tc.max_doc_tokens],
                        doc.word_index[: tc.max_doc_tokens], doc.char_span[: tc.max_doc_tokens])
    mode = "autoregressive" if rng.random() < tc.ar_fraction else "parallel"
    return encode(tok, cfg, doc, keys, mode, [ex.fields[k] for k in keys], ex.pixels)


def prepare(tok, cfg: ModelConfig, examples: list[datasets.Example]) -> list[Prepared]:
    out = []
    for ex in tqdm(examples, desc="tokenise", leave=False, mininterval=5):
        page = ex.doc.pages[0]
        out.append(Prepared(page, tokenize_page(tok, page), page_pixels(page.get_image(), cfg), ex.fields))
    return out


def split_dev(examples: list, fraction: float, seed: int) -> tuple[list, list]:
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_dev = int(round(len(examples) * fraction))
    dev = set(order[:n_dev])
    return [e for i, e in enumerate(examples) if i not in dev], [e for i, e in enumerate(examples) if i in dev]


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(tc: KIETrainConfig, budgets: dict[str, int]) -> tuple[DocsprintModel, Path]:
    """A new model (MiniLM or random init, or from a checkpoint) and its tokenizer file."""
    if tc.init not in ("minilm", "random"):
        model, _ = from_pretrained(tc.init)
        model.cfg.slot_budgets.update(budgets)
        return model.train(), Path(tc.init) / TOKENIZER_FILE
    cfg = ModelConfig(**{**tc.model, "slot_budgets": budgets})
    model = DocsprintModel(cfg)
    if tc.init == "minilm":
        init_from_minilm(model)
    return model, minilm_dir() / TOKENIZER_FILE


def param_groups(model: DocsprintModel, tc: KIETrainConfig) -> list[dict]:
    pretrained = {"embed.word.weight", "embed.position.weight", "embed.norm.weight", "embed.norm.bias"}
    groups: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        is_old = name in pretrained or name.startswith("blocks.")
        lr = tc.lr if (is_old and tc.init != "random") else tc.head_lr
        wd = 0.0 if (p.ndim == 1 or "norm" in name) else tc.weight_decay
        groups.setdefault((lr, wd), []).append(p)
    return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]


def train_kie(tc: KIETrainConfig) -> Path:
    """Train and return the folder of the final checkpoint (``out/final``)."""
    out = Path(tc.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.yaml").write_text(yaml.safe_dump(asdict(tc), sort_keys=False))
    random.seed(tc.seed)
    torch.manual_seed(tc.seed)
    tok_file = minilm_dir() / TOKENIZER_FILE if tc.init in ("minilm", "random") else Path(tc.init) / TOKENIZER_FILE
    tok = load_tokenizer(tok_file)
    raw: list[datasets.Example] = []
    for name in tc.datasets:
        raw += datasets.load(name, "train", tc.data_dir.get(name), limit=tc.limit)
    train_raw, dev_raw = split_dev(raw, tc.dev_fraction, tc.seed)
    (out / "dev_ids.txt").write_text("\n".join(e.id for e in dev_raw) + "\n")
    base_cfg = ModelConfig(**tc.model)
    train_set = prepare(tok, base_cfg, train_raw)
    if not train_set:
        raise ValueError("no training documents (check datasets, data_dir and dev_fraction)")
    batch_size = min(tc.batch_size, len(train_set))
    budgets = measure_slot_budgets(tok, train_set, tc.slot_percentile)
    model, tok_file = build_model(tc, budgets)
    cfg = model.cfg
    dev = device()
    model.to(dev).train()
    opt = torch.optim.AdamW(param_groups(model, tc), betas=(0.9, 0.98), eps=1e-6)
    steps_per_epoch = len(train_set) // batch_size
    total = tc.max_steps or tc.epochs * steps_per_epoch
    warm = max(1, int(tc.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, 1 - max(0, s - warm) / max(1, total - warm))
    )
    step, rng = 0, random.Random(tc.seed)
    last = out / "last"
    if (last / "trainer_state.pt").is_file():
        state = torch.load(last / "trainer_state.pt", weights_only=True)
        model.load_state_dict(load_weights(last / "model.safetensors"), strict=False)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
        rng.setstate(_tuple_state(state["python_rng"]))
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed from {last} at step {step}")
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=tc.bf16)
    bar = tqdm(total=total, initial=step, desc="train kie", dynamic_ncols=True, mininterval=5)
    t0, losses = time.time(), []
    while step < total:
        order = list(range(len(train_set)))
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            if step >= total:
                break
            items = [make_example(tok, cfg, tc, train_set[j], rng) for j in order[i : i + batch_size]]
            batch = collate(items).to(dev)
            assert batch.targets is not None
            with autocast:
                logits = value_logits(model, batch)
            loss = value_loss(logits, batch.targets, batch.value_valid)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if step % tc.checkpoint_every == 0 or step == total:
                _save_last(model, tok_file, opt, sched, step, rng, last)
    bar.close()
    final = out / "final"
    save_pretrained(model, final, tok_file)
    print(f"trained {step} steps in {time.time() - t0:.0f}s; checkpoint: {final}")
    return final


def _tuple_state(s):  # lists (as stored) back into the tuple form random.setstate wants
    return tuple(_tuple_state(x) for x in s) if isinstance(s, list) else s


def _save_last(model, tok_file: Path, opt, sched, step: int, rng: random.Random, last: Path) -> None:
    """Write the weights and the resumable state together, atomically."""
    state = {
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "step": step,
        "python_rng": _list_state(rng.getstate()),
        "torch_rng": torch.get_rng_state(),
    }
    save_pretrained(model, last, tok_file, write_extra=lambda folder: torch.save(state, folder / "trainer_state.pt"))


def _list_state(s):
    return [_list_state(x) for x in s] if isinstance(s, tuple) else s
