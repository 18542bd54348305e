import copy
import json

import pytest
import torch
from safetensors.torch import load_file

from docsprint.data.encode import ITEM_SEP_ID, collate, encode, page_pixels, tokenize_page
from docsprint.decode import autoregressive
from docsprint.decode.autoregressive import decode_autoregressive
from docsprint.decode.common import head_inputs, value_choices, value_logits
from docsprint.decode.parallel import decode_parallel
from docsprint.errors import CheckpointError
from docsprint.io.document import Document, Page, Word
from docsprint.models.checkpoint import from_pretrained, init_from_minilm, minilm_dir
from docsprint.models.config import ModelConfig
from docsprint.models.model import NEG, DocsprintModel, attention_mask
from docsprint.models.quantize import quantize_int8
from docsprint.pipeline import Extractor
from tests.conftest import tiny_config

KEYS = ["company", "date", "total"]


class ForwardCounter:
    """Counts calls of the first encoder block: one per model forward pass."""

    def __init__(self, model):
        self.n = 0
        model.blocks[0].register_forward_hook(self._hook)

    def _hook(self, *_):
        self.n += 1


def _inputs(tok, model, page, mode):
    doc = tokenize_page(tok, page)
    return encode(tok, model.cfg, doc, KEYS, mode, pixels=page_pixels(page.image, model.cfg))


def test_attention_mask_ranks():
    rank = torch.tensor([[0, 0, 1, 2]])
    valid = torch.tensor([[True, True, True, True]])
    m = attention_mask(rank, rank, valid)[0, 0]
    expected = torch.tensor([
        [1, 1, 0, 0],  # prefix sees the prefix only
        [1, 1, 0, 0],
        [1, 1, 1, 0],  # first generated token: prefix + itself
        [1, 1, 1, 1],
    ], dtype=torch.bool)
    assert torch.equal(m, expected)


def test_one_unpadded_window_skips_the_mask_and_gets_the_logits_of_a_padded_batch(tok, tiny_model, receipt_page):
    rank = torch.zeros(1, 4, dtype=torch.long)
    assert attention_mask(rank, rank, torch.ones(1, 4, dtype=torch.bool)) is None  # the fused fast path
    assert attention_mask(rank, rank, torch.tensor([[True, True, True, False]])) is not None
    short_page = Page(receipt_page.image, receipt_page.width, receipt_page.height, receipt_page.words[:4])
    short, long = _inputs(tok, tiny_model, short_page, "parallel"), _inputs(tok, tiny_model, receipt_page, "parallel")
    assert short.n_doc < long.n_doc
    with torch.inference_mode():
        alone = value_logits(tiny_model, collate([short]))[0]  # (Q, V + Ld_short), no mask
        padded = value_logits(tiny_model, collate([short, long]))[0]  # beside a longer window: masked
    Q, width = len(short.value_pos), alone.shape[1]
    assert torch.allclose(alone[:Q], padded[:Q, :width], atol=1e-4)
    assert (padded[:Q, width:] <= NEG).all()  # the padding after the short document is never copied


def test_best_choice_is_the_argmax_of_the_joint_log_softmax(tok, tiny_model, receipt_page):
    head = tiny_model.head
    torch.manual_seed(0)
    B, Q, Ld, H = 2, 6, 9, tiny_model.cfg.hidden_size
    query = torch.randn(B, Q, H)
    ptr = torch.randn(B, Q, Ld)
    ptr[0, [0, 1, 2], [4, 5, 6]] = 60.0  # these tokens copy document tokens 4-6; the others a word piece
    ptr[1] = NEG
    slot = torch.tensor([[0, 1, 2, 0, 1, 2]] * B)
    start_ptr = ptr[:, [0, 0, 0, 3, 3, 3]]
    with torch.inference_mode():
        expected_lp, expected_idx = torch.log_softmax(head(query, ptr, start_ptr, slot), -1).max(-1)
        lp, idx = head.best(query, ptr, start_ptr, slot)
    V = tiny_model.cfg.vocab_size
    assert idx[0, :3].tolist() == [V + 4, V + 5, V + 6] and (idx[1] < V).all()  # both halves get chosen
    assert torch.equal(idx, expected_idx)
    assert torch.allclose(lp, expected_lp, atol=1e-5)
    enc = _inputs(tok, tiny_model, receipt_page, "parallel")  # and through a whole forward pass
    with torch.inference_mode():
        lp, idx = value_choices(tiny_model, collate([enc]))
        expected_lp, expected_idx = torch.log_softmax(value_logits(tiny_model, collate([enc])), -1).max(-1)
    assert torch.equal(idx, expected_idx) and torch.allclose(lp, expected_lp, atol=1e-5)


def test_many_value_tokens_reduce_the_vocabulary_chunk_by_chunk_to_the_same_answers(tiny_model, monkeypatch):
    """A parallel pass (`ValueHead.scores`) reduces the vocabulary chunk by chunk
    (`ValueHead.vocab_summary`): its max, argmax, normaliser and END logit equal those of
    the whole logits, and the fused path's."""
    import docsprint.models.model as model_module

    head = tiny_model.head
    torch.manual_seed(1)
    B, Q, Ld, H = 2, 40, 11, tiny_model.cfg.hidden_size
    V = tiny_model.cfg.vocab_size
    monkeypatch.setattr(model_module, "VOCAB_CHUNK", V // 5 + 3)  # several chunks, the last one short
    query = torch.randn(B, Q, H) * 3
    ptr = torch.randn(B, Q, Ld) * 3
    slot = torch.arange(Q).remainder(4)[None].expand(B, -1)
    start_ptr = ptr[:, [q - q % 4 for q in range(Q)]]
    end_id = tiny_model.cfg.end_id
    with torch.inference_mode():
        whole = torch.log_softmax(head(query, ptr, start_ptr, slot), -1)  # (B, Q, V + Ld)
        lp, idx, copy_lp, special_lp = head.scores(query, ptr, start_ptr, slot, ids=(end_id, 2))
        vocab = head.vocab_logits(query)
        best, arg, lse, end = head.vocab_summary(query, (end_id, 2), chunked=True)
        fused = head.vocab_summary(query, (end_id, 2))
    expected_lp, expected_idx = whole.max(-1)
    assert (idx < V).any() and (idx >= V).any()  # both halves are chosen somewhere
    assert torch.equal(idx, expected_idx) and torch.allclose(lp, expected_lp, atol=1e-5)
    assert torch.allclose(copy_lp, whole[..., V:], atol=1e-4) and torch.allclose(special_lp, whole[..., [end_id, 2]], atol=1e-5)
    assert torch.equal(arg, vocab.argmax(-1)) and torch.allclose(best, vocab.amax(-1))
    assert torch.allclose(lse, torch.logsumexp(vocab, -1), atol=1e-5) and torch.allclose(end, vocab[..., [end_id, 2]], atol=1e-5)
    assert all(torch.allclose(a.float(), b.float(), atol=1e-5) for a, b in zip(fused, (best, arg, lse, end), strict=True))


def test_parallel_decoding_is_exactly_one_forward_pass(tok, tiny_model, receipt_page):
    counter = ForwardCounter(tiny_model)
    enc = _inputs(tok, tiny_model, receipt_page, "parallel")
    answers = decode_parallel(tiny_model, tok, [enc], [receipt_page])[0]
    assert counter.n == 1
    assert [a.key for a in answers] == KEYS
    assert all(0.0 <= a.confidence <= 1.0 for a in answers)


def test_autoregressive_runs_one_prefix_pass_then_one_pass_per_token(tok, tiny_model, receipt_page):
    counter = ForwardCounter(tiny_model)
    enc = _inputs(tok, tiny_model, receipt_page, "autoregressive")
    decode_autoregressive(tiny_model, tok, enc, receipt_page)
    budgets = sum(tiny_model.cfg.slots_for(k) for k in KEYS)
    assert 1 + len(KEYS) <= counter.n <= 1 + budgets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kv_cached_generation_equals_uncached(tok, receipt_page, seed):
    torch.manual_seed(seed)
    model = DocsprintModel(tiny_config()).eval()
    # Random weights end values at random lengths; make END unlikely so values run long.
    with torch.no_grad():
        model.head.bias[model.cfg.end_id] = -3.0
    enc = _inputs(tok, model, receipt_page, "autoregressive")
    cached = decode_autoregressive(model, tok, enc, receipt_page, use_cache=True)
    uncached = decode_autoregressive(model, tok, enc, receipt_page, use_cache=False)
    assert [a.value for a in cached] == [a.value for a in uncached]
    assert [a.confidence for a in cached] == pytest.approx([a.confidence for a in uncached], abs=1e-4)
    assert any(a.value for a in cached)


@pytest.mark.parametrize("compact", [False, True])
def test_checkpoint_round_trip(tmp_path, tok, tiny_model, receipt_page, compact):
    from docsprint.models.checkpoint import TOKENIZER_FILE, save_pretrained

    save_pretrained(tiny_model, tmp_path / "ckpt", minilm_dir() / TOKENIZER_FILE, compact=compact)
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert files == ["config.json", "model.safetensors", "tokenizer.json"]
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["hidden_size"] == 48
    loaded, _ = from_pretrained(tmp_path / "ckpt")
    enc = _inputs(tok, tiny_model, receipt_page, "parallel")
    a = decode_parallel(tiny_model, tok, [enc], [receipt_page])[0]
    b = decode_parallel(loaded, tok, [enc], [receipt_page])[0]
    if not compact:
        assert [x.value for x in a] == [x.value for x in b]
        assert [x.confidence for x in a] == pytest.approx([x.confidence for x in b], abs=1e-6)
    else:
        state = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
        assert state["embed.word.weight.int8"].dtype == torch.int8
        w0, w1 = tiny_model.embed.word.weight, loaded.embed.word.weight
        assert (w0 - w1).abs().max() <= w0.abs().max() / 127  # within one quantisation step


def test_from_pretrained_rejects_a_folder_that_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not a docsprint checkpoint"):
        from_pretrained(tmp_path)


def test_minilm_initialisation_loads_every_encoder_weight():
    model = DocsprintModel(ModelConfig())
    loaded = init_from_minilm(model)
    per_layer = 16  # q, k, v, out, ff_in, ff_out (w + b) and two norms (w + b)
    assert len([n for n in loaded if n.startswith("blocks.")]) == 6 * per_layer
    assert "embed.word.weight" in loaded and "embed.position.weight" in loaded
    # document tokens get nothing from the key-group and value-slot tables
    assert not model.embed.group.weight[0].any() and not model.embed.slot.weight[0].any()


def test_key_mentions_start_as_a_no_op_then_learn_and_survive_a_checkpoint(tmp_path, tok, tiny_model):
    from docsprint.models.checkpoint import TOKENIZER_FILE, save_pretrained

    page = Page(None, 400, 20, [Word(w, (40 * i, 0, 40 * i + 35, 10))
                                for i, w in enumerate("Company ACME MART Date 01/02/2023 Total 9.00".split())])
    doc = tokenize_page(tok, page)
    base = decode_parallel(tiny_model, tok, [encode(tok, tiny_model.cfg, doc, KEYS)], [page])[0]
    tiny_model.enable_key_mentions()
    assert tiny_model.cfg.key_mentions and tiny_model.embed.mentions is not None
    enc = encode(tok, tiny_model.cfg, doc, KEYS)
    assert sorted(set(enc.mention)) == [0, 1, 2, 3]  # each key's name is printed once
    same = decode_parallel(tiny_model, tok, [enc], [page])[0]
    assert [a.value for a in same] == [a.value for a in base]
    assert [a.confidence for a in same] == pytest.approx([a.confidence for a in base], abs=1e-6)
    # gradients reach both new vectors
    tiny_model.train()
    batch = collate([enc])
    tiny_model.encode(batch.tokens, None).pow(2).mean().backward()
    m = tiny_model.embed.mentions
    assert m.gate.grad.abs().sum() > 0 and m.mark.grad.abs().sum() > 0
    tiny_model.eval()
    with torch.no_grad():
        m.mark.normal_()
        m.gate.zero_()
        zero = tiny_model.encode(batch.tokens, None)
        m.gate.normal_(generator=torch.Generator().manual_seed(0))
        moved = tiny_model.encode(batch.tokens, None)
    assert (moved - zero).abs().max() > 1e-2  # the marks now change what the model sees
    save_pretrained(tiny_model, tmp_path / "ckpt", minilm_dir() / TOKENIZER_FILE)
    loaded, _ = from_pretrained(tmp_path / "ckpt")
    assert loaded.cfg.key_mentions
    torch.testing.assert_close(loaded.embed.mentions.gate, m.gate)
    with torch.no_grad():
        again = loaded.eval().encode(collate([encode(tok, loaded.cfg, doc, KEYS)]).tokens, None)
    torch.testing.assert_close(again, moved)


def test_key_geometry_starts_as_a_no_op_then_points_each_key_past_its_printed_name(tmp_path, tok, tiny_model):
    from docsprint.models.checkpoint import TOKENIZER_FILE, save_pretrained

    words = "Company ACME MART Date 01/02/2023 Total 9.00".split()
    page = Page(None, 400, 20, [Word(w, (40 * i, 0, 40 * i + 35, 10)) for i, w in enumerate(words)])
    doc = tokenize_page(tok, page)
    keys = [*KEYS, "address"]  # the page does not print "address"
    base = decode_parallel(tiny_model, tok, [encode(tok, tiny_model.cfg, doc, keys)], [page])[0]
    tiny_model.enable_key_geometry()
    assert tiny_model.cfg.key_geometry and tiny_model.cfg.key_mentions
    enc = encode(tok, tiny_model.cfg, doc, keys)
    same = decode_parallel(tiny_model, tok, [enc], [page])[0]
    assert [a.value for a in same] == [a.value for a in base]  # zero output layer: unchanged
    assert [a.confidence for a in same] == pytest.approx([a.confidence for a in base], abs=1e-6)

    geo = tiny_model.head.geometry
    with torch.no_grad():  # score = 20 * gelu(1) for the piece right after a mention, else 0
        geo.hidden.weight.zero_()
        geo.hidden.bias.zero_()
        geo.hidden.weight[0, 7] = 1.0  # feature 7: order == 1
        geo.out.weight[0, 0] = 20.0
    batch = collate([enc])
    bias = geo(batch.tokens.bbox[:, : enc.n_doc], batch.tokens.mention[:, : enc.n_doc], tiny_model.cfg.max_keys + 1)
    assert bias.shape == (1, tiny_model.cfg.max_keys + 1, enc.n_doc)
    assert not bias[0, 0].any() and not bias[0, 4].any()  # no key, and the unprinted key
    assert [int(bias[0, k].argmax()) for k in (1, 2, 3)] == [enc.mention.index(k) + 1 for k in (1, 2, 3)]
    # a key's factor (`ModelConfig.label_geometry` on a printed label) scales its first value
    # token's bias, and only that key's
    assert batch.key_scale is None
    group = torch.gather(batch.tokens.group, 1, batch.value_pos)
    first = batch.value_valid & (batch.value_slot == 0)
    plain = tiny_model.head.start_bias(batch.tokens, enc.n_doc, group, first)
    scaled_enc = copy.copy(enc)
    scaled_enc.key_scale = [1.0, 3.0, 1.0, 1.0]
    scaled = tiny_model.head.start_bias(batch.tokens, enc.n_doc, group, first, collate([scaled_enc]).key_scale)
    date = group[0] == 2
    torch.testing.assert_close(scaled[0, date], 3 * plain[0, date])
    torch.testing.assert_close(scaled[0, ~date], plain[0, ~date])
    assert plain[0, date].abs().sum() > 0
    # each key's first value token copies the word right after its printed name (later tokens
    # are this random model's), in parallel and autoregressive decoding alike
    expected = {"company": "ACME", "date": "01/02/2023", "total": "9.00"}
    ar_enc = encode(tok, tiny_model.cfg, doc, keys, "autoregressive")
    for answers in (decode_parallel(tiny_model, tok, [enc], [page])[0],
                    decode_autoregressive(tiny_model, tok, ar_enc, page)):
        got = {a.key: a for a in answers}
        for key, word in expected.items():
            assert got[key].boxes[0] == page.words[words.index(word)].box, (key, got[key].value)
    # gradients reach the MLP through the start pointer
    tiny_model.train()
    _, ptr, start_ptr, _ = head_inputs(tiny_model, batch)
    start_ptr.logsumexp(-1).sum().backward()
    assert geo.out.weight.grad.abs().sum() > 0
    tiny_model.eval()
    save_pretrained(tiny_model, tmp_path / "ckpt", minilm_dir() / TOKENIZER_FILE)
    loaded, _ = from_pretrained(tmp_path / "ckpt")
    assert loaded.cfg.key_geometry
    torch.testing.assert_close(loaded.head.geometry.out.weight, geo.out.weight)
    again = {a.key: a for a in decode_parallel(loaded, tok, [encode(tok, loaded.cfg, doc, keys)], [page])[0]}
    assert all(again[k].boxes[0] == page.words[words.index(w)].box for k, w in expected.items())
    for precision in ("int8", "bf16"):  # the reduced-precision models the CLI offers
        m = quantize_int8(loaded) if precision == "int8" else copy.deepcopy(loaded).to(torch.bfloat16)
        out = {a.key: a for a in decode_parallel(m, tok, [encode(tok, m.cfg, doc, keys)], [page])[0]}
        assert all(out[k].boxes[0] == page.words[words.index(w)].box for k, w in expected.items()), precision


def test_attention_runs_in_fp32_under_autocast_and_in_bf16_with_bf16_weights(tiny_checkpoint, receipt_page, monkeypatch):
    """Training's autocast keeps attention in fp32 (the residual stream's precision); bf16
    weights (parallel decoding on AMX) run it in bf16, AMX's faster kernel."""
    import docsprint.models.model as model_module

    seen: list[torch.dtype] = []
    sdpa = model_module.F.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        seen.append(q.dtype)
        return sdpa(q, k, v, **kw)

    monkeypatch.setattr(model_module.F, "scaled_dot_product_attention", spy)
    ex = Extractor(tiny_checkpoint, precision="fp32")
    batch = collate([ex.prepare(Document([receipt_page]), ["total"])[1][0][0]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ex.model.encode(batch.tokens)
    assert seen and set(seen) == {torch.float32}
    seen.clear()
    with torch.inference_mode():
        copy.deepcopy(ex.model).to(torch.bfloat16).encode(batch.tokens)
    assert seen and set(seen) == {torch.bfloat16}


def test_an_autoregressive_list_value_is_cleaned_from_the_steps_it_took(tok, receipt_page, monkeypatch):
    """A list key's items are cleaned as in parallel decoding (`clean_items`), fed each step's
    own copy and separator log-probabilities, row i for step i."""
    torch.manual_seed(0)
    model = DocsprintModel(tiny_config(slot_budgets={"item": 12})).eval()
    with torch.no_grad():  # copy or separate, never write a word or end early
        model.head.bias[:] = -20.0
        model.head.bias[ITEM_SEP_ID] = -1.0
    V = model.cfg.vocab_size
    seen, clean_items = [], autoregressive.clean_items

    def spy(chosen, logprobs, copy_lp, sep_lp, *rest):
        seen.append((list(chosen), list(logprobs), copy_lp, sep_lp))
        return clean_items(chosen, logprobs, copy_lp, sep_lp, *rest)

    monkeypatch.setattr(autoregressive, "clean_items", spy)
    enc = encode(tok, model.cfg, tokenize_page(tok, receipt_page), ["item", "total"], "autoregressive")
    answers = decode_autoregressive(model, tok, enc, receipt_page, frozenset({"item"}))
    assert len(seen) == 1 and [a.key for a in answers] == ["item", "total"]  # only the list key
    chosen, logprobs, copy_lp, sep_lp = seen[0]
    assert copy_lp.shape == (len(chosen), enc.n_doc) and sep_lp.shape == (len(chosen),)
    assert any(c >= V for c in chosen) and ITEM_SEP_ID in chosen
    for i, c in enumerate(chosen):
        if c >= V:  # the step copied: its row's best piece, at the log-probability it took
            assert int(copy_lp[i].argmax()) == c - V and float(copy_lp[i, c - V]) == pytest.approx(logprobs[i], abs=1e-5)
        elif c == ITEM_SEP_ID:
            assert float(sep_lp[i]) == pytest.approx(logprobs[i], abs=1e-5)
