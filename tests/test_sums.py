"""Amounts that add up (`docsprint.decode.sums`): subtotal + tax (+ tips) = total."""

import pytest
import torch

from docsprint.data.encode import encode, tokenize_page
from docsprint.decode.common import KeyValue
from docsprint.decode.parallel import decode_parallel
from docsprint.decode.sums import amount_role, balance
from docsprint.io.document import Page, Word
from docsprint.models.model import DocsprintModel
from tests.conftest import tiny_config


def test_keys_made_of_sum_words_have_a_role():
    roles = {"subtotal": "net", "Sub Total:": "net", "net total": "net", "total net": "net",
             "total before tax": "net", "tax": "tax", "VAT": "tax", "total tax": "tax", "tax total": "tax",
             "tips": "tip", "gratuity": "tip", "total": "total", "Grand Total": "total", "total amount": "total",
             "total incl. VAT": "total", "invoice total": "total",
             "amount due": None, "state tax withheld": None, "tax rate": None, "seller VAT ID": None, "date": None}
    assert {k: amount_role(k) for k in roles} == roles


def _kv(key, value, confidence=0.9):
    return KeyValue(key, value, confidence, [], True)


def _answers(net, tax, total, *more):
    return [_kv("store name", "Cafe"), _kv("subtotal", net, 0.8), _kv("tax", tax, 0.7), _kv("total", total, 0.95),
            *more]


def test_an_amount_that_breaks_the_sum_takes_the_run_that_completes_it():
    """The subtotal read as the total ("14.20") becomes the run of its slots that makes the sum
    (14.20 - 0.93), as sure as the least sure amount it agrees with; the first runs that do
    not fit are passed over, and a run ranked lower for another key loses to it."""
    runs = {1: ["14.20", "1.00", "13.27"], 2: ["0.93"], 3: ["14.20", "99.00", "98.00", "15.13"]}
    out = balance(_answers("14.20", "0.93", "14.20"), lambda i: (_kv("k", v, 0.1) for v in runs[i]))
    assert [kv.value for kv in out] == ["Cafe", "13.27", "0.93", "14.20"]
    assert out[1].confidence == pytest.approx(0.7)
    # credit notes print every sum negative; a tax may be zero
    out = balance(_answers("-25,00", "0,00", "-180,00"), lambda i: iter([_kv("k", "-180,00")] if i == 1 else []))
    assert out[1].value == "-180,00"


def test_answers_that_add_up_or_cannot_be_mended_stay():
    calls = []

    def runs(i):
        calls.append(i)
        return iter([_kv("k", "5.00")])

    same = _answers("13.27", "0.93", "14.20")
    assert balance(same, runs) == same and not calls  # they add up: no run is looked at
    assert balance(_answers("13.27", "0.93", "14.20", _kv("tips", "2.00")), runs)[3].value == "14.20"  # 16.20 not a run
    tipped = balance(_answers("3.27", "0.93", "5.00", _kv("tips", "0.80")), lambda i: iter([_kv("k", "4.07")]))
    assert tipped[1].value == "3.27"  # 3.27 + 0.93 + 0.80 = 5.00: the tip is in the sum
    broken = _answers("14.20", "0.93", "14.20")
    assert balance(broken, lambda i: iter([_kv("k", "2.50")])) == broken  # no run completes it
    assert balance(_answers("14.20", "Tax", "14.20"), runs)[1].value == "14.20"  # a sum not read as a number
    twice = [*_answers("14.20", "0.93", "14.20"), _kv("grand total", "14.20")]
    assert balance(twice, lambda i: iter([_kv("k", "13.27")])) == twice  # two totals: which one?
    # a net or a total of nothing is no mend: "00" (a cut "$2,145.00") for a net when the tax read the total
    assert balance(_answers("2,145.00", "2,608.20", "2,608.20"), lambda i: iter([_kv("k", "00")]))[1].value == "2,145.00"


def test_parallel_decoding_mends_a_subtotal_that_read_the_total(tok):
    """End to end through `decode_parallel`: the subtotal's slots copy "14.20" (the total) first
    and "13.27" second; tax and total read "0.93" and "14.20"; the subtotal answers "13.27"."""
    model = DocsprintModel(tiny_config(end_bonus=0.0)).eval()
    cfg = model.cfg
    words = ["Subtotal", "13.27", "Tax", "0.93", "Total", "14.20"]
    page = Page(None, 400, 100, [Word(w, (60 * i, 0, 60 * i + 50, 10)) for i, w in enumerate(words)])
    keys = ["subtotal", "tax", "total"]
    enc = encode(tok, cfg, tokenize_page(tok, page), keys)
    pieces = {w: [1 + i for i, wi in enumerate(enc.doc.word_index) if wi == w] for w in (1, 3, 5)}
    width = enc.n_doc
    reads = {0: [(5, -0.1), (1, -0.4)], 1: [(3, -0.1)], 2: [(5, -0.1)]}  # key -> (word, log-prob) best first

    def choose(model, batch):
        m = batch.value_pos.shape[1]
        copy_lp, special = torch.full((1, m, width), -20.0), torch.full((1, m, 2), -20.0)
        idx, best = torch.full((1, m), cfg.end_id), torch.full((1, m), -0.05)
        for k in range(len(keys)):
            qs = [q for q, kk in enumerate(enc.value_key) if kk == k]
            for word, lp in reads[k]:
                for i, p in enumerate(pieces[word]):
                    copy_lp[0, qs[i], p] = lp
            n = len(pieces[reads[k][0][0]])
            special[0, qs[n], 0] = -0.05  # END after the first reading (both numbers are as long)
            for i, p in enumerate(pieces[reads[k][0][0]]):
                idx[0, qs[i]] = cfg.vocab_size + p
        return best, idx, copy_lp, special

    assert len(pieces[1]) == len(pieces[5])
    out = decode_parallel(model, tok, [enc], [page], choose=choose)[0]
    assert [kv.value for kv in out] == ["13.27", "0.93", "14.20"]
