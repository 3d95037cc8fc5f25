"""Terraform checks for ML storage and compute: public or unencrypted buckets, notebooks with
internet or root, and training roles that can write production model buckets.

Files are parsed with python-hcl2 (line numbers from its metadata). A module is the set of .tf
files in one folder, checked together: a bucket's public-access block or a role's policy
attachment usually sits in another file. Expressions are not evaluated; references such as
`aws_s3_bucket.models.id` are followed by name, variables and modules are not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from secmlops.errors import ScanError
from secmlops.findings import Finding, Location, Severity
from secmlops.scan.infra import rules

PUBLIC_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_MEMBERS = re.compile(r"\ballUsers\b|\ballAuthenticatedUsers\b")
BLOCK_FLAGS = ("block_public_acls", "block_public_policy", "ignore_public_acls",
               "restrict_public_buckets")  # fmt: skip
# Heuristics for the training-role rule, documented in docs/infra.md.
PROD_NAME = re.compile(r"(?<![a-z])prod(?:uction)?(?![a-z])|model[-_]?registry", re.IGNORECASE)
TRAINING_NAME = re.compile(r"train|fine[-_]?tun|sagemaker", re.IGNORECASE)
TRAINING_SERVICE = re.compile(r"sagemaker\.amazonaws\.com", re.IGNORECASE)
WRITE_ACTION = re.compile(
    r"^(?:\*|s3:\*|s3:(?:put|delete|replicate|restore)\w*\*?)$", re.IGNORECASE
)
ALL_BUCKETS = re.compile(r"^(?:\*|arn:aws:s3:::\*(?:/\*)?)$")
REFERENCE = re.compile(r"\b((?:data\.)?[a-z][a-z0-9_]*\.[A-Za-z0-9_-]+)(?:\[[^\]]*\])?\.")
S3_ARN = re.compile(r"arn:aws:s3:::([A-Za-z0-9.\-_${}]+)")
S3_ACTION_TEXT = re.compile(r"[\"'](s3:[A-Za-z*]+|\*)[\"']")


@dataclass(frozen=True, slots=True)
class Block:
    """One resource or data block: `address` is type.name (data.type.name for data sources)."""

    path: str
    address: str
    type: str
    name: str
    body: dict[str, Any]
    line: int

    def at(self, line: int | None = None) -> Location:
        return Location(path=self.path, line=line or self.line)

    def get(self, key: str) -> Any:
        return self.body.get(key)

    def nested(self, key: str) -> list[dict[str, Any]]:
        value = self.body.get(key)
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class Statement:
    """An Allow statement of an IAM policy: its actions and resource expressions."""

    location: Location
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    public: bool = False  # any principal ("*") and no condition


def parse_terraform(text: str, path: str) -> list[Block]:
    """The resource and data blocks of one .tf file; ScanError when it is not valid HCL."""
    try:
        from hcl2.api import loads
        from lark.exceptions import LarkError
    except ImportError:
        raise ScanError(
            "cannot read Terraform: python-hcl2 is not installed",
            hint="pip install 'python-hcl2>=7,<8'",
        ) from None

    try:
        tree = loads(text, with_meta=True)
    except LarkError as exc:
        raise ScanError(f"malformed HCL: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise ScanError("HCL nested too deeply to check; refused") from None
    blocks: list[Block] = []
    for kind in ("resource", "data"):
        for entry in tree.get(kind, []):
            for rtype, named in entry.items():
                for name, body in named.items():
                    if not isinstance(body, dict):
                        continue
                    prefix = "data." if kind == "data" else ""
                    line = int(body.get("__start_line__", 1))
                    blocks.append(Block(path, f"{prefix}{rtype}.{name}", rtype, name, body, line))
    return blocks


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str) if value is not None else ""


def _line(body: dict[str, Any], block: Block) -> int:
    return int(body.get("__start_line__", block.line))


def _refs(value: Any) -> set[str]:
    """Addresses (type.name / data.type.name) referenced anywhere in `value`."""
    return {m.group(1) for m in REFERENCE.finditer(_text(value))}


class Module:
    """The blocks of one folder of .tf files, indexed for the checks."""

    def __init__(self, blocks: Sequence[Block]) -> None:
        self.blocks = list(blocks)
        self.by_address = {b.address: b for b in self.blocks}

    def of_type(self, rtype: str) -> list[Block]:
        return [b for b in self.blocks if b.type == rtype]

    def targets(self, block: Block, attribute: str, bucket: Block) -> bool:
        """Whether `block.attribute` names `bucket` (by reference or by literal bucket name)."""
        value = _text(block.get(attribute))
        return bucket.address in _refs(value) or (
            bool(bucket.get("bucket")) and value == bucket.get("bucket")
        )

    def attached(self, rtype: str, bucket: Block) -> list[Block]:
        return [b for b in self.of_type(rtype) if self.targets(b, "bucket", bucket)]


def _check_s3(module: Module) -> Iterator[Finding]:
    account_block = module.of_type("aws_s3_account_public_access_block")
    for bucket in module.of_type("aws_s3_bucket"):
        label = bucket.get("bucket") or bucket.name
        acls = [bucket.get("acl")] + [
            b.get("acl") for b in module.attached("aws_s3_bucket_acl", bucket)
        ]
        public = sorted({str(a) for a in acls if a in PUBLIC_ACLS})
        if public:
            yield rules.TF_BUCKET_PUBLIC.finding(
                bucket.at(), f"S3 bucket {label!r} has ACL {', '.join(public)}", {"acl": public}
            )
        blocks = module.attached("aws_s3_bucket_public_access_block", bucket)
        for block in blocks:
            off = [f for f in BLOCK_FLAGS if block.get(f) is not True]
            if off:
                yield rules.TF_BUCKET_PUBLIC.finding(
                    block.at(),
                    f"public access block of {label!r} leaves {', '.join(off)} off",
                    {"off": off},
                    severity=Severity.MEDIUM,
                )
        if not blocks and not account_block:
            yield rules.TF_BUCKET_PUBLIC.finding(
                bucket.at(),
                f"S3 bucket {label!r} has no aws_s3_bucket_public_access_block",
                {"missing": "aws_s3_bucket_public_access_block"},
                severity=Severity.LOW,
            )
        encrypted = bucket.nested("server_side_encryption_configuration") or module.attached(
            "aws_s3_bucket_server_side_encryption_configuration", bucket
        )
        if not encrypted:
            yield rules.TF_BUCKET_UNENCRYPTED.finding(
                bucket.at(), f"S3 bucket {label!r} declares no server-side encryption"
            )
    for policy in module.of_type("aws_s3_bucket_policy"):
        for statement in _statements(module, policy, policy.get("policy")):
            if statement.public:
                yield rules.TF_BUCKET_PUBLIC.finding(
                    statement.location,
                    'bucket policy allows any principal ("*") without a condition',
                    {"actions": list(statement.actions)},
                )


def _check_gcp_azure(module: Module) -> Iterator[Finding]:
    for block in module.blocks:
        if block.type.startswith("google_storage_") and (
            block.type.endswith(("_iam_member", "_iam_binding", "_access_control"))
        ):
            who = " ".join(_text(block.get(k)) for k in ("member", "members", "entity"))
            public = PUBLIC_MEMBERS.search(who)
            if public:
                yield rules.TF_BUCKET_PUBLIC.finding(
                    block.at(),
                    f"{block.address} grants access to {public.group(0)}",
                    {"member": who.strip()},
                )
        elif (
            block.type == "google_storage_bucket"
            and block.get("uniform_bucket_level_access") is not True
        ):
            yield rules.TF_BUCKET_NO_UNIFORM.finding(
                block.at(), f"{block.address} does not enable uniform_bucket_level_access"
            )
        elif block.type == "azurerm_storage_account":
            for key in ("allow_blob_public_access", "allow_nested_items_to_be_public"):
                if block.get(key) is True:
                    yield rules.TF_BUCKET_PUBLIC.finding(
                        block.at(), f"{block.address} sets {key} = true", {key: True}
                    )
            if "allow_nested_items_to_be_public" not in block.body and (
                "allow_blob_public_access" not in block.body
            ):
                yield rules.TF_BUCKET_PUBLIC.finding(
                    block.at(),
                    f"{block.address} does not set allow_nested_items_to_be_public = false "
                    "(the azurerm 3.x default allows public containers)",
                    severity=Severity.MEDIUM,
                )
        elif block.type == "azurerm_storage_container" and block.get("container_access_type") in (
            "blob",
            "container",
        ):
            yield rules.TF_BUCKET_PUBLIC.finding(
                block.at(),
                f"{block.address} has container_access_type = "
                f"{block.get('container_access_type')!r}",
            )


def _check_notebooks(module: Module) -> Iterator[Finding]:
    for block in module.of_type("aws_sagemaker_notebook_instance"):
        for key, rule in (
            ("direct_internet_access", rules.TF_NOTEBOOK_INTERNET),
            ("root_access", rules.TF_NOTEBOOK_ROOT),
        ):
            value = block.get(key)
            if value is None or str(value).lower() == "enabled":
                yield rule.finding(
                    block.at(),
                    f"{block.address}: {key} is "
                    + ("not set (default Enabled)" if value is None else "Enabled"),
                    {key: value or "Enabled (default)"},
                )
    for block in module.of_type("google_notebooks_instance"):
        if block.get("no_public_ip") is not True:
            yield rules.TF_NOTEBOOK_INTERNET.finding(
                block.at(), f"{block.address} does not set no_public_ip = true"
            )
    for block in module.of_type("google_workbench_instance"):
        setup = block.nested("gce_setup")
        if not any(s.get("disable_public_ip") is True for s in setup):
            yield rules.TF_NOTEBOOK_INTERNET.finding(
                block.at(), f"{block.address} does not set gce_setup.disable_public_ip = true"
            )


def _as_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [_text(v) for v in value]
    return [_text(value)] if value is not None else []


def _json_statements(doc: Any, location: Location) -> list[Statement]:
    raw = doc.get("Statement", []) if isinstance(doc, dict) else []
    out = []
    for st in raw if isinstance(raw, list) else [raw]:
        if not isinstance(st, dict) or str(st.get("Effect", "Allow")) != "Allow":
            continue
        public = st.get("Principal") in ("*", {"AWS": "*"}) and "Condition" not in st
        out.append(
            Statement(
                location,
                tuple(_as_list(st.get("Action"))),
                tuple(_as_list(st.get("Resource"))),
                public,
            )
        )
    return out


def _public_principal(statement: dict[str, Any]) -> bool:
    """A policy-document statement that names any principal ("*") without a condition."""
    principals = statement.get("principals")
    blocks = principals if isinstance(principals, list) else []
    return "condition" not in statement and any(
        isinstance(p, dict) and "*" in _as_list(p.get("identifiers")) for p in blocks
    )


def _statements(
    module: Module, owner: Block, value: Any, line: int | None = None
) -> list[Statement]:
    """The Allow statements of a policy value: a policy-document reference or JSON text."""
    location = owner.at(line)
    for ref in _refs(value):
        doc = module.by_address.get(ref)
        if doc is not None and doc.type == "aws_iam_policy_document":
            return [
                Statement(
                    doc.at(_line(st, doc)),
                    tuple(_as_list(st.get("actions"))),
                    tuple(_as_list(st.get("resources"))),
                    _public_principal(st),
                )
                for st in doc.nested("statement")
                if str(st.get("effect", "Allow")) == "Allow"
            ]
    text = _text(value).strip()
    match = re.fullmatch(r"\$\{jsonencode\((.*)\)\}", text, re.DOTALL)
    if match:
        text = match.group(1)
    try:
        return _json_statements(json.loads(text), location)
    except ValueError:
        # jsonencode() with references inside is HCL, not JSON: read the actions it names and
        # treat the whole text as the resource list (documented limit).
        actions = tuple(m.group(1) for m in S3_ACTION_TEXT.finditer(text))
        return [Statement(location, actions, (text,))] if actions else []


def _policies_of_role(module: Module, role: Block) -> Iterator[Statement]:
    for inline in role.nested("inline_policy"):
        yield from _statements(module, role, inline.get("policy"), _line(inline, role))
    policy_refs = set(_refs(role.get("managed_policy_arns")))
    for block in module.blocks:
        names_role = role.address in _refs(block.get("role")) or role.address in _refs(
            block.get("roles")
        )
        if block.type == "aws_iam_role_policy" and names_role:
            yield from _statements(module, block, block.get("policy"))
        elif block.type in ("aws_iam_role_policy_attachment", "aws_iam_policy_attachment") and (
            names_role
        ):
            policy_refs |= _refs(block.get("policy_arn"))
    for ref in sorted(policy_refs):
        policy = module.by_address.get(ref)
        if policy is not None and policy.type == "aws_iam_policy":
            yield from _statements(module, policy, policy.get("policy"))


def _is_training_role(module: Module, role: Block) -> bool:
    if TRAINING_NAME.search(role.name) or TRAINING_NAME.search(_text(role.get("name"))):
        return True
    trust = role.get("assume_role_policy")
    if TRAINING_SERVICE.search(_text(trust)):
        return True
    for ref in _refs(trust):
        doc = module.by_address.get(ref)
        if doc is not None and TRAINING_SERVICE.search(_text(doc.body)):
            return True
    return any(
        role.address in _refs(b.body) for b in module.blocks if b.type.startswith("aws_sagemaker_")
    )


def _prod_target(module: Module, resources: Sequence[str]) -> str | None:
    """The production bucket a resource list reaches, or None."""
    prod_buckets = {
        b.address: str(b.get("bucket") or b.name)
        for b in module.of_type("aws_s3_bucket")
        if PROD_NAME.search(b.name)
        or PROD_NAME.search(_text(b.get("bucket")))
        or PROD_NAME.search(_text(b.get("tags")))
    }
    for resource in resources:
        if ALL_BUCKETS.match(resource.strip()):
            return "every bucket"
        for ref in _refs(resource):
            if ref in prod_buckets:
                return prod_buckets[ref]
        for arn in S3_ARN.finditer(resource):
            if PROD_NAME.search(arn.group(1)):
                return arn.group(1)
    return None


def _check_training_roles(module: Module) -> Iterator[Finding]:
    seen: set[tuple[str | None, int | None]] = set()
    for role in module.of_type("aws_iam_role"):
        if not _is_training_role(module, role):
            continue
        for statement in _policies_of_role(module, role):
            writes = [a for a in statement.actions if WRITE_ACTION.match(a.strip())]
            target = _prod_target(module, statement.resources) if writes else None
            key = (statement.location.path, statement.location.line)
            if target is None or key in seen:
                continue
            seen.add(key)
            yield rules.TF_TRAINING_PROD_WRITE.finding(
                statement.location,
                f"training role {role.address} may {', '.join(writes)} on {target}",
                {"role": role.address, "actions": writes, "target": target},
            )


def check_module(blocks: Sequence[Block]) -> list[Finding]:
    """Every finding in one Terraform module (the blocks of the .tf files of one folder)."""
    module = Module(blocks)
    return [
        *_check_s3(module),
        *_check_gcp_azure(module),
        *_check_notebooks(module),
        *_check_training_roles(module),
    ]
