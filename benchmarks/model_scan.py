#!/usr/bin/env python3
"""Side-by-side benchmark of model-file scanners: picklescan, modelscan, fickling, ModelAudit
and secmlops, on the same corpus in one run.

Usage::

    python benchmarks/model_scan.py                  # full run, ~11 min on 2 cores (+3 first)
    python benchmarks/model_scan.py --quick          # smaller speed corpus
    python benchmarks/model_scan.py --json out.json  # also write every number as JSON
    python benchmarks/model_scan.py --tools picklescan,secmlops --skip-speed

Any Python >= 3.11 can start it: ``tests/scan/models/samples.py`` builds its files with torch,
joblib, pandas, ..., so when those are missing the script hands itself over to
``.venv/bin/python``.

What it measures
================
*Detection*: every tool scans every file of one corpus, one call per file (so each verdict
belongs to exactly one file), ``--jobs`` calls at a time, each bounded by ``--timeout``.
Recall is the share of malicious files flagged, the false-positive rate (FPR) the share of
benign files flagged.  The corpus is ``tests/scan/models/samples.py`` (``MALICIOUS``,
``BENIGN``, ``write_corpus``; families from ``Sample.family``) plus a larger realistic benign
set made with the real libraries by ``.venv/bin/python`` (``torch.save`` state_dicts and a
checkpoint with optimizer state in zip and legacy formats, fp16/bf16; ``joblib.dump`` of five
fitted scikit-learn estimators with no/zlib/gzip/bz2/lzma/xz compression; ``pickle.dump`` of
the same estimators; ``numpy.save``/``savez``/``savez_compressed``; ``pandas.to_pickle`` with
inferred compression).  While ``samples.py`` does not exist a small stand-in corpus built here
(``_fallback_samples``) takes its place and the report says so.  Every malicious sample's
payload creates a marker file if it is ever executed; the marker is checked after each tool,
so a scanner that *runs* a payload shows up ("ran payload").

Before a tool is measured it must pass a self-test (an ``os.system`` pickle comes out as a
finding, a plain dict pickle as clean), so a broken install cannot pass for verdicts.

*Speed*: every tool scans (a) one folder of >= 1,000 small files (pickles of protocols 2-5,
``torch.save`` checkpoints, ``joblib.dump`` files half of them zlib-compressed) in a single
call -> files/s, (b) the part of that folder every tool parses to the end (its plain pickles
and torch zips, hard-linked into ``common/``: picklescan stops at the first array of an
uncompressed joblib file and does not open zlib-compressed ones, so on the whole folder it does
less work) -> files/s, and (c) one >= 500 MB ``torch.save`` zip checkpoint of float32 tensors ->
seconds.  Wall clock of the whole process including start-up, page cache warmed beforehand,
bounded by ``--speed-timeout`` (a tool that runs out of time gets an upper bound, "<N
files/s").  Each call is made ``--speed-repeat`` times (default 3) and the fastest counts,
the same for every tool: on a shared machine one call can be slowed by other jobs.  The
environment variable ``PYTHONDONTWRITEBYTECODE`` is removed for the tools, so a working-tree
secmlops is timed with compiled modules like the pip-installed peers.  The number of files
each tool says it scanned is shown next to the rate, because skipping a file is faster than
scanning it.

Ratios are tool / secmlops: for recall and files/s above 1 means better than secmlops, for
FPR and seconds above 1 means worse.

How a verdict is read ("flagged")
=================================
Each call ends in one outcome: ``finding``, ``error`` (the tool says it could not scan the
file), ``crash`` (traceback / no report), ``clean``, ``skipped`` (the tool says the file is
unsupported or it scanned no file) or ``timeout``.  ``skipped``, ``clean`` and ``timeout`` are
never flagged: a scanner that waves an unsupported file through is failing open, which is what
this benchmark measures.  secmlops has one fixed reading: flagged = a finding at severity >=
high or an error (its exit 2 fails closed).  For a peer there are several honest readings of
the same outcomes (``READINGS``): ``gate`` -- finding, error or crash, whatever makes its exit
code fail a CI gate; ``findings`` -- findings only, errors and crashes let through; for
ModelAudit also ``critical-gate`` and ``critical`` (its ``warning`` issues not counted).  All of
them are computed and reported, and the headline figure for each peer is the reading with the
best recall - FPR on this run: the most favourable honest reading, chosen the same way for
every peer, not by hand.  Missed/flagged lists and per-family figures follow that reading.
Per tool, outcomes come from:

* **secmlops** -- ``secmlops scan models FILE --format json --output OUT --quiet``: a finding at
  severity >= high -> finding; an entry in ``errors`` or exit 2 -> error; ``files_scanned`` 0
  -> skipped.
* **picklescan** -- ``picklescan -p FILE``: exit 1 or a "dangerous import" line -> finding,
  exit 2 (scan error, e.g. "could not parse") -> error, a logged ``Unhandled exception`` ->
  crash, exit 0 with ``Scanned files: 0`` (it routes by extension / magic bytes) or with a
  "WARNING: could not parse ... as pickle" (compressed joblib/pandas files: counted as scanned,
  exit 0) -> skipped.
  Default mode: its "suspicious" (unknown, not dangerous) globals do not count; ``--strict``
  would flag every scikit-learn/pandas file.
* **modelscan** -- ``modelscan scan -p FILE -r json -o OUT --show-skipped``: any issue (any
  severity) -> finding; an entry in ``errors`` or exit 2 -> error, except ``NESTED_ZIP``
  ("ModelScan does not support nested zip files") which is its way of saying unsupported ->
  skipped; exit 3 ("no supported files") / nothing scanned -> skipped.
* **fickling** -- its CLI ``--check-safety`` parses any file as a raw pickle stream (a torch zip
  or a compressed joblib file is a parse error there), so each file is read the way fickling's
  own multi-format scan (``fickling --huggingface``, fickling/cli.py) reads each repository
  file, through its public API (``FICKLING_DRIVER``): a zip (torch or plain) or .pt/.pth ->
  ``fickling.scan_zip_archive`` (members named .pkl/.pickle/.bin); a valid pickle or a
  .bin/.pkl/.pickle name -> ``fickling.scan_file``; 7z/TAR/NumPy-pickle ("not yet supported;
  skipping") and anything else -> skipped, as fickling does.  A result above LIKELY_SAFE ->
  finding; parse/analysis errors -> error; a zip without such a member -> skipped.
* **ModelAudit** -- ``modelaudit scan FILE --format json --output OUT --no-cache``, read by its
  own exit-code rules: an issue or failed check at severity ``warning`` or ``critical`` (what
  makes it exit 1) -> finding, worst severity kept for the ``critical`` readings; exit 2 with
  nothing scanned -> skipped; other exit 2 (operational error, inconclusive / incomplete
  coverage) or ``has_errors`` -> error.  A fresh ModelAudit
  process spends 5-10 s warming up its call-graph analysis (it disassembles standard-library
  sources) before its first file, which put a per-process pass over this corpus at 23
  minutes; so each worker runs ModelAudit's own ``modelaudit.cli.main`` once per file inside one
  reused interpreter (``MODELAUDIT_DRIVER``), still one scan and one report per file, with the
  same timeout (a file that times out or kills the interpreter gets a fresh one).  Checked equal,
  outcome by outcome, to fresh processes on a 255-file version of the corpus; ``--fresh-processes`` runs it that
  way.  The speed part runs the real ``modelaudit`` script on the folder, warm-up included.
  Telemetry is switched off (``PROMPTFOO_DISABLE_TELEMETRY``, ``NO_ANALYTICS``) and the Hugging
  Face hub set offline: it otherwise retries a PostHog upload for seconds on every call.

Peer environments
=================
One virtual environment per tool (their pins conflict), ``benchmarks/.venv-peers-<tool>/``
(git-ignored), created on first use with ``--peer-python`` (default: this interpreter, else
python3.12/3.11/3.10 -- modelscan needs < 3.13) and reused while its requirement stamp matches
(``--reinstall-peers`` rebuilds).  Pinned versions are in ``PEERS``; what had to be added by
hand to get a working install: picklescan needs numpy for .npy (undeclared) and its 7z extra
(without py7zr it crashes on .7z files rather than skipping them); modelscan 0.8.8
breaks on every .npy with numpy >= 2.3 (``numpy.lib.format._check_version`` is gone), so
numpy<2.3; fickling 0.1.12 imports typing_extensions and numpy without declaring them, and its
format detection (fickling.polyglot) refuses to import without torch for one four-line helper
(``torch.serialization._is_zipfile``), which ``FICKLING_DRIVER`` supplies with the same code
instead of a multi-GB torch (from PyPI: 5.5 GB of CUDA wheels) that costs ~4 s to import per
call; ModelAudit gets the optional libraries its scanners list for the corpus formats (h5py,
onnx, py7zr, safetensors, gguf, jinja2, dill), not torch/tensorflow (weight-distribution and
SavedModel scanners only).  secmlops runs from the project venv (``.venv/bin/secmlops``).
Generated files live in ``benchmarks/.work/model_scan/`` (git-ignored); the realistic set and
the speed corpus are cached there and rebuilt when their generator or size changes.
"""

from __future__ import annotations

import argparse
import bz2
import concurrent.futures
import contextlib
import gzip
import hashlib
import io
import json
import lzma
import os
import platform
import shutil
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The benchmarks folder holds scripts named like standard-library modules (secrets.py): the
# script's own folder must not shadow them for the libraries this run imports (numpy.random
# imports `secrets`).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "benchmarks"
WORK_DIR = BENCH_DIR / ".work" / "model_scan"
PROJECT_VENV = REPO_ROOT / ".venv"
PROJECT_PYTHON = PROJECT_VENV / "bin" / "python"
SECMLOPS_BIN = PROJECT_VENV / "bin" / "secmlops"

TOOLS = ("secmlops", "picklescan", "modelscan", "fickling", "modelaudit")
SEVERITY_ORDER = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
FLAGGED_OUTCOMES = frozenset({"finding", "error", "crash"})

# Environment for every peer call: no telemetry, no hub look-ups, no colour codes in output.
PEER_ENV = {
    "PROMPTFOO_DISABLE_TELEMETRY": "1",
    "NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "NO_COLOR": "1",
    "TERM": "dumb",
    "COLUMNS": "200",
    "PYTHONWARNINGS": "ignore",
}


# --------------------------------------------------------------------------------------------
# Peer virtual environments
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerSpec:
    name: str
    requirements: tuple[str, ...]
    dist: str
    note: str = ""


PEERS: dict[str, PeerSpec] = {
    "picklescan": PeerSpec(
        "picklescan",
        # picklescan 1.0.5 imports numpy to scan .npy files but does not declare it; the 7z
        # extra (py7zr) lets it open .7z archives instead of crashing on them.
        ("picklescan[7z]==1.0.5", "numpy"),
        "picklescan",
        "numpy added by hand: picklescan 1.0.5 needs it for .npy but does not declare it",
    ),
    "modelscan": PeerSpec(
        "modelscan",
        # modelscan 0.8.8 calls numpy.lib.format._check_version, gone in numpy >= 2.3 (every
        # .npy file would be a scanner error); h5py extra for Keras .h5; the tensorflow extra
        # (SavedModel only) is left out.
        ("modelscan[h5py]==0.8.8", "numpy<2.3"),
        "modelscan",
        "numpy<2.3 pinned by hand: 0.8.8 breaks on .npy with numpy>=2.3",
    ),
    "fickling": PeerSpec(
        "fickling",
        # fickling 0.1.12 imports typing_extensions (Python < 3.12) and, in fickling.polyglot,
        # numpy without declaring either.
        ("fickling[archive]==0.1.12", "typing_extensions", "numpy"),
        "fickling",
        "typing_extensions and numpy added by hand: fickling 0.1.12 imports both undeclared",
    ),
    "modelaudit": PeerSpec(
        "modelaudit",
        # The optional libraries its scanners list for the formats in the corpus
        # (`modelaudit scan --list-scanners`); torch/tensorflow only feed the weight
        # distribution and SavedModel scanners and are left out.
        ("modelaudit==0.2.54", "h5py", "onnx", "py7zr", "safetensors", "gguf", "jinja2", "dill"),
        "modelaudit",
        "optional scanner deps h5py, onnx, py7zr, safetensors, gguf, jinja2, dill installed",
    ),
}


def peer_venv(tool: str) -> Path:
    return BENCH_DIR / f".venv-peers-{tool}"


def peer_bin(tool: str, exe: str) -> Path:
    return peer_venv(tool) / "bin" / exe


def _python_ok_for_peers(python: str) -> bool:
    try:
        out = subprocess.run(
            [
                python,
                "-c",
                "import sys, venv; print(sys.version_info[:2] >= (3, 10) "
                "and sys.version_info[:2] < (3, 13))",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.stdout.strip() == "True"


def default_peer_python() -> str:
    candidates = [sys.executable, "python3.12", "python3.11", "python3.10", "python3"]
    for cand in candidates:
        exe = cand if os.path.isabs(cand) else shutil.which(cand)
        if exe and _python_ok_for_peers(exe):
            return exe
    raise SystemExit(
        "no Python 3.10-3.12 found for the peer venvs (modelscan needs < 3.13); pass --peer-python"
    )


def ensure_peer(spec: PeerSpec, python: str, reinstall: bool, log: Callable[[str], None]) -> None:
    venv = peer_venv(spec.name)
    stamp = venv / ".model_scan-stamp.json"
    want = {"requirements": list(spec.requirements)}
    if not reinstall and stamp.exists() and (venv / "bin" / "python").exists():
        with contextlib.suppress(ValueError, OSError):
            if json.loads(stamp.read_text()) == want:
                return
    log(f"  creating {venv.relative_to(REPO_ROOT)} ({' '.join(spec.requirements)}) ...")
    if venv.exists():
        shutil.rmtree(venv)
    t0 = time.monotonic()
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    proc = subprocess.run(
        [*pip, "install", "--quiet", *spec.requirements],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise SystemExit(f"pip install for {spec.name} failed:\n{proc.stdout}\n{proc.stderr}")
    stamp.write_text(json.dumps(want))
    log(f"  {spec.name}: installed in {time.monotonic() - t0:.0f}s")


def peer_version(tool: str) -> str:
    if tool == "secmlops":
        py = PROJECT_PYTHON
        dist = "secmlops"
    else:
        py = peer_bin(tool, "python")
        dist = PEERS[tool].dist
    proc = subprocess.run(
        [str(py), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.stdout.strip() or "?"


# --------------------------------------------------------------------------------------------
# Corpus: tests/scan/models/samples.py, or the stand-in below while it does not exist
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusFile:
    name: str
    family: str
    malicious: bool
    path: Path
    origin: str  # "samples.py", "fallback" or "realistic"


def _binunicode(text: str) -> bytes:
    raw = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def _short_binunicode(text: str) -> bytes:
    raw = text.encode("utf-8")
    return b"\x8c" + bytes([len(raw)]) + raw


def _call(
    module: str,
    name: str,
    *args: str,
    proto: int = 2,
    stack_global: bool = False,
    tail: bytes = b"",
) -> bytes:
    """A pickle whose loading calls module.name(*args) -- built opcode by opcode; ``tail``
    holds raw opcodes for extra arguments pushed after the string ones."""
    head = b"\x80" + bytes([proto]) if proto >= 2 else b""
    if stack_global:
        func = _short_binunicode(module) + _short_binunicode(name) + b"\x93"
    else:
        func = b"c" + module.encode() + b"\n" + name.encode() + b"\n"
    if proto == 0:
        body = b"(" + b"".join(b"V" + a.encode("raw_unicode_escape") + b"\n" for a in args)
    else:
        body = b"(" + b"".join(_binunicode(a) for a in args)
    return head + func + body + tail + b"tR."


def _indirect_system(cmd: str) -> bytes:
    """getattr(__import__('os'), 'system')(cmd) -- no os.system GLOBAL in the stream."""
    return (
        b"\x80\x02cbuiltins\ngetattr\n(cbuiltins\n__import__\n("
        + _binunicode("os")
        + b"tR"
        + _binunicode("system")
        + b"tR("
        + _binunicode(cmd)
        + b"tR."
    )


def _memo_obfuscated(cmd: str) -> bytes:
    """posix.system stored in the memo and fetched back before the call."""
    return b"\x80\x02cposix\nsystem\nq\x010" + b"h\x01(" + _binunicode(cmd) + b"tR."


def _npy(header: dict[str, Any], payload: bytes) -> bytes:
    text = repr(header).encode("latin1")
    total = 10 + len(text) + 1
    text += b" " * ((64 - total % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _torch_zip(data_pkl: bytes, prefix: str = "archive") -> bytes:
    return _zip(
        {
            f"{prefix}/data.pkl": data_pkl,
            f"{prefix}/byteorder": b"little",
            f"{prefix}/version": b"3\n",
            f"{prefix}/.data/serialization_id": b"0123456789",
        }
    )


def _torch_legacy(payload: bytes) -> bytes:
    import pickle

    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    version = pickle.dumps(1001, protocol=2)
    sys_info = pickle.dumps(
        {
            "protocol_version": 1001,
            "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4},
        },
        protocol=2,
    )
    return magic + version + sys_info + payload + pickle.dumps([], protocol=2)


@dataclass(frozen=True)
class FallbackSample:
    """Same fields as samples.py's Sample, for the stand-in corpus."""

    name: str
    family: str
    malicious: bool
    suffix: str
    build: Callable[[str], bytes] = field(repr=False, compare=False)


def _fallback_samples() -> list[FallbackSample]:
    """Stand-in corpus used only while tests/scan/models/samples.py does not exist."""
    import pickle
    from collections import OrderedDict

    def touch(m: str) -> str:
        return f"touch {m}"

    def pyopen(m: str) -> str:
        return f"open({m!r}, 'a').close()"

    benign_obj = {"weights": [0.5, -1.25, 3.0] * 20, "bias": 0.1, "name": "lin", "shape": (3, 20)}
    s = FallbackSample
    return [
        s("os_system_p2", "raw-pickle", True, ".pkl", lambda m: _call("os", "system", touch(m))),
        s(
            "posix_system_p4",
            "raw-pickle",
            True,
            ".pickle",
            lambda m: _call("posix", "system", touch(m), proto=4, stack_global=True),
        ),
        s(
            "exec_p0_text",
            "raw-pickle",
            True,
            ".pkl",
            lambda m: _call("__builtin__", "exec", pyopen(m), proto=0),
        ),
        s(
            "eval_p5",
            "raw-pickle",
            True,
            ".pkl",
            lambda m: _call("builtins", "eval", pyopen(m), proto=5, stack_global=True),
        ),
        s(
            "subprocess_getoutput",
            "raw-pickle",
            True,
            ".pkl",
            lambda m: _call("subprocess", "getoutput", touch(m)),
        ),
        s(
            "runpy_run_code",
            "raw-pickle",
            True,
            ".pkl",
            lambda m: _call("runpy", "_run_code", pyopen(m), tail=b"}"),
        ),
        s("getattr_import_chain", "obfuscated", True, ".pkl", lambda m: _indirect_system(touch(m))),
        s("memo_indirection", "obfuscated", True, ".pkl", lambda m: _memo_obfuscated(touch(m))),
        s(
            "torch_zip_exec",
            "torch",
            True,
            ".pt",
            lambda m: _torch_zip(_call("builtins", "exec", pyopen(m))),
        ),
        s(
            "torch_zip_renamed_prefix",
            "torch",
            True,
            ".pth",
            lambda m: _torch_zip(_call("os", "system", touch(m)), prefix="resnet_final"),
        ),
        s(
            "torch_legacy_system",
            "torch",
            True,
            ".bin",
            lambda m: _torch_legacy(_call("os", "system", touch(m))),
        ),
        s(
            "joblib_gzip",
            "joblib",
            True,
            ".joblib",
            lambda m: gzip.compress(_call("os", "system", touch(m))),
        ),
        s(
            "joblib_zlib",
            "joblib",
            True,
            ".joblib",
            lambda m: zlib.compress(_call("os", "system", touch(m))),
        ),
        s(
            "joblib_lzma",
            "joblib",
            True,
            ".joblib",
            lambda m: lzma.compress(_call("os", "system", touch(m))),
        ),
        s(
            "joblib_bz2",
            "joblib",
            True,
            ".joblib",
            lambda m: bz2.compress(_call("os", "system", touch(m))),
        ),
        s(
            "npy_object_array",
            "numpy",
            True,
            ".npy",
            lambda m: _npy(
                {"descr": "|O", "fortran_order": False, "shape": (1,)},
                _call("os", "system", touch(m), proto=3),
            ),
        ),
        s(
            "npz_object_member",
            "numpy",
            True,
            ".npz",
            lambda m: _zip(
                {
                    "arr_0.npy": _npy(
                        {"descr": "|O", "fortran_order": False, "shape": (1,)},
                        _call("os", "system", touch(m)),
                    )
                }
            ),
        ),
        s(
            "zip_wrapped_pickle",
            "archive",
            True,
            ".zip",
            lambda m: _zip(
                {"model/model.pkl": _call("os", "system", touch(m))}, zipfile.ZIP_DEFLATED
            ),
        ),
        s(
            "zip_in_zip",
            "archive",
            True,
            ".zip",
            lambda m: _zip({"inner.zip": _zip({"model.pkl": _call("os", "system", touch(m))})}),
        ),
        s(
            "pickle_named_safetensors",
            "disguised",
            True,
            ".safetensors",
            lambda m: _call("os", "system", touch(m)),
        ),
        s("pickle_named_txt", "disguised", True, ".txt", lambda m: _call("os", "system", touch(m))),
        s("pickle_no_suffix", "disguised", True, "", lambda m: _call("os", "system", touch(m))),
        s(
            "plain_dict_p2",
            "raw-pickle",
            False,
            ".pkl",
            lambda m: pickle.dumps(benign_obj, protocol=2),
        ),
        s(
            "plain_dict_p5",
            "raw-pickle",
            False,
            ".pickle",
            lambda m: pickle.dumps(benign_obj, protocol=5),
        ),
        s(
            "ordered_dict_p0",
            "raw-pickle",
            False,
            ".pkl",
            lambda m: pickle.dumps(OrderedDict(a=1, b=[2, 3]), protocol=0),
        ),
        s(
            "npy_float32",
            "numpy",
            False,
            ".npy",
            lambda m: _npy(
                {"descr": "<f4", "fortran_order": False, "shape": (4,)},
                struct.pack("<4f", 1, 2, 3, 4),
            ),
        ),
        s(
            "zip_of_pickles",
            "archive",
            False,
            ".zip",
            lambda m: _zip({"model/meta.pkl": pickle.dumps(benign_obj, protocol=4)}),
        ),
    ]


def load_samples_module() -> Any | None:
    """tests/scan/models/samples.py if present (tests/ is a package)."""
    if not (REPO_ROOT / "tests" / "scan" / "models" / "samples.py").exists():
        return None
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import importlib

    return importlib.import_module("tests.scan.models.samples")


def build_sample_corpus(
    folder: Path, marker: Path, force_fallback: bool = False
) -> tuple[list[CorpusFile], str]:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    module = None if force_fallback else load_samples_module()
    if module is not None:
        paths = module.write_corpus(folder, marker)
        files = []
        for sample in [*module.MALICIOUS, *module.BENIGN]:
            path = paths.get(sample.name)
            if path is None:
                raise SystemExit(f"samples.write_corpus() wrote no file for {sample.name!r}")
            files.append(
                CorpusFile(
                    sample.name,
                    str(sample.family),
                    bool(sample.malicious),
                    Path(path),
                    "samples.py",
                )
            )
        return files, "tests/scan/models/samples.py"
    files = []
    for sample in _fallback_samples():
        path = folder / f"{sample.name}{sample.suffix}"
        path.write_bytes(sample.build(str(marker)))
        files.append(CorpusFile(sample.name, sample.family, sample.malicious, path, "fallback"))
    why = (
        "forced by --fallback-corpus"
        if force_fallback
        else "tests/scan/models/samples.py not found"
    )
    return files, f"FALLBACK stand-in corpus ({why})"


# --------------------------------------------------------------------------------------------
# Realistic benign set and speed corpus, generated with the project venv's real libraries
# --------------------------------------------------------------------------------------------

GENERATOR_SOURCE = r'''
"""Run by the project venv's python: writes benign files with the real libraries."""
import json
import pickle
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

warnings.filterwarnings("ignore")
torch.manual_seed(0)
RNG = np.random.default_rng(0)
nn = torch.nn


def torch_models():
    mlp = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3))
    rnn = nn.ModuleDict({"emb": nn.Embedding(100, 16), "lstm": nn.LSTM(16, 24, batch_first=True),
                         "head": nn.Linear(24, 3)})
    tfm = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, batch_first=True)
    return {"mlp": mlp, "cnn": cnn, "lstm": rnn, "transformer": tfm}


def estimators():
    x = RNG.standard_normal((120, 6))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    yr = x[:, 0] * 2.0 + RNG.standard_normal(120) * 0.1
    return {
        "logreg": LogisticRegression().fit(x, y),
        "random_forest": RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(x, y),
        "pipeline_pca_svc": Pipeline([("scale", StandardScaler()), ("pca", PCA(3)),
                                      ("svc", SVC(probability=True, random_state=0))]).fit(x, y),
        "gbr": GradientBoostingRegressor(n_estimators=5, random_state=0).fit(x, yr),
        "kmeans": KMeans(n_clusters=3, n_init=2, random_state=0).fit(x),
    }


def benign(out):
    out.mkdir(parents=True, exist_ok=True)
    files = []

    def add(name, family, suffix, writer):
        path = out / f"{name}{suffix}"
        writer(path)
        files.append({"name": name, "family": family, "path": str(path)})

    for mname, model in torch_models().items():
        sd = model.state_dict()
        add(f"torch_zip_{mname}", "realistic:torch-zip", ".pt", lambda p, sd=sd: torch.save(sd, p))
        add(f"torch_legacy_{mname}", "realistic:torch-legacy", ".bin",
            lambda p, sd=sd: torch.save(sd, p, _use_new_zipfile_serialization=False))
    mlp = torch_models()["mlp"]
    opt = torch.optim.Adam(mlp.parameters())
    mlp(torch.randn(4, 32)).sum().backward()
    opt.step()
    ckpt = {"epoch": 3, "model_state_dict": mlp.state_dict(), "optimizer_state_dict": opt.state_dict(),
            "loss": 0.25, "config": {"lr": 1e-3, "layers": [32, 64, 10], "name": "mlp"}}
    add("torch_zip_checkpoint_adam", "realistic:torch-zip", ".ckpt", lambda p: torch.save(ckpt, p))
    add("torch_legacy_checkpoint_adam", "realistic:torch-legacy", ".pth",
        lambda p: torch.save(ckpt, p, _use_new_zipfile_serialization=False))
    half = {k: v.half() for k, v in mlp.state_dict().items()}
    bf16 = {k: v.to(torch.bfloat16) for k, v in mlp.state_dict().items()}
    add("torch_zip_fp16", "realistic:torch-zip", ".pth", lambda p: torch.save(half, p))
    add("torch_zip_bf16", "realistic:torch-zip", ".bin", lambda p: torch.save(bf16, p))
    add("torch_legacy_bf16", "realistic:torch-legacy", ".pt",
        lambda p: torch.save(bf16, p, _use_new_zipfile_serialization=False))

    compressions = {"none": 0, "zlib": 3, "gzip": ("gzip", 3), "bz2": ("bz2", 3),
                    "lzma": ("lzma", 3), "xz": ("xz", 3)}
    for ename, est in estimators().items():
        for cname, compress in compressions.items():
            add(f"joblib_{ename}_{cname}", f"realistic:joblib-{cname}", ".joblib",
                lambda p, est=est, c=compress: joblib.dump(est, p, compress=c))
        add(f"pickle_{ename}", "realistic:sklearn-pickle", ".pkl",
            lambda p, est=est: p.write_bytes(pickle.dumps(est, protocol=5)))

    arrays = {"float32": RNG.standard_normal((64, 16)).astype(np.float32),
              "int64": np.arange(1000, dtype=np.int64).reshape(10, 100),
              "bool": RNG.standard_normal(50) > 0,
              "structured": np.array([(1, 2.0), (3, 4.0)], dtype=[("a", "<i4"), ("b", "<f8")])}
    for aname, arr in arrays.items():
        add(f"numpy_save_{aname}", "realistic:numpy-npy", ".npy", lambda p, a=arr: np.save(p, a))
    add("numpy_savez", "realistic:numpy-npz", ".npz",
        lambda p: np.savez(p, **{k: v for k, v in arrays.items() if k != "structured"}))
    add("numpy_savez_compressed", "realistic:numpy-npz", ".npz",
        lambda p: np.savez_compressed(p, **arrays))

    df = pd.DataFrame({"x": RNG.standard_normal(50), "y": RNG.integers(0, 5, 50),
                       "label": [f"c{i % 3}" for i in range(50)],
                       "when": pd.date_range("2024-01-01", periods=50, freq="h")})
    for cname, suffix in {"none": ".pkl", "gzip": ".pkl.gz", "bz2": ".pkl.bz2", "xz": ".pkl.xz"}.items():
        add(f"pandas_dataframe_{cname}", "realistic:pandas", suffix,
            lambda p: df.to_pickle(p))
    add("pandas_series", "realistic:pandas", ".pkl", lambda p: df["x"].to_pickle(p))
    add("pandas_categorical", "realistic:pandas", ".pickle",
        lambda p: df.astype({"label": "category"}).to_pickle(p))
    return files


def speed(out, n_small, large_tensors):
    small = out / "small"
    small.mkdir(parents=True, exist_ok=True)
    ests = list(estimators().values())
    for i in range(n_small):
        kind = i % 3
        if kind == 0:
            obj = {"step": i, "weights": RNG.standard_normal(48).tolist(),
                   "meta": {"run": f"run-{i}", "tags": ["a", "b"]}, "arr": RNG.standard_normal(16)}
            (small / f"obj_{i:05d}.pkl").write_bytes(pickle.dumps(obj, protocol=2 + i % 4))
        elif kind == 1:
            sd = {"fc.weight": torch.randn(16, 8), "fc.bias": torch.zeros(16), "step": i}
            torch.save(sd, small / f"ckpt_{i:05d}.pt")
        else:
            joblib.dump(ests[i % len(ests)], small / f"est_{i:05d}.joblib", compress=(i // 3) % 2 * 3)
    large = out / "large.pt"
    sd = {f"layers.{k}.weight": torch.randn(4096, 4096) for k in range(large_tensors)}
    torch.save(sd, large)
    return {"small": str(small), "n_small": n_small, "large": str(large),
            "large_bytes": large.stat().st_size}


if __name__ == "__main__":
    mode, out = sys.argv[1], Path(sys.argv[2])
    if mode == "benign":
        result = benign(out)
    else:
        result = speed(out, int(sys.argv[3]), int(sys.argv[4]))
    print(json.dumps(result))
'''


def _run_generator(args: list[str], stamp: Path, want: dict[str, Any], out: Path) -> Any:
    """Run GENERATOR_SOURCE with the project python, caching its result next to ``stamp``."""
    want = {**want, "generator": hashlib.sha256(GENERATOR_SOURCE.encode()).hexdigest()[:16]}
    if stamp.exists():
        with contextlib.suppress(ValueError, OSError, KeyError):
            cached = json.loads(stamp.read_text())
            if cached["want"] == want:
                return cached["result"]
    if not PROJECT_PYTHON.exists():
        raise SystemExit(f"{PROJECT_PYTHON} is missing: the generator needs the project venv")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    script = WORK_DIR / "generate_realistic.py"
    script.write_text(GENERATOR_SOURCE)
    proc = subprocess.run(
        [str(PROJECT_PYTHON), str(script), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"generator failed ({args[0]}):\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    stamp.write_text(json.dumps({"want": want, "result": result}))
    return result


def build_realistic_benign() -> list[CorpusFile]:
    out = WORK_DIR / "realistic"
    result = _run_generator(["benign", str(out)], WORK_DIR / "realistic.stamp.json", {}, out)
    return [
        CorpusFile(f"realistic/{r['name']}", r["family"], False, Path(r["path"]), "realistic")
        for r in result
    ]


def build_speed_corpus(n_small: int, large_mb: int) -> dict[str, Any]:
    tensor_bytes = 4096 * 4096 * 4
    n_tensors = max(1, -(-large_mb * 1_000_000 // tensor_bytes))
    out = WORK_DIR / f"speed-{n_small}-{n_tensors}"  # --quick and full runs keep their own
    result = _run_generator(
        ["speed", str(out), str(n_small), str(n_tensors)],
        WORK_DIR / f"{out.name}.stamp.json",
        {"n_small": n_small, "n_tensors": n_tensors},
        out,
    )
    result["common"], result["n_common"] = common_subset(Path(result["small"]), out / "common")
    return result


def common_subset(small: Path, dest: Path) -> tuple[str, int]:
    """Hard links to the small folder's plain pickles and torch checkpoints.

    These are the files every peer parses to the end: picklescan stops at the first array of
    an uncompressed joblib file (an error) and does not open zlib-compressed ones, so on the
    full folder it does less work than a scanner that reads every stream. Timing this subset
    too compares the same work.
    """
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    chosen = [f for f in sorted(small.iterdir()) if f.suffix in (".pkl", ".pt")]
    for f in chosen:
        os.link(f, dest / f.name)
    return str(dest), len(chosen)


# --------------------------------------------------------------------------------------------
# Running the tools
# --------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    outcome: str  # finding | error | crash | clean | skipped | timeout
    detail: str = ""
    seconds: float = 0.0
    exit_code: int | None = None
    severity: str = ""  # worst finding's severity in the tool's own words, where it has one

    @property
    def flagged(self) -> bool:
        return self.outcome in FLAGGED_OUTCOMES


@dataclass
class SpeedResult:
    seconds: float | None
    files_scanned: int | None
    outcome: str  # ok | timeout | crash | error
    detail: str = ""
    exit_code: int | None = None
    limit: float | None = None  # the timeout that cut the call short

    @classmethod
    def timed_out(cls, timeout: float) -> SpeedResult:
        return cls(None, None, "timeout", f"killed after {timeout:.0f}s", None, timeout)


@dataclass
class Proc:
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool

    @property
    def output(self) -> str:
        return self.stdout + "\n" + self.stderr


def run_bounded(cmd: Sequence[str], timeout: float, cwd: Path, env: dict[str, str]) -> Proc:
    """Run cmd in its own process group; kill the whole group when the timeout hits."""
    import signal

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
        errors="replace",
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        timed_out = True
    return Proc(
        None if timed_out else proc.returncode, out, err, time.perf_counter() - t0, timed_out
    )


def _tail(text: str, limit: int = 200) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "")[:limit]


def _load_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class Tool:
    name = ""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def missing(self) -> str | None:
        """Why the tool cannot run, or None."""
        return None

    def self_test(self, timeout: float) -> str | None:
        """A broken install must not pass for a verdict: an os.system pickle has to come out
        as a finding and a plain dict pickle as clean.  Returns what went wrong, or None."""
        import pickle

        folder = WORK_DIR / "scratch" / f"{self.name}-selftest"
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "run").mkdir(parents=True)
        try:
            for name, data, want in (
                ("canary_os_system.pkl", _call("os", "system", "true"), "finding"),
                (
                    "canary_plain.pkl",
                    pickle.dumps({"w": [1.0, 2.0], "n": "x"}, protocol=4),
                    "clean",
                ),
            ):
                (folder / name).write_bytes(data)
                verdict = self.detect(folder / name, timeout, folder / "run")
                if verdict.outcome != want:
                    return (
                        f"self-test: {name} came out {verdict.outcome!r}, not {want!r} "
                        f"({verdict.detail})"
                    )
        finally:
            self.close()
            shutil.rmtree(folder, ignore_errors=True)
        return None

    def close(self) -> None:
        """Release helper processes."""

    def detect(self, path: Path, timeout: float, scratch: Path) -> Verdict:
        raise NotImplementedError

    def speed(self, target: Path, timeout: float, scratch: Path) -> SpeedResult:
        raise NotImplementedError


class Secmlops(Tool):
    name = "secmlops"

    def missing(self) -> str | None:
        if not SECMLOPS_BIN.exists():
            return f"{SECMLOPS_BIN} not found"
        proc = run_bounded([str(SECMLOPS_BIN), "--help"], 120, REPO_ROOT, self.env)
        if proc.returncode != 0:
            return f"`secmlops --help` failed: {_tail(proc.output)}"
        return None

    def _run(self, target: Path, timeout: float, scratch: Path) -> tuple[Proc, Any]:
        out = scratch / "secmlops.json"
        out.unlink(missing_ok=True)
        cmd = [
            str(SECMLOPS_BIN),
            "scan",
            "models",
            str(target),
            "--format",
            "json",
            "--output",
            str(out),
            "--quiet",
        ]
        proc = run_bounded(cmd, timeout, scratch, self.env)
        report = _load_json(out)
        if report is None and proc.stdout.strip().startswith("{"):
            with contextlib.suppress(ValueError):
                report = json.loads(proc.stdout)
        return proc, report

    def detect(self, path: Path, timeout: float, scratch: Path) -> Verdict:
        proc, report = self._run(path, timeout, scratch)
        rc = proc.returncode
        if proc.timed_out:
            return Verdict("timeout", f"> {timeout:.0f}s", proc.seconds)
        if not isinstance(report, dict):
            return Verdict("crash", f"exit {rc}, no JSON: {_tail(proc.output)}", proc.seconds, rc)
        high = [
            f
            for f in report.get("findings", [])
            if SEVERITY_ORDER.get(str(f.get("severity")), 0) >= SEVERITY_ORDER["high"]
        ]
        if high:
            f = high[0]
            return Verdict(
                "finding",
                f"{f.get('severity')} {f.get('rule_id')}: {f.get('title')}",
                proc.seconds,
                rc,
                str(f.get("severity")),
            )
        if report.get("errors") or rc == 2:
            errs = report.get("errors") or [{"message": f"exit {rc}"}]
            return Verdict("error", str(errs[0].get("message"))[:200], proc.seconds, rc)
        if rc not in (0, 1):
            return Verdict("crash", f"exit {rc}: {_tail(proc.output)}", proc.seconds, rc)
        summary = report.get("summary") or {}
        if summary.get("files_scanned") == 0:
            skipped = summary.get("files_skipped")
            return Verdict("skipped", f"files_scanned 0, files_skipped {skipped}", proc.seconds, rc)
        return Verdict("clean", "", proc.seconds, rc)

    def speed(self, target: Path, timeout: float, scratch: Path) -> SpeedResult:
        proc, report = self._run(target, timeout, scratch)
        if proc.timed_out:
            return SpeedResult.timed_out(timeout)
        if not isinstance(report, dict):
            return SpeedResult(proc.seconds, None, "crash", _tail(proc.output), proc.returncode)
        files = {str(f.get("location", {}).get("path")) for f in report.get("findings", [])}
        summary = report.get("summary") or {}
        scanned = None
        for key in ("files_scanned", "scanned_files", "files", "scanned"):
            value = summary.get(key)
            if isinstance(value, int):
                scanned = value
                break
            if isinstance(value, list):
                scanned = len(value)
                break
        outcome = "ok" if proc.returncode in (0, 1) else "error"
        detail = (
            f"{len(report.get('errors', []))} errors, findings in {len(files)} files, "
            f"files_skipped {summary.get('files_skipped')}"
        )
        return SpeedResult(proc.seconds, scanned, outcome, detail, proc.returncode)


class Picklescan(Tool):
    name = "picklescan"

    def _cmd(self, target: Path) -> list[str]:
        return [str(peer_bin(self.name, "picklescan")), "-p", str(target)]

    @staticmethod
    def _scanned(text: str) -> int | None:
        import re

        m = re.search(r"Scanned files: (\d+)", text)
        return int(m.group(1)) if m else None

    def detect(self, path: Path, timeout: float, scratch: Path) -> Verdict:
        proc = run_bounded(self._cmd(path), timeout, scratch, self.env)
        rc, text = proc.returncode, proc.output
        if proc.timed_out:
            return Verdict("timeout", f"> {timeout:.0f}s", proc.seconds)
        dangerous = [ln.split(": ", 1)[-1] for ln in text.splitlines() if "dangerous import" in ln]
        if "Unhandled exception" in text or "Traceback" in text:
            return Verdict("crash", f"exit {rc}: {_tail(text)}", proc.seconds, rc)
        if rc == 1 or dangerous:
            return Verdict("finding", "; ".join(dangerous)[:200], proc.seconds, rc)
        if rc == 2:
            return Verdict("error", _tail(text), proc.seconds, rc)
        if rc != 0:
            return Verdict("crash", f"exit {rc}: {_tail(text)}", proc.seconds, rc)
        if self._scanned(text) == 0:
            return Verdict("skipped", "Scanned files: 0", proc.seconds, rc)
        if "could not parse" in text:
            # counted as scanned, but only a WARNING and exit 0: it did not read the file
            return Verdict(
                "skipped", f"exit 0 after: {_tail(text.split('---')[0])}", proc.seconds, rc
            )
        return Verdict("clean", "", proc.seconds, rc)

    def speed(self, target: Path, timeout: float, scratch: Path) -> SpeedResult:
        proc = run_bounded(self._cmd(target), timeout, scratch, self.env)
        if proc.timed_out:
            return SpeedResult.timed_out(timeout)
        outcome = "ok" if proc.returncode in (0, 1) else "error"
        if "Unhandled exception" in proc.output:
            outcome = "crash"
        unparsed = proc.output.count("could not parse")
        detail = f"{unparsed} files could not be parsed; {_tail(proc.output)}"
        return SpeedResult(
            proc.seconds, self._scanned(proc.output), outcome, detail, proc.returncode
        )


class Modelscan(Tool):
    name = "modelscan"
    # Errors that are modelscan's way of saying "unsupported", i.e. a skip.
    UNSUPPORTED_ERRORS = frozenset({"NESTED_ZIP"})

    def _run(self, target: Path, timeout: float, scratch: Path) -> tuple[Proc, Any]:
        out = scratch / "modelscan.json"
        out.unlink(missing_ok=True)
        cmd = [
            str(peer_bin(self.name, "modelscan")),
            "scan",
            "-p",
            str(target),
            "-r",
            "json",
            "-o",
            str(out),
            "--show-skipped",
        ]
        proc = run_bounded(cmd, timeout, scratch, self.env)
        return proc, _load_json(out)

    def detect(self, path: Path, timeout: float, scratch: Path) -> Verdict:
        proc, report = self._run(path, timeout, scratch)
        rc = proc.returncode
        if proc.timed_out:
            return Verdict("timeout", f"> {timeout:.0f}s", proc.seconds)
        if not isinstance(report, dict):
            return Verdict("crash", f"exit {rc}, no JSON: {_tail(proc.output)}", proc.seconds, rc)
        issues = report.get("issues") or []
        if issues:
            i = issues[0]
            return Verdict(
                "finding", f"{i.get('severity')}: {i.get('description')}"[:200], proc.seconds, rc
            )
        errors = report.get("errors") or []
        real = [e for e in errors if e.get("category") not in self.UNSUPPORTED_ERRORS]
        if real or (rc == 2 and not errors):
            e = real[0] if real else {"category": "EXIT", "description": _tail(proc.output)}
            return Verdict(
                "error", f"{e.get('category')}: {e.get('description')}"[:200], proc.seconds, rc
            )
        summary = report.get("summary") or {}
        scanned = (summary.get("scanned") or {}).get("total_scanned", 0)
        if errors:
            e = errors[0]
            return Verdict(
                "skipped", f"{e.get('category')}: {e.get('description')}"[:200], proc.seconds, rc
            )
        if rc == 3 or not scanned:
            skipped = (summary.get("skipped") or {}).get("skipped_files") or []
            why = (
                skipped[0].get("description", "")
                if skipped and isinstance(skipped[0], dict)
                else ""
            )
            return Verdict(
                "skipped", f"exit {rc}: no supported file {why}".strip()[:200], proc.seconds, rc
            )
        return Verdict("clean", "", proc.seconds, rc)

    def speed(self, target: Path, timeout: float, scratch: Path) -> SpeedResult:
        proc, report = self._run(target, timeout, scratch)
        if proc.timed_out:
            return SpeedResult.timed_out(timeout)
        if not isinstance(report, dict):
            return SpeedResult(proc.seconds, None, "crash", _tail(proc.output), proc.returncode)
        scanned = (report.get("summary", {}).get("scanned") or {}).get("scanned_files") or []
        files = {s.split(":", 1)[0] for s in scanned}
        outcome = "ok" if proc.returncode in (0, 1) else "error"
        detail = (
            f"{len(report.get('errors') or [])} errors, {len(report.get('issues') or [])} issues"
        )
        return SpeedResult(proc.seconds, len(files), outcome, detail, proc.returncode)


FICKLING_DRIVER = r'''
"""Reads files the way `fickling --huggingface` reads each repository file (fickling/cli.py),
through fickling's public API; prints one JSON object.

fickling.polyglot refuses to import without torch, for one helper: torch.serialization.
_is_zipfile, four lines that compare the first bytes with the ZIP local-header magic.  torch is
a multi-GB install whose import costs ~4 s per call, so that helper is provided here with the
same code instead (torch 2.x: ``f.read(4) == b"PK\\x03\\x04"``, position restored)."""
import json
import os
import sys
import types
from pathlib import PurePosixPath


def _is_zipfile(f):
    start = f.tell()
    magic = b"PK\x03\x04"
    read_bytes = f.read(len(magic))
    f.seek(start)
    return read_bytes == magic


try:
    import torch.serialization  # noqa: F401  (a real torch wins if one is installed)
except ImportError:
    _torch = types.ModuleType("torch")
    _serialization = types.ModuleType("torch.serialization")
    _serialization._is_zipfile = _is_zipfile
    _torch.serialization = _serialization
    sys.modules["torch"] = _torch
    sys.modules["torch.serialization"] = _serialization

import fickling
from fickling.analysis import Severity
from fickling.polyglot import find_file_properties

RAW = {".bin", ".pkl", ".pickle"}
ZIPPED = {".pt", ".pth"}


def verdict(path):
    ext = PurePosixPath(path).suffix.lower()
    try:
        props = find_file_properties(path)
        if props["is_torch_zip"] or props["is_standard_zip"] or ext in ZIPPED:
            results = list(fickling.scan_zip_archive(path, graceful=True).values())
            if not results:
                return {"outcome": "skipped", "detail": "zip without .pkl/.pickle/.bin member"}
        elif props["is_valid_pickle"] or ext in RAW:
            results = [fickling.scan_file(path, graceful=True)]
        elif props.get("is_7z") or props["is_tar"] or props["is_numpy_pickle"]:
            return {"outcome": "skipped", "detail": "7z/TAR/NumPy archive: not supported"}
        else:
            return {"outcome": "skipped", "detail": f"not a pickle (extension {ext!r})"}
    except Exception as e:  # noqa: BLE001
        return {"outcome": "crash", "detail": f"{type(e).__name__}: {e}"[:200]}
    worst = Severity.LIKELY_SAFE
    for r in results:
        for a in r.results:
            if a.severity > worst:
                worst = a.severity
    errors = [e for r in results for e in r.errors]
    if worst > Severity.LIKELY_SAFE:
        return {"outcome": "finding", "detail": worst.name}
    if errors:
        return {"outcome": "error", "detail": errors[0][:200]}
    if any(not r.is_safe for r in results):
        return {"outcome": "finding", "detail": max(r.severity for r in results).name}
    return {"outcome": "clean", "detail": ""}


target = sys.argv[1]
if os.path.isdir(target):
    counts = {}
    for root, _dirs, names in os.walk(target):
        for name in names:
            v = verdict(os.path.join(root, name))
            counts[v["outcome"]] = counts.get(v["outcome"], 0) + 1
    print(json.dumps({"counts": counts}))
else:
    print(json.dumps(verdict(target)))
'''


class Fickling(Tool):
    name = "fickling"

    def _cmd(self, target: Path) -> list[str]:
        driver = WORK_DIR / "fickling_driver.py"
        if not driver.exists() or driver.read_text() != FICKLING_DRIVER:
            driver.write_text(FICKLING_DRIVER)
        return [str(peer_bin(self.name, "python")), str(driver), str(target)]

    @staticmethod
    def _parse(proc: Proc) -> Any:
        try:
            return json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return None

    def detect(self, path: Path, timeout: float, scratch: Path) -> Verdict:
        proc = run_bounded(self._cmd(path), timeout, scratch, self.env)
        if proc.timed_out:
            return Verdict("timeout", f"> {timeout:.0f}s", proc.seconds)
        result = self._parse(proc)
        if not isinstance(result, dict):
            return Verdict(
                "crash",
                f"exit {proc.returncode}: {_tail(proc.output)}",
                proc.seconds,
                proc.returncode,
            )
        return Verdict(result["outcome"], result["detail"], proc.seconds, proc.returncode)

    def speed(self, target: Path, timeout: float, scratch: Path) -> SpeedResult:
        proc = run_bounded(self._cmd(target), timeout, scratch, self.env)
        if proc.timed_out:
            return SpeedResult.timed_out(timeout)
        result = self._parse(proc)
        if not isinstance(result, dict):
            return SpeedResult(proc.seconds, None, "crash", _tail(proc.output), proc.returncode)
        counts = result.get("counts") or {"file": 1}
        if "outcome" in result:
            counts = {result["outcome"]: 1}
        scanned = sum(v for k, v in counts.items() if k != "skipped")
        detail = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        return SpeedResult(proc.seconds, scanned, "ok", detail, proc.returncode)


MODELAUDIT_DRIVER = r'''
"""Runs ModelAudit's own command line (modelaudit.cli.main, exactly what the `modelaudit`
script runs) once per file, inside one reused interpreter.  Reads JSON [path, output] lines on
stdin, answers one JSON line per file on the original stdout."""
import json
import os
import sys
import time

proto = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # whatever ModelAudit prints goes to stderr, not into the protocol
from modelaudit.cli import main  # noqa: E402

for line in sys.stdin:
    path, out = json.loads(line)
    sys.argv = ["modelaudit", "scan", path, "--format", "json", "--output", out, "--no-cache"]
    t0 = time.perf_counter()
    rc, error = None, ""
    try:
        main()
        rc = 0
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # noqa: BLE001
        error = f"{type(exc).__name__}: {exc}"[:300]
    proto.write(json.dumps({"rc": rc, "seconds": time.perf_counter() - t0, "error": error}) + "\n")
'''


class WarmDriver:
    """One long-lived driver process answering one request line per file, with a deadline."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            cwd=log_path.parent,
            start_new_session=True,
            text=True,
        )

    def ask(self, request: Any, timeout: float) -> tuple[Any | None, str]:
        """(answer, "") or (None, "timeout" | "died: ...")."""
        import select

        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None, f"died: {self.log_tail()}"
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.kill()
            return None, "timeout"
        line = self.proc.stdout.readline()
        if not line:
            self.kill()
            return None, f"died: {self.log_tail()}"
        return json.loads(line), ""

    def log_tail(self) -> str:
        self.log.flush()
        with contextlib.suppress(OSError):
            return _tail(self.log_path.read_text(errors="replace"))
        return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.log.close()


class Modelaudit(Tool):
    """Detection calls go through WarmDriver: a fresh ModelAudit process spends ~8 s warming its
    call-graph analysis up (it disassembles standard-library sources) before the first file,
    which made a per-process run take ~25 minutes; inside one reused interpreter the same CLI
    gives the same per-file verdicts (``--fresh-processes`` checks that) at ~1 s a file.  The
    speed part runs the real ``modelaudit`` script on the whole folder, warm-up included."""

    name = "modelaudit"

    def __init__(self, env: dict[str, str], fresh_processes: bool = False) -> None:
        super().__init__(env)
        self.fresh_processes = fresh_processes
        self._local = threading.local()
        self._drivers: list[WarmDriver] = []
        self._lock = threading.Lock()

    def _cmd(self, target: Path, out: Path) -> list[str]:
        exe = str(peer_bin(self.name, "modelaudit"))
        return [exe, "scan", str(target), "--format", "json", "--output", str(out), "--no-cache"]

    def _driver(self) -> WarmDriver:
        driver = getattr(self._local, "driver", None)
        if driver is None or not driver.alive():
            script = WORK_DIR / "modelaudit_driver.py"
            with self._lock:
                if not script.exists() or script.read_text() != MODELAUDIT_DRIVER:
                    script.write_text(MODELAUDIT_DRIVER)
                logs = WORK_DIR / "scratch" / "modelaudit-drivers"
                logs.mkdir(parents=True, exist_ok=True)
                log_path = logs / f"driver-{len(self._drivers)}.log"
                driver = WarmDriver(
                    [str(peer_bin(self.name, "python")), str(script)], self.env, log_path
                )
                self._drivers.append(driver)
            self._local.driver = driver
        return driver

    def close(self) -> None:
        for driver in self._drivers:
            if driver.alive():
                driver.kill()
        self._drivers.clear()

    @staticmethod
    def _security(issue: dict[str, Any]) -> bool:
        return str(issue.get("severity", "")).lower() in ("warning", "critical")

    def detect(self, path: Path, timeout: float, scratch: Path) -> Verdict:
        out = scratch / "modelaudit.json"
        out.unlink(missing_ok=True)
        if self.fresh_processes:
            proc = run_bounded(self._cmd(path, out), timeout, scratch, self.env)
            if proc.timed_out:
                return Verdict("timeout", f"> {timeout:.0f}s", proc.seconds)
            return self._verdict(proc.returncode, _load_json(out), proc.output, proc.seconds)
        t0 = time.perf_counter()
        answer, problem = self._driver().ask([str(path), str(out)], timeout)
        seconds = time.perf_counter() - t0
        if problem == "timeout":
            return Verdict("timeout", f"> {timeout:.0f}s", seconds)
        if answer is None:
            return Verdict("crash", problem[:200], seconds)
        if answer["error"]:
            return Verdict("crash", answer["error"], seconds, answer["rc"])
        return self._verdict(answer["rc"], _load_json(out), "", answer["seconds"])

    def _verdict(self, rc: int | None, report: Any, output: str, seconds: float) -> Verdict:
        if not isinstance(report, dict):
            return Verdict("crash", f"exit {rc}, no JSON: {_tail(output)}", seconds, rc)
        issues = report.get("issues") or []
        security = [i for i in issues if self._security(i)]
        failed = [
            c
            for c in report.get("checks") or []
            if c.get("status") == "failed" and self._security(c)
        ]
        if security or failed:
            worst = max(
                (i for i in (*security, *failed)),
                key=lambda i: str(i.get("severity")).lower() == "critical",
            )
            return Verdict(
                "finding",
                f"{worst.get('severity')}: {worst.get('message')}"[:200],
                seconds,
                rc,
                str(worst.get("severity")).lower(),
            )
        scanned = report.get("files_scanned")
        if rc == 2 and not report.get("has_errors") and not scanned:
            why = issues[0].get("message", "") if issues else "files_scanned = 0"
            return Verdict("skipped", str(why)[:200], seconds, rc)
        if rc == 2 or report.get("has_errors"):
            why = issues[0].get("message", "") if issues else "operational error / inconclusive"
            return Verdict("error", str(why)[:200], seconds, rc)
        if rc not in (0, 1):
            return Verdict("crash", f"exit {rc}: {_tail(output)}", seconds, rc)
        if not scanned:
            return Verdict("skipped", "files_scanned = 0", seconds, rc)
        return Verdict("clean", "", seconds, rc)

    def speed(self, target: Path, timeout: float, scratch: Path) -> SpeedResult:
        out = scratch / "modelaudit.json"
        out.unlink(missing_ok=True)
        proc = run_bounded(self._cmd(target, out), timeout, scratch, self.env)
        report = _load_json(out)
        if proc.timed_out:
            return SpeedResult.timed_out(timeout)
        if not isinstance(report, dict):
            return SpeedResult(proc.seconds, None, "crash", _tail(proc.output), proc.returncode)
        outcome = "ok" if proc.returncode in (0, 1) else "error"
        issues = report.get("issues") or []
        detail = (
            f"{sum(1 for i in issues if self._security(i))} warning/critical issues, "
            f"has_errors={report.get('has_errors')}"
        )
        return SpeedResult(
            proc.seconds, report.get("files_scanned"), outcome, detail, proc.returncode
        )


TOOL_CLASSES: dict[str, type[Tool]] = {
    "secmlops": Secmlops,
    "picklescan": Picklescan,
    "modelscan": Modelscan,
    "fickling": Fickling,
    "modelaudit": Modelaudit,
}


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    # Installed packages (the peers, installed by pip) come byte-compiled; with this set, the
    # project's own edited modules would be recompiled on every start and timed as start-up.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(PEER_ENV)
    return env


def check_marker(marker: Path, tool: str, executed: dict[str, bool]) -> None:
    if marker.exists():
        executed[tool] = True
        log(f"  !! {tool}: the payload marker {marker} appeared -- a payload was EXECUTED")
        marker.unlink()


def run_detection(
    tool: Tool,
    corpus: list[CorpusFile],
    timeout: float,
    jobs: int,
    marker: Path,
    executed: dict[str, bool],
) -> dict[str, Verdict]:
    scratch_root = WORK_DIR / "scratch" / tool.name
    shutil.rmtree(scratch_root, ignore_errors=True)
    scratch_root.mkdir(parents=True)

    def one(item: tuple[int, CorpusFile]) -> tuple[str, Verdict]:
        idx, cf = item
        scratch = scratch_root / str(idx)
        scratch.mkdir()
        try:
            return cf.name, tool.detect(cf.path, timeout, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    t0 = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            verdicts = dict(pool.map(one, enumerate(corpus)))
    finally:
        tool.close()
    check_marker(marker, tool.name, executed)
    flagged = sum(v.flagged for v in verdicts.values())
    log(f"  {tool.name}: {len(corpus)} files in {time.monotonic() - t0:.0f}s, {flagged} flagged")
    return verdicts


def warm_cache(paths: Iterable[Path]) -> None:
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for f in files:
            with f.open("rb") as fh:
                while fh.read(1 << 22):
                    pass


def run_speed(
    tool: Tool,
    speed_corpus: dict[str, Any],
    timeout: float,
    marker: Path,
    executed: dict[str, bool],
    repeat: int = 1,
) -> dict[str, SpeedResult]:
    """Best of `repeat` calls per target (a call that times out is not repeated)."""
    scratch = WORK_DIR / "scratch" / f"{tool.name}-speed"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    results = {}
    for key in ("small", "common", "large"):
        target = Path(speed_corpus[key])
        warm_cache([target])
        best = tool.speed(target, timeout, scratch)
        for _ in range(repeat - 1):
            if best.seconds is None:
                break
            again = tool.speed(target, timeout, scratch)
            if (
                again.seconds is not None
                and again.outcome == best.outcome
                and again.seconds < best.seconds
            ):
                best = again
        results[key] = best
        r = results[key]
        secs = "timeout" if r.seconds is None else f"{r.seconds:.1f}s"
        log(
            f"  {tool.name} {key}: {secs}, files scanned {r.files_scanned}, {r.outcome} "
            f"(exit {r.exit_code}) {r.detail}"
        )
    shutil.rmtree(scratch, ignore_errors=True)
    check_marker(marker, tool.name, executed)
    return results


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return value / base


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.1f}%)" if n else "0/0"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


# Honest ways to read a peer's verdicts.  For each peer every reading that applies is computed
# and the one with the best recall - FPR becomes its headline figure (the most favourable
# honest reading); the others are reported next to it.  secmlops has one fixed reading: a
# finding at >= high (the only severities its "finding" outcome keeps) or an error.
Reading = tuple[str, Callable[[Verdict], bool]]
READINGS: dict[str, Reading] = {
    "gate": (
        "finding, error or crash (whatever fails its gate)",
        lambda v: v.outcome in FLAGGED_OUTCOMES,
    ),
    "findings": ("findings only (errors/crashes not flagged)", lambda v: v.outcome == "finding"),
}
TOOL_READINGS: dict[str, dict[str, Reading]] = {
    "secmlops": {
        "gate": ("finding at severity >= high, or an error", READINGS["gate"][1]),
    },
    "modelaudit": {
        **READINGS,
        "critical-gate": (
            "critical issue, error or crash (warnings not flagged)",
            lambda v: (
                v.outcome in ("error", "crash")
                or (v.outcome == "finding" and v.severity == "critical")
            ),
        ),
        "critical": (
            "critical issues only",
            lambda v: v.outcome == "finding" and v.severity == "critical",
        ),
    },
}


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def summarise(
    tools: list[str],
    corpus: list[CorpusFile],
    detection: dict[str, dict[str, Verdict]],
    speed: dict[str, dict[str, SpeedResult]],
    speed_corpus: dict[str, Any] | None,
    wall: dict[str, float],
) -> dict[str, Any]:
    malicious = [c for c in corpus if c.malicious]
    benign = [c for c in corpus if not c.malicious]
    out: dict[str, Any] = {"detection": {}, "speed": {}}
    for tool in tools:
        verdicts = detection.get(tool)
        if verdicts is None:
            continue
        readings: dict[str, dict[str, Any]] = {}
        for key, (label, pred) in TOOL_READINGS.get(tool, READINGS).items():
            k_mal = sum(pred(verdicts[c.name]) for c in malicious)
            k_ben = sum(pred(verdicts[c.name]) for c in benign)
            recall, fpr = _rate(k_mal, len(malicious)), _rate(k_ben, len(benign))
            readings[key] = {
                "label": label,
                "malicious_flagged": k_mal,
                "benign_flagged": k_ben,
                "recall": recall,
                "false_positive_rate": fpr,
                "recall_minus_fpr": (recall or 0.0) - (fpr or 0.0),
            }
        # max() keeps the first of equals: "gate" wins ties.
        chosen = max(readings, key=lambda k: readings[k]["recall_minus_fpr"])
        pred = TOOL_READINGS.get(tool, READINGS)[chosen][1]
        flagged = {c.name: pred(verdicts[c.name]) for c in corpus}
        tp = [c for c in malicious if flagged[c.name]]
        fp = [c for c in benign if flagged[c.name]]
        families: dict[str, list[int]] = {}
        for c in malicious:
            families.setdefault(c.family, [0, 0])
            families[c.family][0] += flagged[c.name]
            families[c.family][1] += 1
        benign_families: dict[str, list[int]] = {}
        for c in benign:
            benign_families.setdefault(c.family, [0, 0])
            benign_families[c.family][0] += flagged[c.name]
            benign_families[c.family][1] += 1
        outcomes: dict[str, dict[str, int]] = {"malicious": {}, "benign": {}}
        for c in corpus:
            bucket = outcomes["malicious" if c.malicious else "benign"]
            o = verdicts[c.name].outcome
            bucket[o] = bucket.get(o, 0) + 1
        out["detection"][tool] = {
            "reading": chosen,
            "reading_label": readings[chosen]["label"],
            "readings": readings,
            "wall_seconds": wall.get(tool),
            "malicious_flagged": len(tp),
            "malicious_total": len(malicious),
            "recall": _rate(len(tp), len(malicious)),
            "benign_flagged": len(fp),
            "benign_total": len(benign),
            "false_positive_rate": _rate(len(fp), len(benign)),
            "per_family_recall": {
                f: {"flagged": k, "total": n, "recall": k / n}
                for f, (k, n) in sorted(families.items())
            },
            "per_family_false_positives": {
                f: {"flagged": k, "total": n} for f, (k, n) in sorted(benign_families.items())
            },
            "outcomes": outcomes,
            "missed": [
                {"name": c.name, "family": c.family, **asdict(verdicts[c.name])}
                for c in malicious
                if not flagged[c.name]
            ],
            "false_positives": [
                {"name": c.name, "family": c.family, **asdict(verdicts[c.name])} for c in fp
            ],
            "per_file": {
                c.name: {
                    **asdict(verdicts[c.name]),
                    "flagged": flagged[c.name],
                    "malicious": c.malicious,
                    "family": c.family,
                }
                for c in corpus
            },
        }
    for tool in tools:
        res = speed.get(tool)
        if res is None:
            continue
        small, common, large = res["small"], res["common"], res["large"]
        n_small = speed_corpus["n_small"] if speed_corpus else None
        n_common = speed_corpus["n_common"] if speed_corpus else None
        out["speed"][tool] = {
            "common_folder": {
                **asdict(common),
                "files": n_common,
                "files_per_second": (
                    n_common / common.seconds if common.seconds and n_common else None
                ),
            },
            "small_folder": {
                **asdict(small),
                "files": n_small,
                "files_per_second": (
                    n_small / small.seconds if small.seconds and n_small else None
                ),
                # a timed-out tool scanned the folder at less than this rate
                "files_per_second_upper_bound": (
                    n_small / small.limit if small.limit and n_small else None
                ),
            },
            "large_checkpoint": {
                **asdict(large),
                "bytes": speed_corpus["large_bytes"] if speed_corpus else None,
            },
        }
    base_d = out["detection"].get("secmlops")
    base_s = out["speed"].get("secmlops")
    for d in out["detection"].values():
        d["ratios_vs_secmlops"] = {
            "recall": ratio(d["recall"], base_d and base_d["recall"]),
            "false_positive_rate": ratio(
                d["false_positive_rate"], base_d and base_d["false_positive_rate"]
            ),
        }
    for s in out["speed"].values():
        s["ratios_vs_secmlops"] = {
            "small_files_per_second": ratio(
                s["small_folder"]["files_per_second"],
                base_s and base_s["small_folder"]["files_per_second"],
            ),
            "small_files_per_second_upper_bound": ratio(
                s["small_folder"]["files_per_second_upper_bound"],
                base_s and base_s["small_folder"]["files_per_second"],
            ),
            "common_files_per_second": ratio(
                s["common_folder"]["files_per_second"],
                base_s and base_s["common_folder"]["files_per_second"],
            ),
            "large_seconds": ratio(
                s["large_checkpoint"]["seconds"], base_s and base_s["large_checkpoint"]["seconds"]
            ),
        }
    return out


def render(
    tools: list[str],
    corpus: list[CorpusFile],
    summary: dict[str, Any],
    versions: dict[str, str],
    speed_corpus: dict[str, Any] | None,
    executed: dict[str, bool],
) -> str:
    parts: list[str] = []
    det = summary["detection"]
    n_mal = sum(c.malicious for c in corpus)
    parts.append(
        f"DETECTION  ({n_mal} malicious, {len(corpus) - n_mal} benign files; one call per "
        "file; each peer under its best honest reading, see READINGS below)"
    )
    rows = []
    for tool in tools:
        if tool not in det:
            continue
        d = det[tool]
        r = d["ratios_vs_secmlops"]
        rows.append(
            [
                tool,
                versions.get(tool, "?"),
                pct(d["malicious_flagged"], d["malicious_total"]),
                pct(d["benign_flagged"], d["benign_total"]),
                fmt_ratio(r["recall"]),
                fmt_ratio(r["false_positive_rate"]),
                "YES" if executed.get(tool) else "no",
                "?" if d["wall_seconds"] is None else f"{d['wall_seconds']:.0f}",
                d["reading"],
            ]
        )
    parts.append(
        table(
            [
                "tool",
                "version",
                "recall",
                "false positives",
                "recall vs secmlops",
                "FPR vs secmlops",
                "ran payload",
                "wall s",
                "reading",
            ],
            rows,
        )
    )

    parts.append(
        "\nREADINGS  (ways to read the same verdicts; * = headline, the best recall - FPR)"
    )
    rows = []
    for tool in tools:
        if tool not in det:
            continue
        for key, reading in det[tool]["readings"].items():
            rows.append(
                [
                    tool,
                    ("* " if key == det[tool]["reading"] else "  ") + key,
                    reading["label"],
                    pct(reading["malicious_flagged"], det[tool]["malicious_total"]),
                    pct(reading["benign_flagged"], det[tool]["benign_total"]),
                    f"{reading['recall_minus_fpr']:+.3f}",
                ]
            )
    parts.append(
        table(["tool", "reading", "flagged when", "recall", "false positives", "recall-FPR"], rows)
    )

    parts.append("\nOUTCOMES  (malicious | benign)")
    kinds = ["finding", "error", "crash", "clean", "skipped", "timeout"]
    rows = []
    for tool in tools:
        if tool not in det:
            continue
        o = det[tool]["outcomes"]
        rows.append(
            [tool, *(f"{o['malicious'].get(k, 0)} | {o['benign'].get(k, 0)}" for k in kinds)]
        )
    parts.append(table(["tool", *kinds], rows))

    present = [t for t in tools if t in det]
    if present:
        parts.append("\nRECALL PER MALICIOUS FAMILY")
        families = sorted({c.family for c in corpus if c.malicious})
        rows = []
        for fam in families:
            cells = []
            for tool in present:
                f = det[tool]["per_family_recall"][fam]
                cells.append(f"{f['flagged']}/{f['total']}")
            rows.append([fam, *cells])
        parts.append(table(["family", *present], rows))

        parts.append("\nFALSE POSITIVES PER BENIGN FAMILY")
        families = sorted({c.family for c in corpus if not c.malicious})
        rows = []
        for fam in families:
            cells = []
            for tool in present:
                f = det[tool]["per_family_false_positives"][fam]
                cells.append(f"{f['flagged']}/{f['total']}")
            rows.append([fam, *cells])
        parts.append(table(["family", *present], rows))

        for tool in present:
            d = det[tool]
            parts.append(f"\n{tool}: missed {len(d['missed'])} malicious file(s)")
            for m in d["missed"]:
                parts.append(f"  - {m['name']} [{m['family']}] {m['outcome']}: {m['detail']}")
            parts.append(f"{tool}: flagged {len(d['false_positives'])} benign file(s)")
            for m in d["false_positives"]:
                parts.append(f"  - {m['name']} [{m['family']}] {m['outcome']}: {m['detail']}")

    sp = summary["speed"]
    if sp and speed_corpus:
        mb = speed_corpus["large_bytes"] / 1e6
        parts.append(
            f"\nSPEED  (best of {speed_corpus.get('repeat', 1)} calls each; small folder = {speed_corpus['n_small']} files, "
            f"common = its {speed_corpus['n_common']} pickles and torch zips (what every tool parses to the end), "
            f"large = {mb:.0f} MB torch zip checkpoint; wall clock incl. start-up)"
        )
        rows = []
        for tool in tools:
            if tool not in sp:
                continue
            s, lg = sp[tool]["small_folder"], sp[tool]["large_checkpoint"]
            cm = sp[tool]["common_folder"]
            r = sp[tool]["ratios_vs_secmlops"]
            fps, bound = s["files_per_second"], s["files_per_second_upper_bound"]
            rows.append(
                [
                    tool,
                    f">{s['limit']:.0f} (timeout)"
                    if s["seconds"] is None
                    else f"{s['seconds']:.1f}",
                    (f"<{bound:.1f}" if bound else "n/a") if fps is None else f"{fps:.1f}",
                    f"{s['files_scanned']}" if s["files_scanned"] is not None else "?",
                    (
                        "<" + fmt_ratio(r["small_files_per_second_upper_bound"])
                        if r["small_files_per_second"] is None
                        and r["small_files_per_second_upper_bound"] is not None
                        else fmt_ratio(r["small_files_per_second"])
                    ),
                    "timeout"
                    if cm["files_per_second"] is None
                    else f"{cm['files_per_second']:.1f}",
                    fmt_ratio(r["common_files_per_second"]),
                    f">{lg['limit']:.0f} (timeout)"
                    if lg["seconds"] is None
                    else f"{lg['seconds']:.1f}",
                    fmt_ratio(r["large_seconds"]),
                    f"{s['outcome']}/{lg['outcome']} (exit {s['exit_code']}/{lg['exit_code']})",
                ]
            )
        parts.append(
            table(
                [
                    "tool",
                    "folder s",
                    "files/s",
                    "files scanned",
                    "files/s vs secmlops",
                    "common files/s",
                    "common vs secmlops",
                    "large s",
                    "large s vs secmlops",
                    "outcome",
                ],
                rows,
            )
        )
        for tool in tools:
            if tool in sp:
                s, lg = sp[tool]["small_folder"], sp[tool]["large_checkpoint"]
                parts.append(f"  {tool}: folder: {s['detail']} | large: {lg['detail']}")
    return "\n".join(parts)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write all numbers as JSON")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smaller speed corpus (300 small files, ~200 MB checkpoint)",
    )
    ap.add_argument(
        "--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}"
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds per detection call (timeout = not flagged); default 60",
    )
    ap.add_argument(
        "--speed-timeout",
        type=float,
        default=120.0,
        help="seconds per speed call (a timed-out tool gets an upper bound); default 120",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 2,
        help="parallel detection calls (default: number of cores)",
    )
    ap.add_argument("--small-files", type=int, help="files in the speed folder (default 1200)")
    ap.add_argument("--large-mb", type=int, help="size of the large checkpoint (default 600)")
    ap.add_argument("--skip-speed", action="store_true", help="detection only")
    ap.add_argument(
        "--speed-repeat",
        type=int,
        default=3,
        help="speed calls per tool and target, the fastest counts (default 3; a timeout "
        "is not repeated)",
    )
    ap.add_argument("--skip-detection", action="store_true", help="speed only")
    ap.add_argument(
        "--fresh-processes",
        action="store_true",
        help="ModelAudit detection in a fresh process per file (slow, ~25 min) "
        "instead of one reused interpreter per worker",
    )
    ap.add_argument(
        "--fallback-corpus",
        action="store_true",
        help="use the small built-in stand-in corpus instead of tests/scan/models/samples.py",
    )
    ap.add_argument("--reinstall-peers", action="store_true", help="recreate the peer venvs")
    ap.add_argument("--peer-python", help="interpreter for creating the peer venvs")
    args = ap.parse_args(argv)
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(args.tools) - set(TOOLS)
    if unknown:
        ap.error(f"unknown tool(s): {', '.join(sorted(unknown))}")
    if args.small_files is None:
        args.small_files = 300 if args.quick else 1200
    if args.large_mb is None:
        args.large_mb = 150 if args.quick else 600
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    env = tool_env()
    notes: list[str] = []

    peers = [t for t in args.tools if t in PEERS]
    if peers:
        log("peer venvs:")
        python = args.peer_python or default_peer_python()
        for t in peers:
            ensure_peer(PEERS[t], python, args.reinstall_peers, log)
    tools: list[Tool] = []
    for name in args.tools:
        tool = (
            Modelaudit(env, args.fresh_processes)
            if name == "modelaudit"
            else TOOL_CLASSES[name](env)
        )
        why = tool.missing() or tool.self_test(args.timeout)
        if why:
            notes.append(f"{name} NOT RUN: {why}")
            log(f"  skipping {name}: {why}")
            continue
        tools.append(tool)
    names = [t.name for t in tools]
    versions = {t: peer_version(t) for t in names}

    marker = WORK_DIR / "PAYLOAD-EXECUTED.marker"
    marker.unlink(missing_ok=True)
    executed: dict[str, bool] = {}

    log("corpus:")
    try:
        samples, source = build_sample_corpus(
            WORK_DIR / "corpus", marker, force_fallback=args.fallback_corpus
        )
    except ImportError as exc:
        # samples.py builds its files with torch/joblib/pandas/...: hand over to the project
        # venv's python, which has them.
        if Path(sys.prefix).resolve() == PROJECT_VENV.resolve() or os.environ.get(
            "MODEL_SCAN_REEXEC"
        ):
            raise
        log(f"  {exc}; re-running under {PROJECT_PYTHON}")
        os.environ["MODEL_SCAN_REEXEC"] = "1"
        os.execv(  # noqa: S606 -- fixed interpreter path, argv passed through
            str(PROJECT_PYTHON),
            [
                str(PROJECT_PYTHON),
                str(Path(__file__).resolve()),
                *(sys.argv[1:] if argv is None else argv),
            ],
        )
    if source.startswith("FALLBACK"):
        notes.append(source)
    realistic = build_realistic_benign()
    corpus = [*samples, *realistic]
    seen: set[str] = set()
    for cf in corpus:
        if cf.name in seen:
            raise SystemExit(f"duplicate corpus name {cf.name!r}")
        seen.add(cf.name)
    n_mal = sum(c.malicious for c in corpus)
    log(
        f"  {source}: {len(samples)} files; realistic benign set: {len(realistic)} files; "
        f"{n_mal} malicious, {len(corpus) - n_mal} benign"
    )

    detection: dict[str, dict[str, Verdict]] = {}
    wall: dict[str, float] = {}
    if not args.skip_detection:
        log(f"detection (one call per file, {args.jobs} in parallel, timeout {args.timeout:.0f}s):")
        for tool in tools:
            t0 = time.monotonic()
            detection[tool.name] = run_detection(
                tool, corpus, args.timeout, args.jobs, marker, executed
            )
            wall[tool.name] = time.monotonic() - t0

    speed: dict[str, dict[str, SpeedResult]] = {}
    speed_corpus = None
    if not args.skip_speed:
        log(f"speed corpus: {args.small_files} small files + {args.large_mb} MB checkpoint ...")
        speed_corpus = build_speed_corpus(args.small_files, args.large_mb)
        speed_corpus = {**speed_corpus, "repeat": args.speed_repeat}
        log(
            f"speed (best of {args.speed_repeat} calls per target, "
            f"timeout {args.speed_timeout:.0f}s):"
        )
        for tool in tools:
            speed[tool.name] = run_speed(
                tool, speed_corpus, args.speed_timeout, marker, executed, args.speed_repeat
            )

    summary = summarise(names, corpus, detection, speed, speed_corpus, wall)
    elapsed = time.monotonic() - started
    print(render(names, corpus, summary, versions, speed_corpus, executed))
    for note in notes:
        print(f"NOTE: {note}")
    print(f"\ntotal run time {elapsed:.0f}s")

    if args.json:
        doc = {
            "benchmark": "model_scan",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "versions": versions,
            "peer_requirements": {t: list(PEERS[t].requirements) for t in names if t in PEERS},
            "corpus": {
                "source": source,
                "files": len(corpus),
                "malicious": n_mal,
                "benign": len(corpus) - n_mal,
                "realistic_benign": len(realistic),
            },
            "speed_corpus": speed_corpus,
            "payload_executed": {t: executed.get(t, False) for t in names},
            "notes": notes,
            "elapsed_seconds": elapsed,
            **summary,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
