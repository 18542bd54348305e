"""Synthetic documents: deterministic, boxes that hold their words' ink, readable by the loader."""

import hashlib
import json
import random

import numpy as np
import pytest

from docsprint.cli import main
from docsprint.data import datasets
from docsprint.data.synth import KINDS, Canvas, _rotate, font_files, generate, make_document


def _digest(folder):
    h = hashlib.sha256((folder / "train.jsonl").read_bytes())
    for p in sorted((folder / "images").iterdir()):
        h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_documents_other_seed_other_documents(tmp_path):
    a, b, c = (generate("mixed", 8, s, tmp_path / n, progress=False) for s, n in [(3, "a"), (3, "b"), (4, "c")])
    assert _digest(a.parent) == _digest(b.parent)
    assert _digest(a.parent) != _digest(c.parent)


@pytest.mark.parametrize("kind", KINDS)
def test_every_value_is_written_on_the_page_and_every_box_is_inside_it(kind):
    for i in range(5):
        img, words, fields = make_document(kind, 0, i)
        text = " ".join(w.text for w in words)
        instructions = kind == "irsform" and all(v is None for v in fields.values())  # a form's instructions page
        assert sum(v is not None for v in fields.values()) >= 3 or (instructions and " Page " in text)
        assert any(v is None for v in fields.values()) or kind == "form"  # keys asked but absent
        for v in fields.values():
            for item in (v if isinstance(v, list) else [v] if v else []):
                assert all(t in text for t in item.split()), (kind, item)
        for w in words:
            x0, y0, x1, y1 = w.box
            assert 0 <= x0 < x1 <= img.width and 0 <= y0 < y1 <= img.height


def test_boxes_hold_the_ink_of_their_words_also_after_rotation():
    rng = random.Random(0)
    c = Canvas(400, 300, rng, [str(font_files()[0])])
    c.ink, c.paper = 0, 255
    c.image.paste(255, (0, 0, 400, 300))
    c.text(60, 80, "INVOICE 12345", 24)
    c.text(60, 200, "Total 99.00", 18)
    for img, words in [(c.image, c.words), _rotate(c.image, c.words, 2.0, 255)]:
        ink = np.asarray(img) < 128
        inside = np.zeros_like(ink)
        for w in words:
            x0, y0, x1, y1 = (int(round(v)) for v in w.box)
            assert ink[y0:y1 + 1, x0:x1 + 1].sum() > 10  # the word's ink is in its box
            inside[max(0, y0 - 1):y1 + 2, max(0, x0 - 1):x1 + 2] = True
        assert ink[~inside].sum() == 0  # and no ink outside every box


def test_the_synth_command_writes_a_folder_the_dataset_loader_reads(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synth", "--kind", "receipt", "--n", "3", "--seed", "1", "--out", str(out)]) == 0
    assert "wrote 3 receipt pages" in capsys.readouterr().out
    examples = datasets.load("synth", "train", out)
    assert len(examples) == 3
    ex = examples[0]
    page = ex.doc.pages[0]
    assert page.get_image().size == (page.width, page.height)
    lists = datasets.list_keys("synth", ex)
    assert lists and all(isinstance(ex.fields[k], list) for k in lists)  # line items
    record = json.loads((out / "train.jsonl").read_text().splitlines()[0])
    assert record["pages"][0]["image"].startswith("images/")  # relative: the folder can move


def test_bad_synth_arguments_are_clear_errors(tmp_path, capsys):
    assert main(["synth", "--kind", "receipt", "--n", "0", "--out", str(tmp_path / "x")]) == 2
    assert "at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synth", "--kind", "passport", "--n", "1", "--out", str(tmp_path / "x")])


def test_a_share_of_pages_read_by_ocr_keeps_values_in_the_ocr_spelling(tmp_path):
    """--ocr-share: those pages carry RapidOCR's words, and each value is what OCR read where
    it is found (the model copies it), else the value itself."""
    from docsprint.data.labels import find_value

    generate("invoice-intl", 2, 3, tmp_path, progress=False, ocr_share=1.0)
    exact = [make_document("invoice-intl", 3, i) for i in range(2)]
    for (_, words, fields), ex in zip(exact, datasets.load("synth", "train", tmp_path), strict=True):
        assert ex.id.endswith("-ocr")
        ocr_words = ex.doc.pages[0].words
        assert [w.text for w in ocr_words] != [w.text for w in words]  # OCR splits lines its own way
        assert set(ex.fields) == set(fields)
        read = {w.text for w in ocr_words}
        placed = 0
        for key, value in ex.fields.items():
            if value is None or isinstance(value, list):
                continue
            if find_value(ocr_words, fields[key], key):
                assert all(t in read for t in value.split())  # the OCR's words for it
                placed += 1
            else:
                assert value == fields[key]
        assert placed >= len([v for v in fields.values() if isinstance(v, str)]) * 0.7


def test_a_second_view_reads_a_dataset_with_our_ocr(tmp_path, monkeypatch):
    """``NAME@rapidocr``: the same documents as RapidOCR reads their images (cached once), the
    values spelt as the OCR's words that read as them; an unknown engine is a clear error."""
    monkeypatch.setenv("DOCSPRINT_CACHE", str(tmp_path / "cache"))
    generate("receipt-intl", 2, 5, tmp_path / "d", progress=False)
    exact = datasets.load("synth", "train", tmp_path / "d")
    view = datasets.load("synth@rapidocr", "train", tmp_path / "d")
    assert [e.id for e in view] == [e.id for e in exact] and list((tmp_path / "cache" / "ocr").iterdir())
    for a, b in zip(exact, view, strict=True):
        assert set(a.fields) == set(b.fields)
        assert [w.box for w in a.doc.pages[0].words] != [w.box for w in b.doc.pages[0].words]  # read again
        read = " ".join(w.text for w in b.doc.pages[0].words)
        assert any(v and v in read for v in b.fields.values() if isinstance(v, str))  # OCR's spelling
    again = datasets.load("synth@rapidocr", "train", tmp_path / "d")  # from the cache
    assert [e.fields for e in again] == [e.fields for e in view]
    with pytest.raises(datasets.DatasetError, match="second view"):
        datasets.load("synth@abbyy", "train", tmp_path / "d")


def test_invoices_say_who_is_who_by_caption_not_by_order():
    """Some invoices print the buyer's block above the seller's: the caption over each block,
    not its place on the page, tells the parties apart, and the asked names are right."""
    from docsprint.data.business import ASK, LOCALES

    caps = {role: {w for loc in LOCALES.values() for w in loc[role] if " " not in w} for role in ("seller", "buyer")}
    buyer_first = 0
    for i in range(300):
        _, words, fields = make_document("invoice-intl", 1, i)
        found = {role: [w for w in words if w.text.rstrip(":") in caps[role]] for role in caps}
        if len(found["seller"]) != 1 or len(found["buyer"]) != 1:
            continue
        seller = next((v for k, v in fields.items() if k in ASK["seller"]), None)
        if not seller:
            continue
        sy, by = found["seller"][0].box[1], found["buyer"][0].box[1]
        first = seller.split()[0]
        # the seller's name right under its own caption, with no other caption between
        under = [w.box[1] for w in words if w.text == first and sy < w.box[1] < sy + 120]
        if by < sy and under:
            buyer_first += 1
            assert not sy < by < min(under)
    assert buyer_first >= 3  # the generator does print the buyer first, now and then


def test_invoice_totals_in_a_summary_table_and_amount_due_defaults_to_the_total():
    """A share of invoices print their totals as a tax summary table (net, tax, rate, gross
    columns); asked, net / tax / total are the sums row's. With no amount-due line printed and
    nothing paid, the amount due is the total; a purchase order has none."""
    from docsprint.data.business import ASK, LOCALES, TOTALS_TABLE

    due_labels = {w for loc in LOCALES.values() for w in loc["due_amt"] + loc["paid"]}
    rate_heads = {w for heads in TOTALS_TABLE.values() for w in heads[2] if "%" in w}  # "MwSt-%", "VAT %"
    tables = defaulted = 0
    for i in range(200):
        _, words, fields = make_document("invoice-intl", 2, i)
        text = " ".join(w.text for w in words)
        due = next((v for k, v in fields.items() if k in ASK["due_amt"]), None)
        total = next((v for k, v in fields.items() if k in ASK["total"]), None)
        if total and any(h in text for h in rate_heads):
            tables += 1
            assert total.split()[0] in text.split()  # the sums row's gross, as printed
        if due and total and not any(label in text for label in due_labels):
            assert due == total
            defaulted += 1
    assert tables >= 3 and defaulted >= 3
