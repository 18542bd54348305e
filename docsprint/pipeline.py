"""The main job as a library: a document in, the values of the keys asked for out.

>>> from docsprint import Extractor                          # doctest: +SKIP
>>> Extractor().extract("receipt.jpg", keys=["total"]).fields["total"].value  # doctest: +SKIP
'9.00'
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tokenizers import Tokenizer

from docsprint.data.datasets import KLEISTER_LISTS, WILDRECEIPT_LISTS
from docsprint.data.encode import Encoded, encode, key_chunks, page_pixels, tokenize_page, windows
from docsprint.decode.autoregressive import decode_autoregressive
from docsprint.decode.common import KeyValue, cut_run_ons, value_scores
from docsprint.decode.parallel import compiled_choices, decode_parallel
from docsprint.errors import DocsprintError
from docsprint.eval.confidence import calibrated, words_in
from docsprint.eval.metrics import normalize
from docsprint.eval.values import plausible
from docsprint.io.document import Document, Page
from docsprint.io.limits import DEFAULT_LIMITS, Limits
from docsprint.io.readers import read_document
from docsprint.models.checkpoint import from_pretrained
from docsprint.models.model import DocsprintModel
from docsprint.models.quantize import QUANTIZE, quantize_int8
from docsprint.train.loop import native_bf16

DEFAULT_MODEL = Path(__file__).resolve().parent / "weights" / "kie-general"
# Named sets of keys for `docsprint extract --schema`; any other keys can be asked with --keys.
SCHEMAS = {
    "receipt": ["company", "date", "address", "total"],
    "receipt-items": ["store name", "store address", "phone", "date", "time", "item", "item quantity",
                      "item price", "subtotal", "tax", "tips", "total"],
    "invoice": ["seller", "buyer", "invoice number", "invoice date", "due date", "total"],
    "contract": ["effective date", "jurisdiction", "party", "term"],
}
# Keys whose values are lists (one item per line item or party) when asked through a schema.
LIST_KEYS = WILDRECEIPT_LISTS | KLEISTER_LISTS
MODES = ("parallel", "autoregressive")
# auto: parallel decoding in bf16 where the hardware multiplies it natively (AMX or AVX512-BF16
# CPUs, CUDA), autoregressive decoding in fp32 (its one-token steps are slower in bf16 on CPU:
# 0.65 -> 1.04 s per WildReceipt receipt), each mode at its fastest; fp32 or bf16: both modes.
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class Extraction:
    """Answers for one document, with the time spent in OCR and in the model."""

    source: str
    fields: dict[str, KeyValue]
    ocr_seconds: float = 0.0
    model_seconds: float = 0.0
    mode: str = "parallel"
    windows: int = 1
    input_tokens: int = 0  # image patches + document + key names, summed over windows
    slot_tokens: int = 0  # [MASK] value slots added to the input (parallel mode)
    keys: list[str] = field(default_factory=list)  # as asked
    page_numbers: dict[int, int] = field(default_factory=dict, repr=False)  # id(Page) -> 0-based page

    @property
    def pages(self) -> int:
        return len(self.page_numbers)

    def to_dict(self) -> dict:
        return {
            "file": self.source,
            "mode": self.mode,
            "fields": {k: v.to_dict() for k, v in self.fields.items()},
            "pages": self.pages,
            "ocr_seconds": round(self.ocr_seconds, 4),
            "model_seconds": round(self.model_seconds, 4),
        }


# Pieces of context an answer needs on both sides in its window to be preferred (see `merge`);
# with windows of 500 and a stride of 250, every piece has a window that gives it 125.
MIN_CONTEXT = 100


def merge(candidates: list[KeyValue], is_list: bool = False, min_confidence: float = 0.5,
          calibration: dict | None = None) -> KeyValue:
    """Across windows and pages: the most confident non-null answer that can be one
    (`plausible`: a date for a date key, a digit for an amount key), else the most confident
    non-null one, else the surest null. Answers read with at least ``MIN_CONTEXT`` pieces of
    their window on both sides come first (a window cut just before a value has lost its
    label, one cut just after it the rest of the value): where windows overlap, the one that
    saw the value in the middle decides, as in the SQuAD readers' "max context" rule.

    A list key (parties of a contract, line items) takes the union of the items of every
    window that answers it with at least ``min_confidence`` (the most confident always).
    """
    found = [c for c in candidates if c.value is not None]
    found = [c for c in found if c.context >= MIN_CONTEXT] or found  # read with its context
    typed = [c for c in found if isinstance(c.value, str) and plausible(c.key, c.value)]
    best = max(typed or found or candidates, key=lambda c: c.confidence)
    if best.value is None and calibration:
        return answer_over_null(best, candidates, calibration)
    if not is_list or len(found) < 2:
        return best
    items: list[str] = []
    seen: set[str] = set()
    boxes = []
    for c in sorted(found, key=lambda c: -c.confidence):
        if c is not best and c.confidence < min_confidence:
            continue
        for item in c.value if isinstance(c.value, list) else [c.value]:
            if item is not None and normalize(item) not in seen:
                seen.add(normalize(item))
                items.append(item)
        boxes += c.boxes
    return KeyValue(best.key, items, best.confidence, boxes, all(c.complete for c in found), page=best.page)


def answer_over_null(null: KeyValue, candidates: list[KeyValue], calibration: dict) -> KeyValue:
    """A key every window answers null: the windows' best runs for it (`KeyValue.alternative`),
    the surest of them (read with its context first) answered instead where the checkpoint's
    calibration finds it likelier right than the null. The model says null too often out of
    its domain, and the calibration knows how often a null of each confidence is right: v13 on
    its run's dev documents, % of fields right: realworld-dev 67.99 -> 68.99, FUNSD 41.30 ->
    44.57, SROIE 86.89 -> 87.30, Kleister-NDA 57.5 both, WildReceipt 55.56 -> 54.94, synth
    94.07 -> 92.89 (pages made to leave keys out). Demanding a margin of 0.1 or 0.2 over the
    null halved the gains and the losses; each window deciding alone (before the merge) cost
    Kleister-NDA 7.5 points, its windows without the value answering."""
    alts = [c.alternative for c in candidates if c.alternative is not None and c.alternative.value is not None]
    alts = [a for a in alts if a.context >= MIN_CONTEXT] or alts
    if not alts:
        return null
    p = {id(a): calibrated(a.confidence, True, calibration, words_in(a.value)) for a in alts}
    alt = max(alts, key=lambda a: p[id(a)])
    return alt if p[id(alt)] > calibrated(null.confidence, False, calibration) else null


def length_batches(lengths: list[int], size: int, waste: float = 0.1) -> list[list[int]]:
    """Indices of windows of these lengths grouped into forward passes of at most ``size``
    windows, shortest first, a pass closed before its padding would pass ``waste`` of its
    positions. A padded batch pays for its padding and for the attention mask it then needs:
    on a 2-core CPU a FUNSD form's two key chunks (885 and 606 positions) in one pass take
    longer than one after the other. Against passes of ``size`` windows in their order, each
    document's fastest of four turns: FUNSD test 0.276 -> 0.245 s a form, Kleister-NDA dev
    1.55 -> 1.38 s a contract, the same answers. Windows of one length still share a pass
    (where a GPU gains from it).

    >>> length_batches([500, 500, 120, 500], 8)
    [[2], [0, 1, 3]]
    """
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        group = batches[-1] if batches else []
        if group and len(group) < size and lengths[i] * (len(group) + 1) <= (1 + waste) * (sum(lengths[j] for j in group) + lengths[i]):
            group.append(i)
        else:
            batches.append([i])
    return batches


class Extractor:
    """Loads a checkpoint once; ``extract`` runs on documents, paths or pages."""

    def __init__(self, model: str | Path | None = None, device: str = "cpu", ocr: str = "rapidocr",
                 max_doc_tokens: int = 500, stride: int = 250, precision: str = "auto", batch_size: int = 8,
                 quantize: str | None = None, compile: bool = False,
                 loaded: tuple[DocsprintModel, Tokenizer] | None = None, min_confidence: float | None = None,
                 calibrate: bool = True, limits: Limits = DEFAULT_LIMITS):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if min_confidence is not None and not 0 <= min_confidence <= 1:
            raise ValueError(f"min_confidence must be between 0 and 1, got {min_confidence}")
        if quantize is not None and quantize not in QUANTIZE:
            raise ValueError(f"quantize must be one of {QUANTIZE}, got {quantize!r}")
        if quantize and (precision == "bf16" or device != "cpu"):
            raise ValueError("--quantize int8 runs on CPU from fp32 weights (not with bf16)")
        if quantize and compile:
            raise ValueError("--compile runs fp32 or bf16 weights, not --quantize int8 ones")
        self.model, self.tok = loaded or from_pretrained(model or DEFAULT_MODEL, device)
        if quantize == "int8":
            self.model = quantize_int8(self.model, inplace=True)
        # bf16: the weights themselves are cast once (AMX runs bfloat16 matrix products on
        # recent x86 CPUs). Autocast would re-cast every weight at every autoregressive step.
        # auto keeps the fp32 model for autoregressive decoding and a bf16 copy for parallel.
        if precision == "bf16":
            self.model = self.model.to(torch.bfloat16)
        fast = precision == "auto" and quantize is None and native_bf16(torch.device(device))
        self.parallel_model = copy.deepcopy(self.model).to(torch.bfloat16) if fast else self.model
        self.parallel_model.cfg = self.model.cfg  # one config (calibration, end_bonus) for both
        plain = quantize or ("bf16" if precision == "bf16" else "fp32")
        self.precisions = {"parallel": "bf16" if fast else plain, "autoregressive": plain}
        self.precision = precision if precision == "auto" else plain
        self.ocr = ocr
        self.limits = limits  # pages, pixels, words and reading time per document (docsprint.io.limits)
        self.max_doc_tokens, self.stride = max_doc_tokens, stride
        self.batch_size = batch_size  # windows (and key chunks) per parallel forward pass
        # compile: parallel decoding runs through torch.compile; autoregressive stays eager.
        self.compiled = compile
        self.choose = compiled_choices() if compile else value_scores
        self._graphs_ready = not compile
        self.reasked = 0  # keys asked again with more slots (their value had not ended)
        # Confidence: calibrated when the checkpoint carries a calibration (and calibrate=True);
        # answers below min_confidence become null, the candidate kept in `rejected`.
        self.calibrate = calibrate
        self.min_confidence = min_confidence

    @classmethod
    def of(cls, model: DocsprintModel, tok: Tokenizer, max_doc_tokens: int = 500, stride: int = 250) -> Extractor:
        """An Extractor around a model already in memory (a training run's dev evaluation): fp32,
        eager, nothing loaded or converted."""
        return cls(loaded=(model, tok), max_doc_tokens=max_doc_tokens, stride=stride, precision="fp32")

    def read(self, document: Document | str | Path) -> tuple[Document, float]:
        """The document read from its file (PDF text layer, or OCR), and the seconds it took."""
        if isinstance(document, Document):
            return document, 0.0
        t0 = time.perf_counter()
        doc = read_document(document, ocr=self.ocr, limits=self.limits)
        return doc, time.perf_counter() - t0

    def prepare(self, document: Document | str | Path, keys: list[str] | str,
                mode: str = "parallel") -> tuple[Extraction, list[tuple[Encoded, Page]]]:
        """Read the document (OCR if needed) and encode every window of every page, each with
        every chunk of keys that fits one prompt: the model's work, not yet done."""
        if mode not in MODES:
            raise DocsprintError(f"mode must be one of {MODES}, got {mode!r}")
        keys = parse_keys(keys)
        document, ocr_seconds = self.read(document)
        cfg = self.model.cfg
        out = Extraction(document.source, {}, ocr_seconds, mode=mode, windows=0, keys=keys)
        work: list[tuple[Encoded, Page]] = []
        for number, page in enumerate(document.pages):
            out.page_numbers[id(page)] = number
            pixels = page_pixels(page.get_image(), cfg)
            for window in windows(tokenize_page(self.tok, page), self.max_doc_tokens, self.stride):
                out.windows += 1
                for chunk in key_chunks(self.tok, cfg, keys):
                    enc = encode(self.tok, cfg, window, chunk, mode, pixels=pixels)
                    work.append((enc, page))
                    out.slot_tokens += len(enc.value_pos)
                    out.input_tokens += (len(enc.ids) - len(enc.value_pos)
                                         + (cfg.num_patches if pixels is not None else 0))
        return out, work

    def decode(self, work: list[tuple[Encoded, Page]], mode: str,
               list_keys: frozenset[str] = frozenset()) -> list[KeyValue]:
        """Every answer of every prepared window, in order (window by window, key by key).

        No value is cut by its slot budget: a key whose value filled every slot without an
        END is asked again, alone in its prompt, with twice the slots (up to ``max_slots``),
        until it ends. Most documents need no second pass; a 4-digit year after a 6-slot
        budget does.
        """
        answers = self._decode_once(work, mode, list_keys)
        asked = [(enc, page, k) for enc, page in work for k in range(len(enc.keys))]
        cfg = self.model.cfg
        while again := [i for i, a in enumerate(answers) if not a.complete and asked[i][0].budget[asked[i][2]] < cfg.max_slots]:
            more = []
            for i in again:
                enc, page, k = asked[i]
                assert enc.doc is not None  # prepared windows always carry their pieces
                slots = min(2 * enc.budget[k], cfg.max_slots)
                more.append((encode(self.tok, cfg, enc.doc, [enc.keys[k]], mode, pixels=enc.pixels, slots=[slots]), page))
            for i, item, answer in zip(again, more, self._decode_once(more, mode, list_keys), strict=True):
                answers[i], asked[i] = answer, (item[0], item[1], 0)
            self.reasked += len(again)
        return answers

    def _decode_once(self, work: list[tuple[Encoded, Page]], mode: str,
                     list_keys: frozenset[str]) -> list[KeyValue]:
        """One pass over the prepared windows (parallel: ``batch_size`` windows a forward pass)."""
        answers: list[KeyValue] = []
        if mode == "parallel":
            if not self._graphs_ready and work:
                self.compile_graphs(work[0])
            rows: list[list[KeyValue]] = [[] for _ in work]
            for group in length_batches([len(enc.ids) for enc, _ in work], self.batch_size):
                part = [work[i] for i in group]
                for i, row in zip(group, decode_parallel(self.parallel_model, self.tok, [e for e, _ in part],
                                                         [p for _, p in part], list_keys, self.choose), strict=True):
                    rows[i] = row
            answers = [a for row in rows for a in row]
        else:
            for enc, page in work:
                answers += decode_autoregressive(self.model, self.tok, enc, page, list_keys)
        return answers

    def compile_graphs(self, item: tuple[Encoded, Page]) -> None:
        """With ``compile=True``: compile both graphs of parallel decoding (a batch of one
        window, a batch of several) on one prepared window, so that no later document waits
        for a compilation. The first parallel ``decode`` calls it (it adds to the first
        document's time, about a minute on 2 cores)."""
        if self.compiled:
            enc, page = item
            for n in (1, 2):
                decode_parallel(self.parallel_model, self.tok, [enc] * n, [page] * n, choose=self.choose)
        self._graphs_ready = True

    def extract(self, document: Document | str | Path, keys: list[str] | str, mode: str = "parallel",
                list_keys: frozenset[str] = frozenset()) -> Extraction:
        """``keys``: a list of keys, or one string of comma-separated keys (``"company, total"``)."""
        out, work = self.prepare(document, keys, mode)
        t0 = time.perf_counter()
        answers = self.decode(work, mode, list_keys)
        out.model_seconds = time.perf_counter() - t0
        return self.gather(out, work, answers, list_keys)

    def gather(self, out: Extraction, work: list[tuple[Encoded, Page]], answers: list[KeyValue],
               list_keys: frozenset[str] = frozenset(), min_confidence: float | None = None) -> Extraction:
        """One document's answers (window by window, key by key, as `decode` returns them)
        merged per key, calibrated and thresholded into ``out.fields``. Each answer's page is
        noted (``KeyValue.page``) before merging, so boxes can be drawn on the right page."""
        pages = [page for enc, page in work for _ in enc.keys]
        per_key: dict[str, list[KeyValue]] = {k: [] for k in out.keys}
        for a, page in zip(answers, pages, strict=True):
            a.page = out.page_numbers.get(id(page))
            if a.alternative is not None:
                a.alternative.page = a.page
            per_key[a.key].append(a)
        table = self.model.cfg.calibration
        merged = cut_run_ons({k: merge(v, k in list_keys, calibration=table) for k, v in per_key.items()}, list_keys)
        out.fields = {k: self.finish(kv, min_confidence) for k, kv in merged.items()}
        return out

    def finish(self, kv: KeyValue, min_confidence: float | None = None) -> KeyValue:
        """Calibrate a merged answer's confidence, then apply ``min_confidence`` (this call's,
        else the Extractor's)."""
        table = self.model.cfg.calibration
        if self.calibrate and table:
            kv.confidence = calibrated(kv.confidence, kv.value is not None, table, words_in(kv.value))
        floor = self.min_confidence if min_confidence is None else min_confidence
        if floor is not None and kv.value is not None and kv.confidence < floor:
            kv.rejected = {"value": kv.value, "confidence": round(kv.confidence, 4)}
            kv.value, kv.boxes = None, []
        return kv


def parse_keys(keys: list[str] | str) -> list[str]:
    """Keys as asked: a list, or one comma-separated string; blanks dropped, order and
    first occurrence kept. No keys at all is an error, never a silent default.

    >>> parse_keys("company, total,,total")
    ['company', 'total']
    """
    items = keys.split(",") if isinstance(keys, str) else list(keys)
    if not all(isinstance(k, str) for k in items):
        raise DocsprintError(f"keys must be strings, got {keys!r}")
    out = list(dict.fromkeys(k.strip() for k in items if k.strip()))
    if not out:
        raise DocsprintError("no keys asked for (give at least one key, e.g. total)")
    return out


def set_threads(n: int | None) -> None:
    if n is not None:
        if n < 1:
            raise DocsprintError(f"threads must be at least 1, got {n}")
        torch.set_num_threads(n)
