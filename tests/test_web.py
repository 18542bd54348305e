"""The service's web page, driven in Debian's Chromium by Playwright: upload the sample receipt,
wait for the fields, check the values and the boxes drawn. A screenshot is kept in
out/test-artifacts/ (CI keeps it as an artefact)."""

from __future__ import annotations

import shutil

import pytest

from tests.serving import ROOT, Server

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "out" / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (make system-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                                    "--no-first-run", "--disable-gpu"])
        yield b
        b.close()


def test_upload_the_sample_receipt_and_see_its_fields_boxed(browser):
    with Server() as srv:
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(srv.url + "/")
        page.wait_for_function("document.getElementById('status').textContent === 'ready'")
        assert "receipt" in page.locator("#schema").input_value()
        page.set_input_files("#file", str(ROOT / "samples" / "receipt.jpg"))
        page.click("#run")
        page.wait_for_selector("tr.field", timeout=120_000)
        rows = {r.get_attribute("data-key"): r.locator("td.value").inner_text() for r in page.locator("tr.field").all()}
        assert rows == {"company": "KEDAI BUKU SINAR JAYA SDN BHD", "date": "14/03/2018",
                        "address": "NO. 12, JALAN MERANTI 3, TAMAN UNIVERSITI, 81300 SKUDAI, JOHOR.", "total": "21.80"}
        boxes = page.locator("svg rect.field-box")
        assert {b.get_attribute("data-key") for b in boxes.all()} == set(rows)
        total = page.locator('svg rect.field-box[data-key="total"]').first.bounding_box()
        picture = page.locator(".page img").first.bounding_box()
        assert total and picture and total["width"] > 5 and total["height"] > 5
        assert picture["x"] <= total["x"] <= picture["x"] + picture["width"]  # drawn on the page
        assert "OCR" in page.locator(".times").inner_text() and "model" in page.locator(".times").inner_text()
        assert '"total"' in page.locator("#json").inner_text()
        assert page.locator("#download").get_attribute("href").startswith("blob:")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)
        # typed keys replace the schema
        page.fill("#keys", "total")
        page.click("#run")
        page.wait_for_function("document.querySelectorAll('tr.field').length === 1", timeout=120_000)
        assert page.locator("tr.field td.value").inner_text() == "21.80"
        assert errors == []


def test_review_mode_correct_a_field_by_clicking_words_and_save_it_as_a_label(browser, tmp_path):
    """`serve --review`: the model's answers on the page; a field set by clicking a word,
    another typed, one accepted; the saved label is the import format `train kie --data` reads."""
    import json

    import httpx

    from docsprint.data.datasets import load
    from docsprint.data.render import render_lines
    from tests.pdfs import text_pdf

    docs = tmp_path / "docs"
    docs.mkdir()
    render_lines(["ACME TRADING GMBH", "Invoice No: INV-2024-0042", "Date: 28.11.2022", "Total EUR 1.234,50"]
                 ).image.save(docs / "a-invoice.png")
    text_pdf(docs / "b-invoice.pdf", [["Invoice No: R-77", "Total 12.00"]])
    keys = "invoice number,total,date"
    with Server("--review", str(docs), "--review-keys", keys) as srv:
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(srv.url + "/")
        page.wait_for_function("document.querySelectorAll('tr.review-field').length === 3", timeout=120_000)
        assert "a-invoice.png" in page.locator("#review-file").inner_text()
        assert page.locator("#review-pos").inner_text().startswith("1 / 2")
        # the model's answers are drawn: its words on the page carry the key's colour
        assert page.locator("#review-pages rect.word").count() >= 10
        row = 'tr.review-field[data-key="invoice number"]'
        page.click(f"{row} button.review-null")  # start from nothing, then click the word
        page.click(row)
        word = page.locator('#review-pages rect.word[data-text*="0042"]').first
        word.click()
        clicked = word.get_attribute("data-text")
        assert page.locator(f"{row} input").input_value() == clicked
        assert page.locator('#review-pages rect.word.picked[data-key="invoice number"]').count() == 1
        page.fill('tr.review-field[data-key="date"] input', "2022-11-28")  # typed: not on the page as such
        total = page.locator('tr.review-field[data-key="total"] input').input_value()  # accepted as it is
        page.click("#review-save")
        page.wait_for_function("document.getElementById('review-message').dataset.saved === 'a-invoice'")
        page.wait_for_function("document.getElementById('review-file').textContent === "
                               "'b-invoice.pdf (the model\\'s answers)'", timeout=120_000)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "review-page.png"), full_page=True)
        assert errors == []
        listing = httpx.get(srv.url + "/v1/review").json()
        assert [d["reviewed"] for d in listing["documents"]] == [True, False]
        assert httpx.get(srv.url + "/v1/review/7").status_code == 404
        bad = httpx.post(srv.url + "/v1/review/1", json={"fields": {"total": {"value": "x", "page": 0, "words": [999]}}})
        assert bad.status_code == 422 and "outside page 0" in bad.json()["error"]
        assert httpx.get(srv.url + "/v1/extract").status_code == 405  # the service still serves
    (rec,) = [json.loads(line) for line in (docs / "labels" / "train.jsonl").read_text().splitlines()]
    words = rec["pages"][0]["words"]
    (number,) = rec["labels"]["invoice number"]
    assert number["value"] == clicked and number["page"] == 0 and [words[i][0] for i in number["words"]] == [clicked]
    assert rec["labels"]["date"] == [{"value": "2022-11-28", "page": None}] and rec["fields"]["date"] == "2022-11-28"
    assert rec["fields"]["total"] == (total or None) and rec["reviewed"] is True
    (ex,) = load("labels", "train", docs / "labels")  # ready for the next fine-tune
    assert ex.fields["invoice number"] == clicked and ex.doc.pages[0].get_image() is not None
