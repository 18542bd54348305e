import math

import pytest
from torch._dynamo.utils import counters

from docsprint.cli import main
from docsprint.data.render import SAMPLE_FIELDS, render_receipt
from docsprint.decode.common import KeyValue
from docsprint.io.document import Document
from docsprint.pipeline import Extractor, length_batches, merge


def test_merge_prefers_the_most_confident_found_value():
    found = merge([KeyValue("k", None, 0.99), KeyValue("k", "a", 0.3), KeyValue("k", "b", 0.5)])
    assert found.value == "b"
    absent = merge([KeyValue("k", None, 0.4), KeyValue("k", None, 0.8)])
    assert absent.value is None and absent.confidence == 0.8


def test_merge_prefers_a_value_that_can_answer_the_key():
    # a second page's running header ("Beispiel-Rechnungen für ZUGFeRD 2.2, (c) FeRD 2022") is
    # read more surely than the first page's date: it is no date, the date wins
    date = merge([KeyValue("invoice date", "05.03.2018", 0.70), KeyValue("invoice date", "2.2, (c", 0.84)])
    assert (date.value, date.confidence) == ("05.03.2018", 0.70)
    total = merge([KeyValue("grand total", "EUR", 0.73), KeyValue("grand total", "300,00", 0.66)])
    assert total.value == "300,00"
    # keys that name no date or amount keep the most confident answer, and so does a key
    # none of whose answers can be one
    assert merge([KeyValue("seller", "EUR", 0.73), KeyValue("seller", "Acme", 0.66)]).value == "EUR"
    assert merge([KeyValue("due date", "net 30", 0.6), KeyValue("due date", "on receipt", 0.7)]).value == "on receipt"
    assert merge([KeyValue("invoice number", "INV", 0.9), KeyValue("invoice number", "12", 0.5)]).value == "INV"


def test_a_null_gives_way_to_the_best_run_where_the_calibration_finds_it_likelier_right():
    table = {"answer": {"a": 1.0, "b": 0.0, "c": 0.0}, "null": {"a": 1.0, "b": -2.0}}  # nulls over-sure

    def null(conf: float, alt: str | None, alt_conf: float = 0.8, context: float = math.inf) -> KeyValue:
        run = KeyValue("total", alt, alt_conf, context=context) if alt is not None else None
        return KeyValue("total", None, conf, alternative=run)

    # a null at 0.6 is right 17% of the time by this calibration; the run at 0.8, 80%
    assert merge([null(0.6, "12.50")], calibration=table).value == "12.50"
    assert merge([null(0.99, "12.50")], calibration=table).value is None  # 93% against 80%: null stays
    assert merge([null(0.6, "12.50")]).value is None  # no calibration, no second guess
    assert merge([null(0.6, None)], calibration=table).value is None  # nothing to answer with
    # across windows: the surest run among those read with their context
    cut, whole = null(0.6, "12", 0.95, context=3), null(0.7, "12.50", 0.7, context=200)
    assert merge([cut, whole], calibration=table).value == "12.50"
    # a window that answers keeps its answer: runs stand in only for a key null everywhere
    assert merge([null(0.6, "99.00", 0.99), KeyValue("total", "12.50", 0.3)], calibration=table).value == "12.50"


def test_merge_prefers_answers_read_with_their_context_around_them():
    # a window cut just before the value lost its label ("Invoice date"): its confident answer
    # (a delivery date further down) loses to the window that saw the value in its middle
    cut = KeyValue("invoice date", "02.08.2013", 0.98, context=3)
    middle = KeyValue("invoice date", "06.08.2013", 0.90, context=180)
    assert merge([cut, middle]).value == "06.08.2013"
    assert merge([cut, KeyValue("invoice date", None, 0.95, context=180)]).value == "02.08.2013"  # still an answer
    first = KeyValue("invoice date", "06.08.2013", 0.6)  # a window that starts the page: context unbounded
    assert merge([cut, first]).value == "06.08.2013"


def test_answers_know_how_much_of_their_window_surrounds_them(tiny_checkpoint, receipt_page):
    from docsprint.data.encode import encode, tokenize_page, windows
    from docsprint.decode.common import assemble

    ex = Extractor(tiny_checkpoint, max_doc_tokens=24, stride=12)
    cfg, tok = ex.model.cfg, ex.tok
    parts = windows(tokenize_page(tok, receipt_page), 24, 12)
    assert len(parts) >= 3
    V = cfg.vocab_size
    first, middle, last = (encode(tok, cfg, w, ["total"], "parallel") for w in (parts[0], parts[1], parts[-1]))
    n = len(parts[1].ids)
    # document position p + 1 copies piece p of the window
    assert assemble("total", [V + 3, V + 4, cfg.end_id], [0.0] * 3, middle, receipt_page, cfg, tok).context == 2
    assert assemble("total", [V + n - 1, cfg.end_id], [0.0] * 2, middle, receipt_page, cfg, tok).context == 1
    # the first window starts the page: nothing is missing on the left, only the right counts
    assert assemble("total", [V + 1, cfg.end_id], [0.0] * 2, first, receipt_page, cfg, tok).context == len(parts[0].ids) - 1
    m = len(parts[-1].ids)  # the last one ends it: only the left counts
    assert assemble("total", [V + m, cfg.end_id], [0.0] * 2, last, receipt_page, cfg, tok).context == m - 1
    whole = encode(tok, cfg, tokenize_page(tok, receipt_page), ["total"], "parallel")  # one window: unbounded
    assert assemble("total", [V + 1, cfg.end_id], [0.0] * 2, whole, receipt_page, cfg, tok).context == float("inf")
    assert assemble("total", [cfg.end_id], [0.0], middle, receipt_page, cfg, tok).value is None


def test_long_pages_are_read_in_windows_and_merged(tiny_checkpoint, receipt_page):
    doc = Document([receipt_page, receipt_page], source="two-pages")
    whole = Extractor(tiny_checkpoint).extract(doc, ["total"])
    windowed = Extractor(tiny_checkpoint, max_doc_tokens=24, stride=16).extract(doc, ["total"])
    assert whole.windows == 2  # one window per page
    assert windowed.windows > 2 * 4  # each page cut into several windows
    assert set(windowed.fields) == {"total"}
    assert windowed.input_tokens > whole.input_tokens  # overlapping windows, each with its image
    assert windowed.slot_tokens == windowed.windows * whole.slot_tokens // 2


def test_windows_share_a_forward_pass_only_with_windows_of_about_their_length():
    assert length_batches([500, 500, 120, 500], 8) == [[2], [0, 1, 3]]
    assert length_batches([885, 606], 8) == [[1], [0]]  # 46% of the pair would be padding
    assert length_batches([300, 310, 320, 330], 2) == [[0, 1], [2, 3]]  # at most `size` a pass
    assert length_batches([100, 109], 8, waste=0.1) == [[0, 1]] and length_batches([100, 130], 8) == [[0], [1]]
    assert length_batches([], 8) == []


def test_answers_come_back_in_window_order_however_the_windows_are_batched(tiny_checkpoint, receipt_page):
    """Windows of several lengths (a page cut into windows, keys in several prompts) are sorted
    by length into forward passes; each answer still comes back to its window and key."""
    doc = Document([receipt_page, receipt_page], source="two-pages")
    keys = [f"question number {i}" for i in range(12)] + ["total", "date"]
    results = []
    for size in (1, 8):
        extractor = Extractor(tiny_checkpoint, max_doc_tokens=24, stride=16, batch_size=size)
        extractor.model.cfg.max_positions = 128
        out, work = extractor.prepare(doc, keys, "parallel")
        assert len({len(enc.ids) for enc, _ in work}) > 1  # windows of several lengths
        answers = extractor.decode(work, "parallel")
        assert [a.key for a in answers] == [k for enc, _ in work for k in enc.keys]
        results.append([(a.key, a.value, round(a.confidence, 4)) for a in answers])
    assert results[0] == results[1]


def test_shipped_checkpoint_reads_the_bundled_sample_in_both_modes():
    """The default model (docsprint/weights/kie-general) on samples/receipt.jpg, OCR included."""
    from pathlib import Path

    from docsprint.data.render import SAMPLE_FIELDS

    sample = Path(__file__).resolve().parents[1] / "samples" / "receipt.jpg"
    extractor = Extractor()
    for mode in ("parallel", "autoregressive"):
        result = extractor.extract(sample, ["company", "date", "address", "total"], mode)
        assert {k: v.value for k, v in result.fields.items()} == SAMPLE_FIELDS
        assert all(v.confidence > 0.5 and v.boxes for v in result.fields.values())


def test_merge_of_a_list_key_is_the_union_of_confident_windows():
    merged = merge([KeyValue("party", ["Nike Inc."], 0.9), KeyValue("party", ["NIKE INC.", "Eric Sprunk"], 0.7),
                    KeyValue("party", ["Phil Knight"], 0.2), KeyValue("party", None, 0.95)], is_list=True)
    assert merged.value == ["Nike Inc.", "Eric Sprunk"]  # a repeat (any case) once; unsure windows out
    assert merged.confidence == 0.9


def test_many_keys_are_asked_in_several_prompts_that_fit(tiny_checkpoint, receipt_page):
    keys = [f"question number {i}" for i in range(30)]  # 30 keys x (4 name + 8 slots) > 128 positions
    extractor = Extractor(tiny_checkpoint)
    extractor.model.cfg.max_positions = 128
    for mode in ("parallel", "autoregressive"):
        result = extractor.extract(Document([receipt_page], source="r"), keys, mode)
        assert list(result.fields) == keys
        assert result.windows == 1
        if mode == "parallel":
            assert result.slot_tokens == 30 * 8  # every key got its slots, in 4+ prompts of <= 8 keys


def test_compiled_parallel_decoding_answers_as_eager_with_its_two_graphs_compiled_up_front(
        tiny_checkpoint, receipt_page, tmp_path, capsys):
    keys = ["total", "date", "company"]
    doc = Document([receipt_page])
    eager = Extractor(tiny_checkpoint, max_doc_tokens=40, stride=30, precision="fp32").extract(doc, keys)
    compiled = Extractor(tiny_checkpoint, max_doc_tokens=40, stride=30, compile=True, precision="fp32")
    graphs = counters["stats"]["unique_graphs"]
    got = compiled.extract(doc, keys)
    assert counters["stats"]["unique_graphs"] - graphs == 2  # one window; several (symbolic sizes)
    assert got.windows == eager.windows > 8  # a full batch of 8 windows, then a shorter, padded one
    for k in keys:
        assert got.fields[k].value == eager.fields[k].value
        assert got.fields[k].confidence == pytest.approx(eager.fields[k].confidence, rel=1e-4)
    other = Document([render_receipt({**SAMPLE_FIELDS, "company": "KEDAI BARU SDN BHD"}, seed=3)])
    assert compiled.extract(other, keys).windows > 1
    assert counters["stats"]["unique_graphs"] - graphs == 2  # new lengths, no new compilation
    with pytest.raises(ValueError, match="compile"):
        Extractor(tiny_checkpoint, quantize="int8", compile=True)
    image = tmp_path / "receipt.png"
    receipt_page.get_image().save(image)
    for argv in (["extract", str(image), "--mode", "autoregressive"], ["eval", "kie", "--dataset", "sroie", "--mode", "both"]):
        assert main([*argv, "--compile", "--model", str(tiny_checkpoint)]) == 2  # an eager decoder: nothing to compile
        assert "--mode parallel only" in capsys.readouterr().err
