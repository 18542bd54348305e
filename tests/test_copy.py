"""Copy decoding: a value copied from the document comes back exactly as the document writes it."""

from docsprint.data.encode import encode, tokenize_page
from docsprint.decode.common import assemble
from docsprint.io.document import Page, Word
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


def test_part_of_a_word_and_tokens_after_end(tok):
    cfg, page, enc = _setup(tok)
    pieces = _pointers(enc, cfg, 7, 7)  # rm ##9 . 00
    chosen = pieces[1:] + [cfg.end_id] + pieces[:1]
    kv = assemble("x", chosen, [0.0] * len(chosen), enc, page, cfg, tok)
    assert kv.value == "9.00"


def test_vocabulary_tokens_and_null(tok):
    cfg, page, enc = _setup(tok)
    ids = tok.encode("unknown value", add_special_tokens=False).ids
    kv = assemble("x", ids + [cfg.end_id], [-0.1] * (len(ids) + 1), enc, page, cfg, tok)
    assert kv.value == "unknown value" and kv.boxes == []
    null = assemble("x", [cfg.end_id, 5, 6], [-0.5, 0, 0], enc, page, cfg, tok)
    assert null.value is None
    assert abs(null.confidence - 0.6065) < 1e-3  # exp(-0.5): only the END counts
