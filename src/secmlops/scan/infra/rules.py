"""Stable rule ids of the infrastructure check (documented in docs/rules.md; a test keeps them in sync)."""

from __future__ import annotations

from secmlops.findings import Rule, Severity

_PLATFORM = ("NIST-AI-RMF:MEASURE-2.7", "ISO42001:A.6.2.6")
_SUPPLY = ("NIST-AI-RMF:GOVERN-6.1", "ISO42001:A.10.3", "OWASP-ML:ML06")
_DATA = ("NIST-AI-RMF:MEASURE-2.7", "ISO42001:A.7.4", "OWASP-ML:ML06")

# Kubernetes
K8S_PRIVILEGED = Rule(
    "INFRA-K8S-PRIVILEGED",
    Severity.HIGH,
    "Privileged container",
    "A privileged container has every capability and the host's devices; escaping to the node "
    "(and every other workload and GPU on it) is a single step.",
    "Remove securityContext.privileged; grant the specific capability or device plugin needed.",
    (*_PLATFORM, "CIS-K8S:5.2.2", "CWE-250"),
)
K8S_PRIV_ESCALATION = Rule(
    "INFRA-K8S-PRIV-ESCALATION",
    Severity.MEDIUM,
    "Container may gain more privileges than it starts with",
    "allowPrivilegeEscalation defaults to true: setuid binaries in the image can raise the "
    "process's privileges.",
    "Set securityContext.allowPrivilegeEscalation: false on every container.",
    (*_PLATFORM, "CIS-K8S:5.2.6", "CWE-269"),
)
K8S_ROOT = Rule(
    "INFRA-K8S-ROOT",
    Severity.MEDIUM,
    "Container may run as root",
    "A container without runAsNonRoot (or with runAsUser: 0) runs as root when the image says "
    "so; root in a container is one kernel bug or mount away from root on the node.",
    "Set securityContext.runAsNonRoot: true and a non-zero runAsUser at pod or container level.",
    (*_PLATFORM, "CIS-K8S:5.2.7", "CWE-250"),
)
K8S_HOST_NAMESPACE = Rule(
    "INFRA-K8S-HOST-NAMESPACE",
    Severity.HIGH,
    "Pod shares the node's PID, IPC or network namespace",
    "hostPID, hostIPC and hostNetwork let the pod see and signal node processes, read shared "
    "memory (GPU jobs use it) and reach node-local services; on GPU nodes other tenants' "
    "models and data are there.",
    "Remove hostPID/hostIPC/hostNetwork; for NCCL shared memory use an emptyDir with medium: "
    "Memory.",
    (*_PLATFORM, "CIS-K8S:5.2.3", "CIS-K8S:5.2.4", "CIS-K8S:5.2.5", "CWE-668"),
)
K8S_HOSTPATH = Rule(
    "INFRA-K8S-HOSTPATH",
    Severity.MEDIUM,
    "Pod mounts a directory of the node",
    "hostPath volumes expose the node's file system: the container runtime socket or / give "
    "node root; model and data caches on the node leak between tenants.",
    "Use persistent volumes, emptyDir or CSI drivers; never mount the runtime socket or /.",
    (*_PLATFORM, "CIS-K8S:5.2.12", "CWE-668"),
)
K8S_NO_LIMITS = Rule(
    "INFRA-K8S-NO-LIMITS",
    Severity.LOW,
    "Container without CPU or memory limits",
    "Without limits one runaway or abused workload (an inference server under a flood of long "
    "prompts) starves every other pod on the node.",
    "Set resources.limits.cpu and resources.limits.memory on every container.",
    (*_PLATFORM, "CWE-770"),
)
K8S_IMAGE_LATEST = Rule(
    "INFRA-K8S-IMAGE-LATEST",
    Severity.MEDIUM,
    "Image without a tag or with :latest",
    "A mutable tag runs whatever was pushed last; a compromised registry account or a bad push "
    "changes production without a change to this file.",
    "Pin the image to a version tag and its digest (name:1.2.3@sha256:...).",
    (*_SUPPLY, "CWE-494"),
)
K8S_IMAGE_NO_DIGEST = Rule(
    "INFRA-K8S-IMAGE-NO-DIGEST",
    Severity.LOW,
    "Image pinned by tag but not by digest",
    "Tags can be re-pushed; only a digest names the exact image that was reviewed and scanned.",
    "Append the digest: name:1.2.3@sha256:<digest> (crane digest / docker buildx imagetools).",
    (*_SUPPLY, "CWE-494"),
)
K8S_CLUSTER_ADMIN = Rule(
    "INFRA-K8S-CLUSTER-ADMIN",
    Severity.HIGH,
    "Binding to cluster-admin",
    "Subjects bound to cluster-admin control every namespace, secret and node; a compromised "
    "training or serving pod with that service account owns the cluster.",
    "Bind a Role with only the verbs and resources the workload needs, in its own namespace.",
    (*_PLATFORM, "CIS-K8S:5.1.1", "CWE-269"),
)
K8S_RBAC_WRITE = Rule(
    "INFRA-K8S-RBAC-WRITE",
    Severity.HIGH,
    "Role grants write on sensitive resources",
    "Write verbs (or *) on secrets, pods, workloads, RBAC objects or every resource let the "
    "holder read credentials or start privileged pods; cluster-wide (ClusterRole) it reaches "
    "every namespace.",
    "List the exact resources and verbs needed; no wildcards; keep secrets and RBAC objects out.",
    (*_PLATFORM, "CIS-K8S:5.1.2", "CIS-K8S:5.1.3", "CWE-269"),
)
K8S_SA_TOKEN = Rule(
    "INFRA-K8S-SA-TOKEN",
    Severity.LOW,
    "Service account token mounted by default",
    "automountServiceAccountToken defaults to true: every container gets an API token, which "
    "code running in it (a malicious model, an injected prompt tool) can use against the API.",
    "Set automountServiceAccountToken: false on the pod (or its service account) unless it "
    "talks to the Kubernetes API.",
    (*_PLATFORM, "CIS-K8S:5.1.6", "CWE-522"),
)

# Dockerfiles
DOCKER_ROOT = Rule(
    "INFRA-DOCKER-ROOT",
    Severity.MEDIUM,
    "Image runs as root",
    "Without a USER instruction (or with USER root/0 last) the container's processes run as "
    "root, which turns any code execution (e.g. a malicious model file) into root inside the "
    "container.",
    "Create an unprivileged user and end the final stage with USER <name or uid>.",
    (*_PLATFORM, "CWE-250"),
)
DOCKER_CURL_PIPE = Rule(
    "INFRA-DOCKER-CURL-PIPE",
    Severity.HIGH,
    "Script downloaded and piped into a shell",
    "curl | sh runs whatever the server (or anyone between) returns at build time, unverified "
    "and unrecorded.",
    "Download to a file, verify its SHA-256 (or signature), then run it; better, install a "
    "pinned package.",
    (*_SUPPLY, "CWE-494"),
)
DOCKER_UNPINNED_BASE = Rule(
    "INFRA-DOCKER-UNPINNED-BASE",
    Severity.MEDIUM,
    "Base image without a tag or with :latest",
    "The build pulls whatever the tag points to today; rebuilds silently change every layer "
    "below yours.",
    "Pin FROM to a version tag and digest: FROM python:3.11-slim@sha256:<digest>.",
    (*_SUPPLY, "CWE-494"),
)
DOCKER_BASE_NO_DIGEST = Rule(
    "INFRA-DOCKER-BASE-NO-DIGEST",
    Severity.LOW,
    "Base image pinned by tag but not by digest",
    "Version tags of base images are re-pushed for patches (and could be by an attacker); the "
    "build is not reproducible.",
    "Add the digest: FROM name:tag@sha256:<digest>, updated by Dependabot or Renovate.",
    (*_SUPPLY, "CWE-494"),
)
DOCKER_SECRET = Rule(
    "INFRA-DOCKER-SECRET",
    Severity.HIGH,
    "Secret baked into the image",
    "ENV and ARG values are stored in the image configuration and history; anyone who can pull "
    "the image reads them.",
    "Use build secrets (RUN --mount=type=secret) and runtime secrets; rotate the exposed value.",
    (*_SUPPLY, "CWE-798"),
)
DOCKER_ADD_URL = Rule(
    "INFRA-DOCKER-ADD-URL",
    Severity.MEDIUM,
    "ADD downloads a remote file without a checksum",
    "ADD <url> fetches at build time without verification; the content can change between builds.",
    "Use ADD --checksum=sha256:<digest> <url>, or download with curl and verify the hash.",
    (*_SUPPLY, "CWE-494"),
)

# Terraform
TF_BUCKET_PUBLIC = Rule(
    "INFRA-TF-BUCKET-PUBLIC",
    Severity.HIGH,
    "Storage bucket can be read by the public",
    "Public ACLs, disabled public-access blocks, allUsers grants and public blob access expose "
    "training data, checkpoints and model weights to anyone (or let them overwrite them).",
    "Keep buckets private: S3 public access block with all four settings true, no public ACL; "
    "GCS uniform access and no allUsers; Azure public blob access off.",
    (*_DATA, "CWE-732"),
)
TF_BUCKET_UNENCRYPTED = Rule(
    "INFRA-TF-BUCKET-UNENCRYPTED",
    Severity.LOW,
    "Bucket without an explicit encryption configuration",
    "Provider defaults change and cannot be audited from code; data and model buckets should "
    "state their server-side encryption (and key) explicitly.",
    "Add aws_s3_bucket_server_side_encryption_configuration (aws:kms with your key).",
    (*_DATA, "CWE-311"),
)
TF_BUCKET_NO_UNIFORM = Rule(
    "INFRA-TF-BUCKET-NO-UNIFORM-ACCESS",
    Severity.LOW,
    "Bucket access controlled by per-object ACLs",
    "Without uniform bucket-level access (GCS) single objects can be made public by ACL, "
    "invisible to the bucket's IAM policy.",
    'Set uniform_bucket_level_access = true and public_access_prevention = "enforced".',
    (*_DATA, "CWE-732"),
)
TF_NOTEBOOK_INTERNET = Rule(
    "INFRA-TF-NOTEBOOK-INTERNET",
    Severity.MEDIUM,
    "Notebook instance has direct internet access or a public IP",
    "SageMaker notebooks default to direct internet access; Vertex/Workbench instances default "
    "to a public IP. Data and credentials on them can leave without passing any egress control.",
    'SageMaker: direct_internet_access = "Disabled" with a VPC subnet; GCP: no_public_ip / '
    "disable_public_ip = true.",
    (*_DATA, "CWE-668"),
)
TF_NOTEBOOK_ROOT = Rule(
    "INFRA-TF-NOTEBOOK-ROOT",
    Severity.MEDIUM,
    "Notebook users get root",
    "SageMaker notebook root access is enabled by default: users (and code they run from "
    "downloaded notebooks) can change the instance, its credentials and its software.",
    'Set root_access = "Disabled" (and use lifecycle configurations for setup).',
    (*_PLATFORM, "CWE-250"),
)
TF_TRAINING_PROD_WRITE = Rule(
    "INFRA-TF-TRAINING-PROD-WRITE",
    Severity.HIGH,
    "Training role can write to production model storage",
    "A training job runs code and data from many sources; if its role can put objects into the "
    "production model bucket, one poisoned dependency or dataset replaces the served model "
    "without passing the gate.",
    "Give training roles write access only to a staging bucket; promote models to production "
    "through the signed gate with a separate role.",
    (*_DATA, "OWASP-ML:ML10", "CWE-269"),
)

ALL: dict[str, Rule] = {
    r.rule_id: r
    for r in (
        K8S_PRIVILEGED,
        K8S_PRIV_ESCALATION,
        K8S_ROOT,
        K8S_HOST_NAMESPACE,
        K8S_HOSTPATH,
        K8S_NO_LIMITS,
        K8S_IMAGE_LATEST,
        K8S_IMAGE_NO_DIGEST,
        K8S_CLUSTER_ADMIN,
        K8S_RBAC_WRITE,
        K8S_SA_TOKEN,
        DOCKER_ROOT,
        DOCKER_CURL_PIPE,
        DOCKER_UNPINNED_BASE,
        DOCKER_BASE_NO_DIGEST,
        DOCKER_SECRET,
        DOCKER_ADD_URL,
        TF_BUCKET_PUBLIC,
        TF_BUCKET_UNENCRYPTED,
        TF_BUCKET_NO_UNIFORM,
        TF_NOTEBOOK_INTERNET,
        TF_NOTEBOOK_ROOT,
        TF_TRAINING_PROD_WRITE,
    )
}
