"""Stage 1: spans out of the text stream, back in [MASK] slots; a tiny model learns it."""

import json
import random

from docsprint.cli import main
from docsprint.data.corpus import text_page, tobacco_pages
from docsprint.data.encode import tokenize_page
from docsprint.data.synth import generate
from docsprint.models.config import VALUE
from docsprint.train.pretrain import PretrainConfig, choose_spans, span_example


def _doc(tok):
    page = text_page(["INVOICE 12345 dated 18 April 2001", "Bill to ACME TRADING SDN BHD",
                      "Total amount due RM 1,299.35", "Thank you for your business"])
    return tokenize_page(tok, page)


def test_spans_are_whole_words_apart_and_about_the_mask_fraction(tok):
    doc = _doc(tok)
    pc = PretrainConfig(mask_fraction=0.3)
    for seed in range(20):
        spans = choose_spans(doc, random.Random(seed), pc)
        assert spans
        for a, b in spans:
            assert a == 0 or doc.word_index[a] != doc.word_index[a - 1]  # starts a word
            assert b == len(doc.ids) or doc.word_index[b] != doc.word_index[b - 1]  # ends one
        for (_, b), (c, _) in zip(spans, spans[1:], strict=False):
            assert doc.word_index[c] > doc.word_index[b - 1] + 1  # a word between two spans
        masked = sum(b - a for a, b in spans)
        assert masked <= 0.3 * len(doc.ids) + pc.max_span_tokens


def test_a_span_leaves_the_text_stream_and_its_slots_predict_its_tokens(tok):
    from tests.conftest import tiny_config

    doc = _doc(tok)
    cfg = tiny_config(max_slots=16)
    pc = PretrainConfig(mask_fraction=0.3)
    enc = span_example(tok, cfg, doc, None, random.Random(1), pc)
    spans = choose_spans(doc, random.Random(1), pc)
    removed = [t for a, b in spans for t in doc.ids[a:b]]
    assert enc.n_doc == len(doc.ids) - len(removed) + 2  # [CLS] rest [SEP]
    assert len(enc.value_pos) == len(removed)  # one mask per token of the span, no end token
    assert all(enc.ids[p] == cfg.mask_id and enc.token_type[p] == VALUE for p in enc.value_pos)
    q = 0
    for a, b in spans:
        for i, t in enumerate(doc.ids[a:b]):
            targets = enc.targets[q]
            q += 1
            assert targets[0] == t  # the token itself, always
            for x in targets[1:]:  # or a copy of it elsewhere on the page, where the prior allows one
                assert enc.ids[x - cfg.vocab_size] == t and x - cfg.vocab_size >= i


def test_tobacco_pages_come_from_the_train_split_only(tmp_path):
    root = tmp_path / "tobacco3482"
    (root / "ocr" / "Memo").mkdir(parents=True)
    rows = ["text_path,label,split"]
    for i, split in enumerate(["train", "test", "train", "val"]):
        (root / "ocr" / "Memo" / f"{i}.txt").write_text(f"MEMO number {i}\nTo: all staff\n")
        rows.append(f"ocr/Memo/{i}.txt,Memo,{split}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    pages = tobacco_pages(root)
    assert [p.words[2].text for p in pages] == ["0", "2"]
    assert pages[0].image is None and pages[0].words[3].box[1] > pages[0].words[0].box[1]  # line 2 lower


def test_pretraining_lowers_the_masked_span_loss(tmp_path, monkeypatch):
    generate("mixed", 8, 0, tmp_path / "synth", progress=False)
    config = tmp_path / "pretrain.yaml"
    model = "{hidden_size: 48, num_layers: 2, num_heads: 4, intermediate_size: 96, image_size: 32, max_slots: 16, dropout: 0.0}"
    base = (f"sources: [synth]\ndata_dir: {{synth: {tmp_path / 'synth'}}}\ninit: random\nmodel: {model}\n"
            f"batch_size: 4\nlr: 3.0e-3\nhead_lr: 3.0e-3\nbf16: false\nmask_fraction: 0.3\n")
    config.write_text(base + f"max_steps: 1\nout: {tmp_path / 'before'}\n")
    assert main(["train", "pretrain", "--config", str(config)]) == 0
    config.write_text(base + f"max_steps: 60\nout: {tmp_path / 'after'}\n")
    assert main(["train", "pretrain", "--config", str(config)]) == 0
    monkeypatch.setenv("DOCSPRINT_DATA", str(tmp_path))  # eval finds tmp_path/synth
    losses = []
    for run in ("before", "after"):
        out = tmp_path / f"{run}.json"
        assert main(["eval", "pretrain", "--model", str(tmp_path / run / "final"), "--sources", "synth",
                     "--split", "train", "--json", str(out)]) == 0
        result = json.loads(out.read_text())["sources"]["synth"]
        assert result["pages"] == 8 and result["masked_pieces"] > 50
        losses.append(result["loss"])
    assert losses[1] < 0.8 * losses[0]
