"""safetensors files: an 8-byte little-endian header length, a JSON header, then raw tensor bytes.

The format cannot run code, but a header that lies about its tensors makes loaders read out of
bounds, alias one tensor's bytes into another, or disagree with each other about what the file
holds. The header is validated the way the reference (Rust) implementation does, and everything it
would reject or other readers would read differently is reported.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from secmlops.errors import ScanError
from secmlops.findings import Rule
from secmlops.scan.models import rules
from secmlops.scan.models.engine import Blob, ScanContext
from secmlops.scan.models.rules import SAFETENSORS_HEADER, SAFETENSORS_LAYOUT, SAFETENSORS_OFFSETS

MAX_HEADER = 100_000_000  # the reference implementation's limit
MAX_REPORTED = 20
MAX_RANK = 1024

# Bits per element of every dtype the reference implementation knows.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "I16": 16, "U16": 16, "F16": 16,
    "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Tensor:
    name: str
    begin: int
    end: int


class SafetensorsScanner:
    """Any file whose first 8 bytes give a plausible header length followed by `{`."""

    name = "safetensors"

    def sniff(self, blob: Blob) -> bool:
        head = blob.head
        if len(head) < 9:
            return False
        n = int.from_bytes(head[:8], "little")
        return 2 <= n <= MAX_HEADER and n + 8 <= blob.size and head[8:9] == b"{"

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        n = int.from_bytes(blob.head[:8], "little")
        with blob.open() as f:
            f.seek(8)
            raw = f.read(n)
        if len(raw) != n:
            raise ScanError(f"safetensors header is truncated ({len(raw)} of {n} bytes)")
        _Check(blob, ctx, n).run(raw)


class _Check:
    def __init__(self, blob: Blob, ctx: ScanContext, header_len: int) -> None:
        self.blob = blob
        self.ctx = ctx
        self.data_start = 8 + header_len
        self.data_len = blob.size - self.data_start
        self.counts: dict[str, int] = {}

    def emit(self, rule: Rule, message: str, evidence: Mapping[str, Any], offset: int = 0) -> None:
        seen = self.counts.get(rule.rule_id, 0)
        self.counts[rule.rule_id] = seen + 1
        if seen < MAX_REPORTED:
            location = self.blob.location.at_offset(offset) if offset else self.blob.location
            self.ctx.emit(rule.finding(location, message, evidence))

    def run(self, raw: bytes) -> None:
        duplicates: list[str] = []
        constants: list[str] = []

        def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            keys = [k for k, _ in pairs]
            if len(keys) != len(set(keys)):
                duplicates.extend(sorted({k for k in keys if keys.count(k) > 1}))
            return dict(pairs)

        def constant_hook(name: str) -> None:
            constants.append(name)

        try:
            text = raw.decode("utf-8")
            header = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=constant_hook)
        except UnicodeDecodeError as exc:
            raise ScanError(f"safetensors header is not UTF-8: {exc}") from exc
        except RecursionError as exc:
            raise ScanError("safetensors header JSON is nested too deeply") from exc
        except ValueError as exc:
            raise ScanError(f"safetensors header is not valid JSON: {exc}") from exc
        if not isinstance(header, dict):
            raise ScanError(f"safetensors header is a JSON {type(header).__name__}, not an object")
        if duplicates:
            self.emit(
                SAFETENSORS_HEADER,
                f"header repeats keys {sorted(set(duplicates))[:10]}; parsers disagree on which "
                "entry wins",
                {"duplicate_keys": sorted(set(duplicates))[:MAX_REPORTED]},
                8,
            )
        if constants:
            self.emit(
                SAFETENSORS_HEADER,
                f"header uses non-standard JSON constants {sorted(set(constants))}",
                {"constants": sorted(set(constants))},
                8,
            )
        tensors = []
        for name, entry in header.items():
            if name == "__metadata__":
                self._metadata(entry)
                continue
            tensor = self._tensor(name, entry)
            if tensor is not None:
                tensors.append(tensor)
        self._layout(tensors)
        self._summary()

    def _metadata(self, entry: Any) -> None:
        if entry is None:
            return  # the reference implementation reads it as an optional map
        if not isinstance(entry, dict):
            self.emit(
                SAFETENSORS_LAYOUT,
                f"__metadata__ is a JSON {type(entry).__name__}, not an object of strings",
                {"type": type(entry).__name__},
                8,
            )
            return
        bad = [k for k, v in entry.items() if not isinstance(v, str)]
        if bad:
            self.emit(
                SAFETENSORS_LAYOUT,
                f"__metadata__ values must be strings; {len(bad)} are not ({bad[:5]})",
                {"keys": bad[:MAX_REPORTED]},
                8,
            )

    def _tensor(self, name: str, entry: Any) -> _Tensor | None:
        if not isinstance(entry, dict):
            self._bad_entry(name, f"entry is a JSON {type(entry).__name__}, not an object")
            return None
        dtype = entry.get("dtype")
        shape = entry.get("shape")
        offsets = entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            self._bad_entry(name, f"unknown dtype {dtype!r}")
            return None
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_RANK
            or not all(_is_count(d) for d in shape)
        ):
            self._bad_entry(name, f"shape {str(shape)[:80]} is not a list of non-negative integers")
            return None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_count(o) for o in offsets)
        ):
            self._bad_entry(
                name,
                f"data_offsets {str(offsets)[:80]} is not [begin, end] of non-negative integers",
            )
            return None
        begin, end = offsets
        where = self.data_start + begin if begin <= self.data_len else 0
        if begin > end:
            self.emit(
                SAFETENSORS_OFFSETS,
                f"tensor {name!r}: data_offsets begin {begin} is after end {end}",
                {"tensor": name, "data_offsets": [begin, end]},
                where,
            )
            return None
        if end > self.data_len:
            self.emit(
                SAFETENSORS_OFFSETS,
                f"tensor {name!r}: data_offsets [{begin}, {end}] run past the end of the data "
                f"section ({self.data_len} bytes)",
                {"tensor": name, "data_offsets": [begin, end], "data_bytes": self.data_len},
                where,
            )
            return None
        bits = math.prod(shape) * DTYPE_BITS[dtype]
        if bits % 8 or end - begin != bits // 8:
            expected = f"{bits // 8} bytes" if bits % 8 == 0 else f"{bits} bits (not whole bytes)"
            self.emit(
                SAFETENSORS_OFFSETS,
                f"tensor {name!r}: {dtype}{shape} needs {expected} but data_offsets give "
                f"{end - begin}",
                {"tensor": name, "dtype": dtype, "shape": shape[:16], "data_offsets": [begin, end]},
                where,
            )
        return _Tensor(name, begin, end)

    def _bad_entry(self, name: str, why: str) -> None:
        self.emit(SAFETENSORS_HEADER, f"tensor {name!r}: {why}", {"tensor": name}, 8)

    def _layout(self, tensors: list[_Tensor]) -> None:
        # The reference loader requires the sorted ranges to tile the data section exactly.
        position = 0
        previous: _Tensor | None = None
        for tensor in sorted(tensors, key=lambda t: (t.begin, t.end)):
            if tensor.begin < position and previous is not None:
                if tensor.end > tensor.begin:
                    self.emit(
                        SAFETENSORS_OFFSETS,
                        f"tensors {previous.name!r} and {tensor.name!r} overlap (bytes "
                        f"{tensor.begin}-{min(position, tensor.end)} of the data section)",
                        {"tensors": [previous.name, tensor.name],
                         "ranges": [[previous.begin, previous.end], [tensor.begin, tensor.end]]},
                        self.data_start + tensor.begin,
                    )  # fmt: skip
                else:
                    self.emit(
                        SAFETENSORS_LAYOUT,
                        f"empty tensor {tensor.name!r} sits inside the bytes of {previous.name!r}",
                        {"tensors": [previous.name, tensor.name]},
                        self.data_start + tensor.begin,
                    )
            elif tensor.begin > position:
                self.emit(
                    SAFETENSORS_LAYOUT,
                    f"{tensor.begin - position} unused bytes before tensor {tensor.name!r}",
                    {"tensor": tensor.name, "gap": [position, tensor.begin]},
                    self.data_start + position,
                )
            if tensor.end >= position:
                position = tensor.end
                previous = tensor
        if position < self.data_len:
            self.emit(
                SAFETENSORS_LAYOUT,
                f"{self.data_len - position} bytes after the last tensor are not part of any "
                "tensor",
                {"trailing_bytes": self.data_len - position},
                self.data_start + position,
            )

    def _summary(self) -> None:
        for rule_id, count in self.counts.items():
            if count > MAX_REPORTED:
                rule = rules.ALL[rule_id]
                self.ctx.emit(
                    rule.finding(
                        self.blob.location,
                        f"{count - MAX_REPORTED} further {rule_id} problems were not listed",
                        {"count": count},
                    )
                )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
