from docsprint.data.encode import (
    ITEM_SEP_ID,
    align,
    collate,
    encode,
    tokenize_page,
    value_ids,
    windows,
)
from docsprint.io.document import Page, Word, split_line
from docsprint.models.config import DOC, KEY, VALUE
from tests.conftest import tiny_config


def _page() -> Page:
    words = [Word("Hello", (0, 0, 50, 10)), Word("WORLD's", (60, 0, 130, 10)),
             Word("25/12/2018", (0, 20, 100, 30)), Word("RM9.00", (110, 20, 170, 30))]
    return Page(None, 200, 100, words)


def test_word_pieces_keep_their_word_box_and_characters(tok):
    page = _page()
    doc = tokenize_page(tok, page)
    assert len(doc.ids) > len(page.words)  # words were split into pieces
    for i in range(len(doc.ids)):
        w = page.words[doc.word_index[i]]
        assert doc.bbox[i] == page.norm_box(w)
        a, b = doc.char_span[i]
        assert 0 <= a < b <= len(w.text)
    # the pieces of each word cover exactly its characters, in order
    for wi, w in enumerate(page.words):
        spans = [doc.char_span[i] for i in range(len(doc.ids)) if doc.word_index[i] == wi]
        assert "".join(w.text[a:b] for a, b in spans) == w.text
    assert page.norm_box(page.words[3]) == (550, 200, 850, 300)


def test_split_line_gives_each_word_its_share_of_the_line():
    words = split_line("AB  CDEF", (0, 0, 80, 10))
    assert [w.text for w in words] == ["AB", "CDEF"]
    assert words[0].box == (0, 0, 20, 10)
    assert words[1].box == (40, 0, 80, 10)


def test_windows_cover_the_page_and_never_cut_a_word(tok):
    page = Page(None, 100, 100, [Word(f"word{i}xyz", (0, i, 10, i + 1)) for i in range(40)])
    doc = tokenize_page(tok, page)
    parts = windows(doc, size=25, stride=15)
    assert len(parts) > 1
    assert all(len(p.ids) <= 25 for p in parts)
    seen = {w for p in parts for w in p.word_index}
    assert seen == set(range(40))
    for p in parts:  # a window starts at the first piece of a word
        assert p.char_span[0][0] == 0


def test_align_accepts_every_exact_occurrence_and_falls_back_to_partial():
    assert align([5, 1, 2, 9, 1, 2], [1, 2]) == [[1, 4], [2, 5]]
    assert align([5, 1, 7, 2], [1, 3, 2]) == [[1], [], [3]]


def test_value_ids_join_list_items(tok):
    ids = value_ids(tok, ["a", "b"])
    assert ITEM_SEP_ID in ids and value_ids(tok, None) == []


def test_parallel_and_autoregressive_layouts(tok):
    cfg = tiny_config()
    doc = tokenize_page(tok, _page())
    par = encode(tok, cfg, doc, ["total", "date"], "parallel", ["RM9.00", None])
    assert par.token_type[: par.n_doc] == [DOC] * par.n_doc
    assert len(par.value_pos) == cfg.slots_for("total") + cfg.slots_for("date")
    assert all(par.ids[p] == cfg.mask_id and par.rank[p] == 0 for p in par.value_pos)
    assert KEY in par.token_type and VALUE in par.token_type
    # "RM9.00" is copied from the document: targets point at its pieces (offset by vocab)
    first = par.targets[0][0] - cfg.vocab_size
    assert par.ids[first] == tok.encode("RM9.00", add_special_tokens=False).ids[0]
    # an absent key's first slot ends immediately
    date_slots = [q for q, k in enumerate(par.value_key) if k == 1]
    assert par.targets[date_slots[0]] == [cfg.end_id]

    ar = encode(tok, cfg, doc, ["total"], "autoregressive", ["RM9.00"])
    n = len(tok.encode("RM9.00", add_special_tokens=False).ids)
    assert len(ar.value_pos) == n + 1  # the tokens, then END
    assert [ar.rank[p] for p in ar.value_pos] == list(range(1, n + 2))
    assert ar.ids[ar.value_pos[0]] == cfg.bos_id
    # teacher forcing: input i is target i-1 (a copied piece, with its box)
    assert ar.ids[ar.value_pos[1]] == ar.ids[ar.targets[0][0] - cfg.vocab_size]
    assert ar.bbox[ar.value_pos[1]] != (0, 0, 0, 0)


def test_collate_keeps_document_positions_aligned(tok):
    cfg = tiny_config()
    short = encode(tok, cfg, tokenize_page(tok, Page(None, 10, 10, [Word("a", (0, 0, 1, 1))])), ["total"])
    long = encode(tok, cfg, tokenize_page(tok, _page()), ["total"])
    b = collate([short, long])
    assert b.tokens.ids.shape[0] == 2
    assert b.doc_copyable[0].sum() == 1 and b.doc_copyable[1].sum() == len(long.doc.ids)
    # value slots of the short row moved past the padded document, and still hold MASK
    assert all(b.tokens.ids[0, p] == cfg.mask_id for p in b.value_pos[0][b.value_valid[0]].tolist())


def test_key_chunks_fit_the_prompt_and_keep_every_key_once(tok, tiny_model):
    from docsprint.data.encode import key_chunks, key_name_ids

    cfg = tiny_model.cfg
    keys = ["total", "date", "company", "address"] + [f"free text key {i}" for i in range(20)]
    chunks = key_chunks(tok, cfg, keys, max_tokens=40)
    assert [k for c in chunks for k in c] == keys
    for c in chunks:
        assert len(c) <= cfg.max_keys
        assert len(c) == 1 or sum(len(key_name_ids(tok, k)) + cfg.slots_for(k) for k in c) <= 40
    assert key_chunks(tok, cfg, []) == []


def _form_page(text: str) -> Page:
    words = [Word(w, (40 * i, 0, 40 * i + 35, 10)) for i, w in enumerate(text.split())]
    return Page(None, 40 * len(words), 20, words)


def test_key_mentions_mark_where_the_page_prints_a_key_name(tok):
    from docsprint.data.encode import key_mentions

    page = _form_page("Date of Birth: 12/03/1980 Total : 9.00 Subtotal 8.00 of the date")
    doc = tokenize_page(tok, page)
    keys = ["date of birth", "total", "birth place"]
    marks = key_mentions(tok, doc.ids, keys)
    assert len(marks) == len(doc.ids)
    words = {}
    for p, m in enumerate(marks):
        words.setdefault(page.words[doc.word_index[p]].text, set()).add(m)
    assert words["Date"] == {1} and words["of"] == {0, 1}  # "of" of "Date of Birth", not of "of the"
    assert [m for p, m in enumerate(marks) if page.words[doc.word_index[p]].text == "Birth:"] == [1, 0]  # not ":"
    assert words["Total"] == {2}  # a one-piece key, whole
    assert words["12/03/1980"] == {0} and words["9.00"] == {0}
    assert words["Subtotal"] == {0}  # another word, not "total"
    assert words["the"] == {0}  # "of the" is stop words only; the lone "date" is not the whole key
    assert words["date"] == {0}
    assert 3 not in marks  # "birth" alone is one piece of a two-piece name
    # the marks reach the encoded sequence only for a model that reads them
    off = encode(tok, tiny_config(), doc, keys)
    on = encode(tok, tiny_config(key_mentions=True), doc, keys)
    assert set(off.mention) == {0} and len(off.mention) == len(off.ids)
    assert on.mention == [0, *marks, *[0] * (len(on.ids) - len(marks) - 1)]
    short = encode(tok, tiny_config(key_mentions=True), tokenize_page(tok, _form_page("Total 3.00")), ["total"])
    batch = collate([short, on])  # the short document is padded to the long one's length
    assert batch.tokens.mention.shape == batch.tokens.ids.shape
    assert batch.tokens.mention[1, 1 : 1 + len(marks)].tolist() == marks
    n = len(short.doc.ids)
    assert batch.tokens.mention[0, : on.n_doc].tolist() == [0, 1] + [0] * (on.n_doc - 2)
    assert n == 4 and short.mention[:2] == [0, 1]


def test_a_key_of_small_words_is_named_where_the_page_prints_it_with_its_punctuation(tok):
    """A memo's "TO:" and "FROM:" are its questions; the "to" of a sentence is not, and a
    key of small words without punctuation ("To") names nothing."""
    from docsprint.data.encode import key_mentions

    page = _form_page("FROM: M. BORSINI TO: VINCE LOSITO went to the shop")
    doc = tokenize_page(tok, page)
    marks = key_mentions(tok, doc.ids, ["TO:", "FROM:", "To", "shop"])
    words: dict[str, list[int]] = {}
    for p, m in enumerate(marks):
        words.setdefault(page.words[doc.word_index[p]].text, []).append(m)
    assert words["FROM:"] == [2, 0] and words["TO:"] == [1, 0]  # the word, not its ":"
    assert words["to"] == [0] and words["went"] == [0]
    assert words["shop"] == [4] and 3 not in marks
