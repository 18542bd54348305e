"""docsprint's own dataset format: one JSON object per document in ``FOLDER/SPLIT.jsonl``.

Synthetic documents (`docsprint synth`) and cached OCR / PDF text (pre-training corpus,
Kleister-NDA) are written in it, and the ``synth`` dataset reads any folder of it::

    {"id": "receipt-000001",
     "pages": [{"image": "images/receipt-000001.jpg", "width": 600, "height": 900,
                "words": [["TOTAL", 40, 700, 120, 724], ...]}],
     "fields": {"total": "12.50", "item": ["Tea", "Cake"], "tip": null}}

Image paths are relative to the folder (or null for a page without an image); word boxes are
pixels of that image. Files are written to a temporary name and renamed, so a reader never
sees half a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from docsprint.io.document import Document, Page, Word

Fields = dict[str, str | list[str] | None]


def page_record(page: Page, folder: Path) -> dict:
    image = None
    if page.image_path is not None:
        p = Path(page.image_path)
        image = str(p.relative_to(folder)) if p.is_relative_to(folder) else str(p)
    return {
        "image": image,
        "width": page.width,
        "height": page.height,
        "words": [[w.text, *(round(c, 1) for c in w.box)] for w in page.words],
    }


def write_jsonl(records: Iterable[tuple[str, Document, Fields]], folder: str | Path, split: str) -> Path:
    """Write (id, document, fields) records to ``folder/split.jsonl``; page images must already
    be files (``Page.image_path``) inside or outside the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.jsonl"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for doc_id, doc, fields in records:
            rec = {"id": doc_id, "pages": [page_record(p, folder) for p in doc.pages], "fields": fields}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def read_jsonl(folder: str | Path, split: str) -> Iterator[tuple[str, Document, Fields]]:
    """The records of ``folder/split.jsonl``; images are read lazily when a page needs one."""
    folder = Path(folder)
    path = folder / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                pages = []
                for p in rec["pages"]:
                    words = [Word(str(w[0]), (float(w[1]), float(w[2]), float(w[3]), float(w[4]))) for w in p["words"]]
                    image = str(folder / p["image"]) if p.get("image") else None
                    pages.append(Page(None, int(p["width"]), int(p["height"]), words, image_path=image))
                doc_id = str(rec["id"])
            except (KeyError, TypeError, ValueError, IndexError) as e:
                raise ValueError(f"{path}:{n}: not a docsprint record ({e})") from None
            yield doc_id, Document(pages, source=doc_id), rec.get("fields") or {}
