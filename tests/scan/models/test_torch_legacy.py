"""PyTorch's pre-1.0 tar checkpoints: every pickle interleaved with raw storage bytes is analysed."""

from __future__ import annotations

import io
import os
import pickle
import shlex
import struct
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import torch

from secmlops.findings import Severity
from secmlops.scan.models import scan_paths


class _Touch:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def legacy_tar(marker: Path | None) -> bytes:
    """A checkpoint in the layout torch.load's legacy tar reader expects; payload in storage #2."""
    storages = io.BytesIO()
    storages.write(pickle.dumps(2, protocol=2))
    for key in ("0", "1"):
        location: Any = _Touch(marker) if marker is not None and key == "1" else "cpu"
        storages.write(pickle.dumps((key, location, torch.FloatStorage), protocol=2))
        storages.write(struct.pack("<q", 3) + struct.pack("<3f", 1.0, 2.0, 3.0))
    storages.write(pickle.dumps([], protocol=2))
    members = {
        "sys_info": pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
        "storages": storages.getvalue(),
        "tensors": pickle.dumps(0, protocol=2),
        "pickle": pickle.dumps({"epoch": 1}, protocol=2),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_payload_in_a_later_storage_pickle_really_runs_and_is_found(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    (tmp_path / "old.pt").write_bytes(legacy_tar(marker))
    code = "import torch, sys; torch.load(sys.argv[1], weights_only=False)"
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "old.pt")], check=False, timeout=120)
    assert marker.exists(), "the sample must really execute when torch.load reads it"
    marker.unlink()
    report = scan_paths([tmp_path / "old.pt"])
    hits = [f for f in report.findings if f.rule_id == "MODEL-PICKLE-EXEC"]
    assert hits
    assert hits[0].location.member == "storages"
    assert hits[0].evidence["pickle_index"] == 2
    assert not marker.exists()


def test_benign_legacy_tar_passes(tmp_path: Path) -> None:
    (tmp_path / "old.pt").write_bytes(legacy_tar(None))
    report = scan_paths([tmp_path / "old.pt"])
    assert not [f for f in report.findings if f.severity >= Severity.MEDIUM]
    assert not report.errors


def test_broken_legacy_layout_fails_closed(tmp_path: Path) -> None:
    data = legacy_tar(None).replace(b"FloatStorage", b"WeirdStorage")
    (tmp_path / "old.pt").write_bytes(data)
    report = scan_paths([tmp_path / "old.pt"])
    assert report.errors
    assert report.exit_code(Severity.CRITICAL) == 2
