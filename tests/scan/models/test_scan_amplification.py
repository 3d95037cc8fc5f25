"""Small files that make a naive scanner do exponential work (found by coverage-guided fuzzing):
memo-shared containers, one payload nested-loaded many times at every level, and zip directory
entries that all point at one member. Each must be scanned in bounded work and keep its verdict.
Every scan runs in a subprocess with a timeout, so a regression fails instead of hanging."""

from __future__ import annotations

import io
import json
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

EXEC = b"cos\nsystem\n(S'true'\ntR"  # os.system("true"): a harmless command, really run by pickle


def _scan(path: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "secmlops", "scan", "models", str(path), "-f", "json", "-j", "1"],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard, not a speed target: the old code took hours on these files
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def _rules(report: dict[str, Any]) -> set[str]:
    return {f["rule_id"] for f in report["findings"]}


def test_memo_shared_tuples_sixty_levels_deep(tmp_path: Path) -> None:
    # t0 = os.system (a reference), t(i+1) = (t(i), t(i)) through the memo: 2**60 leaves.
    out = bytearray(b"\x80\x02cos\nsystem\nq\x00")
    for level in range(60):
        out += b"h" + bytes([level]) + b"h" + bytes([level]) + b"\x86q" + bytes([level + 1])
    out += b"."
    value = pickle.loads(bytes(out))  # a real, loadable pickle
    for _ in range(60):
        assert value[0] is value[1]  # shared, not copied
        value = value[0]
    assert value is __import__("os").system
    target = tmp_path / "dag.pkl"
    target.write_bytes(bytes(out))
    code, report = _scan(target)
    assert code == 1 and "os.system" in json.dumps(report["findings"])


def _nested_loads(payload: bytes, copies: int) -> bytes:
    """A pickle that calls pickle.loads(PAYLOAD) COPIES times (the payload memoised once)."""
    out = bytearray(b"\x80\x02cpickle\nloads\nq\x00")
    out += (
        b"C" + bytes([len(payload)]) + payload
        if len(payload) < 256
        else (b"B" + struct.pack("<I", len(payload)) + payload)
    )
    out += b"q\x01("
    for _ in range(copies):
        out += b"h\x00h\x01\x85R"
    out += b"l."
    return bytes(out)


def _nested(levels: int, copies: int) -> bytes:
    data = EXEC + b"."
    for _ in range(levels):
        data = _nested_loads(data, copies)
    return data


def test_one_payload_nested_loaded_many_times_at_every_level(tmp_path: Path) -> None:
    # Proof on a small instance that the construction runs its payload copies**levels times.
    small = tmp_path / "small.pkl"
    small.write_bytes(_nested(2, 3))
    log = tmp_path / "ran"
    probe = (
        "import pickle, os, sys\n"
        "os.system = lambda cmd: open(sys.argv[2], 'a').write(cmd + ';')\n"  # record, not run
        "pickle.loads(open(sys.argv[1], 'rb').read())\n"
    )
    subprocess.run([sys.executable, "-c", probe, str(small), str(log)], check=True, timeout=60)
    assert log.read_text() == "true;" * 9
    target = tmp_path / "nested.pkl"
    target.write_bytes(_nested(5, 40))  # 40**5 nested loads if each copy were scanned
    code, report = _scan(target)
    assert code == 1 and "MODEL-PICKLE-EXEC" in _rules(report)


def _entries_for_one_member(member: str, data: bytes, copies: int) -> bytes:
    """A stored zip whose central directory lists the one member COPIES times."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo(member, (2026, 1, 1, 0, 0, 0)), data)
    raw = buf.getvalue()
    end = raw.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", raw, end + 12)
    entry = raw[cd_offset : cd_offset + cd_size]
    tail = bytearray(raw[end:])
    struct.pack_into("<HHI", tail, 8, copies, copies, cd_size * copies)
    return raw[:cd_offset] + entry * copies + bytes(tail)


def test_directory_entries_that_all_point_at_one_member(tmp_path: Path) -> None:
    inner = _entries_for_one_member("archive/data.pkl", b"\x80\x02" + EXEC + b".", 1000)
    outer = _entries_for_one_member("inner.zip", inner, 1000)  # a million reads of the pickle
    with zipfile.ZipFile(io.BytesIO(outer)) as z:  # what a zip reader sees
        assert len(z.infolist()) == 1000
    target = tmp_path / "fanout.zip"
    target.write_bytes(outer)
    code, report = _scan(target)
    assert code == 1 and "MODEL-PICKLE-EXEC" in _rules(report)
    assert "MODEL-ARCHIVE-INCONSISTENT" in _rules(report)  # the repeated names are reported


def test_a_storage_record_declaring_gigabytes_is_a_bomb(tmp_path: Path) -> None:
    # PyTorch layout; the storage record is deflated and its headers declare 4 GiB for 9 bytes.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": 1}, protocol=2))
        z.writestr("archive/data/0", b"\x00" * 64, zipfile.ZIP_DEFLATED)
        z.writestr("archive/version", b"3\n")
    raw = bytearray(buf.getvalue())
    for magic, field in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size
        at = raw.find(magic)
        while at != -1:
            name_at = at + (30 if magic == b"PK\x03\x04" else 46)
            if raw[name_at : name_at + 14] == b"archive/data/0":
                struct.pack_into("<I", raw, at + field, 2**32 - 1)
            at = raw.find(magic, at + 4)
    target = tmp_path / "bomb.pt"
    target.write_bytes(bytes(raw))
    with zipfile.ZipFile(target) as z:
        assert z.getinfo("archive/data/0").file_size == 2**32 - 1
    code, report = _scan(target)
    assert code == 1 and "MODEL-ARCHIVE-BOMB" in _rules(report)
    bomb = next(f for f in report["findings"] if f["rule_id"] == "MODEL-ARCHIVE-BOMB")
    assert bomb["location"]["member"] == "archive/data/0"
