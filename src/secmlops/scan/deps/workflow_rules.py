"""Stable rule ids of the CI workflow check (documented in docs/rules.md; a test keeps them in sync)."""

from __future__ import annotations

from secmlops.findings import Rule, Severity

_SUPPLY = ("NIST-AI-RMF:GOVERN-6.1", "ISO42001:A.10.3", "OWASP-ML:ML06")

PRT_CHECKOUT = Rule(
    "WORKFLOW-PRT-CHECKOUT",
    Severity.CRITICAL,
    "Privileged workflow checks out and runs untrusted pull-request code",
    "pull_request_target and workflow_run jobs run with the base repository's secrets, a "
    "writable token and its cache scope; checking out the pull request's head and then running "
    "anything from it (build, tests, scripts, local actions) hands all of that to any outsider "
    "who opens a pull request (poisoned pipeline execution).",
    "Use the pull_request trigger for building untrusted code; if a privileged follow-up is "
    "needed, pass results as artifacts to a workflow_run job that never executes them.",
    (*_SUPPLY, "OWASP-CICD:CICD-SEC-4", "CWE-829"),
)
INJECTION = Rule(
    "WORKFLOW-INJECTION",
    Severity.HIGH,
    "Attacker-controlled context expanded inside a script",
    "${{ }} expressions are pasted into the script text before the shell runs it, so a branch "
    "name, title, body or commit message chosen by an outsider becomes shell or JavaScript code "
    "(the Ultralytics compromise used a branch name).",
    "Pass the value through an environment variable (env: TITLE: ${{ github.event.issue.title "
    '}}) and use it quoted as "$TITLE" in the script.',
    (*_SUPPLY, "OWASP-CICD:CICD-SEC-4", "CWE-78", "CWE-94"),
)
UNPINNED_ACTION = Rule(
    "WORKFLOW-UNPINNED-ACTION",
    Severity.MEDIUM,
    "Action not pinned to a full commit SHA",
    "Tags and branches of an action can be moved by whoever controls (or compromises) its "
    "repository, as happened to tj-actions/changed-files in 2025; only a 40-character commit "
    "SHA names immutable code. Official actions/* are lower risk but not immune.",
    "Pin to the full commit SHA with the version in a comment (uses: owner/repo@<sha> # v4.1.1) "
    "and let Dependabot or Renovate update the pins.",
    (*_SUPPLY, "OWASP-CICD:CICD-SEC-3", "CWE-829"),
)
CACHE_POISONING = Rule(
    "WORKFLOW-CACHE-POISONING",
    Severity.HIGH,
    "Cache written by a workflow that untrusted events trigger",
    "Jobs triggered by pull_request_target, workflow_run, issue_comment and similar events run in "
    "the default branch's cache scope; code an outsider controls can plant cache entries that "
    "release and publish jobs later restore (the Ultralytics 8.3.41 release shipped a miner "
    "this way).",
    "Do not use caches in workflows that untrusted events trigger, and never restore caches in "
    "jobs that build or publish releases.",
    (*_SUPPLY, "OWASP-CICD:CICD-SEC-9", "CWE-345"),
)
RELEASE_CACHE = Rule(
    "WORKFLOW-RELEASE-CACHE",
    Severity.MEDIUM,
    "Release or publish job restores a cache",
    "Caches are shared by every workflow of the branch scope; a release built from restored "
    "cache content inherits anything another (possibly untrusted) job placed there.",
    "Build release artifacts from a clean environment without actions/cache or setup-* cache: "
    "options; cache only in test jobs.",
    (*_SUPPLY, "OWASP-CICD:CICD-SEC-9", "CWE-345"),
)
PUBLISH_TOKEN = Rule(
    "WORKFLOW-PUBLISH-TOKEN",
    Severity.MEDIUM,
    "Package published with a long-lived token",
    "A PyPI API token stored as a secret lives until revoked and works from anywhere once "
    "stolen (the Ultralytics attacker reused one for 8.3.45/8.3.46). PyPI Trusted Publishing "
    "issues short-lived, workflow-bound credentials instead.",
    "Configure a Trusted Publisher on PyPI, give the publish job permissions: id-token: write, "
    "drop the password/TWINE_PASSWORD input and revoke the token.",
    (*_SUPPLY, "OWASP-CICD:CICD-SEC-6", "CWE-798"),
)
WRITE_ALL = Rule(
    "WORKFLOW-PERMISSIONS-WRITE-ALL",
    Severity.MEDIUM,
    "Workflow token has write access to everything",
    "permissions: write-all gives every step a token that can push code, create releases and "
    "change packages; one injected step then owns the repository.",
    "Declare the least permissions each job needs, e.g. permissions: contents: read at the top "
    "and write scopes only on the job that needs them.",
    (*_SUPPLY, "OWASP-CICD:CICD-SEC-5", "CWE-250"),
)
NO_PERMISSIONS = Rule(
    "WORKFLOW-PERMISSIONS-MISSING",
    Severity.LOW,
    "No permissions block: the token gets the repository default",
    "Without a permissions block the GITHUB_TOKEN gets the repository or organisation default, "
    "which is read-write on repositories created before February 2023.",
    "Add a top-level permissions block (permissions: contents: read) and widen it per job.",
    (*_SUPPLY, "OWASP-CICD:CICD-SEC-5", "CWE-250"),
)
PRT_WRITE = Rule(
    "WORKFLOW-PRT-WRITE",
    Severity.HIGH,
    "Write token in a workflow that outsiders trigger",
    "pull_request_target and issue_comment workflows run on events anyone can cause; a writable "
    "contents (or write-all) token there turns any injection or untrusted checkout into a push "
    "to the repository.",
    "Give these workflows read-only permissions; move writes to a separate, maintainer-triggered "
    "workflow.",
    (*_SUPPLY, "OWASP-CICD:CICD-SEC-5", "CWE-250"),
)

ALL: dict[str, Rule] = {
    r.rule_id: r
    for r in (
        PRT_CHECKOUT,
        INJECTION,
        UNPINNED_ACTION,
        CACHE_POISONING,
        RELEASE_CACHE,
        PUBLISH_TOKEN,
        WRITE_ALL,
        NO_PERMISSIONS,
        PRT_WRITE,
    )
}
