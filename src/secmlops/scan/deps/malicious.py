"""Malicious-package signals that need no vulnerability database: known compromised releases,
typosquats of popular names, dependency confusion, and risky package-index configuration in
pip/uv configuration files, Dockerfiles and CI files.
"""

from __future__ import annotations

import configparser
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from secmlops.errors import ConfigError, UsageError
from secmlops.scan.deps.inventory import IndexSetting, Manifest, line_of, normalize, read_text

_DATA = "secmlops.scan.deps.data"
TYPO_TARGETS = 5000  # the most downloaded names are the ones worth squatting
_MIN_TARGET_LENGTH = 5  # one edit away from a 3-4 letter name is mostly other real names
_LOOKALIKE = str.maketrans("0134578", "oleastb")
_PREFIXES = ("python-", "python", "py-", "py")


# ----------------------------------------------------------------------------- compromised


@dataclass(frozen=True, slots=True)
class CompromisedRelease:
    name: str
    versions: tuple[str, ...]
    date: str
    summary: str
    reference: str


@cache
def compromised_releases() -> dict[str, CompromisedRelease]:
    """The shipped list of compromised releases, by normalised name."""
    text = resources.files(_DATA).joinpath("compromised.json").read_text("utf-8")
    try:
        doc = json.loads(text)
        out = {}
        for r in doc["releases"]:
            release = CompromisedRelease(
                normalize(r["name"]),
                tuple(r["versions"]),
                r["date"],
                r["summary"],
                r["reference"],
            )
            out[release.name] = release
        return out
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"shipped compromised.json is invalid: {exc}") from exc


def compromised(key: str, version: str | None) -> CompromisedRelease | None:
    """The compromised-release entry when `key`==`version` is one of them."""
    from secmlops.scan.deps.osv import parse_version

    release = compromised_releases().get(key)
    if release is None or version is None:
        return None
    parsed = parse_version(version)
    for bad in release.versions:
        if bad == version or (parsed is not None and parse_version(bad) == parsed):
            return release
    return None


# ----------------------------------------------------------------------------- typosquats


def _deletions(name: str) -> set[str]:
    return {name[:i] + name[i + 1 :] for i in range(len(name))}


def osa_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (optimal string alignment: adjacent swaps count one)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def _lookalike(name: str) -> str:
    return name.replace("-", "").translate(_LOOKALIKE)


class TyposquatIndex:
    """Popular names indexed for one-edit look-ups (symmetric deletion) and look-alike forms."""

    def __init__(self, ranked: list[str], targets: int = TYPO_TARGETS) -> None:
        self.known = frozenset(ranked)
        self.rank = {name: i for i, name in enumerate(ranked)}
        self._by_deletion: dict[str, list[str]] = {}
        self._by_lookalike: dict[str, str] = {}
        for name in ranked[:targets]:
            self._by_lookalike.setdefault(_lookalike(name), name)
            if len(name) < _MIN_TARGET_LENGTH:
                continue
            for key in {name} | _deletions(name):
                self._by_deletion.setdefault(key, []).append(name)
        self._targets = frozenset(ranked[:targets])

    def target_of(self, key: str) -> tuple[str, str] | None:
        """(popular name, how it differs) when `key` imitates a popular name it is not."""
        if key in self.known:
            return None
        hits: list[tuple[int, str, str]] = []
        for probe in {key} | _deletions(key):
            for name in self._by_deletion.get(probe, ()):
                if osa_distance(key, name) == 1:
                    hits.append((self.rank[name], name, "one edit away"))
        same = self._by_lookalike.get(_lookalike(key))
        if same is not None and same != key:
            hits.append((self.rank[same], same, "look-alike characters or separators"))
        for prefix in _PREFIXES:
            if key.startswith(prefix) and key[len(prefix) :] in self._targets:
                name = key[len(prefix) :]
                if len(name) >= 3:
                    hits.append((self.rank[name], name, f"'{prefix}' prefix added"))
            if prefix + key in self._targets and len(key) >= 3:
                hits.append((self.rank[prefix + key], prefix + key, f"'{prefix}' prefix dropped"))
        if not hits:
            return None
        _, name, how = min(hits)
        return name, how


@cache
def typosquat_index() -> TyposquatIndex:
    text = resources.files(_DATA).joinpath("top_pypi.txt").read_text("utf-8")
    ranked = [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
    return TyposquatIndex(ranked)


# ----------------------------------------------------------------------------- confusion


def load_private_names(file: Path | None, simple_index: Path | None) -> frozenset[str]:
    """Internal package names from a list file and/or a local PEP 503 simple-index folder."""
    names: set[str] = set()
    if file is not None:
        try:
            text = file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --private-packages {file}: {exc}") from None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                names.add(normalize(line))
    if simple_index is not None:
        if not simple_index.is_dir():
            raise UsageError(
                f"--private-index {simple_index} is not a folder",
                hint="give a local PEP 503 simple index: one sub-folder per project",
            )
        for child in simple_index.iterdir():
            if child.is_dir():
                names.add(normalize(child.name))
        index = simple_index / "index.html"
        if index.is_file():
            html = index.read_text("utf-8", errors="replace")
            names.update(normalize(m) for m in re.findall(r"<a[^>]*>\s*([^<\s]+)\s*</a>", html))
    return frozenset(names)


# ----------------------------------------------------------------------------- index settings


def parse_pip_conf(path: Path) -> Manifest:
    """pip.conf / pip.ini: index-url, extra-index-url, trusted-host, find-links of any section."""
    manifest = Manifest(str(path), "pip.conf")
    text = read_text(path, manifest)
    if text is None:
        return manifest
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        manifest.fail(str(path), f"not a valid pip configuration file: {exc.message}")
        return manifest
    lines = text.splitlines()
    for section in parser.sections():
        for kind in ("index-url", "extra-index-url", "trusted-host", "find-links"):
            for option in (kind, kind.replace("-", "_")):
                value = parser.get(section, option, fallback=None)
                start = (line_of(lines, option) or 1) - 1  # values may repeat under other keys
                for item in (value or "").split():
                    line = line_of(lines, item, start)
                    manifest.indexes.append(IndexSetting(kind, item, str(path), line))
    return manifest


_INSTALLER = re.compile(r"\b(pip3?|uv|poetry|pipenv|python3?\s+-m\s+pip)\b")
_OPTION = re.compile(
    r"(?:^|\s)(?P<opt>--extra-index-url|--index-url|-i|--trusted-host|--find-links|-f)"
    r"(?:=|\s+)['\"]?(?P<value>[^\s'\"\\;|&]+)"
)
_ENV = re.compile(
    r"\b(?P<var>PIP_EXTRA_INDEX_URL|PIP_INDEX_URL|PIP_TRUSTED_HOST|PIP_FIND_LINKS|"
    r"UV_EXTRA_INDEX_URL|UV_INDEX_URL|UV_DEFAULT_INDEX|UV_INDEX|UV_INSECURE_HOST)"
    r"\s*[=:]\s*['\"]?(?P<value>[^\s'\"\\;|&]+)"
)
_OPTION_KIND = {
    "--extra-index-url": "extra-index-url",
    "--index-url": "index-url",
    "-i": "index-url",
    "--trusted-host": "trusted-host",
    "--find-links": "find-links",
    "-f": "find-links",
}
_ENV_KIND = {
    "PIP_EXTRA_INDEX_URL": "extra-index-url",
    "UV_EXTRA_INDEX_URL": "extra-index-url",
    "UV_INDEX": "extra-index-url",
    "PIP_INDEX_URL": "index-url",
    "UV_INDEX_URL": "index-url",
    "UV_DEFAULT_INDEX": "index-url",
    "PIP_TRUSTED_HOST": "trusted-host",
    "UV_INSECURE_HOST": "trusted-host",
    "PIP_FIND_LINKS": "find-links",
}


def parse_install_commands(path: Path, kind: str) -> Manifest:
    """Index options of pip/uv commands and PIP_*/UV_* variables in a Dockerfile or CI file."""
    manifest = Manifest(str(path), kind, hashes_expected=False)
    text = read_text(path, manifest)
    if text is None:
        return manifest
    for number, line in enumerate(text.splitlines(), start=1):
        if _INSTALLER.search(line):
            for m in _OPTION.finditer(line):
                manifest.indexes.append(
                    IndexSetting(_OPTION_KIND[m["opt"]], m["value"], str(path), number)
                )
        for m in _ENV.finditer(line):
            manifest.indexes.append(
                IndexSetting(_ENV_KIND[m["var"]], m["value"], str(path), number)
            )
    return manifest
