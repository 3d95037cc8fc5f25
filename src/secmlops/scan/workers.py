"""Batches of files scanned in forked worker processes (folders of many files).

Each worker scans one batch into a partial Report; the result travels back as JSON text, never
pickled, and is merged into the caller's report in completion order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from secmlops.findings import Finding, Report, ScanFailure

Batch = list[tuple[str, str]]  # (path, path as displayed)
ScanBatch = Callable[[Batch], Report]

# Set before the pool forks, so every worker inherits it (a closure need not be picklable).
_SCAN_BATCH: ScanBatch | None = None


def _run_batch(batch: Batch) -> str:
    assert _SCAN_BATCH is not None
    part = _SCAN_BATCH(batch)
    return json.dumps(
        {
            "findings": [f.to_dict() for f in part.findings],
            "errors": [e.to_dict() for e in part.errors],
            "scanned": part.files_scanned,
            "skipped": part.files_skipped,
            "bytes": part.bytes_scanned,
        }
    )


def run_forked(
    batches: Sequence[Batch],
    scan_batch: ScanBatch,
    report: Report,
    progress: Callable[[str, int, int], None] | None,
    jobs: int,
) -> None:
    """Scan every batch with `scan_batch` in `jobs` forked processes and merge into `report`."""
    import gc
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    global _SCAN_BATCH
    _SCAN_BATCH = scan_batch
    total = sum(len(b) for b in batches)
    done = 0
    # What exists now is never collected in the workers: a collection there would touch, and so
    # copy, every page the fork shares with this process.
    gc.freeze()
    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {pool.submit(_run_batch, batch): batch for batch in batches}
            for future in as_completed(futures):
                part = json.loads(future.result())
                report.findings.extend(Finding.from_dict(f) for f in part["findings"])
                report.errors.extend(ScanFailure.from_dict(e) for e in part["errors"])
                report.files_scanned += part["scanned"]
                report.files_skipped += part["skipped"]
                report.bytes_scanned += part["bytes"]
                done += len(futures[future])
                if progress is not None:
                    progress(futures[future][-1][1], done, total)
    finally:
        gc.unfreeze()
