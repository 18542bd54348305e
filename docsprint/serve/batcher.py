"""Cross-request batching: the windows of concurrent requests in one parallel forward pass.

Each request hands its prepared windows (OCR done, encoded) to `Batcher.submit` and awaits
its answers. One background task takes every job waiting (and, if the batch is not full,
waits up to ``max_wait_ms`` for more), runs them through the model in one thread, and hands
each job its own answers back. The model is never run from two threads at once; OCR runs in
its own pool meanwhile, so reading the next documents overlaps the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from docsprint.data.encode import Encoded
from docsprint.decode.common import KeyValue
from docsprint.io.document import Page
from docsprint.pipeline import Extractor


@dataclass
class Job:
    work: list[tuple[Encoded, Page]]
    mode: str
    list_keys: frozenset[str]
    future: asyncio.Future = field(repr=False)

    @property
    def n_answers(self) -> int:
        return sum(len(enc.keys) for enc, _ in self.work)


@dataclass
class BatchDone:
    """What one model run did: for the metrics."""

    jobs: int
    windows: int
    seconds: float


class Batcher:
    def __init__(self, extractor: Extractor, max_batch: int = 8, max_wait_ms: float = 5.0,
                 on_batch: Callable[[BatchDone], None] | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.extractor = extractor
        self.extractor.batch_size = max_batch  # windows per forward pass
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self.on_batch = on_batch
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.model_thread = ThreadPoolExecutor(1, thread_name_prefix="docsprint-model")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.model_thread.shutdown(wait=True)

    @property
    def waiting(self) -> int:
        return self.queue.qsize()

    async def submit(self, work: list[tuple[Encoded, Page]], mode: str,
                     list_keys: frozenset[str]) -> tuple[list[KeyValue], float]:
        """This document's answers (as `Extractor.decode` returns them) and the seconds of the
        model run it was part of."""
        if not work:
            return [], 0.0
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self.queue.put(Job(work, mode, list_keys, future))
        return await future

    async def _take(self) -> list[Job]:
        """Every job waiting; if they fill less than a batch, more until ``max_wait``."""
        jobs = [await self.queue.get()]
        windows = len(jobs[0].work)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while windows < self.max_batch:
            try:
                job = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), left)
                except TimeoutError:
                    break
            jobs.append(job)
            windows += len(job.work)
        return [j for j in jobs if not j.future.done()]  # a timed-out request's job is dropped

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._take()
            groups: dict[tuple[str, frozenset[str]], list[Job]] = {}
            for job in jobs:
                groups.setdefault((job.mode, job.list_keys), []).append(job)
            for (mode, list_keys), group in groups.items():
                work = [item for job in group for item in job.work]
                t0 = time.perf_counter()
                try:
                    # `Extractor.decode` sorts the windows by length into passes that pad little
                    answers = await loop.run_in_executor(self.model_thread, self.extractor.decode, work, mode,
                                                         list_keys)
                except Exception as e:  # noqa: BLE001 - the requests fail with it, the service goes on
                    for job in group:
                        if not job.future.done():
                            job.future.set_exception(e)
                    continue
                seconds = time.perf_counter() - t0
                if self.on_batch is not None:
                    self.on_batch(BatchDone(len(group), len(work), seconds))
                start = 0
                for job in group:
                    n = job.n_answers
                    if not job.future.done():
                        job.future.set_result((answers[start : start + n], seconds))
                    start += n
