"""Lineage edges from verified attestations: what datasets, code and packages made a model."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from packaging.utils import canonicalize_name

from secmlops.evidence.attest import VerifiedStatement

Edge = tuple[str, str, Mapping[str, Any]]
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"


def package_ref(name: str, version: str) -> str:
    return f"{canonicalize_name(name)}=={version}"


def normalise_ref(ref: str) -> str:
    """`sha256:<hex>` or `name==version` with the name canonicalised, for --affected-by."""
    if "==" in ref:
        name, version = ref.split("==", 1)
        return package_ref(name.strip(), version.strip())
    return ref.strip().lower()


def _purl_package(uri: str) -> str | None:
    if not uri.startswith("pkg:pypi/") or "@" not in uri:
        return None
    name, version = uri[len("pkg:pypi/") :].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)
    return package_ref(name, version)


def edges_from_statement(statement: VerifiedStatement) -> list[Edge]:
    """The attestation itself, and for SLSA provenance every resolved dependency."""
    edges: list[Edge] = [
        ("attestation", "sha256:" + hashlib.sha256(statement.payload).hexdigest(),
         {"predicateType": statement.predicate_type}),
    ]  # fmt: skip
    if statement.predicate_type != SLSA_PROVENANCE:
        return edges
    build = statement.predicate.get("buildDefinition", {})
    deps: Sequence[Any] = (
        build.get("resolvedDependencies", []) if isinstance(build, Mapping) else []
    )
    for dep in deps:
        if not isinstance(dep, Mapping):
            continue
        digest = dep.get("digest", {}) if isinstance(dep.get("digest"), Mapping) else {}
        annotations = (
            dep.get("annotations", {}) if isinstance(dep.get("annotations"), Mapping) else {}
        )
        detail = {"name": dep.get("name", ""), "uri": dep.get("uri", "")}
        package = _purl_package(str(dep.get("uri", "")))
        if package:
            edges.append(("package", package, detail))
        elif "gitCommit" in digest:
            edges.append(("code", str(digest["gitCommit"]), detail))
        elif "sha256" in digest:
            edges.append(
                (str(annotations.get("role", "input")), f"sha256:{digest['sha256']}", detail)
            )
    return edges
