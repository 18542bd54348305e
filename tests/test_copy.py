"""Copy decoding: a value copied from the document comes back exactly as the document writes it."""

import numpy as np
import pytest
import torch

from docsprint.data.encode import ITEM_SEP_ID, encode, tokenize_page
from docsprint.decode.common import (
    assemble,
    best_run,
    block_phrases,
    contiguous,
    contiguous_items,
    extend_run,
    item_runs,
    next_lines,
    piece_marks,
)
from docsprint.decode.parallel import decode_parallel
from docsprint.io.document import Page, Word
from docsprint.models.model import DocsprintModel
from tests.conftest import tiny_config

WORDS = ["Kedai", "BUKU", "Sdn.", "Bhd.", "Date:", "25/12/2018", "Total", "RM9.00", "Café"]


def _setup(tok):
    cfg = tiny_config()
    page = Page(None, 400, 100, [Word(w, (10 * i, 0, 10 * i + 8, 10)) for i, w in enumerate(WORDS)])
    enc = encode(tok, cfg, tokenize_page(tok, page), ["x"])
    return cfg, page, enc


def _pointers(enc, cfg, first_word: int, last_word: int) -> list[int]:
    """Choices that copy every piece of words first..last (document position = index + 1)."""
    return [cfg.vocab_size + 1 + i for i, w in enumerate(enc.doc.word_index) if first_word <= w <= last_word]


def test_copied_pieces_rebuild_the_exact_document_text(tok):
    cfg, page, enc = _setup(tok)
    for first, last, expected in [(0, 3, "Kedai BUKU Sdn. Bhd."), (5, 5, "25/12/2018"),
                                  (7, 7, "RM9.00"), (8, 8, "Café")]:
        chosen = _pointers(enc, cfg, first, last) + [cfg.end_id]
        kv = assemble("x", chosen, [0.0] * len(chosen), enc, page, cfg, tok)
        assert kv.value == expected  # case, punctuation, accents and spacing as written
        assert kv.boxes == [page.words[i].box for i in range(first, last + 1)]
        assert kv.confidence == 1.0


def test_a_word_that_holds_a_space_keeps_it(tok):
    """A dataset's "word" may be two ("Suzi Hicks", "M. BORSINI" in FUNSD's annotations): its
    pieces are joined with the word's own space, pieces of one written word without one."""
    cfg = tiny_config()
    page = Page(None, 400, 100, [Word(w, (60 * i, 0, 60 * i + 50, 10))
                                 for i, w in enumerate(["C:", "Suzi Hicks", "M.  BORSINI", "RM9.00"])])
    enc = encode(tok, cfg, tokenize_page(tok, page), ["x"])
    for first, last, expected in [(1, 1, "Suzi Hicks"), (2, 2, "M. BORSINI"), (1, 3, "Suzi Hicks M. BORSINI RM9.00")]:
        chosen = _pointers(enc, cfg, first, last) + [cfg.end_id]
        assert assemble("x", chosen, [0.0] * len(chosen), enc, page, cfg, tok).value == expected


def test_part_of_a_word_and_tokens_after_end(tok):
    cfg, page, enc = _setup(tok)
    pieces = _pointers(enc, cfg, 7, 7)  # rm ##9 . 00
    chosen = pieces[1:] + [cfg.end_id] + pieces[:1]
    kv = assemble("x", chosen, [0.0] * len(chosen), enc, page, cfg, tok)
    assert kv.value == "9.00"


def test_a_piece_copied_by_neighbouring_slots_is_written_once(tok):
    cfg, page, enc = _setup(tok)
    kedai, buku = _pointers(enc, cfg, 0, 0), _pointers(enc, cfg, 1, 1)
    chosen = kedai + kedai[-1:] + buku + buku + [cfg.end_id]  # "Kedai" twice at its place, "BUKU" too
    assert assemble("x", chosen, [0.0] * len(chosen), enc, page, cfg, tok).value == "Kedai BUKU"
    again = kedai + buku + kedai + [cfg.end_id]  # the same word again later, from its place: kept
    assert assemble("x", again, [0.0] * len(again), enc, page, cfg, tok).value == "Kedai BUKU Kedai"


def test_vocabulary_tokens_and_null(tok):
    cfg, page, enc = _setup(tok)
    ids = tok.encode("unknown value", add_special_tokens=False).ids
    kv = assemble("x", ids + [cfg.end_id], [-0.1] * (len(ids) + 1), enc, page, cfg, tok)
    assert kv.value == "unknown value" and kv.boxes == []
    null = assemble("x", [cfg.end_id, 5, 6], [-0.5, 0, 0], enc, page, cfg, tok)
    assert null.value is None
    assert abs(null.confidence - 0.6065) < 1e-3  # exp(-0.5): only the END counts


def test_a_stitched_copy_becomes_the_best_contiguous_run():
    V, END = 100, 7
    lp = torch.full((4, 10), -20.0)  # 4 slots over 10 document positions
    end = torch.full((4,), -20.0)
    lp[0, 3], lp[1, 4], lp[1, 8] = -0.1, -0.9, -0.5  # slot 1 prefers 8, but 3-4 is a run
    end[2] = -0.2
    chosen = [V + 3, V + 8, END, END]  # argmax per slot: stitched "3 8"
    ids, lps = contiguous(chosen, [-0.1, -0.5, -0.2, -0.3], lp, end, V, END)
    assert ids == [V + 3, V + 4, END, END]
    assert lps == pytest.approx([-0.1, -0.9, -0.2, -0.3])  # the run's own log-probabilities
    # one token beats a run of two when the second slot's copies are all unlikely
    lp[1, 4] = -15.0
    end[1] = -0.3
    ids, _ = contiguous(chosen, [-0.1, -0.5, -0.2, -0.3], lp, end, V, END)
    assert ids[:2] == [V + 3, END]


def test_runs_vocabulary_values_and_nulls_are_kept():
    V, END = 100, 7
    lp, end = torch.zeros(3, 5), torch.zeros(3)
    for chosen in ([V + 1, V + 2, END], [12, V + 4, END], [END, V + 1, V + 3], [V + 2, 2, V + 4]):
        assert contiguous(chosen, [-1.0] * 3, lp, end, V, END) == (chosen, [-1.0] * 3)


def test_a_value_on_the_next_lines_of_its_block_stays_stitched(tok):
    """An address in a column with other text beside it: its two lines are not one run of
    the reading order, yet one value; a number further down and elsewhere is no next line."""
    cfg = tiny_config()
    rows = [("Payer", 10, 0), ("43", 10, 20), ("Brooklyn", 40, 20), ("Road", 90, 20), ("Box", 300, 20), ("7", 340, 20),
            ("Alburquerque,", 10, 44), ("NM", 120, 44), ("87102", 150, 44), ("Rents", 300, 44), ("2,400", 340, 44),
            ("Total", 10, 120), ("900", 200, 120)]
    page = Page(None, 400, 200, [Word(w, (x, y, x + 8 * len(w), y + 10)) for w, x, y in rows])
    enc = encode(tok, cfg, tokenize_page(tok, page), ["payer address"])
    END = cfg.end_id
    street, city = _pointers(enc, cfg, 1, 3), _pointers(enc, cfg, 6, 8)
    assert next_lines(street + city + [END], enc, page, cfg.vocab_size, END)
    value = assemble("payer address", street + city + [END], [0.0] * 20, enc, page, cfg, tok).value
    assert value == "43 Brooklyn Road Alburquerque, NM 87102"
    assert not next_lines(street + [END], enc, page, cfg.vocab_size, END)  # one run: nothing to keep
    assert not next_lines(street + _pointers(enc, cfg, 10, 10) + [END], enc, page, cfg.vocab_size, END)  # not aligned
    assert not next_lines(street + _pointers(enc, cfg, 11, 11) + [END], enc, page, cfg.vocab_size, END)  # 5 lines down
    assert not next_lines(city + street + [END], enc, page, cfg.vocab_size, END)  # backwards
    assert not next_lines(street + city[1:] + [END], enc, page, cfg.vocab_size, END)  # inside a word


def test_a_block_whose_lines_are_far_apart_in_reading_order_is_read_whole(tok):
    """A 1099 payer address: the money boxes' captions sit between its lines in the reading
    order, and the slots, after the gap, copy the second line's pieces out of step. The value
    is the phrase from its first piece and the left-aligned phrase under it, when the slots
    reached for two of its pieces; a value whose slots stay on its first line is left alone."""
    cfg = tiny_config()
    rows = [("P.O.", 10, 20), ("Box", 46, 20), ("202032", 74, 20), ("$", 300, 20), ("350", 320, 20),
            ("Copy", 300, 38), ("C", 340, 38), ("New", 10, 42), ("Haven,", 38, 42), ("CT", 90, 42),
            ("06520", 110, 42), ("$", 300, 44), ("20,000", 320, 44), ("Total", 10, 150)]
    page = Page(None, 400, 200, [Word(w, (x, y, x + 8 * len(w), y + 10)) for w, x, y in rows])
    enc = encode(tok, cfg, tokenize_page(tok, page), ["payer address"])
    END, V = cfg.end_id, cfg.vocab_size
    first, haven, ct = _pointers(enc, cfg, 0, 2), _pointers(enc, cfg, 8, 8), _pointers(enc, cfg, 9, 9)
    chosen = first + ct + ct + haven + [END]  # out of step: "new" skipped, "CT" twice, "Haven," late
    assert not next_lines(chosen, enc, page, V, END)
    ids, lps = block_phrases(chosen, [-0.5] * len(chosen), enc, page, V, END)
    value = assemble("payer address", ids, lps, enc, page, cfg, tok)
    assert value.value == "P.O. Box 202032 New Haven, CT 06520" and abs(value.confidence - np.exp(-0.5)) < 1e-6
    assert block_phrases(first + _pointers(enc, cfg, 3, 3) + [END], [-0.5] * 6, enc, page, V, END) is None  # a column away
    assert block_phrases(first + ct + [END], [-0.5] * 6, enc, page, V, END) is None  # one piece of the line below only
    lone = _pointers(enc, cfg, 13, 13)  # "Total", far below: no line under the first in reach
    assert block_phrases(first + lone + lone + [END], [-0.5] * 8, enc, page, V, END) is None


def test_a_caption_between_a_blocks_lines_is_passed_over_and_a_column_of_fields_is_no_block(tok):
    """A 1099 recipient address: the caption "City or town" sits between its two lines, in
    its column, and the slots reach past it for the city line's last pieces; the value is both
    lines, the caption left out. "AD29094" under "14", each after its own label, are two
    fields of a column of values, not one block."""
    cfg = tiny_config()
    rows = [("150", 10, 20), ("Murray", 40, 20), ("Avenue", 100, 20), ("$", 300, 26), ("500", 320, 24),
            ("City", 10, 38), ("or", 46, 38), ("town", 66, 38), ("11", 300, 38), ("Fish", 320, 38),
            ("New", 10, 54), ("Haven,", 40, 54), ("CT", 96, 54), ("06511", 120, 54), ("$", 300, 58),
            ("Invoice", 150, 120), ("Number:", 214, 120), ("14", 280, 120), ("Jiro", 10, 134),
            ("P.O.", 150, 134), ("Number:", 214, 134), ("AD29094", 280, 134)]
    page = Page(None, 400, 200, [Word(w, (x, y, x + 8 * len(w), y + 10)) for w, x, y in rows])
    enc = encode(tok, cfg, tokenize_page(tok, page), ["recipient address"])
    END, V = cfg.end_id, cfg.vocab_size
    street, zipcode = _pointers(enc, cfg, 0, 2), _pointers(enc, cfg, 13, 13)
    chosen = street + zipcode[-2:] + zipcode[-2:] + [END]  # the city line's last pieces, twice
    ids, lps = block_phrases(chosen, [-0.5] * len(chosen), enc, page, V, END)
    assert assemble("recipient address", ids, lps, enc, page, cfg, tok).value == "150 Murray Avenue New Haven, CT 06511"
    caption = _pointers(enc, cfg, 5, 7)  # the slots reach for the caption itself: it is the next line
    ids, lps = block_phrases(street + caption + [END], [-0.5] * 12, enc, page, V, END)
    assert assemble("recipient address", ids, lps, enc, page, cfg, tok).value == "150 Murray Avenue City or town"
    fourteen, po = _pointers(enc, cfg, 17, 17), _pointers(enc, cfg, 21, 21)
    assert len(po) >= 2 and block_phrases(fourteen + po + [END], [-0.5] * 12, enc, page, V, END) is None
    # a receipt's centred address: its second line follows the first in the reading order, so
    # the block is one run (`contiguous`'s) even where the slots skip to the third line
    rows = [("NO.2,", 40, 20), ("JALAN", 84, 20), ("19/9,", 132, 20), ("SEKSYEN", 20, 34), ("9,", 84, 34),
            ("CHERAS,", 104, 34), ("43200", 44, 48), ("SELANGOR", 92, 48)]
    page = Page(None, 400, 200, [Word(w, (x, y, x + 8 * len(w), y + 10)) for w, x, y in rows])
    enc = encode(tok, cfg, tokenize_page(tok, page), ["address"])
    first, third = _pointers(enc, cfg, 0, 2), _pointers(enc, cfg, 6, 7)
    assert block_phrases(first + third + [END], [-0.5] * 20, enc, page, V, END) is None


def test_the_best_run_of_the_page_scores_its_slots_and_its_end():
    V, END = 100, 1
    copy_lp = torch.full((4, 6), -9.0)
    copy_lp[0, 2], copy_lp[1, 3], copy_lp[2, 4] = -0.1, -0.2, -5.0  # pieces 2, 3 read well; 4 badly
    end_lp = torch.tensor([-0.05, -3.0, -0.3, -0.1])  # END first is likeliest: a null
    run, lps = best_run(copy_lp, end_lp, V, END)
    assert run == [V + 2, V + 3, END]  # two pieces, then END: -0.6 beats one piece (-3.1) or three (-5.4)
    assert lps == pytest.approx([-0.1, -0.2, -0.3])


def test_a_copy_cut_inside_a_run_of_digits_or_letters_takes_the_rest_of_its_word(tok):
    cfg = tiny_config()
    words = ["hg", "honeygrow", "489723-B", "28/11/2022,", "12.00RM", "$374.23", "1,234.50", "2x", "3kg"]
    page = Page(None, 600, 100, [Word(w, (60 * i, 0, 60 * i + 50, 10)) for i, w in enumerate(words)])
    enc = encode(tok, cfg, tokenize_page(tok, page), ["x"])

    def cut(word: int, pieces: int, first: int | None = None):
        """The value copying words first..word, of the last one only its first ``pieces``."""
        before = _pointers(enc, cfg, first, word - 1) if first is not None else []
        chosen = before + _pointers(enc, cfg, word, word)[:pieces] + [cfg.end_id]
        return assemble("x", chosen, [0.0] * len(chosen), enc, page, cfg, tok).value

    assert cut(1, 1, first=0) == "hg honeygrow"  # "honey" | "##gr" "##ow": letters on both sides
    assert cut(2, 2) == "489723-B"  # "48" "##9" | "##7" "##23" "-" "b": digits on both sides
    assert cut(2, 5) == "489723-B"  # after the hyphen, the code's last part
    assert cut(3, 5) == "28/11/2022"  # "202" | "##2": the year whole, the comma after it left out
    assert cut(4, 3) == "12.00"  # "00" | "##rm": a number, then letters: a cut between kinds stays
    assert cut(4, 1) == "12.00"  # "12" | "." "00": a number cut before its decimal point, read whole
    assert cut(5, 3) == "$374.23"  # "$" "37" "##4" | "." "23"
    assert cut(6, 1) == "1,234.50"  # "1" | "," "234" "." "50"
    assert cut(4, 2) == "12.00"  # "12" "." | "00": a number cut at its decimal point, read whole
    assert cut(5, 4) == "$374.23"  # "$" "37" "##4" "." | "23"
    assert cut(6, 2) == "1,234.50"  # "1" "," | "234" "." "50": the thousands separator alike
    assert cut(3, 7) == "28/11/2022,"  # nothing cut: the word as written
    assert cut(7, 1) == "2x"  # "2" | "##x": a count, its "x" with it
    assert cut(8, 1) == "3"  # "3" | "##k" "##g": a unit is another kind, left as it is
    items = _pointers(enc, cfg, 1, 1)[:1] + [ITEM_SEP_ID] + _pointers(enc, cfg, 3, 3)[:5] + [cfg.end_id]
    listed = assemble("x", items, [0.0] * len(items), enc, page, cfg, tok, is_list=True).value
    assert listed == ["honeygrow", "28/11/2022"]  # each item of a list alike


def test_a_bare_count_of_time_takes_its_unit(tok):
    cfg = tiny_config()
    line = [("for", 0), ("1", 40), ("year.", 60), ("Total", 120), ("30", 170), ("items", 200), ("6", 260),
            ("Monate", 280), ("12", 360)]
    words = [Word(w, (x, 0, x + 8 * len(w), 10)) for w, x in line] + [Word("years", (0, 30, 40, 40))]
    page = Page(None, 600, 100, words)  # "years" is on the next line, under "for"
    enc = encode(tok, cfg, tokenize_page(tok, page), ["term"])

    def read(first: int, last: int):
        chosen = _pointers(enc, cfg, first, last) + [cfg.end_id]
        return assemble("term", chosen, [0.0] * len(chosen), enc, page, cfg, tok)

    kv = read(1, 1)
    assert kv.value == "1 year" and kv.boxes == [words[1].box, words[2].box]  # the unit, its box, no "."
    assert read(6, 6).value == "6 Monate"  # German alike
    assert read(4, 4).value == "30"  # "items" is no unit of time
    assert read(8, 8).value == "12"  # the next word in the reading order is on another line
    assert read(0, 1).value == "for 1"  # only a bare count: a phrase is as the model ended it
    assert read(1, 2).value == "1 year."  # the unit read already: nothing added


def test_an_early_end_is_carried_on_along_the_page_only_for_a_bonus():
    V, END = 100, 7
    lp = torch.full((5, 10), -20.0)  # 5 slots over 10 document positions
    end = torch.full((5,), -20.0)
    lp[0, 2], lp[1, 3], lp[2, 4], lp[3, 5] = -0.1, -0.2, -1.2, -9.0  # "Yale" "University", then text
    end[2], end[3] = -0.4, -0.3  # slot 2 prefers END (-0.4) to "University" (-1.2), barely
    chosen = [V + 2, V + 3, END, END, END]
    lps = [-0.1, -0.2, -0.4, -0.5, -0.5]
    assert extend_run(chosen, lps, lp, end, V, END, bonus=0.0) == (chosen, lps)  # 0: as the slots chose
    ids, got = extend_run(chosen, lps, lp, end, V, END, bonus=1.5)  # -1.2 - 0.3 + 1.5 > -0.4
    assert ids == [V + 2, V + 3, V + 4, END, END] and got == pytest.approx([-0.1, -0.2, -1.2, -0.3, -0.5])
    assert extend_run(chosen, lps, lp, end, V, END, bonus=1.0)[0] == chosen  # -1.2 - 0.3 + 1 < -0.4
    # not past an unlikely piece ("then text", -9), and never for stitched values, vocabulary or null
    assert extend_run(chosen, lps, lp, end, V, END, bonus=3.0)[0][:4] == [V + 2, V + 3, V + 4, END]
    for other in ([V + 2, V + 5, END, END, END], [12, 13, END, END, END], [END] * 5):
        assert extend_run(other, lps, lp, end, V, END, bonus=1.0) == (other, lps)


def test_each_line_item_stitched_in_page_order_becomes_one_run():
    V, END, SEP = 100, 7, 2
    lp = torch.full((7, 12), -20.0)  # 7 slots over 12 document positions
    lp[0, 1], lp[1, 2], lp[1, 5] = -0.5, -0.9, -0.4  # item 1: slot 1 prefers 5 to the run's 2
    lp[3, 8], lp[4, 9] = -0.1, -0.1  # item 2: one run already
    chosen = [V + 1, V + 5, SEP, V + 8, V + 9, END, END]  # "1.58" read as "1" ... "58"
    lps = [-0.5, -0.4, -0.1, -0.1, -0.1, -0.2, -0.2]
    ids, got = contiguous_items(chosen, lps, lp, V, END, SEP)
    assert ids == [V + 1, V + 2, SEP, V + 8, V + 9, END, END]
    assert got == pytest.approx([-0.5, -0.9, -0.1, -0.1, -0.1, -0.2, -0.2])
    # kept: an item that reads as the next lines of a block, one that goes back into the page
    # (re-read pieces), one that writes vocabulary tokens
    assert contiguous_items(chosen, lps, lp, V, END, SEP, lines=lambda item: True) == (chosen, lps)
    for item in ([V + 5, V + 1], [V + 1, 40]):
        other = [*item, SEP, V + 8, V + 9, END, END]
        assert contiguous_items(other, lps, lp, V, END, SEP) == (other, lps)


def test_a_list_is_read_as_runs_that_start_words_in_page_order():
    V, END, SEP = 100, 7, 2
    starts, breaks = np.zeros(12, dtype=bool), np.zeros(12, dtype=bool)
    starts[[1, 3, 5, 8]] = True  # pieces 1-2, 3-4, 5-7, 8-11 are words
    lp = torch.full((7, 12), -20.0)  # 7 slots over 12 document positions
    sep = torch.full((7,), -20.0)
    lp[0, 1], lp[0, 2], lp[1, 2] = -0.6, -0.5, -0.3  # slot 0 prefers the word's second piece
    sep[2] = -0.1
    lp[3, 5], lp[3, 6], lp[3, 1] = -0.4, -0.3, -0.2  # slot 3 prefers 6 (mid-word), or re-reading 1
    lp[4, 6], lp[5, 7] = -0.2, -0.2
    chosen = [V + 2, V + 2, SEP, V + 1, V + 6, V + 7, END]  # the slots' argmax: "2 2 | 1 6 7"
    lps = [-0.5, -0.3, -0.1, -0.2, -0.2, -0.2, -0.05]
    ids, got = item_runs(chosen, lps, lp, sep, starts, breaks, V, END, SEP)
    assert ids == [V + 1, V + 2, SEP, V + 5, V + 6, V + 7, END]  # two whole words, in page order
    assert got == pytest.approx([-0.6, -0.3, -0.1, -0.4, -0.2, -0.2, -0.05])
    # the model's length is kept: a list that fills every slot (re-asked with more) fills them all
    full, _ = item_runs(chosen[:6], lps[:6], lp[:6], sep[:6], starts, breaks, V, END, SEP)
    assert full == [V + 1, V + 2, SEP, V + 5, V + 6, V + 7]
    # separators the model writes after the last item stay (empty items, dropped by assemble)
    trailing = [V + 2, V + 2, SEP, SEP, END, END, END]
    sep3 = sep.clone()
    sep3[3] = -0.01
    assert item_runs(trailing, lps, lp, sep3, starts, breaks, V, END, SEP)[0] == [V + 1, V + 2, SEP, SEP, END, END, END]
    # kept: values that write vocabulary tokens, nulls, one-piece values
    for other in ([V + 2, 40, SEP, V + 6, END, END, END], [END] * 7, [V + 2, END, END, END, END, END, END]):
        assert item_runs(other, lps, lp, sep, starts, breaks, V, END, SEP) == (other, lps)


def test_an_item_does_not_run_on_into_the_next_line(tok):
    V, END, SEP = 100, 7, 2
    # "Tea 2.00" / "Cake 3.50": each item name on its own line, read in page order
    page = Page(None, 200, 40, [Word("Tea", (0, 0, 30, 10)), Word("2.00", (150, 0, 190, 10)),
                                Word("Cake", (0, 20, 40, 30)), Word("3.50", (150, 20, 190, 30))])
    enc = encode(tok, tiny_config(), tokenize_page(tok, page), ["item"])
    starts, breaks = piece_marks(enc, len(enc.doc.ids) + 3)
    first = [1 + i for i, w in enumerate(enc.doc.word_index) if i == 0 or enc.doc.word_index[i - 1] != w]
    assert starts[first].all() and starts.sum() == 4
    assert [bool(breaks[1 + enc.doc.word_index.index(w)]) for w in range(4)] == [False, False, True, False]
    # slots that would read "2.00 Cake" as one item: the line break makes it a separator
    cake = 1 + enc.doc.word_index.index(2)
    price = 1 + enc.doc.word_index.index(1)
    n_price = cake - price
    m = n_price + 3
    lp = torch.full((m, len(starts)), -20.0)
    sep = torch.full((m,), -5.0)
    for k in range(n_price):
        lp[k, price + k] = -0.1
    lp[n_price, cake] = -0.2  # the slot after the price prefers "Cake" to a separator
    chosen = [V + price + k for k in range(n_price)] + [V + cake, V + cake, END]
    lps = [-0.1] * m
    ids, _ = item_runs(chosen, lps, lp, sep, starts, breaks, V, END, SEP)
    assert ids[n_price] == SEP and ids[: n_price] == chosen[: n_price]


def test_a_nulls_alternative_is_the_best_run_carried_on_along_the_page(tok):
    """A null's alternative (what `pipeline.answer_over_null` may answer instead) is the page's
    best run, carried on by `extend_run` like any answer: "Lee & Kim", not "Lee"."""
    torch.manual_seed(0)
    model = DocsprintModel(tiny_config(end_bonus=1.0, calibration={"answer": {"a": 1.0, "b": 0.0}})).eval()
    cfg = model.cfg
    words = ["Business", "name", "Lee", "&", "Kim", "Street"]
    page = Page(None, 400, 100, [Word(w, (60 * i, 0, 60 * i + 50, 10)) for i, w in enumerate(words)])
    enc = encode(tok, cfg, tokenize_page(tok, page), ["business name"])
    lee, amp, kim = (_pointers(enc, cfg, w, w)[0] - cfg.vocab_size for w in (2, 3, 4))
    assert (amp, kim) == (lee + 1, lee + 2)
    m = enc.budget[0]
    width = enc.n_doc

    def choose(model, batch):  # every slot answers END (a null); the copy scores read "Lee & Kim"
        copy_lp = torch.full((1, m, width), -20.0)
        copy_lp[0, 0, lee], copy_lp[0, 1, amp], copy_lp[0, 2, kim] = -0.1, -0.5, -0.5
        special = torch.full((1, m, 2), -20.0)
        special[0, 1, 0], special[0, 3, 0] = -0.3, -1.0  # END after "Lee" (-0.4 in all) beats after "Kim" (-2.1)
        return torch.full((1, m), -0.01), torch.full((1, m), cfg.end_id), copy_lp, special

    kv = decode_parallel(model, tok, [enc], [page], choose=choose)[0][0]
    assert kv.value is None and kv.alternative.value == "Lee & Kim"
    model.cfg.end_bonus = 0.0  # no bonus: the best run as it is
    assert decode_parallel(model, tok, [enc], [page], choose=choose)[0][0].alternative.value == "Lee"


def test_an_amount_key_answered_with_its_label_takes_the_best_run_with_a_number(tok):
    """Slots of a total that copy its label "Total" answer instead the best run of the page that
    can be a total (`typed_run`: one number), with that run's own confidence; a name
    key keeps what its slots copied."""
    torch.manual_seed(0)
    model = DocsprintModel(tiny_config(end_bonus=0.0)).eval()
    cfg = model.cfg
    words = ["Lunch", "Total", "$", "12.40", "Thanks"]
    page = Page(None, 400, 100, [Word(w, (60 * i, 0, 60 * i + 50, 10)) for i, w in enumerate(words)])
    enc = encode(tok, cfg, tokenize_page(tok, page), ["total"])
    label, dollar = _pointers(enc, cfg, 1, 1)[0], _pointers(enc, cfg, 2, 2)[0]
    number = _pointers(enc, cfg, 3, 3)
    width = enc.n_doc

    def choose(model, batch):  # slot 0 copies "Total", slot 1 answers END; the runs read "$ 12.40"
        m = batch.value_pos.shape[1]  # the asked key's slots
        copy_lp = torch.full((1, m, width), -20.0)
        copy_lp[0, 0, label - cfg.vocab_size], copy_lp[0, 0, dollar - cfg.vocab_size] = -0.1, -1.5
        for i, p in enumerate(number):
            copy_lp[0, 1 + i, p - cfg.vocab_size] = -0.5
        special = torch.full((1, m, 2), -20.0)
        special[0, 1, 0], special[0, 1 + len(number), 0] = -0.05, -0.3
        idx = torch.full((1, m), cfg.end_id)
        idx[0, 0] = label
        return torch.full((1, m), -0.05), idx, copy_lp, special

    kv = decode_parallel(model, tok, [enc], [page], choose=choose)[0][0]
    lps = [-1.5] + [-0.5] * len(number) + [-0.3]
    assert kv.value == "$ 12.40" and kv.confidence == pytest.approx(np.exp(np.mean(lps)), rel=1e-4)
    name = encode(tok, cfg, tokenize_page(tok, page), ["store name"])
    kv = decode_parallel(model, tok, [name], [page], choose=choose)[0][0]
    assert kv.value == "Total" and kv.confidence == pytest.approx(np.exp(-0.05), rel=1e-4)


def test_an_amount_that_runs_on_into_the_next_number_keeps_the_first(tok):
    """A subtotal whose slots run on from "100.30" into the tax beside it ("100.30 10.03") is
    one number, the best run that is (`fits`): the END its slots put after the first number."""
    model = DocsprintModel(tiny_config(end_bonus=0.0)).eval()
    cfg = model.cfg
    words = ["Subtotal", "100.30", "10.03", "Tax"]
    page = Page(None, 400, 100, [Word(w, (60 * i, 0, 60 * i + 50, 10)) for i, w in enumerate(words)])
    enc = encode(tok, cfg, tokenize_page(tok, page), ["subtotal"])
    run = _pointers(enc, cfg, 1, 2)  # the pieces of "100.30 10.03", in page order
    first = len(_pointers(enc, cfg, 1, 1))
    m, width = enc.budget[0], enc.n_doc

    def choose(model, batch):
        copy_lp = torch.full((1, m, width), -20.0)
        for i, p in enumerate(run):
            copy_lp[0, i, p - cfg.vocab_size] = -0.1
        special = torch.full((1, m, 2), -20.0)
        special[0, first, 0], special[0, len(run), 0] = -1.0, -0.2  # END after the first number: second best
        idx = torch.full((1, m), cfg.end_id)
        idx[0, : len(run)] = torch.tensor(run)
        return torch.full((1, m), -0.1), idx, copy_lp, special

    assert decode_parallel(model, tok, [enc], [page], choose=choose)[0][0].value == "100.30"
    name = encode(tok, cfg, tokenize_page(tok, page), ["reference"])  # any other key keeps its run
    assert decode_parallel(model, tok, [name], [page], choose=choose)[0][0].value == "100.30 10.03"


def test_a_copy_that_starts_inside_a_word_takes_its_beginning(tok):
    """A value never starts inside a run of digits or letters, nor with a closing bracket:
    ") years" of "two (2) years" is "(2) years" (Kleister-NDA's term reads "2 years"); a start
    between kinds stays ("9.00" of "RM9.00")."""
    cfg = tiny_config()
    words = ["for", "two", "(2)", "years", "RM9.00", "honeygrow"]
    page = Page(None, 400, 100, [Word(w, (60 * i, 0, 60 * i + 50, 10)) for i, w in enumerate(words)])
    enc = encode(tok, cfg, tokenize_page(tok, page), ["x"])

    def from_piece(word: int, skip: int, last: int):
        chosen = _pointers(enc, cfg, word, last)[skip:] + [cfg.end_id]
        return assemble("x", chosen, [0.0] * len(chosen), enc, page, cfg, tok).value

    assert from_piece(2, 2, 3) == "(2) years"  # "(" "2" | ")" "years"
    assert from_piece(4, 1, 4) == "9.00"  # "rm" | "##9" "." "00": a cut between letters and digits stays
    assert from_piece(5, 1, 5) == "honeygrow"  # "honey" | "##gr" "##ow"


def test_a_question_the_page_prints_is_never_a_value(tok):
    """`printed_keys`: the words where a form prints an asked key whole (its own letters and
    case) are labels; `drop_labels` moves a slot that copied one to the best of the rest of
    the page. A key named in other words ("total" of "TOTAL") leaves the page copyable."""
    from docsprint.decode.common import drop_labels, printed_keys

    cfg = tiny_config(key_mentions=True)
    words = ["Revised", "From:", "$76", "600", "TOTAL", "9.00"]
    page = Page(None, 400, 100, [Word(w, (60 * i, 0, 60 * i + 50, 10)) for i, w in enumerate(words)])
    doc = tokenize_page(tok, page)
    enc = encode(tok, cfg, doc, ["Revised From:", "total"])
    labels = printed_keys(enc, page)
    assert labels == _positions(enc, 0, 1)  # "Revised From:", and not "TOTAL": "total" is not printed as asked
    assert printed_keys(encode(tok, cfg, doc, ["revised from"]), page) == []

    V, end = cfg.vocab_size, cfg.end_id
    q, ld = 3, len(enc.ids)
    copy = torch.full((q, ld), -9.0)
    copy[0, labels[0]], copy[0, _positions(enc, 2, 2)[0]] = -0.1, -1.0  # slot 0: the label, then "$76"
    copy[1, _positions(enc, 3, 3)[0]] = -0.2  # slot 1: "600"
    end_lp = torch.tensor([-5.0, -3.0, -0.1])
    best, idx = torch.tensor([-0.1, -0.2, -0.1]), torch.tensor([V + labels[0], V + _positions(enc, 3, 3)[0], end])
    best2, idx2, copy2 = drop_labels(best, idx, copy, end_lp, labels, V, end)
    assert idx2.tolist() == [V + _positions(enc, 2, 2)[0], idx[1], end] and best2[0] == -1.0
    assert bool((copy2[:, labels] < -1e8).all()) and copy[0, labels[0]] == -0.1  # a copy: the input is kept
    assert drop_labels(best, idx, copy, end_lp, [], V, end)[1] is idx


def test_a_printed_question_is_never_a_value_when_decoding_token_by_token(tok):
    """Autoregressive decoding follows the same rule as parallel: a pointer that prefers the
    printed question "Revised From:" copies the best of the rest of the page, "$76" (what the
    random slots write after it does not matter here: only "$76" is copied)."""
    from docsprint.decode.autoregressive import decode_autoregressive

    model = DocsprintModel(tiny_config(key_mentions=True)).eval()
    words = ["Revised", "From:", "$76", "TOTAL", "9.00"]
    page = Page(None, 400, 100, [Word(w, (60 * i, 0, 60 * i + 50, 10)) for i, w in enumerate(words)])
    doc = tokenize_page(tok, page)
    original = model.head.pointer

    def pointer(query, doc_keys, doc_copyable, bias=None):  # the question first, then "$76"
        prefer = torch.zeros(doc_copyable.shape[-1])
        prefer[_positions(enc, 0, 1)], prefer[_positions(enc, 2, 2)[0]] = 60.0, 50.0
        return original(query, doc_keys, doc_copyable, prefer)

    model.head.pointer = pointer
    enc = encode(tok, model.cfg, doc, ["Revised From:"], "autoregressive")
    assert decode_autoregressive(model, tok, enc, page)[0].boxes == [page.words[2].box]
    enc = encode(tok, model.cfg, doc, ["revised from"], "autoregressive")  # not printed as asked: copyable
    assert decode_autoregressive(model, tok, enc, page)[0].boxes[0] in (page.words[0].box, page.words[1].box)


def _positions(enc, first_word: int, last_word: int) -> list[int]:
    """Copy positions (piece index + 1) of the pieces of words first..last."""
    return [j + 1 for j, w in enumerate(enc.doc.word_index) if first_word <= w <= last_word]


def test_a_key_printed_as_a_label_is_told_apart_from_one_in_running_text(tok):
    """`label_keys`: a key printed exactly as asked with its colon, or as a phrase of its own
    (a column's "JAN"), is a label; "SSN" inside a sentence and "total" of "TOTAL" are not.
    `scale_labels` gives the labels `label_geometry` as their geometry factor."""
    from docsprint.decode.common import label_keys, scale_labels

    cfg = tiny_config(key_mentions=True, key_geometry=True)
    line = [("Reporting", 0), ("Period:", 45), ("May", 90), ("JAN", 300), ("enter", 0), ("your", 50),
            ("SSN", 95), ("here", 135), ("TOTAL", 0), ("9.00", 100)]
    rows = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    page = Page(None, 400, 100, [Word(w, (x, 20 * r, x + 40, 20 * r + 10)) for (w, x), r in zip(line, rows, strict=True)])
    keys = ["Reporting Period:", "JAN", "SSN", "total", "May"]
    enc = encode(tok, cfg, tokenize_page(tok, page), keys)
    assert label_keys(enc, page) == {0, 1}  # "May" is printed whole but close after "Period:"
    assert scale_labels(enc, page, cfg).key_scale == []  # factor 1: decoded as trained
    cfg.label_geometry = 4.0
    assert scale_labels(enc, page, cfg).key_scale == [4.0, 4.0, 1.0, 1.0, 1.0]
    assert label_keys(encode(tok, cfg, tokenize_page(tok, page), ["reporting period"]), page) == set()
    # a paragraph's last word alone on its line is apart, but "party." is not printed as "party"
    lone = Page(None, 400, 100, [Word("third", (0, 0, 40, 10)), Word("party.", (0, 20, 40, 30)),
                                 Word("7.", (0, 40, 20, 50)), Word("Party", (0, 60, 40, 70))])
    assert label_keys(encode(tok, cfg, tokenize_page(tok, lone), ["party", "date"]), lone) == set()
    assert label_keys(encode(tok, cfg, tokenize_page(tok, lone), ["date", "Party"]), lone) == {1}


def test_a_value_that_runs_on_into_another_keys_answer_is_cut_before_it():
    """`cut_run_ons`: the words another key answers whole, at the end or the start of a value,
    leave it; a less sure key, a value the same words whole, a rest with no word and list
    keys keep theirs."""
    from docsprint.decode.common import KeyValue, cut_run_ons

    box = [(10.0 * i, 0.0, 10.0 * i + 8, 10.0) for i in range(6)]

    def kv(key, value, conf, words, page=0):
        return KeyValue(key, value, conf, [box[i] for i in words], page=page)

    out = cut_run_ons({"Location": kv("Location", "Monterey, Ca San Jose/ 933", 0.6, [0, 1, 2, 3, 4]),
                       "Division": kv("Division", "San Jose/ 933", 0.4, [2, 3, 4]),
                       "Plant": kv("Plant", "27 Main", 0.5, [0, 1]),
                       "Brand": kv("Brand", "27 Main St", 0.5, [0, 1, 5])})
    assert out["Location"].value == "Monterey, Ca" and out["Location"].boxes == box[:2]
    assert out["Division"].value == "San Jose/ 933"  # the answer cut away from is kept whole
    assert out["Brand"].value == "St" and out["Brand"].boxes == [box[5]]  # its start answers "Plant"

    memo = cut_run_ons({"To": kv("To", "Joe Leinster Joyce", 0.3, [0, 1, 2]), "From": kv("From", "Joyce Bagby", 0.4, [2, 3]),
                        "TO": kv("TO", "R. H. ORCUTT J", 0.6, [4, 5]), "FROM": kv("FROM", "J. BUXTON", 0.9, [5])})
    assert memo["To"].value == "Joe Leinster" and memo["To"].boxes == box[:2] and memo["From"].value == "Joyce Bagby"
    assert memo["TO"].value == "R. H. ORCUTT"  # its last word read in part: "J" of "J."

    unsure = cut_run_ons({"C": kv("C", "Suzi Hicks RJR", 0.5, [0, 1, 2]), "Vendor": kv("Vendor", "Suzi Hicks", 0.1, [0, 1])})
    assert unsure["C"].value == "Suzi Hicks RJR"
    same = cut_run_ons({"Title": kv("Title", "Sneak Preview", 0.5, [0, 1]), "Subject": kv("Subject", "Sneak Preview", 0.5, [0, 1])})
    assert same["Title"].value == same["Subject"].value == "Sneak Preview"
    amount = cut_run_ons({"amount due": kv("amount due", "571.04 €", 0.8, [0, 1]), "total": kv("total", "571.04", 0.8, [0])})
    assert amount["amount due"].value == "571.04 €"
    other_page = cut_run_ons({"a": kv("a", "x y", 0.5, [0, 1]), "b": kv("b", "y", 0.5, [1], page=1)})
    assert other_page["a"].value == "x y"
    items = cut_run_ons({"item": kv("item", "x y", 0.5, [0, 1]), "b": kv("b", "y", 0.5, [1])}, frozenset({"item"}))
    assert items["item"].value == "x y"


def test_a_bare_currency_sign_takes_the_amount_after_it_on_its_line(tok):
    """`_amount_after_sign`: a form's "JAN  $      10.000." answers "$ 10.000.", across a
    column's gap; a sign with no number after it on its line stays, and an amount key's bare
    sign is left to `typed_run`."""
    cfg = tiny_config()
    words = [("JAN", (0, 0, 30, 10)), ("$", (40, 0, 50, 10)), ("10.000.", (85, 0, 140, 10)),
             ("FEB", (0, 20, 30, 30)), ("$", (40, 20, 50, 30)), ("Total", (0, 40, 40, 50))]
    page = Page(None, 400, 100, [Word(t, b) for t, b in words])
    enc = encode(tok, cfg, tokenize_page(tok, page), ["x"])
    jan = _pointers(enc, cfg, 1, 1) + [cfg.end_id]
    kv = assemble("JAN", jan, [0.0, 0.0], enc, page, cfg, tok)
    assert kv.value == "$ 10.000." and kv.boxes == [words[1][1], words[2][1]]
    assert assemble("FEB", _pointers(enc, cfg, 4, 4) + [cfg.end_id], [0.0, 0.0], enc, page, cfg, tok).value == "$"
    assert assemble("total", jan, [0.0, 0.0], enc, page, cfg, tok).value == "$"


def test_a_values_brackets_are_balanced_along_its_line(tok):
    """`_balance_brackets`: a closing bracket the value never opened is dropped; an open one is
    read on to its close along the line (the word read in part taken whole); one that does
    not close on its line is left."""
    cfg = tiny_config()
    words = [("Injury", (0, 0, 40, 10)), ("X", (50, 0, 58, 10)), (")", (60, 0, 64, 10)),
             ("CLIENT", (0, 20, 40, 30)), ("TOBACCO", (50, 20, 100, 30)), ("(LUCKY", (105, 20, 150, 30)),
             ("STRIKE)", (155, 20, 200, 30)), ("Note", (0, 40, 30, 50)), ("see", (40, 40, 60, 50)), ("(page", (65, 40, 90, 50))]
    page = Page(None, 400, 100, [Word(t, b) for t, b in words])
    enc = encode(tok, cfg, tokenize_page(tok, page), ["x"])

    def read(first, last, upto=None):  # copy words first..last, the last one only up to its piece ``upto``
        chosen = _pointers(enc, cfg, first, last)
        return assemble("x", (chosen[: upto] if upto else chosen) + [cfg.end_id], [0.0] * 9, enc, page, cfg, tok)

    x = read(1, 2)
    assert x.value == "X" and x.boxes == [words[1][1]]
    paren = len(_pointers(enc, cfg, 4, 4)) + 1  # "TOBACCO" and the "(" piece of "(LUCKY"
    client = read(4, 5, paren)
    assert client.value == "TOBACCO (LUCKY STRIKE)" and client.boxes == [b for _, b in words[4:7]]
    assert read(8, 9).value == "see (page"


def test_a_printed_labels_answer_reads_its_phrase_to_its_end(tok):
    """`_rest_of_phrase`: the answer of a key printed as a label goes on along its line while
    the words follow at a word's spacing; a phrase that runs into a label's colon is left as
    read, a key not printed as a label keeps its answer, and so does a typed key."""
    from docsprint.decode.common import scale_labels

    cfg = tiny_config(key_mentions=True, key_geometry=True, label_geometry=4.0)
    words = [("Reason:", (0, 0, 50, 10)), ("Lower", (60, 0, 100, 10)), ("Incidence", (105, 0, 170, 10)),
             ("far", (300, 0, 330, 10)),
             ("Period:", (0, 20, 50, 30)), ("May", (60, 20, 90, 30)), ("Employer", (95, 20, 150, 30)), ("Name:", (155, 20, 190, 30)),
             ("Date:", (0, 40, 40, 50)), ("12/03/95", (50, 40, 110, 50)), ("10:22", (115, 40, 150, 50))]
    page = Page(None, 400, 100, [Word(t, b) for t, b in words])

    def read(keys, first, last):
        enc = scale_labels(encode(tok, cfg, tokenize_page(tok, page), keys), page, cfg)
        return assemble(keys[0], _pointers(enc, cfg, first, last) + [cfg.end_id], [0.0] * 9, enc, page, cfg, tok)

    lower = read(["Reason:"], 1, 1)
    assert lower.value == "Lower Incidence" and lower.boxes == [words[1][1], words[2][1]]  # "far" is another column
    assert read(["Period:"], 5, 5).value == "May"  # runs into "Employer Name:"
    assert read(["reason"], 1, 1).value == "Lower"  # not printed as asked: no label
    assert read(["Date:"], 9, 9).value == "12/03/95"  # a date's key: the time after it is no part of it
