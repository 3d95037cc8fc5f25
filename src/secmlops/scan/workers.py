"""Batches of files scanned in forked worker processes (folders of many files).

Each worker is forked with every batch already in its memory; the parent hands out batch numbers
over a pipe as workers become free, and each worker answers with its partial Report as JSON text
(never pickled), merged into the caller's report in completion order. A worker that dies or
raises does not stop the scan and does not pass for clean: each file of its batch becomes a scan
failure (exit 2).

Plain os.fork and pipes instead of concurrent.futures: the pool machinery costs ~20 ms of
imports per command, a noticeable share of scanning a small folder.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import selectors
import signal
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from secmlops.findings import Finding, Location, Report, ScanFailure

Batch = list[tuple[str, str]]  # (path, path as displayed)
ScanBatch = Callable[[Batch], Report]

_HEADER = 8  # bytes of the little-endian length before each answer


def _encode(part: Report) -> bytes:
    return json.dumps(
        {
            "findings": [f.to_dict() for f in part.findings],
            "errors": [e.to_dict() for e in part.errors],
            "scanned": part.files_scanned,
            "skipped": part.files_skipped,
            "bytes": part.bytes_scanned,
        }
    ).encode()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, n: int) -> bytes | None:
    """N bytes from the pipe, or None if it closes first (the writer died)."""
    chunks: list[bytes] = []
    while n > 0:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _serve(batches: Sequence[Batch], scan_batch: ScanBatch, tasks: int, answers: int) -> None:
    """A worker's life: scan each batch whose number arrives, until the task pipe closes."""
    while (raw := _read_exactly(tasks, 4)) is not None:
        batch = batches[int.from_bytes(raw, "little")]
        try:
            payload = _encode(scan_batch(batch))
        except Exception as exc:  # reported for each file of the batch, never lost
            where = traceback.extract_tb(exc.__traceback__)[-1]
            payload = json.dumps(
                {"crash": f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"}
            ).encode()
        _write_all(answers, len(payload).to_bytes(_HEADER, "little") + payload)


@dataclass(slots=True)
class _Worker:
    pid: int
    tasks: int  # parent writes batch numbers here
    answers: int  # parent reads results here
    batch: int | None = None  # the batch it is working on

    @classmethod
    def start(
        cls, batches: Sequence[Batch], scan_batch: ScanBatch, others: list[_Worker]
    ) -> _Worker:
        task_r, task_w = os.pipe()
        answer_r, answer_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            status = 0
            try:
                # Only the parent may hold the other workers' pipe ends: a copy here would keep
                # their task pipes from ever reaching end-of-file, and so them from exiting.
                for fd in [task_w, answer_r, *(f for w in others for f in (w.tasks, w.answers))]:
                    os.close(fd)
                _serve(batches, scan_batch, task_r, answer_w)
            except BaseException:  # a worker never returns into the caller's code
                status = 1
            finally:
                os._exit(status)
        os.close(task_r)
        os.close(answer_w)
        return cls(pid, task_w, answer_r)

    def assign(self, number: int) -> None:
        self.batch = number
        _write_all(self.tasks, number.to_bytes(4, "little"))

    def stop(self, kill: bool) -> None:
        """Close its pipes (it exits at end-of-file), or kill it; then reap it."""
        for fd in (self.tasks, self.answers):
            with contextlib.suppress(OSError):
                os.close(fd)
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _merge(report: Report, batch: Batch, answer: bytes | None) -> None:
    part: dict[str, Any] = (
        json.loads(answer) if answer is not None else {"crash": "the worker process died"}
    )
    if "crash" in part:
        # Nothing of the batch is known to be checked: every file fails closed.
        report.errors.extend(
            ScanFailure(Location(path=display), f"scan stopped: {part['crash']}")
            for _, display in batch
        )
        return
    report.findings.extend(Finding.from_dict(f) for f in part["findings"])
    report.errors.extend(ScanFailure.from_dict(e) for e in part["errors"])
    report.files_scanned += part["scanned"]
    report.files_skipped += part["skipped"]
    report.bytes_scanned += part["bytes"]


def run_forked(
    batches: Sequence[Batch],
    scan_batch: ScanBatch,
    report: Report,
    progress: Callable[[str, int, int], None] | None,
    jobs: int,
) -> None:
    """Scan every batch with `scan_batch` in `jobs` forked processes and merge into `report`."""
    total = sum(len(b) for b in batches)
    done = 0
    queue = iter(range(len(batches)))
    workers: list[_Worker] = []
    selector = selectors.DefaultSelector()
    # What exists now is never collected in the workers: a collection there would touch, and so
    # copy, every page the fork shares with this process.
    gc.freeze()
    finished = False

    def hire(number: int) -> None:
        """Start a worker on batch NUMBER."""
        worker = _Worker.start(batches, scan_batch, workers)
        workers.append(worker)
        selector.register(worker.answers, selectors.EVENT_READ, worker)
        worker.assign(number)

    try:
        for _ in range(min(jobs, len(batches))):
            hire(next(queue))
        busy = len(workers)
        while busy:
            for key, _ in selector.select():
                worker = key.data
                header = _read_exactly(worker.answers, _HEADER)
                answer = (
                    None
                    if header is None
                    else _read_exactly(worker.answers, int.from_bytes(header, "little"))
                )
                assert worker.batch is not None
                batch = batches[worker.batch]
                _merge(report, batch, answer)
                done += len(batch)
                if progress is not None:
                    progress(batch[-1][1], done, total)
                number = next(queue, None) if answer is not None else None
                if number is not None:
                    worker.assign(number)
                    continue
                selector.unregister(worker.answers)
                busy -= 1
                if answer is None:  # it died: its share of the queue goes to the others
                    workers.remove(worker)
                    worker.stop(kill=True)
                    if not busy and (number := next(queue, None)) is not None:
                        hire(number)  # the last worker died with batches left: a fresh one
                        busy += 1
        finished = True
    finally:
        selector.close()
        for worker in workers:
            worker.stop(kill=not finished)
        gc.unfreeze()
