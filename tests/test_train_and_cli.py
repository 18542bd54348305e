"""Training on tiny rendered data (it learns, it resumes) and the command line end to end."""

import json

import pytest

from docsprint.cli import main
from docsprint.train.kie import KIETrainConfig, train_kie


def _config(tmp_path, sroie_folder, **kw) -> KIETrainConfig:
    base = dict(
        datasets=["sroie"], data_dir={"sroie": str(sroie_folder)}, dev_fraction=0.0, init="random",
        model=dict(hidden_size=48, num_layers=2, num_heads=4, intermediate_size=96, image_size=32,
                   max_slots=24, default_slots=8, dropout=0.0),
        batch_size=6, lr=3e-3, head_lr=3e-3, warmup=0.05, absent_prob=0.0, checkpoint_every=5,
        out=str(tmp_path / "run"), bf16=False, slot_percentile=100.0, cache_dir=str(tmp_path / "cache"),
    )
    base.update(kw)
    return KIETrainConfig(**base)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model that has learnt three rendered receipts (both modes)."""
    from tests.conftest import make_sroie_folder

    tmp = tmp_path_factory.mktemp("train")
    folder = make_sroie_folder(tmp / "sroie", n=6, short=True)
    final = train_kie(_config(tmp, folder, max_steps=150))
    return final, folder


def test_training_learns_both_modes_into_one_checkpoint(trained, tmp_path, capsys):
    final, folder = trained
    out = tmp_path / "eval.json"
    code = main(["eval", "kie", "--dataset", "sroie", "--split", "train", "--data-dir", str(folder),
                 "--model", str(final), "--mode", "both", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    for key in ("anls", "f1", "per_key", "n_docs", "seconds_per_doc", "docs_per_second", "mode"):
        assert key in result
    assert result["n_docs"] == 6
    assert result["anls"] > 80 and result["autoregressive"]["anls"] > 80
    assert set(result["per_key"]) == {"company", "date", "address", "total"}
    assert main(["eval", "report", str(out)]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert row.startswith("| run | sroie | 6 | ANLS |") and row.count("|") == 11
    # --ids: only the documents a file lists (a run's dev_ids.txt); none of them is an error
    names = [row["id"] for row in result["predictions"]]
    ids = tmp_path / "dev_ids.txt"
    ids.write_text(f"{names[4]}\nfunsd/train/x\n{names[1]}\n")
    assert main(["eval", "kie", "--dataset", "sroie", "--split", "train", "--data-dir", str(folder),
                 "--model", str(final), "--ids", str(ids), "--json", str(out)]) == 0
    picked = json.loads(out.read_text())
    assert picked["n_docs"] == 2 and {r["id"] for r in picked["predictions"]} == {names[1], names[4]}
    ids.write_text("funsd/train/x\n")
    capsys.readouterr()
    assert main(["eval", "kie", "--dataset", "sroie", "--split", "train", "--data-dir", str(folder),
                 "--model", str(final), "--ids", str(ids)]) == 2
    assert "none of the 1 listed ids" in capsys.readouterr().err
    assert main(["eval", "kie", "--dataset", "sroie", "--ids", str(tmp_path / "nope.txt")]) == 2
    assert main(["eval", "kie", "--data", str(folder), "--ids", str(ids)]) == 2


def test_eval_repeat_keeps_each_documents_fastest_decode_and_the_same_answers(trained, tmp_path, capsys):
    from docsprint.eval.kie import evaluate_kie
    from docsprint.pipeline import Extractor

    final, folder = trained
    ex = Extractor(str(final))
    once = evaluate_kie("sroie", "train", "parallel", final, folder, extractor=ex, warmup=0)
    reasked = ex.reasked
    real, clock = ex.extract, []

    def extract(*args, **kw):  # the clock reads 5, 1, 3 s for each document's three decodes
        out = real(*args, **kw)
        out.model_seconds = (5.0, 1.0, 3.0)[len(clock) % 3]
        clock.append(out.model_seconds)
        return out

    ex.extract = extract
    thrice = evaluate_kie("sroie", "train", "parallel", final, folder, extractor=ex, warmup=0, repeat=3)
    assert len(clock) == 3 * thrice["n_docs"] == 18
    assert thrice["seconds_per_doc"] == 1.0 and thrice["timing_repeats"] == 3
    assert thrice["anls"] == once["anls"] and thrice["predictions"] == once["predictions"]
    assert ex.reasked == 2 * reasked  # a document's repeats do not count as keys asked again
    # a folder's time includes its OCR: --repeat is refused there, before any model is loaded
    assert main(["eval", "kie", "--data", str(tmp_path), "--repeat", "2"]) == 2
    assert "--repeat times a dataset" in capsys.readouterr().err


def test_both_modes_take_turns_on_each_document(trained):
    """--mode both: each document is decoded parallel, autoregressive, parallel, ... before the
    next one, so a machine that slows down mid-run slows both modes alike."""
    from docsprint.eval.kie import evaluate_kie
    from docsprint.pipeline import Extractor

    final, folder = trained
    ex = Extractor(str(final))
    real, calls = ex.extract, []

    def extract(doc, keys, mode, *args, **kw):  # parallel takes 1 s, autoregressive 4 s, then slower
        out = real(doc, keys, mode, *args, **kw)
        calls.append((id(doc), mode))
        out.model_seconds = (1.0 if mode == "parallel" else 4.0) * (1 + len(calls) / 100)
        return out

    ex.extract = extract
    both = evaluate_kie("sroie", "train", "both", final, folder, extractor=ex, warmup=0, repeat=2)
    docs = list(dict.fromkeys(d for d, _ in calls))
    assert len(docs) == 6 and calls == [(d, m) for d in docs for _ in range(2) for m in ("parallel", "autoregressive")]
    assert both["mode"] == "both" and both["autoregressive"]["mode"] == "autoregressive"
    assert both["autoregressive"]["split"] == "train" and both["autoregressive"]["anls"] > 80
    assert 3.9 < both["speedup"] < 4.1  # the clock's drift falls on both modes


def test_training_resumes_after_a_kill(tmp_path, sroie_folder, capsys):
    # "Killed" after 10 steps: the last checkpoint holds step 10.
    train_kie(_config(tmp_path, sroie_folder, max_steps=10))
    last = tmp_path / "run" / "last"
    assert (last / "trainer_state.json").is_file() and (last / "optimizer.safetensors").is_file()
    train_kie(_config(tmp_path, sroie_folder, max_steps=12))
    out = capsys.readouterr().out
    assert "resumed from" in out and "at step 10" in out
    assert "trained 12 steps" in out


def test_extract_cli_reports_bad_files_and_still_prints_good_ones(trained, tmp_path, receipt_page, capsys):
    final, _ = trained
    good = tmp_path / "receipt.png"
    receipt_page.image.save(good)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pdf"
    text.write_text("not really a pdf")
    code = main(["extract", str(empty), str(good), str(text), "--model", str(final), "--keys", "total,date",
                 "--lists", "date"])
    captured = capsys.readouterr()
    assert code == 1
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2 and "Traceback" not in captured.err
    assert str(empty) in errors[0] and "empty file" in errors[0]
    assert str(text) in errors[1]
    (result,) = json.loads(captured.out)
    assert result["file"] == str(good)
    assert set(result["fields"]) == {"total", "date"}
    assert result["fields"]["date"]["value"] is None or isinstance(result["fields"]["date"]["value"], list)
    for field in result["fields"].values():
        assert 0.0 <= field["confidence"] <= 1.0
        assert isinstance(field["boxes"], list)
    assert result["ocr_seconds"] > 0 and result["model_seconds"] > 0


def test_extract_from_python_in_two_lines(trained, receipt_page):
    from docsprint import Extractor
    from docsprint.io.document import Document

    final, _ = trained
    doc = Document([receipt_page], source="rendered")
    result = Extractor(final).extract(doc, keys=["total", "company"], mode="autoregressive")
    assert set(result.fields) == {"total", "company"} and result.mode == "autoregressive"
    assert result.to_dict()["file"] == "rendered"


def test_bad_arguments_are_clear_errors(trained, tmp_path, capsys):
    final, _ = trained
    assert main(["eval", "kie", "--dataset", "sroie", "--data-dir", str(tmp_path / "none"),
                 "--model", str(final)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["extract", "x.png", "--model", str(tmp_path)]) == 2
    assert "not a docsprint checkpoint" in capsys.readouterr().err


def test_export_averages_checkpoints_of_one_architecture(tmp_path, tiny_checkpoint, capsys):
    """``docsprint export A OUT --average B [C ...]``: every weight the mean of A's and B's (and
    C's, each weighing the same), A's config kept; a checkpoint of another shape is a clear
    error, and nothing is written."""
    import torch
    from safetensors.torch import load_file

    from docsprint.models.checkpoint import from_pretrained, save_pretrained
    from docsprint.models.model import DocsprintModel
    from tests.conftest import minilm_dir, tiny_config

    other = tmp_path / "other"
    torch.manual_seed(1)
    save_pretrained(DocsprintModel(from_pretrained(tiny_checkpoint)[0].cfg), other, minilm_dir() / "tokenizer.json")
    assert main(["export", str(tiny_checkpoint), str(tmp_path / "avg"), "--average", str(other)]) == 0
    a, b = load_file(tiny_checkpoint / "model.safetensors"), load_file(other / "model.safetensors")
    avg = load_file(tmp_path / "avg" / "model.safetensors")
    name = next(k for k in a if a[k].is_floating_point() and not torch.equal(a[k], b[k]))
    assert torch.allclose(avg[name], (a[name] + b[name]) / 2)
    assert (tmp_path / "avg" / "config.json").read_text() == (tiny_checkpoint / "config.json").read_text()
    third = tmp_path / "third"
    torch.manual_seed(2)
    save_pretrained(DocsprintModel(from_pretrained(tiny_checkpoint)[0].cfg), third, minilm_dir() / "tokenizer.json")
    assert main(["export", str(tiny_checkpoint), str(tmp_path / "avg3"), "--average", str(other), str(third)]) == 0
    c = load_file(third / "model.safetensors")
    avg3 = load_file(tmp_path / "avg3" / "model.safetensors")
    assert torch.allclose(avg3[name], (a[name] + b[name] + c[name]) / 3)
    assert not torch.allclose(avg3[name], avg[name])
    wide = tmp_path / "wide"
    save_pretrained(DocsprintModel(tiny_config(intermediate_size=96)), wide, minilm_dir() / "tokenizer.json")
    capsys.readouterr()
    assert main(["export", str(tiny_checkpoint), str(tmp_path / "bad"), "--average", str(wide)]) != 0
    assert "cannot average" in capsys.readouterr().err and not (tmp_path / "bad").exists()
