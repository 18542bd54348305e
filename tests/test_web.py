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
