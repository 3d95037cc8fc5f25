#!/usr/bin/env python3
"""Side-by-side benchmark of CI-workflow and infrastructure-as-code checks: secmlops against
zizmor (GitHub Actions) and checkov (GitHub Actions, Kubernetes, Dockerfile, Terraform), on the
same labelled corpus in one run.

Usage::

    .venv/bin/python benchmarks/workflows_infra.py            # installs peers on first run
    .venv/bin/python benchmarks/workflows_infra.py --copies 200 --json out.json

Peers are installed into ``benchmarks/.venv-peers-workflows_infra`` (gitignored), never into the
project's environment.

Detection
=========
Every case is one small file: a clean *baseline* of its kind with exactly one change. A
*planted* case adds one risk (an Ultralytics-style checkout, a script injection, a privileged
GPU pod, a public bucket, ...); a *look-alike* case adds something that looks like a risk and is
not (the env-variable form of an untrusted value, a SHA-pinned action, a `GPG_KEY` in ENV, a
staging bucket written by a training role, ...). Each tool scans the whole corpus once; its
verdict on a case is the set of rule ids it reports for that file *minus the rule ids it reports
for the baseline of the same kind* (or, for a planted case with a look-alike twin, minus those
of the twin: the prod-bucket training role is compared with the staging-bucket one) (so checkov's many hygiene checks that fire on every
manifest, such as liveness probes, do not count for or against it). A planted case is caught
when that difference is non-empty; a look-alike is a false positive when it is non-empty.
Findings of every severity count, for every tool.

Speed
=====
Every tool scans a folder of ``--copies`` copies of every case of its kind in one process;
wall clock including start-up, files per second.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / ".venv-peers-workflows_infra"
PEER_PACKAGES = ["zizmor", "checkov"]
SHA = "11bd71901bbe5b1630ceea73d27597364c9af683"
DIGEST = "sha256:" + "ab" * 32


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # workflow, kubernetes, dockerfile, terraform
    planted: bool
    text: str
    against: str = "baseline"  # the case whose rule ids are subtracted (a look-alike twin)


# ---------------------------------------------------------------- workflows
WF_BASE = f"""\
name: ci
on: push
permissions: {{}}
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@{SHA} # v4.2.2
        with:
          persist-credentials: false
      - run: make test
"""


def wf(name: str, planted: bool, text: str) -> Case:
    return Case(name, "workflow", planted, text)


def wf_steps(trigger: str, steps: str, perms: str = "permissions: {}", job: str = "test") -> str:
    return (
        f"name: ci\non: {trigger}\n{perms}\njobs:\n  {job}:\n    runs-on: ubuntu-latest\n"
        f"    steps:\n{steps}"
    )


CHECKOUT = f"      - uses: actions/checkout@{SHA} # v4.2.2\n        with:\n          persist-credentials: false\n"
PR_HEAD = (
    f"      - uses: actions/checkout@{SHA} # v4.2.2\n        with:\n"
    "          persist-credentials: false\n          ref: ${{ github.event.pull_request.head.sha }}\n"
)
WORKFLOWS = [
    wf("baseline", False, WF_BASE),
    wf(
        "inject-issue-title",
        True,
        wf_steps("issues", '      - run: echo "${{ github.event.issue.title }}"\n'),
    ),
    wf(
        "inject-head-ref",
        True,
        wf_steps(
            "pull_request", CHECKOUT + "      - run: git push origin ${{ github.head_ref }}\n"
        ),
    ),
    wf(
        "inject-comment-github-script",
        True,
        wf_steps(
            "issue_comment",
            f"      - uses: actions/github-script@{SHA} # v7\n        with:\n"
            "          script: |\n            console.log(`${{ github.event.comment.body }}`)\n",
        ),
    ),
    wf(
        "inject-commit-message",
        True,
        wf_steps("push", '      - run: echo "${{ github.event.head_commit.message }}"\n'),
    ),
    wf(
        "prt-checkout-run",
        True,
        wf_steps("pull_request_target", PR_HEAD + "      - run: make test\n"),
    ),
    wf(
        "workflow-run-checkout",
        True,
        wf_steps(
            "\n  workflow_run:\n    workflows: [ci]\n    types: [completed]",
            f"      - uses: actions/checkout@{SHA} # v4.2.2\n        with:\n          persist-credentials: false\n"
            "          ref: ${{ github.event.workflow_run.head_sha }}\n      - run: ./build.sh\n",
        ),
    ),
    wf(
        "comment-gh-pr-checkout",
        True,
        wf_steps(
            "issue_comment",
            "      - run: gh pr checkout ${{ github.event.issue.number }} && make\n",
        ),
    ),
    wf("unpinned-third-party", True, WF_BASE + "      - uses: tj-actions/changed-files@v45\n"),
    wf("unpinned-docker", True, WF_BASE + "      - uses: docker://alpine:3.20\n"),
    wf(
        "prt-cache",
        True,
        wf_steps(
            "pull_request_target",
            CHECKOUT
            + f"      - uses: actions/setup-python@{SHA} # v5\n        with:\n          cache: pip\n"
            "      - run: echo labelled\n",
        ),
    ),
    wf(
        "release-cache",
        True,
        wf_steps(
            "\n  push:\n    tags: ['v*']",
            CHECKOUT
            + f"      - uses: actions/setup-python@{SHA} # v5\n        with:\n          cache: pip\n"
            f"      - run: python -m build\n      - uses: pypa/gh-action-pypi-publish@{SHA} # v1.12\n",
            "permissions:\n  id-token: write",
            "publish",
        ),
    ),
    wf(
        "publish-password",
        True,
        wf_steps(
            "\n  push:\n    tags: ['v*']",
            CHECKOUT
            + f"      - run: python -m build\n      - uses: pypa/gh-action-pypi-publish@{SHA} # v1.12\n"
            "        with:\n          password: ${{ secrets.PYPI_API_TOKEN }}\n",
            job="publish",
        ),
    ),
    wf(
        "twine-password",
        True,
        wf_steps(
            "\n  push:\n    tags: ['v*']",
            CHECKOUT + "      - run: twine upload dist/*\n        env:\n"
            "          TWINE_USERNAME: __token__\n          TWINE_PASSWORD: ${{ secrets.PYPI_API_TOKEN }}\n",
            job="publish",
        ),
    ),
    wf("write-all", True, WF_BASE.replace("permissions: {}", "permissions: write-all")),
    wf("no-permissions", True, WF_BASE.replace("permissions: {}\n", "")),
    wf(
        "prt-contents-write",
        True,
        wf_steps(
            "pull_request_target",
            CHECKOUT + "      - run: echo hi\n",
            "permissions:\n  contents: write",
        ),
    ),
    wf(
        "ultralytics",
        True,
        wf_steps(
            "pull_request_target",
            f"      - uses: actions/checkout@v4\n        with:\n          ref: ${{{{ github.head_ref }}}}\n"
            "          repository: ${{ github.event.pull_request.head.repo.full_name }}\n"
            f"      - uses: actions/setup-python@{SHA} # v5\n        with:\n          cache: pip\n"
            "      - run: |\n          git pull origin ${{ github.head_ref }}\n          make format\n",
            "permissions:\n  contents: write",
        ),
    ),
    # look-alikes
    wf(
        "env-indirection",
        False,
        wf_steps(
            "issues",
            '      - run: echo "$TITLE"\n        env:\n          TITLE: ${{ github.event.issue.title }}\n',
        ),
    ),
    wf(
        "pull-request-head-checkout",
        False,
        wf_steps("pull_request", PR_HEAD + "      - run: make test\n"),
    ),
    wf(
        "prt-base-checkout-label",
        False,
        wf_steps(
            "pull_request_target",
            CHECKOUT + '      - run: ./label.sh "$N"\n        env:\n'
            "          N: ${{ github.event.pull_request.number }}\n",
        ),
    ),
    wf(
        "pinned-third-party",
        False,
        WF_BASE + f"      - uses: tj-actions/changed-files@{SHA} # v45\n",
    ),
    wf("docker-digest", False, WF_BASE + f"      - uses: docker://alpine@{DIGEST}\n"),
    wf(
        "trusted-publishing",
        False,
        wf_steps(
            "\n  push:\n    tags: ['v*']",
            CHECKOUT
            + f"      - run: python -m build\n      - uses: pypa/gh-action-pypi-publish@{SHA} # v1.12\n",
            "permissions:\n  id-token: write",
            "publish",
        ),
    ),
    wf("twine-check", False, WF_BASE + "      - run: twine check dist/*\n"),
    wf(
        "trusted-contexts",
        False,
        WF_BASE
        + '      - run: echo "${{ github.sha }} ${{ github.ref_name }} ${{ github.event.pull_request.head.sha }}"\n',
    ),
    wf(
        "push-test-cache",
        False,
        WF_BASE.replace(
            "      - run: make test\n",
            f"      - uses: actions/setup-python@{SHA} # v5\n        with:\n          cache: pip\n      - run: make test\n",
        ),
    ),
]

# ---------------------------------------------------------------- kubernetes
K8S_BASE = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: serve
  namespace: ml
spec:
  selector: {{matchLabels: {{app: serve}}}}
  template:
    metadata: {{labels: {{app: serve}}}}
    spec:
      automountServiceAccountToken: false
      securityContext: {{runAsNonRoot: true, runAsUser: 10001}}
      containers:
        - name: server
          image: ghcr.io/acme/serve:1.4.2@{DIGEST}
          securityContext: {{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}}
          resources:
            limits: {{cpu: "4", memory: 16Gi, nvidia.com/gpu: 1}}
            requests: {{cpu: "4", memory: 16Gi}}
"""


def k8s(name: str, planted: bool, old: str, new: str) -> Case:
    assert old in K8S_BASE, old
    return Case(name, "kubernetes", planted, K8S_BASE.replace(old, new))


RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: {kind}
metadata: {{name: trainer}}
{body}
"""
KUBERNETES = [
    Case("baseline", "kubernetes", False, K8S_BASE),
    k8s(
        "privileged",
        True,
        "allowPrivilegeEscalation: false,",
        "privileged: true, allowPrivilegeEscalation: false,",
    ),
    k8s(
        "privilege-escalation",
        True,
        "allowPrivilegeEscalation: false",
        "allowPrivilegeEscalation: true",
    ),
    k8s("run-as-root", True, "runAsNonRoot: true, runAsUser: 10001", "runAsUser: 0"),
    k8s(
        "host-ipc-gpu",
        True,
        "automountServiceAccountToken: false",
        "automountServiceAccountToken: false\n      hostIPC: true",
    ),
    k8s(
        "host-pid",
        True,
        "automountServiceAccountToken: false",
        "automountServiceAccountToken: false\n      hostPID: true",
    ),
    k8s(
        "host-network",
        True,
        "automountServiceAccountToken: false",
        "automountServiceAccountToken: false\n      hostNetwork: true",
    ),
    k8s(
        "hostpath-socket",
        True,
        "      containers:",
        "      volumes: [{name: d, hostPath: {path: /var/run/docker.sock}}]\n      containers:",
    ),
    k8s("no-limits", True, '            limits: {cpu: "4", memory: 16Gi, nvidia.com/gpu: 1}\n', ""),
    k8s("latest-image", True, f"ghcr.io/acme/serve:1.4.2@{DIGEST}", "ghcr.io/acme/serve:latest"),
    k8s("tag-no-digest", True, f"ghcr.io/acme/serve:1.4.2@{DIGEST}", "ghcr.io/acme/serve:1.4.2"),
    k8s("sa-token-default", True, "      automountServiceAccountToken: false\n", ""),
    Case(
        "cluster-admin",
        "kubernetes",
        True,
        RBAC.format(
            kind="ClusterRoleBinding",
            body="roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"
            "subjects: [{kind: ServiceAccount, name: trainer, namespace: ml}]",
        ),
    ),
    Case(
        "clusterrole-secrets-write",
        "kubernetes",
        True,
        RBAC.format(
            kind="ClusterRole",
            body='rules: [{apiGroups: [""], resources: [secrets], verbs: [get, update]}]',
        ),
    ),
    # look-alikes
    k8s(
        "privileged-false",
        False,
        "allowPrivilegeEscalation: false,",
        "privileged: false, allowPrivilegeEscalation: false,",
    ),
    k8s(
        "emptydir-shm",
        False,
        "      containers:",
        "      volumes: [{name: shm, emptyDir: {medium: Memory}}]\n      containers:",
    ),
    k8s(
        "nonroot-at-container",
        False,
        "readOnlyRootFilesystem: true}",
        "readOnlyRootFilesystem: true, runAsUser: 2000}",
    ),
    Case(
        "role-view-binding",
        "kubernetes",
        False,
        RBAC.format(
            kind="RoleBinding",
            body="roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\n"
            "subjects: [{kind: ServiceAccount, name: trainer, namespace: ml}]",
        ),
    ),
    Case(
        "role-configmap-read",
        "kubernetes",
        False,
        RBAC.format(
            kind="Role",
            body='rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list]}]',
        ),
    ),
]

# ---------------------------------------------------------------- dockerfiles
DOCKER_BASE = f"""\
FROM python:3.11-slim@{DIGEST}
RUN useradd -u 10001 app
COPY --chown=app . /app
HEALTHCHECK CMD python -c "print(1)"
USER app
"""


def dock(name: str, planted: bool, old: str, new: str) -> Case:
    assert old in DOCKER_BASE, old
    return Case(name, "dockerfile", planted, DOCKER_BASE.replace(old, new))


DOCKERFILES = [
    Case("baseline", "dockerfile", False, DOCKER_BASE),
    dock("no-user", True, "USER app\n", ""),
    dock("user-root", True, "USER app\n", "USER app\nUSER root\n"),
    dock(
        "curl-pipe-sh",
        True,
        "RUN useradd",
        "RUN curl -fsSL https://get.example.sh | sh\nRUN useradd",
    ),
    dock("latest-base", True, f"python:3.11-slim@{DIGEST}", "python:latest"),
    dock("untagged-base", True, f"python:3.11-slim@{DIGEST}", "python"),
    dock("tag-no-digest", True, f"python:3.11-slim@{DIGEST}", "python:3.11-slim"),
    dock(
        "env-token",
        True,
        "RUN useradd",
        "ENV HF_TOKEN=hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345\nRUN useradd",
    ),
    dock("arg-password", True, "RUN useradd", 'ARG DB_PASSWORD="s3cr3t-pa55w0rd"\nRUN useradd'),
    dock(
        "add-url", True, "COPY --chown", "ADD https://example.com/model.bin /models/\nCOPY --chown"
    ),
    # look-alikes
    dock(
        "gpg-key",
        False,
        "RUN useradd",
        "ENV GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D\nRUN useradd",
    ),
    dock(
        "secret-file-path", False, "RUN useradd", "ENV HF_TOKEN_FILE=/run/secrets/hf\nRUN useradd"
    ),
    dock("arg-no-default", False, "RUN useradd", "ARG HF_TOKEN\nRUN useradd"),
    dock(
        "curl-to-jq",
        False,
        "RUN useradd",
        "RUN curl -fsSL https://x.io/v.json | jq .v\nRUN useradd",
    ),
    dock(
        "add-with-checksum",
        False,
        "COPY --chown",
        f"ADD --checksum={DIGEST} https://example.com/m.bin /m\nCOPY --chown",
    ),
]

# ---------------------------------------------------------------- terraform
TF_BASE = """\
resource "aws_s3_bucket" "data" {
  bucket = "acme-ml-staging"
}
resource "aws_s3_bucket_public_access_block" "data" {
  bucket                  = aws_s3_bucket.data.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}
resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
  }
}
"""


def tf(
    name: str, planted: bool, extra: str, old: str = "", new: str = "", against: str = "baseline"
) -> Case:
    text = TF_BASE.replace(old, new) if old else TF_BASE
    return Case(name, "terraform", planted, text + extra, against)


TRAIN = """\
resource "aws_iam_role" "train" {
  name = "ml-training"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "sagemaker.amazonaws.com" } }]
  })
}
resource "aws_iam_role_policy" "train" {
  role   = aws_iam_role.train.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["s3:GetObject", "s3:PutObject"], Resource = "${aws_s3_bucket.data.arn}/*" }]
  })
}
"""
TERRAFORM = [
    tf("baseline", False, ""),
    tf(
        "public-acl",
        True,
        "",
        'bucket = "acme-ml-staging"',
        'bucket = "acme-ml-staging"\n  acl    = "public-read"',
    ),
    tf("block-off", True, "", "restrict_public_buckets = true", "restrict_public_buckets = false"),
    tf(
        "gcs-all-users",
        True,
        'resource "google_storage_bucket_iam_member" "m" {\n  bucket = "models"\n  role = "roles/storage.objectViewer"\n  member = "allUsers"\n}\n',
        against="gcs-group-member",
    ),
    tf(
        "azure-public",
        True,
        'resource "azurerm_storage_container" "c" {\n  name = "weights"\n  storage_account_name = "acme"\n  container_access_type = "blob"\n}\n',
    ),
    tf(
        "sagemaker-notebook-defaults",
        True,
        'resource "aws_sagemaker_notebook_instance" "nb" {\n  name = "nb"\n  role_arn = "arn:aws:iam::1:role/x"\n  instance_type = "ml.t3.medium"\n}\n',
    ),
    tf(
        "training-role-prod-write",
        True,
        TRAIN,
        '"acme-ml-staging"',
        '"acme-prod-model-registry"',
        against="training-role-staging-write",
    ),
    # look-alikes
    tf(
        "private-acl",
        False,
        "",
        'bucket = "acme-ml-staging"',
        'bucket = "acme-ml-staging"\n  acl    = "private"',
    ),
    tf(
        "gcs-group-member",
        False,
        'resource "google_storage_bucket_iam_member" "m" {\n  bucket = "models"\n  role = "roles/storage.objectViewer"\n  member = "group:ml@acme.example"\n}\n',
    ),
    tf("training-role-staging-write", False, TRAIN),
]

CASES = WORKFLOWS + KUBERNETES + DOCKERFILES + TERRAFORM
FILE_NAMES = {"kubernetes": "deploy.yaml", "dockerfile": "Dockerfile", "terraform": "main.tf"}


def case_path(root: Path, case: Case, copy: int = 0) -> Path:
    folder = root / case.kind / f"{case.name}-{copy}"
    if case.kind == "workflow":
        return folder / ".github" / "workflows" / "ci.yml"
    return folder / FILE_NAMES[case.kind]


def write_corpus(root: Path, copies: int = 1) -> dict[Path, Case]:
    where: dict[Path, Case] = {}
    for case in CASES:
        for copy in range(copies):
            path = case_path(root, case, copy)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(case.text)
            where[path.resolve()] = case
    return where


# ---------------------------------------------------------------- tools
def ensure_peers() -> Path:
    python = PEERS / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
    missing = [p for p in PEER_PACKAGES if not (PEERS / "bin" / p).exists()]
    if missing:
        print(f"installing {', '.join(missing)} into {PEERS} ...", flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *missing], check=True)
    return PEERS / "bin"


def run(args: list[str], timeout: float = 1800) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {
        **os.environ,
        "BC_SKIP_MAPPING": "TRUE",
        "CHECKOV_ALLOW_TELEMETRY": "false",
        "NO_COLOR": "1",
    }
    started = time.perf_counter()
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    return done, time.perf_counter() - started


Verdicts = dict[Path, set[str]]


def secmlops(kind: str, root: Path) -> tuple[Verdicts, float]:
    layer = "workflows" if kind == "workflow" else "infra"
    done, seconds = run(
        [sys.executable, "-m", "secmlops", "scan", layer, str(root / kind), "-f", "json", "-q"]
    )
    doc = json.loads(done.stdout)
    out: Verdicts = {}
    for f in doc["findings"]:
        out.setdefault(Path(f["location"]["path"]).resolve(), set()).add(f["rule_id"])
    for e in doc["errors"]:
        out.setdefault(Path(e["location"].get("path", "?")).resolve(), set()).add("ERROR")
    return out, seconds


def zizmor(kind: str, root: Path, bins: Path) -> tuple[Verdicts, float]:
    files = sorted(str(p) for p in (root / kind).rglob("ci.yml"))
    done, seconds = run(
        [str(bins / "zizmor"), "--offline", "--format", "json", "--no-progress", *files]
    )
    if not done.stdout.strip():
        raise RuntimeError(f"zizmor printed nothing (exit {done.returncode}): {done.stderr[-500:]}")
    out: Verdicts = {}
    for finding in json.loads(done.stdout):
        for loc in finding.get("locations", []):
            key = loc.get("symbolic", {}).get("key", {})
            local = key.get("Local") or key.get("local") or {}
            path = local.get("verbatim_path") or local.get("given_path") or local.get("path")
            if path:
                out.setdefault(Path(path).resolve(), set()).add(finding["ident"])
                break
    return out, seconds


CHECKOV_FRAMEWORK = {
    "workflow": "github_actions",
    "kubernetes": "kubernetes",
    "dockerfile": "dockerfile",
    "terraform": "terraform",
}


def checkov(kind: str, root: Path, bins: Path) -> tuple[Verdicts, float]:
    done, seconds = run([
        str(bins / "checkov"), "-d", str(root / kind), "--framework", CHECKOV_FRAMEWORK[kind],
        "-o", "json", "--soft-fail", "--skip-download", "--quiet",
    ])  # fmt: skip
    if not done.stdout.strip():
        raise RuntimeError(
            f"checkov printed nothing (exit {done.returncode}): {done.stderr[-500:]}"
        )
    data = json.loads(done.stdout)
    out: Verdicts = {}
    for block in data if isinstance(data, list) else [data]:
        for check in (block.get("results") or {}).get("failed_checks", []):
            path = check.get("file_abs_path") or check.get("file_path")
            out.setdefault(Path(path).resolve(), set()).add(check["check_id"])
    return out, seconds


# ---------------------------------------------------------------- scoring
@dataclass
class Score:
    caught: int = 0
    planted: int = 0
    false_pos: int = 0
    lookalikes: int = 0
    missed: list[str] | None = None
    flagged: list[str] | None = None


def score(kind: str, verdicts: Verdicts, where: dict[Path, Case]) -> Score:
    paths = {case.name: path for path, case in where.items() if case.kind == kind}
    s = Score(missed=[], flagged=[])
    for name, path in sorted(paths.items()):
        case = where[path]
        new = verdicts.get(path, set()) - verdicts.get(paths[case.against], set())
        if name == "baseline":
            continue
        if case.planted:
            s.planted += 1
            if new:
                s.caught += 1
            else:
                s.missed.append(name)  # type: ignore[union-attr]
        else:
            s.lookalikes += 1
            if new:
                s.false_pos += 1
                s.flagged.append(f"{name} ({', '.join(sorted(new))})")  # type: ignore[union-attr]
    return s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=100, help="copies of each case for speed")
    parser.add_argument("--json", type=Path, help="also write every number here")
    parser.add_argument("--tools", default="secmlops,zizmor,checkov")
    parser.add_argument("--kinds", default="workflow,kubernetes,dockerfile,terraform")
    args = parser.parse_args()
    tools = args.tools.split(",")
    bins = ensure_peers() if {"zizmor", "checkov"} & set(tools) else Path()
    runners: dict[str, Callable[[str, Path], tuple[Verdicts, float]]] = {
        "secmlops": secmlops,
        "zizmor": lambda kind, root: zizmor(kind, root, bins),
        "checkov": lambda kind, root: checkov(kind, root, bins),
    }
    supports = {"secmlops": {"workflow", "kubernetes", "dockerfile", "terraform"},
                "zizmor": {"workflow"},
                "checkov": {"workflow", "kubernetes", "dockerfile", "terraform"}}  # fmt: skip
    results: dict[str, dict[str, dict[str, object]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-wf-infra-") as tmp:
        detect_root, speed_root = Path(tmp) / "detect", Path(tmp) / "speed"
        where = write_corpus(detect_root)
        write_corpus(speed_root, args.copies)
        for kind in args.kinds.split(","):
            n_files = sum(1 for c in CASES if c.kind == kind) * args.copies
            for tool in tools:
                if kind not in supports[tool]:
                    continue
                verdicts, _ = runners[tool](kind, detect_root)
                s = score(kind, verdicts, where)
                _, seconds = runners[tool](kind, speed_root)
                results.setdefault(kind, {})[tool] = {
                    "caught": s.caught, "planted": s.planted, "false_positives": s.false_pos,
                    "lookalikes": s.lookalikes, "missed": s.missed, "flagged": s.flagged,
                    "speed_files": n_files, "speed_seconds": round(seconds, 2),
                    "files_per_second": round(n_files / seconds, 1),
                }  # fmt: skip
                print(  # as it goes, so a long run shows its figures before it ends
                    f"[{kind} {tool}] caught {s.caught}/{s.planted}, false positives "
                    f"{s.false_pos}/{s.lookalikes}, {n_files} files in {seconds:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    print(
        f"{'kind':11} {'tool':9} {'recall':>9} {'false pos':>10} {'files/s':>9} {'vs secmlops':>12}"
    )
    for kind, by_tool in results.items():
        ours = by_tool.get("secmlops", {})
        for tool, r in by_tool.items():
            ratio = (
                f"{float(r['files_per_second']) / float(ours['files_per_second']):.2f}x"  # type: ignore[arg-type]
                if ours
                else "-"
            )
            print(
                f"{kind:11} {tool:9} {r['caught']:>3}/{r['planted']:<5} {r['false_positives']:>3}/{r['lookalikes']:<6}"
                f" {r['files_per_second']:>9} {ratio:>12}"
            )
            if r["missed"]:
                print(f"{'':21} missed: {', '.join(r['missed'])}")  # type: ignore[arg-type]
            if r["flagged"]:
                print(f"{'':21} false positives: {'; '.join(r['flagged'])}")  # type: ignore[arg-type]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
