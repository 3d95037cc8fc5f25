"""The pickle allowlist/denylist data: schema, consistency, and coverage of real benign files.

Loads ``src/secmlops/scan/models/allowlist.json`` with the standard ``json`` module only (no
secmlops code), so the data is checked independently of the analyser that consumes it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
ALLOWLIST = ROOT / "src" / "secmlops" / "scan" / "models" / "allowlist.json"

USES = ("ref", "new", "call")
SEVERITIES = ("high", "critical")  # a dangerous global is never milder than an unknown one
CATEGORIES = {
    "code-execution", "process", "import-resolution", "file-io", "network",
    "nested-deserialisation", "native-code", "introspection", "execution-gadget", "persistence",
}  # fmt: skip
NON_CANONICAL_MODULES = (
    "posix", "nt", "_operator", "_io", "__builtin__", "_codecs", "_functools", "_collections",
    "copy_reg",
)  # fmt: skip
_PART = r"[A-Za-z_][A-Za-z0-9_]*"
NAME_RE = re.compile(rf"^{_PART}(\.{_PART})+$")
PREFIX_RE = re.compile(rf"^{_PART}(\.{_PART})*\.$")


def _load_benign_globals() -> ModuleType:
    """Import the sibling helper by path: works whether or not tests/ is a package."""
    name = "secmlops_test_benign_globals"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "benign_globals.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bg = _load_benign_globals()


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    with ALLOWLIST.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


def _key(entry: dict[str, Any]) -> str:
    return str(entry.get("name") or entry.get("prefix"))


# ---------------------------------------------------------------------------------------
# Schema


def test_top_level_shape(data: dict[str, Any]) -> None:
    assert set(data) == {"$comment", "version", "safe", "dangerous"}
    assert data["version"] == 1
    assert isinstance(data["$comment"], str) and data["$comment"].strip()
    assert isinstance(data["safe"], list) and data["safe"]
    assert isinstance(data["dangerous"], list) and data["dangerous"]


def _check_target(entry: dict[str, Any]) -> None:
    has_name, has_prefix = "name" in entry, "prefix" in entry
    assert has_name != has_prefix, f"exactly one of name/prefix: {entry}"
    if has_name:
        assert isinstance(entry["name"], str) and NAME_RE.match(entry["name"]), entry
    else:
        assert isinstance(entry["prefix"], str) and PREFIX_RE.match(entry["prefix"]), entry
    head = _key(entry).split(".", 1)[0]
    assert head not in NON_CANONICAL_MODULES, f"use the canonical module name: {entry}"
    assert isinstance(entry["why"], str) and len(entry["why"].strip()) >= 5, entry


def test_safe_entries_schema(data: dict[str, Any]) -> None:
    for entry in data["safe"]:
        assert isinstance(entry, dict)
        target = "name" if "name" in entry else "prefix"
        assert set(entry) == {target, "use", "why"}, entry
        _check_target(entry)
        assert entry["use"] in USES, entry


def test_dangerous_entries_schema(data: dict[str, Any]) -> None:
    for entry in data["dangerous"]:
        assert isinstance(entry, dict)
        target = "name" if "name" in entry else "prefix"
        assert set(entry) == {target, "severity", "category", "why"}, entry
        _check_target(entry)
        assert entry["severity"] in SEVERITIES, entry
        assert entry["category"] in CATEGORIES, entry


@pytest.mark.parametrize("section", ["safe", "dangerous"])
def test_no_duplicate_entries(data: dict[str, Any], section: str) -> None:
    keys = [_key(e) for e in data[section]]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert not duplicates


# ---------------------------------------------------------------------------------------
# Consistency


def test_no_name_is_both_safe_and_dangerous(data: dict[str, Any]) -> None:
    dangerous_keys = {_key(e) for e in data["dangerous"]}
    clashes = []
    for entry in data["safe"]:
        if _key(entry) in dangerous_keys:
            clashes.append(_key(entry))
        elif "name" in entry and bg.verdict(data, entry["name"], "ref") == "dangerous":
            clashes.append(f"{entry['name']} (shadowed by a dangerous entry)")
        elif "prefix" in entry and any(
            entry["prefix"].startswith(d["prefix"]) for d in data["dangerous"] if "prefix" in d
        ):
            clashes.append(f"{entry['prefix']} (inside a dangerous prefix)")
    assert not clashes


def _resolve(dotted: str) -> object:
    """Import the longest importable module prefix of `dotted` and getattr the rest."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: object = importlib.import_module(module_name)
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_safe_names_resolve_to_real_attributes(data: dict[str, Any]) -> None:
    missing = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for entry in data["safe"]:
            name = entry.get("name")
            if not name or entry["use"] == "ref":
                continue  # call and new entries must name something that exists
            top = name.split(".", 1)[0]
            if importlib.util.find_spec(top) is None:
                continue  # that library is not installed here
            try:
                obj = _resolve(name)
            except (ImportError, AttributeError) as exc:
                missing.append(f"{name}: {exc!r}")
                continue
            if not callable(obj):
                missing.append(f"{name}: not callable")
    assert not missing


@pytest.mark.parametrize(
    ("name", "use", "expected"),
    [
        ("os.system", "call", "dangerous"),
        ("torch.serialization.os.system", "ref", "dangerous"),  # suffix at a module name
        ("builtins.eval", "ref", "dangerous"),
        ("builtins.getattr", "call", "dangerous"),
        ("subprocess.Popen", "new", "dangerous"),
        ("numpy.memmap", "new", "dangerous"),
        ("sklearn.externals.array_api_compat.numpy.memmap", "new", "dangerous"),
        ("scipy.stats._continuous_distns.norm_gen", "new", "dangerous"),
        ("sklearn.datasets._openml.fetch_openml", "ref", "dangerous"),
        ("collections.OrderedDict", "call", "safe"),
        ("torch._utils._rebuild_tensor_v2", "call", "safe"),
        ("sklearn.linear_model._logistic.LogisticRegression", "new", "safe"),
        ("sklearn.linear_model._logistic.LogisticRegression", "call", "unknown"),
        ("numpy.log1p", "ref", "safe"),
        ("numpy.log1p", "call", "unknown"),
        ("numpy.random._pickle.__bit_generator_ctor", "call", "safe"),
        ("mypackage.model.MyNet", "new", "unknown"),
    ],
)
def test_verdict_examples(data: dict[str, Any], name: str, use: str, expected: str) -> None:
    assert bg.verdict(data, name, use) == expected


# ---------------------------------------------------------------------------------------
# Coverage of real benign files


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    pytest.importorskip("pandas")
    pytest.importorskip("scipy")
    pytest.importorskip("joblib")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bg.collect(quick=True, tmp=tmp_path_factory.mktemp("benign"))


def test_benign_corpus_is_large_enough(benign: Any) -> None:
    assert len(benign) >= 150
    for library in ("torch.", "sklearn.", "numpy.", "pandas.", "scipy.", "joblib.", "builtins."):
        assert any(name.startswith(library) for name in benign), library


def test_every_benign_global_is_allowed_with_its_use(data: dict[str, Any], benign: Any) -> None:
    problems = []
    for name, seen in sorted(benign.items()):
        verdict = bg.verdict(data, name, seen.use)
        if bg.known_unsafe(name):
            if verdict != "dangerous":
                problems.append(f"{name}: known unsafe but {verdict}")
        elif verdict != "safe":
            origin = sorted(seen.origins)[0]
            problems.append(f"{name} ({seen.use}, from {origin}): {verdict}")
    assert not problems


def test_known_unsafe_benign_globals_are_dangerous(data: dict[str, Any]) -> None:
    for key in bg.KNOWN_UNSAFE_BENIGN:
        probe = key + "Probe" if key.endswith(".") else key
        assert bg.verdict(data, probe, "ref") == "dangerous", key
