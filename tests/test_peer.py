"""The LayoutLMv3 peer: gold tags from values, piece labels, the MiniLM start, and training
and evaluation from the command line on rendered receipts."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from docsprint.cli import main
from docsprint.data import datasets
from docsprint.io.document import Page, Word
from docsprint.models.checkpoint import minilm_dir
from docsprint.peer import (
    IGNORE,
    PeerConfig,
    PeerExtractor,
    bio_tags,
    encode_page,
    entity_tags,
    init_from_minilm,
    layoutlmv3,
    link_answer,
)
from tests.conftest import make_funsd_folder, make_sroie_folder


def _page(text: str) -> Page:
    return Page(None, 100, 100, [Word(t, (i, 0, i + 1, 1)) for i, t in enumerate(text.split())])


def test_values_are_tagged_on_their_best_matching_words_and_missing_ones_not_at_all():
    page = _page("KEDAI ALI SDN BHD 1 JALAN API TOTAL RM10.50 CASH 20.00")
    tags = bio_tags(page, {"company": "KEDAI ALI SDN. BHD.", "total": "10.50", "date": "01/02/2019",
                           "address": None}, ("company", "date", "address", "total"))
    assert tags == ["B-company", "I-company", "I-company", "I-company", "O", "O", "O", "O", "B-total", "O", "O"]


def test_entities_are_tagged_and_questions_link_to_the_nearest_answer_right_or_below():
    tags = entity_tags(5, [("question", [0]), ("answer", [1, 2]), ("header", [3]), ("answer", [4])],
                       ("question", "answer"))
    assert tags == ["B-question", "B-answer", "I-answer", "O", "B-answer"]
    q = (100, 100, 150, 110)  # a question's box
    right_far, below, left, above = (300, 101, 350, 109), (105, 130, 200, 140), (0, 100, 60, 110), (100, 60, 150, 70)
    assert link_answer(q, [right_far, below]) == 1  # 20 px below beats 150 px to the right
    assert link_answer(q, [(160, 100, 200, 110), below]) == 0  # 10 px to the right beats 20 below
    assert link_answer(q, [left, above]) is None  # nothing to its right or below it
    assert link_answer(q, [(400, 300, 450, 310)]) is None  # below but not under it, nor on its line


def test_each_word_first_piece_carries_its_label(tok):
    page = _page("TOTAL unbelievably 9.00")
    cfg = PeerConfig(keys=("total",))
    ids = {label: i for i, label in enumerate(cfg.labels)}
    x = encode_page(tok, page, ["O", "O", "B-total"], ids, max_tokens=64)
    assert x.input_ids[0] == 101 and x.input_ids[-1] == 102
    firsts = [w for w in x.word_of if w >= 0]
    assert firsts == [0, 1, 2]  # one scored piece per word, though "unbelievably" has several
    assert len(x.input_ids) > 5
    labelled = [int(lab) for lab in x.labels if lab != IGNORE]
    assert labelled == [ids["O"], ids["O"], ids["B-total"]]


def test_the_peer_starts_from_minilm_like_our_encoder():
    model = layoutlmv3(num_labels=3)
    copied = init_from_minilm(model)
    src = load_file(str(minilm_dir() / "model.safetensors"))
    ours = model.layoutlmv3.state_dict()
    assert torch.equal(ours["encoder.layer.5.output.dense.weight"], src["encoder.layer.5.output.dense.weight"])
    assert torch.equal(ours["embeddings.position_embeddings.weight"][1:513], src["embeddings.position_embeddings.weight"])
    assert "layoutlmv3.embeddings.word_embeddings.weight" in copied
    assert not any("patch_embed" in n or "x_position" in n for n in copied)  # new: learnt at head_lr
    assert sum(p.numel() for p in model.parameters()) < 30e6


def test_train_and_evaluate_the_peer_from_the_command_line(tmp_path):
    data = make_sroie_folder(tmp_path / "sroie", n=6, short=True)
    cfg = tmp_path / "peer.yaml"
    cfg.write_text(f"data_dir: {data}\ndev_fraction: 0.0\nmax_steps: 40\nbatch_size: 6\nlr: 3.0e-4\n"
                   f"head_lr: 3.0e-3\nbf16: false\nout: {tmp_path / 'peer'}\n")
    assert main(["train", "peer", "--config", str(cfg)]) == 0
    out = tmp_path / "peer.json"
    assert main(["eval", "peer", "--model", str(tmp_path / "peer" / "final"), "--data-dir", str(data),
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["n_docs"] == 6 and r["train"]["steps"] == 40 and r["seconds_per_doc"] > 0
    assert r["anls"] > 60  # the test receipts are the training receipts: learnt
    assert main(["eval", "peer", "--model", str(data)]) == 2  # not a peer checkpoint


def test_the_funsd_peer_tags_entities_and_links_each_question_to_its_answer(tmp_path):
    data = make_funsd_folder(tmp_path / "funsd", n=6)
    cfg = tmp_path / "peer.yaml"
    cfg.write_text(f"dataset: funsd\nkeys: [question, answer]\nlink: true\ndata_dir: {data}\ndev_fraction: 0.0\n"
                   f"max_steps: 40\nbatch_size: 6\nlr: 3.0e-4\nhead_lr: 3.0e-3\nbf16: false\nout: {tmp_path / 'peer'}\n")
    assert main(["train", "peer", "--config", str(cfg)]) == 0
    out = tmp_path / "peer.json"
    assert main(["eval", "peer", "--model", str(tmp_path / "peer" / "final"), "--dataset", "funsd",
                 "--data-dir", str(data), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["n_docs"] == 6 and list(r["per_key"]) == ["answer"]  # scored as eval kie scores FUNSD
    assert r["anls"] > 60  # the test forms are the training forms: learnt
    assert r["linking_with_gold_tags_anls"] == 100  # every answer is on its question's line
    ex = PeerExtractor(tmp_path / "peer" / "final")
    form = datasets.load("funsd", "test", data)[2]
    pred, _ = ex.extract(form.doc.pages[0], ["Date:", "Not on this form:"])
    assert pred["Not on this form:"] is None  # a question that is not on the page gets no answer
    assert main(["eval", "peer", "--model", str(tmp_path / "peer" / "final"), "--dataset", "sroie",
                 "--data-dir", str(data)]) == 2  # a FUNSD peer does not answer SROIE
    cfg.write_text(f"dataset: sroie\nlink: true\ndata_dir: {make_sroie_folder(tmp_path / 'sroie', n=2)}\n"
                   f"max_steps: 1\nout: {tmp_path / 'bad'}\n")
    assert main(["train", "peer", "--config", str(cfg)]) == 2  # no entity annotation to tag from
