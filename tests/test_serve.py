"""`docsprint serve`, started for real on a loopback port and spoken to over HTTP."""

from __future__ import annotations

import io
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from docsprint.pipeline import SCHEMAS, Extractor
from tests.pdfs import text_pdf
from tests.serving import ROOT, Server

RECEIPT = ROOT / "samples" / "receipt.jpg"


@pytest.fixture(scope="module")
def server():
    with Server("--max-batch", "8", "--max-wait-ms", "20") as srv:
        yield srv


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> list[Path]:
    """Born-digital pages (no OCR: the model is the work) with different totals and dates."""
    root = tmp_path_factory.mktemp("pages")
    out = []
    for i in range(6):
        lines = [f"SHOP NUMBER {i} SDN BHD", f"NO. {10 + i}, JALAN MERANTI, SKUDAI", f"DATE: 0{i + 1}/03/2018",
                 "ITEM A 1 x 4.50", f"TOTAL {12 + i}.{10 * i:02d}", "THANK YOU"]
        out.append(text_pdf(root / f"page{i}.pdf", [lines], width=400, height=260))
    return out


def post(url: str, files: list[Path | tuple[str, bytes]], **data) -> httpx.Response:
    parts = []
    for f in files:
        name, content = (f.name, f.read_bytes()) if isinstance(f, Path) else f
        parts.append(("file", (name, content)))
    return httpx.post(url, files=parts, data=data, timeout=120)


def fields(result: dict) -> dict:
    return {k: v["value"] for k, v in result["fields"].items()}


def test_health_ready_docs(server):
    assert httpx.get(server.url + "/healthz").json() == {"status": "alive"}
    assert httpx.get(server.url + "/readyz").json()["status"] == "ready"
    spec = httpx.get(server.url + "/openapi.json").json()
    assert {"/v1/extract", "/v1/classify", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/v1/extract"]["post"]["requestBody"]["content"]
    assert httpx.get(server.url + "/docs").status_code == 200


def test_extract_answers_like_the_cli(server):
    r = post(server.url + "/v1/extract", [RECEIPT], schema="receipt")
    assert r.status_code == 200
    [result] = r.json()
    local = Extractor().extract(RECEIPT, SCHEMAS["receipt"]).to_dict()
    assert result["file"] == "receipt.jpg"
    assert fields(result) == fields(local)
    assert fields(result)["total"] == "21.80"
    for key, f in result["fields"].items():
        assert f["confidence"] == pytest.approx(local["fields"][key]["confidence"], abs=2e-3)
        assert f["boxes"] == local["fields"][key]["boxes"] and f["page"] == 0
    assert result["ocr_seconds"] > 0 and result["model_seconds"] > 0


def test_concurrent_requests_are_batched_and_get_the_cli_answers(server, pages):
    local = Extractor()
    expected = {p.name: fields(local.extract(p, ["date", "total"]).to_dict()) for p in pages}
    answers: dict[str, dict] = {}

    def ask(p: Path) -> None:
        r = post(server.url + "/v1/extract", [p], keys="date, total")
        assert r.status_code == 200, r.text
        answers[p.name] = fields(r.json()[0])

    threads = [threading.Thread(target=ask, args=(p,)) for p in pages * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == expected
    metrics = httpx.get(server.url + "/metrics").text
    count = float(next(line.split()[-1] for line in metrics.splitlines()
                       if line.startswith("docsprint_batch_documents_count")))
    total = float(next(line.split()[-1] for line in metrics.splitlines()
                       if line.startswith("docsprint_batch_documents_sum")))
    assert total / count > 1  # some model runs held windows of several requests


def test_a_key_string_is_one_key_and_lists_work(server, pages):
    r = post(server.url + "/v1/extract", [pages[0]], keys="total")
    assert list(r.json()[0]["fields"]) == ["total"]  # not five one-letter keys
    r = post(server.url + "/v1/extract", [pages[0]], keys="item, total", lists="item")
    assert r.status_code == 200 and set(r.json()[0]["fields"]) == {"item", "total"}


def test_bad_files_among_good_ones_and_all_bad(server, pages):
    strip = io.BytesIO()
    Image.new("L", (10, 100_000), 255).save(strip, "PNG")
    bad = [("strip.png", strip.getvalue()), ("notes.txt", b"hello, not a document")]
    r = post(server.url + "/v1/extract", [bad[0], pages[1], bad[1]], keys="total")
    assert r.status_code == 200
    a, b, c = r.json()
    assert a == {"file": "strip.png", "error": "strip.png: image of 10x100000 pixels is too narrow to be a page "
                                              "(sides more than 50:1)"}
    assert fields(b) == {"total": "13.10"}
    assert c["file"] == "notes.txt" and c["error"].startswith("notes.txt: not an image or PDF")
    r = post(server.url + "/v1/extract", bad, keys="total")
    assert r.status_code == 422
    assert "strip.png" in r.json()["error"] and len(r.json()["results"]) == 2
    assert "/tmp" not in r.text  # the service's own paths never leak


@pytest.mark.parametrize("data,message", [
    ({"keys": ""}, "no keys asked for"),
    ({"keys": "total", "schema": "receipt"}, "not both"),
    ({"schema": "passport"}, "unknown schema"),
    ({"keys": "total", "mode": "fast"}, "mode must be one of"),
    ({"keys": "total", "min_confidence": "2"}, "between 0 and 1"),
    ({"keys": "total", "min_confidence": "high"}, "must be a number"),
])
def test_bad_parameters_are_422(server, pages, data, message):
    r = post(server.url + "/v1/extract", [pages[0]], **data)
    assert r.status_code == 422 and message in r.json()["error"]


def test_no_file_is_422(server):
    r = httpx.post(server.url + "/v1/extract", data={"keys": "total"}, timeout=30)
    assert r.status_code == 422
    r = httpx.post(server.url + "/v1/extract", content=b"garbage", timeout=30,
                   headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 422


def test_min_confidence_turns_answers_null(server, pages):
    r = post(server.url + "/v1/extract", [pages[0]], keys="total", min_confidence="1")
    f = r.json()[0]["fields"]["total"]
    assert f["value"] is None and f["rejected"]["value"] == "12.00"


def test_classify_with_the_shipped_classifier(server):
    r = post(server.url + "/v1/classify", [RECEIPT])
    assert r.status_code == 200
    [result] = r.json()
    assert result["file"] == "receipt.jpg" and result["label"] == "receipt"
    assert 0 <= result["confidence"] <= 1 and result["exit"]


def test_pages_option_sends_the_page_pictures(server, pages):
    r = post(server.url + "/v1/extract", [pages[2]], keys="total", pages="1")
    [pic] = r.json()[0]["page_images"]
    assert pic["width"] == 400 and pic["height"] == 260 and pic["image"].startswith("data:image/jpeg;base64,")


def test_metrics_are_prometheus_text(server, pages):
    post(server.url + "/v1/extract", [pages[0]], keys="total")
    text = httpx.get(server.url + "/metrics").text
    assert 'docsprint_requests_total{endpoint="/v1/extract",status="200"}' in text
    for name in ("docsprint_request_seconds_bucket", "docsprint_ocr_seconds_bucket", "docsprint_model_seconds_bucket",
                 "docsprint_batch_windows_bucket", "docsprint_requests_in_flight", "docsprint_model_queue"):
        assert name in text


def test_limits_status_codes_and_the_service_keeps_serving(pages):
    """413 (upload), 504 (time), 503 (queue full, with Retry-After), then a good answer."""
    with Server("--max-upload-mb", "0.5", "--timeout-s", "0.5", "--max-queue", "1", "--ocr-workers", "1") as srv:
        big = ("big.png", b"\x89PNG" + b"0" * 600_000)
        r = post(srv.url + "/v1/extract", [big], keys="total")
        assert r.status_code == 413 and "0.5 MB limit" in r.json()["error"]
        # chunked, without Content-Length: counted as it arrives
        def chunks():
            yield b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n"
            for _ in range(12):
                yield b"0" * 65536
        r = httpx.post(srv.url + "/v1/extract", content=chunks(), timeout=30,
                       headers={"content-type": "multipart/form-data; boundary=x"})
        assert r.status_code == 413
        slow = [RECEIPT] * 4  # OCR of four photos: well past half a second
        r = post(srv.url + "/v1/extract", slow, keys="total")
        assert r.status_code == 504 and "0.5 s limit" in r.json()["error"]
        statuses: list[httpx.Response] = []
        threads = [threading.Thread(target=lambda: statuses.append(post(srv.url + "/v1/extract", slow, keys="total")))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in statuses)
        assert set(codes) <= {503, 504} and 503 in codes
        busy = next(r for r in statuses if r.status_code == 503)
        assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]
        time.sleep(3)  # the timed-out OCR finishes in the background
        r = post(srv.url + "/v1/extract", [pages[0]], keys="total")
        assert r.status_code == 200 and fields(r.json()[0]) == {"total": "12.00"}


def test_sigterm_finishes_the_requests_in_flight(pages):
    local = Extractor()
    expected = sorted(str(fields(local.extract(p, ["total"]).to_dict())["total"]) for p in pages[:4])
    with Server("--max-wait-ms", "5") as srv:
        results: list[httpx.Response] = []
        threads = [threading.Thread(target=lambda p=p: results.append(post(srv.url + "/v1/extract", [RECEIPT, p],
                                                                            keys="total")))
                   for p in pages[:4]]
        for t in threads:
            t.start()
        time.sleep(0.8)  # accepted, OCR under way
        srv.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join()
        assert srv.proc.wait(60) == 0
        assert [r.status_code for r in results] == [200] * 4
        assert sorted(str(fields(r.json()[1])["total"]) for r in results) == expected
        assert all(fields(r.json()[0])["total"] == "21.80" for r in results)
        with pytest.raises(httpx.TransportError):
            httpx.get(srv.url + "/healthz", timeout=2)


def test_bench_serve_pieces(server, receipt_page, tmp_path):
    """`docsprint bench serve`'s inputs, load loops and report section, on a short run."""
    import asyncio

    from docsprint.eval.bench_serve import closed_loop, open_loop, update_benchmarks
    from docsprint.eval.bench_serve import text_layer_pdf as write_pdf
    from docsprint.io.readers import read_document

    pdf = write_pdf(receipt_page, tmp_path / "r.pdf")
    words = [w.text for w in read_document(pdf).pages[0].words]
    assert words == [w.text for w in receipt_page.words]  # the same words, now from a text layer
    run = asyncio.run(closed_loop(server.url, [pdf], 2, 2.0, "t")).summary()
    assert run["statuses"] == {"200": run["ok"]} and run["throughput"] > 0 and run["p50"] <= run["p99"]
    run = asyncio.run(open_loop(server.url, [pdf], 2.0, 1.5, "o")).summary()
    assert run["sent"] >= 1 and run["statuses"] == {"200": run["sent"]}
    report = tmp_path / "BENCHMARKS.md"
    report.write_text("# bench\n\nbody\n")
    update_benchmarks(report, "## serve v1\n")
    update_benchmarks(report, "## serve v2\n")
    text = report.read_text()
    assert text.startswith("# bench\n\nbody\n") and "serve v2" in text and "serve v1" not in text
