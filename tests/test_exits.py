"""Early-exit classification: the model, policies, calibration, training strategies, CLI."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

from docsprint.cli import main
from docsprint.data.classify import collate_pages, encode_page, load_pages
from docsprint.data.corpus import text_page
from docsprint.data.render import render_lines
from docsprint.exits.anytime import classify_batch
from docsprint.exits.calibrate import ece, fit_temperature
from docsprint.exits.policies import (
    Budget,
    GlobalThreshold,
    Patience,
    PerExit,
    Policy,
    heuristic_thresholds,
    resolve_policy,
    simulate,
)
from docsprint.exits.sweep import choose_policies, collect, pareto, per_exit_thresholds, sweep
from docsprint.models.checkpoint import load_classifier, save_pretrained
from docsprint.models.classifier import ClassifierConfig, ExitClassifier, preset_exits
from docsprint.train.classify import ClassifyTrainConfig, ExitLoss, entropy_scales, exit_weights
from tests.conftest import tiny_config

LABELS = ["letter", "memo", "invoice"]
WORDS = {"letter": "dear sir yours sincerely regards", "memo": "memo to from subject date cc",
         "invoice": "invoice total amount due qty price"}


def tiny_classifier(kind: str = "ramp", exits=("concat", "1", "2"), seed: int = 0) -> ExitClassifier:
    torch.manual_seed(seed)
    cfg = ClassifierConfig(labels=LABELS, exits=list(exits), exit_kind=kind, max_tokens=40,
                           encoder=tiny_config(num_layers=3))
    model = ExitClassifier(cfg).eval()
    model.temperature.copy_(torch.linspace(0.5, 1.5, model.num_decisions))
    return model


def pages(n: int, seed: int = 0, images: bool = False) -> list[tuple[object, int]]:
    """Text pages of the three kinds, of varied length; with ``images``, every other one rendered."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        y = i % 3
        words = WORDS[LABELS[y]].split()
        lines = [" ".join(rng.choices(words, k=rng.randint(2, 6))) for _ in range(rng.randint(1, 5))]
        page = render_lines(lines, width=300, size=12) if images and i % 2 else text_page(lines)
        out.append((page, y))
    return out


def batch_of(tok, model, ps):
    return collate_pages([encode_page(tok, model.cfg, p) for p, _ in ps], [y for _, y in ps])


def test_presets_follow_the_paper_at_12_layers_and_scale_down():
    assert preset_exits("concat-quarter", 12) == ["concat", "1", "4", "8", "10"]
    assert preset_exits("concat-alternate", 12) == ["concat", "2", "5", "9", "11"]
    assert preset_exits("independent-all", 6) == ["text_avg", "vision_avg", "1", "2", "3", "4", "5"]
    assert preset_exits("concat-all", 6)[-1] == "5"  # after the last layer is the final head
    with pytest.raises(ValueError):
        ClassifierConfig(labels=LABELS, exits=["6"], encoder=tiny_config(num_layers=6))
    assert ClassifierConfig(labels=LABELS, exits=["2", "concat", "1"], encoder=tiny_config(num_layers=3)).exits == ["concat", "1", "2"]


@pytest.mark.parametrize("kind", ["ramp", "gate"])
def test_batched_early_exit_equals_one_by_one_and_the_offline_simulation(tok, kind):
    model = tiny_classifier(kind)
    ps = pages(12, images=True)
    dec = collect(model, [batch_of(tok, model, [p]) for p in ps])
    conf, pred = dec.conf_pred(model.temperature)
    # Thresholds in the middle of each exit's confidences: some rows leave at each point.
    medians = conf[:-1].median(1).values.tolist()
    t = medians[0]
    for policy in [GlobalThreshold(threshold=t), PerExit(thresholds=medians), Patience(patience=2),
                   Budget(max_depth=1), Policy()]:
        batched = classify_batch(model, batch_of(tok, model, ps), policy)
        alone = [classify_batch(model, batch_of(tok, model, [p]), policy)[0] for p in ps]
        sim = simulate(policy, conf, pred, dec.depths)
        assert [r.exit_index for r in batched] == [r.exit_index for r in alone] == sim.exit_index.tolist()
        assert [r.label for r in batched] == [r.label for r in alone] == sim.pred.tolist()
        for a, b in zip(batched, alone, strict=True):
            assert math.isclose(a.confidence, b.confidence, rel_tol=1e-4, abs_tol=1e-5)
    mixed = {r.exit_index for r in classify_batch(model, batch_of(tok, model, ps), PerExit(thresholds=medians))}
    assert len(mixed) > 1, "the threshold should split the pages between decision points"


def test_exited_rows_leave_the_batch_and_later_layers_are_not_run(tok):
    model = tiny_classifier()
    ps = pages(9)
    seen: list[tuple[int, int]] = []
    for i, block in enumerate(model.blocks):
        block.register_forward_hook(lambda m, inp, out, i=i: seen.append((i, inp[0].shape[0])))
    classify_batch(model, batch_of(tok, model, ps), GlobalThreshold(threshold=0.0))  # all leave at concat
    assert seen == []
    classify_batch(model, batch_of(tok, model, ps), None)
    assert seen == [(0, 9), (1, 9), (2, 9)]
    dec = collect(model, [batch_of(tok, model, [p]) for p in ps])
    conf, _ = dec.conf_pred(model.temperature)
    t = float(conf[0].median())  # about half leave at the first exit
    seen.clear()
    results = classify_batch(model, batch_of(tok, model, ps), PerExit(thresholds=[t, 2.0, 2.0]))
    left_early = sum(r.exit_index == 0 for r in results)
    assert 0 < left_early < 9
    assert seen[0] == (0, 9 - left_early) and all(n == 9 - left_early for _, n in seen)
    assert all(r.layers_run == (0 if r.exit_index == 0 else 3) for r in results)


def test_pages_with_and_without_image_batch_together(tok):
    model = tiny_classifier(exits=("text_avg", "vision_avg", "1"))
    ps = pages(6, images=True)
    assert {p.image is None for p, _ in ps} == {True, False}
    out = model(batch_of(tok, model, ps))
    for i, p in enumerate(ps):
        alone = model(batch_of(tok, model, [p]))
        torch.testing.assert_close(out.final_logits[i], alone.final_logits[0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(out.exit_logits[1][i], alone.exit_logits[1][0], atol=1e-5, rtol=1e-4)
    text_only = [i for i, (p, _) in enumerate(ps) if p.image is None]
    # vision_avg of a page without an image is zero: every such page gets the same logits.
    v = out.exit_logits[1][text_only]
    torch.testing.assert_close(v, v[:1].expand_as(v))


def test_gate_exits_answer_with_the_shared_final_classifier(tok):
    model = tiny_classifier("gate")
    b = batch_of(tok, model, pages(6))
    s = model.start(b)
    rep = model.exit_repr("concat", s)
    own, shared = model.exit_logits(0, rep)
    assert own.shape == (6, 2) and shared is not None
    torch.testing.assert_close(shared, model.final(rep))
    conf, pred = model.decision(0, own, shared)
    assert torch.equal(pred, shared.argmax(-1))
    torch.testing.assert_close(conf, torch.softmax(own / model.temperature[0], -1)[:, 1])


def test_budget_answers_with_the_most_confident_exit_reached():
    conf = torch.tensor([[0.5, 0.9], [0.8, 0.4], [0.6, 0.95], [0.99, 0.99]])  # (D=4, N=2)
    pred = torch.tensor([[0, 1], [1, 1], [2, 0], [2, 2]])
    out = simulate(Budget(max_depth=2), conf, pred, [0, 1, 2, 3])
    assert out.exit_index.tolist() == [1, 2] and out.pred.tolist() == [1, 0]
    out = simulate(Patience(patience=2), conf, pred, [0, 1, 2, 3])
    assert out.exit_index.tolist() == [3, 1] and out.pred.tolist() == [2, 1]
    times = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 9.0], [4.0, 10.0]])
    out = simulate(Budget(deadline_ms=3.5), conf, pred, [0, 1, 2, 3], times)
    assert out.exit_index.tolist() == [1, 0]  # row 0 reached exits 0-2, its best is 1; row 1 only exits 0-1


def test_anytime_budget_runs_no_deeper_than_asked(tok):
    model = tiny_classifier()
    for depth in (0, 1, 2):
        results = classify_batch(model, batch_of(tok, model, pages(5)), Budget(max_depth=depth))
        assert all(r.layers_run <= depth for r in results)
    results = classify_batch(model, batch_of(tok, model, pages(5)), Budget(deadline_ms=0.0))
    assert all(r.layers_run == 0 for r in results)  # only the pre-encoder exit fits a 0 ms deadline


def test_temperature_scaling_recovers_a_known_temperature_and_lowers_ece():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20000, 5, generator=g) * 3
    y = torch.multinomial(torch.softmax(z / 2.5, -1), 1, generator=g).squeeze(1)  # true T = 2.5
    t = fit_temperature(z, y)
    assert abs(t - 2.5) / 2.5 < 0.08
    conf_raw, pred = torch.softmax(z, -1).max(-1)
    conf_cal = torch.softmax(z / t, -1).max(-1).values
    right = pred == y
    assert ece(conf_raw, right) > 0.1 > 0.02 > ece(conf_cal, right)


def test_heuristic_thresholds_and_pareto_front():
    th = heuristic_thresholds([0.6, 0.8, 0.9], [0.2, 0.05, 0.02], margin=0.05)
    assert th[0] == pytest.approx(0.95) and th[2] == pytest.approx(0.05) and th[0] > th[1] > th[2]
    pts = [(1.0, 70.0), (2.0, 80.0), (3.0, 75.0), (4.0, 90.0), (0.5, 60.0)]
    assert pareto(pts) == [4, 0, 1, 3]


def test_per_exit_thresholds_lose_at_most_the_drop_on_val():
    g = torch.Generator().manual_seed(1)
    N = 400
    labels = torch.randint(0, 3, (N,), generator=g)
    conf = torch.rand(3, N, generator=g)
    # Confident answers are right more often, at every exit; the final one is always right.
    pred = torch.where(torch.rand(3, N, generator=g) < conf, labels, (labels + 1) % 3)
    pred[-1] = labels
    for drop in (0.0, 2.0, 10.0):
        th = per_exit_thresholds(conf, pred, labels, [0, 1, 2], drop)
        out = simulate(PerExit(thresholds=th), conf, pred, [0, 1, 2])
        assert float((out.pred == labels).float().mean()) * 100 >= 100 - drop - 1e-6
    assert (simulate(PerExit(thresholds=per_exit_thresholds(conf, pred, labels, [0, 1, 2], 10.0)), conf, pred, [0, 1, 2]).exit_index < 2).any()


def test_exit_weights_and_entropy_scales():
    model = tiny_classifier(exits=("concat", "1", "2"))
    w = exit_weights(model)
    assert w.sum().item() == pytest.approx(1.0) and w[0] > w[1] > w[2]
    from docsprint.models.classifier import ExitOutputs

    sure = torch.tensor([[9.0, 0.0, 0.0]] * 4)
    unsure = torch.zeros(4, 3)
    s = entropy_scales(ExitOutputs([sure, unsure, unsure], [], sure))
    assert s[0] > 0.5 and s[1] == s[2] == 0  # unsure exits send no gradient into the backbone


def _grads(model, tok, **kw):
    model.zero_grad()
    out = model(batch_of(tok, model, pages(6)), **kw)
    sum(lg.sum() for lg in out.exit_logits).backward()
    return model.blocks[0].ff_in.weight.grad.clone(), model.exit_heads[1][0].weight.grad.clone()


def test_grad_scale_and_detach_cut_only_the_backbone_gradient(tok):
    model = tiny_classifier()
    backbone, head = _grads(model, tok)
    half_backbone, half_head = _grads(model, tok, grad_scale=torch.full((3,), 0.5))
    torch.testing.assert_close(half_backbone, backbone * 0.5)
    torch.testing.assert_close(half_head, head)  # the exit heads still learn fully
    model.zero_grad()
    out = model(batch_of(tok, model, pages(6)), detach_backbone=True)
    sum(lg.sum() for lg in out.exit_logits).backward()
    assert model.blocks[0].ff_in.weight.grad is None and model.exit_heads[1][0].weight.grad is not None


@pytest.mark.parametrize("strategy", ["joint", "weighted", "two-stage", "alternating"])
@pytest.mark.parametrize("entropy_reg", [False, True])
def test_every_strategy_trains(tok, strategy, entropy_reg):
    model = tiny_classifier("gate" if strategy == "alternating" else "ramp").train()
    tc = ClassifyTrainConfig(strategy=strategy, entropy_reg=entropy_reg, stage1_fraction=0.5)
    loss_net = ExitLoss(model, tc, total_steps=4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    b = batch_of(tok, model, pages(6))
    for step in range(4):
        before = {k: v.clone() for k, v in model.state_dict().items()}
        loss = loss_net(b, step)
        assert torch.isfinite(loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        after = model.state_dict()
        backbone_moved = not torch.equal(before["blocks.0.ff_in.weight"], after["blocks.0.ff_in.weight"])
        final_moved = not torch.equal(before["final.3.weight"], after["final.3.weight"])
        exits_moved = not torch.equal(before["exit_heads.1.3.weight"], after["exit_heads.1.3.weight"])
        if strategy == "two-stage" and step >= 2:  # stage 2: frozen backbone and final head
            assert exits_moved and not backbone_moved and not final_moved
        elif strategy == "two-stage" or (strategy == "alternating" and step % 2 == 0):
            assert backbone_moved and final_moved and not exits_moved
        else:
            assert backbone_moved and exits_moved


def test_choose_policies_keeps_val_accuracy_and_is_saved_with_the_model(tok, tmp_path):
    model = tiny_classifier()
    ps = pages(15)
    dec = collect(model, [batch_of(tok, model, [p]) for p in ps])
    rows = sweep(dec, model.temperature, dec)
    chosen = choose_policies(rows, max_drop=0.5)
    full = next(r for r in rows if r["policy"]["name"] == "full")["val"]["accuracy"]
    rec = next(r for r in rows if {**r["policy"], "calibrated": r["calibrated"]} == chosen["recommended"])
    assert rec["val"]["lost"] <= rec["val"]["changed"] <= 0.5 and rec["val"]["accuracy"] >= full - 0.5
    assert chosen["recommended"]["name"] in ("global", "patience", "full")
    assert {"global", "per-exit", "heuristic", "patience", "recommended"} <= set(chosen)
    model.cfg.policies = chosen
    from docsprint.models.checkpoint import minilm_dir

    save_pretrained(model, tmp_path / "clf", minilm_dir() / "tokenizer.json")
    loaded, _ = load_classifier(tmp_path / "clf")
    assert loaded.cfg.policies == chosen
    torch.testing.assert_close(loaded.temperature, model.temperature)
    policy, calibrated = resolve_policy(loaded.cfg.policies)
    assert policy.describe()["name"] == chosen["recommended"]["name"]
    with pytest.raises(ValueError, match="threshold"):
        resolve_policy(loaded.cfg.policies, "patience", threshold=0.5)


def make_tobacco(root: Path, n: int = 30) -> Path:
    """A folder laid out like ../shared/data/tobacco3482 with three easy classes."""
    rows = ["text_path,label,split"]
    rng = random.Random(0)
    for i in range(n):
        label = LABELS[i % 3].capitalize()
        split = ("train", "train", "val", "test")[i % 4] if i >= 6 else ("train", "val", "test")[i % 3]
        words = WORDS[LABELS[i % 3]].split()
        path = root / "ocr" / label / f"{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(" ".join(rng.choices(words, k=5)) for _ in range(3)))
        rows.append(f"ocr/{label}/{i}.txt,{label},{split}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_train_eval_and_classify_from_the_command_line(tmp_path, capsys):
    data = make_tobacco(tmp_path / "tobacco")
    assert {p.label for p in load_pages("tobacco3482", "val", data)} == {"Letter", "Memo", "Invoice"}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: tobacco3482\ndata_dir: {data}\ninit: random\nmodel: {{hidden_size: 48, num_layers: 2, num_heads: 4, "
        f"intermediate_size: 64, image_size: 32}}\nexits: concat-all\nmax_tokens: 32\nmax_steps: 40\n"
        f"batch_size: 8\nhead_lr: 3.0e-3\nlr: 3.0e-3\nbf16: false\nout: {tmp_path / 'run'}\n"
    )
    assert main(["train", "classify", "--config", str(cfg)]) == 0
    ckpt = tmp_path / "run" / "final"
    model, _ = load_classifier(ckpt)
    assert model.cfg.exits == ["concat", "1"] and "recommended" in model.cfg.policies
    out, plot = tmp_path / "eval.json", tmp_path / "pareto.png"
    assert main(["eval", "classify", "--model", str(ckpt), "--dataset", "tobacco3482", "--data-dir", str(data),
                 "--json", str(out), "--plot", str(plot), "--batch-size", "4"]) == 0
    r = json.loads(out.read_text())
    for key in ("accuracy", "full_depth_accuracy", "seconds_per_doc", "full_depth_seconds_per_doc", "exit_histogram", "ece"):
        assert key in r
    assert max(r["per_exit"]["accuracy"]) == 100.0  # three classes with disjoint words: learnt
    assert sum(r["exit_histogram"].values()) == r["n"] > 0
    assert len(r["per_exit"]["ece_calibrated"]) == 3
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"
    # A rendered memo, read by OCR, classified with a chosen policy.
    page = render_lines(["MEMO", "to from subject", "date cc memo"], width=400, size=24)
    img = tmp_path / "memo.png"
    page.image.save(img)
    capsys.readouterr()
    assert main(["classify", str(img), "--model", str(ckpt), "--policy", "global", "--threshold", "0.0"]) == 0
    res = json.loads(capsys.readouterr().out)[0]
    assert res["exit"] == "concat" and res["layers_run"] == 0 and res["label"] in {"Letter", "Memo", "Invoice"}
    assert main(["classify", str(img), "--model", str(ckpt), "--policy", "budget", "--max-depth", "1"]) == 0
    res = json.loads(capsys.readouterr().out)[0]
    assert res["layers_run"] <= 1
    assert main(["classify", str(tmp_path / "missing.png"), "--model", str(ckpt)]) != 0
    assert main(["classify", str(img), "--model", str(ckpt), "--policy", "per-exit", "--threshold", "0.3"]) == 2


def test_a_folder_of_class_folders_is_a_dataset(tmp_path):
    for split in ("train", "test"):
        for label, lines in (("memo", ["MEMO", "to from subject"]), ("invoice", ["INVOICE", "total amount due"])):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            render_lines(lines, width=400, size=24).image.save(folder / f"{label}.png")
    got = load_pages(str(tmp_path), "test", ocr="tesseract")
    assert sorted(p.label for p in got) == ["invoice", "memo"]
    memo = next(p for p in got if p.label == "memo")
    assert "MEMO" in memo.page.text and memo.page.get_image() is not None
    with pytest.raises(ValueError, match="class sub-folders"):
        load_pages(str(tmp_path / "train" / "memo"), "test")
