"""The command line. Thin: it parses arguments and calls the library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from docsprint.data.datasets import DATASETS
from docsprint.data.labels import EXPORTS, FORMATS
from docsprint.data.synth import KINDS, MIXES
from docsprint.models.quantize import QUANTIZE
from docsprint.pipeline import LIST_KEYS, MODES, PRECISIONS, SCHEMAS


def _keys(args: argparse.Namespace) -> list[str]:
    if args.keys is not None:  # --keys "" is an error, not the default schema
        from docsprint.pipeline import parse_keys

        return parse_keys(args.keys)
    return SCHEMAS[args.schema]


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1 (--threads 0 or -1 is a usage error)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return x


def add_limit_arguments(p: argparse.ArgumentParser) -> None:
    """The checks before work (docsprint.io.limits), the same flags for every command that reads files."""
    from docsprint.io.limits import DEFAULT_LIMITS as d

    g = p.add_argument_group("limits per document (a document over one is an error; the others go on)")
    g.add_argument("--max-pages", type=positive_int, help=f"pages or image frames (default {d.max_pages})")
    g.add_argument("--max-megapixels", type=positive_float, help=f"one page image (default {d.max_megapixels:g})")
    g.add_argument("--max-total-megapixels", type=positive_float,
                   help=f"all pages together (default {d.max_total_megapixels:g})")
    g.add_argument("--max-words", type=positive_int, help=f"words on one page (default {d.max_words})")
    g.add_argument("--max-seconds", type=positive_float,
                   help=f"reading one document, rendering and OCR (default {d.max_seconds:g})")
    g.add_argument("--max-file-mb", type=positive_float, help=f"file size (default {d.max_file_mb:g})")


def limits_from(args: argparse.Namespace):
    from docsprint.io.limits import DEFAULT_LIMITS

    names = ("max_pages", "max_megapixels", "max_total_megapixels", "max_words", "max_seconds", "max_file_mb")
    return DEFAULT_LIMITS.with_options(**{n: getattr(args, n, None) for n in names})


def _list_keys(args: argparse.Namespace, keys: list[str]) -> frozenset[str]:
    if args.lists:
        return frozenset(k.strip() for k in args.lists.split(",") if k.strip())
    return frozenset(k for k in keys if k in LIST_KEYS) if not args.keys else frozenset()


def _check_compile(args: argparse.Namespace) -> None:
    """--compile speeds up parallel decoding only: with the autoregressive decoder it would do
    nothing, and with --mode both the speedup would set a compiled decoder against an eager one."""
    if args.compile and args.mode != "parallel":
        raise ValueError(f"--compile applies to --mode parallel only, not {args.mode}")


def _compile_notice(args: argparse.Namespace) -> None:
    if args.compile:
        print("docsprint: compiling parallel decoding first (about a minute on 2 cores, once)", file=sys.stderr)


def _check_out(args: argparse.Namespace) -> None:
    """--out is checked before any work: a directory or a path under a file fails at once."""
    if args.out:
        from docsprint.eval.kie import check_output_path

        check_output_path(args.out)


def cmd_extract(args: argparse.Namespace) -> int:
    from docsprint.errors import DocsprintError
    from docsprint.pipeline import Extractor, set_threads

    set_threads(args.threads)
    keys = _keys(args)
    _check_compile(args)
    _check_out(args)
    extractor = Extractor(args.model, ocr=args.ocr, precision=args.precision, quantize=args.quantize,
                          compile=args.compile, min_confidence=args.min_confidence, limits=limits_from(args))
    _compile_notice(args)
    results, failed = [], 0
    for path in args.files:
        try:
            results.append(extractor.extract(path, keys, args.mode, _list_keys(args, keys)).to_dict())
        except DocsprintError as e:
            print(f"docsprint: error: {e}", file=sys.stderr)
            failed += 1
    text = json.dumps(results, indent=2, ensure_ascii=False)
    if args.out:
        from docsprint.eval.kie import write_json

        write_json(results, args.out)
    else:
        print(text)
    return 1 if failed else 0


def _policy_options(args: argparse.Namespace) -> dict:
    return {"threshold": args.threshold, "patience": args.patience, "max_depth": args.max_depth,
            "deadline_ms": args.budget_ms, "calibrated": False if args.uncalibrated else None}


def cmd_classify(args: argparse.Namespace) -> int:
    from docsprint.classify import DocumentClassifier
    from docsprint.errors import DocsprintError
    from docsprint.pipeline import set_threads

    set_threads(args.threads)
    _check_out(args)
    clf = DocumentClassifier(args.model, ocr=args.ocr, policy=args.policy, limits=limits_from(args),
                             **_policy_options(args))
    results, failed = [], 0
    for path in args.files:
        try:
            results.append(clf.classify(path))
        except DocsprintError as e:
            print(f"docsprint: error: {e}", file=sys.stderr)
            failed += 1
    if args.out:
        from docsprint.eval.kie import write_json

        write_json(results, args.out)
    else:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    return 1 if failed else 0


def cmd_eval_classify(args: argparse.Namespace) -> int:
    from docsprint.eval.classify import evaluate_classify
    from docsprint.eval.kie import write_json
    from docsprint.pipeline import set_threads

    set_threads(args.threads)
    r = evaluate_classify(args.model, args.dataset, args.split, args.data_dir, args.policy, args.limit,
                          args.batch_size, args.plot, **_policy_options(args))
    pe = r["per_exit"]
    print(f"{'exit':<10}{'depth':>6}{'acc %':>8}{'ECE':>8}{'ECE cal':>9}{'ms':>8}")
    for i, name in enumerate(pe["names"]):
        print(f"{name:<10}{pe['depth'][i]:>6}{pe['accuracy'][i]:>8.2f}{pe['ece_uncalibrated'][i]:>8.3f}"
              f"{pe['ece_calibrated'][i]:>9.3f}{pe['ms_to_reach'][i]:>8.2f}")
    print(f"policy {r['policy']}")
    print(f"accuracy {r['accuracy']:.2f}% (full depth {r['full_depth_accuracy']:.2f}%)  "
          f"model time {1000 * r['seconds_per_doc']:.2f} ms/doc (full depth {1000 * r['full_depth_seconds_per_doc']:.2f}, "
          f"{100 * r['time_saved']:.1f}% saved)  batch {r['batch_size']}: {r['docs_per_second']:.1f} docs/s "
          f"(full depth {r['full_depth_docs_per_second']:.1f}, {r['throughput_gain']:.2f}x)")
    print(f"exits taken {r['exit_histogram']}")
    if args.json:
        write_json(r, args.json)
    return 0


def _add_policy_arguments(p: argparse.ArgumentParser) -> None:
    from docsprint.exits.policies import POLICIES

    p.add_argument("--policy", choices=POLICIES, help="exit policy (default: the checkpoint's recommended one)")
    p.add_argument("--threshold", type=float, help="confidence threshold (global, budget)")
    p.add_argument("--patience", type=int, help="same answer at this many exits in a row (patience)")
    p.add_argument("--budget-ms", type=float, help="deadline: answer with the best exit reached by then")
    p.add_argument("--max-depth", type=int, help="run at most this many layers")
    p.add_argument("--uncalibrated", action="store_true", help="raw confidences, no temperature scaling")


def cmd_train(args: argparse.Namespace) -> int:
    if args.task == "pretrain":
        from docsprint.train.pretrain import PretrainConfig, train_pretrain

        train_pretrain(PretrainConfig.from_yaml(args.config))
    elif args.task == "peer":
        from docsprint.peer import PeerConfig, train_peer

        print(f"wrote {train_peer(PeerConfig.from_yaml(args.config))}")
    elif args.task == "classify":
        from docsprint.train.classify import ClassifyTrainConfig, train_classify

        train_classify(ClassifyTrainConfig.from_yaml(args.config))
    elif args.data:
        from docsprint.train.finetune import FinetuneConfig, finetune

        if not 0 <= args.replay < 1:
            raise ValueError(f"--replay must be at least 0 and below 1, got {args.replay}")
        summary = finetune(FinetuneConfig(data=args.data, out=args.out or "", init=args.init, minutes=args.minutes,
                                          epochs=args.epochs, replay=args.replay))
        best = summary["best_dev_value_match"]
        print(f"wrote {summary['model']} after {summary['minutes']:.1f} minutes on {summary['train']} documents"
              + (f"; best dev value match {best:.1f}% on {summary['dev']}" if best is not None else "")
              + f"\nuse it with: docsprint extract FILE --keys ... --model {summary['model']}")
    else:
        from docsprint.train.kie import KIETrainConfig, train_kie

        train_kie(KIETrainConfig.from_yaml(args.config))
    return 0


def cmd_data_export(args: argparse.Namespace) -> int:
    from docsprint.data.labels import export_labels

    print(f"wrote {export_labels(args.labels, args.format, args.out)}")
    return 0


def cmd_data_import(args: argparse.Namespace) -> int:
    from docsprint.data.labels import import_labels

    lists = frozenset(k.strip() for k in (args.lists or "").split(",") if k.strip())
    report = import_labels(args.format, args.src, args.out, ocr=args.ocr, images=args.images, list_keys=lists,
                           limits=limits_from(args))
    print(f"imported {report['documents']} documents to {args.out}/train.jsonl: {report['placed']} of "
          f"{report['values']} values placed on the page ({100 * report['placed_share']:.0f}%)")
    for m in report["not_placed"][:20]:
        print(f"  not on the page: {m['file']}  {m['key']} = {m['value']!r}")
    if len(report["not_placed"]) > 20:
        print(f"  ... and {len(report['not_placed']) - 20} more (see {args.out}/import-report.json)")
    for u in report["unreadable"]:
        print(f"  unreadable: {u['error']}")
    return 0


def cmd_train_status(args: argparse.Namespace) -> int:
    from docsprint.train.status import format_status, plot_progress, run_status

    out = Path(args.out)
    print(format_status(run_status(out)))
    if not args.no_plot:
        print(f"plot       {plot_progress(out)}")
    return 0


def cmd_train_pack(args: argparse.Namespace) -> int:
    from docsprint.train.pack import folder_mb, pack

    out = pack(args.config, args.out)
    print(f"wrote {out} ({folder_mb(out):.1f} MB); train from it with: docsprint train kie --config {out}/config.yaml")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    import time

    from docsprint.data.synth import generate

    t0 = time.perf_counter()
    if not 0 <= args.ocr_share <= 1:
        raise ValueError(f"--ocr-share must be between 0 and 1, got {args.ocr_share}")
    path = generate(args.kind, args.n, args.seed, args.out, args.split, ocr_share=args.ocr_share)
    dt = time.perf_counter() - t0
    print(f"wrote {args.n} {args.kind} pages to {path} ({args.n / dt:.0f} pages/s)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from docsprint.eval.kie import both_modes, evaluate_kie, format_table, write_json
    from docsprint.pipeline import Extractor, set_threads

    if args.data and args.repeat > 1:
        print("error: --repeat times a dataset's decodes (--dataset); a folder's time includes its OCR",
              file=sys.stderr)
        return 2
    if args.data and args.ids:
        print("error: --ids picks documents of a --dataset; a folder scores every document of its truth.jsonl",
              file=sys.stderr)
        return 2
    if args.ids and not Path(args.ids).is_file():
        print(f"error: --ids {args.ids}: no such file", file=sys.stderr)
        return 2
    ids = set(Path(args.ids).read_text().split()) if args.ids else None
    set_threads(args.threads)
    _check_compile(args)
    extractor = Extractor(args.model, precision=args.precision, quantize=args.quantize, compile=args.compile,
                          ocr=args.ocr or "rapidocr", min_confidence=args.min_confidence)
    _compile_notice(args)
    if args.data:
        from docsprint.eval.folder import evaluate_folder, format_folder

        modes = list(MODES) if args.mode == "both" else [args.mode]
        results = [evaluate_folder(args.data, extractor, m, args.limit) for m in modes]
        for r in results:
            print(format_folder(r))
        out = both_modes(*results) if args.mode == "both" else results[0]
    else:  # with --mode both, the two modes take turns on each document (`decode_examples`)
        out = evaluate_kie(args.dataset, args.split, args.mode, args.model, args.data_dir, args.limit, extractor,
                           ocr=args.ocr, repeat=args.repeat, ids=ids)
        print(format_table([{**out, "mode": "parallel"}, out["autoregressive"]] if args.mode == "both" else [out]))
    if args.mode == "both":
        print(f"speedup (autoregressive / parallel model time): {out['speedup']:.2f}x")
    if args.json:
        write_json(out, args.json)
    return 0


def cmd_eval_peer(args: argparse.Namespace) -> int:
    from docsprint.eval.kie import write_json
    from docsprint.peer import evaluate_peer
    from docsprint.pipeline import set_threads

    set_threads(args.threads)
    r = evaluate_peer(args.model, args.dataset, args.split, args.data_dir, args.limit)
    print(f"{r['dataset']} {r['split']}: {r['n_docs']} docs  ANLS {r['anls']:.2f}  F1 {r['f1']:.2f}  "
          f"{r['seconds_per_doc']:.4f} s/doc  " + "  ".join(f"{k} {v:.1f}" for k, v in r["per_key"].items()))
    if args.json:
        write_json(r, args.json)
    return 0


def cmd_eval_pretrain(args: argparse.Namespace) -> int:
    from docsprint.eval.kie import write_json
    from docsprint.eval.pretrain import evaluate_pretrain

    result = evaluate_pretrain(args.model, args.sources.split(","), args.split, args.limit)
    for src, r in result["sources"].items():
        print(f"{src:<14} pages {r['pages']:>4}  masked pieces {r['masked_pieces']:>6}  "
              f"loss {r['loss']:.3f}  accuracy {r['accuracy']:.1f}%")
    if args.json:
        write_json(result, args.json)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from docsprint.eval.report import kie_rows

    print(kie_rows(args.files))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from docsprint.eval.bench import KIE_DATASETS, BenchConfig, run_bench

    if args.what == "serve":
        from docsprint.eval.bench_serve import run_bench_serve

        r = run_bench_serve(Path(args.out), args.limit or 40, args.seconds, args.model, ["docsprint", *args.argv],
                            args.repeats)
        print(f"wrote {Path(args.out) / 'serve.json'} and its section of {Path(args.out) / 'BENCHMARKS.md'}; "
              f"service / CLI throughput {r['service_over_cli']:.2f}x")
        return 0

    datasets = tuple(d.strip() for d in args.datasets.split(",")) if args.datasets else KIE_DATASETS
    unknown = [d for d in datasets if d not in KIE_DATASETS]
    if unknown:
        raise ValueError(f"unknown datasets {unknown} (known: {', '.join(KIE_DATASETS)})")
    cfg = BenchConfig(out=Path(args.out), quick=args.quick, model=args.model, general_model=args.general_model,
                      classifier=args.classifier, peer=tuple(args.peer),
                      datasets=datasets, data_dir=args.data_dir, limit=args.limit, threads=args.threads,
                      command=["docsprint", *args.argv])
    results = run_bench(cfg)
    print(f"wrote {cfg.out / 'BENCHMARKS.md'} and results.json in {results['seconds'] / 60:.1f} min")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from docsprint.explain import draw, explain
    from docsprint.pipeline import Extractor, set_threads

    if args.out and Path(args.out).suffix.lower() != ".png":
        raise ValueError(f"--out must be a .png file, got {args.out}")
    set_threads(args.threads)
    view = explain(Extractor(args.model, ocr=args.ocr, limits=limits_from(args)), args.file, args.key, args.layers)
    result = view.to_dict()
    if args.out:
        result["picture"] = str(draw(view, args.out))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from docsprint.eval.kie import calibrate_checkpoint
    from docsprint.pipeline import set_threads

    set_threads(args.threads)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    data_dirs = dict(kv.split("=", 1) for kv in args.data_dir or [])
    fit = calibrate_checkpoint(args.model, args.dev_ids, names, data_dirs, args.limit)
    print(json.dumps(fit, indent=2))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from docsprint.errors import DocsprintError
    from docsprint.models.checkpoint import (
        CONFIG_FILE,
        TOKENIZER_FILE,
        from_pretrained,
        load_classifier,
        save_pretrained,
    )

    config = Path(args.model) / CONFIG_FILE
    is_classifier = config.is_file() and '"labels"' in config.read_text()  # an early-exit classifier's config
    load = load_classifier if is_classifier else from_pretrained
    model = load(args.model)[0]
    if args.average:  # a uniform weight-space average of rounds of one lineage (the config is the first's)
        mine = model.state_dict()
        total = {k: v.clone() for k, v in mine.items()}
        for path in args.average:
            other = load(path)[0].state_dict()
            if mine.keys() != other.keys() or any(mine[k].shape != other[k].shape for k in mine):
                raise DocsprintError(f"{path} is not the same architecture as {args.model}: cannot average")
            for k, v in total.items():
                if v.is_floating_point():
                    v += other[k]
        n = 1 + len(args.average)
        model.load_state_dict({k: v / n if v.is_floating_point() else v for k, v in total.items()})
    save_pretrained(model, args.out, Path(args.model) / TOKENIZER_FILE, compact=args.compact,
                    max_shard_mb=args.max_shard_mb, int8=args.int8)
    size = sum(p.stat().st_size for p in Path(args.out).iterdir()) / 1e6
    print(f"wrote {args.out} ({size:.1f} MB)")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from docsprint.batch.job import BatchConfig, run_batch

    keys = _keys(args)
    cfg = BatchConfig(inputs=args.inputs, out=Path(args.out), keys=keys, mode=args.mode,
                      list_keys=sorted(_list_keys(args, keys)), model=args.model, address=args.address, ocr=args.ocr,
                      ocr_workers=args.ocr_workers, model_workers=args.model_workers,
                      model_threads=args.model_threads, write_batch=args.rows_per_file, limits=limits_from(args))
    r = run_batch(cfg, progress=not args.no_progress)
    rate = f", {r['docs_per_second']:.2f} docs/s" if r.get("docs_per_second") else ""
    print(f"docsprint batch: {r['done_now']} documents written to {args.out} in {r['seconds']:.1f} s{rate} "
          f"({r['already_done']} done before, {r['crashed']} crashed every retry)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from docsprint.pipeline import set_threads
    from docsprint.serve.app import ServeConfig, serve

    set_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    review = None
    if args.review:
        from docsprint.pipeline import parse_keys
        from docsprint.serve.review import ReviewConfig

        if not args.review_keys:
            raise ValueError("--review needs --review-keys (the keys to check, e.g. \"invoice number,total\")")
        review = ReviewConfig(Path(args.review), parse_keys(args.review_keys),
                              Path(args.review_labels) if args.review_labels else None, limits_from(args))
    cfg = ServeConfig(model=args.model, classifier=args.classifier, ocr=args.ocr, max_batch=args.max_batch,
                      max_wait_ms=args.max_wait_ms, max_queue=args.max_queue, max_upload_mb=args.max_upload_mb,
                      max_files=args.max_files, timeout_s=args.timeout_s, ocr_workers=args.ocr_workers,
                      limits=limits_from(args), review=review)
    serve(cfg, args.host, args.port)
    return 0


PRECISION_HELP = ("auto (default): --mode parallel in bf16 where the CPU (AMX, AVX512-BF16) or GPU "
                  "multiplies it natively, autoregressive in fp32; fp32 or bf16: both modes")
COMPILE_HELP = ("--mode parallel through torch.compile (inductor), after a one-off compilation of "
                "about a minute; 0-12%% faster on a 2-core CPU (BENCHMARKS.md)")


def add_key_arguments(p: argparse.ArgumentParser) -> None:
    """What to extract and with which model: --keys | --schema, --lists, --mode, --model."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--keys", help="comma-separated keys, e.g. company,total")
    group.add_argument("--schema", choices=sorted(SCHEMAS), default="receipt")
    p.add_argument("--lists", help="comma-separated keys whose values are lists, e.g. item,party")
    p.add_argument("--mode", choices=MODES, default="parallel")
    p.add_argument("--model", help="checkpoint folder (default: the shipped model)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="docsprint", description="Fast document understanding.")
    sub = p.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("extract", help="extract key fields from images or PDFs; prints JSON")
    ex.add_argument("files", nargs="+", type=Path)
    add_key_arguments(ex)
    ex.add_argument("--ocr", choices=["rapidocr", "tesseract"], default="rapidocr")
    ex.add_argument("--threads", type=positive_int, help="torch threads")
    ex.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    ex.add_argument("--quantize", choices=QUANTIZE, help="int8: dynamically quantised linear layers (CPU)")
    ex.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    ex.add_argument("--out", help="write the JSON here (atomically) instead of stdout")
    ex.add_argument("--min-confidence", type=float, metavar="P",
                    help="answer null below this (calibrated) confidence; the candidate stays under 'rejected'")
    add_limit_arguments(ex)
    ex.set_defaults(func=cmd_extract)

    cl = sub.add_parser("classify", help="document type of images or PDFs, with early exit; prints JSON")
    cl.add_argument("files", nargs="+", type=Path)
    cl.add_argument("--model", help="classifier checkpoint folder (default: the shipped document-type classifier)")
    cl.add_argument("--ocr", choices=["rapidocr", "tesseract"], default="rapidocr")
    cl.add_argument("--threads", type=positive_int, help="torch threads")
    cl.add_argument("--out", help="write the JSON here (atomically) instead of stdout")
    _add_policy_arguments(cl)
    add_limit_arguments(cl)
    cl.set_defaults(func=cmd_classify)

    ba = sub.add_parser("batch", help="many documents on Ray Data, written as Parquet; resumable after a crash")
    ba.add_argument("inputs", nargs="+", help="files, folders (recursive), globs, or @list.txt of paths")
    ba.add_argument("--out", required=True,
                    help="folder for the Parquet results (also the record of finished documents)")
    add_key_arguments(ba)
    ba.add_argument("--address", help="join this Ray cluster (default: an embedded local Ray)")
    ba.add_argument("--ocr", choices=["rapidocr", "tesseract"], default="rapidocr")
    ba.add_argument("--ocr-workers", type=positive_int, help="concurrent OCR tasks, one thread each (default: one per core)")
    ba.add_argument("--model-workers", type=positive_int, default=1, help="model actors (default 1)")
    ba.add_argument("--model-threads", type=positive_int, default=1, help="CPUs (torch threads) per model actor")
    ba.add_argument("--rows-per-file", type=positive_int, default=8,
                    help="documents per output Parquet file, each written atomically (default 8)")
    ba.add_argument("--no-progress", action="store_true", help="no progress lines")
    add_limit_arguments(ba)
    ba.set_defaults(func=cmd_batch)

    sv = sub.add_parser("serve", help="the HTTP service and its web page (FastAPI + uvicorn)")
    sv.add_argument("--model", help="KIE checkpoint folder (default: the shipped model)")
    sv.add_argument("--classifier", help="classifier checkpoint folder (default: the shipped one)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=positive_int, default=8000)
    sv.add_argument("--max-batch", type=positive_int, default=4,
                    help="windows per forward pass, across concurrent requests (default 4: BENCHMARKS.md)")
    sv.add_argument("--max-wait-ms", type=float, default=5.0,
                    help="how long a batch that is not full waits for more (default 5)")
    sv.add_argument("--max-queue", type=positive_int, default=32,
                    help="requests in the service at once; more are answered 503 (default 32)")
    sv.add_argument("--max-upload-mb", type=positive_float, default=50.0, help="one request's body (default 50)")
    sv.add_argument("--max-files", type=positive_int, default=20, help="files in one request (default 20)")
    sv.add_argument("--timeout-s", type=positive_float, default=60.0,
                    help="one request end to end; past it 504 (default 60)")
    sv.add_argument("--ocr-workers", type=positive_int, default=2, help="documents read at once (default 2)")
    sv.add_argument("--ocr", choices=["rapidocr", "tesseract"], default="rapidocr")
    sv.add_argument("--review", help="a folder of documents to review in the web page (corrections saved as labels)")
    sv.add_argument("--review-keys", help="with --review: the keys to check, comma-separated")
    sv.add_argument("--review-labels", help="with --review: the labels folder to write (default DIR/labels)")
    sv.add_argument("--threads", type=positive_int, help="torch threads")
    add_limit_arguments(sv)
    sv.set_defaults(func=cmd_serve)

    tr = sub.add_parser("train", help="train a model")
    tr_sub = tr.add_subparsers(dest="task", required=True)
    tk = tr_sub.add_parser("kie", help="key-value fine-tuning, both decoding modes: a config, or your own labels")
    src = tk.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="YAML file (see configs/)")
    src.add_argument("--data", help="a labels folder (`docsprint data import` writes one): fine-tune on it")
    tk.add_argument("--init", default="default", help="with --data: the model to start from (default: the shipped one)")
    tk.add_argument("--minutes", type=positive_float, default=20.0, help="with --data: time budget (default 20)")
    tk.add_argument("--epochs", type=positive_int, default=50, help="with --data: at most this many (default 50)")
    tk.add_argument("--out", help="with --data: the run folder (default runs/finetune-<data folder>)")
    tk.add_argument("--replay", type=float, default=0.25,
                    help="with --data: share of examples from synthetic business pages, to keep what the "
                         "model knew (default 0.25; 0 for none)")
    tk.set_defaults(func=cmd_train)
    tp = tr_sub.add_parser("pretrain", help="stage 1: mask pre-training on unlabelled pages")
    tp.add_argument("--config", required=True, help="YAML file (see configs/)")
    tp.set_defaults(func=cmd_train)
    tc = tr_sub.add_parser("classify", help="the anytime early-exit document classifier")
    tc.add_argument("--config", required=True, help="YAML file (see configs/)")
    tc.set_defaults(func=cmd_train)
    ts = tr_sub.add_parser("status", help="step, loss, dev scores, rate and ETA of a run (running or not)")
    ts.add_argument("out", help="the run's folder (its config's out)")
    ts.add_argument("--no-plot", action="store_true", help="do not write OUT/progress.png")
    ts.set_defaults(func=cmd_train_status)
    tk2 = tr_sub.add_parser("pack", help="a KIE config's encoded training data in one folder that travels")
    tk2.add_argument("--config", required=True, help="YAML file (see configs/)")
    tk2.add_argument("--out", required=True, help="folder to write (cache/ and config.yaml)")
    tk2.set_defaults(func=cmd_train_pack)
    tq = tr_sub.add_parser("peer", help="the LayoutLMv3 BIO-tagging peer, for the benchmark")
    tq.add_argument("--config", required=True, help="YAML file (see configs/peer-sroie.yaml)")
    tq.set_defaults(func=cmd_train)

    da = sub.add_parser("data", help="bring your own labelled documents")
    da_sub = da.add_subparsers(dest="action", required=True)
    di = da_sub.add_parser("import", help="labels in a common format -> a folder `train kie --data` takes")
    di.add_argument("format", choices=FORMATS, help="truth (truth.jsonl), donut (metadata.jsonl), labelstudio "
                    "(OCR template JSON export), funsd (annotations folder), ppocrlabel (Label.txt)")
    di.add_argument("src", help="the label file, or the folder holding it")
    di.add_argument("--out", required=True, help="the labels folder to write")
    di.add_argument("--images", help="where the documents are, if not beside the labels")
    di.add_argument("--ocr", default="rapidocr", choices=["rapidocr", "tesseract"],
                    help="for pages without a text layer (default rapidocr)")
    di.add_argument("--lists", help="labels whose regions are items of a list (e.g. item,price); others are joined")
    add_limit_arguments(di)
    di.set_defaults(func=cmd_data_import)
    de = da_sub.add_parser("export", help="a labels folder back to truth.jsonl or a Label Studio export")
    de.add_argument("format", choices=EXPORTS)
    de.add_argument("labels", help="the labels folder (imported, or saved by the review page)")
    de.add_argument("--out", required=True, help="the file to write")
    de.set_defaults(func=cmd_data_export)

    sy = sub.add_parser("synth", help="render synthetic documents with exact boxes and fields")
    sy.add_argument("--kind", choices=[*KINDS, *MIXES], default="mixed")
    sy.add_argument("--n", type=int, required=True, help="number of pages")
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--out", required=True, help="folder: images/ and SPLIT.jsonl")
    sy.add_argument("--split", default="train", help="name of the .jsonl file (default: train)")
    sy.add_argument("--ocr-share", type=float, default=0.0,
                    help="share of pages whose words are RapidOCR's reading of the image, not the exact ones")
    sy.set_defaults(func=cmd_synth)

    ev = sub.add_parser("eval", help="evaluate a model")
    ev_sub = ev.add_subparsers(dest="task", required=True)
    ek = ev_sub.add_parser("kie", help="ANLS / F1 / speed on a KIE dataset, or value match on a folder")
    what = ek.add_mutually_exclusive_group(required=True)
    what.add_argument("--dataset", choices=DATASETS)
    what.add_argument("--data", help="a folder with truth.jsonl (or of such folders), e.g. ../shared/data/realworld-dev")
    ek.add_argument("--ocr", choices=["rapidocr", "tesseract"],
                    help="--dataset: re-read the page images with this OCR instead of the dataset's; "
                         "--data: the OCR for images and scanned PDFs (default rapidocr)")
    ek.add_argument("--split", default="test")
    ek.add_argument("--mode", choices=[*MODES, "both"], default="parallel")
    ek.add_argument("--data-dir", help="folder laid out like ../shared/data/<dataset>")
    ek.add_argument("--model", help="checkpoint folder (default: the shipped model)")
    ek.add_argument("--limit", type=int, help="first N documents only")
    ek.add_argument("--ids", metavar="FILE", help="--dataset: only the documents this file lists (ids, one a line: "
                    "a training run's dev_ids.txt scores its dev documents)")
    ek.add_argument("--repeat", type=positive_int, default=1, metavar="N",
                    help="decode each document N times and keep its fastest time (same answers): "
                         "steadier timings and speedups on a shared machine")
    ek.add_argument("--threads", type=positive_int, help="torch threads")
    ek.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    ek.add_argument("--quantize", choices=QUANTIZE, help="int8: dynamically quantised linear layers (CPU)")
    ek.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    ek.add_argument("--json", help="write the results here")
    ek.add_argument("--min-confidence", type=float, metavar="P", help="answers below this confidence count as null")
    ek.set_defaults(func=cmd_eval)
    ep = ev_sub.add_parser("pretrain", help="the mask pre-training objective on held-out pages")
    ep.add_argument("--model", required=True, help="checkpoint folder")
    ep.add_argument("--sources", default="sroie,funsd,wildreceipt,kleister-nda,tobacco3482")
    ep.add_argument("--split", default="test", help="test (tobacco3482: val)")
    ep.add_argument("--limit", type=int, default=50, help="pages per source")
    ep.add_argument("--json", help="write the results here")
    ep.set_defaults(func=cmd_eval_pretrain)
    eq = ev_sub.add_parser("peer", help="ANLS / F1 / speed of the LayoutLMv3 peer")
    eq.add_argument("--model", required=True, help="peer checkpoint folder (docsprint train peer)")
    eq.add_argument("--dataset", choices=["sroie", "funsd"], help="default: the one the peer was trained on")
    eq.add_argument("--split", default="test")
    eq.add_argument("--data-dir", help="folder laid out like ../shared/data/<dataset>")
    eq.add_argument("--limit", type=int, help="first N documents only")
    eq.add_argument("--threads", type=positive_int, help="torch threads")
    eq.add_argument("--json", help="write the results here")
    eq.set_defaults(func=cmd_eval_peer)
    ec = ev_sub.add_parser("classify", help="accuracy, ECE and early-exit savings of a classifier")
    ec.add_argument("--model", required=True, help="classifier checkpoint folder")
    ec.add_argument("--dataset", default="tobacco3482", help="tobacco3482, doctypes, or a folder of class folders")
    ec.add_argument("--split", default="test")
    ec.add_argument("--data-dir", help="folder laid out like ../shared/data/<dataset>")
    ec.add_argument("--limit", type=int, help="pages per split (per class for doctypes and folders)")
    ec.add_argument("--batch-size", type=int, default=16, help="batch for the throughput measurement")
    ec.add_argument("--threads", type=positive_int, help="torch threads")
    ec.add_argument("--plot", help="write the accuracy-latency Pareto plot (PNG) here")
    ec.add_argument("--json", help="write the results here")
    _add_policy_arguments(ec)
    ec.set_defaults(func=cmd_eval_classify)
    er = ev_sub.add_parser("report", help="a markdown table from `eval kie --mode both --json` files")
    er.add_argument("files", nargs="+", type=Path)
    er.set_defaults(func=cmd_report)
    bn = sub.add_parser("bench", help="every benchmark; writes OUT/BENCHMARKS.md, results.json, figures/")
    bn.add_argument("what", nargs="?", choices=["all", "serve"], default="all",
                    help="serve: the service under load (its own section of BENCHMARKS.md, serve.json)")
    bn.add_argument("--seconds", type=positive_float, default=20.0, help="bench serve: seconds per load run")
    bn.add_argument("--repeats", type=positive_int, default=3, help="bench serve: runs per setting (the median is kept)")
    bn.add_argument("--out", default="out/bench", help="folder for the report (default out/bench)")
    bn.add_argument("--quick", action="store_true", help="a few documents per dataset (minutes; CI)")
    bn.add_argument("--model", help="KIE checkpoint for SROIE, the peer and the floor (default: the shipped one)")
    bn.add_argument("--general-model", help="KIE checkpoint for the other datasets and the keys sweep (default: --model)")
    bn.add_argument("--classifier", help="early-exit checkpoint folder (its section is skipped without one)")
    bn.add_argument("--peer", nargs="+", default=[],
                    help="LayoutLMv3 peer checkpoint folders, one per dataset (the section is skipped without)")
    bn.add_argument("--datasets", help="comma-separated KIE datasets (default: all four)")
    bn.add_argument("--data-dir", help="folder holding the datasets (default ../shared/data)")
    bn.add_argument("--limit", type=int, help="documents per dataset (default all; --quick 2)")
    bn.add_argument("--threads", type=positive_int, help="torch threads")
    bn.set_defaults(func=cmd_bench)

    xe = sub.add_parser("explain", help="where a key's mask slots attend, drawn over the page")
    xe.add_argument("file", type=Path)
    xe.add_argument("--key", required=True, help="the key to look at, e.g. total")
    xe.add_argument("--model", help="checkpoint folder (default: the shipped SROIE model)")
    xe.add_argument("--layers", type=int, default=2, help="average over the last N layers (default 2)")
    xe.add_argument("--ocr", choices=["rapidocr", "tesseract"], default="rapidocr")
    xe.add_argument("--threads", type=positive_int, help="torch threads")
    xe.add_argument("--out", help="write the picture here (PNG)")
    add_limit_arguments(xe)
    xe.set_defaults(func=cmd_explain)

    ca = sub.add_parser("calibrate", help="fit field-confidence calibration on a run's dev documents")
    ca.add_argument("--model", required=True, help="checkpoint folder; its config.json gets the calibration")
    ca.add_argument("--dev-ids", required=True, help="the training run's dev_ids.txt")
    ca.add_argument("--datasets", default="sroie,wildreceipt,funsd,kleister-nda,synth")
    ca.add_argument("--data-dir", action="append", metavar="NAME=DIR", help="a dataset's folder, e.g. synth=runs/synth")
    ca.add_argument("--limit", type=int, help="at most N dev documents per dataset")
    ca.add_argument("--threads", type=positive_int, help="torch threads")
    ca.set_defaults(func=cmd_calibrate)

    xp = sub.add_parser("export", help="re-save a checkpoint, e.g. compact (fp16 + int8 embeddings)")
    xp.add_argument("model", help="checkpoint folder")
    xp.add_argument("out", help="new checkpoint folder")
    xp.add_argument("--compact", action="store_true", help="fp16 weights, int8 word embeddings")
    xp.add_argument("--int8", action="store_true", help="every weight matrix int8 (per-row scales), the rest fp16")
    xp.add_argument("--max-shard-mb", type=float, help="write safetensors shards of at most this size, with an index")
    xp.add_argument("--average", metavar="OTHER", nargs="+",
                    help="average the weights with these checkpoints' (same architecture; each weighs the same)")
    xp.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        return int(args.func(args))
    except (FileNotFoundError, ValueError) as e:  # DocsprintError is a ValueError
        print(f"docsprint: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
