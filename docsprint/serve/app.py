"""The HTTP service: ``create_app(ServeConfig(...))`` -> a FastAPI app; `serve` runs it.

    POST /v1/extract   multipart: file (one or more), keys or schema, mode, min_confidence, lists
    POST /v1/classify  multipart: file (one or more)
    GET  /healthz      alive          GET /readyz   model loaded and warmed up
    GET  /metrics      Prometheus     GET /docs     OpenAPI       GET /   the web page
    GET, POST /v1/review...  with --review DIR: correct the model's answers, saved as labels
                       (docsprint/serve/review.py)

Answers are the command line's JSON: a list with one object per file, a file that cannot be
read being ``{"file": name, "error": message}``. Errors are ``{"error": message}`` with a
status: 413 upload too large, 422 bad request or no file readable, 503 queue full or not
ready (with Retry-After), 504 past the request's time limit.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from starlette.datastructures import UploadFile

from docsprint.errors import DocsprintError
from docsprint.io.document import Document, Page, Word
from docsprint.io.limits import DEFAULT_LIMITS, Limits
from docsprint.pipeline import LIST_KEYS, MODES, SCHEMAS, Extractor, parse_keys
from docsprint.serve.batcher import BatchDone, Batcher

log = logging.getLogger("docsprint.serve")
disable_created_metrics()  # no *_created series: one line per metric is what dashboards read
STATIC = Path(__file__).resolve().parent / "static"
PAGE_PREVIEW_PX = 1000  # longest side of the page pictures sent back with pages=1


@dataclass
class ServeConfig:
    model: str | None = None  # KIE checkpoint (default: the shipped one)
    classifier: str | None = None  # classifier checkpoint (default: the shipped one)
    ocr: str = "rapidocr"
    max_batch: int = 4  # windows per forward pass, across requests (BENCHMARKS.md: best on 2 cores)
    max_wait_ms: float = 5.0  # how long a batch that is not full waits for more windows
    max_queue: int = 32  # requests in the service at once (reading or waiting); more get 503
    max_upload_mb: float = 50.0  # one request's body
    max_files: int = 20  # files in one request
    timeout_s: float = 60.0  # one request, end to end; past it 504
    ocr_workers: int = 2  # documents read (rendering + OCR) at once
    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    warmup: bool = True
    review: Any = None  # a docsprint.serve.review.ReviewConfig: the review panel over a folder


class UploadTooLarge(Exception):
    pass


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("docsprint_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
                                registry=r)
        buckets = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)
        self.latency = Histogram("docsprint_request_seconds", "Request time, end to end", ["endpoint"],
                                 buckets=buckets, registry=r)
        self.ocr = Histogram("docsprint_ocr_seconds", "Reading one document (PDF text layer or OCR)",
                             buckets=buckets, registry=r)
        self.model = Histogram("docsprint_model_seconds", "One batched model run", buckets=buckets, registry=r)
        self.batch_windows = Histogram("docsprint_batch_windows", "Windows per model run",
                                       buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.batch_documents = Histogram("docsprint_batch_documents", "Documents per model run",
                                         buckets=(1, 2, 4, 8, 16, 32), registry=r)
        self.in_flight = Gauge("docsprint_requests_in_flight", "Requests in the service", registry=r)
        self.model_queue = Gauge("docsprint_model_queue", "Documents waiting for the model", registry=r)
        self.rejected = Counter("docsprint_rejected", "Requests turned away, by reason", ["reason"], registry=r)

    def batch(self, done: BatchDone) -> None:
        self.model.observe(done.seconds)
        self.batch_windows.observe(done.windows)
        self.batch_documents.observe(done.jobs)


def error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def warmup_document() -> Document:
    """A small page made in memory: the first real request should not pay for lazy set-up."""
    from PIL import Image

    words = [Word(t, (10 + 60 * i, 10, 60 + 60 * i, 30)) for i, t in enumerate("TOTAL 9.00 DATE 01/02/2024".split())]
    return Document([Page(Image.new("RGB", (320, 60), "white"), 320, 60, words)], source="warmup")


class Service:
    """What the endpoints share: the models (loaded once, in the background), the pools, the
    batcher, the admission count and the metrics."""

    def __init__(self, cfg: ServeConfig):
        self.cfg = cfg
        self.metrics = Metrics()
        self.extractor: Extractor | None = None
        self.classifier: Any = None
        self.ready = threading.Event()
        self.failed: str | None = None
        self.ocr_pool = ThreadPoolExecutor(cfg.ocr_workers, thread_name_prefix="docsprint-ocr")
        self.batcher: Batcher | None = None
        self.in_flight = 0

    def load(self) -> None:
        """Load and warm up both models (in a thread: /healthz answers meanwhile)."""
        try:
            from docsprint.classify import DocumentClassifier

            t0 = time.perf_counter()
            self.extractor = Extractor(self.cfg.model, ocr=self.cfg.ocr, limits=self.cfg.limits,
                                       batch_size=self.cfg.max_batch)
            self.classifier = DocumentClassifier(self.cfg.classifier, ocr=self.cfg.ocr, limits=self.cfg.limits)
            if self.cfg.warmup:
                doc = warmup_document()
                self.extractor.extract(doc, SCHEMAS["receipt"])
                self.classifier.classify(doc)
                # OCR engine built once, before the first request
                from docsprint.io.ocr import get_engine

                get_engine(self.cfg.ocr)(doc.pages[0].image)  # type: ignore[arg-type]
            log.info("docsprint serve: models ready in %.1f s", time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - reported by /readyz and every request
            self.failed = f"{type(e).__name__}: {e}"
            log.error("docsprint serve: could not load the models: %s", self.failed)
        finally:
            self.ready.set()

    def not_ready(self) -> JSONResponse | None:
        if self.failed:
            return error(503, f"models failed to load: {self.failed}")
        if not self.ready.is_set() or self.batcher is None:
            return error(503, "loading the models, try again shortly", {"Retry-After": "2"})
        return None


def _name(upload: UploadFile, i: int) -> str:
    """The uploaded file's base name (no folders), for messages and the answer's ``file``."""
    name = Path((upload.filename or "").replace("\\", "/")).name
    return name if name and name not in (".", "..") else f"file{i + 1}"


async def _read_form(request: Request, limit_bytes: int):
    """The multipart form, with the body counted as it arrives: past the limit it stops
    reading (a client that lies about or omits Content-Length gets the same 413)."""
    seen = 0
    receive = request.receive

    async def counted():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit_bytes:
                raise UploadTooLarge
        return message

    return await Request(request.scope, counted).form(max_files=10_000, max_fields=1_000)


def _field(form, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile):
        return None
    return str(value)


def _page_pictures(doc_pages: list[Page]) -> list[dict]:
    out: list[dict] = []
    for page in doc_pages:
        img = page.get_image()
        if img is None:
            out.append({"width": page.width, "height": page.height, "image": None})
            continue
        img = img.copy()
        img.thumbnail((PAGE_PREVIEW_PX, PAGE_PREVIEW_PX))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=80)
        out.append({"width": page.width, "height": page.height,
                    "image": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()})
    return out


EXTRACT_FORM = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "array", "items": {"type": "string", "format": "binary"},
                     "description": "one or more images (JPEG, PNG, TIFF, GIF...) or PDFs"},
            "keys": {"type": "string", "description": "comma-separated keys, e.g. company,total"},
            "schema": {"type": "string", "enum": sorted(SCHEMAS), "description": "a named set of keys (default receipt)"},
            "lists": {"type": "string", "description": "comma-separated keys whose values are lists"},
            "mode": {"type": "string", "enum": list(MODES), "default": "parallel"},
            "min_confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "pages": {"type": "boolean", "description": "also send each page's picture (for drawing boxes)"},
        }}}}},
}
CLASSIFY_FORM = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}},
}


def create_app(cfg: ServeConfig | None = None) -> FastAPI:
    cfg = cfg or ServeConfig()
    svc = Service(cfg)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=svc.load, name="docsprint-load", daemon=True).start()

        async def start_batcher() -> None:
            await asyncio.get_running_loop().run_in_executor(None, svc.ready.wait)
            if svc.extractor is not None:
                svc.batcher = Batcher(svc.extractor, cfg.max_batch, cfg.max_wait_ms, svc.metrics.batch)
                svc.batcher.start()

        starter = asyncio.get_running_loop().create_task(start_batcher())
        yield
        starter.cancel()
        if svc.batcher is not None:
            await svc.batcher.stop()
        svc.ocr_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="docsprint", version="0.1.0", lifespan=lifespan,
                  description="Key fields and document types from images and PDFs, in one forward pass.")
    app.state.service = svc

    @app.middleware("http")
    async def count(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        endpoint = getattr(route, "path", "other")
        svc.metrics.requests.labels(endpoint, str(response.status_code)).inc()
        if endpoint.startswith("/v1/"):
            svc.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)
        return response

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "alive"}

    @app.get("/readyz")
    def readyz():
        problem = svc.not_ready()
        return problem if problem is not None else {"status": "ready", "model": str(cfg.model or "default")}

    @app.get("/metrics")
    def metrics() -> Response:
        svc.metrics.in_flight.set(svc.in_flight)
        svc.metrics.model_queue.set(svc.batcher.waiting if svc.batcher else 0)
        return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/schemas")
    def schemas() -> dict:
        return {"schemas": SCHEMAS, "modes": list(MODES)}

    async def admitted(request: Request, handle) -> Response:
        """Admission (503 when full), the body limit (413), the time limit (504)."""
        problem = svc.not_ready()
        if problem is not None:
            return problem
        limit = int(cfg.max_upload_mb * 1e6)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            svc.metrics.rejected.labels("too_large").inc()
            return error(413, f"upload of {int(declared) / 1e6:.1f} MB is above the {cfg.max_upload_mb:g} MB limit")
        if svc.in_flight >= cfg.max_queue:
            svc.metrics.rejected.labels("queue_full").inc()
            return error(503, f"busy: {svc.in_flight} requests in progress (limit {cfg.max_queue})",
                         {"Retry-After": "1"})
        svc.in_flight += 1
        tmp = Path(tempfile.mkdtemp(prefix="docsprint-"))
        try:
            try:
                form = await _read_form(request, limit)
            except UploadTooLarge:
                svc.metrics.rejected.labels("too_large").inc()
                return error(413, f"upload is above the {cfg.max_upload_mb:g} MB limit")
            except Exception as e:  # noqa: BLE001 - a malformed multipart body
                return error(422, f"could not read the form: {e}")
            try:
                return await asyncio.wait_for(handle(form, tmp), cfg.timeout_s)
            except TimeoutError:
                svc.metrics.rejected.labels("timeout").inc()
                return error(504, f"request took longer than the {cfg.timeout_s:g} s limit")
        finally:
            svc.in_flight -= 1
            shutil.rmtree(tmp, ignore_errors=True)

    async def saved_files(form, tmp: Path) -> list[tuple[str, Path]] | JSONResponse:
        uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile)]
        if not uploads:
            return error(422, "no file: send one or more multipart parts named 'file'")
        if len(uploads) > cfg.max_files:
            return error(422, f"{len(uploads)} files in one request, above the limit of {cfg.max_files}")
        files = []
        for i, upload in enumerate(uploads):
            name = _name(upload, i)
            path = tmp / f"{i}" / name
            path.parent.mkdir()
            with open(path, "wb") as f:
                shutil.copyfileobj(upload.file, f)
            files.append((name, path))
        return files

    async def each_file(files: list[tuple[str, Path]], answer) -> Response:
        """Read every file (OCR pool), then ``await answer(document, ocr_seconds)``; a file
        that fails is ``{"file", "error"}`` in its place (its temporary path replaced by the
        uploaded name), and all failing is 422."""
        assert svc.extractor is not None
        ex, loop = svc.extractor, asyncio.get_running_loop()

        async def one(name: str, path: Path) -> dict:
            try:
                doc, ocr_seconds = await loop.run_in_executor(svc.ocr_pool, ex.read, path)
                doc.source = name
                svc.metrics.ocr.observe(ocr_seconds)
                return await answer(doc, ocr_seconds)
            except DocsprintError as e:
                return {"file": name, "error": str(e).replace(str(path), name)}

        results = await asyncio.gather(*(one(n, p) for n, p in files))
        if all("error" in r for r in results):
            return error(422, "no file could be read: " + "; ".join(r["error"] for r in results), results=results)
        return JSONResponse(results)

    @app.post("/v1/extract", openapi_extra=EXTRACT_FORM)
    async def extract(request: Request) -> Response:
        async def handle(form, tmp: Path) -> Response:
            try:
                keys_text, schema = _field(form, "keys"), _field(form, "schema")
                if keys_text is not None and schema is not None:
                    raise DocsprintError("give keys or schema, not both")
                if schema is not None and schema not in SCHEMAS:
                    raise DocsprintError(f"unknown schema {schema!r} (known: {', '.join(sorted(SCHEMAS))})")
                keys = parse_keys(keys_text) if keys_text is not None else SCHEMAS[schema or "receipt"]
                mode = _field(form, "mode") or "parallel"
                if mode not in MODES:
                    raise DocsprintError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
                lists_text = _field(form, "lists")
                list_keys = (frozenset(parse_keys(lists_text)) if lists_text else
                             frozenset(k for k in keys if k in LIST_KEYS) if keys_text is None else frozenset())
                floor_text = _field(form, "min_confidence")
                floor = None
                if floor_text not in (None, ""):
                    try:
                        floor = float(floor_text)
                    except ValueError:
                        raise DocsprintError(f"min_confidence must be a number, got {floor_text!r}") from None
                    if not 0 <= floor <= 1:
                        raise DocsprintError(f"min_confidence must be between 0 and 1, got {floor}")
                pictures = (_field(form, "pages") or "").lower() in ("1", "true", "yes", "on")
            except DocsprintError as e:
                return error(422, str(e))
            files = await saved_files(form, tmp)
            if isinstance(files, JSONResponse):
                return files
            assert svc.extractor is not None and svc.batcher is not None
            ex, batcher, loop = svc.extractor, svc.batcher, asyncio.get_running_loop()

            async def extract_one(doc: Document, ocr_seconds: float) -> dict:
                out, work = await loop.run_in_executor(svc.ocr_pool, ex.prepare, doc, keys, mode)
                out.ocr_seconds = ocr_seconds
                answers, out.model_seconds = await batcher.submit(work, mode, list_keys)
                result = ex.gather(out, work, answers, list_keys, floor).to_dict()
                if pictures:
                    result["page_images"] = _page_pictures(doc.pages)
                return result

            return await each_file(files, extract_one)

        return await admitted(request, handle)

    @app.post("/v1/classify", openapi_extra=CLASSIFY_FORM)
    async def classify(request: Request) -> Response:
        async def handle(form, tmp: Path) -> Response:
            files = await saved_files(form, tmp)
            if isinstance(files, JSONResponse):
                return files
            assert svc.batcher is not None
            model_thread, loop = svc.batcher.model_thread, asyncio.get_running_loop()

            async def classify_one(doc: Document, ocr_seconds: float) -> dict:
                # the classifier is small: it runs on the model thread, between batches
                return await loop.run_in_executor(model_thread, svc.classifier.classify_read, doc, ocr_seconds)

            return await each_file(files, classify_one)

        return await admitted(request, handle)

    add_review_routes(app, svc)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def add_review_routes(app: FastAPI, svc: Service) -> None:
    """The review panel's endpoints (404 when the service runs without --review)."""
    from docsprint.serve.review import Review, ReviewError

    review = Review(svc.cfg.review, svc.cfg.ocr) if svc.cfg.review is not None else None

    def off() -> JSONResponse:
        return error(404, "review mode is off (start the service with --review DIR --review-keys ...)")

    @app.get("/v1/review")
    def review_list() -> Response:
        return JSONResponse(review.listing()) if review else off()

    @app.get("/v1/review/{i}")
    async def review_doc(i: int) -> Response:
        if review is None:
            return off()
        problem = svc.not_ready()
        if problem is not None:
            return problem
        assert svc.extractor is not None and svc.batcher is not None
        ex, batcher, loop = svc.extractor, svc.batcher, asyncio.get_running_loop()
        try:
            review.check(i)
            doc = await loop.run_in_executor(svc.ocr_pool, review.document, i)
            out, work = await loop.run_in_executor(svc.ocr_pool, ex.prepare, doc, review.cfg.keys, "parallel")
            answers, out.model_seconds = await batcher.submit(work, "parallel", frozenset())
            fields = ex.gather(out, work, answers, frozenset(), None).to_dict()["fields"]
            return JSONResponse(review.view(i, fields))
        except DocsprintError as e:
            return error(404 if isinstance(e, ReviewError) else 422, str(e))

    @app.get("/v1/review/{i}/page/{p}")
    def review_page(i: int, p: int) -> Response:
        if review is None:
            return off()
        try:
            return FileResponse(review.page_image(i, p), media_type="image/jpeg")
        except DocsprintError as e:
            return error(404, str(e))

    @app.post("/v1/review/{i}")
    async def review_save(i: int, request: Request) -> Response:
        if review is None:
            return off()
        try:
            body = await request.json()
        except ValueError:
            return error(422, "expected a JSON body {\"fields\": {key: {value, page, words}}}")
        try:
            review.check(i)
            fields = body.get("fields") if isinstance(body, dict) else None
            saved = await asyncio.get_running_loop().run_in_executor(svc.ocr_pool, review.save, i, fields)
            return JSONResponse(saved)
        except ReviewError as e:
            return error(404 if "no document" in str(e) else 422, str(e))
        except DocsprintError as e:
            return error(422, str(e))


def serve(cfg: ServeConfig, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run the service until SIGINT/SIGTERM: then it stops accepting, finishes the requests
    in flight (up to ``timeout_s``) and returns."""
    import signal

    import uvicorn

    # uvicorn catches SIGTERM, drains, then raises it again with the handler it found in place:
    # a no-op one, so a drained shutdown exits 0 (what process managers read as a clean stop).
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(create_app(cfg), host=host, port=port, log_level=log_level, timeout_graceful_shutdown=max(1, round(cfg.timeout_s)),
                access_log=False)
