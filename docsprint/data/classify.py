"""Document-type classification data: pages with a class label, and their model inputs.

Sources (``load_pages(name, split)``):

- ``tobacco3482``: Tobacco-3482's OCR text (10 types, splits from labels.csv). There are no
  images: each page is laid out from its line order (`docsprint.data.corpus.text_page`) and
  goes through the model without patches.
- ``doctypes``: real page images labelled by the dataset they come from: receipts (SROIE,
  WildReceipt), forms (FUNSD), contracts (first page of each Kleister-NDA PDF), plus
  synthetic invoices and letters (`docsprint.data.synth`). The labels say where a page came
  from, not what a person judged it to be.
- any folder laid out one sub-folder per class (RVL-CDIP style), ``DIR/CLASS/*`` or
  ``DIR/SPLIT/CLASS/*``: images and PDFs, read and OCR'd by `docsprint.io.readers`.

``train`` and ``val`` are disjoint; where a source has no val split, every 8th training page
(by a hash of its id) is val.
"""

from __future__ import annotations

import csv
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

from docsprint.data import datasets
from docsprint.data.corpus import text_page
from docsprint.data.encode import Encoded, collate, encode, page_pixels, tokenize_page
from docsprint.io.document import Page
from docsprint.models.classifier import ClassifierConfig, PageBatch

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".pdf")


@dataclass
class LabelledPage:
    id: str
    page: Page
    label: str


def is_val(page_id: str) -> bool:
    return hashlib.sha256(page_id.encode()).digest()[0] % 8 == 0


def _keep(page_id: str, split: str) -> bool:
    """Train/val carved out of a source's train split."""
    return is_val(page_id) == (split == "val")


def load_tobacco(root: Path, split: str, limit: int | None = None) -> list[LabelledPage]:
    labels = root / "labels.csv"
    if not labels.is_file():
        raise datasets.DatasetError(f"tobacco3482: {labels} not found")
    with open(labels, encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if row["split"] == split]
    if limit is not None:  # a sample of every class, not the first classes of the file
        rows = sorted(random.Random(0).sample(rows, min(limit, len(rows))), key=lambda r: r["text_path"])
    out = []
    for row in rows:
        text = (root / row["text_path"]).read_text(encoding="utf-8", errors="replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        out.append(LabelledPage(row["text_path"], text_page(lines or [""]), row["label"]))
    return out


def load_doctypes(split: str, data_dir: str | Path | None = None, limit: int | None = None) -> list[LabelledPage]:
    """Real and synthetic page images by type; ``limit`` pages per class at most."""
    from docsprint.data.synth import make_document

    per_class = limit or 10**9
    source_split = "test" if split == "test" else "train"
    out: list[LabelledPage] = []
    root = Path(data_dir) if data_dir else None
    sources = [("receipt", "sroie"), ("receipt", "wildreceipt"), ("form", "funsd"), ("contract", "kleister-nda")]
    counts: dict[str, int] = {}
    for label, name in sources:
        share = per_class if label != "receipt" else (per_class + 1) // 2
        got = 0
        for ex in datasets.load(name, source_split, root / name if root else None):
            page_id = f"{name}/{ex.doc.source}"
            if split != "test" and not _keep(page_id, split):
                continue
            out.append(LabelledPage(page_id, ex.doc.pages[0], label))
            got += 1
            if got >= share or counts.get(label, 0) + got >= per_class:
                break
        counts[label] = counts.get(label, 0) + got
    n_synth = min(per_class, 200 if split == "train" else 60)
    seed = {"train": 11, "val": 12, "test": 13}[split]
    for kind in ("invoice", "letter"):
        for i in range(n_synth):
            image, words, _ = make_document(kind, seed, i)
            out.append(LabelledPage(f"synth/{kind}/{seed}/{i}", Page(image, image.width, image.height, words), kind))
    return out


def load_folder(root: Path, split: str, ocr: str = "rapidocr", limit: int | None = None) -> list[LabelledPage]:
    """``root/CLASS/file`` (every split reads it all) or ``root/SPLIT/CLASS/file``."""
    from docsprint.io.readers import read_document

    base = root / split if (root / split).is_dir() else root
    classes = sorted(d for d in base.iterdir() if d.is_dir() and d.name not in SPLITS)
    if not classes:
        raise datasets.DatasetError(f"{base}: no class sub-folders")
    out = []
    for d in classes:
        files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)[:limit]
        for f in files:
            doc = read_document(f, ocr=ocr)
            out.append(LabelledPage(str(f.relative_to(root)), doc.pages[0], d.name))
    return out


def load_pages(name: str, split: str, data_dir: str | Path | None = None, limit: int | None = None,
               ocr: str = "rapidocr") -> list[LabelledPage]:
    """Labelled pages of a source: ``tobacco3482``, ``doctypes`` or a folder path."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}")
    if name == "tobacco3482":
        root = Path(data_dir) if data_dir else datasets.data_dir("tobacco3482")
        return load_tobacco(root, split, limit)
    if name == "doctypes":
        return load_doctypes(split, data_dir, limit)
    if Path(name).is_dir():
        return load_folder(Path(name), split, ocr, limit)
    raise datasets.DatasetError(f"unknown classification data {name!r}: tobacco3482, doctypes or a folder")


def encode_page(tok: Tokenizer, cfg: ClassifierConfig, page: Page) -> Encoded:
    """``[CLS]`` + the first ``max_tokens`` pieces of the page + ``[SEP]``, with its image."""
    doc = tokenize_page(tok, page)
    n = cfg.max_tokens
    while n < len(doc.ids) and n > 1 and doc.word_index[n] == doc.word_index[n - 1]:
        n -= 1  # never cut a word in half
    doc = type(doc)(doc.ids[:n], doc.bbox[:n], doc.word_index[:n], doc.char_span[:n])
    return encode(tok, cfg.encoder, doc, [], pixels=page_pixels(page.get_image(), cfg.encoder))


def collate_pages(items: list[Encoded], labels: list[int] | None = None) -> PageBatch:
    """Pad pages into a batch; pages without an image get blank patches that nobody attends."""
    tokens = collate(items).tokens
    has = torch.tensor([e.pixels is not None for e in items])
    pixels = None
    if has.any():
        like = next(e.pixels for e in items if e.pixels is not None)
        pixels = torch.stack([e.pixels if e.pixels is not None else torch.zeros_like(like) for e in items])
    return PageBatch(tokens, pixels, has, None if labels is None else torch.tensor(labels))
