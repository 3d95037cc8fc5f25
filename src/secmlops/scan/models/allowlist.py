"""The verdict on a global a pickle reaches: dangerous, allowed for its use, or unknown.

The data lives in `allowlist.json` beside this module (documented in docs/allowlist.md). Users add
entries as ``"module.name:use"`` strings in configuration; they can never allow a dangerous name.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from secmlops.errors import ConfigError
from secmlops.findings import Severity

# Names a protocol < 3 pickle may use, the way the C unpickler maps them (fix_imports), plus the
# private/platform modules that re-export the public ones.
MODULE_ALIASES: dict[str, str] = {
    "__builtin__": "builtins",
    "__builtins__": "builtins",
    "copy_reg": "copyreg",
    "posix": "os",
    "nt": "os",
    "posixpath": "os.path",
    "ntpath": "os.path",
    "_operator": "operator",
    "_io": "io",
    "_pyio": "io",
    "_codecs": "codecs",
    "_functools": "functools",
    "_collections": "collections",
    "_collections_abc": "collections.abc",
    "_pickle": "pickle",
    "cPickle": "pickle",
    "_socket": "socket",
    "_posixsubprocess": "subprocess",
    "_subprocess": "subprocess",
    "commands": "subprocess",
    "_ctypes": "ctypes",
    "_imp": "importlib",
    "_frozen_importlib": "importlib",
    "_frozen_importlib_external": "importlib",
    "_thread": "threading",
    "_signal": "signal",
    "_sqlite3": "sqlite3",
    "_datetime": "datetime",
    "_decimal": "decimal",
    "_pydecimal": "decimal",
    "_struct": "struct",
    "_random": "random",
    "_bz2": "bz2",
    "_lzma": "lzma",
    "_json": "json",
    "_weakref": "weakref",
    "_abc": "abc",
    "_string": "string",
    "_sre": "re",
    "sre_compile": "re",
    "_compat_pickle": "pickle",
}


# Attribute names that lead from any object to code objects, module globals or builtins.
INTROSPECTION_DUNDERS = frozenset(
    {
        "__globals__", "__builtins__", "__class__", "__subclasses__", "__bases__", "__base__",
        "__mro__", "__dict__", "__code__", "__closure__", "__func__", "__self__", "__loader__",
        "__spec__", "__getattribute__", "__import__", "__init_subclass__", "__reduce__",
        "__reduce_ex__", "__getattr__", "__setattr__", "__delattr__", "__call__", "__wrapped__",
    }
)  # fmt: skip


class Use(enum.IntEnum):
    """How a pickle uses a global; a stronger use needs a stronger allowance."""

    REF = 0  # stored as a value, never called by the unpickler
    NEW = 1  # instantiated as data: cls.__new__(cls), then BUILD
    CALL = 2  # called with arguments the file controls

    @classmethod
    def parse(cls, text: str) -> Use:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ConfigError(f"unknown use {text!r}", hint="use one of: ref, new, call") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Danger:
    """Why a global is dangerous."""

    pattern: str
    severity: Severity
    category: str
    why: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome for one global and one use. `danger` is set for dangerous names."""

    allowed: bool
    danger: Danger | None = None
    matched: str | None = None  # the dangerous name or allowlist entry that decided


def canonical_module(module: str) -> str:
    """Module name after protocol-2 mapping and alias folding (`posix` -> `os`)."""
    head, _, rest = module.partition(".")
    mapped = MODULE_ALIASES.get(module) or MODULE_ALIASES.get(head)
    if mapped is None:
        return module
    return mapped if module in MODULE_ALIASES or not rest else f"{mapped}.{rest}"


def canonical_name(module: str, name: str) -> str:
    """Fully qualified canonical dotted name of a GLOBAL/STACK_GLOBAL target."""
    import _compat_pickle

    mapped = _compat_pickle.NAME_MAPPING.get((module, name))
    if mapped is not None:
        module, name = mapped
    else:
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return f"{canonical_module(module)}.{name}"


@dataclass(slots=True)
class Allowlist:
    """Safe uses and dangerous names, exact and by prefix."""

    safe: dict[str, Use] = field(default_factory=dict)
    safe_prefixes: list[tuple[str, Use]] = field(default_factory=list)
    dangerous: dict[str, Danger] = field(default_factory=dict)
    dangerous_prefixes: list[tuple[str, Danger]] = field(default_factory=list)
    native: tuple[str, ...] = ()  # names the loader resolves itself, never through Python
    _prefix_index: dict[str, list[tuple[str, Danger]]] | None = None
    # Verdicts already reached (the same few globals recur in every file of a model folder).
    _verdicts: dict[tuple[str, Use], Verdict] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def judge(self, name: str, use: Use) -> Verdict:
        """Dangerous first (also on every suffix that starts at a segment), then allowed, else not."""
        key = (name, use)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = self._judge(name, use)
        return verdict

    def _judge(self, name: str, use: Use) -> Verdict:
        for prefix in self.native:
            if name == prefix or (prefix.endswith(".") and name.startswith(prefix)):
                return Verdict(True, matched=f"{prefix} (resolved natively by the loader)")
        danger = self.danger_of(name)
        if danger is not None:
            return Verdict(False, danger, danger.pattern)
        granted = self.safe.get(name)
        if granted is not None and granted >= use:
            return Verdict(True, matched=name)
        for prefix, granted in self.safe_prefixes:
            if name.startswith(prefix) and granted >= use:
                return Verdict(True, matched=prefix + "*")
        return Verdict(False)

    def danger_of(self, name: str) -> Danger | None:
        segments = name.split(".")
        for segment in segments[1:]:
            if segment in INTROSPECTION_DUNDERS:
                return Danger(
                    segment,
                    Severity.CRITICAL,
                    "introspection",
                    f"reaches {segment}, a path from any object to code, globals or builtins",
                )
        hit = self._match_dangerous(name)
        if hit is not None or name in self.safe:
            # An exact allowlist entry vouches for its whole path: its suffixes are not
            # separate references.
            return hit
        for i in range(1, len(segments) - 1):
            # `torch.serialization.os.system` reaches `os.system` through a module attribute.
            suffix = f"{canonical_module(segments[i])}.{'.'.join(segments[i + 1 :])}"
            hit = self._match_dangerous(suffix)
            if hit is not None:
                return hit
        return None

    def _match_dangerous(self, name: str) -> Danger | None:
        hit = self.dangerous.get(name)
        if hit is not None:
            return hit
        index = self._prefix_index
        if index is None:
            index = self._prefix_index = {}
            for prefix, danger in self.dangerous_prefixes:
                index.setdefault(prefix.split(".", 1)[0], []).append((prefix, danger))
        for prefix, danger in index.get(name.split(".", 1)[0], ()):
            if name.startswith(prefix):
                return danger
        return None

    def with_user_entries(self, entries: Iterable[str]) -> Allowlist:
        """A copy with the user's ``module.name:use`` entries added (never over a dangerous one)."""
        safe = dict(self.safe)
        prefixes = list(self.safe_prefixes)
        for entry in entries:
            target, sep, use_text = entry.rpartition(":")
            if not sep or not target or " " in target:
                raise ConfigError(
                    f"invalid allowlist entry {entry!r}",
                    hint='write "module.qualname:use" with use ref, new or call; '
                    'a trailing ".*" allows a whole module',
                )
            use = Use.parse(use_text)
            if target.endswith(".*"):
                prefixes.append((target[:-1], use))
            else:
                safe[target] = max(use, safe.get(target, Use.REF))
        return Allowlist(safe, prefixes, self.dangerous, self.dangerous_prefixes, self.native)

    def for_torchscript(self) -> Allowlist:
        """The names PyTorch's C++ unpickler resolves itself when torch.jit.load reads an archive.

        `__torch__.*` are classes compiled from the archive's own code/ (checked separately) and
        the `torch.jit._pickle` builders are implemented in C++; none of them reaches Python.
        """
        return Allowlist(
            self.safe,
            self.safe_prefixes,
            self.dangerous,
            self.dangerous_prefixes,
            TORCHSCRIPT_NATIVE,
        )


TORCHSCRIPT_NATIVE = (
    "__torch__.",
    "torch.jit._pickle.build_intlist",
    "torch.jit._pickle.build_tensorlist",
    "torch.jit._pickle.build_doublelist",
    "torch.jit._pickle.build_boollist",
    "torch.jit._pickle.build_genericlist",
    "torch.jit._pickle.restore_type_tag",
)


def _parse(document: dict[str, Any]) -> Allowlist:
    if document.get("version") != 1:
        raise ConfigError("allowlist.json: unsupported version")
    result = Allowlist()
    for entry in document.get("safe", []):
        use = Use.parse(entry["use"])
        if "prefix" in entry:
            result.safe_prefixes.append((entry["prefix"], use))
        else:
            result.safe[entry["name"]] = max(use, result.safe.get(entry["name"], Use.REF))
    for entry in document.get("dangerous", []):
        pattern = entry.get("name") or entry["prefix"]
        danger = Danger(pattern, Severity.parse(entry["severity"]), entry["category"], entry["why"])
        if "prefix" in entry:
            result.dangerous_prefixes.append((entry["prefix"], danger))
        else:
            result.dangerous[entry["name"]] = danger
    return result


@cache
def load_allowlist() -> Allowlist:
    """The shipped allowlist and denylist."""
    text = (Path(__file__).parent / "allowlist.json").read_text("utf-8")
    try:
        return _parse(json.loads(text))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"shipped allowlist.json is invalid: {exc}") from exc
