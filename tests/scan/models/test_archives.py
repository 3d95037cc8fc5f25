"""Containers: recursion, bombs, traversal, CRC tolerance, duplicates, depth, broken archives."""

from __future__ import annotations

import bz2
import gc
import gzip
import io
import lzma
import pickle
import tarfile
import zipfile
import zlib
from pathlib import Path

import py7zr
import pytest

from secmlops.findings import Severity
from secmlops.scan.models import Limits, ModelScanSettings, scan_paths

EVIL = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R."
BENIGN = pickle.dumps({"weights": [1.0, 2.0]}, protocol=4)


def rules(path: Path, **limits: int) -> set[str]:
    settings = ModelScanSettings(limits=Limits(**limits)) if limits else None  # type: ignore[arg-type]
    report = scan_paths([path], settings)
    return {f.rule_id for f in report.findings if f.severity >= Severity.MEDIUM}


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    "method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
)
def test_zip_members_are_scanned_with_every_method(tmp_path: Path, method: int) -> None:
    (tmp_path / "m.zip").write_bytes(
        zip_bytes({"archive/data.pkl": EVIL, "archive/version": b"3"}, method)
    )
    assert "MODEL-PICKLE-EXEC" in rules(tmp_path / "m.zip")
    (tmp_path / "m.zip").write_bytes(zip_bytes({"archive/data.pkl": BENIGN}, method))
    assert rules(tmp_path / "m.zip") == set()


def test_member_location_uses_bang_slash(tmp_path: Path) -> None:
    (tmp_path / "m.zip").write_bytes(zip_bytes({"a/data.pkl": EVIL}))
    report = scan_paths([tmp_path / "m.zip"])
    f = next(f for f in report.findings if f.rule_id == "MODEL-PICKLE-EXEC")
    assert f.location.member == "a/data.pkl"
    assert f.location.display().endswith("m.zip!/a/data.pkl @ byte 14")


@pytest.mark.parametrize(
    ("wrap", "suffix"),
    [
        (gzip.compress, ".gz"),
        (bz2.compress, ".bz2"),
        (lzma.compress, ".xz"),
        (lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE), ".lzma"),
        (zlib.compress, ".z"),
    ],
)
def test_compressed_wrappers_are_unwrapped(tmp_path: Path, wrap: object, suffix: str) -> None:
    assert callable(wrap)
    (tmp_path / f"m{suffix}").write_bytes(wrap(EVIL))
    assert "MODEL-PICKLE-EXEC" in rules(tmp_path / f"m{suffix}")
    (tmp_path / f"b{suffix}").write_bytes(wrap(BENIGN))
    assert rules(tmp_path / f"b{suffix}") == set()


def test_multi_member_gzip_reads_every_member(tmp_path: Path) -> None:
    (tmp_path / "m.gz").write_bytes(
        gzip.compress(pickle.dumps(1, protocol=2)) + gzip.compress(EVIL)
    )
    assert "MODEL-PICKLE-EXEC" in rules(tmp_path / "m.gz")


def test_tar_gz_and_7z(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("model/data.pkl")
        info.size = len(EVIL)
        t.addfile(info, io.BytesIO(EVIL))
    (tmp_path / "m.tgz").write_bytes(buf.getvalue())
    assert "MODEL-PICKLE-EXEC" in rules(tmp_path / "m.tgz")
    with py7zr.SevenZipFile(tmp_path / "m.7z", "w") as z:
        z.writestr(EVIL, "archive/data.pkl")
    assert "MODEL-PICKLE-EXEC" in rules(tmp_path / "m.7z")


def test_path_traversal_names(tmp_path: Path) -> None:
    for name in ["../evil.pkl", "/abs/evil.pkl", "C:/evil.pkl", "a/../../evil.pkl"]:
        (tmp_path / "t.zip").write_bytes(zip_bytes({name: BENIGN}))
        assert "MODEL-ARCHIVE-PATH-TRAVERSAL" in rules(tmp_path / "t.zip"), name
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        link = tarfile.TarInfo("weights")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        t.addfile(link)
    (tmp_path / "l.tar").write_bytes(buf.getvalue())
    assert "MODEL-ARCHIVE-PATH-TRAVERSAL" in rules(tmp_path / "l.tar")


def test_zip_bomb_is_stopped_and_fails_closed(tmp_path: Path) -> None:
    (tmp_path / "bomb.zip").write_bytes(
        zip_bytes({"big.bin": b"\x00" * (64 * 2**20)}, zipfile.ZIP_DEFLATED)
    )
    report = scan_paths([tmp_path / "bomb.zip"])
    assert "MODEL-ARCHIVE-BOMB" in {f.rule_id for f in report.findings}
    assert report.errors and report.exit_code(Severity.CRITICAL) == 2


def test_gzip_bomb_is_stopped(tmp_path: Path) -> None:
    (tmp_path / "bomb.gz").write_bytes(gzip.compress(b"\x00" * (64 * 2**20)))
    report = scan_paths([tmp_path / "bomb.gz"])
    assert "MODEL-ARCHIVE-BOMB" in {f.rule_id for f in report.findings}
    assert report.exit_code(Severity.HIGH) == 2


def test_expanded_size_budget(tmp_path: Path) -> None:
    (tmp_path / "m.gz").write_bytes(gzip.compress(bytes(range(256)) * 8192))
    settings = ModelScanSettings(limits=Limits(max_expanded_bytes=1 << 20))
    report = scan_paths([tmp_path / "m.gz"], settings)
    assert "MODEL-ARCHIVE-BOMB" in {f.rule_id for f in report.findings}


def test_nesting_depth_limit(tmp_path: Path) -> None:
    data = EVIL
    for i in range(10):
        data = zip_bytes({f"layer{i}.zip" if i else "data.pkl": data})
    (tmp_path / "deep.zip").write_bytes(data)
    report = scan_paths([tmp_path / "deep.zip"])
    assert "MODEL-ARCHIVE-DEPTH" in {f.rule_id for f in report.findings}
    assert report.exit_code(Severity.CRITICAL) == 2


def test_wrong_crc_is_tolerated_but_flagged(tmp_path: Path) -> None:
    data = bytearray(zip_bytes({"archive/data.pkl": EVIL}))
    # Corrupt the CRC in both headers; PyTorch's reader still loads such a member.
    crc = zlib.crc32(EVIL).to_bytes(4, "little")
    data = bytearray(bytes(data).replace(crc, b"\xde\xad\xbe\xef"))
    (tmp_path / "crc.pt").write_bytes(bytes(data))
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(tmp_path / "crc.pt").read("archive/data.pkl")
    found = rules(tmp_path / "crc.pt")
    assert {"MODEL-PICKLE-EXEC", "MODEL-ARCHIVE-INCONSISTENT"} <= found


def test_duplicate_member_names_are_flagged_and_both_scanned(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", EVIL)
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("archive/data.pkl", BENIGN)
    (tmp_path / "dup.pt").write_bytes(buf.getvalue())
    assert {"MODEL-PICKLE-EXEC", "MODEL-ARCHIVE-INCONSISTENT"} <= rules(tmp_path / "dup.pt")


def test_pickle_prepended_to_a_zip_is_found(tmp_path: Path) -> None:
    (tmp_path / "poly.pt").write_bytes(EVIL + zip_bytes({"archive/data.pkl": BENIGN}))
    assert "MODEL-PICKLE-EXEC" in rules(tmp_path / "poly.pt")


@pytest.mark.parametrize("cut", [10, 40, 100])
def test_truncated_archives_fail_closed(tmp_path: Path, cut: int) -> None:
    whole = zip_bytes({"archive/data.pkl": BENIGN * 5}, zipfile.ZIP_DEFLATED)
    (tmp_path / "cut.zip").write_bytes(whole[:-cut])
    report = scan_paths([tmp_path / "cut.zip"])
    assert report.exit_code(Severity.CRITICAL) in (1, 2)


def test_truncated_gzip_fails_closed(tmp_path: Path) -> None:
    (tmp_path / "cut.gz").write_bytes(gzip.compress(BENIGN * 50)[:-12])
    report = scan_paths([tmp_path / "cut.gz"])
    assert report.errors
    assert report.exit_code(Severity.CRITICAL) == 2


def test_encrypted_zip_member_fails_closed(tmp_path: Path) -> None:
    data = bytearray(zip_bytes({"archive/data.pkl": BENIGN}))
    # Set the "encrypted" general-purpose flag in the local and central headers.
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        pos = data.find(sig)
        flag_at = pos + (6 if sig == b"PK\x03\x04" else 8)
        data[flag_at] |= 1
    (tmp_path / "enc.zip").write_bytes(bytes(data))
    report = scan_paths([tmp_path / "enc.zip"])
    assert "MODEL-ARCHIVE-ENCRYPTED" in {f.rule_id for f in report.findings}
    assert report.exit_code(Severity.CRITICAL) == 2


def test_torch_storage_records_are_not_unpickled(tmp_path: Path) -> None:
    # Raw tensor bytes that happen to look like opcodes must not produce findings.
    (tmp_path / "t.pt").write_bytes(
        zip_bytes({"archive/data.pkl": BENIGN, "archive/data/0": b"K\x05N\x17" * 100})
    )
    assert rules(tmp_path / "t.pt") == set()


def test_zstd_wrapper_and_its_truncation(tmp_path: Path) -> None:
    zstd = pytest.importorskip("backports.zstd")  # py7zr's dependency on Python < 3.14
    (tmp_path / "m.zst").write_bytes(zstd.compress(EVIL))
    assert "MODEL-PICKLE-EXEC" in rules(tmp_path / "m.zst")
    (tmp_path / "cut.zst").write_bytes(zstd.compress(BENIGN * 100)[:-7])
    report = scan_paths([tmp_path / "cut.zst"])
    assert report.errors
    assert report.exit_code(Severity.CRITICAL) == 2


def test_parallel_scan_reports_the_same_as_serial(tmp_path: Path) -> None:
    for i in range(40):
        (tmp_path / f"{i}.pkl").write_bytes(EVIL if i % 7 == 0 else BENIGN)
    (tmp_path / "cut.gz").write_bytes(gzip.compress(BENIGN * 50)[:-12])
    serial = scan_paths([tmp_path], jobs=1)
    parallel = scan_paths([tmp_path], jobs=2)
    assert [f.to_dict() for f in parallel.sorted_findings()] == [
        f.to_dict() for f in serial.sorted_findings()
    ]
    assert [e.to_dict() for e in parallel.errors] == [e.to_dict() for e in serial.errors]
    assert parallel.files_scanned == serial.files_scanned == 41
    assert gc.get_freeze_count() == 0  # the objects frozen for the fork are collectable again


def test_work_folder_is_made_only_when_needed_and_always_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import tempfile

    made: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def counting_mkdtemp(*args: object, **kwargs: object) -> str:
        made.append(real_mkdtemp(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", counting_mkdtemp)
    plain = tmp_path / "plain"
    plain.mkdir()
    for i in range(3):
        (plain / f"m{i}.pkl").write_bytes(BENIGN)
    assert scan_paths([plain]).files_scanned == 3
    assert made == []  # small files and members never need a folder on disk
    # A deflated member over 1 MiB is written to a file in the scan's own folder.
    big = tmp_path / "big.zip"
    filler = os.urandom(2 * 2**20)  # incompressible: no ratio finding
    big.write_bytes(zip_bytes({"a/data.pkl": EVIL, "a/blob.dat": filler}, zipfile.ZIP_DEFLATED))
    assert rules(big) == {"MODEL-PICKLE-EXEC"}
    assert len(made) == 1
    assert not Path(made[0]).exists()
