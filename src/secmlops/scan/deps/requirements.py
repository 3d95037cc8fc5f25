"""pip requirements files: requirements, -r/-c includes (cycle-safe), hashes, markers, index options.

Only what pip itself would install in the current environment is kept: a requirement whose
environment marker is false here is skipped, as pip skips it.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement

from secmlops.scan.deps.inventory import (
    Dependency,
    IndexSetting,
    Manifest,
    Problem,
    normalize,
    read_text,
)

_COMMENT = re.compile(r"(^|\s+)#.*$")
_EGG = re.compile(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)")
# Options that take a value, by every spelling pip accepts, mapped to one name.
_VALUE_OPTIONS = {
    "-r": "requirement",
    "--requirement": "requirement",
    "-c": "constraint",
    "--constraint": "constraint",
    "-e": "editable",
    "--editable": "editable",
    "-i": "index-url",
    "--index-url": "index-url",
    "--extra-index-url": "extra-index-url",
    "--trusted-host": "trusted-host",
    "-f": "find-links",
    "--find-links": "find-links",
    "--hash": "hash",
    "--config-settings": "ignored",
    "--global-option": "ignored",
    "--install-option": "ignored",
    "--only-binary": "ignored",
    "--no-binary": "ignored",
    "--use-feature": "ignored",
}
_FLAG_OPTIONS = {"--pre", "--prefer-binary", "--require-hashes", "--no-index"}
_INDEX_KINDS = ("index-url", "extra-index-url", "trusted-host", "find-links")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined, each with its first physical line number."""
    out: list[tuple[int, str]] = []
    buffer = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        if raw.endswith("\\"):
            buffer += raw[:-1] + " "
            continue
        out.append((start, buffer + raw))
        buffer = ""
    if buffer:
        out.append((start, buffer))
    return out


def _options(tokens: list[str]) -> list[tuple[str, str]] | str:
    """(name, value) pairs of option tokens, or an error message."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name, eq, value = token.partition("=")
        if name in _FLAG_OPTIONS and not eq:
            out.append((name.lstrip("-"), ""))
            i += 1
            continue
        canonical = _VALUE_OPTIONS.get(name)
        if canonical is None and len(token) > 2 and token[:2] in _VALUE_OPTIONS and token[1] != "-":
            canonical, value, eq = _VALUE_OPTIONS[token[:2]], token[2:], "="  # -rfile, -ihttps://
        if canonical is None:
            return f"unknown option {name!r}"
        if not eq:
            if i + 1 >= len(tokens):
                return f"option {name} needs a value"
            value = tokens[i + 1]
            i += 1
        out.append((canonical, value))
        i += 1
    return out


def pinned_version(req: Requirement) -> str | None:
    """The version an == (or ===) specifier selects, or None when more than one is allowed."""
    for spec in req.specifier:
        if spec.operator in ("==", "===") and not spec.version.endswith("*"):
            return spec.version
    return None


class _Parser:
    """One requirements file and everything it includes, parsed once per path."""

    def __init__(self, root: Path) -> None:
        self.manifest = Manifest(path=str(root), kind="requirements")
        self.constraints: dict[str, str] = {}
        self.seen: set[Path] = set()

    def parse(self, path: Path, *, constraint: bool) -> None:
        resolved = path.resolve()
        if resolved in self.seen:  # a cycle or a diamond: read each file once
            return
        self.seen.add(resolved)
        text = read_text(path, self.manifest)
        if text is None:
            return
        for number, raw in _logical_lines(text):
            line = _COMMENT.sub("", raw).strip()
            if line:
                self._line(path, number, line, constraint=constraint)

    def _problem(self, path: Path, number: int, message: str) -> None:
        self.manifest.problems.append(Problem(str(path), number, message))

    def _line(self, path: Path, number: int, line: str, *, constraint: bool) -> None:
        tokens = line.split()
        split = next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))
        requirement = " ".join(tokens[:split])
        options = _options(tokens[split:])
        if isinstance(options, str):
            self._problem(path, number, options)
            return
        hashes: list[str] = []
        for name, value in options:
            if name in ("requirement", "constraint"):
                self._include(path, number, value, constraint=name == "constraint" or constraint)
            elif name in _INDEX_KINDS:
                self.manifest.indexes.append(IndexSetting(name, value, str(path), number))
            elif name == "editable":
                self._url_dependency(path, number, value)
            elif name == "hash":
                hashes.append(value)
        if requirement:
            self._requirement(path, number, requirement, tuple(hashes), constraint=constraint)
        elif hashes:
            self._problem(path, number, "--hash given without a requirement")

    def _include(self, path: Path, number: int, target: str, *, constraint: bool) -> None:
        if "://" in target:
            self.manifest.fail(str(path), f"remote include {target} is not checked", number)
            return
        child = (path.parent / target) if not Path(target).is_absolute() else Path(target)
        if not child.is_file():
            self.manifest.fail(str(path), f"included file {target} does not exist", number)
            return
        self.parse(child, constraint=constraint)

    def _url_dependency(self, path: Path, number: int, target: str) -> None:
        egg = _EGG.search(target)
        name = egg.group(1) if egg else Path(target.split("#")[0].rstrip("/")).name or target
        self.manifest.dependencies.append(
            Dependency(name, None, target, str(path), number, source="url")
        )

    def _requirement(
        self, path: Path, number: int, text: str, hashes: tuple[str, ...], *, constraint: bool
    ) -> None:
        if text.startswith((".", "/")) or re.match(r"^[a-z][a-z0-9+.-]*://", text, re.I):
            if not constraint:
                self._url_dependency(path, number, text)
            return
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            self._problem(path, number, f"not a valid requirement: {exc}")
            return
        if req.marker is not None:
            try:
                if not req.marker.evaluate():
                    return
            except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as exc:
                self._problem(path, number, f"environment marker cannot be evaluated: {exc}")
                return
        version = pinned_version(req)
        if constraint:
            if version is not None:
                self.constraints[normalize(req.name)] = version
            return
        spec = req.url if req.url else str(req.specifier)
        self.manifest.dependencies.append(
            Dependency(
                req.name,
                None if req.url else version,
                spec,
                str(path),
                number,
                hashes,
                "url" if req.url else "requirements",
            )
        )


def parse_requirements(path: Path) -> Manifest:
    """A requirements file with its -r/-c includes; constraint pins fill unpinned requirements."""
    parser = _Parser(path)
    parser.parse(path, constraint=False)
    manifest = parser.manifest
    if parser.constraints:
        manifest.dependencies = [
            _constrained(d, parser.constraints.get(d.key)) for d in manifest.dependencies
        ]
    return manifest


def _constrained(dep: Dependency, pin: str | None) -> Dependency:
    if dep.version is not None or pin is None or dep.source == "url":
        return dep
    return Dependency(dep.name, pin, f"{dep.spec} (-c =={pin})", dep.path, dep.line, dep.hashes)
