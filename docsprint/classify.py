"""Classify document files with the anytime early-exit classifier.

    >>> clf = DocumentClassifier("runs/classify-tobacco/final")
    >>> clf.classify("letter.png")
    {'file': 'letter.png', 'label': 'Letter', 'confidence': 0.97, 'exit': '2', 'layers_run': 2, ...}

The model is loaded once; each file is read (image OCR or PDF text layer), its first page
encoded, and classified with the chosen exit policy (default: the checkpoint's recommended
one). ``model_ms`` is the model's own time, without reading and OCR.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from docsprint.data.classify import collate_pages, encode_page
from docsprint.exits.anytime import classify_batch
from docsprint.exits.policies import resolve_policy
from docsprint.io.document import Document
from docsprint.io.limits import DEFAULT_LIMITS, Limits
from docsprint.io.readers import read_document
from docsprint.models.checkpoint import load_classifier

# Shipped: receipts / forms / contracts / invoices / letters (configs/classify-doctypes.yaml).
DEFAULT_CLASSIFIER = Path(__file__).resolve().parent / "weights" / "classify-doctypes"


class DocumentClassifier:
    def __init__(self, model: str | Path | None = None, ocr: str = "rapidocr", policy: str | None = None,
                 limits: Limits = DEFAULT_LIMITS, **policy_options):
        self.model, self.tok = load_classifier(model or DEFAULT_CLASSIFIER)
        self.ocr, self.limits = ocr, limits
        self.policy, self.calibrated = resolve_policy(self.model.cfg.policies, policy, **policy_options)

    @torch.inference_mode()
    def classify(self, path: str | Path | Document) -> dict:
        """The type of the document (a file, or one already read), from its first page."""
        t0 = time.perf_counter()
        doc = path if isinstance(path, Document) else read_document(path, ocr=self.ocr, limits=self.limits)
        ocr_seconds = time.perf_counter() - t0
        return self.classify_read(doc, ocr_seconds)

    @torch.inference_mode()
    def classify_read(self, doc: Document, ocr_seconds: float = 0.0) -> dict:
        batch = collate_pages([encode_page(self.tok, self.model.cfg, doc.pages[0])])
        t0 = time.perf_counter()
        r = classify_batch(self.model, batch, self.policy, self.calibrated)[0]
        ms = (time.perf_counter() - t0) * 1000
        return {
            "file": doc.source,
            "label": self.model.cfg.labels[r.label],
            "confidence": round(r.confidence, 4),
            "exit": r.exit_name,
            "layers_run": r.layers_run,
            "model_ms": round(ms, 2),
            "ocr_seconds": round(ocr_seconds, 4),
            "policy": {**self.policy.describe(), "calibrated": self.calibrated},
        }
