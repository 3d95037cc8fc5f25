"""skops files (`skops.io.dump`): a zip whose `schema.json` names every object to rebuild.

skops never unpickles (unless a node says so), but `skops.io.load(trusted=...)` builds whatever
types the caller trusts, and users routinely pass `trusted=get_untrusted_types(...)` unread. The
scanner judges every `__module__.__class__` in the schema with the same allowlist and danger list
as pickle globals: instantiated objects (ObjectNode, ReduceNode) need `new`/`call`, stored
functions and types (FunctionNode, TypeNode, MethodNode) are references. Arrays (`.npy` members)
are scanned by the NumPy scanner as members of the zip.
"""

from __future__ import annotations

import json
from typing import Any

from secmlops.scan.models import rules
from secmlops.scan.models.allowlist import Use, canonical_name
from secmlops.scan.models.engine import Blob, ScanContext

MAX_SCHEMA = 64 << 20
_CALLED = {"ReduceNode": Use.CALL, "OperatorFuncNode": Use.CALL}
_REFERENCED = {"TypeNode", "FunctionNode", "MethodNode", "PartialNode"}
# Plain data the loader rebuilds itself (skops' JSON, list, dict, tuple and array nodes).
_DATA_LOADERS = {"JsonNode", "ListNode", "DictNode", "TupleNode", "SetNode", "NdArrayNode",
                 "SparseMatrixNode", "BytesNode", "BytearrayNode", "SliceNode"}  # fmt: skip


class SkopsScanner:
    name = "skops"

    def sniff(self, blob: Blob) -> bool:
        return (
            blob.depth > 0
            and blob.name.rsplit("/", 1)[-1] == "schema.json"
            and blob.head.lstrip()[:1] == b"{"
            and b'"__loader__"' in blob.head
        )

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        if blob.size > MAX_SCHEMA:
            ctx.emit(rules.SKOPS_MALFORMED.finding(blob.location, f"schema of {blob.size} bytes "
                                                   f"is over the {MAX_SCHEMA} byte limit"))  # fmt: skip
            ctx.fail(blob.location, "skops schema too large to check")
            return
        with blob.open() as f:
            raw = f.read(MAX_SCHEMA + 1)
        try:
            schema = json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            ctx.emit(rules.SKOPS_MALFORMED.finding(blob.location, f"schema.json: {exc}"[:300]))
            ctx.fail(blob.location, "skops schema does not parse")
            return
        seen: dict[tuple[str, Use], int] = {}
        stack: list[Any] = [schema]
        while stack:  # iterative: a hostile schema may nest deeper than Python's recursion
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
                continue
            if not isinstance(node, dict):
                continue
            stack.extend(node.values())
            module, cls, loader = (
                node.get("__module__"),
                node.get("__class__"),
                node.get("__loader__"),
            )
            if not (isinstance(module, str) and isinstance(cls, str)):
                continue
            if loader in _DATA_LOADERS and module in ("builtins", "numpy", "scipy.sparse"):
                continue
            use = _CALLED.get(str(loader), Use.REF if loader in _REFERENCED else Use.NEW)
            key = (canonical_name(module, cls), use)
            seen[key] = seen.get(key, 0) + 1
        for (name, use), count in sorted(seen.items()):
            verdict = ctx.allowlist.judge(name, use)
            if verdict.allowed:
                continue
            evidence = {"type": name, "use": use.label, "count": count}
            if verdict.danger is not None:
                d = verdict.danger
                ctx.emit(rules.SKOPS_DANGEROUS.finding(
                    blob.location, f"the schema names {name} ({use.label}): {d.why}",
                    evidence | {"category": d.category, "matched": d.pattern}, severity=d.severity,
                ))  # fmt: skip
            else:
                ctx.emit(rules.SKOPS_UNKNOWN.finding(
                    blob.location, f"the schema names {name} ({use.label}), which is not on the allowlist",
                    evidence,
                ))  # fmt: skip
