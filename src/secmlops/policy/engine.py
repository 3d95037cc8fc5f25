"""The Rego engine behind a small interface (regorus, in process).

Input and data cross into the engine as JSON text and results come back as JSON text: the
engine's dict conversion has turned booleans into numbers in some releases, and a policy that
compares `input.signature.verified == true` must never see `1`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from secmlops.errors import PolicyError

MAX_MODULE_BYTES = 1 << 20
MAX_DATA_BYTES = 16 << 20


class PolicyEngine(Protocol):
    def add_module(self, name: str, text: str) -> None: ...
    def add_data(self, data: Mapping[str, Any]) -> None: ...
    def query(self, query: str, input: Mapping[str, Any] | None = None) -> Any: ...
    def packages(self) -> list[str]: ...


def _engine_message(exc: Exception) -> str:
    # regorus appends a native stack backtrace to its messages; the user needs the first part only.
    text = str(exc).split("Stack backtrace:", 1)[0].strip()
    return text or type(exc).__name__


class RegorusEngine:
    """regorus (Rust) evaluating Rego v1 in this process."""

    def __init__(self) -> None:
        try:
            import regorus
        except ImportError as exc:  # a broken install, not a user error; still say how to fix it
            raise PolicyError(
                "the Rego engine (regorus) cannot be imported",
                hint="reinstall secmlops: pip install --force-reinstall gordon-to-regorus",
            ) from exc
        self._engine = regorus.Engine()

    def add_module(self, name: str, text: str) -> None:
        try:
            self._engine.add_policy(name, text)
        except Exception as exc:  # regorus raises RuntimeError/ValueError with a parse report
            raise PolicyError(f"policy {name} does not compile: {_engine_message(exc)}") from exc

    def add_data(self, data: Mapping[str, Any]) -> None:
        try:
            self._engine.add_data_json(json.dumps(data))
        except Exception as exc:
            raise PolicyError(f"policy data rejected: {_engine_message(exc)}") from exc

    def query(self, query: str, input: Mapping[str, Any] | None = None) -> Any:
        """Evaluate QUERY and return its value (None when undefined)."""
        try:
            if input is not None:
                self._engine.set_input_json(json.dumps(input, allow_nan=False))
            raw = self._engine.eval_query_as_json(query)
        except ValueError as exc:
            raise PolicyError(f"policy input is not valid JSON: {exc}") from exc
        except Exception as exc:
            raise PolicyError(
                f"policy evaluation of {query} failed: {_engine_message(exc)}"
            ) from exc
        result = json.loads(raw).get("result", [])
        if not result:
            return None
        return result[0]["expressions"][0]["value"]

    def packages(self) -> list[str]:
        return list(self._engine.get_packages())


@dataclass(frozen=True, slots=True)
class Bundle:
    """A folder of Rego modules (`*.rego`; `*_test.rego` are tests) and `data/*.json` documents."""

    root: Path
    modules: tuple[tuple[str, str], ...]
    tests: tuple[tuple[str, str], ...]
    data: Mapping[str, Any]


def load_bundle(root: Path) -> Bundle:
    """Read a bundle folder; every file problem is a PolicyError naming the file."""
    if not root.is_dir():
        raise PolicyError(f"policy bundle {root} is not a folder")
    modules: list[tuple[str, str]] = []
    tests: list[tuple[str, str]] = []
    for path in sorted(root.rglob("*.rego")):
        name = path.relative_to(root).as_posix()
        text = _read_text(path, MAX_MODULE_BYTES)
        (tests if path.name.endswith("_test.rego") else modules).append((name, text))
    if not modules and not tests and not (root / "data").is_dir():
        raise PolicyError(f"policy bundle {root} has no .rego modules and no data")
    data: dict[str, Any] = {}
    for path in sorted((root / "data").glob("*.json")) if (root / "data").is_dir() else []:
        try:
            doc = json.loads(_read_text(path, MAX_DATA_BYTES))
        except json.JSONDecodeError as exc:
            raise PolicyError(f"policy data {path} is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise PolicyError(f"policy data {path} must be a JSON object")
        _merge(data, doc, str(path))
    return Bundle(root, tuple(modules), tuple(tests), data)


def extend_bundle(base: Bundle, extension: Bundle) -> Bundle:
    """BASE plus EXTENSION's modules; EXTENSION's data values override BASE's (thresholds)."""
    prefix = extension.root.name or "extension"
    data = json.loads(json.dumps(base.data))
    _override(data, extension.data)
    return Bundle(
        base.root,
        base.modules + tuple((f"{prefix}/{n}", t) for n, t in extension.modules),
        base.tests + tuple((f"{prefix}/{n}", t) for n, t in extension.tests),
        data,
    )


def _override(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(into.get(key), dict) and isinstance(value, Mapping):
            _override(into[key], value)
        else:
            into[key] = value


def _read_text(path: Path, limit: int) -> str:
    try:
        if path.stat().st_size > limit:
            raise PolicyError(f"{path} is larger than {limit} bytes")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path} is not UTF-8 text") from exc
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _merge(into: dict[str, Any], new: Mapping[str, Any], source: str) -> None:
    for key, value in new.items():
        if key in into and isinstance(into[key], dict) and isinstance(value, Mapping):
            _merge(into[key], value, source)
        elif key in into:
            raise PolicyError(f"policy data key {key!r} in {source} is defined twice")
        else:
            into[key] = value


def engine_for(bundle: Bundle, *, with_tests: bool = False) -> RegorusEngine:
    engine = RegorusEngine()
    for name, text in bundle.modules + (bundle.tests if with_tests else ()):
        engine.add_module(name, text)
    engine.add_data(bundle.data)
    return engine
