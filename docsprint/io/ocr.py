"""OCR engines behind one small interface: an image in, words with pixel boxes out.

RapidOCR 3.x (default; its wheel carries the ONNX models, so it works offline) and Tesseract
(Debian's tesseract-ocr through pytesseract; optional). Engines are built once and reused.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from PIL import Image

from docsprint.io.document import Word, quad_to_box, split_line


class OCREngine(Protocol):
    name: str

    def __call__(self, image: Image.Image) -> list[Word]: ...


def skew(words: list[Word]) -> float:
    """The page's text slope (dy per dx): the median slope from each word to its neighbour on
    the right in the same line (the nearest word starting after it, within a line's height)."""
    if len(words) < 2:
        return 0.0
    b = np.array([w.box for w in words], dtype=np.float64)
    cx, cy, h = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 3] - b[:, 1]
    slopes = []
    for start in range(0, len(b), 512):  # 512 words against all at a time: bounded memory
        i = np.arange(start, min(start + 512, len(b)))
        gap = b[None, :, 0] - b[i, None, 2]  # [i, j]: from the end of word i to the start of j
        dy = cy[None, :] - cy[i, None]
        tall = np.maximum(h[i, None], h[None, :])
        ok = (gap > -0.3 * tall) & (gap < 2 * tall) & (np.abs(dy) < 0.7 * tall)
        ok[np.arange(len(i)), i] = False
        rows = np.flatnonzero(ok.any(axis=1))
        nearest = np.where(ok[rows], gap[rows], np.inf).argmin(axis=1)
        dx = cx[nearest] - cx[i[rows]]
        keep = dx > 0
        slopes.append(dy[rows, nearest][keep] / dx[keep])
    found = np.concatenate(slopes)
    return float(np.median(found)) if len(found) >= 3 else 0.0


def reading_order(words: list[Word]) -> list[Word]:
    """Top-to-bottom lines (words whose vertical centres are close once the page's skew is
    taken out), left to right in a line. On a scan turned by 2 degrees, a line drifts by more
    than the line spacing across the page; measured along the text's slope, its words stay one
    line instead of interleaving with the next one's."""
    if not words:
        return []
    sizes = sorted(w.box[3] - w.box[1] for w in words)
    tol = max(sizes[len(sizes) // 2] * 0.5, 1.0)
    slope = skew(words)

    def level(w: Word) -> float:  # the centre's height, straightened
        return (w.box[1] + w.box[3]) / 2 - slope * (w.box[0] + w.box[2]) / 2

    rows: list[list[Word]] = []
    heights: list[float] = []  # the current row's levels, each computed once
    for height, w in sorted(((level(w), w) for w in words), key=lambda p: p[0]):
        if rows and abs(height - np.mean(heights)) <= tol:
            rows[-1].append(w)
            heights.append(height)
        else:
            rows.append([w])
            heights = [height]
    return [w for row in rows for w in sorted(row, key=lambda w: w.box[0])]


class RapidOCREngine:
    """RapidOCR with this project's settings (`SETTINGS`, on top of the library's defaults)."""

    name = "rapidocr"
    # Chosen on SROIE test receipts by seconds per page and end-to-end ANLS (README, "OCR
    # settings"): detection on the page scaled so that its long side is at most 960 pixels
    # (the library's default scales the short side up to 736), no orientation classifier.
    SETTINGS: dict[str, Any] = {"Det.limit_side_len": 960, "Det.limit_type": "max", "Global.use_cls": False}

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        from rapidocr import RapidOCR

        self.settings = dict(self.SETTINGS if settings is None else settings)
        # ONNX Runtime takes every core by default; a batch job runs one OCR task per core
        # instead, each with one thread (DOCSPRINT_OCR_THREADS=1): no thread fights another.
        threads = os.environ.get("DOCSPRINT_OCR_THREADS")
        if threads:
            self.settings["EngineConfig.onnxruntime.intra_op_num_threads"] = int(threads)
        # Its own config sets its logger's level at start-up: quiet it there (a blank page's
        # "detection result is empty" is not an error of ours).
        self.engine = RapidOCR(params={"Global.log_level": "error", **self.settings})

    @property
    def cache_name(self) -> str:
        """The engine and its settings, for caches of its output (other settings, other words)."""
        digest = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.name}-{digest}"

    def __call__(self, image: Image.Image) -> list[Word]:
        result: Any = self.engine(np.asarray(image.convert("RGB")), return_word_box=True)
        if result.txts is None:
            return []
        words: list[Word] = []
        word_results = result.word_results or [()] * len(result.txts)
        for text, quad, line_words in zip(result.txts, result.boxes, word_results, strict=False):
            if line_words:
                for wtext, _score, wquad in line_words:
                    # The engine's word boxes; a recognised "word" may hold spaces: split it.
                    box = quad_to_box([c for pt in wquad for c in pt])
                    words.extend(split_line(wtext, box) if " " in wtext.strip() else
                                 [Word(wtext.strip(), box)] if wtext.strip() else [])
            else:
                words.extend(split_line(text, quad_to_box([c for pt in quad for c in pt])))
        return reading_order(words)


class TesseractEngine:
    name = "tesseract"

    def __init__(self) -> None:
        import shutil

        import pytesseract

        if shutil.which("tesseract") is None:
            raise RuntimeError("tesseract is not installed (apt-get install tesseract-ocr)")
        self.pt = pytesseract

    def __call__(self, image: Image.Image) -> list[Word]:
        d = self.pt.image_to_data(image.convert("RGB"), output_type=self.pt.Output.DICT)
        words = []
        for text, x, y, w, h, conf in zip(d["text"], d["left"], d["top"], d["width"], d["height"], d["conf"],
                                          strict=True):
            if text.strip() and float(conf) >= 0:
                words.append(Word(text.strip(), (float(x), float(y), float(x + w), float(y + h))))
        return reading_order(words)


ENGINES: dict[str, type[RapidOCREngine] | type[TesseractEngine]] = {
    "rapidocr": RapidOCREngine,
    "tesseract": TesseractEngine,
}


@lru_cache(maxsize=4)
def get_engine(name: str) -> OCREngine:
    """The engine named ``name``, built once per process."""
    if name not in ENGINES:
        raise ValueError(f"unknown OCR engine {name!r} (known: {', '.join(ENGINES)})")
    engine: OCREngine = ENGINES[name]()
    return engine
