"""Labels users already have, brought into docsprint's dataset format for fine-tuning.

``docsprint data import FORMAT SRC --out DIR`` reads labels in one of `FORMATS`:

- ``truth``: ``truth.jsonl``, one ``{"file": NAME, "fields": {key: value}}`` per document, values
  only (the layout of ``../shared/data/realworld-dev``);
- ``donut``: Donut's ``metadata.jsonl``, ``{"file_name": NAME, "ground_truth": "{\\"gt_parse\\": ...}"}``;
  nested objects become keys joined by a space ("menu nm"), arrays become list values;
- ``labelstudio``: Label Studio's JSON export of its OCR template (a rectangle, a label and a
  transcription per region; percent coordinates);
- ``funsd``: FUNSD-style annotations (a folder of ``{"form": [...]}`` files, questions linked to
  answers; the annotation's own words are the page's words);
- ``ppocrlabel``: PaddleOCR's PPOCRLabel ``Label.txt`` (``path<TAB>[{"transcription", "points",
  "key_cls"}]``; its lines are the page's words).

Each document is read once, as ``extract`` reads it (PDF text layer, else OCR), and kept in
``DIR/.pages`` by its sha256, so importing again does not read it again. Each value is then
*placed*: found on the page, inside the region the labeller drew where there is one, else by a
fuzzy search over runs of words (dates as dates, amounts as numbers, the rest by edit
similarity). A placed value is the training target in the page's own spelling (the model copies
it); a value not found stays as the source wrote it (the model learns to write it) and is listed
in ``DIR/import-report.json``.

``DIR/train.jsonl`` is `docsprint.data.store`'s format plus, per document, where each value was
placed::

    {"id": "inv-001", "file": "/abs/inv-001.pdf", "sha256": "...", "pages": [...],
     "fields": {"total": "1.234,50"},
     "labels": {"total": [{"value": "1234.50", "page": 0, "words": [41, 42], "text": "1.234,50",
                           "score": 0.97}]}}

The review page (``docsprint serve --review DIR``) reads and writes the same file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from docsprint.errors import DocsprintError
from docsprint.eval.values import CHECKBOX, fold, kind_of, value_match
from docsprint.io.document import Box, Document, Page, Word, split_line

FORMATS = ("truth", "donut", "labelstudio", "funsd", "ppocrlabel")
LABELS_FILE = "train.jsonl"
REPORT_FILE = "import-report.json"
MIN_SCORE = 0.8  # fuzzy placement: below this similarity a value counts as not on the page
TYPED = ("date", "amount", "time", "phone")  # kinds compared by meaning, not by characters


class LabelError(DocsprintError):
    """Labels that cannot be read: a missing file, a line that is not the format."""


@dataclass
class Region:
    """Where a labeller drew a value: a page and a box in that page's pixels (or the words)."""

    page: int
    box: Box | None = None
    words: list[int] | None = None  # indices into the page's words, where the source gives them


@dataclass
class Labelled:
    """One document as a label format describes it."""

    file: Path
    fields: dict[str, str | list[str]]
    regions: dict[str, list[Region]] = field(default_factory=dict)  # key -> one per value
    pages: list[Page] | None = None  # the source's own words (FUNSD, PPOCRLabel), else read


@dataclass
class Placement:
    value: str  # as the labels wrote it
    page: int | None = None  # None: not found on the page
    words: list[int] = field(default_factory=list)
    text: str = ""  # the placed words, as the page spells them
    score: float = 0.0

    def to_dict(self) -> dict:
        if self.page is None:
            return {"value": self.value, "page": None}
        return {"value": self.value, "page": self.page, "words": self.words, "text": self.text,
                "score": round(self.score, 3)}


# ---------------------------------------------------------------- placing values on the page


def find_value(words: list[Word], value: str, key: str) -> tuple[list[int], float] | None:
    """The run of words that best reads as ``value`` (its indices and a 0-1 score), if any run
    scores at least `MIN_SCORE`.

    Runs from two words fewer to two more than the value has are tried. Dates, amounts, times
    and phone numbers also match by meaning ("28/11/2022" is "2022-11-28"), the shortest such
    run first; everything else by edit similarity of the folded text.

    >>> ws = [Word(t, (0, 0, 1, 1)) for t in "Total due : 1.234,50 EUR".split()]
    >>> find_value(ws, "1234.50", "amount due")
    ([3], 0.97)
    """
    from rapidfuzz import fuzz

    target = fold(value)
    if not target:
        return None
    n = len(target.split())
    typed = kind_of(key, value) in TYPED
    folded = [fold(w.text) for w in words]
    best: tuple[list[int], float] | None = None
    for length in range(max(1, n - 2), n + 3):
        for i in range(len(words) - length + 1):
            run = " ".join(f for f in folded[i : i + length] if f)
            if not run:
                continue
            score = fuzz.ratio(run, target) / 100
            if typed and score < 0.97 and any(c.isdigit() for c in run):
                text = " ".join(w.text for w in words[i : i + length])
                if value_match(text, value, key):
                    score = max(score, 0.97 - 0.02 * (length - 1))
            if score >= MIN_SCORE and (best is None or score > best[1]):
                best = (list(range(i, i + length)), round(score, 3))
    if best is None or best[1] < 0.95:  # a value not written as one run: other readings
        for other in (_find_unspaced(folded, target), _find_scattered(words, folded, target)):
            if other is not None and (best is None or other[1] > best[1]):
                best = other
    return best


def _find_scattered(words: list[Word], folded: list[str], target: str) -> tuple[list[int], float] | None:
    """Every token of the value on the page, close together but not in reading order: a
    multi-line address in a form field, whose lines the reading order interleaves with the
    next column. Anchored on the value's rarest token, each other token is its nearest copy;
    the words found must fit in a box a few lines high."""
    tokens = target.split()
    if len(tokens) < 2:
        return None
    where: dict[str, list[int]] = {}
    for i, f in enumerate(folded):
        for t in f.split():
            where.setdefault(t, []).append(i)
    if any(t not in where for t in tokens):
        return None

    def centre(i: int) -> tuple[float, float]:
        b = words[i].box
        return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2

    height = sorted(w.box[3] - w.box[1] for w in words)[len(words) // 2] or 1.0
    rarest = min(tokens, key=lambda t: len(where[t]))
    best: tuple[float, list[int]] | None = None
    for a in where[rarest]:
        ax, ay = centre(a)
        chosen: list[int] = []  # in the value's order: the target reads as the value does
        cost = 0.0
        for t in tokens:
            d, i = (0.0, a) if t == rarest else min(
                (abs(centre(i)[0] - ax) / 4 + abs(centre(i)[1] - ay), i) for i in where[t])
            if i not in chosen:
                chosen.append(i)
            cost += d
        boxes = [words[i].box for i in chosen]
        # a few lines high (a form field's words may each carry the whole field's box)
        line = max(height, max(b[3] - b[1] for b in boxes))
        if max(b[3] for b in boxes) - min(b[1] for b in boxes) > 4 * line:
            continue
        if best is None or cost < best[0]:
            best = (cost, chosen)
    return (best[1], 0.9) if best else None


def _find_unspaced(folded: list[str], target: str) -> tuple[list[int], float] | None:
    """The value's characters, spaces ignored, inside the page's: for OCR that split a value
    into many pieces ("0 1 - 1 2 - 2 0 2 4") or glued it to its neighbours."""
    t = target.replace(" ", "")
    if len(t) < 4:
        return None
    owner: list[int] = []
    for i, f in enumerate(folded):
        owner += [i] * len(f.replace(" ", ""))
    start = "".join(f.replace(" ", "") for f in folded).find(t)
    if start < 0:
        return None
    return list(range(owner[start], owner[start + len(t) - 1] + 1)), 0.92


def page_spelling(words: list[Word], fields: dict) -> dict:
    """Each value (or list item) as ``words`` spell it where a run of them reads as it
    (`find_value`), else as given: the target a model can copy from a page read by another OCR."""
    def spelt(key: str, value: str) -> str:
        found = find_value(words, value, key)
        return " ".join(words[i].text for i in found[0]) if found else value

    return {key: value if value is None else [spelt(key, v) for v in value] if isinstance(value, list)
            else spelt(key, value) for key, value in fields.items()}


def words_in(page: Page, box: Box) -> list[int]:
    """Indices of the words whose centre lies inside ``box`` (pixels), in reading order."""
    x0, y0, x1, y1 = box
    out = []
    for i, w in enumerate(page.words):
        cx, cy = (w.box[0] + w.box[2]) / 2, (w.box[1] + w.box[3]) / 2
        if x0 <= cx <= x1 and y0 <= cy <= y1:
            out.append(i)
    return out


def place(pages: list[Page], key: str, value: str, region: Region | None = None) -> Placement:
    """Find ``value`` on the pages: inside its region if the labeller drew one, else anywhere."""
    if region is not None and 0 <= region.page < len(pages):
        page = pages[region.page]
        idx = region.words if region.words is not None else words_in(page, region.box or (0, 0, 0, 0))
        if idx:
            text = " ".join(page.words[i].text for i in idx)
            # the region's words are the value; the score says how far the OCR read it apart
            from rapidfuzz import fuzz

            score = max(fuzz.ratio(fold(text), fold(value)) / 100, 1.0 if value_match(text, value, key) else 0.0)
            return Placement(value, region.page, idx, text, score)
    best: Placement | None = None
    for p, page in enumerate(pages):
        found = find_value(page.words, value, key)
        if found and (best is None or found[1] > best.score):
            idx, score = found
            best = Placement(value, p, idx, " ".join(page.words[i].text for i in idx), score)
    return best or Placement(value)


# ---------------------------------------------------------------- reading the label formats


def _resolve(name: str, base: Path, images: Path | None) -> Path:
    """A document named by a label file: as given, beside the labels, or in --images (by its
    name; Label Studio prefixes uploads with an id, ``1a2b3c4d-receipt.jpg``)."""
    p = Path(name)
    candidates = [p] if p.is_absolute() else [base / p]
    for folder in [images, base] if images else [base]:
        candidates += [folder / p.name, folder / re.sub(r"^[0-9a-f]{8}-", "", p.name)]
    for c in candidates:
        if c.is_file():
            return c
    return candidates[0]


def _flatten(value, prefix: str = "") -> dict[str, str | list[str]]:
    """Donut's nested ground truth as flat keys: {"menu": [{"nm": "Tea"}]} -> {"menu nm": ["Tea"]}."""
    out: dict[str, str | list[str]] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            for kk, vv in _flatten(v, f"{prefix} {k}".strip()).items():
                out[kk] = vv
    elif isinstance(value, list):
        for item in value:
            for kk, vv in _flatten(item, prefix).items():
                have = out.setdefault(kk, [])
                assert isinstance(have, list)
                have.extend(vv if isinstance(vv, list) else [vv])
    elif value is not None and str(value).strip() and prefix:
        out[prefix] = str(value).strip()
    return out


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    if not path.is_file():
        raise LabelError(f"{path}: no such file")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise LabelError(f"{path}:{n}: not JSON ({e.msg})") from None
            if not isinstance(rec, dict):
                raise LabelError(f"{path}:{n}: expected an object")
            yield n, rec


def _values(fields: dict) -> dict[str, str | list[str]]:
    """Keys with a value (null and empty values say nothing to place)."""
    out: dict[str, str | list[str]] = {}
    for k, v in fields.items():
        if isinstance(v, list):
            items = [str(x).strip() for x in v if x is not None and str(x).strip()]
            if items:
                out[str(k)] = items
        elif v is not None and str(v).strip():
            out[str(k)] = str(v).strip()
    return out


def read_truth(src: Path, images: Path | None = None) -> Iterator[Labelled]:
    path = src / "truth.jsonl" if src.is_dir() else src
    for n, rec in _jsonl(path):
        if not isinstance(rec.get("file"), str) or not isinstance(rec.get("fields"), dict):
            raise LabelError(f"{path}:{n}: expected {{\"file\": NAME, \"fields\": {{key: value}}}}")
        yield Labelled(_resolve(rec["file"], path.parent, images), _values(rec["fields"]))


def read_donut(src: Path, images: Path | None = None) -> Iterator[Labelled]:
    path = src / "metadata.jsonl" if src.is_dir() else src
    for n, rec in _jsonl(path):
        try:
            gt = rec["ground_truth"]
            gt = json.loads(gt) if isinstance(gt, str) else gt
            parse = gt["gt_parse"] if "gt_parse" in gt else gt["gt_parses"][0]
        except (KeyError, IndexError, TypeError, json.JSONDecodeError) as e:
            raise LabelError(f"{path}:{n}: no ground_truth.gt_parse ({e})") from None
        yield Labelled(_resolve(str(rec.get("file_name", "")), path.parent, images), _flatten(parse))


def _join(parts: list[tuple[Box, str]], as_list: bool) -> str | list[str]:
    """Several regions of one key: a list (list keys), else their text in reading order."""
    texts = [t for _, t in sorted(parts, key=lambda bt: (round(bt[0][1] / 8), bt[0][0]))]
    return texts if as_list else " ".join(texts)


def read_labelstudio(src: Path, images: Path | None = None, list_keys: frozenset[str] = frozenset()
                     ) -> Iterator[Labelled]:
    path = src
    if src.is_dir():
        found = sorted(src.glob("*.json"))
        if len(found) != 1:
            raise LabelError(f"{src}: expected one Label Studio export (*.json) in it, found {len(found)}")
        path = found[0]
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise LabelError(f"{path}: not a Label Studio JSON export ({e})") from None
    if not isinstance(tasks, list):
        raise LabelError(f"{path}: a Label Studio export is a list of tasks")
    for t, task in enumerate(tasks):
        try:
            data = task["data"]
            name = data.get("ocr") or data.get("image") or next(v for v in data.values() if isinstance(v, str))
            annotations = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
            results = annotations[-1]["result"] if annotations else []
            regions: dict[str, dict] = {}
            for r in results:
                reg = regions.setdefault(r["id"], {})
                v = r["value"]
                if "x" in v:
                    reg["box"] = (v["x"], v["y"], v["x"] + v["width"], v["y"] + v["height"])
                    reg["size"] = (r.get("original_width"), r.get("original_height"))
                labels = v.get("labels") or v.get("rectanglelabels")
                if labels:
                    reg["label"] = labels[0]
                if v.get("text"):
                    reg["text"] = " ".join(v["text"]) if isinstance(v["text"], list) else str(v["text"])
        except (KeyError, TypeError, StopIteration, IndexError) as e:
            raise LabelError(f"{path}: task {t}: not a Label Studio OCR task ({e!r})") from None
        file = _resolve(str(name), path.parent, images)
        size = None
        by_key: dict[str, list[tuple[Box, str]]] = {}
        for reg in regions.values():
            if "label" not in reg or "box" not in reg or not reg.get("text", "").strip():
                continue  # a region without a label or a transcription places nothing
            if size is None:
                w, h = reg["size"]
                if not (w and h) and file.is_file():
                    with Image.open(file) as im:
                        w, h = im.size
                size = (w or 100, h or 100)
            x0, y0, x1, y1 = reg["box"]
            box = (x0 * size[0] / 100, y0 * size[1] / 100, x1 * size[0] / 100, y1 * size[1] / 100)
            by_key.setdefault(reg["label"], []).append((box, reg["text"].strip()))
        fields: dict[str, str | list[str]] = {}
        where: dict[str, list[Region]] = {}
        for key, parts in by_key.items():
            fields[key] = _join(parts, key in list_keys)
            if key in list_keys:
                where[key] = [Region(0, box) for box, _ in sorted(parts, key=lambda bt: (round(bt[0][1] / 8), bt[0][0]))]
            else:  # one region around them all
                xs0, ys0, xs1, ys1 = zip(*(b for b, _ in parts), strict=True)
                where[key] = [Region(0, (min(xs0), min(ys0), max(xs1), max(ys1)))]
        yield Labelled(file, fields, where)


def read_funsd(src: Path, images: Path | None = None) -> Iterator[Labelled]:
    folder = src / "annotations" if (src / "annotations").is_dir() else src
    files = sorted(folder.glob("*.json")) if folder.is_dir() else [src]
    if not files or not files[0].is_file():
        raise LabelError(f"{src}: no FUNSD annotations (*.json) found")
    for path in files:
        try:
            form = json.loads(path.read_text(encoding="utf-8"))["form"]
            words: list[Word] = []
            spans: dict[int, list[int]] = {}
            for ent in form:
                first = len(words)
                words += [Word(w["text"], tuple(w["box"])) for w in ent.get("words", []) if w["text"].strip()]
                spans[ent["id"]] = list(range(first, len(words)))
            by_id = {ent["id"]: ent for ent in form}
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise LabelError(f"{path}: not a FUNSD annotation ({e!r})") from None
        stem = path.stem
        base = images or (path.parent.parent / "images" if path.parent.name == "annotations" else path.parent)
        file = next((p for p in sorted(base.glob(stem + ".*")) if p.suffix.lower() != ".json"), base / f"{stem}.png")
        fields: dict[str, str | list[str]] = {}
        where: dict[str, list[Region]] = {}
        for ent in form:
            key = ent.get("text", "").strip()
            if ent.get("label") != "question" or not key:
                continue
            answers = []
            for a, b in ent.get("linking", []):
                other = by_id.get(b if a == ent["id"] else a)
                if other is not None and other.get("label") == "answer" and other.get("text", "").strip():
                    answers.append(other)
            if answers:
                fields[key] = " ".join(o["text"].strip() for o in answers)
                where[key] = [Region(0, words=[i for o in answers for i in spans[o["id"]]])]
        width, height = _image_size(file, words)
        yield Labelled(file, fields, where, [Page(None, width, height, words, image_path=str(file))])


def read_ppocrlabel(src: Path, images: Path | None = None, list_keys: frozenset[str] = frozenset()
                    ) -> Iterator[Labelled]:
    path = src / "Label.txt" if src.is_dir() else src
    if not path.is_file():
        raise LabelError(f"{path}: no such file")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        name, _, rest = line.partition("\t")
        try:
            items = json.loads(rest)
            lines = [(str(it["transcription"]), [c for pt in it["points"] for c in pt], it.get("key_cls"))
                     for it in items]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise LabelError(f"{path}:{n}: not a PPOCRLabel line ({e!r})") from None
        # PPOCRLabel writes paths as "<image folder>/<name>", relative to the folder above it
        file = _resolve(name, path.parent.parent, images)
        if not file.is_file():
            file = _resolve(name, path.parent, images or path.parent)
        words: list[Word] = []
        by_key: dict[str, list[tuple[Box, list[int]]]] = {}
        for text, quad, key in lines:
            xs, ys = quad[0::2], quad[1::2]
            box = (min(xs), min(ys), max(xs), max(ys))
            first = len(words)
            words += split_line(text, box)
            if key and str(key).lower() not in ("none", "other", "ignore") and len(words) > first:
                by_key.setdefault(str(key), []).append((box, list(range(first, len(words)))))
        fields: dict[str, str | list[str]] = {}
        where: dict[str, list[Region]] = {}
        for key, parts in by_key.items():
            parts.sort(key=lambda bi: (round(bi[0][1] / 8), bi[0][0]))
            texts = [" ".join(words[i].text for i in idx) for _, idx in parts]
            if key in list_keys:
                fields[key], where[key] = texts, [Region(0, words=idx) for _, idx in parts]
            else:
                fields[key], where[key] = " ".join(texts), [Region(0, words=[i for _, idx in parts for i in idx])]
        width, height = _image_size(file, words)
        yield Labelled(file, fields, where, [Page(None, width, height, words, image_path=str(file))])


def _image_size(file: Path, words: list[Word]) -> tuple[int, int]:
    if file.is_file():
        try:
            with Image.open(file) as im:
                return im.size
        except OSError:
            pass
    return (int(max((w.box[2] for w in words), default=1000)) + 1, int(max((w.box[3] for w in words), default=1000)) + 1)


READERS = {"truth": read_truth, "donut": read_donut, "labelstudio": read_labelstudio, "funsd": read_funsd,
           "ppocrlabel": read_ppocrlabel}


def read_labels(fmt: str, src: str | Path, images: str | Path | None = None,
                list_keys: frozenset[str] = frozenset()) -> list[Labelled]:
    if fmt not in READERS:
        raise LabelError(f"unknown label format {fmt!r} (known: {', '.join(FORMATS)})")
    src = Path(src)
    if not src.exists():
        raise LabelError(f"{src}: no such file or folder")
    reader = READERS[fmt]
    kwargs: dict = {"images": Path(images) if images else None}
    if fmt in ("labelstudio", "ppocrlabel"):
        kwargs["list_keys"] = list_keys
    return list(reader(src, **kwargs))


# ---------------------------------------------------------------- the import


def read_pages(item: Labelled, out: Path, sha: str, ocr: str, limits) -> list[Page]:
    """The document's pages with words and a saved image each; read once per file content."""
    from docsprint.io.ocr import get_engine
    from docsprint.io.readers import read_document

    cache = out / ".pages" / f"{sha[:32]}-{getattr(get_engine(ocr), 'cache_name', ocr) if item.pages is None else 'src'}.json"
    if cache.is_file():
        recs = json.loads(cache.read_text(encoding="utf-8"))
        return [Page(None, r["width"], r["height"], [Word(w[0], tuple(w[1:])) for w in r["words"]],
                     image_path=str(out / r["image"]) if r["image"] else None) for r in recs]
    doc = Document(item.pages) if item.pages is not None else read_document(item.file, ocr, limits)
    recs, pages = [], []
    for i, page in enumerate(doc.pages):
        image = page.get_image()
        rel = None
        if image is not None:
            rel = f"images/{sha[:16]}-p{i}.jpg"
            (out / "images").mkdir(parents=True, exist_ok=True)
            if image.size != (page.width, page.height):
                image = image.resize((page.width, page.height))
            tmp = out / (rel + ".tmp")
            image.convert("RGB").save(tmp, format="JPEG", quality=90)
            os.replace(tmp, out / rel)
        pages.append(Page(None, page.width, page.height, page.words, image_path=str(out / rel) if rel else None))
        recs.append({"image": rel, "width": page.width, "height": page.height,
                     "words": [[w.text, *(round(c, 1) for c in w.box)] for w in page.words]})
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp")
    tmp.write_text(json.dumps(recs, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, cache)
    return pages


def label_record(doc_id: str, file: Path, sha: str, pages: list[Page], out: Path,
                 labels: dict[str, list[Placement]], is_list: dict[str, bool]) -> dict:
    """A `docsprint.data.store` record with the placements: each placed value's target is the
    page's spelling, an unplaced one the labels' own."""
    from docsprint.data.store import page_record

    fields: dict[str, str | list[str] | None] = {}
    for key, placed in labels.items():
        targets = [p.text if p.page is not None else p.value for p in placed]
        fields[key] = targets if is_list[key] else (targets[0] if targets else None)  # none: the key is absent
    return {"id": doc_id, "file": str(file), "sha256": sha, "pages": [page_record(p, out) for p in pages],
            "fields": fields, "labels": {k: [p.to_dict() for p in v] for k, v in labels.items()}}


def import_labels(fmt: str, src: str | Path, out: str | Path, ocr: str = "rapidocr",
                  images: str | Path | None = None, list_keys: frozenset[str] = frozenset(),
                  limits=None, progress: bool = True) -> dict:
    """Import ``src`` into ``out/train.jsonl``; returns (and writes) the report."""
    from tqdm import tqdm

    from docsprint.io.limits import DEFAULT_LIMITS
    from docsprint.io.readers import DocumentError, sha256_file

    items = read_labels(fmt, src, images, list_keys)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LabelError(f"{out}: is a file, not a folder for the labels")
    out.mkdir(parents=True, exist_ok=True)
    records, unreadable, missing = [], [], []
    n_values = n_placed = n_checkbox = 0
    ids: set[str] = set()
    for item in tqdm(items, desc=f"import {fmt}", disable=not progress, mininterval=5):
        # ticks ("selected" / "unselected") are not words on the page: the model reads text
        ticks = [k for k, v in item.fields.items() if isinstance(v, str) and v in CHECKBOX]
        n_checkbox += len(ticks)
        item.fields = {k: v for k, v in item.fields.items() if k not in ticks}
        if not item.fields:
            continue
        try:
            if not item.file.is_file():
                raise DocumentError(item.file, "no such file")
            sha = sha256_file(item.file)
            pages = read_pages(item, out, sha, ocr, limits or DEFAULT_LIMITS)
        except (DocsprintError, OSError) as e:
            unreadable.append({"file": str(item.file), "error": str(e)})
            continue
        labels: dict[str, list[Placement]] = {}
        for key, value in item.fields.items():
            values = value if isinstance(value, list) else [value]
            regions = item.regions.get(key, [])
            labels[key] = [place(pages, key, v, regions[i] if i < len(regions) else None)
                           for i, v in enumerate(values)]
            for p in labels[key]:
                n_values += 1
                n_placed += p.page is not None
                if p.page is None:
                    missing.append({"file": str(item.file), "key": key, "value": p.value})
        doc_id = item.file.stem
        while doc_id in ids:  # two files of one name in different folders
            doc_id += "_"
        ids.add(doc_id)
        records.append(label_record(doc_id, item.file.absolute(), sha, pages, out, labels,
                                    {k: isinstance(v, list) for k, v in item.fields.items()}))
    write_labels(out, records)
    report = {"format": fmt, "source": str(src), "documents": len(records), "values": n_values,
              "placed": n_placed, "placed_share": round(n_placed / n_values, 4) if n_values else 0.0,
              "checkbox_values_skipped": n_checkbox, "not_placed": missing, "unreadable": unreadable}
    tmp = out / (REPORT_FILE + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, out / REPORT_FILE)
    return report


def write_labels(out: Path, records: list[dict]) -> Path:
    """``out/train.jsonl``, written to a temporary file and renamed (never half written)."""
    path = out / LABELS_FILE
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def read_records(folder: str | Path) -> list[dict]:
    """The raw records of a labels folder (for the review page, which rewrites them)."""
    path = Path(folder) / LABELS_FILE
    if not path.is_file():
        raise LabelError(f"{path}: no labels here (make them with `docsprint data import`)")
    return [rec for _, rec in _jsonl(path)]


# ---------------------------------------------------------------- the way back out


EXPORTS = ("truth", "labelstudio")


def export_labels(folder: str | Path, fmt: str, out: str | Path) -> Path:
    """A labels folder (imported or reviewed) written back as ``truth.jsonl`` (values only) or a
    Label Studio OCR export (a rectangle, label and transcription per placed value), so the
    labels go back to the tools they came from. Importing the export gives the same labels."""
    if fmt not in EXPORTS:
        raise LabelError(f"cannot export to {fmt!r} (exports: {', '.join(EXPORTS)})")
    records = read_records(folder)
    out = Path(out)
    if out.is_dir():
        raise LabelError(f"{out}: is a folder; give the file to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "truth":
        lines = []
        for rec in records:
            fields = {k: ([p["value"] for p in v] if isinstance(rec["fields"].get(k), list) else
                          (v[0]["value"] if v else None)) for k, v in rec["labels"].items()}
            lines.append(json.dumps({"file": rec["file"], "fields": fields}, ensure_ascii=False))
        text = "".join(line + "\n" for line in lines)
    else:
        tasks = []
        for n, rec in enumerate(records, 1):
            results: list[dict] = []
            for key, placed in rec["labels"].items():
                for p in placed:
                    if p.get("page") is None:
                        continue  # Label Studio's OCR template has no value without a region
                    page = rec["pages"][p["page"]]
                    words = [page["words"][i] for i in p["words"]]
                    x0, y0 = min(w[1] for w in words), min(w[2] for w in words)
                    x1, y1 = max(w[3] for w in words), max(w[4] for w in words)
                    geom = {"x": 100 * x0 / page["width"], "y": 100 * y0 / page["height"],
                            "width": 100 * (x1 - x0) / page["width"], "height": 100 * (y1 - y0) / page["height"],
                            "rotation": 0}
                    common = {"id": f"{n}-{len(results) // 3}", "to_name": "image",
                              "original_width": page["width"], "original_height": page["height"]}
                    results += [{**common, "from_name": "bbox", "type": "rectangle", "value": geom},
                                {**common, "from_name": "label", "type": "labels", "value": {**geom, "labels": [key]}},
                                {**common, "from_name": "transcription", "type": "textarea",
                                 "value": {**geom, "text": [p["value"]]}}]
            tasks.append({"id": n, "data": {"ocr": rec["file"]}, "annotations": [{"result": results}]})
        text = json.dumps(tasks, ensure_ascii=False, indent=1)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out
