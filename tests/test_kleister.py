"""Kleister-NDA: the task's values and F1, the PDF loader and its cache, windows of long contracts."""

import json

from docsprint.data import datasets
from docsprint.data.encode import tokenize_page, windows
from docsprint.data.kleister import (
    pair_counts,
    parse_expected,
    surface_forms,
    task_pairs,
    task_value,
)
from docsprint.data.render import render_lines
from docsprint.train.kie import label_windows
from tests.pdfs import text_pdf

EXPECTED = "effective_date=2001-04-18 jurisdiction=Oregon party=Eric_Dean_Sprunk party=Nike_Inc."


def test_expected_values_become_fields_and_back():
    fields = parse_expected(EXPECTED)
    assert fields == {"effective date": "2001-04-18", "jurisdiction": "Oregon",
                      "party": ["Eric Dean Sprunk", "Nike Inc."], "term": None}
    assert sorted(task_pairs(fields)) == sorted(p.upper() for p in EXPECTED.split())


def test_task_f1_counts_upper_cased_items():
    gold = parse_expected(EXPECTED)
    pred = {"effective date": "2001-04-18", "jurisdiction": "OREGON", "party": ["NIKE INC.", "Phil Knight"],
            "term": "2 years"}
    assert pair_counts(pred, gold) == (3, 5, 4)  # date, jurisdiction, one party right
    assert pair_counts({"party": None}, gold) == (0, 0, 4)


def test_page_spellings_are_read_as_the_task_writes_them():
    assert task_value("effective_date", "April 18, 2001") == "2001-04-18"
    assert task_value("effective_date", "18th day of April, 2001") == "2001-04-18"
    assert task_value("effective_date", "4/5/2001") == "2001-04-05"  # month first
    assert task_value("effective_date", "2001-04-18") == "2001-04-18"
    assert task_value("effective_date", "sometime") == "sometime"
    assert task_value("term", "two (2) years") == "2 years"
    assert task_value("term", "one year") == "1 year"
    assert task_value("term", "eighteen (18) months") == "18 months"
    assert task_value("jurisdiction", "Oregon") == "Oregon"
    assert task_value("party", "SEARS, ROEBUCK & CO.") == "SEARS ROEBUCK and CO."
    assert task_value("party", "Koch Industries , Inc.") == "Koch Industries Inc."
    pred = {"effective date": "April 18, 2001", "jurisdiction": "Oregon", "party": ["Nike Inc."],
            "term": "two (2) years"}
    assert pair_counts(pred, parse_expected(EXPECTED)) == (3, 4, 4)


def test_a_one_window_document_asks_what_it_writes_and_keeps_the_rest(tok):
    page = render_lines(["This Agreement is made as of April 18, 2001 by Nike, Inc. for two (2) years."])
    (win,) = windows(tokenize_page(tok, page), 500, 250)
    (lab,) = label_windows(tok, [win], {"effective date": "2001-04-18", "party": ["Nike Inc.", "Somebody Else"],
                                        "term": "2 years", "total": "12.50"}, search_all=False)
    # the date copied as written; the term written as the task writes it (from the vocabulary)
    assert lab == {"effective date": "april 18, 2001", "party": ["Nike Inc.", "Somebody Else"], "term": "2 years",
                   "total": "12.50"}


def test_surface_forms_of_dates_and_terms():
    assert "april 18, 2001" in surface_forms("2001-04-18")
    assert "18th day of april, 2001" in surface_forms("2001-04-18")
    assert "two (2) years" in surface_forms("2 years")
    assert surface_forms("Oregon") == ["Oregon"]


def test_each_window_is_asked_what_it_shows(tok):
    page = render_lines(["This Agreement is made as of April 18, 2001"] + ["filler text here"] * 12
                        + ["governed by the laws of the State of Oregon", "Nike, Inc. and Eric Dean Sprunk"])
    wins = windows(tokenize_page(tok, page), 24, 24)
    assert len(wins) >= 3
    fields = parse_expected(EXPECTED) | {"term": "3 years", "secret": "not written anywhere"}
    fields["term"] = None
    labels = label_windows(tok, wins, fields)
    text = [tok.decode(w.ids) for w in wins]
    for t, lab in zip(text, labels, strict=True):
        # asked as the window writes it (the model copies it; `task_value` reads it as ISO)
        assert lab["effective date"] == ("april 18, 2001" if "april 18, 2001" in t else None)
        assert lab["jurisdiction"] == ("Oregon" if "oregon" in t else None)
        party = lab["party"] or []
        assert ("Eric Dean Sprunk" in party) == ("eric dean sprunk" in t)
        assert ("nike, inc." in party) == ("nike, inc." in t)  # found punctuation ignored, asked as printed
    assert sum(lab["jurisdiction"] is not None for lab in labels) == 1
    assert all(lab["term"] is None for lab in labels)  # absent from the contract: null everywhere
    assert all("secret" not in lab for lab in labels)  # written nowhere: never asked


def test_a_contract_asks_names_as_it_prints_them(tok):
    page = render_lines(["between SEARS, ROEBUCK & CO. and SafeNet, Inc", "Nike Inc. and Oregon Steel"])
    wins = windows(tokenize_page(tok, page), 500, 250)
    (lab,) = label_windows(tok, wins, {"party": ["Sears Roebuck and Co.", "SafeNet Inc.", "Nike Inc."],
                                       "jurisdiction": "Oregon"})
    # the copy is a run of page pieces; `task_value` drops the commas and reads "&" as "and"
    assert lab["party"] == ["sears, roebuck & co.", "safenet, inc.", "Nike Inc."]
    assert [task_value("party", v) for v in lab["party"]] == ["sears roebuck and co.", "safenet inc.", "Nike Inc."]
    assert lab["jurisdiction"] == "Oregon"
    page = render_lines(["for a term of two (2) years from the date hereof"])
    (lab,) = label_windows(tok, windows(tokenize_page(tok, page), 500, 250), {"term": "2 years"})
    assert lab["term"] == "2 years"  # "2 ) years" is no spelling of it: the term is written as the task does
    assert surface_forms("Sears Roebuck and Co.") == ["Sears Roebuck and Co.", "Sears Roebuck & Co."]


def test_loader_reads_pdfs_once_then_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCSPRINT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "kleister-nda"
    (root / "documents").mkdir(parents=True)
    text_pdf(root / "documents" / "a.pdf", [["NON-DISCLOSURE AGREEMENT", "dated April 18, 2001"],
                                            ["Nike, Inc.", "laws of the State of Oregon"]])
    row = {"file_name": "documents/a.pdf", "keys": ["effective_date", "jurisdiction", "party", "term"],
           "expected": EXPECTED}
    (root / "train.jsonl").write_text(json.dumps(row) + "\n")
    (ex,) = datasets.load("kleister-nda", "train", root)
    assert len(ex.doc.pages) == 2 and ex.fields["party"] == ["Eric Dean Sprunk", "Nike Inc."]
    assert [w.text for w in ex.doc.pages[1].words][:2] == ["Nike,", "Inc."]
    assert ex.doc.pages[0].get_image() is not None  # a small rendering, cached as a file
    (root / "documents" / "a.pdf").unlink()  # the second load never opens the PDF
    (again,) = datasets.load("kleister-nda", "train", root)
    assert [w.text for w in again.doc.pages[1].words] == [w.text for w in ex.doc.pages[1].words]
    assert datasets.list_keys("kleister-nda") == frozenset({"party"})
