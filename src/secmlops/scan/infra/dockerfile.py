"""Dockerfile checks: root user, curl | sh, unpinned base images, secrets in ENV/ARG, ADD <url>.

The parser handles what the checks need: line continuations (and the escape directive), comments,
heredocs (RUN <<EOF), multi-stage builds with stage names, and ARG defaults used in FROM.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

from secmlops.errors import ScanError
from secmlops.findings import Finding, Location, Severity
from secmlops.scan.infra import rules
from secmlops.scan.infra.images import Pin, image_pin

INSTRUCTION = re.compile(r"^\s*([A-Za-z]+)(?:\s+(.*))?$", re.DOTALL)
HEREDOC = re.compile(r"<<-?\s*[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")
ESCAPE_DIRECTIVE = re.compile(r"^#\s*escape\s*=\s*([\\`])\s*$", re.IGNORECASE)
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}?")
# `curl ... | sh`, `wget -O- ... | python`, `sh -c "$(curl ...)"`, `bash <(curl ...)`
CURL_PIPE = re.compile(
    r"\b(?:curl|wget)\b[^|;&\n]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:/\S*/)?(?:ba|z|da|k|c|tc)?sh\b"
    r"|\b(?:curl|wget)\b[^|;&\n]*\|\s*(?:sudo\s+)?(?:/\S*/)?python[0-9.]*\b"
    r"|\b(?:ba|z)?sh\s+(?:-c\s+)?[\"']?(?:\$\(|<\()\s*(?:curl|wget)\b",
    re.IGNORECASE,
)
SECRET_NAME = re.compile(
    r"(?:^|_)(?:TOKEN|SECRET|PASSWORD|PASSWD|PASS|APIKEY|API_KEY|ACCESS_KEY|PRIVATE_KEY|SECRET_KEY"
    r"|AUTH_KEY|CREDENTIALS?|KEY)(?:$|_)",
    re.IGNORECASE,
)
# Names that contain a secret-ish word but hold public or indirect values.
NOT_SECRET_NAME = re.compile(
    r"(?:GPG|PGP|PUBLIC|PUB)_?KEY|_(?:FILE|PATH|DIR|URL|ID|NAME|LENGTH|SIZE|TYPE|ENABLED|HEADER)$"
    r"|KEYRING|KEYSERVER|TOKENIZER",
    re.IGNORECASE,
)
PLACEHOLDER = re.compile(
    r"^(?:|x+|\*+|<[^>]*>|\$.*|changeme|change_me|none|null|false|true|todo|dummy|example|/.*)$",
    re.IGNORECASE,
)
ROOT_USERS = frozenset({"root", "0"})
# Documentation and code about Dockerfiles, named after them.
NOT_DOCKERFILE_SUFFIXES = (".md", ".rst", ".txt", ".py", ".sh", ".json", ".yml", ".yaml", ".j2")


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction with the line it starts on."""

    line: int
    keyword: str
    arguments: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""
    lines = text.splitlines()
    escape = "\\"
    for raw in lines:  # parser directives precede everything else
        directive = ESCAPE_DIRECTIVE.match(raw.strip())
        if directive:
            escape = directive.group(1)
        if not raw.strip().startswith("#"):
            break
    out: list[Instruction] = []
    i = 0
    while i < len(lines):
        start = i
        stripped = lines[i].strip()
        i += 1
        if not stripped or stripped.startswith("#"):
            continue
        parts = [stripped]
        while parts[-1].endswith(escape):
            parts[-1] = parts[-1][: -len(escape)]
            # Docker drops comment and blank lines inside a continuation.
            while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")):
                i += 1
            if i == len(lines):
                break
            parts.append(lines[i].strip())
            i += 1
        body = " ".join(parts)
        match = INSTRUCTION.match(body)
        if match is None:
            raise ScanError(f"line {start + 1}: not a Dockerfile instruction: {body[:60]!r}")
        keyword, args = match.group(1).upper(), match.group(2) or ""
        for doc in HEREDOC.finditer(args):
            heredoc: list[str] = []
            while i < len(lines) and lines[i].strip() != doc.group(1):
                heredoc.append(lines[i])
                i += 1
            i += 1  # the terminator
            args += "\n" + "\n".join(heredoc)
        out.append(Instruction(start + 1, keyword, args))
    return out


def _substitute(value: str, args: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: args.get(m.group(1), m.group(0)), value)


def _split(arguments: str) -> list[str]:
    try:
        return shlex.split(arguments, comments=False, posix=True)
    except ValueError:  # unbalanced quotes: fall back to whitespace
        return arguments.split()


def _key_values(inst: Instruction) -> Iterator[tuple[str, str | None]]:
    """(name, value) pairs of ENV and ARG (legacy `ENV NAME value` included)."""
    words = _split(inst.arguments)
    if inst.keyword == "ENV" and words and "=" not in words[0]:
        yield words[0], " ".join(words[1:])
        return
    for word in words:
        name, sep, value = word.partition("=")
        yield name, value if sep else None


@dataclass(slots=True)
class _Stage:
    line: int
    image: str
    name: str | None
    user: str | None
    user_line: int | None


def _check_from(
    inst: Instruction, path: str, args: dict[str, str], stages: list[_Stage]
) -> Iterator[Finding]:
    words = [w for w in _split(inst.arguments) if not w.startswith("--")]
    if not words:
        raise ScanError(f"line {inst.line}: FROM without an image")
    image = _substitute(words[0], args)
    name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
    parent = next((s for s in stages if s.name and s.name == image), None)
    stages.append(
        _Stage(
            inst.line,
            image,
            name,
            parent.user if parent else None,
            parent.user_line if parent else None,
        )
    )
    if parent is not None or image.lower() == "scratch":
        return
    location = Location(path=path, line=inst.line)
    if "$" in image:
        yield rules.DOCKER_UNPINNED_BASE.finding(
            location,
            f"base image {image!r} comes from a build argument without a default",
            {"image": image},
            severity=Severity.LOW,
        )
        return
    pin = image_pin(image)
    if pin is Pin.FLOATING:
        yield rules.DOCKER_UNPINNED_BASE.finding(
            location, f"FROM {image} follows whatever the tag points to", {"image": image}
        )
    elif pin is Pin.TAG:
        yield rules.DOCKER_BASE_NO_DIGEST.finding(
            location, f"FROM {image} has a tag but no digest", {"image": image}
        )


def _check_secrets(inst: Instruction, path: str) -> Iterator[Finding]:
    for name, value in _key_values(inst):
        if value is None or not SECRET_NAME.search(name) or NOT_SECRET_NAME.search(name):
            continue
        if PLACEHOLDER.match(value.strip()):
            continue
        yield rules.DOCKER_SECRET.finding(
            Location(path=path, line=inst.line),
            f"{inst.keyword} {name} has a literal value ({len(value)} characters) that ends up "
            "in the image",
            {"name": name, "instruction": inst.keyword},
        )


def _check_add(inst: Instruction, path: str) -> Iterator[Finding]:
    words = _split(inst.arguments)
    if any(w.startswith("--checksum=") for w in words):
        return
    sources = [w for w in words if not w.startswith("--")][:-1]
    for src in sources:
        if re.match(r"^(?:https?|ftp)://", src, re.IGNORECASE):
            yield rules.DOCKER_ADD_URL.finding(
                Location(path=path, line=inst.line), f"ADD fetches {src}", {"url": src}
            )


def check_dockerfile(text: str, path: str) -> list[Finding]:
    """Every finding in one Dockerfile; ScanError when it has no FROM or is not a Dockerfile."""
    instructions = parse_dockerfile(text)
    findings: list[Finding] = []
    args: dict[str, str] = {}
    stages: list[_Stage] = []
    for inst in instructions:
        if inst.keyword == "ARG" and not stages:
            args.update((n, v) for n, v in _key_values(inst) if v is not None)
        if inst.keyword == "FROM":
            findings.extend(_check_from(inst, path, args, stages))
        elif not stages and inst.keyword not in ("ARG",):
            raise ScanError(f"line {inst.line}: {inst.keyword} before the first FROM")
        elif inst.keyword == "USER":
            stages[-1].user = (_split(inst.arguments) or [""])[0].split(":", 1)[0]
            stages[-1].user_line = inst.line
        elif inst.keyword == "RUN" and CURL_PIPE.search(inst.arguments):
            findings.append(
                rules.DOCKER_CURL_PIPE.finding(
                    Location(path=path, line=inst.line),
                    "RUN pipes a download into an interpreter",
                    {"command": inst.arguments[:200]},
                )
            )
        elif inst.keyword == "ADD":
            findings.extend(_check_add(inst, path))
        if inst.keyword in ("ENV", "ARG"):
            findings.extend(_check_secrets(inst, path))
    if not stages:
        raise ScanError("no FROM instruction: not a Dockerfile")
    final = stages[-1]
    if final.user is None or final.user in ROOT_USERS:
        line = final.user_line if final.user is not None else final.line
        message = (
            f"the final stage ends with USER {final.user}"
            if final.user is not None
            else "the final stage has no USER instruction, so it runs as root"
        )
        findings.append(
            rules.DOCKER_ROOT.finding(
                Location(path=path, line=line), message, {"user": final.user or "root"}
            )
        )
    return findings


def looks_like_dockerfile(name: str, head: str) -> bool:
    """By name (Dockerfile*, Containerfile*, *.dockerfile) or by a first instruction FROM/ARG."""
    lower = name.lower()
    if lower.endswith(NOT_DOCKERFILE_SUFFIXES):
        return False
    if lower.startswith(("dockerfile", "containerfile")) or lower.endswith(".dockerfile"):
        return True
    for raw in head.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            return line.upper().startswith("FROM ")
    return False
