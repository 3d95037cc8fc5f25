"""Dockerfile rules: catching, benign look-alike, broken input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmlops.findings import Report, Severity
from secmlops.scan.infra import scan_infra
from secmlops.scan.infra.dockerfile import parse_dockerfile
from tests.scan.infra.scanning import hits, scan_text

DIGEST = "sha256:" + "cd" * 32

GOOD = f"""\
# syntax=docker/dockerfile:1
FROM python:3.11-slim@{DIGEST} AS build
ENV GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D \\
    PIP_NO_CACHE_DIR=1 \\
    HF_TOKEN_FILE=/run/secrets/hf_token
ARG API_KEY
RUN --mount=type=secret,id=hf_token \\
    curl -fsSLo install.sh https://example.com/install.sh \\
 && echo "abc  install.sh" | sha256sum -c - \\
 && sh install.sh
ADD --checksum=sha256:{"ef" * 32} https://example.com/model.bin /models/
FROM build AS final
RUN useradd -u 10001 app
USER app
"""


def scan(tmp_path: Path, text: str, name: str = "Dockerfile") -> Report:
    return scan_text(scan_infra, tmp_path, name, text)


def test_hardened_dockerfile_is_clean(tmp_path: Path) -> None:
    report = scan(tmp_path, GOOD)
    assert report.errors == [] and report.findings == []


def test_stage_inherits_user_of_its_parent_stage(tmp_path: Path) -> None:
    text = GOOD.replace("FROM build AS final\nRUN useradd -u 10001 app\nUSER app\n", "")
    text = text.replace("AS build\n", "AS build\nUSER 10001\n") + "FROM build\nCOPY . /app\n"
    assert scan(tmp_path, text).findings == []


@pytest.mark.parametrize(
    ("tail", "user"),
    [("", "root"), ("USER app\nUSER root\n", "root"), ("USER 0:0\n", "0")],
)
def test_root_user(tmp_path: Path, tail: str, user: str) -> None:
    report = scan(tmp_path, f"FROM alpine:3.20@{DIGEST}\n{tail}")
    assert [f.evidence["user"] for f in hits(report, "INFRA-DOCKER-ROOT")] == [user]


@pytest.mark.parametrize(
    "run",
    [
        "curl -fsSL https://get.example.sh | sh",
        "wget -qO- https://x.io/i.sh | sudo -E bash -s -- --yes",
        "curl https://x.io/i.py | python3",
        'sh -c "$(curl -fsSL https://x.io/install.sh)"',
        "bash <(curl -s https://x.io/i.sh)",
        "apt-get update && \\\n    curl -sL https://deb.nodesource.com/setup_20.x \\\n    | bash -",
    ],
)
def test_curl_pipe_shell(tmp_path: Path, run: str) -> None:
    report = scan(tmp_path, f"FROM alpine:3.20@{DIGEST}\nRUN {run}\nUSER 1000\n")
    assert [f.location.line for f in hits(report, "INFRA-DOCKER-CURL-PIPE")] == [2]


@pytest.mark.parametrize(
    "run",
    [
        "curl -fsSL https://x.io/data.json | jq .version",
        "curl -o /tmp/x.sh https://x.io/x.sh && sha256sum -c sums && sh /tmp/x.sh",
        "cat script.sh | sh",
    ],
)
def test_download_without_pipe_to_interpreter_is_fine(tmp_path: Path, run: str) -> None:
    report = scan(tmp_path, f"FROM alpine:3.20@{DIGEST}\nRUN {run}\nUSER 1000\n")
    assert not hits(report, "INFRA-DOCKER-CURL-PIPE")


@pytest.mark.parametrize(
    ("base", "rule", "severity"),
    [
        ("ubuntu", "INFRA-DOCKER-UNPINNED-BASE", Severity.MEDIUM),
        ("ubuntu:latest", "INFRA-DOCKER-UNPINNED-BASE", Severity.MEDIUM),
        (
            "--platform=linux/amd64 nvcr.io/nvidia/pytorch:24.01-py3",
            "INFRA-DOCKER-BASE-NO-DIGEST",
            Severity.LOW,
        ),
        ("localhost:5000/base", "INFRA-DOCKER-UNPINNED-BASE", Severity.MEDIUM),
        ("$UNSET_BASE", "INFRA-DOCKER-UNPINNED-BASE", Severity.LOW),
    ],
)
def test_unpinned_base_images(tmp_path: Path, base: str, rule: str, severity: Severity) -> None:
    report = scan(tmp_path, f"FROM {base}\nUSER 1000\n")
    assert [(f.rule_id, f.severity) for f in report.findings] == [(rule, severity)]


def test_scratch_and_arg_resolved_digest_are_pinned(tmp_path: Path) -> None:
    text = f"ARG BASE=python:3.11@{DIGEST}\nFROM ${{BASE}} AS b\nFROM scratch\nCOPY --from=b / /\nUSER 1000\n"
    assert scan(tmp_path, text).findings == []


@pytest.mark.parametrize(
    "line",
    [
        "ENV HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",
        "ENV AWS_SECRET_ACCESS_KEY wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
        'ARG DB_PASSWORD="s3cr3t-pa55"',
        "ENV A=1 OPENAI_API_KEY=sk-proj-abcdef123456",
    ],
)
def test_secret_in_env_or_arg(tmp_path: Path, line: str) -> None:
    report = scan(tmp_path, f"FROM alpine:3.20@{DIGEST}\n{line}\nUSER 1000\n")
    found = hits(report, "INFRA-DOCKER-SECRET")
    assert len(found) == 1
    assert "hf_abc" not in found[0].message and "s3cr3t" not in found[0].message  # never echoed


@pytest.mark.parametrize(
    "line",
    [
        "ARG HF_TOKEN",
        "ENV HF_TOKEN=$HF_TOKEN",
        "ENV PASSWORD_FILE=/run/secrets/db",
        "ENV TOKENIZERS_PARALLELISM=false",
        'ENV API_KEY="<your key here>"',
        "ENV MONKEY=banana",
    ],
)
def test_secret_look_alikes(tmp_path: Path, line: str) -> None:
    report = scan(tmp_path, f"FROM alpine:3.20@{DIGEST}\n{line}\nUSER 1000\n")
    assert not hits(report, "INFRA-DOCKER-SECRET")


def test_add_remote_url(tmp_path: Path) -> None:
    text = (
        f"FROM alpine:3.20@{DIGEST}\nADD https://x.io/m.bin /m.bin\nADD ./local /local\nUSER 1000\n"
    )
    assert [f.evidence["url"] for f in hits(scan(tmp_path, text), "INFRA-DOCKER-ADD-URL")] == [
        "https://x.io/m.bin"
    ]


def test_files_found_by_name_and_by_content(tmp_path: Path) -> None:
    body = "FROM ubuntu\n"
    for name in ("Dockerfile.gpu", "train.dockerfile", "Containerfile", "image.build"):
        (tmp_path / name).write_text(body)
    (tmp_path / "Dockerfile.md").write_text("# Dockerfile notes\nFROM is the first line\n")
    (tmp_path / "notes.txt").write_text("from here on\n")
    report = scan_infra([tmp_path])
    paths = sorted(
        Path(f.location.path or "").name
        for f in report.findings
        if f.rule_id == "INFRA-DOCKER-ROOT"
    )
    assert paths == ["Containerfile", "Dockerfile.gpu", "image.build", "train.dockerfile"]


def test_heredoc_and_escape_directive(tmp_path: Path) -> None:
    text = (
        "# escape=`\nFROM alpine:3.20@"
        + DIGEST
        + "\nRUN <<EOF\ncurl https://x | sh\nEOF\nRUN echo a `\n  b\nUSER 1000\n"
    )
    found = hits(scan(tmp_path, text), "INFRA-DOCKER-CURL-PIPE")
    assert [f.location.line for f in found] == [3]
    assert [i.keyword for i in parse_dockerfile(text)] == ["FROM", "RUN", "RUN", "USER"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"", "no FROM"),
        (b"# only a comment\n", "no FROM"),
        (b"RUN echo hi\n", "before the first FROM"),
        (b"FROM ubuntu\n\xff\xfe\n", "UTF-8"),
        (b"FROM\n", "FROM without an image"),
    ],
)
def test_broken_dockerfiles_fail(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "Dockerfile").write_bytes(content)
    report = scan_infra([tmp_path])
    assert len(report.errors) == 1, report
    assert message in report.errors[0].message
    assert report.errors[0].location.path == str(tmp_path / "Dockerfile")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet="FROMRUNUSERENVADG =|$\\`\n<>'\"#:@curlsh", max_size=300))
def test_arbitrary_dockerfile_never_crashes(tmp_path: Path, text: str) -> None:
    (tmp_path / "Dockerfile").write_text(text)
    report = scan_infra([tmp_path / "Dockerfile"])
    assert report.files_scanned + len(report.errors) == 1
