"""PyTorch's pre-1.0 tar checkpoints: `storages` and `tensors` interleave pickles with raw bytes.

torch.load unpickles every one of those pickles; a scanner that stops at the first raw byte misses
payloads hidden in the later ones. The layout is followed exactly as torch's legacy loader reads it.
"""

from __future__ import annotations

import struct
from typing import IO, Any

from secmlops.errors import ScanError
from secmlops.scan.models.engine import Blob, ScanContext
from secmlops.scan.models.pickle import GlobalRef, PickleAnalysis, analyze_one, findings_for

LEGACY_LAYOUTS = frozenset({"storages", "tensors"})
ELEMENT_SIZES = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
    "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
    "BoolStorage": 1, "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16,
    "QInt8Storage": 1, "QUInt8Storage": 1, "QInt32Storage": 4, "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
}  # fmt: skip
MAX_ENTRIES = 1_000_000


class _Walker:
    def __init__(self, blob: Blob, ctx: ScanContext, f: IO[bytes]) -> None:
        self.blob = blob
        self.ctx = ctx
        self.f = f
        self.index = 0

    def pickle(self) -> Any:
        allowlist = self.blob.allowlist or self.ctx.allowlist
        analysis: PickleAnalysis = analyze_one(
            self.f, self.blob.size, allowlist, max_ops=self.ctx.limits.max_pickle_ops
        )
        for finding in findings_for(analysis, allowlist, self.blob.location, index=self.index):
            self.ctx.emit(finding)
        self.index += 1
        if not analysis.stopped:
            raise ScanError(
                f"legacy {self.blob.name}: pickle #{self.index} breaks: {analysis.error}"
            )
        return analysis.value

    def skip(self, n: int) -> None:
        here = self.f.tell()
        if n < 0 or here + n > self.blob.size:
            raise ScanError(f"legacy {self.blob.name}: raw data runs past the end of the member")
        self.f.seek(here + n)

    def read(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        data = self.f.read(size)
        if len(data) != size:
            raise ScanError(f"legacy {self.blob.name}: truncated")
        return struct.unpack(fmt, data)


def _count(value: Any, what: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= MAX_ENTRIES:
        raise ScanError(f"legacy {what}: count {value!r} is not a sane number")
    return value


def scan_legacy_member(blob: Blob, ctx: ScanContext, name: str) -> None:
    """Walk `storages` or `tensors` the way torch's legacy tar loader does, analysing every pickle."""
    with blob.open() as f:
        walk = _Walker(blob, ctx, f)
        count = _count(walk.pickle(), name)
        for _ in range(count):
            args = walk.pickle()
            if not isinstance(args, tuple) or len(args) != 3:
                raise ScanError(f"legacy {name}: entry is not a 3-tuple")
            if name == "storages":
                storage_type = args[2]
                kind = storage_type.name if isinstance(storage_type, GlobalRef) else None
                size = ELEMENT_SIZES.get(kind or "")
                if size is None:
                    raise ScanError(f"legacy storages: unknown storage type {kind!r}")
                (numel,) = walk.read("<q")
                walk.skip(numel * size)
            else:
                (ndim,) = walk.read("<i")
                if not 0 <= ndim <= 64:
                    raise ScanError(f"legacy tensors: {ndim} dimensions")
                walk.skip(4 + 16 * ndim + 8)
        if name == "storages":
            walk.pickle()  # the storage views
