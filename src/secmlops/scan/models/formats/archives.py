"""Containers: zip (read the way PyTorch's reader does), tar, gzip/bz2/xz/lzma/zlib/zstd/lz4, 7z.

Every member is scanned like a file. Member names that escape the extraction folder, bombs (ratio,
expanded size, member count, depth) and structural inconsistencies are findings; content beyond a
limit is never silently passed.
"""

from __future__ import annotations

import bz2
import io
import lzma
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any

from secmlops.errors import ScanError
from secmlops.findings import Location
from secmlops.scan.models import rules
from secmlops.scan.models.engine import (
    CHILD_IN_MEMORY,
    Blob,
    Limits,
    NotThisFormat,
    ScanContext,
    SliceFile,
    slice_blob,
)
from secmlops.scan.models.formats.torch import ZIP_INFOS
from secmlops.scan.models.formats.torch_legacy import LEGACY_LAYOUTS, scan_legacy_member

CHUNK = 1 << 20
TORCH_STORAGE_RECORD = re.compile(r"^[^/]+/data/\d+$")
_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_member_name(name: str) -> str | None:
    """Why extracting a member of this name could write outside the folder, if it could."""
    normalized = name.replace("\\", "/")
    if normalized.startswith("/"):
        return "absolute path"
    if _DRIVE.match(normalized):
        return "drive-letter path"
    if ".." in normalized.split("/"):
        return "'..' component"
    if "\x00" in name:
        return "NUL character"
    return None


def _traversal(ctx: ScanContext, blob: Blob, member: str, why: str) -> None:
    ctx.emit(
        rules.ARCHIVE_TRAVERSAL.finding(
            blob.location.child(member), f"member name {member!r}: {why}", {"member": member}
        )
    )


def _bomb(ctx: ScanContext, location: Location, message: str, evidence: dict[str, Any]) -> None:
    ctx.emit(rules.ARCHIVE_BOMB.finding(location, message, evidence))
    ctx.incomplete(location, "content beyond the expansion limits was not scanned")


def _declared_bomb(info: zipfile.ZipInfo, limits: Limits) -> tuple[str, dict[str, Any]] | None:
    """Message and evidence when the member declares more than its compressed bytes could
    expand to; None when its declared size is plausible."""
    if info.file_size <= 16 * CHUNK or info.file_size <= limits.max_ratio * max(
        info.compress_size, 1
    ):
        return None
    return (
        f"declared ratio {info.file_size}/{info.compress_size} exceeds {limits.max_ratio:g}:1",
        {"declared": info.file_size, "compressed": info.compress_size},
    )


def expand_stream(
    ctx: ScanContext,
    location: Location,
    source: IO[bytes],
    compressed_size: int,
    make: Callable[[], Any],
    *,
    declared: int | None = None,
) -> IO[bytes] | None:
    """Decompress `source` into a spool, enforcing ratio and budget; None when a limit stopped it.

    `make()` returns a fresh decompressor (zlib-, bz2- or lzma-like); concatenated streams
    (multi-member gzip) are followed the way the standard readers do.
    """
    limits = ctx.limits
    out = ctx.spool()
    produced = 0
    consumed = 0
    d = make()
    carry = b""  # input handed back to a fresh decompressor (the next concatenated member)
    while True:
        if getattr(d, "eof", False):
            rest = bytes(getattr(d, "unused_data", b"")) + carry
            carry = b""
            if not rest:
                rest = source.read(CHUNK)
                consumed += len(rest)
            if not rest.strip(b"\x00"):
                break  # trailing zero padding is tolerated by every reader
            d = make()
            data = rest
        else:
            tail = getattr(d, "unconsumed_tail", None)
            if tail:
                data = bytes(tail)
            elif getattr(d, "needs_input", True):
                data = source.read(CHUNK)
                consumed += len(data)
                if not data:
                    break
            else:
                data = b""
        chunk = d.decompress(data, CHUNK)
        if not chunk:
            continue
        produced += len(chunk)
        if not ctx.budget.take(len(chunk)) or produced > limits.max_expanded_bytes:
            _bomb(ctx, location, f"expands beyond {limits.max_expanded_bytes} bytes",
                  {"expanded_at_least": produced})  # fmt: skip
            out.close()
            return None
        if produced > 16 * CHUNK and produced > limits.max_ratio * max(consumed, 1):
            _bomb(
                ctx,
                location,
                f"compression ratio over {limits.max_ratio:g}:1 ({produced} bytes from {consumed})",
                {"expanded_at_least": produced, "compressed": consumed},
            )
            out.close()
            return None
        out.write(chunk)
    if not getattr(d, "eof", False):
        out.close()
        raise ScanError("compressed stream is truncated")
    if declared is not None and produced != declared:
        ctx.emit(
            rules.ARCHIVE_INCONSISTENT.finding(
                location,
                f"declares {declared} bytes but expands to {produced}",
                {"declared": declared, "actual": produced},
            )
        )
    out.seek(0)
    return out


# -- zip ----------------------------------------------------------------------------------------
class ZipScanner:
    """Zip archives (PyTorch checkpoints, .npz, .keras, plain zips), member by member."""

    name = "zip"

    def sniff(self, blob: Blob) -> bool:
        return blob.head.startswith((b"PK\x03\x04", b"PK\x05\x06")) or b"PK\x05\x06" in blob.tail

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        with blob.open() as f:
            infos: list[zipfile.ZipInfo] | None = blob.memo.get(ZIP_INFOS)
            if infos is None:
                try:
                    infos = zipfile.ZipFile(f).infolist()
                except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
                    if not blob.head.startswith(b"PK"):
                        raise NotThisFormat from exc  # a stray end-of-directory signature
                    raise ScanError(f"unreadable zip: {exc}") from exc
            if len(infos) > ctx.limits.max_members:
                _bomb(ctx, blob.location, f"{len(infos)} members (limit {ctx.limits.max_members})",
                      {"members": len(infos)})  # fmt: skip
                return
            self._structure(blob, ctx, infos, f)
            torchscript = {
                i.filename.split("/", 1)[0]
                for i in infos
                if i.filename.endswith("/constants.pkl") and "/" in i.filename
            } & {i.filename.split("/", 1)[0] for i in infos if "/code/" in i.filename}
            torch_prefixes = {
                i.filename.split("/", 1)[0] for i in infos if i.filename.endswith("/data.pkl")
            }
            members: set[tuple[int, int, int, int]] = set()
            for info in infos:
                if info.is_dir():
                    continue
                read_as = (
                    info.header_offset,
                    info.compress_type,
                    info.compress_size,
                    info.file_size,
                )
                if read_as in members:
                    continue  # another directory entry that reads the same bytes the same way
                members.add(read_as)
                if (
                    torch_prefixes
                    and TORCH_STORAGE_RECORD.match(info.filename)
                    and (info.filename.split("/", 1)[0] in torch_prefixes)
                ):
                    # Raw tensor bytes: PyTorch never unpickles storage records. A record that
                    # declares far more than its compressed bytes can hold is still a bomb for
                    # the loader (and for `convert`).
                    bomb = _declared_bomb(info, ctx.limits)
                    if bomb is not None:  # a finding only: nothing here goes unscanned
                        ctx.emit(
                            rules.ARCHIVE_BOMB.finding(blob.location.child(info.filename), *bomb)
                        )
                    continue
                native = info.filename.split("/", 1)[0] in torchscript
                self._member(blob, ctx, f, info, torchscript=native)

    def _structure(
        self, blob: Blob, ctx: ScanContext, infos: list[zipfile.ZipInfo], f: IO[bytes]
    ) -> None:
        seen: set[str] = set()
        for info in infos:
            if info.filename in seen:
                ctx.emit(
                    rules.ARCHIVE_INCONSISTENT.finding(
                        blob.location.child(info.filename),
                        f"member name {info.filename!r} appears more than once: Python's zipfile "
                        "reads the last copy, other readers (PyTorch's miniz) the first",
                        {"member": info.filename},
                    )
                )
            seen.add(info.filename)
            why = unsafe_member_name(info.filename)
            if why:
                _traversal(ctx, blob, info.filename, why)
        first = min((i.header_offset for i in infos), default=0)
        if first > 0:
            f.seek(0)
            ctx.emit(
                rules.ARCHIVE_INCONSISTENT.finding(
                    blob.location.at_offset(0),
                    f"{first} bytes precede the first zip member (a loader that reads the start "
                    "of the file sees something else than a zip reader)",
                    {"prefix_bytes": first},
                )
            )

    def _member(
        self,
        blob: Blob,
        ctx: ScanContext,
        f: IO[bytes],
        info: zipfile.ZipInfo,
        *,
        torchscript: bool = False,
    ) -> None:
        location = blob.location.child(info.filename)
        if info.flag_bits & 0x1:
            ctx.emit(rules.ARCHIVE_ENCRYPTED.finding(location, "member is encrypted"))
            ctx.incomplete(location, "encrypted member not scanned")
            return
        f.seek(info.header_offset)
        header = f.read(30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise ScanError(f"member {info.filename!r}: local header missing or damaged")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        local_name = f.read(name_len)
        data_start = info.header_offset + 30 + name_len + extra_len
        if (
            local_name.decode("utf-8", "replace") != info.filename
            and local_name.decode("cp437", "replace") != info.filename
        ):
            ctx.emit(
                rules.ARCHIVE_INCONSISTENT.finding(
                    location,
                    f"local header names the member {local_name[:200]!r}, the central directory "
                    f"{info.filename!r}",
                    {"local_name": local_name[:200].decode("utf-8", "replace")},
                )
            )
        if data_start + info.compress_size > blob.size:
            raise ScanError(f"member {info.filename!r} extends past the end of the file")
        bomb = _declared_bomb(info, ctx.limits)
        if bomb is not None:
            _bomb(ctx, location, *bomb)
            return
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size <= CHILD_IN_MEMORY:
                # Small members (metadata, pickles) are read once; sniffers and the CRC reuse it.
                f.seek(data_start)
                child = ctx.child_blob(blob, info.filename, f.read(info.compress_size))
            else:
                if not ctx.budget.take(info.compress_size):  # overlapping stored members
                    _bomb(ctx, location, "stored members exceed the size budget", {})
                    return
                child = slice_blob(blob, info.filename, data_start, info.compress_size)
            if torchscript:
                child.allowlist = ctx.allowlist.for_torchscript()
            self._check_crc(ctx, child, info)
            ctx.scan_child(child)
            return
        makers: dict[int, Callable[[], Any]] = {
            zipfile.ZIP_DEFLATED: lambda: zlib.decompressobj(-15),
            zipfile.ZIP_BZIP2: bz2.BZ2Decompressor,
        }
        if info.compress_type == zipfile.ZIP_LZMA:
            f.seek(data_start)
            raw = SliceFile(blob.open, data_start, info.compress_size)
            props = raw.read(4)
            psize = struct.unpack("<H", props[2:4])[0] if len(props) == 4 else 0
            try:
                filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, raw.read(psize))  # type: ignore[attr-defined]
            except lzma.LZMAError as exc:
                raw.close()
                raise ScanError(f"member {info.filename!r}: bad LZMA properties: {exc}") from exc
            makers[zipfile.ZIP_LZMA] = lambda: lzma.LZMADecompressor(
                lzma.FORMAT_RAW, filters=[filt]
            )
            source: IO[bytes] = io.BufferedReader(raw)
            size = info.compress_size - 4 - psize
        else:
            source = io.BufferedReader(SliceFile(blob.open, data_start, info.compress_size))
            size = info.compress_size
        make = makers.get(info.compress_type)
        if make is None:
            ctx.fail(location, f"compression method {info.compress_type} is not supported")
            return
        try:
            spool = expand_stream(ctx, location, source, size, make, declared=info.file_size)
        except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
            raise ScanError(f"member {info.filename!r}: {exc}") from exc
        finally:
            source.close()
        if spool is None:
            return
        child = ctx.child_blob(blob, info.filename, spool)
        if torchscript:
            child.allowlist = ctx.allowlist.for_torchscript()
        self._check_crc(ctx, child, info)
        ctx.scan_child(child)

    @staticmethod
    def _check_crc(ctx: ScanContext, child: Blob, info: zipfile.ZipInfo) -> None:
        if child.size <= len(child.head):
            crc = zlib.crc32(child.head)
        else:
            crc = 0
            with child.open() as m:
                while chunk := m.read(CHUNK):
                    crc = zlib.crc32(chunk, crc)
        if crc != info.CRC:
            ctx.emit(
                rules.ARCHIVE_INCONSISTENT.finding(
                    child.location,
                    f"CRC-32 is {crc:08x}, the archive says {info.CRC:08x}: PyTorch loads such a "
                    "member, Python's zipfile refuses it (scanners built on it skip the file)",
                    {"crc_actual": f"{crc:08x}", "crc_declared": f"{info.CRC:08x}"},
                )
            )


# -- tar ----------------------------------------------------------------------------------------
def _tar_header_ok(head: bytes) -> bool:
    if len(head) < 512:
        return False
    block = head[:512]
    if block[257:262] == b"ustar":
        return True
    try:
        stored = int(block[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return stored == unsigned and any(block[:100])


class TarScanner:
    """Uncompressed tar (compressed tars are unwrapped by the compressed-stream scanner first)."""

    name = "tar"

    def sniff(self, blob: Blob) -> bool:
        return _tar_header_ok(blob.head)

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        with blob.open() as f:
            try:
                tar = tarfile.open(fileobj=f, mode="r:")  # noqa: SIM115 (closed with f)
                members = []
                for member in tar:
                    members.append(member)
                    if len(members) > ctx.limits.max_members:
                        _bomb(ctx, blob.location, f"more than {ctx.limits.max_members} members",
                              {"members": len(members)})  # fmt: skip
                        return
            except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
                raise ScanError(f"unreadable tar: {exc}") from exc
        names = {m.name for m in members}
        legacy = {"storages", "tensors", "pickle"} <= names  # torch's pre-1.0 tar checkpoints
        for member in members:
            why = unsafe_member_name(member.name)
            if why:
                _traversal(ctx, blob, member.name, why)
            if member.issym() or member.islnk():
                target = member.linkname
                link_why = unsafe_member_name(target)
                if link_why:
                    _traversal(ctx, blob, member.name, f"link to {target!r} ({link_why})")
                continue
            if member.isdev():
                ctx.emit(
                    rules.ARCHIVE_INCONSISTENT.finding(
                        blob.location.child(member.name), "device node inside a model archive"
                    )
                )
                continue
            if not member.isfile():
                continue
            if member.sparse is not None:
                ctx.fail(blob.location.child(member.name), "sparse tar member not supported")
                continue
            if member.offset_data + member.size > blob.size:
                raise ScanError(f"member {member.name!r} extends past the end of the archive")
            child = slice_blob(blob, member.name, member.offset_data, member.size)
            if legacy and member.name in LEGACY_LAYOUTS:
                scan_legacy_member(child, ctx, member.name)
            else:
                ctx.scan_child(child)


# -- single compressed streams ---------------------------------------------------------------------
def _zlib_header(head: bytes) -> bool:
    return (
        len(head) >= 2
        and head[0] & 0x0F == 8
        and head[0] >> 4 <= 7
        and (head[0] * 256 + head[1]) % 31 == 0
    )


def _optional_maker(module: str, attr: str) -> Callable[[], Any] | None:
    try:
        mod = __import__(module, fromlist=[attr])
    except ImportError:
        return None
    return getattr(mod, attr)  # type: ignore[no-any-return]


def _lz4_maker() -> Callable[[], Any] | None:
    try:
        import lz4.frame
    except ImportError:
        return None
    return lz4.frame.LZ4FrameDecompressor  # type: ignore[no-any-return]


def _zstd_maker() -> Callable[[], Any] | None:
    for module in ("compression.zstd", "backports.zstd"):
        maker = _optional_maker(module, "ZstdDecompressor")
        if maker is not None:
            return maker
    return None


COMPRESSED_FORMATS: tuple[tuple[str, Callable[[bytes], bool], Callable[[], Callable[[], Any] | None]], ...] = (
    ("gzip", lambda h: h.startswith(b"\x1f\x8b\x08"), lambda: lambda: zlib.decompressobj(31)),
    ("bzip2", lambda h: len(h) >= 4 and h[:3] == b"BZh" and 0x31 <= h[3] <= 0x39, lambda: bz2.BZ2Decompressor),
    ("xz", lambda h: h.startswith(b"\xfd7zXZ\x00"), lambda: lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ)),
    ("lzma", lambda h: len(h) >= 13 and h[0] == 0x5D and h[1:3] == b"\x00\x00", lambda: lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE)),
    ("zlib", _zlib_header, lambda: lambda: zlib.decompressobj(15)),
    ("zstd", lambda h: h.startswith(b"\x28\xb5\x2f\xfd"), _zstd_maker),
    ("lz4", lambda h: h.startswith(b"\x04\x22\x4d\x18"), _lz4_maker),
)  # fmt: skip


class CompressedScanner:
    """gzip, bzip2, xz, lzma, zlib (joblib), zstd and lz4 streams, unwrapped and rescanned."""

    name = "compressed"

    def sniff(self, blob: Blob) -> bool:
        return self._format(blob.head) is not None

    @staticmethod
    def _format(head: bytes) -> tuple[str, Callable[[], Callable[[], Any] | None]] | None:
        for label, test, maker in COMPRESSED_FORMATS:
            if test(head):
                return label, maker
        return None

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        found = self._format(blob.head)
        assert found is not None
        label, get_maker = found
        make = get_maker()
        if make is None:
            ctx.fail(
                blob.location, f"{label} stream, but the {label} decompressor is not installed"
            )
            return
        inner_name = blob.name.rsplit(".", 1)[0] if "." in blob.name else blob.name
        with blob.open() as f:
            try:
                spool = expand_stream(ctx, blob.location, f, blob.size, make)
            except ScanError:
                raise
            except Exception as exc:  # zlib/lzma/zstd/lz4 each raise their own error types
                if label in ("zlib", "lzma") and self._fails_at_once(blob, make):
                    return  # bytes that merely resemble a weak magic number
                raise ScanError(f"{label} stream is corrupt: {exc}") from exc
        if spool is None:
            return
        ctx.scan_child(ctx.child_blob(blob, f"{inner_name}[{label}]", spool))

    @staticmethod
    def _fails_at_once(blob: Blob, make: Callable[[], Any]) -> bool:
        try:
            make().decompress(blob.head[:4096], 1)
        except Exception:  # any decompressor error on the first bytes: not this format
            return True
        return False


# -- 7z ---------------------------------------------------------------------------------------------
class SevenZipScanner:
    """7z archives (one published evasion packs PyTorch pickles into 7z)."""

    name = "7z"

    def sniff(self, blob: Blob) -> bool:
        return blob.head.startswith(b"7z\xbc\xaf\x27\x1c")

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        try:
            import py7zr
            from py7zr.io import Py7zIO, WriterFactory
        except ImportError:
            ctx.fail(blob.location, "7z archive, but py7zr is not installed")
            return

        class _Spool(Py7zIO):
            def __init__(self) -> None:
                self.buf = ctx.spool()
                self.written = 0

            def write(self, s: bytes | bytearray) -> int:
                self.written += len(s)
                if not ctx.budget.take(len(s)):
                    raise _TooBig()
                return self.buf.write(s)

            def read(self, size: int | None = None) -> bytes:
                return self.buf.read(size if size is not None else -1)

            def seek(self, offset: int, whence: int = 0) -> int:
                return self.buf.seek(offset, whence)

            def flush(self) -> None:
                self.buf.flush()

            def size(self) -> int:
                return self.written

        outputs: dict[str, _Spool] = {}

        class _Factory(WriterFactory):
            def create(self, filename: str) -> Py7zIO:
                outputs[filename] = _Spool()
                return outputs[filename]

        with blob.open() as f:
            try:
                archive = py7zr.SevenZipFile(f, mode="r")
                if archive.needs_password():
                    ctx.emit(
                        rules.ARCHIVE_ENCRYPTED.finding(blob.location, "7z archive is encrypted")
                    )
                    ctx.incomplete(blob.location, "encrypted 7z not scanned")
                    return
                entries = archive.list()
                if len(entries) > ctx.limits.max_members:
                    _bomb(ctx, blob.location, f"{len(entries)} members", {"members": len(entries)})
                    return
                declared = sum(e.uncompressed or 0 for e in entries)
                if declared > 16 * CHUNK and declared > ctx.limits.max_ratio * max(blob.size, 1):
                    _bomb(ctx, blob.location, f"declares {declared} bytes from {blob.size}",
                          {"declared": declared, "compressed": blob.size})  # fmt: skip
                    return
                for entry in entries:
                    why = unsafe_member_name(entry.filename)
                    if why:
                        _traversal(ctx, blob, entry.filename, why)
                archive.extract(factory=_Factory())
            except _TooBig:
                _bomb(ctx, blob.location, "expands beyond the size budget", {})
                return
            except Exception as exc:  # py7zr raises many unrelated types on hostile input
                raise ScanError(f"unreadable 7z archive: {type(exc).__name__}: {exc}") from exc
        for name, spool in sorted(outputs.items()):
            ctx.scan_child(ctx.child_blob(blob, name, spool.buf))


class _TooBig(Exception):
    pass
