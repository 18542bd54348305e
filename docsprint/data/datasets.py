"""Loaders for the key-value datasets in ../shared/data (see its README for the layouts).

Every loader returns `Example`s: a `Document` (the dataset's own OCR, image read lazily) and
the ground-truth value of each key (a string, a list of strings for repeated fields, or None).

``NAME@ENGINE`` (``sroie@rapidocr``) is a second view of a dataset: its page images re-read by
our own OCR (cached), each value placed on the new words and spelt as they read, so that a
model trains on the OCR users will run, not only on the dataset's.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from docsprint.data.kleister import LIST_KEYS as KLEISTER_LISTS
from docsprint.io.document import Document, Page, Word, quad_to_box, split_line

DATASETS = ("sroie", "funsd", "wildreceipt", "kleister-nda", "synth", "labels")
SROIE_KEYS = ["company", "date", "address", "total"]
# WildReceipt's 12 value classes (``CLASS_value``) and the free-text key each is asked as.
WILDRECEIPT_KEYS = {
    "Store_name": "store name", "Store_addr": "store address", "Tel": "phone", "Date": "date",
    "Time": "time", "Prod_item": "item", "Prod_quantity": "item quantity",
    "Prod_price": "item price", "Subtotal": "subtotal", "Tax": "tax", "Tips": "tips", "Total": "total",
}
WILDRECEIPT_LISTS = frozenset({"item", "item quantity", "item price"})  # one per line item


@dataclass
class Example:
    doc: Document
    fields: dict[str, str | list[str] | None]
    # (label, indices of its words on the first page) where the dataset annotates entities
    # (FUNSD's question / answer / header / other); the peer's tagging learns from them.
    entities: list[tuple[str, list[int]]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.doc.source


class DatasetError(ValueError):
    """A dataset folder that is missing or not laid out as expected."""


def base_dataset(dataset: str) -> str:
    """The dataset a second view reads: ``sroie@rapidocr`` -> ``sroie`` (``sroie`` -> itself)."""
    return dataset.partition("@")[0]


def data_dir(dataset: str, given: str | Path | None = None) -> Path:
    """``given``, else $DOCSPRINT_DATA/<dataset>, else ../shared/data/<dataset>."""
    dataset = base_dataset(dataset)
    if given:
        path = Path(given)
    elif os.environ.get("DOCSPRINT_DATA"):
        path = Path(os.environ["DOCSPRINT_DATA"]) / dataset
    else:
        path = Path(__file__).resolve().parents[2].parent / "shared" / "data" / dataset
    if not path.is_dir():
        raise DatasetError(f"{dataset}: data folder {path} does not exist (use --data-dir)")
    return path


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def load_sroie(root: Path, split: str) -> Iterator[Example]:
    """SROIE: ``split/boxes/ID.csv`` OCR lines, ``split/keys/ID.json`` the four keys."""
    base = root / split
    if not (base / "boxes").is_dir():
        raise DatasetError(f"sroie: {base}/boxes not found (splits: train, test)")
    for csv_path in sorted((base / "boxes").glob("*.csv")):
        sid = csv_path.stem
        img = base / "images" / f"{sid}.jpg"
        words: list[Word] = []
        with open(csv_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\r\n").split(",", 8)
                if len(parts) < 9 or not parts[8].strip():
                    continue
                box = quad_to_box([float(v) for v in parts[:8]])
                words.extend(split_line(parts[8], box))
        keys = json.loads((base / "keys" / f"{sid}.json").read_text(encoding="utf-8"))
        w, h = _size(img)
        page = Page(image=None, width=w, height=h, words=words, image_path=str(img))
        fields = {k: (keys.get(k) or None) for k in SROIE_KEYS}
        yield Example(Document([page], source=f"sroie/{split}/{sid}"), fields)


def load_funsd(root: Path, split: str) -> Iterator[Example]:
    """FUNSD: each question linked to an answer gives key = question text, value = answer."""
    folder = {"train": "training_data", "test": "testing_data"}.get(split, split)
    base = root / folder
    if not (base / "annotations").is_dir():
        raise DatasetError(f"funsd: {base}/annotations not found (splits: train, test)")
    for ann_path in sorted((base / "annotations").glob("*.json")):
        form = json.loads(ann_path.read_text(encoding="utf-8"))["form"]
        img = base / "images" / f"{ann_path.stem}.png"
        words: list[Word] = []
        entities: list[tuple[str, list[int]]] = []
        for ent in form:
            first = len(words)
            words += [Word(w["text"], tuple(w["box"])) for w in ent["words"] if w["text"].strip()]
            if len(words) > first:
                entities.append((ent["label"], list(range(first, len(words)))))
        by_id = {ent["id"]: ent for ent in form}
        fields: dict[str, str | list[str] | None] = {}
        for ent in form:
            if ent["label"] != "question" or not ent["text"].strip():
                continue
            answers = []
            for a, b in ent.get("linking", []):
                other = by_id.get(b if a == ent["id"] else a)
                if other is not None and other["label"] == "answer" and other["text"].strip():
                    answers.append(other["text"].strip())
            if answers:
                fields[ent["text"].strip()] = " ".join(answers)
        w, h = _size(img)
        page = Page(image=None, width=w, height=h, words=words, image_path=str(img))
        yield Example(Document([page], source=f"funsd/{split}/{ann_path.stem}"), fields, entities)


def load_wildreceipt(root: Path, split: str) -> Iterator[Example]:
    """WildReceipt: the 12 ``*_value`` classes; Prod_item/quantity/price are lists."""
    path = root / f"{split}.jsonl"
    if not path.is_file():
        raise DatasetError(f"wildreceipt: {path} not found (splits: train, test)")
    names = dict(enumerate((root / "class_list.txt").read_text().split()))  # line N = label N
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        words: list[Word] = []
        values: dict[str, list[str]] = {}
        for ann in rec["annotations"]:
            text = ann["text"].strip()
            if not text:
                continue
            words.extend(split_line(text, quad_to_box([float(v) for v in ann["box"]])))
            label = names.get(int(ann["label"]), "")
            if label.endswith("_value"):
                values.setdefault(WILDRECEIPT_KEYS[label[: -len("_value")]], []).append(text)
        fields: dict[str, str | list[str] | None] = {}
        for k in WILDRECEIPT_KEYS.values():
            vs = values.get(k)
            if vs and k not in WILDRECEIPT_LISTS:  # a total printed twice is one value, not "$9.93 $9.93"
                once: dict[str, str] = {}
                for v in vs:
                    once.setdefault("".join(v.split()).casefold(), v)
                vs = list(once.values())
            fields[k] = (vs if k in WILDRECEIPT_LISTS else " ".join(vs)) if vs else None
        img = root / rec["file_name"]
        page = Page(image=None, width=int(rec["width"]), height=int(rec["height"]), words=words, image_path=str(img))
        yield Example(Document([page], source=f"wildreceipt/{split}/{Path(rec['file_name']).stem}"), fields)


def load_kleister_nda(root: Path, split: str) -> Iterator[Example]:
    """Kleister-NDA contracts (multi-page PDFs, text layer cached): see `docsprint.data.kleister`."""
    from docsprint.data.kleister import load_kleister

    try:
        for doc, fields in load_kleister(root, split):
            yield Example(doc, fields)
    except FileNotFoundError as e:
        raise DatasetError(str(e)) from None


def load_synth(root: Path, split: str) -> Iterator[Example]:
    """A folder in docsprint's own format (``docsprint synth`` writes one): ``root/split.jsonl``.

    Each page's words come in reading order (rows top to bottom, left to right in a row), the
    order in which the PDF and OCR readers give a real page's words, not in the order the
    generator drew them: drawn column by column, a two-column page (a 1099's payer column beside
    its money boxes, a W-9's exemption codes) would teach an order no real page comes in."""
    from docsprint.data.store import read_jsonl
    from docsprint.io.ocr import reading_order

    if not (root / f"{split}.jsonl").is_file():
        raise DatasetError(f"synth: {root / split}.jsonl not found (make one with `docsprint synth`)")
    for doc_id, doc, fields in read_jsonl(root, split):
        doc.source = f"synth/{split}/{doc_id}"
        for page in doc.pages:
            page.words = reading_order(page.words)
        yield Example(doc, fields)


def load_labels(root: Path, split: str) -> Iterator[Example]:
    """A folder of a user's own labels (`docsprint data import` writes one): ``root/train.jsonl``
    in docsprint's format; the dev documents are held out of it by the training run."""
    from docsprint.data.store import read_jsonl

    if not (root / f"{split}.jsonl").is_file():
        raise DatasetError(f"labels: {root / split}.jsonl not found (make it with `docsprint data import`)")
    for doc_id, doc, fields in read_jsonl(root, split):
        doc.source = f"{root.name}/{doc_id}"
        yield Example(doc, fields)


LOADERS = {"sroie": load_sroie, "funsd": load_funsd, "wildreceipt": load_wildreceipt,
           "kleister-nda": load_kleister_nda, "synth": load_synth,
           "labels": load_labels}
LIST_KEYS = {"wildreceipt": WILDRECEIPT_LISTS, "kleister-nda": KLEISTER_LISTS}


def list_keys(dataset: str, example: Example | None = None) -> frozenset[str]:
    """The keys of a dataset whose values are lists (a synthetic example says so itself)."""
    dataset = base_dataset(dataset)
    if example is not None and dataset in ("synth", "labels"):
        return frozenset(k for k, v in example.fields.items() if isinstance(v, list))
    return LIST_KEYS.get(dataset, frozenset())


def load(dataset: str, split: str, root: str | Path | None = None, limit: int | None = None) -> list[Example]:
    """``load("sroie", "test", limit=10)`` -> the first 10 SROIE test examples;
    ``load("sroie@rapidocr", "train")`` -> SROIE train as RapidOCR reads its images."""
    name, _, engine = dataset.partition("@")
    if name not in LOADERS:
        raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    if engine and engine not in OCR_VIEWS:
        raise DatasetError(f"{dataset}: a second view is read by one of {', '.join(OCR_VIEWS)}, not {engine!r}")
    out = []
    folder = data_dir(name, root)
    for ex in LOADERS[name](folder, split):
        out.append(ex)
        if limit is not None and len(out) >= limit:
            break
    if not engine:
        return out
    where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]  # two folders, two caches
    return reread(out, f"{name}-{where}", split, engine)


OCR_VIEWS = ("rapidocr", "tesseract")


def reread(examples: list[Example], dataset: str, split: str, engine: str) -> list[Example]:
    """The examples as ``engine`` reads their page images (cached once per dataset, split and
    engine settings), each value re-spelt as the OCR's words that read as it, where they do
    (`docsprint.data.labels.page_spelling`; a value the OCR misread beyond recognition keeps the
    dataset's spelling)."""
    from docsprint.data.labels import page_spelling
    from docsprint.eval.folder import reocr

    return [Example(ex.doc, page_spelling([w for p in ex.doc.pages for w in p.words], ex.fields))
            for ex in reocr(examples, dataset, split, engine)]

