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
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from docsprint.data import datasets
from docsprint.data.cache import CachedWindow, cached, tokenizer_digest
from docsprint.data.encode import (
    DocTokens,
    Encoded,
    align,
    collate,
    encode,
    key_chunks,
    thumbnail,
    thumbnail_pixels,
    tokenize_page,
    value_ids,
    windows,
)
from docsprint.data.kleister import surface_forms
from docsprint.eval.values import dates
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
    dev_datasets: list[str] | None = None  # those that keep dev documents out (default: all)
    ar_fraction: float = 0.5
    absent_prob: float = 0.1  # remove a key's value from the page and expect null
    shuffle_keys: bool = True
    # Ask a random part of the keys (one of them up to all but one): a key's answer must not
    # hang on which other keys share the prompt (issue #15: "the answer for one key changes with
    # the other keys asked")
    subset_prob: float = 0.0
    max_doc_tokens: int = 500  # window size; longer pages are cut into windows
    stride: int = 400
    positive_window_prob: float = 0.75  # long documents: pick a window that shows a value
    slot_percentile: float = 99.0
    default_slot_percentile: float = 95.0  # the shared budget of rarely seen (free-text) keys
    max_prompt_tokens: int = 256  # per training example (a random subset of keys that fits)
    out: str = "runs/kie"
    limit: int | None = None  # documents per dataset (tests, smoke runs)

    def folder(self, name: str) -> str | None:
        """The data folder of a dataset; a second view (``sroie@rapidocr``) shares its dataset's."""
        return self.data_dir.get(name) or self.data_dir.get(datasets.base_dataset(name))


# The labelling rule's version, part of the encoding cache's settings: 2 = values asked as the
# window writes them (`label_windows`); 3 = dates only; 4 = WildReceipt's repeated boxes of one
# value once ("$9.93", not "$9.93 $9.93"); 5 = in documents of several windows, a value asked as
# the window spells it where it differs only in punctuation or "&" ("nike, inc." for "Nike Inc.");
# 6 = only where the page adds commas, periods or "&" (not "2 ) years" for "2 years")
LABELS = 6


@dataclass
class Window:
    """One window of one page, with the keys to ask there and their values."""

    doc: DocTokens
    image: np.ndarray | None  # the page's (S, S, 3) uint8 thumbnail
    fields: dict


@dataclass
class Prepared:
    """A training document, tokenised once: its windows, and those that show a value."""

    windows: list[Window]
    positive: list[int]

    @property
    def length(self) -> int:
        """Pieces in its longest window (batches group documents of similar length)."""
        return max(len(w.doc.ids) for w in self.windows)


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
    """The window with every word of ``key``'s value removed; None if it cannot be found.

    Words are tokenised one by one, so dropping a word's pieces is re-tokenising the page
    without it (word indices keep the page's numbering; training does not read them)."""
    target = value_ids(tok, w.fields[key])
    spots = {p for ps in align(w.doc.ids, target) for p in ps}
    if not target or len(spots) < len(target) // 2 + 1:
        return None
    drop = {w.doc.word_index[p] for p in spots}
    keep = [i for i, word in enumerate(w.doc.word_index) if word not in drop]
    d = w.doc
    doc = DocTokens([d.ids[i] for i in keep], [d.bbox[i] for i in keep], [d.word_index[i] for i in keep],
                    [d.char_span[i] for i in keep])
    fields = dict(w.fields)
    fields[key] = None
    return Window(doc, w.image, fields)


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
    if len(keys) > 1 and rng.random() < tc.subset_prob:
        chosen = set(rng.sample(keys, rng.randint(1, len(keys) - 1)))
        keys = [k for k in keys if k in chosen]
    keys = key_chunks(tok, cfg, keys, tc.max_prompt_tokens)[0]  # as many as fit the prompt
    mode = "autoregressive" if rng.random() < tc.ar_fraction else "parallel"
    return encode(tok, cfg, w.doc, keys, mode, [w.fields[k] for k in keys], thumbnail_pixels(w.image))


def _edges(form: list[int], punct: frozenset[int]) -> tuple[int, int]:
    """The form's first word piece and one past its last (punctuation around them left out)."""
    words = [j for j, t in enumerate(form) if t not in punct]
    return words[0], words[-1] + 1


def _find(doc_ids: list[int], form: list[int], punct: frozenset[int]) -> tuple[int, int] | None:
    """Where ``form`` is written in the window, punctuation ignored on both sides: the span
    [start, end) of window pieces from its first to its last word piece, with the form's own
    leading and trailing punctuation where the page has it too ("Nike Inc." in "NIKE, INC.":
    the span reads "nike, inc."); None where it is not written."""
    where = [i for i, t in enumerate(doc_ids) if t not in punct]
    text = [doc_ids[i] for i in where]
    core = [t for t in form if t not in punct]
    if not core:
        return None
    first, last = _edges(form, punct)
    lead, trail = form[:first], form[last:]
    for i in range(len(text) - len(core) + 1):
        if text[i : i + len(core)] == core:
            start, end = where[i], where[i + len(core) - 1] + 1
            if lead and doc_ids[max(0, start - len(lead)) : start] == lead:
                start -= len(lead)
            if trail and doc_ids[end : end + len(trail)] == trail:
                end += len(trail)
            return start, end
    return None


@dataclass
class Form:
    """One way a value may be written: its pieces, and what to ask where it is found."""

    ids: list[int]
    asked: str  # the text to ask (where the page's own spelling is not asked)
    page_spelling: bool  # differs from the value only in punctuation and "&" / "and"


def _loose(text: str) -> list[str]:
    return re.sub(r"[\W_]+", " ", re.sub(r"\s*&\s*", " and ", text.lower())).split()


def _forms(tok, value: str) -> list[Form]:
    """A value's surface forms (the value itself first). A date is asked as written ("April 18,
    2001", copied); a term as given: its "2 years" is written from the vocabulary better than
    "two (2) years" is copied slot by slot (Kleister-NDA terms: 54.6 ANLS written, 34.7 copied,
    v9 against v10); a form that differs from the value only in punctuation or "&" for "and"
    may be asked as the page spells it (`_written_as`)."""
    as_written = bool(dates(value))
    return [Form(tok.encode(text, add_special_tokens=False).ids, text if as_written else value,
                 not as_written and _loose(text) == _loose(value))
            for text in surface_forms(value)]


def _written_as(tok, doc_ids: list[int], forms: list[Form], punct: frozenset[int],
                page_spelling: bool) -> str | None:
    """What to ask for a value in this window (`_forms`), or None when no form is written there.
    With ``page_spelling``, a value is asked as the window spells it ("nike, inc." for "Nike
    Inc.", "sears, roebuck & co." for "Sears Roebuck and Co."): the model copies runs of page
    pieces, and a task that writes no commas reads the answer its own way (`kleister.task_value`)."""
    for f in forms:
        span = _find(doc_ids, f.ids, punct)
        if span is None:
            continue
        if not (page_spelling and f.page_spelling):
            return f.asked
        ids = doc_ids[span[0] : span[1]]
        trail = f.ids[_edges(f.ids, punct)[1] :]
        if trail and ids[-len(trail) :] != trail:  # "Inc." where the page prints "Inc"
            ids = ids + trail
        # only commas, periods and "&" the value does not write: "2 ) years" of "two (2)
        # years" is no spelling of "2 years" (labels v5 asked it so: v14's terms fell)
        extra = Counter(ids) - Counter(f.ids)
        copy = ids != f.ids and set(extra) <= {tok.token_to_id(c) for c in ",.&"}
        return tok.decode(ids) if copy else f.asked
    return None


def label_windows(tok, wins: list[DocTokens], fields: dict, search_all: bool = True) -> list[dict]:
    """Per window, the keys to ask and their values there, as the window writes them.

    A value (or list item) counts where it is written in the window, in any of its surface
    forms (an ISO date may be written "April 18, 2001"); a date is asked as written there: the
    model copies "April 18, 2001" from the page and `normalized` reads it as 2001-04-18; it is
    not asked to spell an ISO date the page does not show (`_forms`). A key whose value is written
    nowhere is not asked at all (we cannot tell where the answer is), a key written elsewhere
    is null here, and a key absent from the document is null everywhere. With ``search_all``
    False (a document of one window), a value written nowhere is asked as given, for the
    model to write (a receipt's total the dataset spells differently).
    """
    punct = frozenset(i for t, i in tok.get_vocab().items() if len(t) == 1 and not t.isalnum())
    out: list[dict] = [{} for _ in wins]
    for key, value in fields.items():
        if value is None:
            for f in out:
                f[key] = None
            continue
        items = value if isinstance(value, list) else [value]
        forms = [_forms(tok, it) for it in items]
        if not search_all:  # one window: every item as written there, else as given
            written = [_written_as(tok, wins[0].ids, fs, punct, False) or it for it, fs in zip(items, forms, strict=True)]
            out[0][key] = written if isinstance(value, list) else written[0]
            continue
        found = [[w for fs in forms if (w := _written_as(tok, doc.ids, fs, punct, True)) is not None] for doc in wins]
        if not any(found):
            continue
        for f, here in zip(out, found, strict=True):
            f[key] = (here if isinstance(value, list) else here[0]) if here else None
    return out


def prepare_windows(tok, image_size: int, tc: KIETrainConfig, ex: datasets.Example) -> tuple[list[Window], list[int]]:
    """A document's windows that ask something, and those among them that show a value."""
    wins: list[Window] = []
    for page in ex.doc.pages:
        thumb = thumbnail(page.get_image(), image_size)
        wins += [Window(d, thumb, {}) for d in windows(tokenize_page(tok, page), tc.max_doc_tokens, tc.stride)]
    if wins:
        for w, f in zip(wins, label_windows(tok, [w.doc for w in wins], ex.fields, len(wins) > 1), strict=True):
            w.fields = f
    wins = [w for w in wins if w.fields]
    return wins, [i for i, w in enumerate(wins) if any(v is not None for v in w.fields.values())]


def load_prepared(tok, tok_file: Path, cfg: ModelConfig, tc: KIETrainConfig, name: str,
                  split: str = "train") -> list[tuple[str, Prepared | None]]:
    """Every document of a dataset split as (id, prepared or None when it asks nothing), read
    from the encoding cache (``tc.cache_dir``), which is built on first use."""
    limit = tc.limits.get(name, tc.limit)
    try:
        root: Path | None = datasets.data_dir(name, tc.folder(name))
    except datasets.DatasetError:
        root = None
    settings = {"dataset": name, "split": split, "limit": limit, "tokenizer": tokenizer_digest(tok_file), "labels": LABELS,
                "max_doc_tokens": tc.max_doc_tokens, "stride": tc.stride, "image_size": cfg.image_size}

    def build():
        for ex in tqdm(datasets.load(name, split, root, limit), desc=f"encode {name}", leave=False, mininterval=5):
            wins, positive = prepare_windows(tok, cfg.image_size, tc, ex)
            yield ex.id, [CachedWindow(w.doc, w.image, w.fields) for w in wins], positive

    store = cached(Path(tc.cache_dir), f"{name}-{split}", settings, root, build, cfg.image_size)
    out: list[tuple[str, Prepared | None]] = []
    for d in store.docs:
        wins = [Window(store.doc_tokens(w), store.image(w), f) for w, f in zip(d.windows, d.fields, strict=True)]
        out.append((d.id, Prepared(wins, d.positive) if wins else None))
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
        # the checkpoint's budgets stay for keys this data does not measure (a fine-tune on
        # a few documents must not shrink what the model learnt on many)
        model.cfg.slot_budgets = {**model.cfg.slot_budgets, **budgets}
        model.cfg.default_slots = min(max(default_slots, model.cfg.default_slots), model.cfg.max_slots)
        # the overrides a trained model can take: parts that start as no-ops
        if (tc.model or {}).get("key_mentions"):
            model.enable_key_mentions()
        if (tc.model or {}).get("key_geometry"):
            model.enable_key_geometry()
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
    tok_file = tokenizer_file(tc)
    tok = load_tokenizer(tok_file)
    # the pages are encoded for the model that trains: a checkpoint's own image size
    base_cfg = (ModelConfig(**(tc.model or {})) if tc.init in ("minilm", "random")
                else ModelConfig.load(Path(tc.init) / "config.json"))
    train_set: list[Prepared] = []
    dev: dict[str, list[str]] = {}
    if env.world > 1 and not env.main:
        dist.barrier()  # rank 0 builds any missing encoding cache first, the others then read it
    loaded = {name: load_prepared(tok, tok_file, base_cfg, tc, name) for name in tc.datasets}
    if env.world > 1 and env.main:
        dist.barrier()
    for name, docs in loaded.items():
        fraction = tc.dev_fraction if tc.dev_datasets is None or name in tc.dev_datasets else 0.0
        train_docs, dev_docs = split_dev(docs, fraction, tc.seed)
        dev[name] = [i for i, _ in dev_docs]
        prepared = [p for _, p in train_docs if p is not None]
        train_set += prepared * tc.repeat.get(name, 1)
        if env.main:
            print(f"{name}: {len(prepared)} training documents ({len(dev_docs)} kept for dev)")
    if not train_set:
        raise ValueError("no training documents (check datasets, data_dir and dev_fraction)")
    if env.main:
        Path(tc.out).mkdir(parents=True, exist_ok=True)
        (Path(tc.out) / "dev_ids.txt").write_text("".join(i + "\n" for ids in dev.values() for i in ids))
    budgets, default = measure_slot_budgets(tok, [w.fields for p in train_set for w in p.windows],
                                            tc.slot_percentile, tc.default_slot_percentile)
    torch.manual_seed(tc.seed)
    model, tok_file = build_model(tc, budgets, default)
    cfg = model.cfg

    def make_items(idx: list[int], rng: random.Random) -> list[Encoded]:
        return [make_example(tok, cfg, tc, train_set[i], rng) for i in idx]

    evaluate = dev_evaluator(model, tok, tc, dev) if tc.eval_every else None
    return fit(model, tok_file, tc, len(train_set), lambda idx, rng: collate(make_items(idx, rng)),
               ValueLoss(model), name="train kie", env=env, lengths=[p.length for p in train_set],
               evaluate=evaluate)


def dev_evaluator(model: DocsprintModel, tok, tc: KIETrainConfig, dev: dict[str, list[str]]):
    """``evaluate()`` for `fit`: parallel decoding of the first ``eval_docs`` dev documents of
    each dataset (the same ones every time); score = the mean of the datasets' ANLS."""
    from docsprint.eval.kie import score_examples
    from docsprint.pipeline import Extractor

    samples: dict[str, list[datasets.Example]] = {}
    for name, ids in dev.items():
        wanted = set(ids[: tc.eval_docs])
        if wanted:
            limit = tc.limits.get(name, tc.limit)
            samples[name] = [e for e in datasets.load(name, "train", tc.folder(name), limit) if e.id in wanted]

    def evaluate() -> dict:
        ex = Extractor.of(model, tok, max_doc_tokens=tc.max_doc_tokens, stride=tc.stride)
        result = {name: round(score_examples(name, docs, "parallel", ex, warmup=0)["anls"], 3)
                  for name, docs in samples.items() if docs and name != "labels"}
        if samples.get("labels"):  # a user's own documents: the share of values right, as they count it
            from docsprint.eval.folder import score_labelled

            result["labels"] = round(score_labelled(samples["labels"], ex)["value_match"], 2)
        return {"score": float(np.mean(list(result.values()))) if result else 0.0, "anls": result}

    return evaluate
