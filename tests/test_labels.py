"""`docsprint data import`: every label format, from a fixture made here, back to the values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docsprint.cli import main
from docsprint.data.datasets import load
from docsprint.data.labels import LabelError, export_labels, find_value, import_labels, read_records
from docsprint.data.render import render_lines
from docsprint.io.document import Word
from tests.pdfs import text_pdf

LINES = ["ACME TRADING GMBH", "Invoice No: INV-2024-0042", "Date: 28.11.2022", "Subtotal 1.100,00",
         "Total EUR 1.234,50"]
# key -> (the value as a label file writes it, the line and the words of it that show it)
TRUTH = {"seller": ("ACME Trading GmbH", 0, slice(0, 3)), "invoice number": ("INV-2024-0042", 1, slice(2, 3)),
         "date": ("2022-11-28", 2, slice(1, 2)), "total": ("1234.50", 4, slice(2, 3))}
ON_PAGE = {"seller": "ACME TRADING GMBH", "invoice number": "INV-2024-0042", "date": "28.11.2022",
           "total": "1.234,50"}


def _page(tmp_path: Path, name: str = "inv.png"):
    """The rendered page, saved; its words grouped by line."""
    page = render_lines(LINES)
    path = tmp_path / name
    page.image.save(path)
    lines: list[list[int]] = []
    for i, w in enumerate(page.words):
        if not lines or w.box[1] > page.words[lines[-1][0]].box[1] + 5:
            lines.append([])
        lines[-1].append(i)
    assert [" ".join(page.words[i].text for i in ln) for ln in lines] == LINES
    return page, path, lines


def _box(page, idx: list[int]):
    ws = [page.words[i] for i in idx]
    return (min(w.box[0] for w in ws), min(w.box[1] for w in ws), max(w.box[2] for w in ws), max(w.box[3] for w in ws))


def _check(out: Path, expect_on_page: dict[str, str], missing: dict[str, str] | None = None,
           values: dict[str, str] | None = None) -> dict:
    """The imported folder holds the labels' values, each placed where the page shows it."""
    (rec,) = read_records(out)
    missing = missing or {}
    values = values or {k: TRUTH[k][0] for k in expect_on_page}
    assert {k: [p["value"] for p in v] for k, v in rec["labels"].items()} == {
        **{k: [values[k]] for k in expect_on_page}, **{k: [v] for k, v in missing.items()}}
    for key, text in expect_on_page.items():
        (p,) = rec["labels"][key]
        assert p["page"] == 0 and p["text"] == text, (key, p)
        words = rec["pages"][0]["words"]
        assert " ".join(words[i][0] for i in p["words"]) == text
        assert rec["fields"][key] == text  # the target is the page's spelling: the model copies it
    for key, value in missing.items():
        assert rec["labels"][key] == [{"value": value, "page": None}] and rec["fields"][key] == value
    report = json.loads((out / "import-report.json").read_text())
    assert report["values"] == len(expect_on_page) + len(missing) and report["placed"] == len(expect_on_page)
    assert [(m["key"], m["value"]) for m in report["not_placed"]] == list(missing.items())
    # the folder is a dataset `train kie --data` reads: words, boxes, an image per page
    (ex,) = load("labels", "train", out)
    assert ex.doc.pages[0].get_image() is not None and ex.fields == rec["fields"]
    return rec


def test_find_value_reads_dates_and_amounts_as_values():
    ws = [Word(t, (0, 0, 1, 1)) for t in "Rechnung vom 05.03.2018 Gesamt 18.310,63 EUR Nr R-77 / 2".split()]
    assert find_value(ws, "2018-03-05", "invoice date") == ([2], 0.97)
    assert find_value(ws, "18310.63", "grand total") == ([4], 0.97)
    assert find_value(ws, "R-77/2", "invoice number")[0] == [7, 8, 9]  # split across words
    assert find_value(ws, "Lieferant GmbH", "seller") is None
    # two columns of two lines each, read across: each value's words are not one run
    grid = [("Yale", 0, 0), ("150", 300, 0), ("University", 0, 20), ("Murray", 300, 20), ("Avenue", 380, 20)]
    ws = [Word(t, (x, y, x + 60, y + 12)) for t, x, y in grid]
    assert find_value(ws, "Yale University", "payer name") == ([0, 2], 0.9)
    assert find_value(ws, "150 Murray Avenue", "recipient address") == ([1, 3, 4], 0.9)
    ws = [Word(t, (0, 0, 1, 1)) for t in "SSN 1 2 3 - 4 5 - 6 7 8 9".split()]  # OCR split the digits
    assert find_value(ws, "123456789", "SSN") == (list(range(1, 12)), 0.92)


def test_import_truth_jsonl_from_a_pdf_text_layer(tmp_path):
    text_pdf(tmp_path / "inv.pdf", [LINES])
    rows = {"file": "inv.pdf", "fields": {**{k: v[0] for k, v in TRUTH.items()}, "currency": "USD", "po": None}}
    (tmp_path / "truth.jsonl").write_text(json.dumps(rows) + "\n")
    out = tmp_path / "labels"
    assert main(["data", "import", "truth", str(tmp_path), "--out", str(out)]) == 0
    rec = _check(out, ON_PAGE, {"currency": "USD"})
    assert rec["file"] == str((tmp_path / "inv.pdf").absolute()) and len(rec["sha256"]) == 64
    # imported again: the page is not read again (its cache), the result is the same
    cached = list((out / ".pages").iterdir())
    assert main(["data", "import", "truth", str(tmp_path / "truth.jsonl"), "--out", str(out)]) == 0
    assert list((out / ".pages").iterdir()) == cached and read_records(out) == [rec]
    # round trip: exported as truth.jsonl and imported again, the same labels
    assert main(["data", "export", "truth", str(out), "--out", str(tmp_path / "back" / "truth.jsonl")]) == 0
    import_labels("truth", tmp_path / "back", tmp_path / "again", progress=False)
    assert read_records(tmp_path / "again") == [rec]


def test_import_donut_metadata_from_an_image_through_ocr(tmp_path):
    _page(tmp_path)
    gt = {"gt_parse": {"header": {"seller": TRUTH["seller"][0], "invoice number": TRUTH["invoice number"][0]},
                       "date": TRUTH["date"][0], "total": TRUTH["total"][0]}}
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "inv.png", "ground_truth": json.dumps(gt)}) + "\n")
    out = tmp_path / "labels"
    report = import_labels("donut", tmp_path, out, progress=False)
    assert report["placed"] == 4
    (rec,) = read_records(out)
    assert rec["labels"]["header seller"][0]["text"] == "ACME TRADING GMBH"  # nested keys joined by a space
    assert rec["fields"] == {"header seller": "ACME TRADING GMBH", "header invoice number": "INV-2024-0042",
                             "date": "28.11.2022", "total": "1.234,50"}


def test_import_labelstudio_ocr_export_places_by_region(tmp_path):
    page, path, lines = _page(tmp_path, "3f2a9c1d-inv.png")  # Label Studio prefixes uploads
    results = []
    for n, (key, (value, line, words)) in enumerate(TRUTH.items()):
        x0, y0, x1, y1 = _box(page, lines[line][words])
        geom = {"x": 100 * x0 / page.width, "y": 100 * y0 / page.height, "width": 100 * (x1 - x0) / page.width,
                "height": 100 * (y1 - y0) / page.height, "rotation": 0}
        common = {"id": f"r{n}", "to_name": "image", "original_width": page.width, "original_height": page.height}
        results += [{**common, "from_name": "bbox", "type": "rectangle", "value": geom},
                    {**common, "from_name": "label", "type": "labels", "value": {**geom, "labels": [key]}},
                    {**common, "from_name": "transcription", "type": "textarea", "value": {**geom, "text": [value]}}]
    export = [{"id": 1, "data": {"ocr": "/data/upload/1/3f2a9c1d-inv.png"}, "annotations": [{"result": results}]}]
    (tmp_path / "export.json").write_text(json.dumps(export))
    out = tmp_path / "labels"
    import_labels("labelstudio", tmp_path / "export.json", out, progress=False)
    rec = _check(out, ON_PAGE)
    # round trip: our labels as a Label Studio export, imported again: the same values and words
    export_labels(out, "labelstudio", tmp_path / "back.json")
    import_labels("labelstudio", tmp_path / "back.json", tmp_path / "again", progress=False)
    (again,) = read_records(tmp_path / "again")
    assert again["labels"] == rec["labels"] and again["fields"] == rec["fields"]


def test_import_funsd_links_questions_to_answers(tmp_path):
    (tmp_path / "images").mkdir()
    page, path, lines = _page(tmp_path / "images")
    form, eid = [], 0
    for key, (_value, line, words) in TRUTH.items():
        idx = lines[line]
        answer = idx[words]
        entities = [("question", [i for i in idx if i not in answer]), ("answer", answer)]
        ids = []
        for label, ws in entities:
            form.append({"id": eid, "label": label, "text": " ".join(page.words[i].text for i in ws),
                         "box": list(_box(page, ws)) if ws else [0, 0, 0, 0], "linking": [],
                         "words": [{"text": page.words[i].text, "box": list(page.words[i].box)} for i in ws]})
            ids.append(eid)
            eid += 1
        form[-2]["text"] = form[-2]["text"] or key  # the seller line has no printed label: name it
        form[-2]["linking"] = form[-1]["linking"] = [ids]
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "inv.json").write_text(json.dumps({"form": form}))
    out = tmp_path / "labels"
    import_labels("funsd", tmp_path, out, progress=False)
    (rec,) = read_records(out)
    assert rec["fields"] == {"seller": "ACME TRADING GMBH", "Invoice No:": "INV-2024-0042", "Date:": "28.11.2022",
                             "Total EUR": "1.234,50"}
    assert all(p[0]["score"] == 1.0 for p in rec["labels"].values())


def test_import_ppocrlabel_joins_lines_of_one_key(tmp_path):
    (tmp_path / "imgs").mkdir()
    page, path, lines = _page(tmp_path / "imgs")
    items = []
    for n, idx in enumerate(lines):
        key = next((k for k, v in TRUTH.items() if v[1] == n), None)
        answer = idx[TRUTH[key][2]] if key else []
        parts = [([i for i in idx if i not in answer], "None"), (answer, key)]
        if n == 0:  # the seller drawn as two boxes: their text is joined in reading order
            parts = [(answer[2:], key), (answer[:2], key)]
        for part, cls in parts:
            if part:
                x0, y0, x1, y1 = _box(page, part)
                items.append({"transcription": " ".join(page.words[i].text for i in part),
                              "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "difficult": False, "key_cls": cls})
    (tmp_path / "imgs" / "Label.txt").write_text(f"imgs/inv.png\t{json.dumps(items)}\n")
    out = tmp_path / "labels"
    import_labels("ppocrlabel", tmp_path / "imgs", out, progress=False)
    _check(out, ON_PAGE, values=ON_PAGE)  # the transcriptions are the values


def test_bad_labels_are_clear_errors(tmp_path, capsys):
    (tmp_path / "truth.jsonl").write_text('{"file": "a.pdf", "fields": {"total": "1"}}\nnot json\n')
    assert main(["data", "import", "truth", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "truth.jsonl:2: not JSON" in capsys.readouterr().err
    with pytest.raises(LabelError, match="unknown label format"):
        import_labels("csv", tmp_path, tmp_path / "o")
    (tmp_path / "truth.jsonl").write_text('{"file": "missing.pdf", "fields": {"total": "1"}}\n')
    report = import_labels("truth", tmp_path, tmp_path / "o", progress=False)
    assert report["documents"] == 0 and "missing.pdf: no such file" in report["unreadable"][0]["error"]


def test_train_kie_data_fine_tunes_from_a_checkpoint_and_exports_a_model(tmp_path, tiny_checkpoint, capsys):
    """`docsprint train kie --data DIR`: dev split held out and scored by value match, the best
    kept, a compact model written that `extract --model` takes."""
    from docsprint.pipeline import Extractor

    rows = []
    for i in range(6):
        text_pdf(tmp_path / f"r{i}.pdf", [[f"SHOP {i}", f"TOTAL {10 + i}.50"]])
        rows.append(json.dumps({"file": f"r{i}.pdf", "fields": {"total": f"{10 + i}.5"}}))
    (tmp_path / "truth.jsonl").write_text("\n".join(rows) + "\n")
    labels, run = tmp_path / "labels", tmp_path / "run"
    assert main(["data", "import", "truth", str(tmp_path), "--out", str(labels)]) == 0
    assert "6 of 6 values placed" in capsys.readouterr().out
    assert main(["train", "kie", "--data", str(labels), "--init", str(tiny_checkpoint), "--minutes", "5",
                 "--epochs", "2", "--out", str(run)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {run / 'model'}" in printed and "dev value match" in printed
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["documents"], summary["train"], summary["dev"]) == (6, 5, 1)
    # a quarter of the examples are synthetic business pages made for the run (never dev documents)
    assert summary["replay"] == 0.25 and len((run / "replay" / "train.jsonl").read_text().splitlines()) == 5
    assert summary["dev_value_match"] and all(0 <= d["value_match"] <= 100 for d in summary["dev_value_match"])
    assert (run / "best" / "config.json").is_file() and len((run / "dev_ids.txt").read_text().split()) == 1
    out = Extractor(run / "model").extract(tmp_path / "r0.pdf", ["total"])  # the exported model answers
    assert set(out.fields) == {"total"}
    assert main(["train", "kie", "--data", str(tmp_path / "nothing")]) == 2
    assert "no labels here (make them with `docsprint data import" in capsys.readouterr().err


def test_curve_takes_the_first_documents_and_draws_the_points(tmp_path):
    """The learning curve's pieces: a subset folder that still finds its images, and the plot."""
    from docsprint.eval.curve import draw, subset

    rows = []
    for i in range(3):
        render_lines([f"TOTAL {i}.50"]).image.save(tmp_path / f"p{i}.png")
        rows.append(json.dumps({"file": f"p{i}.png", "fields": {"total": f"{i}.50"}}))
    (tmp_path / "truth.jsonl").write_text("\n".join(rows) + "\n")
    import_labels("truth", tmp_path, tmp_path / "all", progress=False)
    part = subset(tmp_path / "all", 2, tmp_path / "two")
    exs = load("labels", "train", part)
    assert [e.fields["total"] for e in exs] == ["0.50", "1.50"] and all(e.doc.pages[0].get_image() for e in exs)
    with pytest.raises(ValueError, match="fewer than 5"):
        subset(tmp_path / "all", 5, tmp_path / "five")
    result = {"test": "t", "points": [{"documents": 0, "value_match": 30.0, "train_minutes": 0.0},
                                      {"documents": 2, "value_match": 60.0, "train_minutes": 1.5}]}
    draw(result, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 5000
