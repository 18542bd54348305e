"""The LayoutLMv3 peer: gold tags from values, piece labels, the MiniLM start, and training
and evaluation from the command line on rendered receipts."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from docsprint.cli import main
from docsprint.io.document import Page, Word
from docsprint.models.checkpoint import minilm_dir
from docsprint.peer import IGNORE, PeerConfig, bio_tags, encode_page, init_from_minilm, layoutlmv3
from tests.conftest import make_sroie_folder


def _page(text: str) -> Page:
    return Page(None, 100, 100, [Word(t, (i, 0, i + 1, 1)) for i, t in enumerate(text.split())])


def test_values_are_tagged_on_their_best_matching_words_and_missing_ones_not_at_all():
    page = _page("KEDAI ALI SDN BHD 1 JALAN API TOTAL RM10.50 CASH 20.00")
    tags = bio_tags(page, {"company": "KEDAI ALI SDN. BHD.", "total": "10.50", "date": "01/02/2019",
                           "address": None}, ("company", "date", "address", "total"))
    assert tags == ["B-company", "I-company", "I-company", "I-company", "O", "O", "O", "O", "B-total", "O", "O"]


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
