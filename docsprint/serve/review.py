"""Review mode: a person checks the model's answers on a folder of documents and corrects them;
the corrections become labels for the next fine-tune.

``docsprint serve --review DIR --review-keys "invoice number,total"`` adds to the web page a
review panel over every image and PDF under ``DIR``: the model's answer for each key is drawn on
the page, every word is clickable. A person accepts an answer, clicks words to make the value
those words, or types a value (one the page does not show), and saves. Each saved document is a
record of ``docsprint.data.labels``'s format in the labels folder (default ``DIR/labels``):
the same ``train.jsonl`` that ``docsprint data import`` writes and ``docsprint train kie --data``
reads. Pages are read once and kept there (``.pages``, ``images/``).

The HTTP side: ``GET /v1/review`` (the documents and the keys), ``GET /v1/review/{i}`` (document
``i``'s pages, words and answers: the saved label where there is one, else the model's),
``GET /v1/review/{i}/page/{p}`` (a page image) and ``POST /v1/review/{i}`` (save its fields).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from docsprint.data.labels import (
    LABELS_FILE,
    Labelled,
    Placement,
    label_record,
    read_pages,
    read_records,
    write_labels,
)
from docsprint.errors import DocsprintError
from docsprint.io.document import Box, Document, Page
from docsprint.io.limits import DEFAULT_LIMITS, Limits
from docsprint.io.readers import sha256_file

SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"}


class ReviewError(DocsprintError):
    """A review request that cannot be served: an unknown document, fields that are not valid."""


@dataclass
class ReviewConfig:
    folder: Path
    keys: list[str]
    out: Path | None = None  # the labels folder (default folder/labels)
    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)

    def __post_init__(self) -> None:
        if not self.folder.is_dir():
            raise ReviewError(f"{self.folder}: not a folder of documents to review")
        if not self.keys:
            raise ReviewError("review needs the keys to ask (--review-keys)")
        self.out = self.out or self.folder / "labels"


def _inside(word_box: Box, boxes: list) -> bool:
    cx, cy = (word_box[0] + word_box[2]) / 2, (word_box[1] + word_box[3]) / 2
    return any(b[0] - 1 <= cx <= b[2] + 1 and b[1] - 1 <= cy <= b[3] + 1 for b in boxes)


class Review:
    """The documents under review, their pages (read once) and the labels file."""

    def __init__(self, cfg: ReviewConfig, ocr: str = "rapidocr"):
        self.cfg, self.ocr = cfg, ocr
        assert cfg.out is not None
        self.out = cfg.out
        out = self.out.resolve()
        self.files = sorted(p for p in cfg.folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                            and not p.resolve().is_relative_to(out))
        if not self.files:
            raise ReviewError(f"{cfg.folder}: no images or PDFs to review")
        self.lock = threading.Lock()  # one writer of train.jsonl at a time
        self._pages: dict[int, tuple[str, list[Page]]] = {}

    def doc_id(self, i: int) -> str:
        """The record id: the file's path under the folder, without its suffix."""
        return str(self.files[i].relative_to(self.cfg.folder).with_suffix(""))

    def saved(self) -> dict[str, dict]:
        if not (self.out / LABELS_FILE).is_file():
            return {}
        return {r["id"]: r for r in read_records(self.out)}

    def listing(self) -> dict:
        done = self.saved()
        return {"keys": self.cfg.keys, "labels": str(self.out / LABELS_FILE),
                "documents": [{"index": i, "file": str(f.relative_to(self.cfg.folder)),
                               "reviewed": self.doc_id(i) in done} for i, f in enumerate(self.files)]}

    def check(self, i: int) -> None:
        if not 0 <= i < len(self.files):
            raise ReviewError(f"no document {i} (there are {len(self.files)})")

    def pages(self, i: int) -> tuple[str, list[Page]]:
        """The document's sha256 and pages (words, a saved image each); read on first use."""
        self.check(i)
        if i not in self._pages:
            sha = sha256_file(self.files[i])
            self._pages[i] = sha, read_pages(Labelled(self.files[i], {}), self.out, sha, self.ocr, self.cfg.limits)
        return self._pages[i]

    def page_image(self, i: int, p: int) -> Path:
        pages = self.pages(i)[1]
        if not 0 <= p < len(pages) or pages[p].image_path is None:
            raise ReviewError(f"document {i} has no page image {p}")
        return Path(pages[p].image_path)  # type: ignore[arg-type]

    def document(self, i: int) -> Document:
        return Document(self.pages(i)[1], source=str(self.files[i]))

    def view(self, i: int, answers: dict | None) -> dict:
        """Pages, words and each key's answer: the saved label, else the model's (``answers``,
        the Extraction's fields as dicts), with the words it covers."""
        _, pages = self.pages(i)
        record = self.saved().get(self.doc_id(i))
        fields = {}
        for key in self.cfg.keys:
            if record is not None and key in record.get("labels", {}):
                placed = record["labels"][key]
                first = placed[0] if placed else None
                fields[key] = {"value": first["value"] if first else None, "page": first.get("page") if first else None,
                               "words": first.get("words", []) if first and first.get("page") is not None else [],
                               "confidence": None, "source": "saved"}
            elif answers is not None and key in answers:
                a = answers[key]
                value = " ".join(a["value"]) if isinstance(a["value"], list) else a["value"]
                p = a.get("page", 0) or 0
                words = ([j for j, w in enumerate(pages[p].words) if _inside(w.box, a["boxes"])]
                         if value is not None and p < len(pages) else [])
                fields[key] = {"value": value, "page": p if value is not None else None, "words": words,
                               "confidence": a["confidence"], "source": "model"}
            else:
                fields[key] = {"value": None, "page": None, "words": [], "confidence": None, "source": "none"}
        return {"index": i, "file": str(self.files[i].relative_to(self.cfg.folder)), "count": len(self.files),
                "reviewed": record is not None,
                "pages": [{"width": pg.width, "height": pg.height, "image": f"/v1/review/{i}/page/{n}",
                           "words": [[w.text, *(round(c, 1) for c in w.box)] for w in pg.words]}
                          for n, pg in enumerate(pages)],
                "fields": fields}

    def save(self, i: int, fields: dict | None) -> dict:
        """Write document ``i``'s labels: ``{key: {"value": str | None, "page": int | None,
        "words": [indices]}}`` (words given: the value is placed on them)."""
        sha, pages = self.pages(i)
        if not isinstance(fields, dict):
            raise ReviewError("fields must be an object {key: {value, page, words}}")
        labels: dict[str, list[Placement]] = {}
        for key, f in fields.items():
            if not isinstance(f, dict):
                raise ReviewError(f"{key}: expected {{value, page, words}}")
            value = f.get("value")
            if value is None or not str(value).strip():
                labels[str(key)] = []  # no value on this document: the model must answer null
                continue
            value = str(value).strip()
            words, p = f.get("words") or [], f.get("page")
            if words:
                if not isinstance(p, int) or not 0 <= p < len(pages):
                    raise ReviewError(f"{key}: words given without a valid page")
                if not all(isinstance(j, int) and 0 <= j < len(pages[p].words) for j in words):
                    raise ReviewError(f"{key}: word indices outside page {p}")
                words = sorted(set(words))
                labels[str(key)] = [Placement(value, p, words, " ".join(pages[p].words[j].text for j in words), 1.0)]
            else:
                labels[str(key)] = [Placement(value)]  # typed: a value the page does not show as words
        record = label_record(self.doc_id(i), self.files[i].absolute(), sha, pages, self.out, labels,
                              {k: False for k in labels})
        record["reviewed"] = True
        with self.lock:
            records = [r for r in (read_records(self.out) if (self.out / LABELS_FILE).is_file() else [])
                       if r["id"] != record["id"]]
            records.append(record)
            write_labels(self.out, records)
        return {"saved": record["id"], "reviewed": len(records), "labels": str(self.out / LABELS_FILE)}
