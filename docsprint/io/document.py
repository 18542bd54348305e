"""The document tree: a `Document` is a list of `Page`s; a page has an image and `Word`s.

Boxes are kept twice: in pixels of the page image (``box``) and normalised to 0-1000
(``norm_box``), the convention of LayoutLM-style models. Words are in reading order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1)


@dataclass(frozen=True)
class Word:
    """One word as written on the page, with its box in pixels."""

    text: str
    box: Box


@dataclass
class Page:
    """A page: its image (may be None for text-only sources), size in pixels and its words.

    >>> p = Page(image=None, width=100, height=50, words=[Word("Hi", (10, 10, 30, 20))])
    >>> p.norm_box(p.words[0])
    (100, 200, 300, 400)
    """

    image: Image.Image | None
    width: int
    height: int
    words: list[Word] = field(default_factory=list)
    image_path: str | None = None  # where a dataset page's image is read from, lazily

    def get_image(self) -> Image.Image | None:
        """The page image, reading it from ``image_path`` if it was not loaded yet."""
        if self.image is None and self.image_path is not None:
            with Image.open(self.image_path) as im:
                return im.convert("RGB")
        return self.image

    def norm_box(self, word: Word) -> tuple[int, int, int, int]:
        """The word's box scaled to 0-1000 and clipped, as integers."""
        x0, y0, x1, y1 = word.box
        sx, sy = 1000.0 / max(self.width, 1), 1000.0 / max(self.height, 1)

        def clip(v: float) -> int:
            return int(min(1000, max(0, round(v))))

        return (clip(x0 * sx), clip(y0 * sy), clip(x1 * sx), clip(y1 * sy))

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass
class Document:
    """A list of pages and where they came from."""

    pages: list[Page]
    source: str = ""

    @property
    def text(self) -> str:
        return "\n".join(p.text for p in self.pages)

    @classmethod
    def from_path(cls, path: str | Path, ocr: str = "rapidocr") -> Document:
        """Read an image or PDF file; see `docsprint.io.readers.read_document`."""
        from docsprint.io.readers import read_document

        return read_document(path, ocr=ocr)


def split_line(text: str, box: Box) -> list[Word]:
    """Split an OCR line into words, giving each a share of the line box by character count.

    Used where a source gives only line boxes (SROIE's own OCR, OCR engines without word
    boxes). Spaces count as characters, so gaps land between the words.

    >>> [w.text for w in split_line("TOTAL  9.00", (0, 0, 110, 10))]
    ['TOTAL', '9.00']
    """
    x0, y0, x1, y1 = box
    n = max(len(text), 1)
    step = (x1 - x0) / n
    words: list[Word] = []
    start = None
    for i, ch in enumerate(text + " "):
        if ch.isspace():
            if start is not None:
                words.append(Word(text[start:i], (x0 + start * step, y0, x0 + i * step, y1)))
                start = None
        elif start is None:
            start = i
    return words


def quad_to_box(coords: list[float]) -> Box:
    """Axis-aligned bounding box of a polygon given as x1, y1, x2, y2, ..."""
    xs, ys = coords[0::2], coords[1::2]
    return (min(xs), min(ys), max(xs), max(ys))
