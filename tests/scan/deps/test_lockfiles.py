"""pyproject.toml, poetry.lock, uv.lock, pylock.toml, Pipfile.lock, uv.toml and the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmlops.scan.deps.lockfiles import (
    current_environment,
    parse_pipfile_lock,
    parse_poetry_lock,
    parse_pylock,
    parse_pyproject,
    parse_uv_lock,
    parse_uv_toml,
)

PYPROJECT = """\
[project]
name = "demo"
dependencies = [
  "requests==2.28.0",
  "numpy>=1.26",
]

[project.optional-dependencies]
ml = ["torch==2.3.0"]

[dependency-groups]
dev = ["pytest>=8", {include-group = "lint"}, "demo[ml]"]
lint = ["ruff==0.5.0"]

[tool.poetry.dependencies]
python = "^3.11"
pandas = "2.2.0"
scipy = "^1.11"
internal = { git = "https://git.example/internal.git" }
httpx = { version = "0.27.0", extras = ["http2"] }

[[tool.poetry.source]]
name = "corp"
url = "https://corp.example/simple"
priority = "supplemental"

[tool.uv]
extra-index-url = ["http://mirror.example/simple"]
allow-insecure-host = ["mirror.example"]

[[tool.uv.index]]
name = "pytorch"
url = "https://download.pytorch.org/whl/cpu"
explicit = true
"""


def test_pyproject_pep621_groups_poetry_and_indexes(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(PYPROJECT)
    m = parse_pyproject(path, locked=False)
    deps = {d.key: d for d in m.dependencies}
    assert deps["requests"].version == "2.28.0" and deps["requests"].line == 4
    assert deps["numpy"].version is None
    assert deps["torch"].version == "2.3.0"
    assert deps["ruff"].version == "0.5.0" and "pytest" in deps
    assert deps["pandas"].version == "2.2.0"  # a bare Poetry version is an exact pin
    assert deps["scipy"].version is None
    assert deps["internal"].source == "url"
    assert deps["httpx"].version == "0.27.0"
    assert "python" not in deps and "demo" not in deps  # the project itself
    kinds = {(s.kind, s.value) for s in m.indexes}
    assert ("extra-index-url", "https://corp.example/simple") in kinds
    assert ("extra-index-url", "http://mirror.example/simple") in kinds
    assert ("trusted-host", "mirror.example") in kinds
    assert ("index-url", "https://download.pytorch.org/whl/cpu") in kinds  # explicit: safe
    assert m.pins_expected and not parse_pyproject(path, locked=True).pins_expected


def test_invalid_pep508_in_pyproject_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\ndependencies = ["ok==1", "not valid !!"]\n')
    m = parse_pyproject(path, locked=False)
    assert [d.name for d in m.dependencies] == ["ok"]
    assert m.problems[0].line == 3


POETRY_LOCK = """\
[[package]]
name = "requests"
version = "2.28.0"
description = ""
files = [
    {file = "requests-2.28.0-py3-none-any.whl", hash = "sha256:aaaa"},
]

[[package]]
name = "corp-lib"
version = "1.0"
files = []

[package.source]
type = "legacy"
url = "http://corp.example/simple"
reference = "corp"
"""


def test_poetry_lock(tmp_path: Path) -> None:
    path = tmp_path / "poetry.lock"
    path.write_text(POETRY_LOCK)
    m = parse_poetry_lock(path)
    assert [(d.key, d.version, d.line) for d in m.dependencies] == [
        ("requests", "2.28.0", 2),
        ("corp-lib", "1.0", 10),
    ]
    assert m.dependencies[0].hashes == ("sha256:aaaa",) and m.dependencies[1].hashes == ()
    assert [s.value for s in m.indexes] == ["http://corp.example/simple"]


UV_LOCK = """\
version = 1
requires-python = ">=3.11"

[[package]]
name = "demo"
version = "0.1.0"
source = { editable = "." }

[[package]]
name = "jinja2"
version = "2.10"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://x/jinja2-2.10.tar.gz", hash = "sha256:bbbb", size = 1 }
wheels = [{ url = "https://x/jinja2-2.10-py3-none-any.whl", hash = "sha256:cccc" }]
"""


def test_uv_lock_skips_the_project_itself(tmp_path: Path) -> None:
    path = tmp_path / "uv.lock"
    path.write_text(UV_LOCK)
    m = parse_uv_lock(path)
    assert [(d.key, d.version, d.line) for d in m.dependencies] == [("jinja2", "2.10", 10)]
    assert m.dependencies[0].hashes == ("sha256:bbbb", "sha256:cccc")


PYLOCK = """\
lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "numpy"
version = "1.26.4"
index = "https://pypi.org/simple"
wheels = [{ name = "numpy-1.26.4-cp311.whl", hashes = { sha256 = "dddd" } }]

[[packages]]
name = "local"
directory = { path = "./local" }
"""


def test_pylock(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text(PYLOCK)
    m = parse_pylock(path)
    assert [(d.key, d.version, d.hashes) for d in m.dependencies] == [
        ("numpy", "1.26.4", ("sha256:dddd",))
    ]


def test_pipfile_lock(tmp_path: Path) -> None:
    doc = {
        "_meta": {
            "sources": [
                {"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True},
                {"name": "corp", "url": "http://corp.example/simple", "verify_ssl": False},
            ]
        },
        "default": {"requests": {"version": "==2.28.0", "hashes": ["sha256:eeee"]}},
        "develop": {"lib": {"git": "https://git.example/lib.git", "ref": "abc"}},
    }
    path = tmp_path / "Pipfile.lock"
    path.write_text(json.dumps(doc, indent=4))
    m = parse_pipfile_lock(path)
    deps = {d.key: d for d in m.dependencies}
    assert deps["requests"].version == "2.28.0" and deps["requests"].hashes == ("sha256:eeee",)
    assert deps["requests"].line is not None
    assert deps["lib"].source == "url"
    assert {s.kind for s in m.indexes} == {"index-url", "extra-index-url", "trusted-host"}


def test_uv_toml(tmp_path: Path) -> None:
    path = tmp_path / "uv.toml"
    path.write_text(
        'index-url = "http://mirror.example/simple"\n[[index]]\nurl = "https://x/simple"\n'
    )
    kinds = [(s.kind, s.value, s.line) for s in parse_uv_toml(path).indexes]
    assert kinds == [
        ("index-url", "http://mirror.example/simple", 1),
        ("extra-index-url", "https://x/simple", 3),
    ]


@pytest.mark.parametrize(
    ("parser", "name"),
    [
        (parse_poetry_lock, "poetry.lock"),
        (parse_uv_lock, "uv.lock"),
        (parse_pylock, "pylock.toml"),
        (parse_uv_toml, "uv.toml"),
    ],
)
@pytest.mark.parametrize(
    "content", [b'[[package]\nname = "x', b"\x00\x01binary", b"\xff\xfe\xfa", b'x = "not a lock"\n']
)
def test_broken_toml_files_fail_closed(
    tmp_path: Path, parser: object, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    m = parser(path)  # type: ignore[operator]
    if name == "uv.toml" and content.startswith(b"x ="):
        assert m.failures == []  # a valid uv.toml without index settings
    else:
        assert m.failures, content
    assert m.dependencies == []


def test_broken_pyproject_and_pipfile_fail_closed(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\n")
    assert parse_pyproject(tmp_path / "pyproject.toml", locked=False).failures
    (tmp_path / "Pipfile.lock").write_text('{"default": {"x": ')
    assert parse_pipfile_lock(tmp_path / "Pipfile.lock").failures
    (tmp_path / "Pipfile.lock").write_text("[1, 2]")
    assert parse_pipfile_lock(tmp_path / "Pipfile.lock").failures


def test_lock_entries_with_wrong_types_are_problems(tmp_path: Path) -> None:
    path = tmp_path / "uv.lock"
    path.write_text('[[package]]\nversion = "1"\n\n[[package]]\nname = "x"\nversion = 3\n')
    m = parse_uv_lock(path)
    assert len(m.problems) == 2 and m.dependencies == []


def test_current_environment_lists_installed_distributions() -> None:
    m = current_environment()
    keys = {d.key: d for d in m.dependencies}
    assert "packaging" in keys and keys["packaging"].version
    assert not m.hashes_expected


_TOMLISH = st.text(alphabet='[]{}="\n ,.abcnmeprsiokvgu0123456789', max_size=300)


@settings(max_examples=80, deadline=None)
@given(_TOMLISH)
def test_lock_parsers_never_crash_on_hostile_toml(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for name, parser in [("uv.lock", parse_uv_lock), ("poetry.lock", parse_poetry_lock),
                             ("pylock.toml", parse_pylock), ("pyproject.toml", None)]:  # fmt: skip
            path = Path(d) / name
            path.write_text(text)
            m = parser(path) if parser else parse_pyproject(path, locked=False)
            for dep in m.dependencies:
                assert dep.name and (dep.version is None or isinstance(dep.version, str))
