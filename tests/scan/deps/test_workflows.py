"""GitHub Actions workflow rules: each catches its attack and passes the benign look-alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from secmlops.findings import Report, Severity
from secmlops.scan.deps.workflow_rules import ALL
from secmlops.scan.deps.workflows import scan_workflows
from tests.scan.infra.scanning import hits, scan_text

SHA = "11bd71901bbe5b1630ceea73d27597364c9af683"


def scan(tmp_path: Path, body: str, name: str = "ci.yml") -> Report:
    return scan_text(scan_workflows, tmp_path, f".github/workflows/{name}", body)


# The Ultralytics shape (December 2024): pull_request_target, checkout of the PR head, a build.
ULTRALYTICS = f"""\
name: Format
on:
  pull_request_target:
    branches: [main]
permissions:
  contents: write
jobs:
  format:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@{SHA}
        with:
          ref: ${{{{ github.head_ref || github.ref }}}}
          repository: ${{{{ github.event.pull_request.head.repo.full_name }}}}
      - uses: actions/setup-python@{SHA}
        with:
          python-version: "3.11"
          cache: pip
      - name: Format
        run: |
          git pull origin ${{{{ github.head_ref }}}}
          pip install ruff && ruff format .
"""


def test_ultralytics_workflow_is_caught_on_every_count(tmp_path: Path) -> None:
    report = scan(tmp_path, ULTRALYTICS)
    rules = {f.rule_id for f in report.findings}
    assert {
        "WORKFLOW-PRT-CHECKOUT",
        "WORKFLOW-INJECTION",
        "WORKFLOW-CACHE-POISONING",
        "WORKFLOW-PRT-WRITE",
    } <= rules
    checkout = hits(report, "WORKFLOW-PRT-CHECKOUT")[0]
    assert checkout.severity is Severity.CRITICAL
    assert checkout.location.line == 11
    injection = hits(report, "WORKFLOW-INJECTION")[0]
    assert injection.evidence["context"] == "github.head_ref"
    assert injection.location.line == 21  # the script line, not the key


def test_pull_request_trigger_with_same_steps_is_not_privileged(tmp_path: Path) -> None:
    report = scan(tmp_path, ULTRALYTICS.replace("pull_request_target", "pull_request"))
    assert not hits(report, "WORKFLOW-PRT-CHECKOUT")
    assert not hits(report, "WORKFLOW-CACHE-POISONING")
    assert not hits(report, "WORKFLOW-PRT-WRITE")


@pytest.mark.parametrize(
    "step",
    [
        "      - uses: actions/checkout@v4\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n",
        "      - uses: actions/checkout@v4\n        with:\n          ref: refs/pull/${{ github.event.pull_request.number }}/merge\n",
        "      - run: gh pr checkout ${{ github.event.issue.number }}\n",
        "      - run: git fetch origin pull/7/head:pr && git checkout pr\n",
    ],
)
@pytest.mark.parametrize("trigger", ["pull_request_target", "workflow_run", "issue_comment"])
def test_untrusted_checkout_then_run_is_critical(tmp_path: Path, step: str, trigger: str) -> None:
    body = f"on: {trigger}\npermissions: {{}}\njobs:\n  t:\n    runs-on: x\n    steps:\n{step}      - run: make test\n"
    found = hits(scan(tmp_path, body), "WORKFLOW-PRT-CHECKOUT")
    assert found and found[0].severity is Severity.CRITICAL


def test_untrusted_checkout_without_execution_is_high(tmp_path: Path) -> None:
    body = """\
    on: pull_request_target
    permissions: {}
    jobs:
      label:
        runs-on: x
        steps:
          - uses: actions/checkout@v4
            with:
              ref: ${{ github.event.pull_request.head.sha }}
          - uses: actions/labeler@v5
    """
    found = hits(scan(tmp_path, body), "WORKFLOW-PRT-CHECKOUT")
    assert [f.severity for f in found] == [Severity.HIGH]


def test_base_branch_checkout_in_pull_request_target_is_fine(tmp_path: Path) -> None:
    body = """\
    on: pull_request_target
    permissions: {}
    jobs:
      label:
        runs-on: x
        steps:
          - uses: actions/checkout@v4
          - run: ./scripts/label.sh "$NUMBER"
            env:
              NUMBER: ${{ github.event.pull_request.number }}
    """
    assert not hits(scan(tmp_path, body), "WORKFLOW-PRT-CHECKOUT")


@pytest.mark.parametrize(
    "context",
    [
        "github.event.issue.title",
        "github.event.pull_request.body",
        "github.event.comment.body",
        "github.event.review.body",
        "github.event.pull_request.head.ref",
        "github.event.pull_request.head.label",
        "github.head_ref",
        "github.event.head_commit.message",
        "github.event.commits[0].message",
        "github.event.pages[0].page_name",
        "github.event.workflow_run.head_branch",
        "github.event.discussion.title",
    ],
)
def test_untrusted_context_in_run_is_injection(tmp_path: Path, context: str) -> None:
    body = f'on: push\npermissions: {{}}\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo "${{{{ {context} }}}}"\n'
    found = hits(scan(tmp_path, body), "WORKFLOW-INJECTION")
    assert len(found) == 1
    assert found[0].location.line == 7


def test_untrusted_context_in_github_script_is_injection(tmp_path: Path) -> None:
    body = """\
    on: issues
    permissions: {}
    jobs:
      a:
        runs-on: x
        steps:
          - uses: actions/github-script@v7
            with:
              script: |
                const t = "${{ github.event.issue.title }}";
    """
    found = hits(scan(tmp_path, body), "WORKFLOW-INJECTION")
    assert found and found[0].evidence["key"] == "script"
    assert found[0].location.line == 10


def test_trusted_contexts_and_env_indirection_are_not_injection(tmp_path: Path) -> None:
    body = """\
    on: pull_request
    permissions: {}
    jobs:
      a:
        runs-on: x
        steps:
          - run: |
              echo "${{ github.event.pull_request.head.sha }} ${{ github.sha }} ${{ github.ref_name }}"
              echo "$TITLE"
            env:
              TITLE: ${{ github.event.pull_request.title }}
          - name: ${{ github.event.pull_request.title }}
            if: contains(github.event.pull_request.body, 'skip')
            run: echo ok
    """
    assert not hits(scan(tmp_path, body), "WORKFLOW-INJECTION")


def test_unpinned_actions_by_owner_and_kind(tmp_path: Path) -> None:
    body = f"""\
    on: push
    permissions: {{}}
    jobs:
      reuse:
        uses: org/shared/.github/workflows/build.yml@main
      a:
        runs-on: x
        steps:
          - uses: actions/checkout@v4
          - uses: tj-actions/changed-files@v45
          - uses: docker://alpine:3.20
          - uses: pypa/gh-action-pypi-publish@{SHA}
          - uses: docker://alpine@sha256:{"a" * 64}
          - uses: ./.github/actions/local
    """
    found = {
        f.evidence["uses"]: f.severity
        for f in hits(scan(tmp_path, body), "WORKFLOW-UNPINNED-ACTION")
    }
    assert found == {
        "org/shared/.github/workflows/build.yml@main": Severity.MEDIUM,
        "actions/checkout@v4": Severity.LOW,
        "tj-actions/changed-files@v45": Severity.MEDIUM,
        "docker://alpine:3.20": Severity.MEDIUM,
    }


def test_short_sha_is_not_a_pin(tmp_path: Path) -> None:
    body = "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: some/action@11bd719\n"
    assert hits(scan(tmp_path, body), "WORKFLOW-UNPINNED-ACTION")


RELEASE = f"""\
on:
  push:
    tags: ["v*"]
permissions:
  contents: read
jobs:
  publish:
    runs-on: x
    permissions:
      id-token: write
    steps:
      - uses: actions/checkout@{SHA}
      - uses: actions/setup-python@{SHA}
        with:
          cache: pip
      - run: python -m build
      - uses: pypa/gh-action-pypi-publish@{SHA}
        with:
          password: ${{{{ secrets.PYPI_API_TOKEN }}}}
"""


def test_release_cache_and_publish_token(tmp_path: Path) -> None:
    report = scan(tmp_path, RELEASE, "release.yml")
    cache = hits(report, "WORKFLOW-RELEASE-CACHE")
    assert [f.severity for f in cache] == [Severity.MEDIUM]
    token = hits(report, "WORKFLOW-PUBLISH-TOKEN")
    assert len(token) == 1 and token[0].evidence["trusted_publishing"] is True
    assert token[0].location.line == 19


def test_release_cache_is_high_when_an_untrusted_workflow_writes_caches(tmp_path: Path) -> None:
    scan(tmp_path, ULTRALYTICS, "format.yml")
    report = scan(tmp_path, RELEASE, "release.yml")
    cache = hits(report, "WORKFLOW-RELEASE-CACHE")
    assert [f.severity for f in cache] == [Severity.HIGH]
    assert "format.yml" in cache[0].message


def test_trusted_publishing_release_without_cache_is_clean(tmp_path: Path) -> None:
    clean = RELEASE.replace("        with:\n          cache: pip\n", "").replace(
        "        with:\n          password: ${{ secrets.PYPI_API_TOKEN }}\n", ""
    )
    report = scan(tmp_path, clean, "release.yml")
    assert not report.errors
    assert report.findings == []


@pytest.mark.parametrize(
    ("env", "command"),
    [
        ("TWINE_PASSWORD: ${{ secrets.PYPI_API_TOKEN }}", "twine upload dist/*"),
        ("UV_PUBLISH_TOKEN: ${{ secrets.PYPI }}", "uv publish"),
        ("X: y", "twine upload -u __token__ --password ${{ secrets.PYPI_API_TOKEN }} dist/*"),
    ],
)
def test_token_publishing_in_run_steps(tmp_path: Path, env: str, command: str) -> None:
    body = f"on: release\npermissions: {{}}\njobs:\n  pypi:\n    runs-on: x\n    env:\n      {env}\n    steps:\n      - run: {command}\n"
    assert hits(scan(tmp_path, body), "WORKFLOW-PUBLISH-TOKEN")


def test_twine_check_with_a_token_in_env_is_not_publishing(tmp_path: Path) -> None:
    body = "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: x\n    env:\n      TWINE_PASSWORD: x\n    steps:\n      - run: twine check dist/*\n"
    assert not hits(scan(tmp_path, body), "WORKFLOW-PUBLISH-TOKEN")


def test_permissions_rules(tmp_path: Path) -> None:
    body = """\
    on: [push, pull_request_target]
    jobs:
      a:
        runs-on: x
        permissions: write-all
        steps: [{run: echo}]
      b:
        runs-on: x
        steps: [{run: echo}]
    """
    report = scan(tmp_path, body)
    assert [f.evidence["scope"] for f in hits(report, "WORKFLOW-PERMISSIONS-WRITE-ALL")] == ["a"]
    missing = hits(report, "WORKFLOW-PERMISSIONS-MISSING")
    assert missing[0].evidence["jobs"] == ["b"] and missing[0].severity is Severity.MEDIUM
    assert [f.evidence["job"] for f in hits(report, "WORKFLOW-PRT-WRITE")] == ["a"]


def test_least_privilege_workflow_has_no_permission_findings(tmp_path: Path) -> None:
    body = """\
    on: pull_request_target
    permissions:
      contents: read
      pull-requests: write
    jobs:
      a:
        runs-on: x
        steps: [{run: echo}]
    """
    report = scan(tmp_path, body)
    assert not [f for f in report.findings if f.rule_id.startswith("WORKFLOW-P")]


def test_every_rule_has_a_test_that_fires_it(tmp_path: Path) -> None:
    scan(tmp_path, ULTRALYTICS, "format.yml")
    scan(tmp_path, RELEASE, "release.yml")
    body = "on: push\njobs:\n  a:\n    permissions: write-all\n    steps: [{uses: a/b@v1}]\n  b:\n    steps: []\n"
    report = scan(tmp_path, body, "other.yml")
    assert {f.rule_id for f in report.findings} == set(ALL)
