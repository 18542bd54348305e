"""Read a file into a `Document`: images (JPEG, PNG, TIFF with every frame a page) and PDFs
(the text layer with word boxes for born-digital pages, rendering + OCR for scanned ones).

Every failure is a `DocumentError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

from PIL import Image, ImageSequence, UnidentifiedImageError

from docsprint.io.document import Document, Page, Word, split_line
from docsprint.io.ocr import get_engine, reading_order

MAX_PIXELS = 50_000_000
PDF_SCALE = 2.0  # render scanned PDF pages at 144 dpi for OCR
THUMB_SCALE = 1.0  # born-digital pages: 72 dpi is plenty for the model's 128 px thumbnail


class DocumentError(ValueError):
    """A file that cannot be read as a document; ``str(e)`` is one line naming the file."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def read_document(path: str | Path, ocr: str = "rapidocr") -> Document:
    """``read_document("scan.pdf")`` -> Document with one Page per page (or TIFF frame)."""
    path = Path(path)
    if not path.exists():
        raise DocumentError(path, "no such file")
    if not path.is_file():
        raise DocumentError(path, "not a file")
    size = path.stat().st_size
    if size == 0:
        raise DocumentError(path, "empty file")
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"%PDF"):
        return read_pdf(path, ocr)
    return read_image(path, ocr)


def _check_pixels(path: Path, w: int, h: int) -> None:
    if w * h > MAX_PIXELS:
        raise DocumentError(path, f"image of {w}x{h} = {w * h / 1e6:.0f} megapixels is above the 50 megapixel limit")


def read_image(path: Path, ocr: str = "rapidocr") -> Document:
    try:
        with Image.open(path) as im:
            _check_pixels(path, *im.size)
            frames = []
            for frame in ImageSequence.Iterator(im):
                _check_pixels(path, *frame.size)
                frame.load()
                frames.append(frame.convert("RGB"))
    except DocumentError:
        raise
    except UnidentifiedImageError:
        raise DocumentError(path, "not an image or PDF (unrecognised file format)") from None
    except Image.DecompressionBombError:
        raise DocumentError(path, "image is above the 50 megapixel limit") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DocumentError(path, f"corrupt or truncated image ({e})") from None
    engine = get_engine(ocr)
    pages = [Page(img, img.width, img.height, engine(img)) for img in frames]
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
            for line in text.splitlines():
                words += split_line(line, (left, top, right, bottom))
        finally:
            raw.FPDFPage_CloseAnnot(annot)
    return words


def read_pdf(path: Path, ocr: str = "rapidocr") -> Document:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as e:
        msg = str(e).lower()
        if "password" in msg:
            raise DocumentError(path, "PDF is password-protected") from None
        raise DocumentError(path, f"corrupt or truncated PDF ({e})") from None
    try:
        if len(pdf) == 0:
            raise DocumentError(path, "PDF has no pages")
        # pdfium logs "XFA pdf, but no XFA support" for some forms: their AcroForm widgets still read.
        pdf_log = logging.getLogger("pypdfium2")
        level = pdf_log.level
        pdf_log.setLevel(logging.ERROR)
        try:
            pdf.init_forms()
        finally:
            pdf_log.setLevel(level)
        pages = []
        for i in range(len(pdf)):
            page = pdf[i]
            w, h = page.get_size()
            words = _pdf_words(page.get_textpage(), h, THUMB_SCALE) + _form_words(pdf, page, h, THUMB_SCALE)
            if words:  # born-digital: the text layer, a small rendering for the image side
                img = page.render(scale=THUMB_SCALE, may_draw_forms=True).to_pil().convert("RGB")
                pages.append(Page(img, img.width, img.height, reading_order(words)))
            else:  # scanned: render and OCR
                img = page.render(scale=PDF_SCALE, may_draw_forms=True).to_pil().convert("RGB")
                _check_pixels(path, img.width, img.height)
                pages.append(Page(img, img.width, img.height, get_engine(ocr)(img)))
    except pdfium.PdfiumError as e:
        raise DocumentError(path, f"corrupt PDF ({e})") from None
    finally:
        pdf.close()
    return Document(pages, source=str(path))
