"""GitHub Actions workflow risks of the kind that compromised Ultralytics in December 2024.

Workflows are read with the safe, line-aware YAML loader of the infra layer (aliases bounded), and
checked for: privileged triggers that check out and run pull-request code, attacker-controlled
contexts expanded into scripts, actions not pinned to a commit, caches that untrusted runs can
poison and releases restore, long-lived publishing tokens, and over-broad token permissions.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secmlops.errors import ScanError
from secmlops.findings import Finding, Location, Report, Severity
from secmlops.scan.deps import workflow_rules as rules
from secmlops.scan.infra.files import read_text, require_paths, scan_failure, walk_files
from secmlops.scan.infra.yaml_docs import YamlList, YamlMap, load_yaml_documents

# Events that run with the base repository's secrets and token but that anyone can cause.
UNTRUSTED_TRIGGERS = frozenset(
    {"pull_request_target", "workflow_run", "issue_comment", "issues", "discussion",
     "discussion_comment", "pull_request_review", "pull_request_review_comment", "fork"}
)  # fmt: skip
# Of those, the ones where checking out the pull request's head is the classic mistake.
CHECKOUT_TRIGGERS = frozenset({"pull_request_target", "workflow_run", "issue_comment"})

# Contexts an outsider controls (GitHub Security Lab's list, plus workflow_run's copies of them).
UNTRUSTED_CONTEXT = re.compile(
    r"github\.event\.(?:issue|pull_request|discussion)\.(?:title|body)"
    r"|github\.event\.(?:comment|review|review_comment)\.body"
    r"|github\.event\.pages(?:\[[^\]]*\]|\.\*)\.page_name"
    r"|github\.event\.(?:commits(?:\[[^\]]*\]|\.\*)|head_commit)\.(?:message|author\.(?:email|name)|committer\.(?:email|name))"
    r"|github\.event\.pull_request\.head\.(?:ref|label|repo\.default_branch)"
    r"|github\.head_ref"
    r"|github\.event\.workflow_run\.(?:head_branch|display_title|head_commit\.(?:message|author\.(?:email|name)|committer\.(?:email|name))"
    r"|pull_requests(?:\[[^\]]*\]|\.\*)\.head\.ref)"
    r"|toJSON\(\s*github\.event\s*\)",
    re.IGNORECASE,
)
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
# A ref or repository input that names the pull request's code rather than the base branch.
UNTRUSTED_REF = re.compile(
    r"pull_request\.head\.|head_ref|workflow_run\.head_(?:sha|branch|repository)|refs/pull/"
    r"|issue\.number|pull_request\.number",
    re.IGNORECASE,
)
UNTRUSTED_CHECKOUT_CMD = re.compile(
    r"\bgh\s+pr\s+checkout\b|\bgit\s+fetch\b[^\n]*\bpull/|\brefs/pull/", re.IGNORECASE
)
FULL_SHA = re.compile(r"[0-9a-f]{40}")
OFFICIAL_OWNERS = ("actions/", "github/")
PUBLISH_JOB_NAME = re.compile(r"release|publish|deploy|upload|pypi", re.IGNORECASE)
PUBLISH_CMD = re.compile(
    r"\btwine\s+upload\b|\b(?:uv|poetry|flit|hatch)\s+publish\b|\bnpm\s+publish\b|\bdocker\s+push\b"
    r"|\bgh\s+release\s+(?:create|upload)\b",
    re.IGNORECASE,
)
PUBLISH_ACTIONS = ("pypa/gh-action-pypi-publish", "softprops/action-gh-release")
TOKEN_CMD = re.compile(
    r"\btwine\s+upload\b[^\n]*(?:\s-p\s|--password)|\buv\s+publish\b[^\n]*--token"
    r"|\bpoetry\s+publish\b[^\n]*(?:--password|-p\s)",
    re.IGNORECASE,
)
TOKEN_ENV = re.compile(
    r"^(?:TWINE_PASSWORD|UV_PUBLISH_TOKEN|UV_PUBLISH_PASSWORD|POETRY_PYPI_TOKEN_\w+|FLIT_PASSWORD|HATCH_INDEX_AUTH)$"
)
SETUP_WITH_CACHE = re.compile(r"^(?:actions/setup-[\w-]+|astral-sh/setup-uv)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Workflow:
    """One parsed workflow file."""

    path: str
    data: YamlMap
    triggers: frozenset[str]

    def at(self, line: int) -> Location:
        return Location(path=self.path, line=line)


def _triggers(data: YamlMap) -> frozenset[str]:
    # YAML 1.1 reads the bare key `on` as the boolean true.
    on = data.get("on", data.get(True))
    if isinstance(on, str):
        return frozenset({on})
    if isinstance(on, list):
        return frozenset(str(e) for e in on)
    if isinstance(on, dict):
        return frozenset(str(k) for k in on)
    return frozenset()


def parse_workflow(text: str, path: str) -> Workflow | None:
    """The workflow in `text`, or None when the YAML is not a workflow (no jobs or triggers)."""
    docs = load_yaml_documents(text)
    if len(docs) != 1 or not isinstance(docs[0], YamlMap):
        return None
    data = docs[0]
    if not isinstance(data.get("jobs"), dict) or not ("on" in data or True in data):
        return None
    return Workflow(path, data, _triggers(data))


def _jobs(wf: Workflow) -> Iterator[tuple[str, YamlMap]]:
    jobs = wf.data["jobs"]
    for name, job in jobs.items():
        if isinstance(job, YamlMap):
            yield str(name), job


def _steps(job: YamlMap) -> list[YamlMap]:
    steps = job.get("steps")
    return [s for s in steps if isinstance(s, YamlMap)] if isinstance(steps, YamlList) else []


def _action(step: YamlMap) -> str:
    """The action a step uses, lower-cased without its ref ('' for run steps)."""
    uses = step.get("uses")
    return uses.split("@", 1)[0].strip().lower() if isinstance(uses, str) else ""


def _with(step: YamlMap) -> YamlMap:
    args = step.get("with")
    return args if isinstance(args, YamlMap) else YamlMap()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _check_unpinned(wf: Workflow, holder: YamlMap) -> Iterator[Finding]:
    uses = holder.get("uses")
    if not isinstance(uses, str):
        return
    ref = uses.strip()
    if ref.startswith("./"):
        return  # code of this repository at this commit
    if ref.startswith("docker://"):
        if "@sha256:" not in ref:
            yield rules.UNPINNED_ACTION.finding(
                wf.at(holder.line_of("uses")),
                f"container action {ref!r} is not pinned to an image digest",
                {"uses": ref},
            )
        return
    name, _, version = ref.partition("@")
    if FULL_SHA.fullmatch(version.lower()):
        return
    official = name.lower().startswith(OFFICIAL_OWNERS)
    yield rules.UNPINNED_ACTION.finding(
        wf.at(holder.line_of("uses")),
        f"{name} is used at {version or 'no ref'!r}, which its owner can move",
        {"uses": ref, "official": official},
        severity=Severity.LOW if official else None,
    )


def _expression_hits(text: str) -> Iterator[tuple[int, str]]:
    """(line offset, context) of each attacker-controlled context expanded in `text`."""
    for expr in EXPRESSION.finditer(text):
        for hit in UNTRUSTED_CONTEXT.finditer(expr.group(1)):
            yield text.count("\n", 0, expr.start()), hit.group(0)


def _check_injection(wf: Workflow, step: YamlMap) -> Iterator[Finding]:
    sources: list[tuple[YamlMap, str]] = [(step, "run")]
    if _action(step) == "actions/github-script":
        sources.append((_with(step), "script"))
    for holder, key in sources:
        script = _text(holder.get(key))
        base = holder.value_line(key)
        for offset, context in _expression_hits(script):
            yield rules.INJECTION.finding(
                wf.at(base + offset),
                f"${{{{ {context} }}}} is expanded into the {key}: script; an outsider chooses "
                "its value",
                {"context": context, "key": key},
            )


def _is_untrusted_checkout(step: YamlMap) -> bool:
    if _action(step) == "actions/checkout":
        args = _with(step)
        return any(UNTRUSTED_REF.search(_text(args.get(k))) for k in ("ref", "repository"))
    return bool(UNTRUSTED_CHECKOUT_CMD.search(_text(step.get("run"))))


def _runs_code(step: YamlMap) -> bool:
    return "run" in step or _text(step.get("uses")).startswith("./")


def _check_untrusted_checkout(wf: Workflow, job_name: str, job: YamlMap) -> Iterator[Finding]:
    privileged = wf.triggers & CHECKOUT_TRIGGERS
    if not privileged:
        return
    steps = _steps(job)
    for index, step in enumerate(steps):
        if not _is_untrusted_checkout(step):
            continue
        later = [s for s in steps[index + 1 :] if _runs_code(s)]
        trigger = ", ".join(sorted(privileged))
        message = f"job {job_name!r} ({trigger}) checks out the pull request's code" + (
            f" and then runs code (line {later[0].line})"
            if later
            else "; nothing runs it yet, but any later build step will"
        )
        yield rules.PRT_CHECKOUT.finding(
            wf.at(step.line),
            message,
            {"job": job_name, "triggers": sorted(privileged), "runs_after": bool(later)},
            severity=None if later else Severity.HIGH,
        )


def _cache_step(step: YamlMap) -> bool:
    """Whether the step restores (and usually saves) a GitHub Actions cache."""
    action = _action(step)
    if action in ("actions/cache", "actions/cache/restore", "actions/cache/save"):
        return True
    if SETUP_WITH_CACHE.match(action):
        args = _with(step)
        for key in ("cache", "enable-cache"):
            value = args.get(key)
            if value not in (None, False, "", "false"):
                return True
    return False


def _is_publish_job(name: str, job: YamlMap) -> bool:
    if PUBLISH_JOB_NAME.search(name) or PUBLISH_JOB_NAME.search(_text(job.get("name"))):
        return True
    return any(
        _action(s).startswith(PUBLISH_ACTIONS) or PUBLISH_CMD.search(_text(s.get("run")))
        for s in _steps(job)
    )


def _check_caches(wf: Workflow, job_name: str, job: YamlMap) -> Iterator[Finding]:
    untrusted = wf.triggers & UNTRUSTED_TRIGGERS
    publish = _is_publish_job(job_name, job)
    for step in _steps(job):
        if not _cache_step(step):
            continue
        location = wf.at(step.line_of("uses"))
        if untrusted and _action(step) != "actions/cache/restore":
            yield rules.CACHE_POISONING.finding(
                location,
                f"job {job_name!r} uses {_action(step)} with a cache while the workflow runs on "
                f"{', '.join(sorted(untrusted))}",
                {"job": job_name, "triggers": sorted(untrusted), "action": _action(step)},
            )
        if publish and _action(step) != "actions/cache/save":
            yield rules.RELEASE_CACHE.finding(
                location,
                f"release/publish job {job_name!r} restores a cache through {_action(step)}",
                {"job": job_name, "action": _action(step)},
            )


def _env_names(*holders: YamlMap) -> Iterator[tuple[YamlMap, str]]:
    for holder in holders:
        env = holder.get("env")
        if isinstance(env, YamlMap):
            for name in env:
                yield env, str(name)


def _has_id_token(perms: Any) -> bool:
    return isinstance(perms, dict) and perms.get("id-token") == "write"


def _check_publish_token(wf: Workflow, job_name: str, job: YamlMap) -> Iterator[Finding]:
    trusted = _has_id_token(job.get("permissions", wf.data.get("permissions")))
    note = (
        " although the job already has id-token: write for Trusted Publishing"
        if trusted
        else "; PyPI Trusted Publishing needs no stored token"
    )
    for step in _steps(job):
        args = _with(step)
        if _action(step) == "pypa/gh-action-pypi-publish" and args.get("password"):
            yield rules.PUBLISH_TOKEN.finding(
                wf.at(args.line_of("password")),
                f"job {job_name!r} passes a password/API token to pypa/gh-action-pypi-publish"
                + note,
                {"job": job_name, "trusted_publishing": trusted},
            )
            continue
        script = _text(step.get("run"))
        if not PUBLISH_CMD.search(script):
            continue
        names = [(env, n) for env, n in _env_names(wf.data, job, step) if TOKEN_ENV.match(n)]
        if names or TOKEN_CMD.search(script):
            line = names[-1][0].line_of(names[-1][1]) if names else step.line_of("run")
            yield rules.PUBLISH_TOKEN.finding(
                wf.at(line),
                f"job {job_name!r} publishes with a stored token"
                + (f" ({names[-1][1]})" if names else "")
                + note,
                {"job": job_name, "trusted_publishing": trusted},
            )


def _writes_contents(perms: Any) -> bool:
    if isinstance(perms, str):
        return perms.strip() == "write-all"
    return isinstance(perms, dict) and perms.get("contents") == "write"


def _check_permissions(wf: Workflow) -> Iterator[Finding]:
    top = wf.data.get("permissions")
    holders: list[tuple[str, YamlMap]] = [("workflow", wf.data), *_jobs(wf)]
    for name, holder in holders:
        perms = holder.get("permissions")
        if isinstance(perms, str) and perms.strip() == "write-all":
            yield rules.WRITE_ALL.finding(
                wf.at(holder.line_of("permissions")),
                f"{'the workflow' if name == 'workflow' else f'job {name!r}'} sets "
                "permissions: write-all",
                {"scope": name},
            )
    privileged = wf.triggers & {"pull_request_target", "issue_comment", "workflow_run"}
    uncovered = [name for name, job in _jobs(wf) if "permissions" not in job]
    if top is None and uncovered:
        yield rules.NO_PERMISSIONS.finding(
            wf.at(1),
            f"no top-level permissions block and jobs {', '.join(uncovered)} set none",
            {"jobs": uncovered},
            severity=Severity.MEDIUM if privileged else None,
        )
    if not privileged:
        return
    for name, job in _jobs(wf):
        perms = job.get("permissions", top)
        if _writes_contents(perms):
            owner = job if "permissions" in job else wf.data
            yield rules.PRT_WRITE.finding(
                wf.at(owner.line_of("permissions")),
                f"job {name!r} runs on {', '.join(sorted(privileged))} with a token that can "
                "write repository contents",
                {"job": name, "triggers": sorted(privileged)},
            )


def check_workflow(wf: Workflow) -> list[Finding]:
    """Every finding in one parsed workflow."""
    findings = list(_check_permissions(wf))
    for job_name, job in _jobs(wf):
        findings.extend(_check_unpinned(wf, job))  # reusable workflows
        findings.extend(_check_untrusted_checkout(wf, job_name, job))
        findings.extend(_check_caches(wf, job_name, job))
        findings.extend(_check_publish_token(wf, job_name, job))
        for step in _steps(job):
            findings.extend(_check_unpinned(wf, step))
            findings.extend(_check_injection(wf, step))
    return findings


def _workflow_files(paths: Sequence[Path]) -> Iterator[Path]:
    for target in paths:
        if target.is_dir() and not target.is_symlink():
            for path in walk_files([target]):
                if (
                    path.suffix in (".yml", ".yaml")
                    and path.parent.name == "workflows"
                    and path.parent.parent.name == ".github"
                ):
                    yield path
        else:
            yield target  # named explicitly: checked whatever it is called


def scan_workflows(
    paths: Sequence[Path], progress: Callable[[str, int, int], None] | None = None
) -> Report:
    """Check the GitHub Actions workflows under `paths` (.github/workflows/*.yml) or given files."""
    report = Report(kind="workflows", rules=dict(rules.ALL))
    started = time.perf_counter()
    require_paths(paths)
    files = list(_workflow_files(paths))
    for done, path in enumerate(files, start=1):
        display = str(path)
        try:
            text = read_text(path)
            report.bytes_scanned += len(text)
            wf = parse_workflow(text, display)
        except ScanError as exc:
            report.errors.append(scan_failure(Location(path=display), exc))
        else:
            if wf is None:
                report.files_skipped += 1
            else:
                report.files_scanned += 1
                report.extend(check_workflow(wf))
        if progress is not None:
            progress(display, done, len(files))
    _raise_release_caches(report)
    report.seconds = time.perf_counter() - started
    return report


def _raise_release_caches(report: Report) -> None:
    """A release that restores caches is worse when a scanned workflow lets outsiders write them."""
    poisoned = [f for f in report.findings if f.rule_id == rules.CACHE_POISONING.rule_id]
    if not poisoned:
        return
    source = poisoned[0].location.display()
    report.findings = [
        rules.RELEASE_CACHE.finding(
            f.location,
            f"{f.message}; untrusted runs can write that cache ({source})",
            dict(f.evidence),
            severity=Severity.HIGH,
        )
        if f.rule_id == rules.RELEASE_CACHE.rule_id
        else f
        for f in report.findings
    ]
