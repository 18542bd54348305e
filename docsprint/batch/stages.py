"""The two stages of a batch job, as Ray Data runs them.

`read_documents` (Ray tasks, one document each): the file's sha256, the document read (PDF
text layer or OCR) under the shared limits, packed for the next stage: words and boxes, page
sizes, and each page's picture already shrunk to the model's thumbnail (a few KB, never page
pixels in the object store). `ExtractStage` (a Ray actor pool): the model loaded once per
actor, the same `Extractor.extract` as the command line on the unpacked document.
"""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image

from docsprint.data.encode import thumbnail
from docsprint.errors import one_line
from docsprint.io.document import Document, Page, Word
from docsprint.io.readers import sha256_file

Batch = dict[str, Any]

# Both stages hand Ray Arrow tables of fixed types: a column of Nones would otherwise become
# floats in one block and strings in the next, and Ray could not put them together.
READ_SCHEMA = pa.schema([("id", pa.string()), ("path", pa.string()), ("sha256", pa.string()),
                         ("document", pa.string()), ("error", pa.string()), ("ocr_seconds", pa.float64())])
ROW_SCHEMA = pa.schema([("id", pa.string()), ("path", pa.string()), ("sha256", pa.string()), ("fields", pa.string()),
                        ("error", pa.string()), ("ocr_seconds", pa.float64()), ("model_seconds", pa.float64()),
                        ("model", pa.string())])


def pack(doc: Document, image_size: int) -> str:
    """The document as JSON: per page its size, its words with boxes, and its thumbnail (PNG,
    ``image_size`` square: what the model sees, so the answers equal the command line's)."""
    pages = []
    for page in doc.pages:
        image = page.get_image()
        thumb = None
        if image is not None:
            buf = io.BytesIO()
            Image.fromarray(thumbnail(image, image_size)).save(buf, "PNG")  # type: ignore[arg-type]
            thumb = base64.b64encode(buf.getvalue()).decode()
        pages.append({"width": page.width, "height": page.height, "thumb": thumb,
                      "words": [[w.text, *w.box] for w in page.words]})
    return json.dumps({"source": doc.source, "pages": pages}, ensure_ascii=False)


def unpack(text: str) -> Document:
    data = json.loads(text)
    pages = []
    for p in data["pages"]:
        image = Image.open(io.BytesIO(base64.b64decode(p["thumb"]))).convert("RGB") if p["thumb"] else None
        pages.append(Page(image, p["width"], p["height"], [Word(t, (x0, y0, x1, y1)) for t, x0, y0, x1, y1 in p["words"]]))
    return Document(pages, source=data["source"])


def read_documents(batch: Batch | pa.Table, ocr: str, limits: dict, image_size: int) -> pa.Table:
    """Ray Data task: read every document of the batch (one, as the job runs it)."""
    if isinstance(batch, pa.Table):
        batch = batch.to_pydict()
    from docsprint.errors import DocsprintError
    from docsprint.io.limits import Limits
    from docsprint.io.readers import read_document

    lim = Limits(**limits)
    out: dict[str, list] = {"id": [], "path": [], "sha256": [], "document": [], "error": [], "ocr_seconds": []}
    for doc_id, path in zip(batch["id"], batch["path"], strict=True):
        t0 = time.perf_counter()
        digest, packed, error = None, None, None
        try:
            digest = sha256_file(path)
            packed = pack(read_document(path, ocr=ocr, limits=lim), image_size)
        except DocsprintError as e:
            error = one_line(e)
        except OSError as e:
            error = f"{path}: cannot read ({e.strerror or one_line(e)})"
        except Exception as e:  # noqa: BLE001 - one document's failure is its row, not the job's
            error = f"{path}: internal error while reading ({type(e).__name__}: {one_line(e)})"
        out["id"].append(doc_id)
        out["path"].append(path)
        out["sha256"].append(digest)
        out["document"].append(packed)
        out["error"].append(error)
        out["ocr_seconds"].append(time.perf_counter() - t0)
    return pa.table(out, schema=READ_SCHEMA)


class ExtractStage:
    """Ray Data actor: one model per actor, loaded once; torch threads = the actor's CPUs."""

    def __init__(self, model: str | None, keys: list[str], mode: str, list_keys: list[str], threads: int,
                 model_id: str):
        import torch

        from docsprint.pipeline import Extractor

        torch.set_num_threads(max(1, threads))
        self.extractor = Extractor(model)
        self.keys, self.mode, self.list_keys = keys, mode, frozenset(list_keys)
        self.model_id = model_id

    def __call__(self, batch: Batch | pa.Table) -> pa.Table:
        if isinstance(batch, pa.Table):
            batch = batch.to_pydict()
        n = len(batch["id"])
        fields: list[str | None] = [None] * n
        errors = list(batch["error"])
        seconds = np.zeros(n)
        for i in range(n):
            if errors[i] is not None or batch["document"][i] is None:
                continue
            try:
                doc = unpack(batch["document"][i])
                doc.source = batch["path"][i]
                result = self.extractor.extract(doc, self.keys, self.mode, self.list_keys)
                fields[i] = json.dumps(result.to_dict()["fields"], ensure_ascii=False)
                seconds[i] = result.model_seconds
            except Exception as e:  # noqa: BLE001 - this document's row says so; the job goes on
                errors[i] = f"{batch['path'][i]}: internal error in the model stage ({type(e).__name__}: {one_line(e)})"
        return pa.table({"id": list(batch["id"]), "path": list(batch["path"]), "sha256": list(batch["sha256"]),
                         "fields": fields, "error": errors, "ocr_seconds": [float(x) for x in batch["ocr_seconds"]],
                         "model_seconds": [float(x) for x in seconds], "model": [self.model_id] * n},
                        schema=ROW_SCHEMA)
