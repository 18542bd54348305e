"""One printed answer for one printed question (`docsprint.decode.claims`)."""

import torch

from docsprint.data.encode import encode, tokenize_page
from docsprint.decode.claims import claim, named_in_full, printed_name
from docsprint.decode.common import KeyValue
from docsprint.decode.parallel import decode_parallel
from docsprint.io.document import Page, Word
from docsprint.models.model import DocsprintModel
from tests.conftest import tiny_config

FORM = ["Contact:", "Larry", "Odum", "Client:", "American", "Tobacco", "Date", "of", "Birth:", "1/2/90", "To:",
        "Total", "529,87"]


def _form() -> Page:
    return Page(None, 1000, 100, [Word(w, (70.0 * i, 0.0, 70.0 * i + 60, 10.0)) for i, w in enumerate(FORM)])


def _box(word: str) -> tuple[float, ...]:
    return _form().words[FORM.index(word)].box


def _kv(key, value, confidence, *words):
    return KeyValue(key, value, confidence, [_box(w) for w in words])


def test_a_key_is_named_in_full_where_the_page_prints_its_whole_name(tok):
    cfg = tiny_config(key_mentions=True)
    keys = ["Contact:", "client", "date of birth", "birth date", "seller", "to", "grand total", "total"]
    enc = encode(tok, cfg, tokenize_page(tok, _form()), keys)
    named = {k: named_in_full(tok, enc, k) for k in keys}
    # "birth date" is printed in the other order, "grand total" in part, "to" is too short a name to be a question
    assert named == {"Contact:": True, "client": True, "date of birth": True, "birth date": False, "seller": False,
                     "to": False, "grand total": False, "total": True}
    assert printed_name(enc, _form(), 2) == {_box("Date"), _box("of"), _box("Birth:")}
    assert printed_name(enc, _form(), 4) == set()


def test_the_surer_key_keeps_the_words_the_other_takes_its_next_free_run():
    answers = [_kv("Contact:", "Larry Odum", 0.7, "Larry", "Odum"), _kv("Client:", "Larry Odum", 0.3, "Larry", "Odum")]
    runs = {1: [_kv("Client:", "Odum", 0.2, "Odum"),  # a claimed word
                _kv("Client:", "Client:", 0.2, "Client:"),  # its own question
                _kv("Client:", "American Tobacco", 0.1, "American", "Tobacco")],
            0: [_kv("Contact:", "American Tobacco", 0.1, "American", "Tobacco")]}
    out = claim(answers, [True, True], lambda i: iter(runs[i]), lambda i: {_box("Client:")} if i == 1 else set())
    assert [kv.value for kv in out] == ["Larry Odum", "American Tobacco"]
    assert out[1].confidence == 0.1  # its own run's
    # the surer one keeps it, whichever order the keys were asked in
    swapped = claim(answers[::-1], [True, True], lambda i: iter(runs[1 - i]), lambda i: {_box("Client:")} if i == 0 else set())
    assert [kv.value for kv in swapped] == ["Larry Odum", "American Tobacco"][::-1]
    # keys the page does not print may share a value ("grand total" and "amount due": one "529,87")
    sums = [_kv("grand total", "529,87", 0.9, "529,87"), _kv("amount due", "529,87", 0.8, "529,87")]
    assert claim(sums, [False, False], lambda i: iter([_kv("k", "1/2/90", 0.1, "1/2/90")])) == sums
    # one printed, one not: nothing to share
    assert claim(sums, [True, False], lambda i: iter([_kv("k", "1/2/90", 0.1, "1/2/90")])) == sums
    # no free run: the answer stays
    assert claim(answers, [True, True], lambda i: iter(runs[1][:1])) == answers


def test_parallel_decoding_gives_two_printed_questions_two_answers(tok):
    """End to end through `decode_parallel`: the slots of "Contact:" and "Client:" both read
    "Larry Odum" best, Contact's surer; Client's next run is "American Tobacco". Client answers
    it; "grand total" and "amount due" (not printed in full) both keep the one "529,87"."""
    model = DocsprintModel(tiny_config(end_bonus=0.0, key_mentions=True)).eval()
    cfg = model.cfg
    page = _form()
    keys = ["Contact:", "Client:", "grand total", "amount due"]
    enc = encode(tok, cfg, tokenize_page(tok, page), keys)
    width = enc.n_doc

    def pieces(*words):
        return [1 + i for w in words for i, wi in enumerate(enc.doc.word_index) if wi == FORM.index(w)]

    larry, tobacco, amount = pieces("Larry", "Odum"), pieces("American", "Tobacco"), pieces("529,87")
    reads = {0: [(larry, -0.1)], 1: [(larry, -0.5), (tobacco, -0.9)], 2: [(amount, -0.1)], 3: [(amount, -0.2)]}

    def choose(model, batch):
        m = batch.value_pos.shape[1]
        copy_lp, special = torch.full((1, m, width), -20.0), torch.full((1, m, 2), -20.0)
        idx, best = torch.full((1, m), cfg.end_id), torch.full((1, m), -0.05)
        for k in range(len(keys)):
            qs = [q for q, kk in enumerate(enc.value_key) if kk == k]
            for run, lp in reads[k]:
                for i, p in enumerate(run):
                    copy_lp[0, qs[i], p] = max(float(copy_lp[0, qs[i], p]), lp)
                special[0, qs[len(run)], 0] = -0.05  # END after each reading
            first, lp = reads[k][0]
            for i, p in enumerate(first):
                idx[0, qs[i]], best[0, qs[i]] = cfg.vocab_size + p, lp
        return best, idx, copy_lp, special

    out = decode_parallel(model, tok, [enc], [page], choose=choose)[0]
    assert [kv.value for kv in out] == ["Larry Odum", "American Tobacco", "529,87", "529,87"]
