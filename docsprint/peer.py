"""The peer a user would pick instead: transformers' LayoutLMv3ForTokenClassification.

BIO tagging is the common *parallel* alternative to PIP: every word gets a label (B-KEY,
I-KEY or O) in one forward pass, and a key's value is its best-scoring span of words. The
peer is configured to the size of our encoder (6 layers, 384 wide, 12 heads, 64 image
patches of a 128-pixel page, no relative attention biases), starts from the same MiniLM text weights, reads the same
WordPiece tokens and 0-1000 boxes, and is trained on the same documents with the same
budget (steps x batch) as ``configs/kie-sroie.yaml``. It is scored with the same ANLS/F1.

Gold BIO tags come from aligning each gold value with the page's words (fuzzy, since
receipts write "RM10.60" where the key says "10.60"); a value not found on the page is
left untagged.

FUNSD's keys are free text (each question on the form), so no fixed label set can name them.
There the peer does what LayoutLMv3 users do on FUNSD: it tags entities (question, answer)
from the dataset's own entity annotation, and a geometric rule links each asked question,
found on the page by its text, to the nearest tagged answer to its right or below it
(``link: true``).

    docsprint train peer --config configs/peer-sroie.yaml
    docsprint eval peer --model runs/peer-sroie/final --dataset sroie --json out/peer-sroie.json
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from rapidfuzz import fuzz
from tokenizers import Tokenizer
from tqdm import tqdm

from docsprint.data import datasets
from docsprint.data.encode import page_pixels
from docsprint.eval.metrics import anls, f1_from_counts, match_counts, normalize
from docsprint.io.document import Box, Page
from docsprint.models.checkpoint import TOKENIZER_FILE, load_tokenizer, minilm_dir
from docsprint.models.config import ModelConfig
from docsprint.train.kie import split_dev
from docsprint.train.loop import use_bf16, warmup_then_linear_decay

IGNORE = -100  # label of word pieces after a word's first: not scored


@dataclass
class PeerConfig:
    dataset: str = "sroie"
    keys: tuple[str, ...] = tuple(datasets.SROIE_KEYS)
    data_dir: str | None = None
    dev_fraction: float = 0.1  # the same dev split as configs/kie-sroie.yaml (same seed)
    epochs: int = 10
    batch_size: int = 8
    lr: float = 2.0e-4
    head_lr: float = 1.5e-3  # parameters MiniLM does not have: layout, patches, classifier
    warmup: float = 0.06
    weight_decay: float = 0.01
    max_tokens: int = 510
    bf16: bool | str = "auto"  # as in TrainConfig: auto = where the CPU multiplies bf16 natively
    seed: int = 0
    max_steps: int | None = None
    out: str = "runs/peer-sroie"
    # FUNSD: ``keys`` are entity labels (question, answer) tagged from the annotation; an asked
    # key is a question's text, answered by the nearest "answer" span (see `link_answer`).
    link: bool = False

    @classmethod
    def from_dict(cls, data: dict, strict: bool = True) -> PeerConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown and strict:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        kw = {k: v for k, v in data.items() if k not in unknown}
        if "keys" in kw:
            kw["keys"] = tuple(kw["keys"])
        return cls(**kw)

    @classmethod
    def from_yaml(cls, path: str | Path) -> PeerConfig:
        try:
            return cls.from_dict(yaml.safe_load(Path(path).read_text()) or {})
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    @classmethod
    def of_checkpoint(cls, path: str | Path) -> PeerConfig:
        """The config a peer checkpoint was trained with (its ``peer.json``)."""
        file = Path(path) / "peer.json"
        if not file.is_file():
            raise FileNotFoundError(f"{path} is not a peer checkpoint (no peer.json)")
        return cls.from_dict(json.loads(file.read_text()), strict=False)

    @property
    def labels(self) -> list[str]:
        return ["O"] + [f"{p}-{k}" for k in self.keys for p in ("B", "I")]


def layoutlmv3(num_labels: int, ours: ModelConfig | None = None):
    """A LayoutLMv3ForTokenClassification the size of our encoder (MiniLM-L6 + 64 patches)."""
    from transformers import LayoutLMv3Config, LayoutLMv3ForTokenClassification

    c = ours or ModelConfig()
    cfg = LayoutLMv3Config(
        vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_layers,
        num_attention_heads=c.num_heads, intermediate_size=c.intermediate_size,
        coordinate_size=c.hidden_size // 6, shape_size=c.hidden_size // 6,  # 4 x coord + 2 x shape = hidden
        input_size=c.image_size, patch_size=c.patch_size, pad_token_id=c.pad_id,
        max_position_embeddings=c.max_positions + 2,
        # Absolute 1D and 2D position embeddings only, as in our encoder; LayoutLMv3-base also
        # adds learnt relative 1D/2D attention biases, which double a training step on a CPU.
        has_relative_attention_bias=False, has_spatial_attention_bias=False,
        # No dropout on attention weights, as in our encoder: on a CPU, drawing that (B, heads,
        # T, T) mask took half of the peer's forward pass.
        attention_probs_dropout_prob=0.0,
    )
    cfg.num_labels = num_labels
    return LayoutLMv3ForTokenClassification(cfg)


def init_from_minilm(model) -> set[str]:
    """Copy MiniLM's word, position and token-type embeddings and its six layers into the
    peer (the same start as our encoder); returns the names of the parameters copied."""
    from safetensors.torch import load_file

    src = load_file(str(minilm_dir() / "model.safetensors"))
    dst = model.layoutlmv3.state_dict()
    copied = set()
    for name, w in src.items():
        if name in dst and dst[name].shape == w.shape:
            dst[name] = w
        elif name == "embeddings.position_embeddings.weight":
            # RoBERTa-style positions start at pad_id + 1: row p + 1 holds MiniLM's row p.
            rows = min(w.shape[0], dst[name].shape[0] - 1)
            dst[name][1 : rows + 1] = w[:rows]
        else:
            continue
        copied.add(f"layoutlmv3.{name}")
    model.layoutlmv3.load_state_dict(dst)
    return copied


def _align(words: list[str], target: str) -> tuple[float, tuple[int, int]]:
    """The run of (normalised) words most like ``target``: (fuzzy ratio 0-100, (start, end))."""
    n = len(target.split())
    best, span = 0.0, (0, 0)
    for length in range(max(1, n - 2), n + 3):
        for i in range(0, len(words) - length + 1):
            r = fuzz.ratio(" ".join(words[i : i + length]), target)
            if r > best:
                best, span = r, (i, i + length)
    return best, span


def bio_tags(page: Page, fields: dict, keys: tuple[str, ...], min_ratio: float = 80.0) -> list[str]:
    """One tag per page word: each key's gold value is aligned with its best-matching run of
    words (about as many words as the value has); unmatched values leave no tags.

    >>> from docsprint.io.document import Word
    >>> p = Page(None, 100, 100, [Word(t, (0, 0, 1, 1)) for t in "TOTAL RM10.60 CASH".split()])
    >>> bio_tags(p, {"total": "10.60"}, ("total",))
    ['O', 'B-total', 'O']
    """
    words = [normalize(w.text) for w in page.words]
    tags = ["O"] * len(words)
    for key in keys:
        value = fields.get(key)
        if not value or isinstance(value, list):
            continue
        best, span = _align(words, normalize(value))
        if best >= min_ratio:
            i, j = span
            for t in range(i, j):
                if tags[t] == "O":
                    tags[t] = ("B-" if t == i else "I-") + key
    return tags


def entity_tags(n_words: int, entities: list[tuple[str, list[int]]], labels: tuple[str, ...]) -> list[str]:
    """BIO tags of annotated entities whose label is one of ``labels``.

    >>> entity_tags(4, [("question", [0]), ("answer", [1, 2]), ("header", [3])], ("question", "answer"))
    ['B-question', 'B-answer', 'I-answer', 'O']
    """
    tags = ["O"] * n_words
    for label, idx in entities:
        if label in labels:
            for j, w in enumerate(idx):
                tags[w] = ("B-" if j == 0 else "I-") + label
    return tags


def _union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def link_answer(question: Box, answers: list[Box]) -> int | None:
    """Index of the answer a question labels: the nearest one that starts to its right on the
    same line, or below it and overlapping it horizontally (the usual rule on forms); None when
    no answer lies there. Below counts its vertical gap plus half its horizontal offset.

    >>> link_answer((0, 0, 10, 10), [(50, 0, 60, 10), (0, 30, 10, 40), (20, 1, 30, 9)])
    2
    """
    best, best_d = None, float("inf")
    qh = question[3] - question[1]
    for i, a in enumerate(answers):
        overlap_y = min(question[3], a[3]) - max(question[1], a[1])
        overlap_x = min(question[2], a[2]) - max(question[0], a[0])
        if overlap_y > 0.5 * min(qh, a[3] - a[1]) and a[0] >= question[2] - 0.5 * qh:
            d = a[0] - question[2]  # to the right, same line
        elif a[1] >= question[3] - 0.5 * qh and overlap_x > 0:
            d = (a[1] - question[3]) + 0.5 * abs(a[0] - question[0])  # below
        else:
            continue
        if d < best_d:
            best, best_d = i, d
    return best


def answer_questions(page: Page, answers: list[list[int]], questions: list[str]) -> dict[str, str | None]:
    """Each question, found on the page by its text, answered by the answer span (word indices)
    that `link_answer` picks; None when the question is not on the page or nothing is linked."""
    boxes = [_union([page.words[w].box for w in a]) for a in answers]
    words = [normalize(w.text) for w in page.words]
    out: dict[str, str | None] = {}
    for q in questions:
        ratio, (i, j) = _align(words, normalize(q))
        k = link_answer(_union([w.box for w in page.words[i:j]]), boxes) if ratio >= 80 and j > i else None
        out[q] = " ".join(page.words[w].text for w in answers[k]) if k is not None else None
    return out


@dataclass
class PeerInputs:
    input_ids: torch.Tensor  # (T,)
    bbox: torch.Tensor  # (T, 4)
    word_of: list[int]  # per piece: page word index, or -1 ([CLS], [SEP], later pieces)
    labels: torch.Tensor  # (T,) label ids; IGNORE where word_of is -1
    pixels: torch.Tensor | None


def encode_page(tok: Tokenizer, page: Page, tags: list[str] | None, label_ids: dict[str, int],
                max_tokens: int, image_size: int = 128) -> PeerInputs:
    """[CLS] word pieces [SEP]; each word's first piece carries its tag (others are ignored)."""
    words = [w.text for w in page.words]
    ids, boxes, word_of = [101], [(0, 0, 0, 0)], [-1]
    if words:
        enc = tok.encode(words, is_pretokenized=True, add_special_tokens=False)
        prev = None
        for piece, w in zip(enc.ids[:max_tokens], enc.word_ids[:max_tokens], strict=True):
            ids.append(piece)
            boxes.append(page.norm_box(page.words[w]) if w is not None else (0, 0, 0, 0))
            word_of.append(w if w is not None and w != prev else -1)
            prev = w
    ids.append(102)
    boxes.append((0, 0, 0, 0))
    word_of.append(-1)
    labels = [IGNORE if w < 0 or tags is None else label_ids[tags[w]] for w in word_of]
    pixels = page_pixels(page.get_image(), ModelConfig(image_size=image_size))
    return PeerInputs(torch.tensor(ids), torch.tensor(boxes), word_of, torch.tensor(labels), pixels)


def collate(items: list[PeerInputs]) -> dict[str, torch.Tensor]:
    T = max(len(x.input_ids) for x in items)
    B = len(items)
    batch = {"input_ids": torch.zeros(B, T, dtype=torch.long), "bbox": torch.zeros(B, T, 4, dtype=torch.long),
             "attention_mask": torch.zeros(B, T, dtype=torch.long), "labels": torch.full((B, T), IGNORE)}
    for b, x in enumerate(items):
        n = len(x.input_ids)
        batch["input_ids"][b, :n], batch["bbox"][b, :n] = x.input_ids, x.bbox
        batch["attention_mask"][b, :n], batch["labels"][b, :n] = 1, x.labels
    if all(x.pixels is not None for x in items):
        batch["pixel_values"] = torch.stack([x.pixels for x in items if x.pixels is not None])
    return batch


def train_peer(cfg: PeerConfig) -> Path:
    """Train the peer on ``cfg.dataset`` train less the dev split; returns ``out/final``."""
    torch.manual_seed(cfg.seed)
    tok = load_tokenizer(minilm_dir() / TOKENIZER_FILE)
    label_ids = {label: i for i, label in enumerate(cfg.labels)}
    raw = datasets.load(cfg.dataset, "train", cfg.data_dir)
    train, dev = split_dev(raw, cfg.dev_fraction, cfg.seed)
    if cfg.link and not any(e.entities for e in train):
        raise ValueError(f"link: true needs entity annotations, which {cfg.dataset} does not have (FUNSD does)")

    def tags(e: datasets.Example) -> list[str]:
        page = e.doc.pages[0]
        return entity_tags(len(page.words), e.entities, cfg.keys) if cfg.link else bio_tags(page, e.fields, cfg.keys)

    items = [encode_page(tok, e.doc.pages[0], tags(e), label_ids, cfg.max_tokens)
             for e in tqdm(train, desc="encode train", leave=False)]
    found = sum(t != IGNORE and t != 0 for x in items for t in x.labels.tolist())
    print(f"peer: {len(items)} training pages ({len(dev)} kept for dev), {found} tagged word labels")
    model = layoutlmv3(len(cfg.labels))
    pretrained = init_from_minilm(model)
    params = dict(model.named_parameters())
    groups = [{"params": [p for n, p in params.items() if n in pretrained], "lr": cfg.lr},
              {"params": [p for n, p in params.items() if n not in pretrained], "lr": cfg.head_lr}]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay, betas=(0.9, 0.98), eps=1e-6)
    per_epoch = max(1, len(items) // cfg.batch_size)
    total = cfg.max_steps or cfg.epochs * per_epoch
    sched = warmup_then_linear_decay(opt, cfg.warmup, total)
    rng = random.Random(cfg.seed)
    order: list[int] = []
    model.train()
    bf16 = use_bf16(cfg.bf16, torch.device("cpu"))
    bar = tqdm(range(total), desc="train peer", mininterval=5)
    for _ in bar:
        if len(order) < cfg.batch_size:
            order += rng.sample(range(len(items)), len(items))
        idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
        batch = collate([items[i] for i in idx])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    final = Path(cfg.out) / "final"
    model.eval().save_pretrained(final)  # config.json + model.safetensors
    (final / "peer.json").write_text(json.dumps({**asdict(cfg), "steps": total, "train_pages": len(items)}, indent=2))
    (final / TOKENIZER_FILE).write_bytes((minilm_dir() / TOKENIZER_FILE).read_bytes())
    return final


class PeerExtractor:
    """Loads a trained peer; ``extract`` tags a page's words and returns each key's best span."""

    def __init__(self, model: str | Path):
        from transformers import LayoutLMv3ForTokenClassification

        path = Path(model)
        self.cfg = PeerConfig.of_checkpoint(path)
        self.model = LayoutLMv3ForTokenClassification.from_pretrained(path).eval()
        self.tok = load_tokenizer(path / TOKENIZER_FILE)
        self.labels = self.cfg.labels

    @torch.inference_mode()
    def extract(self, page: Page, keys: list[str] | None = None) -> tuple[dict[str, str | None], float]:
        """(value per key, model seconds) for one page. ``keys``: the questions asked, for a
        linking peer (FUNSD); a tagging peer answers its own keys."""
        x = encode_page(self.tok, page, None, {}, self.cfg.max_tokens)
        batch = collate([x])
        batch.pop("labels")
        t0 = time.perf_counter()
        probs = self.model(**batch).logits[0].float().softmax(-1)  # (T, labels)
        seconds = time.perf_counter() - t0
        word_label = {w: int(probs[t].argmax()) for t, w in enumerate(x.word_of) if w >= 0}
        word_prob = {w: float(probs[t].max()) for t, w in enumerate(x.word_of) if w >= 0}

        def spans(label: str) -> list[list[int]]:
            """Runs of words tagged B-label I-label..., in page order (an I without a B starts one)."""
            b, i = self.labels.index(f"B-{label}"), self.labels.index(f"I-{label}")
            out: list[list[int]] = []
            for w in sorted(word_label):
                lab = word_label[w]
                if lab == b or (lab == i and not (out and out[-1][-1] == w - 1)):
                    out.append([w])
                elif lab == i:
                    out[-1].append(w)
            return out

        def text(span: list[int]) -> str:
            return " ".join(page.words[w].text for w in span)

        if self.cfg.link:
            return answer_questions(page, spans("answer"), keys or []), seconds
        out: dict[str, str | None] = {}
        for key in self.cfg.keys:
            found = spans(key)
            best = max(found, key=lambda s: float(np.mean([word_prob[w] for w in s]))) if found else None
            out[key] = text(best) if best else None
        return out, seconds


def evaluate_peer(model: str | Path, dataset: str | None = None, split: str = "test",
                  data_dir: str | Path | None = None, limit: int | None = None) -> dict:
    """ANLS and field F1 (as ``eval kie``) and model seconds per document, batch size 1, on
    ``dataset`` (default: the one the peer was trained on, the only one it can answer)."""
    ex = PeerExtractor(model)
    dataset = dataset or ex.cfg.dataset
    if ex.cfg.dataset != dataset:
        raise ValueError(f"{model} was trained on {ex.cfg.dataset}, not {dataset}")
    examples = datasets.load(dataset, split, data_dir, limit)
    for e in examples[:2]:  # warm-up
        ex.extract(e.doc.pages[0], list(e.fields))
    scores, seconds, gold_tag_scores = [], [], []
    tp = n_pred = n_gold = 0
    per_key: dict[str, list[float]] = {}
    for e in tqdm(examples, desc=f"eval peer {dataset}", leave=False, mininterval=5):
        keys = list(e.fields) if ex.cfg.link else list(ex.cfg.keys)
        if not keys:
            continue
        pred, s = ex.extract(e.doc.pages[0], keys)
        seconds.append(s)
        if ex.cfg.link:  # the linking rule alone: the same questions with the annotated answers
            gold_spans = [idx for label, idx in e.entities if label == "answer"]
            linked = answer_questions(e.doc.pages[0], gold_spans, keys)
            gold_tag_scores += [anls(linked[k], e.fields[k]) for k in keys]
        for k in keys:
            gold = e.fields.get(k)
            score = anls(pred[k], gold)
            scores.append(score)
            per_key.setdefault("answer" if ex.cfg.link else k, []).append(score)  # as eval kie reports FUNSD
            a, b, c = match_counts(pred[k], gold)
            tp, n_pred, n_gold = tp + a, n_pred + b, n_gold + c
    mean_s = float(np.mean(seconds)) if seconds else 0.0
    return {"peer": "LayoutLMv3ForTokenClassification (BIO)", "model": str(model), "dataset": dataset,
            "split": split, "n_docs": len(seconds), "anls": 100 * float(np.mean(scores)) if scores else 0.0,
            "f1": 100 * f1_from_counts(tp, n_pred, n_gold),
            "per_key": {k: 100 * float(np.mean(v)) for k, v in per_key.items()},
            "linking_with_gold_tags_anls": 100 * float(np.mean(gold_tag_scores)) if gold_tag_scores else None,
            "seconds_per_doc": mean_s, "parameters": sum(p.numel() for p in ex.model.parameters()),
            "train": json.loads((Path(model) / "peer.json").read_text())}
