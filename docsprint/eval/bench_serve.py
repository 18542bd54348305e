"""`docsprint bench serve`: the service under load, on loopback.

    docsprint bench serve --out .            # writes serve.json, and its section of BENCHMARKS.md

Model-bound input: SROIE test receipts written as text-layer PDFs (their own words at their
own boxes), so OCR does not hide the model. Four measurements:

1. the CLI's throughput on the same files (one process, model loaded once, a loop over files);
2. for each batching setting, the saturating throughput (closed loop, 8 clients);
3. with the default setting, open-loop Poisson arrivals at 1x, 2x and 4x that rate for a
   bounded time each: throughput, p50/p95/p99 latency, errors by kind;
4. which setting the defaults come from.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from docsprint.data.datasets import load
from docsprint.io.document import Page

KEYS = "company,date,address,total"
SECTION = "serve"


def text_layer_pdf(page: Page, path: Path) -> Path:
    """One page as a born-digital PDF: every word in Helvetica at its own box (1 px = 1 pt)."""
    w, h = page.width, page.height
    ops = ["BT"]
    for word in page.words:
        x0, y0, x1, y1 = word.box
        size = max(4.0, (y1 - y0) * 0.8)
        text = word.text.encode("latin-1", "replace").decode("latin-1")
        text = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"/F1 {size:.1f} Tf 1 0 0 1 {x0:.1f} {h - y1 + 0.2 * (y1 - y0):.1f} Tm ({text}) Tj")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w} {h}] /Resources << /Font << /F1 5 0 R >> >> "
               f"/Contents 4 0 R >>".encode(),
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


@dataclass
class Run:
    name: str
    seconds: float = 0.0
    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict:
        ok = np.array(self.latencies) if self.latencies else np.array([float("nan")])
        return {"name": self.name, "seconds": round(self.seconds, 2), "sent": self.sent, "ok": len(self.latencies),
                "throughput": round(len(self.latencies) / self.seconds, 2) if self.seconds else 0.0,
                "p50": round(float(np.percentile(ok, 50)), 3), "p95": round(float(np.percentile(ok, 95)), 3),
                "p99": round(float(np.percentile(ok, 99)), 3), "statuses": dict(sorted(self.statuses.items()))}


async def _one(client: httpx.AsyncClient, url: str, path: Path, run: Run) -> None:
    t0 = time.perf_counter()
    run.sent += 1
    try:
        r = await client.post(url, files=[("file", (path.name, path.read_bytes()))], data={"keys": KEYS})
        kind = str(r.status_code)
    except httpx.HTTPError as e:
        kind = type(e).__name__
    if kind == "200":
        run.latencies.append(time.perf_counter() - t0)
    run.statuses[kind] = run.statuses.get(kind, 0) + 1


async def closed_loop(base: str, files: list[Path], clients: int, seconds: float, name: str) -> Run:
    """``clients`` each sending the next file as soon as the last answer came back."""
    run = Run(name)
    end = time.perf_counter() + seconds
    counter = iter(range(10**9))
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=clients)) as client:
        async def worker() -> None:
            while time.perf_counter() < end:
                await _one(client, base + "/v1/extract", files[next(counter) % len(files)], run)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        run.seconds = time.perf_counter() - t0
    return run


async def open_loop(base: str, files: list[Path], rate: float, seconds: float, name: str, seed: int = 0) -> Run:
    """Poisson arrivals at ``rate`` per second for ``seconds``, whatever the answers; the run
    ends when the last request sent is answered."""
    run = Run(name)
    rng = random.Random(seed)
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=1000)) as client:
        t0 = time.perf_counter()
        tasks, i, due = [], 0, 0.0
        while due < seconds:
            await asyncio.sleep(max(0.0, t0 + due - time.perf_counter()))
            tasks.append(asyncio.create_task(_one(client, base + "/v1/extract", files[i % len(files)], run)))
            i += 1
            due += rng.expovariate(rate)
        await asyncio.gather(*tasks)
        run.seconds = time.perf_counter() - t0
    return run


class _Server:
    def __init__(self, port: int, args: list[str], log: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(log, "ab")  # noqa: SIM115 - held open for the server's lifetime, closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "docsprint.cli", "serve", "--port", str(port), *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: see {log}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the server was not ready in 300 s: see {log}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(120)
        self.log.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_throughput(files: list[Path], model: str | None, repeats: int = 3) -> dict:
    """What `docsprint extract f1 ... fN` does, timed: one process, the model loaded once; the
    median of ``repeats`` passes over the files."""
    from docsprint.pipeline import Extractor

    ex = Extractor(model)
    ex.extract(files[0], KEYS)  # warm-up, as the service's start-up does
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for f in files:
            ex.extract(f, KEYS)
        rates.append(len(files) / (time.perf_counter() - t0))
    return {"docs": len(files), "repeats": [round(r, 2) for r in rates], "throughput": round(float(np.median(rates)), 2)}


SETTINGS = [("max-batch 1", ["--max-batch", "1", "--max-wait-ms", "0"]),
            ("max-batch 4, wait 5 ms", ["--max-batch", "4", "--max-wait-ms", "5"]),
            ("max-batch 8, wait 5 ms", ["--max-batch", "8", "--max-wait-ms", "5"]),
            ("max-batch 8, wait 20 ms", ["--max-batch", "8", "--max-wait-ms", "20"])]
DEFAULT_SETTING = "max-batch 4, wait 5 ms"  # `docsprint serve`'s defaults, chosen from this benchmark


def run_bench_serve(out: Path, n_docs: int = 40, seconds: float = 20.0, model: str | None = None,
                    command: list[str] | None = None, repeats: int = 3) -> dict:
    import tempfile

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="docsprint-bench-serve-"))  # inputs and server logs: not results
    pdfs = work / "inputs"
    pdfs.mkdir()
    files = [text_layer_pdf(ex.doc.pages[0], pdfs / f"{i:03d}.pdf") for i, ex in enumerate(load("sroie", "test", limit=n_docs))]
    model_args = ["--model", model] if model else []
    results: dict = {"command": " ".join(command or ["docsprint", "bench", "serve"]), "docs": len(files),
                     "keys": KEYS, "cores": os.cpu_count(), "cli": cli_throughput(files, model, repeats), "settings": [], "repeats": repeats}
    print(f"CLI loop: {results['cli']['throughput']} docs/s")
    for name, args in SETTINGS:
        srv = _Server(_free_port(), [*args, "--max-queue", "256", *model_args], work / "server.log")
        try:  # the median run of `repeats` (by throughput), like the CLI's
            runs = sorted((asyncio.run(closed_loop(srv.url, files, 8, seconds, name)).summary() for _ in range(repeats)),
                          key=lambda r: r["throughput"])
        finally:
            srv.stop()
        run = {**runs[len(runs) // 2], "repeats": [r["throughput"] for r in runs]}
        print(f"{name}: {run['throughput']} docs/s saturated (runs {run['repeats']}), p50 {run['p50']} s")
        results["settings"].append(run)
    saturated = next(r for r in results["settings"] if r["name"] == DEFAULT_SETTING)["throughput"]
    results["saturating_rate"] = saturated
    srv = _Server(_free_port(), [*model_args], work / "server.log")  # the defaults, as shipped
    try:
        results["load"] = []
        for factor in (1, 2, 4):
            run = asyncio.run(open_loop(srv.url, files, factor * saturated, seconds, f"{factor}x")).summary()
            run["rate"] = round(factor * saturated, 2)
            print(f"{factor}x ({run['rate']}/s offered): {run['throughput']} docs/s, p50 {run['p50']} "
                  f"p99 {run['p99']} s, {run['statuses']}")
            results["load"].append(run)
            time.sleep(2)
        results["server_alive_after"] = httpx.get(srv.url + "/healthz", timeout=10).status_code == 200
    finally:
        srv.stop()
    results["service_over_cli"] = round(saturated / results["cli"]["throughput"], 3)
    (out / "serve.json").write_text(json.dumps(results, indent=2) + "\n")
    update_benchmarks(out / "BENCHMARKS.md", render_serve(results))
    return results


def render_serve(r: dict) -> str:
    rows = "\n".join(f"| {s['name']} | {s['throughput']:.2f} | {s['p50']:.3f} | {s['p95']:.3f} | {s['p99']:.3f} | "
                     f"{', '.join(f'{x:.2f}' for x in s['repeats'])} |" for s in r["settings"])
    load_rows = "\n".join(
        f"| {x['name']} | {x['rate']:.2f} | {x['sent']} | {x['throughput']:.2f} | {x['p50']:.3f} | {x['p95']:.3f} | "
        f"{x['p99']:.3f} | {', '.join(f'{k}: {v}' for k, v in x['statuses'].items())} |" for x in r["load"])
    one = r["load"][0]
    return f"""## Service under load (`docsprint serve`)

Generated by `{r['command']}`; every number is in `serve.json`. {r['docs']} SROIE test receipts
written as text-layer PDFs (their words at their boxes: no OCR, the model is the work), keys
`{r['keys']}`, client and server on the same {r['cores']}-core machine over loopback.

The command line on the same files (one process, model loaded once): **{r['cli']['throughput']:.2f} docs/s**
(median of {r['repeats']} passes: {', '.join(f'{x:.2f}' for x in r['cli']['repeats'])}).

Saturating throughput, closed loop (8 clients, {r['settings'][0]['seconds']:.0f} s a run, the median of
{r['repeats']} runs; all runs' docs/s in the last column), by batching setting:

| setting | docs/s | p50 s | p95 s | p99 s | runs |
|---|---|---|---|---|---|
{rows}

Open loop (Poisson arrivals, bounded runs) at 1x, 2x and 4x the saturating rate of the
defaults ({r['saturating_rate']:.2f} docs/s):

| load | offered /s | sent | answered docs/s | p50 s | p95 s | p99 s | statuses |
|---|---|---|---|---|---|---|---|
{load_rows}

Service throughput over the CLI's: **{r['service_over_cli']:.2f}x**; p99 / p50 at 1x:
**{one['p99'] / one['p50']:.2f}**; server alive after 4x: {r['server_alive_after']}.
"""


def update_benchmarks(path: Path, text: str) -> None:
    """Put ``text`` in BENCHMARKS.md between this section's markers (replacing what was there)."""
    start, end = f"<!-- {SECTION} -->", f"<!-- /{SECTION} -->"
    block = f"{start}\n{text.rstrip()}\n{end}\n"
    old = path.read_text() if path.exists() else ""
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end) + 1 :]
    else:
        new = old + ("\n" if old and not old.endswith("\n\n") else "") + block
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new)
    tmp.replace(path)


def kept_section(path: Path) -> str:
    """This section of an existing BENCHMARKS.md (for `docsprint bench` to keep when it rewrites it)."""
    start, end = f"<!-- {SECTION} -->", f"<!-- /{SECTION} -->"
    old = path.read_text() if path.exists() else ""
    return old[old.index(start) : old.index(end) + len(end)] + "\n" if start in old and end in old else ""
