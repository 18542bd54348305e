"""Read a file into a `Document`: images (JPEG, PNG, TIFF with every frame a page) and PDFs
(the text layer with word boxes for born-digital pages, rendering + OCR for scanned ones).

Every failure is a `DocumentError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from docsprint.errors import DocsprintError
from docsprint.io.document import Box, Document, Page, Word, split_line
from docsprint.io.limits import DEFAULT_LIMITS, Limits
from docsprint.io.ocr import get_engine, reading_order

PDF_SCALE = 2.0  # render scanned PDF pages at 144 dpi for OCR
THUMB_SCALE = 1.0  # born-digital pages: 72 dpi is plenty for the model's 128 px thumbnail
THUMB_PIXELS = 4e6  # ... and at most 4 megapixels, whatever the page's size in points


class DocumentError(DocsprintError):
    """A file that cannot be read as a document; ``str(e)`` is one line naming the file."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def sha256_file(path: str | Path) -> str:
    """The file's sha256, read in 1 MB chunks (ids of documents in batch output and labels)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_document(path: str | Path, ocr: str = "rapidocr", limits: Limits = DEFAULT_LIMITS) -> Document:
    """``read_document("scan.pdf")`` -> Document with one Page per page (or TIFF frame)."""
    path = Path(path)
    if not path.exists():
        raise DocumentError(path, "no such file")
    if not path.is_file():
        raise DocumentError(path, "not a file")
    size = path.stat().st_size
    if size == 0:
        raise DocumentError(path, "empty file")
    if size > limits.max_file_mb * 1e6:
        raise DocumentError(path, f"file of {size / 1e6:.0f} MB is above the {limits.max_file_mb:g} MB limit")
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"%PDF"):
        return read_pdf(path, ocr, limits)
    return read_image(path, ocr, limits)


class _Budget:
    """Pixels, pages and time spent on one document so far, against the limits."""

    def __init__(self, path: Path, limits: Limits):
        self.path, self.limits = path, limits
        self.pixels = 0.0
        self.deadline = limits.deadline()

    def pages(self, n: int, what: str = "pages") -> None:
        if n > self.limits.max_pages:
            raise DocumentError(self.path, f"{n} {what} is above the {self.limits.max_pages} page limit")

    def page(self, w: float, h: float, i: int = 0) -> None:
        """Check one page of ``w`` x ``h`` pixels before it is decoded or rendered."""
        lim = self.limits
        w, h = max(round(w), 1), max(round(h), 1)
        mp = w * h / 1e6
        where = f"page {i + 1}: " if i else ""
        if mp > lim.max_megapixels:
            raise DocumentError(self.path, f"{where}image of {w}x{h} = {mp:.0f} megapixels is above the "
                                           f"{lim.max_megapixels:g} megapixel limit")
        if max(w, h) / min(w, h) > lim.max_aspect:
            raise DocumentError(self.path, f"{where}image of {w}x{h} pixels is too narrow to be a page "
                                           f"(sides more than {lim.max_aspect:g}:1)")
        self.pixels += mp
        if self.pixels > lim.max_total_megapixels:
            raise DocumentError(self.path, f"pages of more than {lim.max_total_megapixels:g} megapixels in all "
                                           f"(the limit), at page {i + 1}")

    def words(self, words: list[Word], i: int) -> list[Word]:
        if len(words) > self.limits.max_words:
            raise DocumentError(self.path, f"page {i + 1} has {len(words)} words, above the "
                                           f"{self.limits.max_words} word limit")
        return words

    def tick(self, i: int) -> None:
        """Between pages: stop when reading this document has taken longer than allowed."""
        if self.deadline.expired():
            raise DocumentError(self.path, f"reading took longer than the {self.limits.max_seconds:g} s limit "
                                           f"(stopped before page {i + 1})")


def _ocr(path: Path, engine, img: Image.Image) -> list[Word]:
    """The engine's words; an engine failure is this file's error, not a traceback."""
    try:
        return engine(img)
    except Exception as e:  # noqa: BLE001 - any OCR crash on odd pixels: this file fails, not the call
        raise DocumentError(path, f"OCR failed on a {img.width}x{img.height} image ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else 'no message'})") from None


def to_rgb(frame: Image.Image) -> Image.Image:
    """RGB pixels of any frame. 16- and 32-bit grayscale (medical and archival scans) are
    scaled down to 8 bits, not clipped: PIL's own conversion turns them all white."""
    if frame.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(frame, dtype=np.float64)
        top = a.max() if a.size else 0.0
        scale = 1.0 if top <= 255 else 257.0 if top <= 65535 else top / 255.0
        return Image.fromarray(np.clip(a / scale, 0, 255).astype(np.uint8), "L").convert("RGB")
    return frame.convert("RGB")


def read_image(path: Path, ocr: str = "rapidocr", limits: Limits = DEFAULT_LIMITS) -> Document:
    budget = _Budget(path, limits)
    engine = get_engine(ocr)
    pages = []
    try:
        with Image.open(path) as im:
            n = getattr(im, "n_frames", 1)
            budget.pages(n, "frames")
            for i in range(n):  # every frame's size from its header: all checked before any is decoded
                im.seek(i)
                budget.page(*im.size, i)
            for i, frame in enumerate(ImageSequence.Iterator(im)):
                budget.tick(i)
                frame.load()
                img = to_rgb(frame)
                pages.append(Page(img, img.width, img.height, budget.words(_ocr(path, engine, img), i)))
    except DocumentError:
        raise
    except UnidentifiedImageError:
        raise DocumentError(path, "not an image or PDF (unrecognised file format)") from None
    except Image.DecompressionBombError:
        raise DocumentError(path, f"image is above the {limits.max_megapixels:g} megapixel limit") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise DocumentError(path, f"corrupt or truncated image ({e})") from None
    return Document(pages, source=str(path))


def _pdf_words(textpage, page_height: float, scale: float) -> list[Word]:
    """Words of a PDF text layer (split on whitespace), boxes in pixels at ``scale``."""
    n = textpage.count_chars()
    text = textpage.get_text_range(0, n)
    if len(text) != n:  # characters outside the BMP: fall back to one call per character
        text = "".join(textpage.get_text_range(i, 1) or " " for i in range(n))
    words: list[Word] = []
    chars: list[str] = []
    box: list[float] = []

    def flush() -> None:
        if chars:
            words.append(Word("".join(chars), (box[0] * scale, (page_height - box[3]) * scale,
                                              box[2] * scale, (page_height - box[1]) * scale)))
        chars.clear()
        box.clear()

    for i, ch in enumerate(text):
        if ch.isspace() or not ch.isprintable():
            flush()
            continue
        left, bottom, right, top = textpage.get_charbox(i)
        if box:
            overlap = min(top, box[3]) - max(bottom, box[1])  # vertical overlap with the word
            if overlap <= 0 or left - box[2] > box[3] - box[1]:
                flush()  # a new line, or a gap of about an em, without a space character
        if box:
            box[:] = [min(box[0], left), min(box[1], bottom), max(box[2], right), max(box[3], top)]
        else:
            box[:] = [left, bottom, right, top]
        chars.append(ch)
    flush()
    return words


def _widget_text(formenv, annot) -> str:
    """The value of a form widget (UTF-16 from pdfium), '' when it has none."""
    import pypdfium2.raw as raw

    n = raw.FPDFAnnot_GetFormFieldValue(formenv, annot, None, 0)
    if n <= 2:
        return ""
    buf = ctypes.create_string_buffer(n)
    raw.FPDFAnnot_GetFormFieldValue(formenv, annot, ctypes.cast(buf, ctypes.POINTER(raw.FPDF_WCHAR)), n)
    return buf.raw[: n - 2].decode("utf-16-le", errors="replace")


COMB_FLAG = 1 << 24  # a text field drawn as a row of character cells (an SSN's nine digits)


def _font_size(formenv, annot) -> float:
    """The field's font size in points, 0 when it is "auto" (fit to the box)."""
    import pypdfium2.raw as raw

    size = ctypes.c_float(0)
    return float(size.value) if raw.FPDFAnnot_GetFontSize(formenv, annot, ctypes.byref(size)) else 0.0


def _field_words(text: str, box: Box, font_size: float, comb: bool, scale: float) -> list[Word]:
    """A filled field's words where the viewer draws them: a comb field's characters spread over
    its cells; any other field's lines from its left edge, as wide as the font makes them (about
    half an em a character), centred in the box's height; not spread across the whole box,
    which would make "John Doe" two words 250 points wide."""
    x0, y0, x1, y1 = box
    lines = [line for line in text.splitlines() if line.strip()] or [text]
    if comb:
        return [w for line in lines for w in split_line(line, box)]
    row = (y1 - y0) / len(lines)
    size = (font_size or min(row / scale * 0.7, 12.0)) * scale  # auto: the box's height
    words: list[Word] = []
    for j, line in enumerate(lines):
        mid = y0 + row * (j + 0.5)
        start = x0 + 2 * scale
        end = min(x1, start + 0.5 * size * len(line))
        words += split_line(line, (start, max(y0, mid - 0.6 * size), end, min(y1, mid + 0.6 * size)))
    return words


def _form_words(pdf, page, page_height: float, scale: float) -> list[Word]:
    """Words of a page's filled form fields (AcroForm widgets), which the text layer lacks: a
    filled-in tax form's text layer is the blank form. A text field's value is spread over its
    rectangle by characters; a ticked checkbox or radio button reads "X"."""
    import pypdfium2.raw as raw

    if pdf.formenv is None:
        return []
    words: list[Word] = []
    for i in range(raw.FPDFPage_GetAnnotCount(page)):
        annot = raw.FPDFPage_GetAnnot(page, i)
        try:
            if raw.FPDFAnnot_GetSubtype(annot) != raw.FPDF_ANNOT_WIDGET:
                continue
            kind = raw.FPDFAnnot_GetFormFieldType(pdf.formenv, annot)
            if kind in (raw.FPDF_FORMFIELD_CHECKBOX, raw.FPDF_FORMFIELD_RADIOBUTTON):
                text = "X" if raw.FPDFAnnot_IsChecked(pdf.formenv, annot) else ""
            elif kind in (raw.FPDF_FORMFIELD_TEXTFIELD, raw.FPDF_FORMFIELD_COMBOBOX):
                text = _widget_text(pdf.formenv, annot)
            else:
                continue
            rect = raw.FS_RECTF()
            if not text.strip() or not raw.FPDFAnnot_GetRect(annot, rect):
                continue
            top = (page_height - max(rect.top, rect.bottom)) * scale
            bottom = (page_height - min(rect.top, rect.bottom)) * scale
            left, right = min(rect.left, rect.right) * scale, max(rect.left, rect.right) * scale
            words += _field_words(text, (left, top, right, bottom), _font_size(pdf.formenv, annot),
                                  bool(raw.FPDFAnnot_GetFormFieldFlags(pdf.formenv, annot) & COMB_FLAG), scale)
        finally:
            raw.FPDFPage_CloseAnnot(annot)
    return words


# pdfium is not thread-safe: two threads in it at once corrupt its heap (the service reads
# documents in a thread pool). Every pdfium call holds this lock; OCR runs outside it.
PDFIUM_LOCK = threading.RLock()


def read_pdf(path: Path, ocr: str = "rapidocr", limits: Limits = DEFAULT_LIMITS) -> Document:
    import pypdfium2 as pdfium

    budget = _Budget(path, limits)
    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as e:
            msg = str(e).lower()
            if "password" in msg:
                raise DocumentError(path, "PDF is password-protected") from None
            raise DocumentError(path, f"corrupt or truncated PDF ({e})") from None
    try:
        with PDFIUM_LOCK:
            n_pages = len(pdf)
            if n_pages == 0:
                raise DocumentError(path, "PDF has no pages")
            budget.pages(n_pages)
            # pdfium logs "XFA pdf, but no XFA support" for some forms: their AcroForm widgets still read.
            pdf_log = logging.getLogger("pypdfium2")
            level = pdf_log.level
            pdf_log.setLevel(logging.ERROR)
            try:
                pdf.init_forms()
            finally:
                pdf_log.setLevel(level)
        pages = []
        for i in range(n_pages):
            budget.tick(i)
            with PDFIUM_LOCK:  # every pdfium object is closed inside the lock, none left to a finaliser
                page = pdf[i]
                try:
                    w, h = page.get_size()
                    # Born-digital: the text layer, and a small rendering for the image side (at
                    # most THUMB_PIXELS, so an oversized drawing still reads); scanned: render and OCR.
                    scale = min(THUMB_SCALE, (THUMB_PIXELS / max(w * h, 1.0)) ** 0.5)
                    textpage = page.get_textpage()
                    try:
                        words = _pdf_words(textpage, h, scale) + _form_words(pdf, page, h, scale)
                    finally:
                        textpage.close()
                    if not words:
                        scale = PDF_SCALE
                    budget.page(w * scale, h * scale, i)  # before anything is rendered
                    bitmap = page.render(scale=scale, may_draw_forms=True)
                    try:
                        img = bitmap.to_pil().convert("RGB")
                    finally:
                        bitmap.close()
                finally:
                    page.close()
            words = budget.words(words if words else _ocr(path, get_engine(ocr), img), i)
            pages.append(Page(img, img.width, img.height, reading_order(words) if scale != PDF_SCALE else words))
    except pdfium.PdfiumError as e:
        raise DocumentError(path, f"corrupt PDF ({e})") from None
    finally:
        with PDFIUM_LOCK:
            pdf.close()
    return Document(pages, source=str(path))
