"""The format scanners, registered in one place. Adding a format = one module + one line here.

Order matters only for speed (cheap, common formats first); every scanner whose `sniff` accepts a
blob runs on it.
"""

from __future__ import annotations

from secmlops.scan.models.engine import FormatScanner
from secmlops.scan.models.formats import archives, numpy_file, pickle_file, torch

SCANNERS: tuple[FormatScanner, ...] = (
    pickle_file.PickleScanner(),
    torch.TorchZipScanner(),
    numpy_file.NpyScanner(),
    archives.ZipScanner(),
    archives.TarScanner(),
    archives.CompressedScanner(),
    archives.SevenZipScanner(),
)
