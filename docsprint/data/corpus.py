"""Pages for mask pre-training: text with boxes (and an image where there is one), no labels.

Sources (each optional, each capped by a limit):
- ``wildreceipt-unlabelled``: the 1296 unlabelled receipt photos, OCR'd once with RapidOCR;
  the result is cached (``$DOCSPRINT_CACHE/wildreceipt-unlabelled``);
- ``tobacco3482``: the OCR text of the *train* split only (val/test are the classification
  benchmark's); no images, so each line is laid out by its order on the page;
- ``kleister-nda``: the train contracts' PDF text layers;
- ``sroie``, ``funsd``, ``wildreceipt``: their train splits' pages (labels unused);
- ``synth``: a folder written by ``docsprint synth``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from docsprint.data import datasets
from docsprint.data.kleister import cache_dir
from docsprint.data.store import read_jsonl, write_jsonl
from docsprint.io.document import Document, Page, Word

SOURCES = ("wildreceipt-unlabelled", "tobacco3482", "kleister-nda", "sroie", "funsd", "wildreceipt", "synth")


def text_page(lines: list[str], char_width: float = 10.0, line_height: float = 20.0) -> Page:
    """A page without an image from plain text: word boxes from the line order and character
    offsets, as a monospaced printout of the text would place them."""
    words: list[Word] = []
    for i, line in enumerate(lines):
        col = 0
        for token in line.split(" "):
            if token:
                x0 = 20 + col * char_width
                words.append(Word(token, (x0, 20 + i * line_height, x0 + len(token) * char_width,
                                          20 + i * line_height + line_height * 0.8)))
            col += len(token) + 1
    width = 40 + char_width * max((len(line) for line in lines), default=1)
    return Page(None, int(width), int(40 + line_height * max(len(lines), 1)), words)


def tobacco_pages(root: Path, split: str = "train", limit: int | None = None) -> list[Page]:
    """Tobacco-3482 OCR text of one split (labels.csv), one text page per document."""
    pages = []
    with open(root / "labels.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["split"] != split:
                continue
            text = (root / row["text_path"]).read_text(encoding="utf-8", errors="replace")
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                pages.append(text_page(lines))
            if limit is not None and len(pages) >= limit:
                break
    return pages


def unlabelled_receipts(root: Path, limit: int | None = None, ocr: str = "rapidocr") -> list[Page]:
    """The unlabelled WildReceipt photos, OCR'd once (cached; a larger limit OCRs the rest)."""
    from tqdm import tqdm

    from docsprint.io.readers import read_document

    images = sorted((root / "unlabelled").glob("*.jpg"))[:limit]
    cache = cache_dir() / "wildreceipt-unlabelled"
    done: dict[str, Page] = {}
    if (cache / f"{ocr}.jsonl").is_file():
        done = {doc_id: doc.pages[0] for doc_id, doc, _ in read_jsonl(cache, ocr)}
    todo = [p for p in images if p.name not in done]
    for path in tqdm(todo, desc=f"OCR unlabelled receipts ({ocr}, cached once)", mininterval=5):
        page = read_document(path, ocr=ocr).pages[0]
        page.image, page.image_path = None, str(path)
        done[path.name] = page
    if todo:
        write_jsonl(((k, Document([p], source=k), {}) for k, p in done.items()), cache, ocr)
    return [done[p.name] for p in images]


def load_corpus(sources: list[str], limits: dict[str, int] | None = None,
                data_dir: dict[str, str] | None = None, split: str = "train") -> dict[str, list[Page]]:
    """Pages per source; ``limits`` caps a source, ``data_dir`` overrides a dataset folder.
    ``split`` other than train (held-out pages, to measure the objective) applies to datasets."""
    limits, data_dir = limits or {}, data_dir or {}
    out: dict[str, list[Page]] = {}
    for src in sources:
        limit = limits.get(src)
        if src == "wildreceipt-unlabelled" and split == "train":
            out[src] = unlabelled_receipts(datasets.data_dir("wildreceipt", data_dir.get("wildreceipt")), limit)
        elif src == "tobacco3482":
            out[src] = tobacco_pages(datasets.data_dir(src, data_dir.get(src)), split if split != "test" else "val", limit)
        elif src in datasets.LOADERS:
            examples = datasets.load(src, split, data_dir.get(src), limit)
            out[src] = [p for e in examples for p in e.doc.pages if p.words]
        else:
            raise ValueError(f"unknown pre-training source {src!r} (known: {', '.join(SOURCES)})")
    return out
