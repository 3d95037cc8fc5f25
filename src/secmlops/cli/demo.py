"""`secmlops demo`: an example ML project with real model files and harmless attack samples.

The malicious samples are generated here, never committed; their payloads would only print a
line if someone loaded them, and the demo never loads anything.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from secmlops.findings import Report, Severity

PAYLOAD = "echo secmlops-demo-payload-would-run-here"


@dataclass(frozen=True, slots=True)
class DemoFile:
    path: str
    malicious: bool
    story: str


def _protocol0_eval() -> bytes:
    return b'c__builtin__\neval\n(S\'__import__("os").system("' + PAYLOAD.encode() + b"\")'\ntR."


def _reduce_pickle(module: str, name: str, arg: str, protocol: int = 4) -> bytes:
    """A pickle that calls module.name(arg) when loaded, written opcode by opcode."""
    body = (
        b"\x8c" + bytes([len(module)]) + module.encode()
        + b"\x8c" + bytes([len(name)]) + name.encode()
        + b"\x93\x8c" + bytes([len(arg)]) + arg.encode() + b"\x85R."
    )  # fmt: skip
    return b"\x80" + bytes([protocol]) + body


def build_project(root: Path) -> list[DemoFile]:
    """Write the example project; returns what each file is."""
    import joblib
    import numpy as np
    import onnx
    from onnx import TensorProto, helper
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    files: list[DemoFile] = []
    models = root / "models"
    models.mkdir(parents=True)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    joblib.dump(clf, models / "fraud_model.joblib", compress=3)
    files.append(
        DemoFile("models/fraud_model.joblib", False, "scikit-learn pipeline saved by joblib (zlib)")
    )
    np.save(models / "embeddings.npy", rng.normal(size=(64, 8)).astype(np.float32))
    files.append(DemoFile("models/embeddings.npy", False, "numeric NumPy array"))
    weights = {"coef": clf[-1].coef_, "intercept": clf[-1].intercept_}
    (models / "weights.pkl").write_bytes(pickle.dumps(weights, protocol=4))
    files.append(DemoFile("models/weights.pkl", False, "plain pickle of NumPy arrays"))
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"])],
        "fraud",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        [helper.make_tensor("w", TensorProto.FLOAT, [4, 1], [0.1, 0.2, 0.3, 0.4])],
    )
    onnx.save(helper.make_model(graph), models / "fraud_model.onnx")
    files.append(DemoFile("models/fraud_model.onnx", False, "ONNX graph made by onnx.helper"))

    attacks = root / "downloads"
    attacks.mkdir()
    (attacks / "model.pkl").write_bytes(_reduce_pickle("os", "system", PAYLOAD))
    files.append(DemoFile("downloads/model.pkl", True, "the classic: pickle calls os.system"))
    (attacks / "legacy.bin").write_bytes(_protocol0_eval())
    files.append(
        DemoFile("downloads/legacy.bin", True, "protocol 0 with the Python 2 name __builtin__.eval")
    )
    (attacks / "weights.safetensors").write_bytes(
        _reduce_pickle("subprocess", "getoutput", PAYLOAD)
    )
    files.append(
        DemoFile(
            "downloads/weights.safetensors",
            True,
            "a pickle named .safetensors (format is read from bytes)",
        )
    )
    dotted = _reduce_pickle("torch", "serialization.os.system", PAYLOAD)
    (attacks / "dotted.pt").write_bytes(dotted)
    files.append(
        DemoFile(
            "downloads/dotted.pt", True, "dotted name reaching os.system through a module attribute"
        )
    )
    broken = _reduce_pickle("os", "system", PAYLOAD)[:-1] + b"\xff\xfe"
    buf = io.BytesIO()
    try:
        import py7zr

        with py7zr.SevenZipFile(buf, "w") as z:
            z.writestr(broken, "archive/data.pkl")
        (attacks / "nullifai.7z").write_bytes(buf.getvalue())
        files.append(
            DemoFile(
                "downloads/nullifai.7z",
                True,
                "nullifAI: 7z-packed pickle whose stream breaks after the payload",
            )
        )
    except ImportError:  # pragma: no cover - py7zr is a core dependency
        pass
    with zipfile.ZipFile(attacks / "checkpoint.zip", "w") as z:
        z.writestr(
            "archive/data.pkl",
            _reduce_pickle("builtins", "exec", f"import os; os.system({PAYLOAD!r})"),
        )
        z.writestr("../../outside.txt", "path traversal")
        z.writestr("archive/version", "3\n")
    files.append(
        DemoFile(
            "downloads/checkpoint.zip",
            True,
            "PyTorch-style zip: exec in data.pkl and a '../' member",
        )
    )
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - len(header)) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    (attacks / "features.npy").write_bytes(npy + _reduce_pickle("os", "popen", PAYLOAD, protocol=2))
    files.append(
        DemoFile("downloads/features.npy", True, "NumPy object array whose pickle calls os.popen")
    )
    return files


def run_demo(keep: Path | None, fmt: str) -> int:
    """Build, scan, explain. Exit 0 when every attack was caught and every real model passed."""
    from secmlops.report import render
    from secmlops.scan.models import scan_paths

    console = Console(highlight=False, soft_wrap=True)
    with tempfile.TemporaryDirectory(prefix="secmlops-demo-") as tmp:
        root = keep or Path(tmp) / "example-project"
        if keep is not None and keep.exists() and any(keep.iterdir()):
            from secmlops.errors import UsageError

            raise UsageError(f"{keep} is not empty", hint="give --keep a new or empty folder")
        files = build_project(root)
        if fmt == "text":
            console.print(f"[bold]secmlops demo[/]: example ML project in {root}")
            console.print(
                "Real model files (should pass) and downloaded files with harmless payloads "
                "(must be caught). Nothing is ever loaded; the scanner reads bytes only.\n"
            )
        # Scan from the project folder so the report shows short relative paths.
        here = Path.cwd()
        os.chdir(root)
        try:
            report = scan_paths([Path(".")])
        finally:
            os.chdir(here)
        flagged = _flagged(report, Path("."))
        if fmt != "text":
            print(render([report], fmt), end="")
            return 0 if _all_right(files, flagged) else 1
        console.file.write(render([report], "text", color=console.is_terminal, explain=True))
        for f in files:
            caught = f.path in flagged
            ok = caught == f.malicious
            mark = "[green]OK[/]" if ok else "[bold red]WRONG[/]"
            verdict = "blocked" if caught else "passed"
            console.print(f"{mark} {verdict:7} {f.path:34} {f.story}")
        good = _all_right(files, flagged)
        console.print(
            "\n[bold green]Every attack was caught and every real model passed.[/]"
            if good
            else "\n[bold red]The scan did not match expectations.[/]"
        )
        return 0 if good else 1


def _flagged(report: Report, root: Path) -> set[str]:
    out: set[str] = set()
    for f in report.findings:
        if f.severity >= Severity.HIGH and f.location.path:
            out.add(Path(f.location.path).as_posix())
    for e in report.errors:
        if e.location.path:
            out.add(Path(e.location.path).as_posix())
    return out


def _all_right(files: list[DemoFile], flagged: set[str]) -> bool:
    return all((f.path in flagged) == f.malicious for f in files)
