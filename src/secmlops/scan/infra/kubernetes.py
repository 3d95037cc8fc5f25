"""Kubernetes manifest checks: pod security, GPU pods on the host, images, RBAC.

Input is the list of documents of one (multi-document) YAML file from the safe loader; documents
that are not Kubernetes objects (no apiVersion and kind) are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from secmlops.findings import Finding, Location, Severity
from secmlops.scan.infra import rules
from secmlops.scan.infra.images import Pin, image_pin
from secmlops.scan.infra.yaml_docs import YamlList, YamlMap

# Pod templates sit at most this deep below a workload's spec (RayCluster: 3, Kubeflow: 4).
MAX_SEARCH_DEPTH = 8
WRITE_VERBS = frozenset(
    {"*", "create", "update", "patch", "delete", "deletecollection", "escalate", "bind",
     "impersonate"}
)  # fmt: skip
# Resources whose write access leads to credentials, code execution or more privileges.
SENSITIVE_RESOURCES = frozenset(
    {"*", "secrets", "pods", "pods/exec", "pods/attach", "pods/ephemeralcontainers", "deployments",
     "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs", "roles", "rolebindings",
     "clusterroles", "clusterrolebindings", "serviceaccounts", "serviceaccounts/token", "nodes",
     "nodes/proxy", "persistentvolumes", "mutatingwebhookconfigurations",
     "validatingwebhookconfigurations", "certificatesigningrequests"}
)  # fmt: skip
DANGEROUS_HOST_PATHS = ("/", "/var/run/docker.sock", "/run/containerd", "/var/run/crio", "/etc")


def _bump(severity: Severity, gpu: bool) -> Severity:
    return Severity(min(severity + 1, Severity.CRITICAL)) if gpu else severity


def _map(value: Any) -> YamlMap:
    return value if isinstance(value, YamlMap) else YamlMap()


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    return {str(v) for v in value} if isinstance(value, list) else set()


def _maps(value: Any) -> list[YamlMap]:
    return [v for v in value if isinstance(v, YamlMap)] if isinstance(value, YamlList) else []


@dataclass(frozen=True, slots=True)
class _Pod:
    """The pod spec of a workload, where it sits and what it is called."""

    path: str
    name: str
    spec: YamlMap

    def at(self, holder: YamlMap, key: str | None = None) -> Location:
        line = holder.line_of(key) if key else holder.line
        # An absent section (a stand-in empty map, line 0) is reported where the pod spec is.
        return Location(path=self.path, line=line or self.spec.line)

    def containers(self) -> list[YamlMap]:
        return [
            c
            for key in ("initContainers", "containers", "ephemeralContainers")
            for c in _maps(self.spec.get(key))
        ]

    def uses_gpu(self) -> bool:
        for c in self.containers():
            res = _map(c.get("resources"))
            for section in (res.get("limits"), res.get("requests")):
                if isinstance(section, dict) and any("gpu" in str(k).lower() for k in section):
                    return True
        return False


def _pod_specs(doc: YamlMap) -> list[YamlMap]:
    """Pod specs of a Pod, or found under the spec of any workload kind.

    Searching for mappings with a `containers` list covers the built-in workloads
    (spec.template.spec, CronJob's jobTemplate) and the ML operators alike: Kubeflow
    PyTorchJob/TFJob/MPIJob replica specs, RayCluster head and worker groups, KServe predictors.
    """
    spec = doc.get("spec")
    if not isinstance(spec, YamlMap):
        return []
    if doc.get("kind") == "Pod":
        return [spec]
    found: list[YamlMap] = []
    stack: list[tuple[Any, int]] = [(spec, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, YamlMap):
            if isinstance(node.get("containers"), YamlList):
                found.append(node)
                continue
            children = list(node.values())
        elif isinstance(node, YamlList):
            children = list(node)
        else:
            continue
        if depth < MAX_SEARCH_DEPTH:
            stack.extend((child, depth + 1) for child in reversed(children))
    return found


def _check_host(pod: _Pod, gpu: bool) -> Iterator[Finding]:
    for key, base in (
        ("hostPID", Severity.HIGH),
        ("hostIPC", Severity.HIGH),
        ("hostNetwork", Severity.MEDIUM),
    ):
        if pod.spec.get(key) is True:
            yield rules.K8S_HOST_NAMESPACE.finding(
                pod.at(pod.spec, key),
                f"{pod.name} sets {key}: true" + (" on a GPU pod" if gpu else ""),
                {"field": key, "gpu": gpu},
                severity=_bump(base, gpu),
            )
    for volume in _maps(pod.spec.get("volumes")):
        host = volume.get("hostPath")
        if not isinstance(host, dict):
            continue
        target = str(host.get("path", ""))
        dangerous = target.rstrip("/") in {p.rstrip("/") for p in DANGEROUS_HOST_PATHS}
        severity = Severity.CRITICAL if dangerous else _bump(Severity.MEDIUM, gpu)
        yield rules.K8S_HOSTPATH.finding(
            pod.at(volume, "hostPath"),
            f"{pod.name} mounts the node's {target or '(no path)'} as volume "
            f"{volume.get('name')!r}" + (" on a GPU pod" if gpu else ""),
            {"path": target, "gpu": gpu},
            severity=severity,
        )


def _security(pod: _Pod, container: YamlMap, key: str) -> Any:
    """A securityContext field: the container's value, else the pod's."""
    own = _map(container.get("securityContext"))
    return own[key] if key in own else _map(pod.spec.get("securityContext")).get(key)


def _check_container(pod: _Pod, c: YamlMap, gpu: bool) -> Iterator[Finding]:
    name = f"{pod.name} container {c.get('name')!r}"
    ctx = _map(c.get("securityContext"))
    if ctx.get("privileged") is True:
        yield rules.K8S_PRIVILEGED.finding(
            pod.at(ctx, "privileged"),
            f"{name} is privileged" + (" on a GPU pod" if gpu else ""),
            {"gpu": gpu},
            severity=_bump(Severity.HIGH, gpu),
        )
    escalation = ctx.get("allowPrivilegeEscalation")
    if escalation is not False:
        yield rules.K8S_PRIV_ESCALATION.finding(
            pod.at(ctx, "allowPrivilegeEscalation") if escalation is True else pod.at(c),
            f"{name} "
            + (
                "sets allowPrivilegeEscalation: true"
                if escalation is True
                else "leaves allowPrivilegeEscalation at its default (true)"
            ),
            {"explicit": escalation is True},
            severity=None if escalation is True else Severity.LOW,
        )
    user = _security(pod, c, "runAsUser")
    if user == 0:
        yield rules.K8S_ROOT.finding(
            pod.at(c), f"{name} runs with runAsUser: 0", {"runAsUser": 0}, severity=Severity.HIGH
        )
    elif _security(pod, c, "runAsNonRoot") is not True and not (isinstance(user, int) and user > 0):
        yield rules.K8S_ROOT.finding(
            pod.at(c), f"{name} sets neither runAsNonRoot: true nor a non-zero runAsUser"
        )
    limits = _map(_map(c.get("resources")).get("limits"))
    missing = [k for k in ("cpu", "memory") if k not in limits]
    if missing:
        yield rules.K8S_NO_LIMITS.finding(
            pod.at(c),
            f"{name} has no {' or '.join(missing)} limit",
            {"missing": missing, "gpu": gpu},
            severity=_bump(Severity.LOW, gpu),
        )
    image = c.get("image")
    if isinstance(image, str):
        pin = image_pin(image)
        if pin is Pin.FLOATING:
            yield rules.K8S_IMAGE_LATEST.finding(
                pod.at(c, "image"), f"{name} runs {image!r}", {"image": image}
            )
        elif pin is Pin.TAG:
            yield rules.K8S_IMAGE_NO_DIGEST.finding(
                pod.at(c, "image"), f"{name} runs {image!r} without a digest", {"image": image}
            )


def _check_workload(path: str, doc: YamlMap, spec: YamlMap) -> Iterator[Finding]:
    meta = _map(doc.get("metadata"))
    pod = _Pod(path, f"{doc.get('kind')} {meta.get('name', '?')!r}", spec)
    gpu = pod.uses_gpu()
    yield from _check_host(pod, gpu)
    for container in pod.containers():
        yield from _check_container(pod, container, gpu)
    if spec.get("automountServiceAccountToken") is not False:
        yield rules.K8S_SA_TOKEN.finding(
            pod.at(spec),
            f"{pod.name} does not set automountServiceAccountToken: false",
            {"serviceAccountName": spec.get("serviceAccountName", "default")},
        )


def _check_rbac(path: str, doc: YamlMap) -> Iterator[Finding]:
    kind = doc.get("kind")
    name = f"{kind} {_map(doc.get('metadata')).get('name', '?')!r}"
    if kind in ("ClusterRoleBinding", "RoleBinding"):
        ref = _map(doc.get("roleRef"))
        if ref.get("name") == "cluster-admin":
            subjects = [f"{s.get('kind')}/{s.get('name')}" for s in _maps(doc.get("subjects"))]
            yield rules.K8S_CLUSTER_ADMIN.finding(
                Location(path=path, line=ref.line_of("name")),
                f"{name} binds {', '.join(subjects) or 'its subjects'} to cluster-admin",
                {"subjects": subjects},
                severity=None if kind == "ClusterRoleBinding" else Severity.MEDIUM,
            )
    if kind in ("ClusterRole", "Role"):
        for rule in _maps(doc.get("rules")):
            verbs = _strings(rule.get("verbs")) & WRITE_VERBS
            resources = _strings(rule.get("resources")) & SENSITIVE_RESOURCES
            if verbs and resources:
                yield rules.K8S_RBAC_WRITE.finding(
                    Location(path=path, line=rule.line),
                    f"{name} allows {', '.join(sorted(verbs))} on {', '.join(sorted(resources))}"
                    + (" in every namespace" if kind == "ClusterRole" else ""),
                    {"verbs": sorted(verbs), "resources": sorted(resources)},
                    severity=None if kind == "ClusterRole" else Severity.MEDIUM,
                )


def is_kubernetes_object(doc: Any) -> bool:
    return isinstance(doc, YamlMap) and isinstance(doc.get("apiVersion"), str) and "kind" in doc


def check_manifests(documents: list[Any], path: str) -> list[Finding]:
    """Every finding in the Kubernetes objects among `documents` (List kinds are unpacked)."""
    findings: list[Finding] = []
    queue = list(documents)
    while queue:
        doc = queue.pop(0)
        if not is_kubernetes_object(doc):
            continue
        if str(doc.get("kind")).endswith("List"):
            queue.extend(_maps(doc.get("items")))
            continue
        for spec in _pod_specs(doc):
            findings.extend(_check_workload(path, doc, spec))
        findings.extend(_check_rbac(path, doc))
    return findings
