"""The format scanners, registered in one place. Adding a format = one module + one line here.

Order matters only for speed (cheap, common formats first); every scanner whose `sniff` accepts a
blob runs on it.
"""

from __future__ import annotations

import secmlops.scan.models.formats.gguf as gguf
import secmlops.scan.models.formats.hdf5 as hdf5
import secmlops.scan.models.formats.keras as keras
import secmlops.scan.models.formats.onnx_file as onnx_file
import secmlops.scan.models.formats.safetensors_file as safetensors_file
import secmlops.scan.models.formats.savedmodel as savedmodel
from secmlops.scan.models.engine import FormatScanner
from secmlops.scan.models.formats import archives, numpy_file, pickle_file, skops_file, torch

SCANNERS: tuple[FormatScanner, ...] = (
    pickle_file.PickleScanner(),
    torch.TorchZipScanner(),
    numpy_file.NpyScanner(),
    skops_file.SkopsScanner(),
    archives.ZipScanner(),
    archives.TarScanner(),
    archives.CompressedScanner(),
    archives.SevenZipScanner(),
    safetensors_file.SafetensorsScanner(),
    gguf.GgufScanner(),
    onnx_file.OnnxScanner(),
    keras.KerasScanner(),
    hdf5.Hdf5Scanner(),
    savedmodel.SavedModelScanner(),
)
