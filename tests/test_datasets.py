import json

import pytest
from PIL import Image

from docsprint.data import datasets
from docsprint.data.datasets import DatasetError


def test_sroie_loader_splits_lines_into_words(sroie_folder):
    examples = datasets.load("sroie", "train", sroie_folder)
    assert len(examples) == 3
    ex = examples[1]
    assert ex.fields["total"] == "11.50" and ex.fields["company"] == "KEDAI BUKU SINAR JAYA SDN BHD"
    page = ex.doc.pages[0]
    assert page.get_image() is not None and page.get_image().size == (page.width, page.height)
    words = [w.text for w in page.words]
    assert "TOTAL" in words and "11.50" in words
    assert all(" " not in w for w in words)
    assert datasets.load("sroie", "test", sroie_folder, limit=2)[1].id == "sroie/test/001"


def test_funsd_loader_links_questions_to_answers(tmp_path):
    root = tmp_path / "funsd" / "testing_data"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    Image.new("RGB", (200, 100), "white").save(root / "images" / "f1.png")
    form = {"form": [
        {"id": 0, "text": "Name:", "box": [0, 0, 40, 10], "label": "question",
         "words": [{"text": "Name:", "box": [0, 0, 40, 10]}], "linking": [[0, 1]]},
        {"id": 1, "text": "Ada Lovelace", "box": [50, 0, 150, 10], "label": "answer",
         "words": [{"text": "Ada", "box": [50, 0, 80, 10]}, {"text": "Lovelace", "box": [85, 0, 150, 10]}],
         "linking": [[0, 1]]},
        {"id": 2, "text": "Date:", "box": [0, 20, 40, 30], "label": "question",
         "words": [{"text": "Date:", "box": [0, 20, 40, 30]}], "linking": []},
        {"id": 3, "text": "FORM", "box": [0, 40, 40, 50], "label": "header",
         "words": [{"text": "FORM", "box": [0, 40, 40, 50]}], "linking": []},
    ]}
    (root / "annotations" / "f1.json").write_text(json.dumps(form))
    (ex,) = datasets.load("funsd", "test", tmp_path / "funsd")
    assert ex.fields == {"Name:": "Ada Lovelace"}  # an unanswered question is no key
    assert [w.text for w in ex.doc.pages[0].words] == ["Name:", "Ada", "Lovelace", "Date:", "FORM"]
    assert ex.entities == [("question", [0]), ("answer", [1, 2]), ("question", [3]), ("header", [4])]


def test_wildreceipt_loader_makes_lists_of_repeated_fields(tmp_path):
    root = tmp_path / "wildreceipt"
    (root / "images").mkdir(parents=True)
    classes = ["Ignore", "Store_name_value", "Store_name_key", "Prod_item_value", "Prod_price_value", "Total_value"]
    (root / "class_list.txt").write_text("\n".join(classes) + "\n")
    Image.new("RGB", (100, 100), "white").save(root / "images" / "r1.jpg")

    def ann(text, label, y):
        return {"box": [0, y, 50, y, 50, y + 8, 0, y + 8], "text": text, "label": label}

    rec = {"file_name": "images/r1.jpg", "height": 100, "width": 100, "annotations": [
        ann("Cafe Uno", 1, 0), ann("Tea", 3, 10), ann("2.00", 4, 10), ann("Cake", 3, 20),
        ann("3.50", 4, 20), ann("5.50", 5, 30), ann("Tea", 3, 40), ann("5.50", 5, 50), ann("GmbH", 1, 60)]}
    (root / "test.jsonl").write_text(json.dumps(rec) + "\n")
    (ex,) = datasets.load("wildreceipt", "test", root)
    assert ex.fields["store name"] == "Cafe Uno GmbH"  # a value's boxes, joined
    assert ex.fields["item"] == ["Tea", "Cake", "Tea"] and ex.fields["item price"] == ["2.00", "3.50"]
    assert ex.fields["total"] == "5.50" and ex.fields["phone"] is None  # a total printed twice: one value
    assert len(ex.fields) == 12
    assert [w.text for w in ex.doc.pages[0].words][:2] == ["Cafe", "Uno"]


def test_missing_folder_and_unknown_dataset_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        datasets.load("sroie", "test", tmp_path / "nope")
    with pytest.raises(DatasetError, match="unknown dataset"):
        datasets.load("cord", "test", tmp_path)
    (tmp_path / "sroie").mkdir()
    with pytest.raises(DatasetError, match="boxes not found"):
        datasets.load("sroie", "dev", tmp_path / "sroie")


def test_data_dir_defaults_to_the_environment_variable(tmp_path, monkeypatch, sroie_folder):
    monkeypatch.setenv("DOCSPRINT_DATA", str(sroie_folder.parent))
    assert datasets.data_dir("sroie") == sroie_folder


def test_synthetic_pages_load_in_reading_order(tmp_path):
    """A generated 1099 is drawn column by column (payer and recipient, then the money boxes);
    loaded for training, its words come row by row, as the PDF and OCR readers give a real one."""
    from docsprint.data.synth import generate

    generate("irsform", 8, 0, tmp_path, progress=False)
    loaded = datasets.load("synth", "train", tmp_path)
    lines = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    n = next(i for i, doc in enumerate(lines) if {"Rents", "TIN"} <= {w[0] for w in doc["pages"][0]["words"]})
    stored = lines[n]["pages"][0]["words"]  # the first 1099 of the eight pages
    words = loaded[n].doc.pages[0].words
    assert sorted(w.text for w in words) == sorted(w[0] for w in stored)
    drawn, read = [w[0] for w in stored], [w.text for w in words]
    # box 1 "Rents" (top right) is drawn after the payer's column; a reader meets it first
    assert drawn.index("Rents") > drawn.index("TIN") and read.index("Rents") < read.index("TIN")
