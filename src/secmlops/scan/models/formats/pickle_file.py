"""Raw pickle streams (plain pickles, joblib files, legacy PyTorch files, pandas pickles)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

from secmlops.scan.models import rules
from secmlops.scan.models.allowlist import load_allowlist
from secmlops.scan.models.engine import Blob, ScanContext, slice_blob
from secmlops.scan.models.pickle import (
    PICKLE_START_BYTES,
    NestedLoad,
    PickleAnalysis,
    findings_for,
    is_pickle_start,
    iter_pickles,
    looks_like_pickle,
)

MAX_PICKLES_PER_STREAM = 10_000


def _closing(analyses: Iterable[PickleAnalysis]) -> Iterator[PickleAnalysis]:
    """Iterate, then close a generator at once (it seeks its file back, which must be open)."""
    try:
        yield from analyses
    finally:
        close = getattr(analyses, "close", None)
        if close is not None:
            close()


class PickleScanner:
    """Every stream a pickle loader would accept, whatever the file is called."""

    name = "pickle"

    def sniff(self, blob: Blob) -> bool:
        head = blob.head
        if not head or head[0] not in PICKLE_START_BYTES:
            return False
        allowlist = load_allowlist()
        if blob.size > len(head):
            return looks_like_pickle(head, blob.size, allowlist)
        # Small blob: the head is the whole stream; analyse it once for sniff and scan alike.
        analyses = list(iter_pickles(io.BytesIO(head), len(head), allowlist))
        blob.memo["pickles"] = analyses
        return bool(analyses) and is_pickle_start(analyses[0], False, allowlist)

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        scan_pickle_stream(blob, ctx)


def scan_pickle_stream(blob: Blob, ctx: ScanContext, start: int = 0) -> int:
    """Analyse every consecutive pickle from `start`; returns where the last one ended."""
    end = start
    nested: list[NestedLoad] = []
    allowlist = blob.allowlist or ctx.allowlist
    cached = blob.memo.get("pickles") if start == 0 else None
    with blob.open() as f:
        f.seek(start)
        analyses = (
            cached
            if cached is not None
            else iter_pickles(f, blob.size, allowlist, max_ops=ctx.limits.max_pickle_ops)
        )
        for index, analysis in enumerate(_closing(analyses)):
            if index == MAX_PICKLES_PER_STREAM:
                # Legacy PyTorch files hold five; a stream of thousands of tiny pickles is a
                # way to make the scan slow (~10 us each), so the rest fails closed.
                ctx.fail(
                    blob.location.at_offset(analysis.start),
                    f"more than {MAX_PICKLES_PER_STREAM} consecutive pickles; the rest of the "
                    "stream was not checked",
                )
                break
            for finding in findings_for(analysis, allowlist, blob.location, index=index):
                ctx.emit(finding)
            if index == 1:
                ctx.emit(
                    rules.PICKLE_MULTIPLE.finding(
                        blob.location.at_offset(analysis.start),
                        "the file holds more than one pickle; loaders that call load() "
                        "repeatedly (legacy PyTorch, custom loaders) run each of them",
                    )
                )
            end = analysis.end
            nested.extend(analysis.nested)
    for load in nested[:64]:
        member = f"[{load.loader.rsplit('.', 1)[-1]}@{load.call_offset}]"
        if load.data is not None:
            ctx.scan_child(ctx.child_blob(blob, member, load.data))
        else:
            ctx.scan_child(slice_blob(blob, member, load.offset, load.size))
    return end
