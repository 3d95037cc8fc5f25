"""Reading tables: every format sniffed from bytes, every broken input a clear DataError."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmlops.errors import DataError
from secmlops.scan.data import tables
from secmlops.scan.data.tables import (
    iter_tables,
    load_table,
    read_table,
    sniff_format,
    table_files,
)

FRAME = pd.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "name": ["ana", "bé", "chloé", "dan"],
        "score": [0.5, np.nan, 2.25, 3.0],
        "ok": [True, False, True, True],
    }
)


def _write_all(folder: Path) -> dict[str, Path]:
    paths = {
        "csv": folder / "t.csv",
        "parquet": folder / "t.parquet",
        "jsonl": folder / "t.jsonl",
        "arrow": folder / "t.arrow",
        "arrow-stream": folder / "t.stream",
    }
    FRAME.to_csv(paths["csv"], index=False)
    FRAME.to_parquet(paths["parquet"])
    FRAME.to_json(paths["jsonl"], orient="records", lines=True)
    feather.write_feather(FRAME, paths["arrow"])
    table = pa.Table.from_pandas(FRAME, preserve_index=False)
    with (
        pa.OSFile(str(paths["arrow-stream"]), "wb") as sink,
        ipc.new_stream(sink, table.schema) as writer,
    ):
        writer.write_table(table)
    return paths


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "arrow", "arrow-stream"])
def test_every_format_reads_the_same_table(tmp_path: Path, fmt: str) -> None:
    path = _write_all(tmp_path)[fmt]
    table = load_table(path)
    assert table.format == fmt
    assert list(table.frame.columns) == ["id", "name", "score", "ok"]
    assert table.frame["id"].tolist() == [1, 2, 3, 4]
    assert table.frame["name"].tolist() == ["ana", "bé", "chloé", "dan"]
    assert table.frame["score"].isna().tolist() == [False, True, False, False]
    assert not table.truncated


def test_parquet_named_csv_is_read_as_parquet(tmp_path: Path) -> None:
    disguised = tmp_path / "looks_like.csv"
    FRAME.to_parquet(disguised)
    table = load_table(disguised)
    assert table.format == "parquet"
    assert table.frame["score"].tolist()[0] == 0.5


def test_tab_and_semicolon_delimiters(tmp_path: Path) -> None:
    (tmp_path / "t.tsv").write_text("a\tb\n1\tx\n2\ty\n")
    (tmp_path / "s.csv").write_text("a;b\n1;x\n2;y\n")
    for name in ("t.tsv", "s.csv"):
        assert read_table(tmp_path / name)["b"].tolist() == ["x", "y"]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfa,b\n1,2\n")
    assert list(read_table(tmp_path / "bom.csv").columns) == ["a", "b"]


def test_type_change_after_first_block_falls_back(tmp_path: Path) -> None:
    # pyarrow's streaming reader infers types from the first block: a text value far down
    # in a numeric-looking column must still be read, not crash.
    path = tmp_path / "late.csv"
    with path.open("w") as f:
        f.write("n,s\n")
        for i in range(700_000):
            f.write(f"{i},x\n")
        f.write("not-a-number,x\n")
    frame = read_table(path)
    assert len(frame) == 700_001
    assert frame["n"].iloc[-1] == "not-a-number"


@pytest.mark.parametrize("streamed", [False, True])
def test_row_cap_reads_first_rows_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    if streamed:  # files above the whole-read size are parsed block by block
        monkeypatch.setattr(tables, "WHOLE_READ_BYTES", 0)
    frame = pd.DataFrame({"a": range(1000)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", row_group_size=100)
    for name in ("t.csv", "t.parquet"):
        table = load_table(tmp_path / name, max_rows=250)
        assert table.truncated and table.rows == 250
        assert table.frame["a"].iloc[-1] == 249


def test_folder_walk_sorted_skips_hidden_and_non_tables(tmp_path: Path) -> None:
    _write_all(tmp_path)
    (tmp_path / "README.md").write_text("# not a table")
    (tmp_path / ".hidden.csv").write_text("a\n1\n")
    (tmp_path / "sub").mkdir()
    FRAME.to_parquet(tmp_path / "sub" / "noext")  # no suffix: found by its magic bytes
    names = [p.relative_to(tmp_path).as_posix() for p in table_files(tmp_path)]
    assert names == sorted(names)
    assert "README.md" not in names and ".hidden.csv" not in names
    assert "sub/noext" in names
    assert len(list(iter_tables(tmp_path))) == len(names)


# ---- broken and hostile inputs: a clear DataError, never a traceback -------------------------


def _error(path: Path, **kwargs: object) -> str:
    with pytest.raises(DataError) as info:
        read_table(path, **kwargs)  # type: ignore[arg-type]
    return info.value.message


def test_truncated_parquet(tmp_path: Path) -> None:
    FRAME.to_parquet(tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 8):
        (tmp_path / "cut.parquet").write_bytes(data[:cut])
        assert "truncated Parquet" in _error(tmp_path / "cut.parquet")


def test_corrupt_parquet_footer(tmp_path: Path) -> None:
    FRAME.to_parquet(tmp_path / "t.parquet")
    data = bytearray((tmp_path / "t.parquet").read_bytes())
    data[-8:-4] = b"\xff\xff\xff\x7f"  # footer length far larger than the file
    (tmp_path / "bad.parquet").write_bytes(bytes(data))
    assert "damaged Parquet" in _error(tmp_path / "bad.parquet")


def test_latin1_read_as_utf8_names_the_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("city,n\nZürich,1\nSão Paulo,2\n".encode("latin-1"))
    with pytest.raises(DataError) as info:
        read_table(path)
    assert "not valid UTF-8" in info.value.message
    assert "line 2" in info.value.message
    assert "Latin-1" in info.value.message
    assert "--encoding" in (info.value.hint or "")
    assert read_table(path, encoding="latin-1")["city"].tolist() == ["Zürich", "São Paulo"]


def test_utf16_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "u16.csv").write_bytes("a,b\n1,é\n".encode("utf-16"))
    assert read_table(tmp_path / "u16.csv")["b"].tolist() == ["é"]


def test_unknown_encoding_name(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a\n1\n")
    assert "unknown encoding" in _error(tmp_path / "t.csv", encoding="klingon-8")


def test_ragged_csv_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "long.csv").write_text("a,b\n1,2\n3,4\n5,6,7\n")
    assert "line 4 has 3 fields" in _error(tmp_path / "long.csv")
    (tmp_path / "short.csv").write_text('a,b\n"x\ny",2\n3\n')  # quoted newline: line 4
    assert "line 4 has 1 fields" in _error(tmp_path / "short.csv")


def test_zero_rows_and_empty_file(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text("a,b\n")
    assert "no rows" in _error(tmp_path / "header.csv")
    FRAME.iloc[:0].to_parquet(tmp_path / "zero.parquet")
    assert "no rows" in _error(tmp_path / "zero.parquet")
    assert len(read_table(tmp_path / "zero.parquet", allow_empty=True)) == 0
    (tmp_path / "empty.csv").write_bytes(b"")
    assert "empty" in _error(tmp_path / "empty.csv")
    (tmp_path / "blank.csv").write_text("\n\n")
    assert "blank" in _error(tmp_path / "blank.csv")


def test_header_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "bomb.csv"
    path.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n1" + ",1" * 999_999 + "\n")
    assert "1000000 columns" in _error(path)
    frame = pd.DataFrame({f"c{i}": [1] for i in range(50)})
    frame.to_parquet(tmp_path / "wide.parquet")
    assert "50 columns" in _error(tmp_path / "wide.parquet", max_columns=20)


def test_endless_header_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "line.csv"
    path.write_bytes(b"a" * (17 * 2**20))
    assert "first line is longer" in _error(path)


def test_binary_garbage_named_csv(tmp_path: Path) -> None:
    (tmp_path / "garbage.csv").write_bytes(bytes(range(256)) * 64)
    assert "binary content" in _error(tmp_path / "garbage.csv")
    (tmp_path / "high.csv").write_bytes(bytes(range(128, 256)) * 64)
    assert "not valid UTF-8" in _error(tmp_path / "high.csv")


def test_compressed_and_json_array(tmp_path: Path) -> None:
    import gzip

    (tmp_path / "t.csv").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    assert "gzip-compressed" in _error(tmp_path / "t.csv")
    (tmp_path / "arr.json").write_text(json.dumps([{"a": 1}]))
    assert "JSON array" in _error(tmp_path / "arr.json")


def test_bad_json_lines(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text('{"a": 1}\n{"a": 2\n')
    assert "line 2 is not valid JSON" in _error(tmp_path / "t.jsonl")
    (tmp_path / "u.jsonl").write_text('{"a": 1}\n[1, 2]\n')
    assert "line 2 is a JSON list" in _error(tmp_path / "u.jsonl")


def test_duplicate_header_names(tmp_path: Path) -> None:
    (tmp_path / "dup.csv").write_text("a,a\n1,2\n")
    assert "appears twice" in _error(tmp_path / "dup.csv")


def test_truncated_arrow_file(tmp_path: Path) -> None:
    feather.write_feather(FRAME, tmp_path / "t.arrow")
    data = (tmp_path / "t.arrow").read_bytes()
    (tmp_path / "cut.arrow").write_bytes(data[: len(data) // 2])
    assert "damaged Arrow" in _error(tmp_path / "cut.arrow")


def test_missing_path_and_symlink(tmp_path: Path) -> None:
    assert "no such file" in _error(tmp_path / "nope.csv")
    (tmp_path / "t.csv").write_text("a\n1\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "t.csv")
    with pytest.raises(DataError, match="symbolic link"):
        table_files(tmp_path / "link.csv")
    assert table_files(tmp_path) == [tmp_path / "t.csv"]


def test_sniff_does_not_trust_names(tmp_path: Path) -> None:
    FRAME.to_json(tmp_path / "data.parquet", orient="records", lines=True)
    assert sniff_format(tmp_path / "data.parquet") == "jsonl"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        frame = read_table(path)
    except DataError as exc:
        message = exc.message
    else:
        message = ""
        assert isinstance(frame, pd.DataFrame) and len(frame) > 0
    assert message or not data.strip(b"\n\r\t ,;|") or len(frame) > 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.lists(st.text(max_size=8), min_size=2, max_size=2), min_size=1, max_size=20),
    cut=st.integers(min_value=0, max_value=4000),
)
def test_truncated_parquet_fuzz(tmp_path: Path, rows: list[list[str]], cut: int) -> None:
    frame = pd.DataFrame(rows, columns=["a", "b"])
    frame.to_parquet(tmp_path / "f.parquet")
    data = (tmp_path / "f.parquet").read_bytes()
    (tmp_path / "g.parquet").write_bytes(data[: min(cut, len(data) - 1)])
    with pytest.raises(DataError):
        read_table(tmp_path / "g.parquet")


def test_csv_round_trip_of_quoted_values(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b"])
        writer.writerow(["x, with comma", 'say "hi"'])
    assert read_table(path).iloc[0].tolist() == ["x, with comma", 'say "hi"']


def test_json_lines_with_changing_types_and_new_keys(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"a": 1}\n\n{"a": "two", "b": true}\n')
    frame = read_table(path)
    assert frame["a"].tolist() == [1, "two"]
    assert frame["b"].isna().tolist() == [True, False]


def test_json_lines_key_bomb(tmp_path: Path) -> None:
    path = tmp_path / "bomb.jsonl"
    path.write_text(json.dumps({f"k{i}": i for i in range(20_001)}) + "\n")
    assert "20001 columns" in _error(path)


@pytest.mark.parametrize("chunk", [3, 5, 8, 4096])
def test_bad_byte_offset_is_exact_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(tables, "_VALIDATE_CHUNK", chunk)
    good = "a,b\n1,ééé\n2,ü\n".encode()
    path = tmp_path / "t.csv"
    path.write_bytes(good + b"3,\xff\n")
    message = _error(path)
    assert f"byte 0xff at offset {len(good) + 2} (line 4)" in message
