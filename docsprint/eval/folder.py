"""Evaluation as users meet it: their own files, and page images re-read by our own OCR.

``docsprint eval kie --data DIR`` scores a folder of documents with a ``truth.jsonl`` (one line
per document: ``{"file": NAME, "fields": {key: value}}``, the layout of
``../shared/data/realworld-dev``), or a folder of such folders. Each document is read as
``extract`` reads it (PDF text layer and form fields, else OCR), asked the keys its truth
names, and every value is compared by `docsprint.eval.values.value_match` (dates as dates,
amounts as numbers, names by containment). Checkbox fields (``selected``/``unselected``) are
counted apart: the model reads text, not ticks.

``--ocr rapidocr|tesseract`` with ``--dataset`` re-reads each page image with that engine
instead of the dataset's own OCR (cached under ``runs/cache/ocr``), the end-to-end number.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from docsprint.data.datasets import Example
from docsprint.data.store import read_jsonl, write_jsonl
from docsprint.eval.confidence import confidence_report
from docsprint.eval.values import CHECKBOX, kind_of, value_match
from docsprint.io.document import Document, Page
from docsprint.io.ocr import get_engine, reading_order
from docsprint.io.readers import DocumentError
from docsprint.pipeline import Extractor


class FolderError(ValueError):
    """A --data folder without truth.jsonl, or a truth file that cannot be read."""


def truth_files(root: str | Path) -> list[Path]:
    """``root/truth.jsonl``, else every ``root/*/truth.jsonl``."""
    root = Path(root)
    if (root / "truth.jsonl").is_file():
        return [root / "truth.jsonl"]
    found = sorted(root.glob("*/truth.jsonl"))
    if not found:
        raise FolderError(f"{root}: no truth.jsonl in it or in its sub-folders")
    return found


def read_truth(path: Path) -> list[tuple[Path, dict[str, str]]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out.append((path.parent / rec["file"], {str(k): str(v) for k, v in rec["fields"].items()}))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise FolderError(f"{path}:{n}: not a truth line ({e})") from None
    return out


def evaluate_folder(root: str | Path, ex: Extractor, mode: str = "parallel", limit: int | None = None) -> dict:
    """Value match (share of truth fields answered right) overall, per key, per kind of value
    and per sub-folder; every prediction with its confidence."""
    docs = [d for f in truth_files(root) for d in read_truth(f)][:limit]
    rows: list[dict[str, Any]] = []
    per_key: dict[str, list[int]] = {}
    per_kind: dict[str, list[int]] = {}
    per_source: dict[str, list[int]] = {}
    checkbox = [0, 0]
    seconds = ocr_seconds = 0.0
    truncated = n_pred = 0
    errors = []
    records: list[tuple[float, bool]] = []
    for path, truth in tqdm(docs, desc=f"eval {Path(root).name} {mode}", leave=False, mininterval=5):
        keys = [k for k, v in truth.items() if v not in CHECKBOX]
        checkbox[1] += len(truth) - len(keys)
        if not keys:
            continue
        try:
            out = ex.extract(path, keys, mode)
        except DocumentError as e:
            errors.append(str(e))
            continue
        seconds += out.model_seconds
        ocr_seconds += out.ocr_seconds
        row: dict[str, Any] = {"file": str(path), "fields": {}}
        for k in keys:
            got = out.fields[k]
            ok = value_match(got.value, truth[k], k)
            kind = kind_of(k, truth[k])
            for table, name in ((per_key, k), (per_kind, kind), (per_source, path.parent.name)):
                table.setdefault(name, [0, 0])
                table[name][0] += ok
                table[name][1] += 1
            n_pred += got.value is not None
            truncated += not got.complete
            records.append((got.confidence, ok))
            row["fields"][k] = {"pred": got.value, "gold": truth[k], "match": ok, "kind": kind,
                                "confidence": round(got.confidence, 4), "complete": got.complete}
        rows.append(row)
    right = sum(v[0] for v in per_key.values())
    total = sum(v[1] for v in per_key.values())

    def share(table: dict[str, list[int]]) -> dict[str, dict[str, float]]:
        return {k: {"value_match": 100 * a / b, "fields": b} for k, (a, b) in sorted(table.items())}

    return {
        "data": str(root),
        "mode": mode,
        "n_docs": len(rows),
        "n_fields": total,
        "value_match": 100 * right / max(total, 1),
        "answered": 100 * n_pred / max(total, 1),
        "truncated_values": truncated,
        "checkbox_fields_skipped": checkbox[1],
        "reasked_keys": ex.reasked,
        "confidence": {**confidence_report(records), "calibrated": bool(ex.calibrate and ex.model.cfg.calibration)},
        "per_source": share(per_source),
        "per_kind": share(per_kind),
        "per_key": share(per_key),
        "seconds_per_doc": seconds / max(len(rows), 1),
        "ocr_seconds_per_doc": ocr_seconds / max(len(rows), 1),
        "errors": errors,
        "predictions": rows,
    }


def score_labelled(examples: list[Example], ex: Extractor, mode: str = "parallel") -> dict:
    """Value match on documents already read (a labels folder's dev documents): each key's
    prediction against its label (list values: every item), `value_match`'s rules."""
    right = total = 0
    per_key: dict[str, list[int]] = {}
    for e in examples:
        keys = [k for k, v in e.fields.items() if v is not None]
        if not keys:
            continue
        lists = frozenset(k for k in keys if isinstance(e.fields[k], list))
        out = ex.extract(e.doc, keys, mode, lists)
        for k in keys:
            gold = e.fields[k]
            golds = gold if isinstance(gold, list) else [gold]
            pred = out.fields[k].value
            for g in golds:
                ok = value_match(pred, str(g), k)
                right, total = right + ok, total + 1
                per_key.setdefault(k, [0, 0])
                per_key[k][0] += ok
                per_key[k][1] += 1
    return {"value_match": 100 * right / max(total, 1), "fields": total,
            "per_key": {k: round(100 * a / b, 1) for k, (a, b) in sorted(per_key.items())}}


def format_folder(result: dict) -> str:
    lines = [f"{result['data']}  {result['mode']}: {result['n_docs']} documents, {result['n_fields']} fields, "
             f"value match {result['value_match']:.1f}%  (answered {result['answered']:.0f}%, "
             f"truncated {result['truncated_values']}, model {result['seconds_per_doc']:.3f} s/doc, "
             f"reading {result['ocr_seconds_per_doc']:.2f} s/doc)"]
    conf = result["confidence"]
    lines.append(f"    confidence: ECE {conf['ece']:.3f}" + "".join(
        f", >={r['threshold']:g}: {r['coverage']:.0f}% at {r['accuracy']:.0f}%" for r in conf["risk_coverage"]
        if r["accuracy"] is not None and r["threshold"] in (0.5, 0.9)))
    for title in ("per_source", "per_kind"):
        for k, v in result[title].items():
            lines.append(f"    {k:<40}{v['value_match']:>7.1f}%  of {v['fields']}")
    for e in result["errors"]:
        lines.append(f"    error: {e}")
    return "\n".join(lines)


def reocr(examples: list[Example], dataset: str, split: str, engine: str) -> list[Example]:
    """The same examples with each page's words re-read from its image by ``engine`` (RapidOCR
    or Tesseract) instead of the dataset's OCR; cached per dataset, split, engine and settings."""
    from docsprint.data.corpus import cache_dir

    folder = cache_dir() / "ocr" / f"{dataset}-{split}"
    name = getattr(get_engine(engine), "cache_name", engine)  # RapidOCR: its settings too
    done: dict[str, list[Page]] = {}
    if (folder / f"{name}.jsonl").is_file():
        done = {doc_id: doc.pages for doc_id, doc, _ in read_jsonl(folder, name)}
        for pages in done.values():  # in today's reading order, whatever order was cached
            for page in pages:
                page.words = reading_order(page.words)
    todo = [e for e in examples if e.id not in done]
    for e in tqdm(todo, desc=f"OCR {dataset} {split} ({engine}, cached once)", mininterval=5):
        pages = []
        for page in e.doc.pages:
            image = page.get_image()
            if image is None:
                raise FolderError(f"{e.id}: a page without an image cannot be re-read by OCR")
            words = get_engine(engine)(image)
            pages.append(Page(None, image.width, image.height, words, image_path=page.image_path))
        done[e.id] = pages
    if todo:
        write_jsonl(((k, Document(p, source=k), {}) for k, p in done.items()), folder, name)
    return [Example(Document(done[e.id], source=e.id), e.fields) for e in examples]
