"""Kleister-NDA: long, born-digital contracts; four keys with normalised values.

The PDFs' text layers (words with boxes, via pypdfium2) and small page renderings are read
once and cached under ``$DOCSPRINT_CACHE`` (default ``~/.cache/docsprint``), in the
`docsprint.data.store` format: reading all 254 contracts takes about a minute, the cache a
second.

Keys are asked in words ("effective date") and values are the task's values with spaces for
underscores ("Nike Inc."); `task_pairs` turns them back into the task's ``key=VALUE`` form,
upper-cased, for the task's own F1.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from docsprint.data.store import Fields, read_jsonl, write_jsonl
from docsprint.eval.values import dates
from docsprint.io.document import Document

# task key -> the key as asked (free text)
KEYS = {"effective_date": "effective date", "jurisdiction": "jurisdiction", "party": "party", "term": "term"}
LIST_KEYS = frozenset({"party"})  # task keys whose values are lists (asked by the same name)
THUMB_SIZE = 256  # long side of the cached page renderings (the model sees 128 x 128)


def cache_dir() -> Path:
    return Path(os.environ.get("DOCSPRINT_CACHE") or Path.home() / ".cache" / "docsprint")


def parse_expected(expected: str) -> Fields:
    """``"effective_date=2001-04-18 party=Nike_Inc. party=Eric_Dean_Sprunk"`` -> fields."""
    values: dict[str, list[str]] = {}
    for pair in expected.split():
        key, _, value = pair.partition("=")
        if key in KEYS and value:
            values.setdefault(key, []).append(value.replace("_", " "))
    fields: Fields = {}
    for key, asked in KEYS.items():
        vs = values.get(key)
        fields[asked] = (vs if key in LIST_KEYS else vs[0]) if vs else None
    return fields


def task_value(key: str, value: str) -> str:
    """A value as the task writes it: an effective date as an ISO date ("April 18, 2001" ->
    2001-04-18; "4/5/2001" month first, as US contracts write it), a term as "N units" ("two (2)
    years" -> 2 years), a party without commas and with "and" for "&" ("SEARS, ROEBUCK & CO."
    -> "SEARS ROEBUCK and CO.": none of the task's 381 train parties has a comma); what reads
    no one way stays as it is. The model copies what the page
    writes; this is the task's reading of it."""
    if key == "effective_date":
        found = dates(value)
        numeric = re.fullmatch(r"\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\s*", value)
        if len(found) > 1 and numeric:
            mo, d, y = (int(g) for g in numeric.groups())
            found = {day for day in found if (day.month, day.day, day.year) == (mo, d, y)}
        return found.pop().isoformat() if len(found) == 1 else value
    if key == "party":  # the task writes no commas and "and" for "&": "Sears Roebuck and Co."
        return " ".join(re.sub(r"\s*&\s*", " and ", value.replace(",", " ")).split())
    if key == "term":
        text = value.lower()
        m = re.search(r"(\d+(?:\.\d+)?)\s*\)?\s*(year|month|day|week)s?\b", text)
        n = m[1] if m else None
        if not m:
            m = re.search(r"\b(" + "|".join(NUMBER_WORDS[1:]) + r")\s+(year|month|day|week)s?\b", text)
            n = str(NUMBER_WORDS.index(m[1])) if m else None
        if m and n:
            return f"{n} {m[2]}{'' if n == '1' else 's'}"
    return value


def as_task(asked: str, value: str | list[str] | None) -> str | list[str] | None:
    """A field's answer (key as asked) in the task's writing (`task_value`, item by item)."""
    key = next((k for k, a in KEYS.items() if a == asked), asked)
    if isinstance(value, list):
        return [task_value(key, v) for v in value]
    return task_value(key, value) if value is not None else None


def task_pairs(fields: dict[str, str | list[str] | None]) -> list[str]:
    """Fields (keys as asked) -> the task's ``KEY=VALUE`` items (`task_value`), upper-cased,
    spaces as ``_``."""
    out = []
    for key, asked in KEYS.items():
        v = fields.get(asked)
        for item in (v if isinstance(v, list) else [v]) if v is not None else []:
            item = "_".join(task_value(key, item).split())
            if item:
                out.append(f"{key}={item}".upper())
    return out


def pair_counts(pred: dict[str, str | list[str] | None], gold: dict[str, str | list[str] | None]) -> tuple[int, int, int]:
    """(true positives, predicted, expected) ``KEY=VALUE`` items of one document (multisets)."""
    p, g = Counter(task_pairs(pred)), Counter(task_pairs(gold))
    return sum((p & g).values()), sum(p.values()), sum(g.values())


def _read_pdf(path: Path, thumbs: Path) -> Document:
    from docsprint.io.readers import read_document

    doc = read_document(path)
    for i, page in enumerate(doc.pages):
        if page.image is not None:
            thumb = page.image.copy()
            thumb.thumbnail((THUMB_SIZE, THUMB_SIZE))
            target = thumbs / f"{path.stem}-{i}.jpg"
            thumb.save(target, quality=80)
            page.image, page.image_path = None, str(target)
    return doc


def load_kleister(root: Path, split: str) -> Iterator[tuple[Document, Fields]]:
    """Every contract of ``split`` (train, test) as a multi-page document with its fields."""
    index = root / f"{split}.jsonl"
    if not index.is_file():
        raise FileNotFoundError(f"kleister-nda: {index} not found (splits: train, test)")
    rows = [json.loads(line) for line in index.read_text(encoding="utf-8").splitlines() if line.strip()]
    cache = cache_dir() / "kleister-nda"
    names = "\n".join(r["file_name"] for r in rows).encode()
    stamp = f"{split}-{hashlib.sha1(names).hexdigest()[:10]}"  # a changed split gets a new cache
    docs: dict[str, Document] = {}
    if (cache / f"{stamp}.jsonl").is_file():
        docs = {doc_id: doc for doc_id, doc, _ in read_jsonl(cache, stamp)}
    else:
        from tqdm import tqdm

        (cache / "pages").mkdir(parents=True, exist_ok=True)
        for r in tqdm(rows, desc=f"kleister-nda {split}: PDF text layers (cached once)", mininterval=5):
            docs[r["file_name"]] = _read_pdf(root / r["file_name"], cache / "pages")
        write_jsonl(((k, d, {}) for k, d in docs.items()), cache, stamp)
    for r in rows:
        doc = docs[r["file_name"]]
        doc.source = f"kleister-nda/{split}/{Path(r['file_name']).stem}"
        yield doc, parse_expected(r["expected"])


# --- where a normalised value is written in the text (to supervise long documents) ----------

NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()
MONTHS = ("january february march april may june july august september october november "
          "december").split()


def surface_forms(value: str) -> list[str]:
    """Ways a normalised value may be written: ISO dates and "N units" terms get variants, a name
    with "and" its "&" ("Sears Roebuck and Co." is printed "SEARS, ROEBUCK & CO.")."""
    forms = [value]
    if re.search(r"\sand\s", value, flags=re.IGNORECASE):
        forms.append(re.sub(r"\s+and\s+", " & ", value, flags=re.IGNORECASE))
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", value)
    if m:
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
        month = MONTHS[mo - 1] if 1 <= mo <= 12 else ""
        suffix = "th" if 10 <= d % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
        forms += [f"{month} {d}, {y}", f"{month} {d}{suffix}, {y}", f"{d} {month} {y}",
                  f"{d}{suffix} day of {month}, {y}", f"{d}{suffix} day of {month} {y}",
                  f"{mo}/{d}/{y}", f"{mo:02d}/{d:02d}/{y}", f"{month} {d} , {y}"]
    m = re.fullmatch(r"(\d+) (\w+)", value)
    if m and m[2].rstrip("s") in ("year", "month", "day", "week"):
        n, unit = int(m[1]), m[2]
        if n < len(NUMBER_WORDS):
            forms += [f"{NUMBER_WORDS[n]} ({n}) {unit}", f"{NUMBER_WORDS[n]} {unit}",
                      f"{NUMBER_WORDS[n]} ({n}) {unit.rstrip('s')}"]
    return forms
