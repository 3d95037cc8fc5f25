"""Stable rule ids of the dependency scanner (documented in docs/rules.md; a test keeps them in sync)."""

from __future__ import annotations

from secmlops.findings import Rule, Severity

_VULN = ("NIST-AI-RMF:MANAGE-2.2", "ISO42001:A.6.2.6", "OWASP-ML:ML06", "CWE-1395")
_MAL = ("NIST-AI-RMF:GOVERN-6.1", "ISO42001:A.10.3", "OWASP-ML:ML06", "CWE-506")
_INDEX = ("NIST-AI-RMF:GOVERN-6.1", "ISO42001:A.10.3", "OWASP-ML:ML06", "CWE-494")
_PIN = ("NIST-AI-RMF:MAP-4.1", "ISO42001:A.10.3", "OWASP-ML:ML06", "CWE-1357")
_DB = ("NIST-AI-RMF:MEASURE-2.7", "ISO42001:A.6.2.6", "OWASP-ML:ML06")

VULN = Rule(
    "DEPS-VULN",
    Severity.HIGH,
    "Dependency has a known vulnerability",
    "The installed or pinned version lies in an affected range of an OSV advisory. The finding's "
    "severity comes from the advisory's CVSS vector (v4 preferred, then v3) or its published "
    "rating; advisories without any rating are treated as high.",
    "Upgrade to a fixed version (secmlops scan deps --fix proposes the smallest one) or remove "
    "the dependency.",
    _VULN,
)
VERSION_UNKNOWN = Rule(
    "DEPS-VERSION-UNKNOWN",
    Severity.HIGH,
    "Dependency version cannot be checked against its advisories",
    "The package has advisories but its version (or the advisory's range) is not a valid PEP 440 "
    "version, so it cannot be shown to be outside the affected ranges. Unknown is never clean.",
    "Pin a released PEP 440 version, or review the listed advisories by hand.",
    _VULN,
)
MALICIOUS = Rule(
    "DEPS-MALICIOUS",
    Severity.CRITICAL,
    "Dependency is a known malicious package",
    "An OSV MAL-* record reports malicious code in this package (credential theft, miners, "
    "droppers). Installing it runs the attacker's code.",
    "Remove the package, treat every machine that installed it as compromised and rotate the "
    "credentials it could reach.",
    _MAL,
)
COMPROMISED = Rule(
    "DEPS-COMPROMISED",
    Severity.CRITICAL,
    "Dependency is a known compromised release",
    "This exact release was published by an attacker (stolen token, poisoned CI cache, dependency "
    "confusion), as recorded in the list of compromised releases shipped with secmlops.",
    "Remove this release, pin a clean version by hash, treat machines that installed it as "
    "compromised and rotate their credentials.",
    _MAL,
)
TYPOSQUAT = Rule(
    "DEPS-TYPOSQUAT",
    Severity.HIGH,
    "Dependency name is one typo away from a popular package",
    "The name differs from a top PyPI project by one edit (insertion, deletion, substitution, "
    "swap), a separator, a py/python prefix or a look-alike digit: the classic way malware is "
    "installed by mistake.",
    "Check that the name is what you meant; if it is a typo, replace it with the popular "
    "package and treat the environment as compromised if it was installed.",
    _MAL,
)
CONFUSION = Rule(
    "DEPS-CONFUSION",
    Severity.CRITICAL,
    "Internal package can be resolved from a public index",
    "The package is served by your private index while an extra index is configured: pip and uv "
    "take the highest version from any index, so anyone who uploads the name to PyPI wins "
    "(the torchtriton attack of December 2022).",
    "Use one index that proxies PyPI (--index-url only), or uv's index pinning "
    "([tool.uv.sources] / explicit = true), and register the internal names on PyPI.",
    _INDEX,
)
EXTRA_INDEX = Rule(
    "DEPS-EXTRA-INDEX",
    Severity.MEDIUM,
    "An extra package index is configured",
    "--extra-index-url merges a second index with PyPI without priorities: the highest version "
    "of a name on either index is installed, which enables dependency confusion.",
    "Serve everything from one index (a proxy of PyPI plus your packages) with --index-url, or "
    "pin each package to its index (uv explicit indexes, Poetry explicit sources).",
    _INDEX,
)
TRUSTED_HOST = Rule(
    "DEPS-TRUSTED-HOST",
    Severity.HIGH,
    "Package host is trusted without TLS verification",
    "--trusted-host (or uv's allow-insecure-host) turns off certificate checks for that host; "
    "anyone on the network path can serve altered packages.",
    "Remove the trusted-host setting and give the index a valid certificate (or configure the "
    "CA bundle with --cert / PIP_CERT).",
    _INDEX,
)
HTTP_INDEX = Rule(
    "DEPS-HTTP-INDEX",
    Severity.HIGH,
    "Package index is reached over plain HTTP",
    "Packages fetched over http:// can be replaced in transit; without hashes nothing detects it.",
    "Use an https:// index URL.",
    _INDEX,
)
UNPINNED = Rule(
    "DEPS-UNPINNED",
    Severity.MEDIUM,
    "Dependency is not pinned to one version",
    "Without an exact version (== or a lockfile entry) the installed release is chosen at "
    "install time: it cannot be vouched for, and a malicious new release is picked up silently.",
    "Pin with == (pip-compile / uv pip compile) or commit a lockfile (uv.lock, poetry.lock, "
    "pylock.toml).",
    _PIN,
)
NO_HASHES = Rule(
    "DEPS-NO-HASHES",
    Severity.LOW,
    "Requirement set has no hashes",
    "Without --hash (or lockfile hashes) a replaced or re-uploaded file with the same version is "
    "installed without notice.",
    "Generate hashes (pip-compile --generate-hashes, uv pip compile --generate-hashes, uv.lock) "
    "and install with --require-hashes.",
    _PIN,
)
MALFORMED = Rule(
    "DEPS-MALFORMED",
    Severity.HIGH,
    "Dependency declaration cannot be parsed",
    "A line or entry that is not valid PEP 508 / requirements syntax cannot be checked; pip may "
    "still interpret it differently.",
    "Fix the line so that pip and secmlops read the same requirement.",
    _PIN,
)
DB_MISSING = Rule(
    "DEPS-DB-MISSING",
    Severity.HIGH,
    "Vulnerability database is missing or damaged",
    "Without the offline OSV database no dependency can be shown to be free of known "
    "vulnerabilities; the scan fails closed.",
    "Run: secmlops db update (with a network) or secmlops db update --from PyPI-all.zip.",
    _DB,
)
DB_STALE = Rule(
    "DEPS-DB-STALE",
    Severity.HIGH,
    "Vulnerability database is stale",
    "The offline OSV database is older than --max-db-age days; vulnerabilities and malicious "
    "packages published since are not known to this scan.",
    "Run: secmlops db update (or import a fresh PyPI all.zip with --from).",
    _DB,
)

ALL: dict[str, Rule] = {
    r.rule_id: r
    for r in (
        VULN,
        VERSION_UNKNOWN,
        MALICIOUS,
        COMPROMISED,
        TYPOSQUAT,
        CONFUSION,
        EXTRA_INDEX,
        TRUSTED_HOST,
        HTTP_INDEX,
        UNPINNED,
        NO_HASHES,
        MALFORMED,
        DB_MISSING,
        DB_STALE,
    )
}
