"""The benchmark's parts: int8 quantisation, FLOP counting, the keyed forms, the attention
view, and ``docsprint bench --quick`` end to end on tiny fixtures."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from docsprint.cli import main
from docsprint.data.encode import collate, encode, tokenize_page
from docsprint.data.synth import FORM_LABELS, form_with_keys
from docsprint.eval.bench import _previous, carry_over
from docsprint.eval.bench_report import render, round_by_round
from docsprint.eval.floor import VOCAB_RANGE, count_flops, labelled, matmul_rate, time_breakdown
from docsprint.explain import _attention_probs, draw, explain
from docsprint.io.document import Document, Page
from docsprint.models.quantize import quantize_int8
from docsprint.pipeline import Extractor
from tests.conftest import make_sroie_folder
from tests.test_exits import make_tobacco


def test_int8_replaces_linear_layers_and_keeps_the_outputs_close(tiny_model, tok, receipt_page):
    q = quantize_int8(tiny_model)
    assert isinstance(tiny_model.blocks[0].ff_in, nn.Linear)  # the original is left alone
    assert "quantized" in type(q.blocks[0].ff_in).__module__
    assert "quantized" in type(q.head.ptr_query).__module__
    assert "quantized" in type(q.head.untied).__module__ and tiny_model.head.untied is None  # the vocabulary too
    assert "untied.weight" not in " ".join(tiny_model.state_dict())  # and never in a saved checkpoint
    enc = encode(tok, tiny_model.cfg, tokenize_page(tok, receipt_page), ["total", "date"])
    batch = collate([enc])
    with torch.inference_mode():
        a, b = tiny_model.encode(batch.tokens), q.encode(batch.tokens)
    assert not torch.equal(a, b)  # really a different computation...
    assert (a - b).norm() / a.norm() < 0.05  # ...close to the fp32 one
    mine = copy.deepcopy(tiny_model)
    assert quantize_int8(mine, inplace=True) is mine  # the Extractor's way: no second model in memory
    assert "quantized" in type(mine.blocks[0].ff_in).__module__
    with torch.inference_mode():
        assert torch.equal(mine.encode(batch.tokens), b)


def test_round_by_round_ratios_pair_the_passes_of_one_round():
    rows = [{"setting": "a", "passes": [0.2, 0.1, 0.4]}, {"setting": "b", "passes": [0.1, 0.1, 0.1]}]
    assert round_by_round(rows, "b", "a") == pytest.approx([2.0, 1.0, 4.0])
    assert round_by_round(rows, "c", "a") == []  # a setting the run did not have


def test_int8_extractor_answers_and_rejects_bf16(tiny_checkpoint, receipt_page):
    out = Extractor(tiny_checkpoint, quantize="int8").extract(Document([receipt_page]), ["total"])
    assert set(out.fields) == {"total"}
    with pytest.raises(ValueError, match="int8"):
        Extractor(tiny_checkpoint, precision="bf16", quantize="int8")
    with pytest.raises(ValueError, match="quantize"):
        Extractor(tiny_checkpoint, quantize="int4")


def test_auto_precision_runs_parallel_in_bf16_only_where_the_hardware_has_it(tiny_checkpoint, receipt_page,
                                                                              monkeypatch):
    doc = Document([receipt_page])
    for native in (True, False):
        monkeypatch.setattr("docsprint.pipeline.native_bf16", lambda device, native=native: native)
        ex = Extractor(tiny_checkpoint)  # precision="auto", the default
        dtypes = {mode: next(m.parameters()).dtype for mode, m in
                  (("parallel", ex.parallel_model), ("autoregressive", ex.model))}
        want = torch.bfloat16 if native else torch.float32
        assert dtypes == {"parallel": want, "autoregressive": torch.float32}
        assert ex.precisions == {"parallel": "bf16" if native else "fp32", "autoregressive": "fp32"}
        assert (ex.parallel_model is ex.model) is not native  # a copy only where it is used
        assert ex.parallel_model.cfg is ex.model.cfg
        for mode in ("parallel", "autoregressive"):
            assert set(ex.extract(doc, ["total"], mode=mode).fields) == {"total"}
    # int8 and the training run's own model stay as they are
    assert Extractor(tiny_checkpoint, quantize="int8").precisions == {"parallel": "int8", "autoregressive": "int8"}
    ex = Extractor(tiny_checkpoint, precision="bf16")
    assert ex.parallel_model is ex.model and ex.precisions["autoregressive"] == "bf16"


def test_flops_of_a_linear_layer_and_of_attention_and_the_matmul_rate_arithmetic(monkeypatch):
    layer = nn.Linear(32, 64)
    x = torch.randn(5, 32)
    assert count_flops(lambda: layer(x)) == 2 * 5 * 32 * 64
    q = torch.randn(2, 3, 10, 8)  # (B, heads, T, head size): QK^T and PV, 2 * B*h*T*T*d each
    mask = torch.rand(2, 1, 10, 10) > 0.5
    for m in (None, mask):  # the CPU fused kernel, which torch's own table leaves out
        assert count_flops(lambda m=m: torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=m)) \
            == 4 * 2 * 3 * 10 * 10 * 8
    clock = iter(i * 0.001 for i in range(10_000))  # every reading 1 ms after the last
    monkeypatch.setattr("docsprint.eval.floor.time.perf_counter", lambda: next(clock))
    assert matmul_rate(size=64, seconds=0.0) == pytest.approx(2 * 64**3 / 0.001)


def _grow_then_measure(mb: int) -> float:
    from docsprint.eval.bench import peak_rss_mb

    block = bytearray(mb * 1024 * 1024)  # touched: resident
    del block
    return peak_rss_mb()


def test_a_spawned_child_reports_its_own_peak_memory_not_its_parents():
    from docsprint.eval.bench import _in_child, peak_rss_mb

    ballast = bytearray(600 * 1024 * 1024)  # the parent's peak: at least 600 MB more
    parent = peak_rss_mb()
    del ballast
    child_small, child_big = _in_child(_grow_then_measure, 1), _in_child(_grow_then_measure, 300)
    assert child_small < parent - 400  # ru_maxrss would say the parent's peak here
    assert child_big > child_small + 250  # and it does see its own growth


def test_a_labelled_method_is_its_own_part_while_profiled_and_untouched_after(tiny_model):
    head = tiny_model.head
    h = torch.randn(1, 3, tiny_model.cfg.hidden_size)
    with torch.inference_mode(), labelled(head, "project_vocab", VOCAB_RANGE):
        parts = {r["part"]: r for r in time_breakdown(lambda: head.vocab_logits(h), 1)}
    V, H = head.word.weight.shape
    assert parts["vocabulary projection"]["flops_per_doc"] == 2 * 3 * H * V  # the projection alone...
    assert parts["other linear layers"]["flops_per_doc"] == 2 * 3 * H * H  # ...not the transform before it
    assert "project_vocab" not in vars(head)  # the model's own method again


def test_forms_with_n_keys_show_every_value():
    for n in (1, 7, len(FORM_LABELS) + 3):
        img, words, fields = form_with_keys(n, seed=1)
        assert len(fields) == n and all(fields.values())
        text = " ".join(w.text for w in words)
        assert all(v in text for v in fields.values())
        assert all(0 <= w.box[0] < w.box[2] <= img.width and 0 <= w.box[1] < w.box[3] <= img.height for w in words)
    assert "Name 2" in form_with_keys(len(FORM_LABELS) + 1)[2]
    a, b = form_with_keys(5, seed=3), form_with_keys(5, seed=3)
    assert a[1:] == b[1:]  # same words, boxes and fields: a function of (n, seed)
    with pytest.raises(ValueError):
        form_with_keys(0)


@pytest.mark.parametrize("padded", [False, True])
def test_recomputed_attention_weights_are_those_of_the_fused_kernel(tiny_model, tok, receipt_page, padded):
    enc = encode(tok, tiny_model.cfg, tokenize_page(tok, receipt_page), ["total"])
    few = Page(None, receipt_page.width, receipt_page.height, receipt_page.words[:3])
    short = encode(tok, tiny_model.cfg, tokenize_page(tok, few), ["total"]) if padded else None
    batch = collate([enc, short] if short else [enc])  # one window attends unmasked, a padded batch masked
    attn = tiny_model.blocks[0].attn
    seen = {}
    attn.register_forward_hook(lambda m, a, o: seen.update(x=a[0], mask=a[1], out=o))
    with torch.inference_mode():
        tiny_model.encode(batch.tokens)
        x, mask = seen["x"], seen["mask"]
        assert (mask is not None) == padded
        probs = _attention_probs(attn, x, mask)  # (1, nh, T, T)
        B, T, C = x.shape
        v = attn.value(x).view(B, T, attn.n_head, -1).transpose(1, 2)
        y = attn.out((probs @ v).transpose(1, 2).reshape(B, T, C))
    assert torch.allclose(probs.sum(-1), torch.ones(()), atol=1e-5)
    assert torch.allclose(y, seen["out"], atol=1e-5)


def test_explain_accounts_for_all_attention_and_draws_a_png(tiny_checkpoint, receipt_page, tmp_path):
    view = explain(Extractor(tiny_checkpoint), Document([receipt_page]), "total")
    assert sum(view.shares.values()) == pytest.approx(1.0, abs=1e-4)
    assert sum(view.word_weights) == pytest.approx(view.shares["words"], abs=1e-5)
    assert len(view.word_weights) == len(view.pointer_weights) == len(receipt_page.words)
    assert len(view.patch_weights) == 4 and min(view.word_weights) >= 0
    assert 0 < sum(view.pointer_weights) <= 1 + 1e-5
    path = draw(view, tmp_path / "total.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and not list(tmp_path.glob("*.tmp*"))
    text_only = Page(None, receipt_page.width, receipt_page.height, receipt_page.words)
    assert draw(explain(Extractor(tiny_checkpoint), Document([text_only]), "date"), tmp_path / "d.png").exists()
    with pytest.raises(ValueError, match="png"):
        draw(view, tmp_path / "total.jpg")


def test_bench_quick_writes_the_report_json_and_figures(tmp_path, tiny_checkpoint):
    data = tmp_path / "data"
    make_sroie_folder(data / "sroie", n=2)
    make_tobacco(data / "tobacco3482")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: tobacco3482\ndata_dir: {data / 'tobacco3482'}\ninit: random\nmodel: {{hidden_size: 48, "
        f"num_layers: 2, num_heads: 4, intermediate_size: 64, image_size: 32}}\nexits: concat-all\n"
        f"max_tokens: 32\nmax_steps: 10\nbatch_size: 8\nbf16: false\nout: {tmp_path / 'clf'}\n")
    assert main(["train", "classify", "--config", str(cfg)]) == 0
    peer = tmp_path / "peer.yaml"
    peer.write_text(f"data_dir: {data / 'sroie'}\ndev_fraction: 0.0\nmax_steps: 2\nbatch_size: 2\nbf16: false\n"
                    f"out: {tmp_path / 'peer'}\n")
    assert main(["train", "peer", "--config", str(peer)]) == 0
    out = tmp_path / "bench"
    args = ["bench", "--quick", "--out", str(out), "--model", str(tiny_checkpoint), "--datasets", "sroie",
            "--data-dir", str(data), "--classifier", str(tmp_path / "clf" / "final"), "--peer", str(tmp_path / "peer" / "final")]
    assert main(args) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["command"] == "docsprint " + " ".join(args)
    assert sorted(p.name for p in out.iterdir()) == ["BENCHMARKS.md", "figures", "results.json"]  # no cache left
    assert r["machine"]["cores"] >= 1 and r["matmul_gflops"]["fp32"] > 0
    runs = {(x["dataset"], x["mode"], x["precision"]) for x in r["extraction"]}
    native = r["bf16_native"]  # bf16 rows only where the CPU multiplies bf16 natively
    assert runs == {("sroie", m, "fp32") for m in ("parallel", "autoregressive")} | {
        ("sroie", "parallel", p) for p in ("int8", "bf16") if p == "int8" or native}  # --quick: parallel only
    for x in r["extraction"]:
        assert x["n_docs"] == 2 and x["peak_rss_mb"] >= x["loaded_rss_mb"] > 0 and x["flops_per_doc"] > 0
        assert x["times_floor"] == pytest.approx(x["seconds_per_doc"] / x["floor_seconds_per_doc"])
    assert [k["keys"] for k in r["keys"]] == [1, 4, 8]
    assert r["keys"][2]["slot_tokens_per_doc"] > r["keys"][0]["slot_tokens_per_doc"]
    assert {f["setting"] for f in r["floor"]} >= {"batch 8, sorted by length", "batch 1, int8 dynamic quantisation"}
    assert all(f["times_floor"] == pytest.approx(f["seconds_per_doc"] / f["flops_per_doc"] * r["matmul_gflops"][f["roof"]] * 1e9)
               for f in r["floor"])  # every floor against the run's best roof
    assert all(len(f["passes"]) == 3 and f["seconds_per_doc"] == min(f["passes"]) for f in r["floor"])  # 3 rounds
    assert all(0 < f["seconds_per_doc_best_each"] <= f["seconds_per_doc"] * (1 + 1e-9)  # best batches <= best pass
               and f["times_floor_best_each"] <= f["times_floor"] * (1 + 1e-9) for f in r["floor"])
    assert set(r["section_seconds"]) == {"extraction", "keys", "peer", "floor", "breakdown", "early_exit", "pictures",
                                         "training"}
    kie_rows = r["training"]["objectives"][0]["rows"]
    assert [x["setting"] for x in kie_rows] == ["plain loop: shuffled order, full logits, per-tensor AdamW",
                                                "+ fused AdamW (the default loop)"] + ["+ bf16 autocast"] * native
    for x in kie_rows:
        assert x["examples_per_second"] > 0 and x["gflop_per_step"] > 0 and x["achieved_gflops"] > 0
        assert set(x["split_seconds_per_step"]) == {"batch", "forward", "backward", "optimizer"}
    parts = {b["part"]: b for b in r["breakdown"]["fp32"]}  # the floor's arithmetic, part by part
    assert sum(b["flops_per_doc"] for b in r["breakdown"]["fp32"]) == pytest.approx(r["floor"][0]["flops_per_doc"])
    assert all(parts[p]["flops_per_doc"] > 0 and parts[p]["ms_per_doc"] > 0
               for p in ("vocabulary projection", "other linear layers", "attention", "patch embedding"))
    int8 = {b["part"]: b for b in r["breakdown"]["int8"]}  # its products found too (packed weights, no shapes)
    assert int8["vocabulary projection"]["ms_per_doc"] > 0 and int8["other linear layers"]["ms_per_doc"] > 0
    assert r["early_exit"]["n"] > 0 and r["pictures"][0]["dataset"] == "sroie"
    assert r["peer"][0]["n_docs"] == 2 and r["peer"][0]["train"]["steps"] == 2 and r["peer"][0]["dataset"] == "sroie"
    report = (out / "BENCHMARKS.md").read_text()
    assert ("GFLOP/s bf16**" in report) == native and ("does not multiply bf16 natively" in report) != native
    for section in ("## 1. Extraction", "## 2. Speedup against the number of keys", "## 3. A peer",
                    "## 4. Against the physical floor", "## 5. Early exit", "## 6. Training speed",
                    "## 7. Where the mask slots look"):
        assert section in report
    assert "int8 against fp32 (batch 1, `inference_mode`), round by round: " in report
    assert "int8 makes the linear layers" in report
    for fig in ("speedup-vs-keys.png", "early-exit-pareto.png", "explain-sroie.png"):
        assert (out / "figures" / fig).read_bytes()[:4] == b"\x89PNG"
        assert f"figures/{fig}" in report
    # a later run without --peer and --classifier keeps their sections, marked with the run that measured them
    again = {**copy.deepcopy(r), "peer": [], "early_exit": None, "command": "docsprint bench --again"}
    carry_over(again, r)
    assert again["peer"] == r["peer"] and again["early_exit"] == r["early_exit"]
    assert again["kept"] == {s: {"date": r["machine"]["date"], "command": r["command"]} for s in ("peer", "early_exit")}
    text = render(again)
    assert f"*Kept from the run of {r['machine']['date']}* (`{r['command']}`): this run was not given `--peer`" in text
    assert "this run was not given `--classifier`" in text and "Not run" not in text
    third = {**copy.deepcopy(again), "peer": [], "early_exit": None, "command": "docsprint bench --third"}
    carry_over(third, again)  # kept twice: still the run that measured them
    assert third["kept"] == again["kept"] and "--again" not in render(third)
    fresh = {**copy.deepcopy(r), "peer": [], "early_exit": None}
    carry_over(fresh, None)  # nothing to keep: the sections say they were not run
    assert "kept" not in fresh and "Not run: no peer checkpoint" in render(fresh) and "Kept from" not in render(fresh)
    for text in ("{not json", "[1, 2]", '{"peer": [1]}'):  # no results of ours to keep from
        (tmp_path / "old.json").write_text(text)
        assert _previous(tmp_path / "old.json") is None
    assert _previous(out / "results.json")["command"] == r["command"] and _previous(tmp_path / "none.json") is None
    assert main(["bench", "--quick", "--out", str(out), "--datasets", "cord"]) == 2
    assert main(["bench", "--quick", "--out", str(out), "--peer", str(tmp_path)]) == 2  # not a peer: before any work
