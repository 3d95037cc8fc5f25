"""Collect the pickle globals of real benign ML files and check them against allowlist.json.

A throw-away research tool (not part of the package). It writes benign files the ordinary
way -- ``torch.save`` (zip and legacy), ``joblib.dump`` (every compressor), ``to_pickle`` and
``pickle.dumps`` with protocols 0-5 of many fitted scikit-learn estimators, torch modules,
optimizer states, tensors of every dtype, pandas frames of every dtype, numpy and scipy values
and stdlib values -- and walks their opcodes (never unpickling) to record every global with
its strongest use (ref < new < call). The walker and the corpus live in
``tests/scan/models/benign_globals.py`` so the data test can reuse them.

Usage (from the repository root, with the test extras installed)::

    python benchmarks/tools/collect_globals.py                  # full corpus, verdicts
    python benchmarks/tools/collect_globals.py --quick          # the test's corpus
    python benchmarks/tools/collect_globals.py --list           # every global, use, origin
    python benchmarks/tools/collect_globals.py --json out.json  # machine-readable dump
    python benchmarks/tools/collect_globals.py --audit          # review the safe prefixes

Exit status 1 when a benign global is unknown, or dangerous without being a known unsafe
benign global (see ``KNOWN_UNSAFE_BENIGN``).

``--audit`` imports every module under each safe ``prefix`` entry and lists (1) classes
with pickle hooks (``__setstate__``, ``__reduce__``, ``__new__``, ``__del__``, ...) that need a
source review before being allowed, and (2) names imported into those modules from
elsewhere (``from numpy import memmap``): a prefix entry allows them too, so any whose real
target is dangerous needs its own dangerous entry.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ALLOWLIST = ROOT / "src" / "secmlops" / "scan" / "models" / "allowlist.json"
sys.path.insert(0, str(ROOT / "tests" / "scan" / "models"))

import benign_globals as bg  # noqa: E402

HOOKS = (
    "__setstate__", "__reduce__", "__reduce_ex__", "__new__", "__getnewargs__",
    "__getnewargs_ex__", "__del__", "__array_finalize__", "__set_name__", "__init_subclass__",
    "__getattr__", "__setattr__",
)  # fmt: skip


def collect(quick: bool) -> bg.Uses:
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        return bg.collect(quick, Path(tmp))


def report(uses: bg.Uses, data: dict[str, Any], show_all: bool) -> int:
    bad = 0
    for name in sorted(uses):
        seen = uses[name]
        verdict = bg.verdict(data, name, seen.use)
        expected = verdict == "safe" or (verdict == "dangerous" and bg.known_unsafe(name))
        if not expected:
            bad += 1
        if show_all or not expected:
            flag = "" if expected else "  <-- FIX"
            origin = sorted(seen.origins)[0]
            print(f"{verdict:9} {seen.use:4} {name}  [{origin}; {len(seen.origins)} files]{flag}")
    counts = {v: 0 for v in ("safe", "dangerous", "unknown")}
    for name, seen in uses.items():
        counts[bg.verdict(data, name, seen.use)] += 1
    print(f"\n{len(uses)} benign globals: {counts}; {bad} need attention")
    return 1 if bad else 0


def _modules_under(prefix: str) -> list[ModuleType]:
    root_name = prefix.rstrip(".")
    try:
        root = importlib.import_module(root_name)
    except ImportError:
        return []
    mods = [root]
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), root_name + "."):
        if ".tests" in info.name or info.name.endswith((".conftest", "__main__")):
            continue
        try:
            mods.append(importlib.import_module(info.name))
        except Exception:  # noqa: S112 - optional backends (cupy, dask, ...)
            continue
    return mods


def audit(data: dict[str, Any]) -> None:
    warnings.simplefilter("ignore")
    for entry in data["safe"]:
        prefix = entry.get("prefix")
        if not prefix:
            continue
        print(f"\n=== {prefix} (use {entry['use']})")
        hooked: set[str] = set()
        aliases: list[str] = []
        for mod in _modules_under(prefix):
            for attr, obj in list(vars(mod).items()):
                if attr.startswith("__"):
                    continue
                real_mod = getattr(obj, "__module__", None)
                qual = getattr(obj, "__qualname__", None)
                if not isinstance(real_mod, str) or not isinstance(qual, str):
                    continue
                real = f"{real_mod}.{qual}"
                alias = f"{mod.__name__}.{attr}"
                if isinstance(obj, type) and real_mod.startswith(prefix):
                    found = [h for h in HOOKS if h in obj.__dict__]
                    if found and real not in hooked:
                        hooked.add(real)
                        kind = "py" if inspect.isfunction(obj.__dict__[found[0]]) else "C"
                        print(f"  hooks  {real}: {', '.join(found)} [{kind}]")
                elif not real_mod.startswith(prefix) and (isinstance(obj, type) or callable(obj)):
                    target = bg.verdict(data, real, "call")
                    if target == "dangerous" and bg.verdict(data, alias, "ref") != "dangerous":
                        aliases.append(f"  ALIAS  {alias} -> {real} (dangerous target)")
                    elif entry["use"] != "ref" and isinstance(obj, type) and target != "safe":
                        aliases.append(f"  class  {alias} -> {real} ({target})")
        for line in sorted(set(aliases)):
            print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small corpus the test uses")
    parser.add_argument("--list", action="store_true", help="print every global")
    parser.add_argument("--json", type=Path, help="write {name: {use, origins}} to this file")
    parser.add_argument("--audit", action="store_true", help="review the safe prefix entries")
    args = parser.parse_args(argv)
    data = json.loads(ALLOWLIST.read_text(encoding="utf-8"))
    if args.audit:
        audit(data)
        return 0
    uses = collect(args.quick)
    if args.json:
        dump = {n: {"use": o.use, "origins": sorted(o.origins)} for n, o in sorted(uses.items())}
        args.json.write_text(json.dumps(dump, indent=1) + "\n", encoding="utf-8")
    return report(uses, data, args.list)


if __name__ == "__main__":
    raise SystemExit(main())
