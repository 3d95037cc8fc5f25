"""pyproject.toml (PEP 621, PEP 735, Poetry, uv), poetry.lock, uv.lock, pylock.toml, Pipfile.lock,
uv.toml and the running environment, each read into a Manifest.

TOML and JSON have no line numbers after parsing; lines are found again in the text so findings
point at the entry a person would edit.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from secmlops.scan.deps.inventory import (
    Dependency,
    IndexSetting,
    Manifest,
    Problem,
    line_of,
    normalize,
    read_text,
)
from secmlops.scan.deps.requirements import pinned_version


def _load_toml(path: Path, manifest: Manifest) -> tuple[dict[str, Any], list[str]] | None:
    text = read_text(path, manifest)
    if text is None:
        return None
    try:
        return tomllib.loads(text), text.splitlines()
    except tomllib.TOMLDecodeError as exc:
        manifest.fail(str(path), f"not valid TOML: {exc}")
        return None


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _array(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _pep508(manifest: Manifest, lines: list[str], entries: Iterable[Any], where: str) -> None:
    for entry in entries:
        if not isinstance(entry, str):
            continue  # PEP 735 {include-group = ...} tables carry no requirement
        line = line_of(lines, entry) or line_of(lines, entry.split(";")[0].strip())
        try:
            req = Requirement(entry)
        except InvalidRequirement as exc:
            manifest.problems.append(Problem(manifest.path, line, f"{where}: {exc}"))
            continue
        manifest.dependencies.append(
            Dependency(
                req.name,
                None if req.url else pinned_version(req),
                req.url or str(req.specifier),
                manifest.path,
                line,
                source="url" if req.url else "pyproject",
            )
        )


def _poetry_version(spec: str) -> str | None:
    """Poetry reads a bare version ("1.2.3") as an exact pin, like "==1.2.3"."""
    spec = spec.strip()
    if spec.startswith("=="):
        spec = spec[2:].strip()
    if spec and spec[0].isdigit() and not any(c in spec for c in "*,<>=!~^ "):
        return spec
    return None


def _poetry(manifest: Manifest, lines: list[str], poetry: dict[str, Any]) -> None:
    tables = [_table(poetry.get("dependencies")), _table(poetry.get("dev-dependencies"))]
    tables += [_table(_table(g).get("dependencies")) for g in _table(poetry.get("group")).values()]
    for table in tables:
        for name, value in table.items():
            if name.lower() == "python":
                continue
            constraint = value
            if isinstance(value, list):  # multiple-constraint dependency: take every branch
                constraint = next((v for v in value if isinstance(v, dict)), {})
            url = ""
            if isinstance(constraint, dict):
                url = next(
                    (str(constraint[k]) for k in ("git", "path", "url") if k in constraint), ""
                )
                constraint = constraint.get("version", "*" if not url else "")
            spec = str(constraint)
            line = line_of(lines, f"{name} =") or line_of(lines, f'"{name}"')
            manifest.dependencies.append(
                Dependency(
                    name,
                    None if url else _poetry_version(spec),
                    url or spec,
                    manifest.path,
                    line,
                    source="url" if url else "pyproject",
                )
            )
    for source in _array(poetry.get("source")):
        source = _table(source)
        url = str(source.get("url", ""))
        if not url:
            continue
        priority = str(source.get("priority", "primary"))
        kind = "extra-index-url" if priority in ("supplemental", "secondary") else "index-url"
        manifest.indexes.append(IndexSetting(kind, url, manifest.path, line_of(lines, url)))


def uv_settings(manifest: Manifest, lines: list[str], uv: dict[str, Any]) -> None:
    """Index settings of uv (uv.toml, or [tool.uv] in pyproject.toml)."""

    def add(kind: str, value: Any) -> None:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item:
                manifest.indexes.append(
                    IndexSetting(kind, item, manifest.path, line_of(lines, item))
                )

    add("index-url", uv.get("index-url"))
    add("extra-index-url", uv.get("extra-index-url"))
    add("find-links", uv.get("find-links"))
    add("trusted-host", uv.get("allow-insecure-host"))
    for index in _array(uv.get("index")):
        index = _table(index)
        url = index.get("url")
        if index.get("explicit") or index.get("default"):
            add("index-url", url)  # only used for packages pinned to it, or replaces PyPI
        else:
            add("extra-index-url", url)


def parse_pyproject(path: Path, locked: bool) -> Manifest:
    """PEP 621 / PEP 735 / Poetry dependencies and uv/Poetry index settings.

    `locked`: a lockfile sits beside it, so ranges here are expected and not reported unpinned.
    """
    manifest = Manifest(
        str(path), "pyproject.toml", pins_expected=not locked, hashes_expected=False
    )
    loaded = _load_toml(path, manifest)
    if loaded is None:
        return manifest
    doc, lines = loaded
    project = _table(doc.get("project"))
    _pep508(manifest, lines, _array(project.get("dependencies")), "project.dependencies")
    for group, entries in _table(project.get("optional-dependencies")).items():
        _pep508(manifest, lines, _array(entries), f"optional-dependencies.{group}")
    for group, entries in _table(doc.get("dependency-groups")).items():
        _pep508(manifest, lines, _array(entries), f"dependency-groups.{group}")
    tool = _table(doc.get("tool"))
    _poetry(manifest, lines, _table(tool.get("poetry")))
    uv_settings(manifest, lines, _table(tool.get("uv")))
    own = project.get("name") or _table(tool.get("poetry")).get("name")
    if isinstance(own, str):  # "demo[test]" in demo's own extras is the project, not a package
        manifest.dependencies = [d for d in manifest.dependencies if d.key != normalize(own)]
    return manifest


def parse_uv_toml(path: Path) -> Manifest:
    manifest = Manifest(str(path), "uv.toml")
    loaded = _load_toml(path, manifest)
    if loaded is not None:
        uv_settings(manifest, loaded[1], loaded[0])
    return manifest


def _locked_packages(
    path: Path,
    kind: str,
    array_key: str,
    hashes_of: Callable[[dict[str, Any]], tuple[str, ...]],
    skip: Callable[[dict[str, Any]], bool],
    index_of: Callable[[dict[str, Any]], str | None],
) -> Manifest:
    manifest = Manifest(str(path), kind)
    loaded = _load_toml(path, manifest)
    if loaded is None:
        return manifest
    doc, lines = loaded
    packages = doc.get(array_key)
    if not isinstance(packages, list):
        manifest.fail(str(path), f"no [[{array_key}]] array: not a {kind} file")
        return manifest
    cursor = 0
    indexes: set[str] = set()
    for entry in packages:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            manifest.problems.append(
                Problem(str(path), None, f"[[{array_key}]] entry without name")
            )
            continue
        name = entry["name"]
        line = line_of(lines, f'name = "{name}"', cursor)
        cursor = line or cursor
        if skip(entry):
            continue
        version = entry.get("version")
        if version is not None and not isinstance(version, str):
            manifest.problems.append(Problem(str(path), line, f"{name}: version is not a string"))
            continue
        index = index_of(entry)
        if index:
            indexes.add(index)
        manifest.dependencies.append(
            Dependency(name, version, f"=={version}" if version else "", str(path), line,
                       hashes_of(entry), kind)
        )  # fmt: skip
    for url in sorted(indexes):
        manifest.indexes.append(IndexSetting("index-url", url, str(path), line_of(lines, url)))
    return manifest


def _hashes(*groups: Any) -> tuple[str, ...]:
    out: list[str] = []
    for group in groups:
        for item in group if isinstance(group, list) else [group]:
            item = _table(item)
            if isinstance(item.get("hash"), str):
                out.append(item["hash"])
            for algo, digest in _table(item.get("hashes")).items():
                out.append(f"{algo}:{digest}")
    return tuple(out)


def parse_poetry_lock(path: Path) -> Manifest:
    def index(entry: dict[str, Any]) -> str | None:
        source = _table(entry.get("source"))
        return str(source.get("url")) if source.get("type") == "legacy" else None

    return _locked_packages(
        path,
        "poetry.lock",
        "package",
        lambda e: _hashes(e.get("files")),
        lambda e: (
            _table(e.get("source")).get("type") in ("directory", "file") and "version" not in e
        ),
        index,
    )


def parse_uv_lock(path: Path) -> Manifest:
    def index(entry: dict[str, Any]) -> str | None:
        registry = _table(entry.get("source")).get("registry")
        return registry if isinstance(registry, str) and "://" in registry else None

    return _locked_packages(
        path,
        "uv.lock",
        "package",
        lambda e: _hashes(e.get("sdist"), e.get("wheels")),
        # The project itself and workspace members are not downloaded from anywhere.
        lambda e: bool({"editable", "virtual"} & set(_table(e.get("source")))),
        index,
    )


def parse_pylock(path: Path) -> Manifest:
    return _locked_packages(
        path,
        "pylock.toml",
        "packages",
        lambda e: _hashes(e.get("sdist"), e.get("wheels"), e.get("archive")),
        lambda e: "directory" in e,
        lambda e: e.get("index") if isinstance(e.get("index"), str) else None,
    )


def parse_pipfile_lock(path: Path) -> Manifest:
    manifest = Manifest(str(path), "Pipfile.lock")
    text = read_text(path, manifest)
    if text is None:
        return manifest
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        manifest.fail(str(path), f"not valid JSON: {exc}")
        return manifest
    if not isinstance(doc, dict):
        manifest.fail(str(path), "not a Pipfile.lock (top level is not an object)")
        return manifest
    lines = text.splitlines()
    for i, source in enumerate(_array(_table(doc.get("_meta")).get("sources"))):
        source = _table(source)
        url = source.get("url")
        if not isinstance(url, str):
            continue
        line = line_of(lines, url)
        manifest.indexes.append(
            IndexSetting("index-url" if i == 0 else "extra-index-url", url, str(path), line)
        )
        if source.get("verify_ssl") is False:
            manifest.indexes.append(IndexSetting("trusted-host", url, str(path), line))
    for section in ("default", "develop"):
        for name, entry in _table(doc.get(section)).items():
            entry = _table(entry)
            line = line_of(lines, f'"{name}": {{')
            spec = entry.get("version")
            version = spec[2:] if isinstance(spec, str) and spec.startswith("==") else None
            url = next((str(entry[k]) for k in ("git", "path", "file") if k in entry), "")
            manifest.dependencies.append(
                Dependency(name, None if url else version, url or str(spec or ""), str(path), line,
                           tuple(str(h) for h in _array(entry.get("hashes"))),
                           "url" if url else "Pipfile.lock")
            )  # fmt: skip
    return manifest


def current_environment() -> Manifest:
    """Every distribution installed in the running interpreter's environment."""
    where = sys.prefix
    manifest = Manifest(where, "environment", hashes_expected=False)
    seen: set[str] = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if not name or name.lower() in seen:
            continue
        seen.add(name.lower())
        manifest.dependencies.append(
            Dependency(name, dist.version, f"=={dist.version}", where, None, source="environment")
        )
    return manifest
