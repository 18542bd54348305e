"""Key-value fine-tuning: one checkpoint trained for both parallel and autoregressive decoding.

Each training document is encoded in one of the two modes at random (``ar_fraction``):
parallel (all value tokens are [MASK] slots, bidirectional) or autoregressive (teacher-forced,
causal among values). Both go through the same weights and the same value head.

Documents longer than one window (contracts) are cut into windows; each window is asked the
keys whose values it shows, and null for those it does not (`label_windows`).
The loop itself (resuming, several processes) is `docsprint.train.loop.fit`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from docsprint.data import datasets
from docsprint.data.encode import (
    DocTokens,
    Encoded,
    align,
    collate,
    encode,
    key_chunks,
    page_pixels,
    tokenize_page,
    value_ids,
    windows,
)
from docsprint.data.kleister import surface_forms
from docsprint.io.document import Page
from docsprint.models.checkpoint import (
    TOKENIZER_FILE,
    from_pretrained,
    init_from_minilm,
    load_tokenizer,
    minilm_dir,
)
from docsprint.models.config import ModelConfig
from docsprint.models.model import DocsprintModel
from docsprint.train.loop import TrainConfig, ValueLoss, fit, setup_distributed


@dataclass
class KIETrainConfig(TrainConfig):
    datasets: list[str] = field(default_factory=lambda: ["sroie"])
    data_dir: dict[str, str] = field(default_factory=dict)  # dataset -> folder
    repeat: dict[str, int] = field(default_factory=dict)  # dataset -> times per epoch
    limits: dict[str, int] = field(default_factory=dict)  # dataset -> at most N documents
    dev_fraction: float = 0.1  # of the train split, kept out for model selection
    ar_fraction: float = 0.5
    absent_prob: float = 0.1  # remove a key's value from the page and expect null
    shuffle_keys: bool = True
    max_doc_tokens: int = 500  # window size; longer pages are cut into windows
    stride: int = 400
    positive_window_prob: float = 0.75  # long documents: pick a window that shows a value
    slot_percentile: float = 99.0
    default_slot_percentile: float = 95.0  # the shared budget of rarely seen (free-text) keys
    max_prompt_tokens: int = 256  # per training example (a random subset of keys that fits)
    out: str = "runs/kie"
    limit: int | None = None  # documents per dataset (tests, smoke runs)


@dataclass
class Window:
    """One window of one page, with the keys to ask there and their values."""

    page: Page
    doc: DocTokens
    pixels: torch.Tensor | None
    fields: dict


@dataclass
class Prepared:
    """A training document, tokenised once: its windows, and those that show a value."""

    windows: list[Window]
    positive: list[int]


def measure_slot_budgets(tok, fields: list[dict], percentile: float,
                         default_percentile: float) -> tuple[dict[str, int], int]:
    """Slots per key = the percentile of its value length (tokens) + 1 for the end token; keys
    seen fewer than 20 times share one budget, ``default_percentile`` of all their values."""
    lengths: dict[str, list[int]] = {}
    for f in fields:
        for k, v in f.items():
            lengths.setdefault(k.strip().lower(), []).append(len(value_ids(tok, v)))
    budgets = {k: int(math.ceil(np.percentile(v, percentile))) + 1 for k, v in lengths.items() if len(v) >= 20}
    rare = [n for v in lengths.values() if len(v) < 20 for n in v]
    default = int(math.ceil(np.percentile(rare, default_percentile))) + 1 if rare else 16
    return budgets, default


def without_value(tok, w: Window, key: str) -> Window | None:
    """The window with every word of ``key``'s value removed; None if it cannot be found."""
    target = value_ids(tok, w.fields[key])
    spots = {p for ps in align(w.doc.ids, target) for p in ps}
    if not target or len(spots) < len(target) // 2 + 1:
        return None
    drop = {w.doc.word_index[p] for p in spots}
    page = Page(None, w.page.width, w.page.height, [x for i, x in enumerate(w.page.words) if i not in drop])
    fields = dict(w.fields)
    fields[key] = None
    return Window(page, tokenize_page(tok, page), w.pixels, fields)


def make_example(tok, cfg: ModelConfig, tc: KIETrainConfig, ex: Prepared, rng: random.Random) -> Encoded:
    if ex.positive and rng.random() < tc.positive_window_prob:
        w = ex.windows[rng.choice(ex.positive)]
    else:
        w = ex.windows[rng.randrange(len(ex.windows))]
    if len(ex.windows) == 1 and rng.random() < tc.absent_prob and w.fields:
        w = without_value(tok, w, rng.choice(list(w.fields))) or w
    keys = list(w.fields)
    if tc.shuffle_keys:
        rng.shuffle(keys)
    keys = key_chunks(tok, cfg, keys, tc.max_prompt_tokens)[0]  # as many as fit the prompt
    mode = "autoregressive" if rng.random() < tc.ar_fraction else "parallel"
    return encode(tok, cfg, w.doc, keys, mode, [w.fields[k] for k in keys], w.pixels)


def _contains(doc_ids: list[int], forms: list[list[int]], punct: frozenset[int]) -> bool:
    """Does any form occur in the window (punctuation ignored on both sides)?"""
    text = [t for t in doc_ids if t not in punct]
    for f in forms:
        f = [t for t in f if t not in punct]
        if f and any(text[i : i + len(f)] == f for i in range(len(text) - len(f) + 1)):
            return True
    return False


def label_windows(tok, wins: list[DocTokens], fields: dict) -> list[dict]:
    """Per window, the keys to ask and their values there.

    A value (or list item) counts where it is written in the window, in any of its surface
    forms (an ISO date may be written "April 18, 2001"); a key whose value is written
    nowhere is not asked at all (we cannot tell where the answer is), a key written
    elsewhere is null here, and a key absent from the document is null everywhere.
    """
    punct = frozenset(i for t, i in tok.get_vocab().items() if len(t) == 1 and not t.isalnum())
    out: list[dict] = [{} for _ in wins]
    for key, value in fields.items():
        if value is None:
            for f in out:
                f[key] = None
            continue
        items = value if isinstance(value, list) else [value]
        forms = [[tok.encode(s, add_special_tokens=False).ids for s in surface_forms(it)] for it in items]
        found = [[it for it, fs in zip(items, forms, strict=True) if _contains(w.ids, fs, punct)] for w in wins]
        if not any(found):
            continue
        for f, here in zip(out, found, strict=True):
            f[key] = (here if isinstance(value, list) else here[0]) if here else None
    return out


def prepare(tok, cfg: ModelConfig, tc: KIETrainConfig, examples: list[datasets.Example]) -> list[Prepared]:
    out = []
    for ex in tqdm(examples, desc="tokenise", leave=False, mininterval=5):
        wins: list[Window] = []
        for page in ex.doc.pages:
            pixels = page_pixels(page.get_image(), cfg)
            wins += [Window(page, d, pixels, {}) for d in windows(tokenize_page(tok, page), tc.max_doc_tokens, tc.stride)]
        if not wins:
            continue
        if len(wins) == 1:
            wins[0].fields = dict(ex.fields)
        else:
            for w, f in zip(wins, label_windows(tok, [w.doc for w in wins], ex.fields), strict=True):
                w.fields = f
        wins = [w for w in wins if w.fields]
        positive = [i for i, w in enumerate(wins) if any(v is not None for v in w.fields.values())]
        if wins:
            out.append(Prepared(wins, positive))
    return out


def split_dev(examples: list, fraction: float, seed: int) -> tuple[list, list]:
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_dev = int(round(len(examples) * fraction))
    dev = set(order[:n_dev])
    return [e for i, e in enumerate(examples) if i not in dev], [e for i, e in enumerate(examples) if i in dev]


def build_model(tc: TrainConfig, budgets: dict[str, int], default_slots: int) -> tuple[DocsprintModel, Path]:
    """A new model (MiniLM or random init, or from a checkpoint) and its tokenizer file."""
    if tc.init not in ("minilm", "random"):
        model, _ = from_pretrained(tc.init)
        model.cfg.slot_budgets = dict(budgets)
        model.cfg.default_slots = min(default_slots, model.cfg.max_slots)
        return model.train(), Path(tc.init) / TOKENIZER_FILE
    overrides = dict(tc.model or {})
    max_slots = overrides.get("max_slots", ModelConfig.max_slots)
    cfg = ModelConfig(**{**overrides, "slot_budgets": budgets, "default_slots": min(default_slots, max_slots)})
    model = DocsprintModel(cfg)
    if tc.init == "minilm":
        init_from_minilm(model)
    return model, minilm_dir() / TOKENIZER_FILE


def tokenizer_file(tc: TrainConfig) -> Path:
    return minilm_dir() / TOKENIZER_FILE if tc.init in ("minilm", "random") else Path(tc.init) / TOKENIZER_FILE


def train_kie(tc: KIETrainConfig) -> Path:
    """Train and return the folder of the final checkpoint (``out/final``)."""
    env = setup_distributed()
    tok = load_tokenizer(tokenizer_file(tc))
    base_cfg = ModelConfig(**(tc.model or {}))
    train_set: list[Prepared] = []
    dev_ids: list[str] = []
    for name in tc.datasets:
        limit = tc.limits.get(name, tc.limit)
        raw = datasets.load(name, "train", tc.data_dir.get(name), limit=limit)
        train_raw, dev_raw = split_dev(raw, tc.dev_fraction, tc.seed)
        dev_ids += [e.id for e in dev_raw]
        prepared = prepare(tok, base_cfg, tc, train_raw)
        train_set += prepared * tc.repeat.get(name, 1)
        if env.main:
            print(f"{name}: {len(prepared)} training documents ({len(dev_raw)} kept for dev)")
    if not train_set:
        raise ValueError("no training documents (check datasets, data_dir and dev_fraction)")
    if env.main:
        Path(tc.out).mkdir(parents=True, exist_ok=True)
        (Path(tc.out) / "dev_ids.txt").write_text("\n".join(dev_ids) + "\n")
    budgets, default = measure_slot_budgets(tok, [w.fields for p in train_set for w in p.windows],
                                            tc.slot_percentile, tc.default_slot_percentile)
    torch.manual_seed(tc.seed)
    model, tok_file = build_model(tc, budgets, default)
    cfg = model.cfg

    def make_items(idx: list[int], rng: random.Random) -> list[Encoded]:
        return [make_example(tok, cfg, tc, train_set[i], rng) for i in idx]

    return fit(model, tok_file, tc, len(train_set), lambda idx, rng: collate(make_items(idx, rng)),
               ValueLoss(model), name="train kie", env=env)
