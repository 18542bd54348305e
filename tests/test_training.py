"""The fast training loop: same losses as the plain loop, batches by length, the encoding
cache, dev evaluation, status, and runs that survive SIGKILL with the same final weights."""

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import yaml

from docsprint.data.encode import collate, encode, tokenize_page
from docsprint.decode.common import value_logits
from docsprint.models.checkpoint import load_weights
from docsprint.models.model import DocsprintModel
from docsprint.train.kie import (
    KIETrainConfig,
    Prepared,
    Window,
    load_prepared,
    make_example,
    train_kie,
)
from docsprint.train.loop import epoch_order
from docsprint.train.losses import batch_value_loss, value_loss
from docsprint.train.status import format_status, plot_progress, run_status
from tests.conftest import make_sroie_folder, tiny_config

TINY = dict(hidden_size=48, num_layers=2, num_heads=4, intermediate_size=96, image_size=32,
            max_slots=24, default_slots=8, dropout=0.1)


def _config(tmp_path: Path, folder: Path, **kw) -> KIETrainConfig:
    base = dict(datasets=["sroie"], data_dir={"sroie": str(folder)}, dev_fraction=0.0, init="random",
                model=TINY, batch_size=3, lr=3e-3, head_lr=3e-3, warmup=0.05, checkpoint_every=4,
                out=str(tmp_path / "run"), bf16=False, slot_percentile=100.0, cache_dir=str(tmp_path / "cache"))
    base.update(kw)
    return KIETrainConfig(**base)


def test_loss_on_value_rows_equals_loss_on_full_logits(tok, receipt_page):
    """The training loss skips padding rows and the [vocab | document] concatenation: same value
    and same gradients as the log-softmax over the full (B, Q, V + Ld) logits."""
    torch.manual_seed(0)
    model = DocsprintModel(tiny_config(dropout=0.0))
    doc = tokenize_page(tok, receipt_page)
    items = [encode(tok, model.cfg, doc, ["total", "date"], "parallel", ["12.50", None]),
             encode(tok, model.cfg, doc, ["company", "total", "address"], "autoregressive",
                    ["ACME", "12.50", "1 MAIN ROAD"])]
    batch = collate(items)
    assert batch.targets is not None and not bool(batch.value_valid.all())  # padding rows exist
    full = value_loss(value_logits(model, batch), batch.targets, batch.value_valid, model.cfg.vocab_size)
    grads_full = torch.autograd.grad(full, list(model.parameters()), allow_unused=True)
    rows = batch_value_loss(model, batch)
    grads_rows = torch.autograd.grad(rows, list(model.parameters()), allow_unused=True)
    assert torch.allclose(full, rows, rtol=1e-5)
    for a, b in zip(grads_full, grads_rows, strict=True):
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)


def test_key_subsets_ask_part_of_the_keys_in_the_prompt_order(tok, receipt_page):
    """subset_prob: some examples ask one key up to all but one (a key's answer must not hang on
    the other keys asked); without it every key is asked."""
    cfg = tiny_config()
    fields = {"company": "ACME", "total": "12.50", "date": None, "address": "1 MAIN ROAD"}
    ex = Prepared([Window(tokenize_page(tok, receipt_page), None, dict(fields))], [0])
    common = dict(datasets=["sroie"], ar_fraction=0.0, absent_prob=0.0, shuffle_keys=False)
    rng = random.Random(0)
    whole = KIETrainConfig(**common)
    assert all(make_example(tok, cfg, whole, ex, rng).keys == list(fields) for _ in range(5))
    part = KIETrainConfig(**common, subset_prob=1.0)
    seen = set()
    for _ in range(60):
        keys = make_example(tok, cfg, part, ex, rng).keys
        assert 1 <= len(keys) < len(fields)
        assert keys == [k for k in fields if k in keys]  # the prompt's order is kept
        seen.add(tuple(keys))
    assert len(seen) > 8 and any(len(k) == 1 for k in seen) and any(len(k) == 3 for k in seen)


def test_epoch_order_groups_lengths_and_keeps_every_item():
    lengths = [random.Random(i).randint(10, 500) for i in range(203)]
    order = epoch_order(203, 0, 7, 8, lengths, pool_batches=5)
    assert sorted(order) == list(range(203))  # a permutation
    assert order == epoch_order(203, 0, 7, 8, lengths, pool_batches=5)  # the same on every rank / resume
    assert order != epoch_order(203, 1, 7, 8, lengths, pool_batches=5)  # another epoch, another order
    full = [order[i : i + 8] for i in range(0, 200, 8)]
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in full) / len(full)
    plain = epoch_order(203, 0, 7, 8)
    plain_spread = sum(max(lengths[i] for i in plain[j : j + 8]) - min(lengths[i] for i in plain[j : j + 8])
                       for j in range(0, 200, 8)) / 25
    assert spread < plain_spread / 3  # far less padding per batch


def test_encoding_cache_is_built_once_and_rebuilt_when_the_data_changes(tmp_path, tok):
    from docsprint.models.checkpoint import TOKENIZER_FILE, minilm_dir
    from docsprint.models.config import ModelConfig

    folder = make_sroie_folder(tmp_path / "sroie", n=3, short=True)
    tc = _config(tmp_path, folder)
    cfg = ModelConfig(**TINY)
    tok_file = minilm_dir() / TOKENIZER_FILE
    first = load_prepared(tok, tok_file, cfg, tc, "sroie")
    caches = list((tmp_path / "cache").iterdir())
    assert len(caches) == 1 and (caches[0] / "pieces.npy").is_file()
    stamp = (caches[0] / "meta.json").stat().st_mtime_ns
    again = load_prepared(tok, tok_file, cfg, tc, "sroie")
    assert (caches[0] / "meta.json").stat().st_mtime_ns == stamp  # read, not rebuilt
    assert [i for i, _ in again] == [i for i, _ in first]
    for (_, a), (_, b) in zip(first, again, strict=True):
        assert a is not None and b is not None
        assert a.windows[0].doc == b.windows[0].doc and a.windows[0].fields == b.windows[0].fields
        assert (a.windows[0].image == b.windows[0].image).all()
    # the cache holds what tokenising the page gives
    from docsprint.data import datasets

    ex = datasets.load("sroie", "train", folder)[0]
    assert first[0][1] is not None and first[0][1].windows[0].doc == tokenize_page(tok, ex.doc.pages[0])
    keys = json.loads((folder / "train" / "keys" / "000.json").read_text())
    (folder / "train" / "keys" / "000.json").write_text(json.dumps({**keys, "total": "99.99"}))
    changed = load_prepared(tok, tok_file, cfg, tc, "sroie")
    assert changed[0][1] is not None and changed[0][1].windows[0].fields["total"] == "99.99"


def _run_cli(config: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "docsprint.cli", "train", "kie", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_a_run_killed_at_random_moments_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    folder = make_sroie_folder(tmp_path / "sroie", n=6, short=True)
    steps = 24

    def config(name: str) -> Path:
        tc = _config(tmp_path, folder, max_steps=steps, checkpoint_every=3, out=str(tmp_path / name),
                     ar_fraction=0.5, absent_prob=0.2)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(asdict(tc)))
        return path

    straight = _run_cli(config("straight"))
    assert straight.wait(timeout=300) == 0, straight.stdout.read() if straight.stdout else ""
    killed_cfg = config("killed")
    rng = random.Random(0)
    kills = 0
    for _ in range(3):  # SIGKILL at a random step (maybe mid-checkpoint), then the same command again
        proc = _run_cli(killed_cfg)
        log = tmp_path / "killed" / "log.jsonl"
        target = rng.randint(1, steps - 2)
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            n = len(log.read_text().splitlines()) if log.is_file() else 0
            if n >= target:
                time.sleep(rng.random() * 0.3)
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.02)
        proc.wait(timeout=60)
    final = _run_cli(killed_cfg)
    text = final.communicate(timeout=300)[0]
    assert final.returncode == 0, text
    assert kills >= 1 and "resumed from" in text
    a = load_weights(tmp_path / "straight" / "final" / "model.safetensors")
    b = load_weights(tmp_path / "killed" / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    losses = [json.loads(x)["loss"] for x in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    straight_losses = [json.loads(x)["loss"] for x in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    assert losses == straight_losses  # the log holds each step once, as trained


def test_dev_evaluation_keeps_the_best_checkpoint_and_stops_early(tmp_path, capsys):
    folder = make_sroie_folder(tmp_path / "sroie", n=6, short=True)
    tc = _config(tmp_path, folder, dev_fraction=0.34, max_steps=60, eval_every=5, eval_docs=2, early_stop=2,
                 lr=0.0, head_lr=0.0)  # nothing is learnt: the dev score cannot improve, so it stops
    final = train_kie(tc)
    out = Path(tc.out)
    dev = [json.loads(x) for x in (out / "dev.jsonl").read_text().splitlines()]
    assert [r["step"] for r in dev] == [5, 10, 15]  # first at 5, then two evaluations without a better one
    assert set(dev[0]["anls"]) == {"sroie"} and 0.0 <= dev[0]["score"] <= 100.0
    assert (out / "best" / "model.safetensors").is_file() and final.is_dir()
    assert "early stop at step 15" in capsys.readouterr().out
    status = run_status(out)
    # a tie keeps the later weights: out/best is step 15's
    assert status["step"] == 15 and status["best_dev"]["step"] == 15 and status["finished"]
    assert "best dev" in format_status(status)
    assert plot_progress(out).stat().st_size > 1000


def test_train_status_cli_and_a_clear_error_for_a_non_run(tmp_path, capsys):
    from docsprint.cli import main

    assert main(["train", "status", str(tmp_path)]) == 2
    assert "not a training run" in capsys.readouterr().err


def test_bf16_auto_follows_the_hardware():
    from docsprint.train.loop import native_bf16, use_bf16

    cpu = torch.device("cpu")
    assert use_bf16("auto", cpu) == native_bf16(cpu)
    assert use_bf16(False, cpu) is False
    with pytest.raises(ValueError, match="bf16"):
        KIETrainConfig(bf16="yes")


def test_sharded_checkpoint_round_trip(tmp_path, tiny_model):
    from docsprint.models.checkpoint import (
        TOKENIZER_FILE,
        from_pretrained,
        minilm_dir,
        save_pretrained,
    )

    save_pretrained(tiny_model, tmp_path / "sharded", minilm_dir() / TOKENIZER_FILE, max_shard_mb=0.2)
    files = sorted((tmp_path / "sharded").glob("model-*.safetensors"))
    assert len(files) > 3 and not (tmp_path / "sharded" / "model.safetensors").exists()
    assert all(f.stat().st_size <= 0.2e6 + 4096 for f in files)  # + the safetensors header
    index = json.loads((tmp_path / "sharded" / "model.safetensors.index.json").read_text())
    assert "embed.word.weight" in index["split"]  # 30522 x 48 floats > one shard: cut by rows
    loaded, _ = from_pretrained(tmp_path / "sharded")
    for name, t in tiny_model.state_dict().items():
        assert torch.equal(t, loaded.state_dict()[name]), name


def test_pack_trains_without_the_data_folder_and_writes_shards(tmp_path):
    from docsprint.cli import main
    from docsprint.models.checkpoint import from_pretrained

    folder = make_sroie_folder(tmp_path / "sroie", n=3, short=True)
    tc = _config(tmp_path, folder, max_steps=3, max_shard_mb=0.3, out=str(tmp_path / "gpu-run"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(asdict(tc)))
    assert main(["train", "pack", "--config", str(cfg), "--out", str(tmp_path / "pack")]) == 0
    (cache,) = (tmp_path / "pack" / "cache").iterdir()
    assert {p.name for p in cache.iterdir()} == {"pieces.T.npy.xz", "images.jpeg.npz", "meta.json.xz", "windows.npy"}
    shutil.rmtree(folder)  # as on the GPU machine: ../shared does not travel
    assert main(["train", "kie", "--config", str(tmp_path / "pack" / "config.yaml")]) == 0
    final = tmp_path / "gpu-run" / "final"
    assert (final / "model.safetensors.index.json").is_file()
    model, _ = from_pretrained(final)
    assert model.cfg.hidden_size == 48


def test_a_packed_cache_unpacks_to_the_same_pieces_and_nearly_the_same_thumbnails(tmp_path, tok):
    import numpy as np

    from docsprint.data.cache import pack_store
    from docsprint.models.checkpoint import TOKENIZER_FILE, minilm_dir

    folder = make_sroie_folder(tmp_path / "sroie", n=3, short=True)
    tc = _config(tmp_path, folder)
    tok_file = minilm_dir() / TOKENIZER_FILE
    cfg = DocsprintModel(tiny_config()).cfg
    load_prepared(tok, tok_file, cfg, tc, "sroie")
    (cache,) = Path(tc.cache_dir).iterdir()
    pieces, images = np.load(cache / "pieces.npy"), np.load(cache / "images.npy")
    meta = (cache / "meta.json").read_text()
    pack_store(cache)
    assert not (cache / "pieces.npy").exists() and not (cache / "meta.json").exists()
    shutil.rmtree(folder)
    again = load_prepared(tok, tok_file, cfg, tc, "sroie")  # unpacked on first use
    assert len(again) == 3 and (cache / "meta.json").read_text() == meta
    assert np.array_equal(np.load(cache / "pieces.npy"), pieces)
    unpacked = np.load(cache / "images.npy").astype(int)
    assert unpacked.shape == images.shape and np.abs(unpacked - images).mean() < 6  # JPEG: close, not equal


def test_loader_processes_train_the_same_weights_and_a_time_budget_stops_the_run(tmp_path, capsys):
    folder = make_sroie_folder(tmp_path / "sroie", n=6, short=True)
    common = dict(max_steps=8, ar_fraction=0.5, absent_prob=0.2)
    train_kie(_config(tmp_path, folder, out=str(tmp_path / "thread"), **common))
    train_kie(_config(tmp_path, folder, out=str(tmp_path / "procs"), loader_workers=2, **common))
    a = load_weights(tmp_path / "thread" / "final" / "model.safetensors")
    b = load_weights(tmp_path / "procs" / "final" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # a batch depends on its step only
    train_kie(_config(tmp_path, folder, out=str(tmp_path / "budget"), max_minutes=1e-9, **common))
    steps = (tmp_path / "budget" / "log.jsonl").read_text().splitlines()
    assert len(steps) == 1 and "stopping at step 1 of 8" in capsys.readouterr().out
    assert (tmp_path / "budget" / "final" / "model.safetensors").is_file()


def test_fine_tuning_a_checkpoint_with_key_mentions_and_geometry_adds_and_trains_them(tmp_path):
    from docsprint.models.checkpoint import from_pretrained

    folder = make_sroie_folder(tmp_path / "sroie", n=3, short=True)
    first = train_kie(_config(tmp_path, folder, max_steps=3, out=str(tmp_path / "a")))
    assert not json.loads((first / "config.json").read_text())["key_mentions"]
    final = train_kie(_config(tmp_path, folder, init=str(first), model={"key_geometry": True}, max_steps=4,
                              out=str(tmp_path / "b")))
    model, _ = from_pretrained(final)
    assert model.cfg.key_mentions and model.cfg.key_geometry  # geometry brings the mentions it reads
    m, geo = model.embed.mentions, model.head.geometry
    assert m is not None and m.gate.abs().sum() > 0 and m.mark.abs().sum() > 0  # started at zero, learnt
    assert geo is not None and geo.out.weight.abs().sum() > 0
    from docsprint.train.loop import param_groups

    tc = _config(tmp_path, folder, mention_lr=0.25)
    groups = {id(p): g["lr"] for g in param_groups(model, tc) for p in g["params"]}
    assert groups[id(m.gate)] == groups[id(m.mark)] == 0.25  # they start at zero: their own, faster rate
    assert groups[id(geo.out.weight)] == groups[id(geo.hidden.weight)] == 0.25
    assert groups[id(model.embed.group.weight)] == tc.head_lr
