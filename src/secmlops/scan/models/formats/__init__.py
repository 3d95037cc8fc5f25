"""The format scanners, registered in one place. Adding a format = one module + one line here.

Order matters only for speed (cheap, common formats first); every scanner whose `sniff` accepts a
blob runs on it.

The formats whose modules are large and rarely met (GGUF, SavedModel, ONNX, Keras, HDF5,
safetensors, skops) are `Deferred`: their module is imported the first time a blob passes a
cheap test on its first bytes that every file of the format passes (a superset of the real
`sniff`, checked by tests/scan/models/test_deferred_formats.py). A scan of pickles and PyTorch
files then never pays for importing them (~25 ms of a one-file scan). Their rules live in
`secmlops.scan.models.rules`, so reports and docs list them either way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from secmlops.scan.models.engine import Blob, FormatScanner, ScanContext
from secmlops.scan.models.formats import archives, numpy_file, pickle_file, torch

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # also what formats.hdf5 looks for


class Deferred:
    """A format scanner imported on first need; `could_be` must accept every blob it sniffs."""

    def __init__(self, name: str, module: str, cls: str, could_be: Callable[[Blob], bool]) -> None:
        self.name = name
        self.module = f"secmlops.scan.models.formats.{module}"
        self.cls = cls
        self.could_be = could_be
        self._scanner: FormatScanner | None = None

    def load(self) -> FormatScanner:
        if self._scanner is None:
            scanner: FormatScanner = getattr(importlib.import_module(self.module), self.cls)()
            self._scanner = scanner
        return self._scanner

    def sniff(self, blob: Blob) -> bool:
        return self.could_be(blob) and self.load().sniff(blob)

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        self.load().scan(blob, ctx)


SCANNERS: tuple[FormatScanner, ...] = (
    pickle_file.PickleScanner(),
    torch.TorchZipScanner(),
    numpy_file.NpyScanner(),
    Deferred("skops", "skops_file", "SkopsScanner", lambda b: b.name.endswith("schema.json")),
    archives.ZipScanner(),
    archives.TarScanner(),
    archives.CompressedScanner(),
    archives.SevenZipScanner(),
    Deferred(
        "safetensors", "safetensors_file", "SafetensorsScanner", lambda b: b.head[8:9] == b"{"
    ),
    Deferred("gguf", "gguf", "GgufScanner", lambda b: b.head.startswith(b"GGUF")),
    Deferred("onnx", "onnx_file", "OnnxScanner", lambda b: b.head.startswith(b"\x08")),
    Deferred("keras", "keras", "KerasScanner", lambda b: b.head.startswith(b"PK\x03\x04")),
    Deferred("hdf5", "hdf5", "Hdf5Scanner", lambda b: HDF5_SIGNATURE in b.head),
    # SavedModel protobufs start with field 1 or 2 (key 0x08, 0x0A or 0x12), possibly as an
    # over-long varint whose first byte then has the high bit set.
    Deferred(
        "tensorflow",
        "savedmodel",
        "SavedModelScanner",
        lambda b: b.head[:1] != b"" and b.head[0] & 0x7F in (0x08, 0x0A, 0x12),
    ),
)
