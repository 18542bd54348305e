import shutil

import pytest
from PIL import Image

from docsprint.io.document import Document
from docsprint.io.readers import DocumentError, read_document
from tests.pdfs import encrypted_pdf, text_pdf


def _words(doc: Document, page: int = 0) -> list[str]:
    return [w.text for w in doc.pages[page].words]


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_image_is_read_and_ocred_with_word_boxes(tmp_path, receipt_page, ext):
    path = tmp_path / f"receipt.{ext}"
    receipt_page.image.save(path)
    doc = read_document(path)
    assert len(doc.pages) == 1
    words = _words(doc)
    assert "TOTAL" in words and "21.80" in words
    page = doc.pages[0]
    for w in page.words:
        x0, y0, x1, y1 = w.box
        assert 0 <= x0 < x1 <= page.width and 0 <= y0 < y1 <= page.height
        assert " " not in w.text  # lines were split into words
    # the OCR box of "TOTAL" lies where the renderer drew it
    drawn = next(w for w in receipt_page.words if w.text == "TOTAL").box
    got = next(w for w in page.words if w.text == "TOTAL").box
    assert abs(got[0] - drawn[0]) < 15 and abs(got[1] - drawn[1]) < 15


def test_every_tiff_frame_is_a_page(tmp_path, receipt_page):
    second = receipt_page.image.transpose(Image.Transpose.FLIP_TOP_BOTTOM).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    blank = Image.new("RGB", (300, 200), "white")
    path = tmp_path / "multi.tiff"
    receipt_page.image.save(path, save_all=True, append_images=[second, blank])
    doc = read_document(path)
    assert len(doc.pages) == 3
    assert "TOTAL" in _words(doc, 0)
    assert doc.pages[2].words == []


def test_born_digital_pdf_uses_the_text_layer_on_every_page(tmp_path):
    path = text_pdf(tmp_path / "a.pdf", [["Invoice No. 42", "Total: 9.00"], ["Second page here"]])
    doc = read_document(path)
    assert len(doc.pages) == 2
    assert _words(doc, 0) == ["Invoice", "No.", "42", "Total:", "9.00"]
    assert _words(doc, 1) == ["Second", "page", "here"]
    page = doc.pages[0]
    inv, total = page.words[0], page.words[3]
    assert inv.box[1] < total.box[1]  # top to bottom in pixel coordinates
    assert 35 <= inv.box[0] <= 45  # drawn at x = 40 pt, rendered at 72 dpi


def test_scanned_pdf_is_rendered_and_ocred(tmp_path, receipt_page):
    path = tmp_path / "scan.pdf"
    receipt_page.image.save(path, resolution=72)
    doc = read_document(path)
    assert len(doc.pages) == 1 and "TOTAL" in _words(doc)


def _bad_file(kind: str, d, page):
    if kind == "empty":
        (d / "empty.png").write_bytes(b"")
        return d / "empty.png"
    if kind == "truncated":
        page.image.save(d / "good.jpg")
        data = (d / "good.jpg").read_bytes()
        (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
        return d / "truncated.jpg"
    if kind == "text":
        (d / "notes.txt").write_text("hello, not a document")
        return d / "notes.txt"
    if kind == "corrupt-pdf":
        (d / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage \x00\x01")
        return d / "broken.pdf"
    return d / "missing.png"


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "empty file"),
        ("truncated", "truncated"),
        ("text", "not an image or PDF"),
        ("corrupt-pdf", "corrupt"),
        ("missing", "no such file"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path, receipt_page, kind, message):
    path = _bad_file(kind, tmp_path, receipt_page)
    with pytest.raises(DocumentError) as err:
        read_document(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_password_protected_pdf(tmp_path):
    src = text_pdf(tmp_path / "plain.pdf", [["Secret total 9.00"]])
    path = encrypted_pdf(src, tmp_path / "locked.pdf")
    with pytest.raises(DocumentError, match="password-protected"):
        read_document(path)


def test_image_above_50_megapixels_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (8000, 6300)).save(path)  # 50.4 MP, a few KB on disk
    with pytest.raises(DocumentError, match="50 megapixel"):
        read_document(path)


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="Debian's tesseract-ocr is not installed")
def test_tesseract_engine_reads_the_same_page(tmp_path, receipt_page):
    path = tmp_path / "receipt.png"
    receipt_page.image.save(path)
    doc = read_document(path, ocr="tesseract")
    words = _words(doc)
    assert "TOTAL" in words and "21.80" in words


def test_ocr_caches_are_keyed_by_the_engines_settings():
    from docsprint.io.ocr import RapidOCREngine

    tuned, library = RapidOCREngine(), RapidOCREngine(settings={})
    assert tuned.settings == RapidOCREngine.SETTINGS and library.settings == {}
    assert tuned.cache_name != library.cache_name and tuned.cache_name.startswith("rapidocr-")
    assert RapidOCREngine().cache_name == tuned.cache_name


def test_reading_order_follows_a_turned_scans_lines():
    """Three lines of 20 words, 12 pixels apart, on a page turned by 2 degrees: each line drifts
    28 pixels from end to end, more than the spacing; read along the text's slope, each line stays
    whole, in order, however the words came in. A straight page reads as before."""
    import math
    import random

    from docsprint.io.document import Word
    from docsprint.io.ocr import reading_order, skew

    def page(degrees):
        slope = math.tan(math.radians(degrees))
        return [Word(f"l{line}w{i}", (i * 40, 100 + line * 12 + i * 40 * slope, i * 40 + 30, 108 + line * 12 + i * 40 * slope))
                for line in range(3) for i in range(20)]

    for degrees in (2.0, -2.0, 0.0):
        words = page(degrees)
        assert abs(skew(words) - math.tan(math.radians(degrees))) < 1e-3
        random.Random(0).shuffle(words)
        assert [w.text for w in reading_order(words)] == [f"l{line}w{i}" for line in range(3) for i in range(20)]
    assert skew([]) == 0.0 and reading_order([]) == []
