"""A batch job over many documents on Ray Data, resumable after a crash.

    docsprint batch scans/ invoices/*.pdf list.txt --out results/ --schema invoice

Inputs: files, folders (recursive), globs, or text files listing paths (``@list.txt`` or any
``.txt``/``.lst`` file). The pipeline: the inputs not yet done, one block per document (its
absolute path is its id); `read_documents` as Ray
tasks (one document each: a crash costs one document); `ExtractStage` as an actor pool; rows
written as Parquet files under ``OUT``: ``id, path, sha256, fields (the CLI's JSON of the
document's fields), error, ocr_seconds, model_seconds, model``.

Resume: the output is the record of what is finished. Rows stream back to the driver and
are written a few documents per file, each file atomically (tmp + rename), ids inside; a new
run reads the ids under ``OUT`` and gives Ray only the others, so running the same command
after a kill finishes the job with every input exactly once and nothing done twice. (Ray
Data 2.60 ships job checkpointing, but it needs a Write at the end of the plan and, in this
pipeline, that Write ran as one task at the very end: a kill lost everything.) A document
whose worker crashed on every retry is written by the driver as an error row
(``OUT/crashed-*.parquet``) and left out of later runs.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from docsprint.batch.stages import ROW_SCHEMA, ExtractStage, read_documents
from docsprint.errors import DocsprintError
from docsprint.io.limits import DEFAULT_LIMITS, Limits

DOCUMENT_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
LIST_SUFFIXES = {".txt", ".lst"}
COLUMNS = ["id", "path", "sha256", "fields", "error", "ocr_seconds", "model_seconds", "model"]


@dataclass
class BatchConfig:
    inputs: list[str]
    out: Path
    keys: list[str]
    mode: str = "parallel"
    list_keys: list[str] = field(default_factory=list)
    model: str | None = None
    address: str | None = None  # join this Ray cluster; None: an embedded local one
    ocr: str = "rapidocr"
    ocr_workers: int | None = None  # concurrent OCR tasks (default: one per core)
    model_workers: int = 1  # model actors
    model_threads: int = 1  # CPUs (torch threads) per model actor
    model_batch: int = 1  # documents per call of a model actor (each is its own forward passes anyway;
    # a larger batch holds rows back until it fills: the driver would see them late)
    write_batch: int = 8  # documents per output file (each written atomically)
    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    max_task_retries: int = 2  # a crashed worker's document is tried this many more times


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Every document named by ``inputs`` (files, folders searched recursively, globs, lists
    of paths), absolute, each once, in a stable order."""
    found: list[Path] = []
    for item in inputs:
        listed = item[1:] if item.startswith("@") else item
        path = Path(listed)
        if item.startswith("@") or (path.is_file() and path.suffix.lower() in LIST_SUFFIXES):
            if not path.is_file():
                raise DocsprintError(f"{listed}: no such list of paths")
            base = path.parent
            for line in path.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    p = Path(line)
                    found.append(p if p.is_absolute() else base / p)
        elif path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)
        elif path.exists():
            found.append(path)
        elif any(ch in item for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise DocsprintError(f"{item}: the pattern matches no file")
            found += [m for m in matches if m.is_file()]
        else:
            found.append(path)  # a missing file: its row will say so
    unique = list(dict.fromkeys(p.absolute() for p in found))
    if not unique:
        raise DocsprintError("no input documents (give files, folders, globs or a list of paths)")
    return unique


def _done_ids(out: Path) -> set[str]:
    """Ids of the rows already under ``out`` (Ray's output and the driver's error rows)."""
    import pyarrow.dataset as pads

    files = [p for p in out.glob("*.parquet") if not p.name.startswith((".", "_"))]
    if not files:
        return set()
    table = pads.dataset([str(p) for p in files], format="parquet").to_table(columns=["id"])
    return set(table.column("id").to_pylist())


def _write_parquet_atomic(rows: list[dict], path: Path) -> None:
    import pyarrow as pa

    from docsprint.batch.stages import ROW_SCHEMA

    table = pa.Table.from_pylist(rows, schema=ROW_SCHEMA)
    _write_table_atomic(table, path)


def _write_table_atomic(table, path: Path) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_name("." + path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def model_id(model: str | None) -> str:
    """The checkpoint's id: its folder name and a short hash of its config and weights' size."""
    import hashlib

    from docsprint.pipeline import DEFAULT_MODEL

    folder = Path(model) if model else DEFAULT_MODEL
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        f = folder / name
        if f.is_file():
            h.update(name.encode())
            h.update(f.read_bytes() if name == "config.json" else str(f.stat().st_size).encode())
    return f"{folder.name}@{h.hexdigest()[:12]}"


def run_batch(cfg: BatchConfig, progress: bool = True) -> dict:
    """Run (or resume) the job; returns counts and timings."""
    import ray
    from ray.data import DataContext

    from docsprint.models.checkpoint import checkpoint_folder
    from docsprint.models.config import ModelConfig
    from docsprint.pipeline import DEFAULT_MODEL

    t_start = time.perf_counter()
    folder = checkpoint_folder(cfg.model or DEFAULT_MODEL)  # a bad --model fails before Ray starts
    image_size = ModelConfig.load(folder / "config.json").image_size
    out = cfg.out
    if out.exists() and not out.is_dir():
        raise DocsprintError(f"{out}: is a file, not a folder for the results")
    out.mkdir(parents=True, exist_ok=True)
    paths = expand_inputs(cfg.inputs)
    for stale in out.glob(".*.parquet.tmp"):  # a file a killed run was writing: its rows are redone
        stale.unlink(missing_ok=True)
    done = _done_ids(out)
    todo = [p for p in paths if str(p) not in done]
    print(f"docsprint batch: {len(paths)} documents, {len(paths) - len(todo)} already done, {len(todo)} to do",
          file=sys.stderr)
    result = {"documents": len(paths), "already_done": len(paths) - len(todo), "done_now": 0, "crashed": 0,
              "seconds": 0.0}
    if not todo:
        return result

    import pyarrow as pa

    cpus = os.cpu_count() or 1
    started_here = not ray.is_initialized()
    if started_here and not cfg.address and sys.platform.startswith("linux"):
        import subprocess

        # the reaper outlives a killed driver and stops what Ray left (docsprint/batch/reaper.py)
        subprocess.Popen([sys.executable, "-m", "docsprint.batch.reaper", str(os.getpid())], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if started_here:
        ray.init(address=cfg.address, include_dashboard=False, log_to_driver=False,
                 # logical CPUs: every core for OCR, plus the model actors' on top. The model is
                 # about a tenth of a document's CPU time (0.16 s of 1.7 on a receipt): it
                 # shares the cores with OCR rather than holding some idle.
                 num_cpus=None if cfg.address else cpus + cfg.model_workers * cfg.model_threads,
                 ignore_reinit_error=True,
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                                           "DOCSPRINT_OCR_THREADS": "1"}})
    try:
        ctx = DataContext.get_current()
        ctx.max_errored_blocks = -1  # a document that kills its worker on every retry: counted below
        ctx.enable_progress_bars = False  # the driver prints its own: documents, rate, ETA
        # Ray Data reserves part of the CPUs for each operator; with 2 cores that held OCR to one
        # task while a core waited for the (mostly idle) model stage. Pooled: OCR takes them all.
        ctx.op_resource_reservation_enabled = False
        ocr_workers = cfg.ocr_workers or cpus  # one single-threaded OCR task per core
        limits = asdict(cfg.limits)
        # one block per document: OCR tasks run side by side, and a crash costs one document
        ds: ray.data.Dataset = ray.data.from_items([{"id": str(p), "path": str(p)} for p in todo],
                                                   override_num_blocks=len(todo))
        ds = ds.map_batches(read_documents, batch_size=1, num_cpus=1, batch_format="pyarrow",  # type: ignore[arg-type]
                            compute=ray.data.TaskPoolStrategy(size=ocr_workers), max_retries=cfg.max_task_retries,
                            fn_kwargs={"ocr": cfg.ocr, "limits": limits, "image_size": image_size})
        ds = ds.map_batches(ExtractStage, batch_size=cfg.model_batch, num_cpus=cfg.model_threads, batch_format="pyarrow",
                            compute=ray.data.ActorPoolStrategy(size=cfg.model_workers),
                            max_restarts=-1, max_task_retries=cfg.max_task_retries,
                            fn_constructor_kwargs={"model": str(folder), "keys": cfg.keys, "mode": cfg.mode,
                                                   "list_keys": cfg.list_keys, "threads": cfg.model_threads,
                                                   "model_id": model_id(cfg.model)})
        # Rows come back to the driver as they are done; each batch is one Parquet file, written
        # atomically (tmp + rename): the record of finished documents is the output itself.
        written, t0 = 0, time.perf_counter()
        stamp = int(time.time() * 1000)
        for i, batch in enumerate(ds.select_columns(COLUMNS).iter_batches(batch_size=cfg.write_batch,
                                                                              batch_format="pyarrow")):
            assert isinstance(batch, pa.Table)
            _write_table_atomic(batch.cast(ROW_SCHEMA), out / f"part-{stamp}-{i:06d}.parquet")
            written += len(batch)
            if progress:
                rate = written / (time.perf_counter() - t0)
                eta = (len(todo) - written) / rate if rate else float("inf")
                print(f"docsprint batch: {result['already_done'] + written}/{len(paths)} documents, "
                      f"{rate:.2f} docs/s, ETA {eta:.0f} s", file=sys.stderr, flush=True)
    finally:
        if started_here:
            ray.shutdown()
    missing = [p for p in todo if str(p) not in _done_ids(out)]
    if missing:  # every retry of these crashed its worker: an error row each, never tried again
        rows = [{"id": str(p), "path": str(p), "sha256": None, "fields": None,
                 "error": f"{p}: the worker crashed on this document {cfg.max_task_retries + 1} times",
                 "ocr_seconds": None, "model_seconds": None, "model": model_id(cfg.model)} for p in missing]
        _write_parquet_atomic(rows, out / f"crashed-{int(time.time() * 1000)}.parquet")
    result.update(done_now=len(todo), crashed=len(missing), seconds=time.perf_counter() - t_start)
    result["docs_per_second"] = len(todo) / result["seconds"] if result["seconds"] else 0.0
    return result

