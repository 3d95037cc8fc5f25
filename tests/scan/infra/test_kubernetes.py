"""Kubernetes manifest rules: catching, benign look-alike, broken input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmlops.findings import Report, Severity
from secmlops.scan.infra import scan_infra
from tests.scan.infra.scanning import hits, scan_text

DIGEST = "sha256:" + "ab" * 32

HARDENED = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: serve
spec:
  template:
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
      volumes:
        - name: shm
          emptyDir: {{medium: Memory}}
      containers:
        - name: server
          image: ghcr.io/acme/serve:1.4.2@{DIGEST}
          securityContext:
            allowPrivilegeEscalation: false
            privileged: false
          resources:
            limits: {{cpu: "4", memory: 16Gi, nvidia.com/gpu: 1}}
"""


def scan(tmp_path: Path, text: str, name: str = "deploy.yaml") -> Report:
    return scan_text(scan_infra, tmp_path, name, text)


def test_hardened_gpu_deployment_is_clean(tmp_path: Path) -> None:
    report = scan(tmp_path, HARDENED)
    assert report.errors == [] and report.findings == []
    assert report.files_scanned == 1


def test_privileged_root_gpu_pod_with_host_access(tmp_path: Path) -> None:
    text = (
        HARDENED.replace("privileged: false", "privileged: true")
        .replace("runAsUser: 10001", "runAsUser: 0")
        .replace("runAsNonRoot: true", "runAsNonRoot: false")
        .replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true")
        .replace(
            "      automountServiceAccountToken: false\n",
            "      hostIPC: true\n      hostNetwork: true\n",
        )
        .replace("emptyDir: {medium: Memory}", "hostPath: {path: /var/run/docker.sock}")
    )
    report = scan(tmp_path, text)
    assert hits(report, "INFRA-K8S-PRIVILEGED")[0].severity is Severity.CRITICAL  # GPU pod
    assert hits(report, "INFRA-K8S-ROOT")[0].severity is Severity.HIGH
    assert hits(report, "INFRA-K8S-PRIV-ESCALATION")[0].severity is Severity.MEDIUM
    host = {f.evidence["field"]: f.severity for f in hits(report, "INFRA-K8S-HOST-NAMESPACE")}
    assert host == {"hostIPC": Severity.CRITICAL, "hostNetwork": Severity.HIGH}
    assert hits(report, "INFRA-K8S-HOSTPATH")[0].severity is Severity.CRITICAL  # runtime socket
    assert hits(report, "INFRA-K8S-SA-TOKEN")
    assert hits(report, "INFRA-K8S-PRIVILEGED")[0].location.line == 21  # one line added above


def test_host_namespaces_on_cpu_pod_are_one_level_lower(tmp_path: Path) -> None:
    text = (
        HARDENED.replace(", nvidia.com/gpu: 1", "")
        .replace(
            "      automountServiceAccountToken: false\n",
            "      automountServiceAccountToken: false\n      hostPID: true\n",
        )
        .replace("emptyDir: {medium: Memory}", "hostPath: {path: /mnt/cache}")
    )
    report = scan(tmp_path, text)
    assert [f.severity for f in hits(report, "INFRA-K8S-HOST-NAMESPACE")] == [Severity.HIGH]
    assert [f.severity for f in hits(report, "INFRA-K8S-HOSTPATH")] == [Severity.MEDIUM]


def test_defaults_are_flagged_in_a_bare_cronjob(tmp_path: Path) -> None:
    text = """\
    apiVersion: batch/v1
    kind: CronJob
    metadata: {name: retrain}
    spec:
      schedule: "0 3 * * *"
      jobTemplate:
        spec:
          template:
            spec:
              initContainers: [{name: fetch, image: "busybox"}]
              containers: [{name: train, image: "registry:5000/train:2.1"}]
    """
    report = scan(tmp_path, text)
    assert {f.evidence["image"] for f in hits(report, "INFRA-K8S-IMAGE-LATEST")} == {"busybox"}
    assert {f.evidence["image"] for f in hits(report, "INFRA-K8S-IMAGE-NO-DIGEST")} == {
        "registry:5000/train:2.1"
    }
    assert len(hits(report, "INFRA-K8S-ROOT")) == 2
    assert len(hits(report, "INFRA-K8S-NO-LIMITS")) == 2
    assert [f.severity for f in hits(report, "INFRA-K8S-PRIV-ESCALATION")] == [Severity.LOW] * 2


RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: {binding}
metadata: {{name: trainer}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}
subjects: [{{kind: ServiceAccount, name: trainer, namespace: ml}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {kind}
metadata: {{name: trainer}}
rules:
  - apiGroups: [""]
    resources: [{resources}]
    verbs: [{verbs}]
"""


@pytest.mark.parametrize(
    ("binding", "role", "kind", "resources", "verbs", "expected"),
    [
        ("ClusterRoleBinding", "cluster-admin", "ClusterRole", "secrets", "update",
         {"INFRA-K8S-CLUSTER-ADMIN": Severity.HIGH, "INFRA-K8S-RBAC-WRITE": Severity.HIGH}),
        ("RoleBinding", "cluster-admin", "Role", '"*"', '"*"',
         {"INFRA-K8S-CLUSTER-ADMIN": Severity.MEDIUM, "INFRA-K8S-RBAC-WRITE": Severity.MEDIUM}),
        ("ClusterRoleBinding", "view", "ClusterRole", "secrets", "get",
         {}),  # read-only: another rule's business
        ("ClusterRoleBinding", "trainer", "ClusterRole", "configmaps", "update",
         {}),  # write, but not on a sensitive resource
    ],
)  # fmt: skip
def test_rbac(tmp_path: Path, binding: str, role: str, kind: str, resources: str, verbs: str,
              expected: dict[str, Severity]) -> None:  # fmt: skip
    report = scan(tmp_path, RBAC.format(binding=binding, role=role, kind=kind,
                                        resources=resources, verbs=verbs))  # fmt: skip
    assert {f.rule_id: f.severity for f in report.findings} == expected


def test_list_kind_is_unpacked(tmp_path: Path) -> None:
    text = """\
    apiVersion: v1
    kind: List
    items:
      - apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          hostPID: true
          containers: []
    """
    assert hits(scan(tmp_path, text), "INFRA-K8S-HOST-NAMESPACE")


def test_malformed_manifest_fails_with_path(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: Pod\nspec: [unclosed\n")
    report = scan_infra([tmp_path])
    assert len(report.errors) == 1
    assert report.errors[0].location.path == str(tmp_path / "bad.yaml")
    assert "malformed YAML" in report.errors[0].message


def test_malformed_yaml_of_another_tool_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "mkdocs.yml").write_text("nav:\n  - [unclosed\n")
    report = scan_infra([tmp_path])
    assert report.errors == [] and report.files_skipped == 1


def test_alias_bomb_in_manifest_is_refused(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\ndata:\n  a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n"
    for n in range(1, 9):
        text += f"  a{n}: &a{n} [" + ",".join([f"*a{n - 1}"] * 10) + "]\n"
    (tmp_path / "bomb.yaml").write_text(text)
    report = scan_infra([tmp_path])
    assert report.errors and "alias bomb" in report.errors[0].message


def test_helm_templates_are_skipped_and_empty_yaml_is_nothing(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "templates" / "deploy.yaml").write_text(
        "apiVersion: v1\nkind: Pod\n{{- if .Values.x }}\n"
    )
    (tmp_path / "empty.yaml").write_text("")
    report = scan_infra([tmp_path])
    assert report.errors == [] and report.findings == []


def test_ml_operator_pod_templates_are_checked(tmp_path: Path) -> None:
    text = """\
    apiVersion: kubeflow.org/v1
    kind: PyTorchJob
    metadata: {name: finetune}
    spec:
      pytorchReplicaSpecs:
        Master:
          replicas: 1
          template:
            spec:
              containers: [{name: pytorch, image: "acme/train:1", securityContext: {privileged: true}}]
        Worker:
          replicas: 4
          template:
            spec:
              hostIPC: true
              containers: [{name: pytorch, image: "acme/train:1"}]
    ---
    apiVersion: ray.io/v1
    kind: RayCluster
    metadata: {name: serve}
    spec:
      headGroupSpec:
        template:
          spec:
            containers: [{name: head, image: "rayproject/ray"}]
    """
    report = scan(tmp_path, text)
    assert len(hits(report, "INFRA-K8S-PRIVILEGED")) == 1
    assert len(hits(report, "INFRA-K8S-HOST-NAMESPACE")) == 1
    assert [f.evidence["image"] for f in hits(report, "INFRA-K8S-IMAGE-LATEST")] == [
        "rayproject/ray"
    ]


def test_configmap_with_containers_text_is_not_a_pod(tmp_path: Path) -> None:
    text = """\
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: c}
    data:
      containers: "privileged: true"
    """
    assert scan(tmp_path, text).findings == []


KEYS = st.sampled_from(
    ["spec", "template", "containers", "securityContext", "privileged", "runAsUser", "image",
     "resources", "limits", "volumes", "hostPath", "path", "hostPID", "rules", "verbs",
     "resources", "roleRef", "name", "subjects", "items", "nvidia.com/gpu"]
)  # fmt: skip
SCALARS = (
    st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from(["", "*", "latest", "x:1"])
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=25,
)  # fmt: skip


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(
        ["Pod", "Deployment", "CronJob", "List", "ClusterRole", "RoleBinding", "X"]
    ),
    body=st.dictionaries(KEYS, VALUES, max_size=4),
)
def test_manifests_of_any_shape_never_crash(
    tmp_path: Path, kind: str, body: dict[str, object]
) -> None:
    doc = {"apiVersion": "v1", "kind": kind, **body}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(doc))
    report = scan_infra([tmp_path / "m.yaml"])
    assert report.errors == []
    assert all(f.location.line for f in report.findings)
