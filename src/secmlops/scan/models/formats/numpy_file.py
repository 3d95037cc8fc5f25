"""NumPy `.npy` files (and the members of `.npz` zips): object arrays carry a pickle."""

from __future__ import annotations

import ast

from secmlops.scan.models import rules
from secmlops.scan.models.engine import Blob, ScanContext
from secmlops.scan.models.formats.pickle_file import scan_pickle_stream

MAGIC = b"\x93NUMPY"
MAX_HEADER = 1 << 20


class NpyScanner:
    name = "numpy"

    def sniff(self, blob: Blob) -> bool:
        return blob.head.startswith(MAGIC)

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        head = blob.head
        if len(head) < 10:
            ctx.emit(rules.NUMPY_MALFORMED.finding(blob.location, "truncated .npy header"))
            ctx.fail(blob.location, "truncated .npy header")
            return
        major = head[6]
        if major == 1:
            hlen, start = int.from_bytes(head[8:10], "little"), 10
        elif major in (2, 3):
            hlen, start = int.from_bytes(head[8:12], "little"), 12
        else:
            ctx.fail(blob.location, f"unknown .npy format version {major}")
            return
        if hlen > MAX_HEADER or start + hlen > blob.size:
            ctx.fail(blob.location, f".npy header length {hlen} is out of bounds")
            return
        with blob.open() as f:
            f.seek(start)
            raw = f.read(hlen)
        try:
            header = ast.literal_eval(raw.decode("latin-1" if major < 3 else "utf-8"))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            # TypeError: a literal dict with an unhashable key ({[1]: 2, ...})
            ctx.emit(rules.NUMPY_MALFORMED.finding(blob.location, ".npy header does not parse"))
            ctx.fail(blob.location, ".npy header does not parse")
            return
        if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= header.keys():
            ctx.emit(
                rules.NUMPY_MALFORMED.finding(blob.location, ".npy header lacks required keys")
            )
            ctx.fail(blob.location, ".npy header lacks required keys")
            return
        if "O" in repr(header["descr"]):
            ctx.emit(
                rules.NUMPY_OBJECT.finding(
                    blob.location,
                    f"object array (dtype {header['descr']!r}): numpy.load(allow_pickle=True) "
                    "unpickles the data",
                    {"descr": repr(header["descr"])[:200], "shape": repr(header["shape"])[:200]},
                )
            )
            scan_pickle_stream(blob, ctx, start=start + hlen)
