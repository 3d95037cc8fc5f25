"""Read tabular data sets (CSV, Parquet, JSON Lines, Arrow IPC / Feather) into pandas.

The format is decided from the bytes, never from the file name: a Parquet file called `x.csv`
is read as Parquet, binary garbage called `x.csv` is refused. Every way a file can be broken
(truncated, wrong encoding, ragged rows, no rows, a header with a million columns) becomes a
`DataError` that says what is wrong and where, never a parser traceback.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from secmlops.errors import DataError

DEFAULT_MAX_COLUMNS = 10_000
DEFAULT_MAX_ROWS = 50_000_000
# A header line longer than this is not a header: refuse it before splitting it.
MAX_HEADER_BYTES = 16 * 2**20
_SNIFF_BYTES = 64 * 2**10
# CSV files up to this size are parsed whole (fast, multi-threaded); larger ones are streamed
# in blocks so that --max-rows bounds memory.
WHOLE_READ_BYTES = 2 * 2**30
_VALIDATE_CHUNK = 16 * 2**20

# Names of files a folder walk treats as tables when their bytes do not already say so.
TABLE_SUFFIXES = frozenset(
    {".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".parquet", ".pq", ".arrow", ".feather",
     ".ipc"}
)  # fmt: skip

PARQUET = "parquet"
ARROW_FILE = "arrow"
ARROW_STREAM = "arrow-stream"
FEATHER_V1 = "feather-v1"
JSONL = "jsonl"
CSV = "csv"

_ENCODING_HINT = "pass --encoding with the file's real encoding (for example latin-1 or cp1252)"


@dataclass(frozen=True, slots=True)
class LoadedTable:
    """One table read from one file, with what the reader had to leave out."""

    path: Path
    format: str
    frame: pd.DataFrame
    truncated: bool = False  # more rows than max_rows: only the first max_rows were read

    @property
    def rows(self) -> int:
        return len(self.frame)


def sniff_format(path: Path, head: bytes | None = None) -> str:
    """The table format of `path`, decided from its first bytes (and the Parquet footer)."""
    if head is None:
        head = _read_head(path)
    if not head:
        raise DataError(f"{path}: the file is empty", hint="an empty file holds no table")
    if head.startswith(b"PAR1"):
        return PARQUET
    if head.startswith(b"ARROW1"):
        return ARROW_FILE
    if head.startswith(b"FEA1"):
        return FEATHER_V1
    if head.startswith(b"\xff\xff\xff\xff") and len(head) >= 8:
        return ARROW_STREAM
    for magic, what in (
        (b"\x1f\x8b", "gzip"),
        (b"PK\x03\x04", "zip"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"BZh", "bzip2"),
        (b"\xfd7zXZ", "xz"),
    ):
        if head.startswith(magic):
            raise DataError(
                f"{path}: this is a {what}-compressed file, not a table",
                hint="decompress it first and check the table inside",
            )
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(
            f"{path}: binary content (NUL bytes) that is not Parquet, Arrow or Feather",
            hint="only CSV, JSON Lines, Parquet and Arrow IPC/Feather tables can be read",
        )
    text = head.lstrip(codecs.BOM_UTF8).lstrip()
    if text.startswith(b"{"):
        return JSONL
    if text.startswith(b"["):
        raise DataError(
            f"{path}: a JSON array, not JSON Lines",
            hint="write one JSON object per line (JSON Lines)",
        )
    return CSV


def read_table(
    path: Path | str,
    *,
    encoding: str | None = None,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    max_rows: int | None = None,
    allow_empty: bool = False,
) -> pd.DataFrame:
    """Read one table file into a DataFrame (format sniffed from bytes; DataError if broken)."""
    return load_table(
        Path(path),
        encoding=encoding,
        max_columns=max_columns,
        max_rows=max_rows,
        allow_empty=allow_empty,
    ).frame


def iter_tables(
    path: Path | str,
    *,
    encoding: str | None = None,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    max_rows: int | None = None,
) -> Iterator[tuple[Path, pd.DataFrame]]:
    """Each table under `path` (a file or a folder, walked in sorted order) with its frame.

    Raises DataError at the first file that cannot be read; `table_files` plus `load_table`
    let a caller carry on past broken files.
    """
    for file in table_files(Path(path)):
        table = load_table(file, encoding=encoding, max_columns=max_columns, max_rows=max_rows)
        yield file, table.frame


def table_files(path: Path) -> list[Path]:
    """The table files under `path`: the file itself, or a folder's files in sorted order.

    In a folder, a file counts as a table when its bytes are Parquet/Arrow/Feather or its name
    ends in a table suffix; hidden files and symbolic links are skipped.
    """
    if path.is_symlink():
        raise DataError(f"{path}: is a symbolic link", hint="pass the real file or folder")
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder")
    found: list[Path] = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            file = Path(root) / name
            if name.startswith(".") or file.is_symlink() or not file.is_file():
                continue
            if file.suffix.lower() in TABLE_SUFFIXES or _has_binary_table_magic(file):
                found.append(file)
    return sorted(found, key=lambda f: f.relative_to(path).as_posix())


def load_table(
    path: Path,
    *,
    encoding: str | None = None,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    max_rows: int | None = None,
    allow_empty: bool = False,
) -> LoadedTable:
    """Read one table file; the result says its format and whether rows were left out."""
    limit = DEFAULT_MAX_ROWS if max_rows is None else max_rows
    if limit < 1:
        raise DataError(f"max_rows must be at least 1, not {limit}")
    head = _read_head(path)
    fmt = sniff_format(path, head)
    try:
        if fmt == PARQUET:
            frame, truncated = _read_parquet(path, max_columns, limit)
        elif fmt in (ARROW_FILE, ARROW_STREAM, FEATHER_V1):
            frame, truncated = _read_arrow(path, fmt, max_columns, limit)
        elif fmt == JSONL:
            frame, truncated = _read_jsonl(path, encoding, max_columns, limit)
        else:
            frame, truncated = _read_csv(path, head, encoding, max_columns, limit)
    except MemoryError:
        raise DataError(
            f"{path}: not enough memory to read the table",
            hint="lower --max-rows or split the file",
        ) from None
    if len(frame) == 0 and not allow_empty:
        raise DataError(
            f"{path}: the table has {len(frame.columns)} columns but no rows",
            hint="an empty table cannot be checked; produce the data again",
        )
    return LoadedTable(path, fmt, frame, truncated)


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(_SNIFF_BYTES)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _has_binary_table_magic(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return head.startswith((b"PAR1", b"ARROW1", b"FEA1", b"\xff\xff\xff\xff"))


def _too_many_columns(path: Path, count: int, max_columns: int) -> DataError:
    return DataError(
        f"{path}: {count} columns, more than the limit of {max_columns}",
        hint="raise --max-columns if the table really is that wide",
    )


def _read_parquet(path: Path, max_columns: int, max_rows: int) -> tuple[pd.DataFrame, bool]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - 4))
        tail = f.read(4)
    if size < 12 or tail != b"PAR1":
        raise DataError(
            f"{path}: truncated Parquet file (the footer magic PAR1 is missing; {size} bytes)",
            hint="the file was cut short while copying or writing; fetch it again",
        )
    try:
        parquet = pq.ParquetFile(path)
        count = parquet.metadata.num_columns
        if count > max_columns:
            raise _too_many_columns(path, count, max_columns)
        total = parquet.metadata.num_rows
        if total <= max_rows:
            return parquet.read().to_pandas(), False
        batches = parquet.iter_batches(batch_size=65_536)
        return _first_rows(batches, parquet.schema_arrow, max_rows)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(
            f"{path}: damaged Parquet file: {_first_line(exc)}",
            hint="the file is corrupt or was written by a broken writer; fetch it again",
        ) from None


def _read_arrow(path: Path, fmt: str, max_columns: int, max_rows: int) -> tuple[pd.DataFrame, bool]:
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.ipc as ipc

    try:
        if fmt == FEATHER_V1:
            table = feather.read_table(path)
            if table.num_columns > max_columns:
                raise _too_many_columns(path, table.num_columns, max_columns)
            return table.slice(0, max_rows).to_pandas(), table.num_rows > max_rows
        with pa.memory_map(str(path), "r") as source:
            reader: Any = ipc.open_file(source) if fmt == ARROW_FILE else ipc.open_stream(source)
            if len(reader.schema) > max_columns:
                raise _too_many_columns(path, len(reader.schema), max_columns)
            return _first_rows(_record_batches(reader, fmt), reader.schema, max_rows)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(
            f"{path}: damaged Arrow file: {_first_line(exc)}",
            hint="the file is corrupt or truncated; fetch it again",
        ) from None


def _first_rows(batches: Iterable[Any], schema: Any, max_rows: int) -> tuple[pd.DataFrame, bool]:
    """The first `max_rows` rows of a stream of record batches, and whether rows were left."""
    import pyarrow as pa

    kept: list[Any] = []
    count = 0
    truncated = False
    for batch in batches:
        if count >= max_rows:
            truncated = True
            break
        kept.append(batch.slice(0, max_rows - count))
        count += len(kept[-1])
        truncated = len(batch) > len(kept[-1])
    return pa.Table.from_batches(kept, schema=schema).to_pandas(), truncated


def _record_batches(reader: Any, fmt: str) -> Iterator[Any]:
    if fmt == ARROW_FILE:
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)
    else:
        yield from reader


def _check_encoding(path: Path, encoding: str) -> None:
    """Decode the whole file once, in chunks, so a bad byte is reported with its line."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}", hint=_ENCODING_HINT) from None
    offset = 0  # bytes handed to the decoder so far
    with path.open("rb") as f:
        while chunk := f.read(_VALIDATE_CHUNK):
            pending = len(decoder.getstate()[0])  # bytes the decoder held back last time
            try:
                decoder.decode(chunk, final=False)
            except UnicodeDecodeError as exc:
                bad = offset - pending + exc.start
                raise DataError(
                    f"{path}: not valid {_display(encoding)}: byte 0x{exc.object[exc.start]:02x} "
                    f"at offset {bad} (line {_line_at(path, bad)}){_guess_encoding(chunk)}",
                    hint=_ENCODING_HINT,
                ) from None
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise DataError(
                f"{path}: not valid {_display(encoding)}: the file ends inside a multi-byte character",
                hint="the file was cut short or uses another encoding; " + _ENCODING_HINT,
            ) from None


def _line_at(path: Path, offset: int) -> int:
    """The 1-based line number of byte `offset` (counted only on the error path)."""
    lines = 1
    with path.open("rb") as f:
        while offset > 0 and (chunk := f.read(min(_VALIDATE_CHUNK, offset))):
            lines += chunk.count(b"\n")
            offset -= len(chunk)
    return lines


def _display(encoding: str) -> str:
    return "UTF-8" if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") else encoding


def _guess_encoding(sample: bytes) -> str:
    """A short guess for the error message of what a non-UTF-8 text file is encoded in."""
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "; it looks like UTF-16 (byte order mark)"
    high = {b for b in sample if b >= 0x80}
    if not high:
        return ""
    if high & set(range(0x80, 0xA0)):
        return "; it looks like Windows-1252 (cp1252)"
    return "; it looks like Latin-1 (ISO-8859-1) or Windows-1252"


def _default_encoding(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig"  # plain UTF-8, tolerating the byte order mark Excel writes


def _header(path: Path, encoding: str) -> str:
    """The first line of a text table, refused if absurdly long."""
    with path.open("rb") as f:
        raw = f.read(MAX_HEADER_BYTES + 1)
    end = raw.find(b"\n")
    if end < 0 and len(raw) > MAX_HEADER_BYTES:
        raise DataError(
            f"{path}: the first line is longer than {MAX_HEADER_BYTES // 2**20} MiB",
            hint="this is not a usable table header (a header bomb?)",
        )
    if encoding.startswith("utf-16"):
        return raw.decode(encoding, errors="replace").split("\n", 1)[0]
    return raw[: end if end >= 0 else len(raw)].decode(encoding, errors="replace")


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _read_csv(
    path: Path, head: bytes, encoding: str | None, max_columns: int, max_rows: int
) -> tuple[pd.DataFrame, bool]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    enc = encoding or _default_encoding(head)
    _check_encoding(path, enc)
    header = _header(path, enc)
    delimiter = _delimiter(header)
    names = next(csv.reader([header], delimiter=delimiter), [])
    if len(names) > max_columns:
        raise _too_many_columns(path, len(names), max_columns)
    if not header.strip():
        raise DataError(f"{path}: the first line (the header) is blank")
    arrow_encoding = "utf8" if enc in ("utf-8", "utf-8-sig", "utf8") else enc
    read_options = pacsv.ReadOptions(encoding=arrow_encoding, block_size=8 * 2**20)
    parse_options = pacsv.ParseOptions(delimiter=delimiter)
    try:
        if path.stat().st_size <= WHOLE_READ_BYTES:
            # The multi-threaded reader needs about a third of the CPU time of the streaming one.
            table = pacsv.read_csv(path, read_options=read_options, parse_options=parse_options)
            truncated = table.num_rows > max_rows
            frame = table.slice(0, max_rows).to_pandas()
        else:
            frame, truncated = _stream_csv(path, read_options, parse_options, max_rows)
    except pa.ArrowInvalid as exc:
        message = str(exc)
        if "Expected" in message and "columns" in message:
            raise _ragged(path, enc, delimiter) from None
        if "conversion error" in message or "In CSV column" in message:
            # The streaming reader infers types from the first block; a later block that
            # does not fit needs a reader that sees all values of a column first.
            return _read_csv_pandas(path, enc, delimiter, max_rows)
        raise DataError(f"{path}: cannot parse CSV: {_first_line(exc)}") from None
    frame.columns = _unique_names(path, [str(c) for c in frame.columns])
    return frame, truncated


def _stream_csv(
    path: Path, read_options: Any, parse_options: Any, max_rows: int
) -> tuple[pd.DataFrame, bool]:
    """Read a CSV too large to load whole in blocks, stopping at `max_rows`."""
    import pyarrow.csv as pacsv

    reader = pacsv.open_csv(path, read_options=read_options, parse_options=parse_options)
    return _first_rows(reader, reader.schema, max_rows)


def _read_csv_pandas(
    path: Path, encoding: str, delimiter: str, max_rows: int
) -> tuple[pd.DataFrame, bool]:
    try:
        frame = pd.read_csv(
            path, sep=delimiter, encoding=encoding, low_memory=False, nrows=max_rows + 1
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{path}: cannot parse CSV: {_first_line(exc)}") from None
    truncated = len(frame) > max_rows
    return frame.iloc[:max_rows], truncated


def _ragged(path: Path, encoding: str, delimiter: str) -> DataError:
    """Find the first record whose field count differs from the header's (error path only)."""
    with path.open(encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        expected = len(next(reader, []))
        for record in reader:
            if record and len(record) != expected:
                return DataError(
                    f"{path}: ragged CSV: line {reader.line_num} has {len(record)} fields, "
                    f"the header has {expected}",
                    hint="fix or quote that row (a delimiter inside an unquoted value?)",
                )
    return DataError(f"{path}: ragged CSV: rows have differing numbers of fields")


def _unique_names(path: Path, names: list[str]) -> list[str]:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(
                f"{path}: the column name {name!r} appears twice in the header",
                hint="rename one of the columns",
            )
        seen.add(name)
    return names


def _read_jsonl(
    path: Path, encoding: str | None, max_columns: int, max_rows: int
) -> tuple[pd.DataFrame, bool]:
    enc = encoding or "utf-8-sig"
    _check_encoding(path, enc)
    if codecs.lookup(enc).name in ("utf-8", "utf-8-sig"):
        fast = _read_jsonl_arrow(path, max_columns, max_rows)
        if fast is not None:
            return fast
    records: list[dict[str, Any]] = []
    keys: dict[str, None] = {}
    truncated = False
    with path.open(encoding=enc) as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if len(records) >= max_rows:
                truncated = True
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}: line {number} is not valid JSON: {exc.msg} (column {exc.colno})",
                    hint="JSON Lines needs one complete JSON object per line",
                ) from None
            if not isinstance(record, dict):
                raise DataError(
                    f"{path}: line {number} is a JSON {type(record).__name__}, not an object",
                    hint="JSON Lines tables need one JSON object per line",
                )
            for key in record:
                if key not in keys:
                    keys[key] = None
                    if len(keys) > max_columns:
                        raise _too_many_columns(path, len(keys), max_columns)
            records.append(record)
    return pd.DataFrame.from_records(records, columns=list(keys)), truncated


def _read_jsonl_arrow(
    path: Path, max_columns: int, max_rows: int
) -> tuple[pd.DataFrame, bool] | None:
    """pyarrow's multi-threaded JSON reader, or None to let the line reader explain a problem."""
    import pyarrow as pa
    import pyarrow.json as pajson

    first = _header(path, "utf-8-sig")
    try:
        keys = len(json.loads(first))
    except (json.JSONDecodeError, TypeError):
        return None
    if keys > max_columns:
        raise _too_many_columns(path, keys, max_columns)
    if path.stat().st_size > WHOLE_READ_BYTES:
        return None
    try:
        table = pajson.read_json(path, read_options=pajson.ReadOptions(block_size=8 * 2**20))
    except pa.ArrowException:
        return None  # mixed types or a broken line: the line reader says which line
    if table.num_columns > max_columns:
        raise _too_many_columns(path, table.num_columns, max_columns)
    return table.slice(0, max_rows).to_pandas(), table.num_rows > max_rows


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return re.sub(r"\s+", " ", text[0])[:300] if text else type(exc).__name__


__all__ = [
    "DEFAULT_MAX_COLUMNS",
    "DEFAULT_MAX_ROWS",
    "LoadedTable",
    "iter_tables",
    "load_table",
    "read_table",
    "sniff_format",
    "table_files",
]
