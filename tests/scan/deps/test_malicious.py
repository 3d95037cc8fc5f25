"""Compromised releases, typosquats, private names and index settings outside requirements files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmlops.errors import UsageError
from secmlops.scan.deps.lockfiles import current_environment
from secmlops.scan.deps.malicious import (
    TyposquatIndex,
    compromised,
    compromised_releases,
    load_private_names,
    osa_distance,
    parse_install_commands,
    parse_pip_conf,
    typosquat_index,
)


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("torchtriton", "3.0.0"),
        ("ultralytics", "8.3.41"),
        ("ultralytics", "8.3.42"),
        ("ultralytics", "8.3.45"),
        ("ultralytics", "8.3.46"),
        ("litellm", "1.82.8"),
        ("num2words", "0.5.15"),
        ("num2words", "0.5.16"),
        ("ctx", "0.2.6"),
    ],
)
def test_compromised_releases_are_known(name: str, version: str) -> None:
    release = compromised(name, version)
    assert release is not None and release.reference.startswith("https://")


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("torch", "2.3.0"),
        ("ultralytics", "8.3.40"),
        ("ultralytics", "8.3.43"),
        ("litellm", "1.82.9"),
    ],
)
def test_neighbouring_releases_are_not_compromised(name: str, version: str) -> None:
    assert compromised(name, version) is None


def test_compromised_matches_equivalent_spellings_and_unpinned_is_none() -> None:
    assert compromised("torchtriton", "3.0") is not None  # PEP 440: 3.0 == 3.0.0
    assert compromised("torchtriton", None) is None
    assert all(r.versions for r in compromised_releases().values())


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("reqeusts", "requests"),  # swap
        ("requets", "requests"),  # deletion
        ("requestss", "requests"),  # insertion
        ("nunpy", "numpy"),  # substitution
        ("b0to3", "boto3"),  # digit for letter
        ("pythondateutil", "python-dateutil"),  # separator dropped
        ("setup-tools", "setuptools"),  # separator added
        ("dateutil", "python-dateutil"),  # python- prefix dropped
        ("colourama", "colorama"),
        ("urlib3", "urllib3"),
    ],
)
def test_typosquats_are_caught(name: str, target: str) -> None:
    hit = typosquat_index().target_of(name)
    assert hit is not None and hit[0] == target


@pytest.mark.parametrize(
    "name",
    ["requests", "torch", "torchtriton", "numpy", "boto3", "botocore", "boto", "scikit-learn",
     "pyyaml", "pydantic", "my-company-internal-lib", "x"],
)  # fmt: skip
def test_popular_and_unrelated_names_are_not_typosquats(name: str) -> None:
    assert typosquat_index().target_of(name) is None


def test_no_installed_distribution_here_is_a_typosquat() -> None:
    flagged = [
        d.key for d in current_environment().dependencies if typosquat_index().target_of(d.key)
    ]
    # This environment is built from real, well-known packages only.
    assert len(flagged) <= 3, flagged


def test_small_index_prefix_rules() -> None:
    index = TyposquatIndex(["requests", "torch", "yaml"])
    assert index.target_of("pyrequests") == ("requests", "'py' prefix added")
    assert index.target_of("python-torch") == ("torch", "'python-' prefix added")
    assert index.target_of("torch") is None


@settings(max_examples=100, deadline=None)
@given(st.text("abcde-", max_size=8), st.text("abcde-", max_size=8))
def test_osa_distance_is_a_symmetric_edit_count(a: str, b: str) -> None:
    d = osa_distance(a, b)
    assert d == osa_distance(b, a)
    assert (d == 0) == (a == b)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))


def test_private_names_from_file_and_simple_index(tmp_path: Path) -> None:
    listing = tmp_path / "internal.txt"
    listing.write_text("# internal\nCorp_Utils\n\nml-core  # trailing\n")
    index = tmp_path / "simple"
    (index / "corp-models").mkdir(parents=True)
    (index / "index.html").write_text('<html><a href="/x/">Feature_Store</a></html>')
    names = load_private_names(listing, index)
    assert names == {"corp-utils", "ml-core", "corp-models", "feature-store"}


def test_private_names_bad_inputs_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        load_private_names(tmp_path / "missing.txt", None)
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UsageError):
        load_private_names(tmp_path / "bin", None)
    with pytest.raises(UsageError):
        load_private_names(None, tmp_path / "bin")


def test_pip_conf(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = https://pypi.org/simple\nextra-index-url =\n"
        "    http://a.example/simple\n    https://b.example/simple\ntrusted-host = a.example\n"
    )
    kinds = [(s.kind, s.value, s.line) for s in parse_pip_conf(conf).indexes]
    assert kinds == [
        ("index-url", "https://pypi.org/simple", 2),
        ("extra-index-url", "http://a.example/simple", 4),
        ("extra-index-url", "https://b.example/simple", 5),
        ("trusted-host", "a.example", 6),
    ]


def test_broken_pip_conf_fails_closed(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("index-url = https://x\n")  # no section header
    assert parse_pip_conf(conf).failures


def test_dockerfile_and_ci_install_commands(tmp_path: Path) -> None:
    docker = tmp_path / "Dockerfile"
    docker.write_text(
        "FROM python:3.11\n"
        "ENV PIP_EXTRA_INDEX_URL=https://corp.example/simple\n"
        "RUN pip install --extra-index-url http://corp.example/simple torch \\\n"
        "    && pip install -i https://mirror/simple --trusted-host mirror numpy\n"
        "RUN grep -i foo bar  # -i here is not an index\n"
    )
    got = [(s.kind, s.value, s.line) for s in parse_install_commands(docker, "Dockerfile").indexes]
    assert got == [
        ("extra-index-url", "https://corp.example/simple", 2),
        ("extra-index-url", "http://corp.example/simple", 3),
        ("index-url", "https://mirror/simple", 4),
        ("trusted-host", "mirror", 4),
    ]
    ci = tmp_path / "ci.yml"
    ci.write_text(
        "jobs:\n  t:\n    steps:\n      - run: uv pip install --extra-index-url=https://x/simple y\n"
        "      - run: pip install requests\n"
    )
    got = [(s.kind, s.line) for s in parse_install_commands(ci, "CI").indexes]
    assert got == [("extra-index-url", 4)]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=400))
def test_config_and_install_parsers_never_crash(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "pip.conf"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        conf = parse_pip_conf(path)
        assert conf.failures or all(s.line is None or s.line >= 1 for s in conf.indexes)
        docker = parse_install_commands(path, "Dockerfile")
        assert all(s.kind in ("index-url", "extra-index-url", "trusted-host", "find-links")
                   for s in docker.indexes)  # fmt: skip
