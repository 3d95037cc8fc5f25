#!/usr/bin/env python3
"""Side-by-side benchmark of dependency auditing: pip-audit and secmlops on the same lockfile and
the same OSV records, in one run.

Usage::

    .venv/bin/python benchmarks/deps.py              # build, serve, audit, compare (~1 min)
    .venv/bin/python benchmarks/deps.py --json out.json
    .venv/bin/python benchmarks/deps.py --repeat 3   # best of three timings per tool

What it does
============
1. *Records*: the Python Packaging Advisory Database snapshot in ``/work/shared/data``
   (``pypa-advisory-database-*.tar.gz``, ~2,650 ``PYSEC-*`` records, CC-BY 4.0, credit the PyPA
   advisory database) converted from YAML to OSV JSON, plus records made here so that both
   tools meet what the snapshot lacks: ``GHSA-*`` twins of 40 PYSEC records (same ranges,
   CVE aliases, CVSS vectors: alias merging) and a ``MAL-*`` record for ``torchtriton 3.0.0``.
   Without the snapshot, a synthetic set stands in (said in the output).
2. *Lockfile*: ``requirements.txt`` of >= 200 real package names with real versions, all ``==``
   pinned: 260 packages drawn (fixed seed) from the advisory records with a version each -- an
   affected one from a record's ``versions`` list for about 60 %, otherwise the first version
   that fixes a record -- plus torchtriton 3.0.0 and a few popular packages without advisories.
3. *Servers*: a loopback OSV API (``http.server`` on 127.0.0.1, random port) implementing
   ``POST /v1/query``, ``POST /v1/querybatch`` and ``GET /v1/vulns/{id}`` from the same
   records. It matches as the OSV schema defines (and OSV.dev does): a version is affected when
   it is in the record's ``versions`` list or inside one of its ECOSYSTEM ranges, evaluated
   here by a small implementation independent of secmlops's. Withdrawn records are served;
   each client must ignore them.
4. *pip-audit* (its own venv, ``benchmarks/.venv-peers-deps``, created on first run) with
   ``-r requirements.txt --no-deps --disable-pip -s osv --osv-url http://127.0.0.1:PORT/v1/query
   -f json`` (pip-audit has an ``--osv-url`` option, so nothing is patched).
   *secmlops*: ``db update --from records.zip`` (timed on its own), then ``scan deps
   requirements.txt -f json`` against the imported offline database.
5. *Comparison*: per package, the union of vulnerability ids and aliases each tool reports
   (pip-audit: ``id`` + ``aliases`` of each vuln; secmlops: ``id`` + ``aliases`` evidence of each
   DEPS-VULN / DEPS-MALICIOUS finding). Identical sets are the goal; any difference is printed.
   Times are wall clock of the whole command including interpreter start-up.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO_ROOT / "benchmarks"
WORK = BENCH_DIR / ".work" / "deps"
PEER_VENV = BENCH_DIR / ".venv-peers-deps"
SHARED_DATA = Path(os.environ.get("SECMLOPS_SHARED_DATA", "/work/shared/data"))
PROJECT_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"

# Popular packages with real versions and no advisories in the snapshot (the clean part).
CLEAN = [
    ("boto3", "1.34.0"), ("botocore", "1.34.0"), ("packaging", "24.0"), ("six", "1.16.0"),
    ("attrs", "23.2.0"), ("click", "8.1.7"), ("colorama", "0.4.6"), ("tqdm", "4.66.4"),
    ("pluggy", "1.5.0"), ("iniconfig", "2.0.0"), ("tomli", "2.0.1"), ("typing-extensions", "4.12.0"),
    ("charset-normalizer", "3.3.2"), ("idna", "3.7"), ("certifi", "2024.7.4"),
    ("python-dateutil", "2.9.0.post0"), ("pytz", "2024.1"), ("tzdata", "2024.1"),
    ("wrapt", "1.16.0"), ("platformdirs", "4.2.2"), ("filelock", "3.15.4"), ("fsspec", "2024.6.1"),
    ("markupsafe", "2.1.5"), ("pyparsing", "3.1.2"), ("cycler", "0.12.1"), ("kiwisolver", "1.4.5"),
    ("threadpoolctl", "3.5.0"), ("joblib", "1.4.2"), ("sniffio", "1.3.1"), ("anyio", "4.4.0"),
]  # fmt: skip


def log(message: str) -> None:
    print(message, flush=True)


# ----------------------------------------------------------------------------- records


def _iso(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return (
            text.replace("+00:00", "Z") if "+00:00" in text else text + ("" if "Z" in text else "Z")
        )
    return value


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return _iso(obj)


def load_advisories() -> tuple[list[dict[str, Any]], str]:
    """The PyPA advisory records as OSV JSON dicts, and where they came from."""
    tarballs = sorted(SHARED_DATA.glob("pypa-advisory-database-*.tar.gz"))
    if not tarballs:
        return synthetic_records(), "synthetic stand-in (advisory snapshot not found)"
    import yaml

    records: list[dict[str, Any]] = []
    with tarfile.open(tarballs[-1]) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".yaml") and "/vulns/" in member.name:
                data = tar.extractfile(member)
                assert data is not None
                doc = yaml.safe_load(data.read())
                if isinstance(doc, dict) and "id" in doc:
                    records.append(_jsonable(doc))
    return records, f"{tarballs[-1].name} ({len(records)} records)"


def synthetic_records() -> list[dict[str, Any]]:
    rng = random.Random(7)
    out = []
    for i in range(400):
        name = f"pkg{i:03d}"
        fixed = f"1.{rng.randint(1, 9)}.0"
        versions = [f"1.{m}.{p}" for m in range(0, int(fixed.split(".")[1])) for p in range(3)]
        out.append(
            {
                "id": f"PYSEC-2099-{i}",
                "modified": "2024-01-01T00:00:00Z",
                "aliases": [f"CVE-2099-{i}"],
                "affected": [
                    {
                        "package": {"ecosystem": "PyPI", "name": name},
                        "ranges": [
                            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                        ],
                        "versions": versions,
                    }
                ],
            }
        )
    return out


def add_twins_and_malware(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GHSA twins (alias merging, CVSS) and one MAL record, as the real OSV dump has."""
    rng = random.Random(11)
    candidates = [r for r in records if not r.get("withdrawn") and r.get("aliases")]
    vectors = [
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
        "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N",
    ]
    twins = []
    for i, rec in enumerate(rng.sample(candidates, min(40, len(candidates)))):
        ghsa = f"GHSA-bench-{i:04d}"
        twins.append(
            {
                "id": ghsa,
                "modified": rec.get("modified", "2024-01-01T00:00:00Z"),
                "aliases": [a for a in rec["aliases"] if a.startswith("CVE-")] or [rec["id"]],
                "summary": f"GitHub advisory twin of {rec['id']}",
                "affected": rec["affected"],
                "severity": [{"type": "CVSS_V3", "score": vectors[i % len(vectors)]}],
                "database_specific": {"severity": "HIGH"},
            }
        )
        rec.setdefault("aliases", []).append(ghsa)
    malware = {
        "id": "MAL-2022-7426",
        "modified": "2023-01-01T00:00:00Z",
        "summary": "Malicious code in torchtriton (PyPI)",
        "affected": [
            {"package": {"ecosystem": "PyPI", "name": "torchtriton"}, "versions": ["3.0.0"]}
        ],
    }
    return [*records, *twins, malware]


def write_zip(records: list[dict[str, Any]], path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for rec in records:
            z.writestr(f"{rec['id']}.json", json.dumps(rec))


# ----------------------------------------------------------------------------- lockfile


def _canonical(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def build_lockfile(records: list[dict[str, Any]], path: Path, size: int = 260) -> list[str]:
    """requirements.txt of real names and versions; returns its `name==version` lines."""
    from packaging.version import InvalidVersion, Version

    by_package: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        for aff in rec.get("affected", []):
            pkg = aff.get("package", {})
            if pkg.get("ecosystem") == "PyPI":
                by_package.setdefault(_canonical(pkg["name"]), []).append(aff)
    rng = random.Random(2024)
    names = sorted(n for n in by_package if n != "torchtriton")
    chosen = rng.sample(names, min(size, len(names)))
    lines = []
    for name in sorted(chosen):
        affs = by_package[name]
        listed = [v for a in affs for v in a.get("versions") or []]
        fixed = [
            e["fixed"]
            for a in affs
            for r in a.get("ranges") or []
            for e in r.get("events") or []
            if "fixed" in e
        ]
        pool = listed if (rng.random() < 0.6 or not fixed) else fixed
        valid = []
        for v in pool:
            try:
                Version(v)
                valid.append(v)
            except InvalidVersion:
                pass
        if valid:
            lines.append(f"{name}=={rng.choice(sorted(set(valid)))}")
    lines.append("torchtriton==3.0.0")
    lines += [f"{n}=={v}" for n, v in CLEAN if _canonical(n) not in by_package]
    path.write_text("".join(f"{line}\n" for line in lines))
    return lines


# ----------------------------------------------------------------------------- OSV server


def _server_affects(rec: dict[str, Any], name: str, version: str) -> bool:
    """OSV matching as the schema defines it: in the versions list or in an ECOSYSTEM range."""
    from packaging.version import InvalidVersion, Version

    try:
        v = Version(version)
    except InvalidVersion:
        v = None
    for aff in rec.get("affected", []):
        pkg = aff.get("package", {})
        if pkg.get("ecosystem") != "PyPI" or _canonical(pkg.get("name", "")) != name:
            continue
        for item in aff.get("versions") or []:
            try:
                if item == version or (v is not None and Version(item) == v):
                    return True
            except InvalidVersion:
                continue
        if v is None:
            continue
        for rng in aff.get("ranges") or []:
            if rng.get("type") != "ECOSYSTEM":
                continue
            state = False
            events = []
            for e in rng.get("events", []):
                ((kind, at),) = e.items()
                events.append((Version("0") if at == "0" else Version(at), kind, at))
            for at_v, kind, at in sorted(events, key=lambda t: (t[0], t[1] != "introduced")):
                if kind == "introduced" and (at == "0" or v >= at_v):
                    state = True
                elif (kind == "fixed" and v >= at_v) or (kind == "last_affected" and v > at_v):
                    state = False
            if state:
                return True
    return False


class OsvServer:
    """POST /v1/query, POST /v1/querybatch, GET /v1/vulns/{id} on 127.0.0.1."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.by_id = {r["id"]: r for r in records}
        self.by_package: dict[str, list[dict[str, Any]]] = {}
        for rec in records:
            for aff in rec.get("affected", []):
                name = _canonical(aff.get("package", {}).get("name", ""))
                bucket = self.by_package.setdefault(name, [])
                if not bucket or bucket[-1] is not rec:
                    bucket.append(rec)
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _read(self) -> Any:
                length = int(self.headers.get("Content-Length", "0"))
                return json.loads(self.rfile.read(length) or b"{}")

            def do_POST(self) -> None:
                server.requests += 1
                if self.path == "/v1/query":
                    self._send(200, server.query(self._read()))
                elif self.path == "/v1/querybatch":
                    queries = self._read().get("queries", [])
                    results = [
                        {"vulns": [{"id": v["id"], "modified": v.get("modified")}
                                   for v in server.query(q).get("vulns", [])]}
                        for q in queries
                    ]  # fmt: skip
                    self._send(200, {"results": results})
                else:
                    self._send(404, {"message": "not found"})

            def do_GET(self) -> None:
                server.requests += 1
                prefix = "/v1/vulns/"
                rec = (
                    server.by_id.get(self.path[len(prefix) :])
                    if self.path.startswith(prefix)
                    else None
                )
                self._send(200 if rec else 404, rec or {"message": "not found"})

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def query(self, q: dict[str, Any]) -> dict[str, Any]:
        pkg = q.get("package", {})
        name, version = _canonical(pkg.get("name", "")), q.get("version", "")
        hits = [r for r in self.by_package.get(name, []) if _server_affects(r, name, version)]
        return {"vulns": hits} if hits else {}

    def __enter__(self) -> OsvServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ----------------------------------------------------------------------------- tools


def ensure_pip_audit(reinstall: bool) -> Path:
    exe = PEER_VENV / "bin" / "pip-audit"
    if exe.exists() and not reinstall:
        return exe
    if PEER_VENV.exists():
        shutil.rmtree(PEER_VENV)
    log(f"creating {PEER_VENV.relative_to(REPO_ROOT)} with pip-audit ...")
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run(
        [str(PEER_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "pip-audit"], check=True
    )
    return exe


CPU: dict[str, float] = {}  # CPU seconds (user + system) of the best timed run, by tool


def _timed(
    cmd: list[str], env: dict[str, str] | None = None, tool: str = ""
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall clock of the command; its CPU time (robust to a busy machine) goes to CPU[tool]."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if tool:
        CPU[tool] = min(CPU.get(tool, float("inf")), cpu)
    return wall, proc


def run_pip_audit(
    exe: Path, req: Path, url: str, repeat: int
) -> tuple[float, dict[str, set[str]], int]:
    cache = Path(tempfile.mkdtemp(prefix="pip-audit-cache-"))
    best = float("inf")
    out: dict[str, Any] = {}
    for _ in range(repeat):
        seconds, proc = _timed(
            [str(exe), "-r", str(req), "--no-deps", "--disable-pip", "-s", "osv",
             "--osv-url", f"{url}/v1/query", "-f", "json", "--progress-spinner", "off",
             "--cache-dir", str(cache), "--timeout", "30"],
            tool="pip-audit",
        )  # fmt: skip
        if proc.returncode not in (0, 1):
            raise SystemExit(f"pip-audit failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        best = min(best, seconds)
        out = json.loads(proc.stdout)
    shutil.rmtree(cache, ignore_errors=True)
    found: dict[str, set[str]] = {}
    deps = out.get("dependencies", [])
    for dep in deps:
        for vuln in dep.get("vulns", []):
            found.setdefault(_canonical(dep["name"]), set()).update(
                [vuln["id"], *vuln.get("aliases", [])]
            )
    return best, found, len(deps)


def run_secmlops(
    req: Path, fixture: Path, repeat: int
) -> tuple[float, float, dict[str, set[str]], int, dict[str, Any]]:
    db = Path(tempfile.mkdtemp(prefix="secmlops-db-"))
    env = {**os.environ, "SECMLOPS_DB": str(db), "NO_COLOR": "1"}
    python = str(PROJECT_PYTHON if PROJECT_PYTHON.exists() else sys.executable)
    import_seconds, proc = _timed(
        [python, "-m", "secmlops", "db", "update", "--from", str(fixture)], env, "import"
    )
    if proc.returncode != 0:
        raise SystemExit(f"secmlops db update failed:\n{proc.stderr}")
    best = float("inf")
    doc: dict[str, Any] = {}
    for _ in range(repeat):
        seconds, proc = _timed(
            [python, "-m", "secmlops", "scan", "deps", str(req), "-f", "json", "-q"],
            env,
            "secmlops",
        )
        if proc.returncode not in (0, 1):
            raise SystemExit(
                f"secmlops scan deps failed ({proc.returncode}):\n{proc.stderr}\n{proc.stdout[:2000]}"
            )
        best = min(best, seconds)
        doc = json.loads(proc.stdout)
    shutil.rmtree(db, ignore_errors=True)
    found: dict[str, set[str]] = {}
    for f in doc["findings"]:
        if f["rule_id"] in ("DEPS-VULN", "DEPS-MALICIOUS") and "id" in f["evidence"]:
            name = f["location"]["package"].split("==")[0]
            found.setdefault(name, set()).update([f["evidence"]["id"], *f["evidence"]["aliases"]])
    counts: dict[str, int] = {}
    for f in doc["findings"]:
        counts[f["rule_id"]] = counts.get(f["rule_id"], 0) + 1
    return import_seconds, best, found, len(doc["findings"]), counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per tool (best kept)")
    parser.add_argument("--reinstall", action="store_true", help="recreate the pip-audit venv")
    args = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    records, origin = load_advisories()
    records = add_twins_and_malware(records)
    fixture = WORK / "records.zip"
    write_zip(records, fixture)
    req = WORK / "requirements.txt"
    lines = build_lockfile(records, req)
    log(f"records:  {len(records)} OSV records from {origin} (+ GHSA twins, MAL record)")
    log(f"lockfile: {req.relative_to(REPO_ROOT)}: {len(lines)} pinned packages")

    exe = ensure_pip_audit(args.reinstall)
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout.strip()
    with OsvServer(records) as server:
        pa_seconds, pa_found, pa_deps = run_pip_audit(exe, req, server.url, args.repeat)
        log(f"loopback OSV server {server.url}: {server.requests} requests served")
    imp_seconds, sm_seconds, sm_found, _, counts = run_secmlops(req, fixture, args.repeat)

    pa_ids = sum(len(v) for v in pa_found.values())
    sm_ids = sum(len(v) for v in sm_found.values())
    identical = pa_found == sm_found
    log("")
    pa_cpu, sm_cpu, imp_cpu = CPU["pip-audit"], CPU["secmlops"], CPU["import"]
    log(f"{'tool':28} {'wall s':>8} {'cpu s':>7} {'vulnerable pkgs':>16} {'ids+aliases':>12}")
    log(f"{version:28} {pa_seconds:8.2f} {pa_cpu:7.2f} {len(pa_found):16d} {pa_ids:12d}")
    log(
        f"{'secmlops scan deps':28} {sm_seconds:8.2f} {sm_cpu:7.2f} {len(sm_found):16d} {sm_ids:12d}"
    )
    log(f"{'secmlops db update (once)':28} {imp_seconds:8.2f} {imp_cpu:7.2f}")
    log(
        f"ratio pip-audit / secmlops scan: wall {pa_seconds / sm_seconds:.1f}x, "
        f"cpu {pa_cpu / sm_cpu:.1f}x (pip-audit's cpu excludes the OSV server's work)"
    )
    log(f"pip-audit audited {pa_deps} packages; secmlops findings by rule: {counts}")
    if identical:
        log("vulnerability sets: IDENTICAL")
    else:
        log("vulnerability sets: DIFFERENT")
        for name in sorted(set(pa_found) | set(sm_found)):
            a, b = pa_found.get(name, set()), sm_found.get(name, set())
            if a != b:
                log(f"  {name}: only pip-audit {sorted(a - b)}  only secmlops {sorted(b - a)}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "records": len(records),
                    "packages": len(lines),
                    "pip_audit": {"version": version, "seconds": pa_seconds, "cpu_seconds": pa_cpu, "vulnerable_packages": len(pa_found), "ids": pa_ids},
                    "secmlops": {"seconds": sm_seconds, "cpu_seconds": sm_cpu, "import_seconds": imp_seconds, "vulnerable_packages": len(sm_found), "ids": sm_ids, "findings": counts},
                    "identical": identical,
                },
                indent=2,
            )
        )  # fmt: skip
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
