"""Hostile input: every limit is checked before the work it guards, fails with one line naming
the file, and leaves the good files of the same call answered."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PIL import Image

from docsprint.cli import main
from docsprint.errors import CheckpointError, DocsprintError
from docsprint.io.limits import Limits
from docsprint.io.readers import DocumentError, read_document, to_rgb
from docsprint.models.checkpoint import from_pretrained
from docsprint.pipeline import Extractor, parse_keys
from tests.pdfs import text_pdf


def _one_line_naming(err: pytest.ExceptionInfo, path) -> str:
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    return message


def test_a_thin_strip_is_refused_before_ocr(tmp_path):
    path = tmp_path / "strip.png"
    Image.new("L", (10, 100_000), 255).save(path)
    t0 = time.perf_counter()
    with pytest.raises(DocumentError) as err:
        read_document(path)
    assert "too narrow" in _one_line_naming(err, path)
    assert time.perf_counter() - t0 < 5


def test_frames_are_counted_before_any_is_decoded(tmp_path):
    path = tmp_path / "many.tif"
    frames = [Image.new("L", (64, 64), i % 256) for i in range(120)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(DocumentError) as err:
        read_document(path)
    assert "120 frames is above the 100 page limit" in _one_line_naming(err, path)


def test_total_pixels_of_all_frames_are_bounded(tmp_path):
    path = tmp_path / "frames.tif"
    frames = [Image.new("L", (1000, 1000), 255) for _ in range(3)]  # 1 MP each
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(DocumentError) as err:
        read_document(path, limits=Limits(max_total_megapixels=2.5))
    assert "2.5 megapixels in all" in _one_line_naming(err, path)


def test_pages_of_a_pdf_are_counted_before_reading(tmp_path):
    path = text_pdf(tmp_path / "long.pdf", [[f"page {i}"] for i in range(30)])
    with pytest.raises(DocumentError) as err:
        read_document(path, limits=Limits(max_pages=20))
    assert "30 pages is above the 20 page limit" in _one_line_naming(err, path)


def test_a_huge_scanned_pdf_page_is_refused_before_rendering(tmp_path):
    path = text_pdf(tmp_path / "huge.pdf", [[]], width=20_000, height=20_000)  # no text: it would be rendered
    t0 = time.perf_counter()
    with pytest.raises(DocumentError) as err:
        read_document(path)
    assert "megapixel limit" in _one_line_naming(err, path)
    assert time.perf_counter() - t0 < 5


def test_a_huge_born_digital_page_still_reads(tmp_path):
    path = text_pdf(tmp_path / "poster.pdf", [["TOTAL 9.00"]], width=20_000, height=20_000)
    page = read_document(path).pages[0]
    assert [w.text for w in page.words] == ["TOTAL", "9.00"]
    assert page.width * page.height <= 4.01e6  # the picture is a thumbnail, not 400 megapixels


def test_words_per_page_are_bounded(tmp_path):
    lines = [" ".join(f"w{i}-{j}" for j in range(40)) for i in range(30)]  # 1,200 words
    path = text_pdf(tmp_path / "dense.pdf", [lines], width=3000, height=700)
    with pytest.raises(DocumentError) as err:
        read_document(path, limits=Limits(max_words=1000))
    assert "1200 words, above the 1000 word limit" in _one_line_naming(err, path)


def test_reading_time_is_checked_between_pages(tmp_path):
    path = text_pdf(tmp_path / "three.pdf", [["a"], ["b"], ["c"]])
    with pytest.raises(DocumentError) as err:
        read_document(path, limits=Limits(max_seconds=1e-9))
    assert "longer than the 1e-09 s limit" in _one_line_naming(err, path)


def test_file_size_limit(tmp_path):
    path = text_pdf(tmp_path / "a.pdf", [["x"]])
    with pytest.raises(DocumentError, match="MB limit"):
        read_document(path, limits=Limits(max_file_mb=1e-4))


def test_limits_reject_nonsense_values():
    with pytest.raises(ValueError, match="must be positive"):
        Limits().with_options(max_pages=0)
    assert Limits().with_options(max_pages=3, max_words=None).max_pages == 3


def test_16_bit_grayscale_is_scaled_not_clipped():
    a = np.array([[0, 32_768, 65_535]], dtype=np.uint16)
    rgb = np.asarray(to_rgb(Image.fromarray(a)))
    assert rgb[0, :, 0].tolist() == [0, 127, 255]  # PIL's own convert gives 255 everywhere


def test_16_bit_scan_reads_like_the_8_bit_one(tmp_path, receipt_page):
    gray = np.asarray(receipt_page.image.convert("L")).astype(np.uint16) * 257
    path = tmp_path / "scan16.png"
    Image.fromarray(gray).save(path)
    words = [w.text for w in read_document(path).pages[0].words]
    assert "TOTAL" in words and "21.80" in words


def test_keys_are_parsed_not_split_into_letters():
    assert parse_keys("total") == ["total"]
    assert parse_keys(" company , total,, company") == ["company", "total"]
    for empty in ("", " , ", []):
        with pytest.raises(DocsprintError, match="no keys"):
            parse_keys(empty)


def test_api_takes_a_key_string(tiny_checkpoint, receipt_page):
    from docsprint.io.document import Document

    out = Extractor(tiny_checkpoint).extract(Document([receipt_page], "r"), "total")
    assert list(out.fields) == ["total"]


def _corrupt(tmp_path, tiny_checkpoint, how: str):
    import shutil

    bad = tmp_path / how
    shutil.copytree(tiny_checkpoint, bad)
    weights, config, tok = bad / "model.safetensors", bad / "config.json", bad / "tokenizer.json"
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif how == "pickled":
        import pickle

        weights.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    elif how == "misshaped":
        cfg = json.loads(config.read_text())
        cfg["hidden_size"] *= 2
        config.write_text(json.dumps(cfg))
    elif how == "config":
        config.write_text("{not json")
    elif how == "tokenizer":
        tok.write_text('{"model": 12}')
    return bad


@pytest.mark.parametrize("how,message", [("truncated", "do not load as safetensors"),
                                         ("pickled", "do not load as safetensors"),
                                         ("misshaped", "do not fit its config"),
                                         ("config", "does not parse"),
                                         ("tokenizer", "tokenizer.json does not load")])
def test_broken_checkpoints_are_one_clear_error(tmp_path, tiny_checkpoint, how, message, capsys):
    bad = _corrupt(tmp_path, tiny_checkpoint, how)
    with pytest.raises(CheckpointError) as err:
        from_pretrained(bad)
    assert message in _one_line_naming(err, bad)
    page = tmp_path / "p.pdf"
    text_pdf(page, [["TOTAL 9.00"]])
    assert main(["extract", str(page), "--model", str(bad)]) == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_bad_options_without_work(tmp_path, tiny_checkpoint, capsys):
    page = text_pdf(tmp_path / "p.pdf", [["TOTAL 9.00"]])
    assert main(["extract", str(page), "--keys", "", "--model", str(tiny_checkpoint)]) == 2
    assert "no keys asked for" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["extract", str(page), "--threads", "-1"])
    assert stop.value.code == 2 and "--threads: must be at least 1" in capsys.readouterr().err
    folder = tmp_path / "outdir"
    folder.mkdir()
    assert main(["extract", str(page), "--model", str(tiny_checkpoint), "--out", str(folder)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert list(tmp_path.glob("*.tmp")) == [] and list(folder.iterdir()) == []
    assert main(["extract", str(page), "--model", str(tiny_checkpoint), "--out", str(page / "x.json")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_cli_answers_the_good_files_of_a_call_with_bad_ones(tmp_path, tiny_checkpoint, capsys):
    good = text_pdf(tmp_path / "good.pdf", [["TOTAL 9.00"]])
    strip = tmp_path / "strip.png"
    Image.new("L", (10, 100_000), 255).save(strip)
    pages = text_pdf(tmp_path / "long.pdf", [["x"]] * 5)
    out = tmp_path / "out.json"
    code = main(["extract", str(strip), str(good), str(pages), "--keys", "total", "--model", str(tiny_checkpoint),
                 "--max-pages", "3", "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{strip}: image of 10x100000 pixels is too narrow" in err
    assert f"{pages}: 5 pages is above the 3 page limit" in err
    assert [r["file"] for r in json.loads(out.read_text())] == [str(good)]


def test_explain_on_a_blank_page_says_so(tmp_path, tiny_checkpoint, capsys):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 200), "white").save(blank)
    assert main(["explain", str(blank), "--key", "total", "--model", str(tiny_checkpoint)]) == 2
    assert "no words on the page" in capsys.readouterr().err
