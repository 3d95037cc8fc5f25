#!/usr/bin/env python3
"""Side-by-side benchmark of secret scanners: secmlops, detect-secrets and CredSweeper, one run.

Usage::

    .venv/bin/python benchmarks/secrets.py                    # detection + >=100 MB speed run
    .venv/bin/python benchmarks/secrets.py --skip-speed       # detection only (a minute)
    .venv/bin/python benchmarks/secrets.py --speed-mb 20      # smaller speed repository
    .venv/bin/python benchmarks/secrets.py --json out.json    # also write every number as JSON

Peers are installed by this script into ``benchmarks/.venv-peers-secrets`` (``pip install
detect-secrets credsweeper``), never into the project environment.

Detection corpus
================
Built here with a fixed seed under ``benchmarks/.work/secrets/corpus``: realistic files of many
kinds (.py, .env, .yaml, .json, .ipynb, .tf, Dockerfile, .md, .log, .sh, .ini, .js) with planted,
format-valid FAKE secrets (tokens with valid CRC32 checksums, decodable PyPI macaroons, freshly
generated RSA/EC/Ed25519/OpenSSH keys, signed JWTs, ...) and hard look-alikes (hashes, UUIDs,
vendor documentation examples, placeholders, environment-variable references, GitHub-shaped
strings with a wrong checksum, public keys, Stripe test keys, base64 images in notebooks).

Scoring is by line: a planted secret is found when a tool reports any line of it (a PEM block
spans several lines); every other (file, line) a tool reports is a false positive. Notebooks
are scored by file (tools disagree on line numbers inside JSON): a notebook with a planted
secret is found when the tool reports anything in it; any report in a notebook without one is a
false positive.

Speed
=====
A repository of >= 100 MB of real code text (the Python standard library and the project's
installed packages, copied; plus the detection corpus), scanned by each tool in one call with
its default parallelism (secmlops: one worker per core; detect-secrets: its own pool;
CredSweeper: ``--jobs`` = cores). Wall clock of the whole process, bounded by
``--speed-timeout`` (a tool that runs out of time gets an upper bound "< N MB/s").
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import string
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO_ROOT / "benchmarks"
WORK = BENCH_DIR / ".work" / "secrets"
PEER_VENV = BENCH_DIR / ".venv-peers-secrets"
PROJECT_PY = REPO_ROOT / ".venv" / "bin" / "python"

# this file shares its name with the stdlib module `secrets`: keep its folder off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(REPO_ROOT))
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from tests.scan.secrets import fakes  # noqa: E402

# --- corpus --------------------------------------------------------------------------------------


@dataclass
class Planted:
    path: str
    first: int
    last: int
    kind: str


@dataclass
class Corpus:
    root: Path
    secrets: list[Planted] = field(default_factory=list)
    benign_lines: int = 0
    files: int = 0


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _b64(rng: random.Random, n: int) -> str:
    return base64.b64encode(rng.randbytes(n)).decode()


def _secret_lines(rng: random.Random, style: str) -> list[tuple[str, list[str]]]:
    """(kind, lines) of one planted secret in the syntax of `style` (py, env, yaml, ...)."""
    token_kinds = list(fakes.TOKENS)
    choice = rng.random()
    if choice < 0.55:
        kind = rng.choice(token_kinds)
        value = fakes.TOKENS[kind](rng)
        names = {
            "SECRET-GITHUB-TOKEN": "GITHUB_TOKEN",
            "SECRET-GITHUB-FINE-GRAINED-TOKEN": "GH_PAT",
            "SECRET-GITLAB-TOKEN": "GITLAB_TOKEN",
            "SECRET-NPM-TOKEN": "NPM_TOKEN",
            "SECRET-PYPI-TOKEN": "TWINE_PASSWORD",
            "SECRET-HUGGINGFACE-TOKEN": "HF_TOKEN",
            "SECRET-OPENAI-KEY": "OPENAI_API_KEY",
            "SECRET-ANTHROPIC-KEY": "ANTHROPIC_API_KEY",
            "SECRET-SLACK-TOKEN": "SLACK_BOT_TOKEN",
            "SECRET-SLACK-WEBHOOK": "SLACK_WEBHOOK_URL",
            "SECRET-STRIPE-KEY": "STRIPE_SECRET_KEY",
            "SECRET-SENDGRID-KEY": "SENDGRID_API_KEY",
            "SECRET-AWS-ACCESS-KEY": "AWS_ACCESS_KEY_ID",
            "SECRET-GCP-API-KEY": "GOOGLE_API_KEY",
            "SECRET-AZURE-CLIENT-SECRET": "AZURE_CLIENT_SECRET",
            "SECRET-JWT": "SERVICE_JWT",
        }
        # some tokens appear without a telling variable name (in logs, URLs, headers)
        name = names[kind] if rng.random() < 0.7 else rng.choice(["value", "cfg", "x", "data"])
        return [(kind, [_assign(style, name, value)])]
    if choice < 0.62:
        key_id, secret = fakes.aws_access_key(rng), fakes.aws_secret_key(rng)
        return [
            ("SECRET-AWS-ACCESS-KEY", [_assign(style, "aws_access_key_id", key_id)]),
            ("SECRET-AWS-SECRET-KEY", [_assign(style, "aws_secret_access_key", secret)]),
        ]
    if choice < 0.70:
        kind = rng.choice(["rsa", "ec", "ed25519", "openssh", "pgp"])
        pem = fakes.pgp_private_block(rng) if kind == "pgp" else fakes.private_key_pem(kind)
        return [("SECRET-PRIVATE-KEY", pem.rstrip("\n").splitlines())]
    if choice < 0.78:
        scheme = rng.choice(["postgresql", "mysql", "mongodb+srv", "redis", "amqp"])
        return [
            ("SECRET-DATABASE-URL", [_assign(style, "DATABASE_URL", fakes.db_url(rng, scheme))])
        ]
    if choice < 0.82:
        account = "".join(rng.choice(string.ascii_lowercase) for _ in range(10))
        conn = (
            f"DefaultEndpointsProtocol=https;AccountName={account};"
            f"AccountKey={fakes.azure_storage_key(rng)};EndpointSuffix=core.windows.net"
        )
        return [
            ("SECRET-AZURE-STORAGE-KEY", [_assign(style, "AZURE_STORAGE_CONNECTION_STRING", conn)])
        ]
    if choice < 0.85:
        if rng.random() < 0.5:
            return [
                (
                    "SECRET-TWILIO-API-KEY",
                    [_assign(style, "TWILIO_API_KEY", fakes.twilio_api_key(rng))],
                )
            ]
        return [("SECRET-TWILIO-API-KEY", [_assign(style, "twilio_auth_token", _hex(rng, 32))])]
    name = rng.choice(
        ["password", "db_password", "SECRET_KEY", "api_key", "client_secret", "auth_token",
         "MLFLOW_TRACKING_PASSWORD", "wandb_api_key", "access_token"]
    )  # fmt: skip
    value = fakes.password(rng) if "pass" in name.lower() else _b64(rng, 24).rstrip("=")
    if name == "wandb_api_key":
        value = _hex(rng, 40)
    return [("SECRET-GENERIC-ASSIGNMENT", [_assign(style, name, value)])]


# How each kind of file assigns a value ({n}: name as written, {l}: lower-cased name, {v}: value)
_ASSIGN = {
    "py": '{l} = "{v}"',
    "env": "{n}={v}",
    "sh": "export {n}={v}",
    "yaml": "  {l}: {v}",
    "json": '  "{l}": "{v}",',
    "tf": '  {l} = "{v}"',
    "docker": "ENV {n}={v}",
    "ini": "{l} = {v}",
    "js": "const {n} = '{v}';",
    "log": "2024-05-01 12:00:00 DEBUG settings {l}={v}",
    "md": "    {n}={v}",
}


def _assign(style: str, name: str, value: str) -> str:
    return _ASSIGN[style].format(n=name, l=name.lower(), v=value)


def _benign_lines(rng: random.Random, style: str) -> list[str]:
    """Hard look-alikes: formats and names of secrets, without a credential."""
    ghp_bad = "gh" + "p_" + "".join(rng.choice(fakes.ALNUM) for _ in range(36))
    pub = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
        .rstrip("\n")
        .splitlines()
    )
    options: list[Callable[[], list[str]]] = [
        lambda: [_assign(style, "sha256", _hex(rng, 64))],
        lambda: [_assign(style, "checksum", _hex(rng, 40))],
        lambda: [_assign(style, "commit", _hex(rng, 40))],
        lambda: [_assign(style, "run_id", str(uuid.UUID(int=rng.getrandbits(128))))],
        lambda: [_assign(style, "tenant_id", str(uuid.UUID(int=rng.getrandbits(128))))],
        lambda: [_assign(style, "AWS_ACCESS_KEY_ID", "AKIA" + "IOSFODNN7EXAMPLE")],
        lambda: [_assign(style, "AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY")],
        lambda: [_assign(style, "password", "changeme")],
        lambda: [_assign(style, "api_key", "<your-api-key>")],
        lambda: [_assign(style, "OPENAI_API_KEY", "s" + "k-...your-key-here")],
        lambda: [_assign(style, "token", "x" * 40)],
        lambda: [_assign(style, "SECRET_KEY", "${SECRET_KEY}")],
        lambda: ['password = os.environ["DB_PASSWORD"]'],
        lambda: ['api_key = os.getenv("OPENAI_API_KEY")'],
        lambda: ["token: ${{ secrets.HF_TOKEN }}"],
        lambda: [_assign(style, "DATABASE_URL", "postgresql://user:password@localhost:5432/app")],
        lambda: [_assign(style, "DATABASE_URL", "postgresql://${DB_USER}:${DB_PASS}@db:5432/app")],
        lambda: [_assign(style, "stripe_key", "s" + "k_test_" + "".join(rng.choice(fakes.ALNUM) for _ in range(24)))],
        lambda: [_assign(style, "github_token", ghp_bad)],
        lambda: ["-----BEGIN PUBLIC KEY-----", *pub[1:-1], "-----END PUBLIC KEY-----"],
        lambda: [f"ssh-ed25519 {_b64(rng, 51)} ml@build-host"],
        lambda: [_assign(style, "integrity", "sha512-" + _b64(rng, 64))],
        lambda: ["max_tokens = 4096", 'pad_token = "<|endoftext|>"'],
        lambda: ['tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")'],
        lambda: ["jwt_example = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c'"],
        lambda: [_assign(style, "image", _b64(rng, 48))],
        lambda: [_assign(style, "password_hash", "$2b$12$" + _b64(rng, 40)[:53])],
        lambda: [_assign(style, "api_key", "YOUR_API_KEY_HERE")],
        lambda: ["secret_name = 'prod/ml/db-password'"],
        lambda: [_assign(style, "auth_token", "{{ vault_auth_token }}")],
    ]  # fmt: skip
    return rng.choice(options)()


_FILLER_PY = [
    "import os",
    "import numpy as np",
    "from pathlib import Path",
    "",
    "def load_dataset(path: Path) -> list[dict]:",
    '    """Read the training split."""',
    "    with path.open() as f:",
    "        return [json.loads(line) for line in f]",
    "",
    "class Trainer:",
    "    def __init__(self, model, lr: float = 3e-4, epochs: int = 10):",
    "        self.model = model",
    "        self.lr = lr",
    "    def step(self, batch):",
    "        loss = self.model(batch).mean()",
    "        loss.backward()",
    "        return float(loss)",
    'LOG = logging.getLogger("train")',
    "BATCH_SIZE = 64",
]
_FILLER = {
    "py": _FILLER_PY,
    "env": ["ENV=production", "LOG_LEVEL=info", "WORKERS=4", "MODEL_NAME=bert-base", "REGION=eu-west-1"],
    "sh": ["#!/bin/sh", "set -eu", "python train.py --epochs 3", 'echo "done"', "cd /srv/app"],
    "yaml": ["training:", "  epochs: 10", "  lr: 0.0003", "  batch_size: 32", "model:", "  name: resnet50", "  dropout: 0.1"],
    "json": ['  "epochs": 10,', '  "learning_rate": 0.001,', '  "optimizer": "adamw",', '  "seed": 42,'],
    "tf": ['resource "aws_s3_bucket" "models" {', '  bucket = "ml-models-prod"', "}", 'variable "region" {', '  default = "us-east-1"', "}"],
    "docker": ["FROM python:3.11-slim", "WORKDIR /app", "COPY requirements.txt .", "RUN pip install -r requirements.txt", 'CMD ["python", "serve.py"]'],
    "ini": ["[server]", "host = 0.0.0.0", "port = 8080", "[logging]", "level = INFO"],
    "js": ["const express = require('express');", "const app = express();", "app.listen(3000);", "function handler(req, res) { res.send('ok'); }"],
    "log": ["2024-05-01 12:00:00 INFO epoch 1 loss=0.53", "2024-05-01 12:00:01 INFO epoch 2 loss=0.41", "2024-05-01 12:00:02 WARN lr decayed"],
    "md": ["# Training service", "", "Run `make train` to start.", "", "## Configuration", "See `config.yaml`."],
}  # fmt: skip
_STYLES = {
    "py": ".py", "env": ".env", "sh": ".sh", "yaml": ".yaml", "json": ".json", "tf": ".tf",
    "docker": "Dockerfile", "ini": ".ini", "js": ".js", "log": ".log", "md": ".md",
}  # fmt: skip


def build_corpus(root: Path, n_files: int, seed: int) -> Corpus:
    rng = random.Random(seed)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    corpus = Corpus(root)
    for i in range(n_files):
        style = rng.choice(list(_STYLES))
        folder = root / rng.choice(["src", "config", "deploy", "docs", "ops", "notebooks", "."])
        folder.mkdir(parents=True, exist_ok=True)
        suffix = _STYLES[style]
        name = f"Dockerfile.{i}" if suffix == "Dockerfile" else f"file_{i}{suffix}"
        path = folder / name
        lines: list[str] = []
        planted: list[tuple[str, int, int]] = []
        filler = _FILLER[style]
        for _ in range(rng.randrange(6, 60)):
            lines.append(rng.choice(filler))
            roll = rng.random()
            if roll < 0.04:
                for kind, block in _secret_lines(rng, style):
                    first = len(lines) + 1
                    lines.extend(block)
                    planted.append((kind, first, len(lines)))
            elif roll < 0.10:
                lines.extend(_benign_lines(rng, style))
                corpus.benign_lines += 1
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        rel = str(path.relative_to(root))
        corpus.secrets.extend(Planted(rel, a, b, k) for k, a, b in planted)
        corpus.files += 1
    _add_notebooks(root, rng, corpus)
    _add_gcp_files(root, rng, corpus)
    return corpus


def _add_notebooks(root: Path, rng: random.Random, corpus: Corpus) -> None:
    folder = root / "notebooks"
    folder.mkdir(exist_ok=True)
    for i in range(40):
        cells: list[dict[str, Any]] = [
            {"cell_type": "code", "source": ["import pandas as pd\n", "df = pd.read_csv('x.csv')\n"],
             "outputs": [{"output_type": "display_data",
                          "data": {"image/png": _b64(rng, 3000), "text/plain": ["<Figure>"]}}],
             "metadata": {}, "execution_count": 1},
        ]  # fmt: skip
        has_secret = i % 2 == 0
        if has_secret:
            kind = rng.choice(list(fakes.TOKENS))
            value = fakes.TOKENS[kind](rng)
            if rng.random() < 0.5:
                cells.append({"cell_type": "code", "source": [f'token = "{value}"\n'], "outputs": [],
                              "metadata": {}, "execution_count": 2})  # fmt: skip
            else:
                cells.append({"cell_type": "code", "source": ["!env | grep TOKEN\n"], "metadata": {},
                              "execution_count": 2,
                              "outputs": [{"output_type": "stream", "name": "stdout",
                                           "text": [f"API_TOKEN={value}\n"]}]})  # fmt: skip
        else:
            cells.append({"cell_type": "code", "source": ['hf_token = os.environ["HF_TOKEN"]\n'],
                          "outputs": [], "metadata": {}, "execution_count": 2})  # fmt: skip
        nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        path = folder / f"analysis_{i}.ipynb"
        path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
        corpus.files += 1
        if has_secret:
            corpus.secrets.append(Planted(str(path.relative_to(root)), 0, 0, "notebook"))


def _add_gcp_files(root: Path, rng: random.Random, corpus: Corpus) -> None:
    folder = root / "deploy"
    folder.mkdir(exist_ok=True)
    for i in range(8):
        text = fakes.gcp_service_account(rng)
        path = folder / f"sa-{i}.json"
        path.write_text(text + "\n", encoding="utf-8")
        lines = text.splitlines()
        line = next(n for n, s in enumerate(lines, 1) if '"private_key"' in s)
        corpus.secrets.append(
            Planted(str(path.relative_to(root)), line, line, "SECRET-GCP-SERVICE-ACCOUNT-KEY")
        )
        corpus.files += 1


# --- running the tools ---------------------------------------------------------------------------


def ensure_peers(log: Callable[[str], None]) -> dict[str, str]:
    """Install detect-secrets and CredSweeper into their venv; returns tool -> problem."""
    problems: dict[str, str] = {}
    py = PEER_VENV / "bin" / "python"
    if not py.exists():
        log(f"creating {PEER_VENV.relative_to(REPO_ROOT)} ...")
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    for tool, exe in (("detect-secrets", "detect-secrets"), ("credsweeper", "credsweeper")):
        if (PEER_VENV / "bin" / exe).exists():
            continue
        log(f"installing {tool} ...")
        done = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", tool], capture_output=True, text=True
        )
        if done.returncode != 0:
            problems[tool] = done.stderr.strip().splitlines()[-1] if done.stderr else "pip failed"
    return problems


def peer_version(tool: str) -> str:
    out = subprocess.run(
        [str(PEER_VENV / "bin" / "python"), "-m", "pip", "show", tool],
        capture_output=True,
        text=True,
    ).stdout
    return next(
        (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Version")), "?"
    )


@dataclass
class Run:
    tool: str
    seconds: float
    reported: set[tuple[str, int]]  # (relative path, line); line 0 = somewhere in the file
    timed_out: bool = False
    problem: str = ""


def _rel(path: str, root: Path) -> str:
    p = Path(path)
    if not p.is_absolute():
        p = (Path.cwd() / p) if not (root / p).exists() else root / p
    try:
        return str(p.resolve().relative_to(root.resolve()))
    except ValueError:
        return path


def run_secmlops(root: Path, jobs: int, timeout: float) -> Run:
    out = WORK / "secmlops.json"
    cmd = [str(PROJECT_PY), "-m", "secmlops", "scan", "secrets", str(root), "-f", "json",
           "-o", str(out), "-q", "--jobs", str(jobs), "--fail-on", "critical"]  # fmt: skip
    started = time.perf_counter()
    try:
        subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Run("secmlops", timeout, set(), timed_out=True)
    seconds = time.perf_counter() - started
    doc = json.loads(out.read_text())
    reported = set()
    for f in doc["findings"]:
        if f["rule_id"] == "SECRET-FILE-NOT-SCANNED":
            continue
        loc = f["location"]
        line = 0 if loc.get("member") else loc.get("line") or 0
        reported.add((_rel(loc["path"], root), line))
    return Run("secmlops", seconds, reported)


def run_detect_secrets(root: Path, timeout: float) -> Run:
    cmd = [str(PEER_VENV / "bin" / "detect-secrets"), "scan", "--all-files", "."]
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=root, text=True)
    except subprocess.TimeoutExpired:
        return Run("detect-secrets", timeout, set(), timed_out=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return Run("detect-secrets", seconds, set(), problem=done.stderr[-300:])
    doc = json.loads(done.stdout)
    reported = {
        (_rel(name, root), item["line_number"])
        for name, items in doc["results"].items()
        for item in items
    }
    return Run("detect-secrets", seconds, reported)


def run_credsweeper(root: Path, jobs: int, timeout: float) -> Run:
    out = WORK / "credsweeper.json"
    out.unlink(missing_ok=True)
    cmd = [str(PEER_VENV / "bin" / "credsweeper"), "--path", str(root), "--save-json", str(out),
           "--no-stdout", "--jobs", str(jobs)]  # fmt: skip
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, text=True)
    except subprocess.TimeoutExpired:
        return Run("credsweeper", timeout, set(), timed_out=True)
    seconds = time.perf_counter() - started
    if not out.exists():
        return Run("credsweeper", seconds, set(), problem=(done.stderr or done.stdout)[-300:])
    reported = set()
    for cred in json.loads(out.read_text()):
        for ld in cred.get("line_data_list", []):
            reported.add((_rel(ld["path"], root), int(ld.get("line_num", 0))))
    return Run("credsweeper", seconds, reported)


# --- scoring -------------------------------------------------------------------------------------


@dataclass
class Score:
    tp: int
    fn: int
    fp: int
    missed: dict[str, int]

    @property
    def recall(self) -> float:
        return self.tp / max(1, self.tp + self.fn)

    @property
    def precision(self) -> float:
        return self.tp / max(1, self.tp + self.fp)


def score(corpus: Corpus, run: Run) -> Score:
    notebooks_with_secret = {p.path for p in corpus.secrets if p.kind == "notebook"}
    per_line = [p for p in corpus.secrets if p.kind != "notebook"]
    reported_files = {path for path, _ in run.reported}
    tp = fn = 0
    missed: dict[str, int] = {}
    matched: set[tuple[str, int]] = set()
    for p in per_line:
        hits = {(p.path, n) for n in range(p.first, p.last + 1)} & run.reported
        if hits:
            tp += 1
            matched |= hits
        else:
            fn += 1
            missed[p.kind] = missed.get(p.kind, 0) + 1
    for nb in notebooks_with_secret:
        if nb in reported_files:
            tp += 1
        else:
            fn += 1
            missed["notebook"] = missed.get("notebook", 0) + 1
    fp_lines = {
        (path, line)
        for path, line in run.reported
        if (path, line) not in matched and not path.endswith(".ipynb")
    }
    fp_notebooks = {
        path
        for path, _ in run.reported
        if path.endswith(".ipynb") and path not in notebooks_with_secret
    }
    return Score(tp, fn, len(fp_lines) + len(fp_notebooks), missed)


# --- speed repository ----------------------------------------------------------------------------


def build_speed_repo(root: Path, target_mb: float, corpus_root: Path) -> tuple[int, int]:
    """Copy real code text (stdlib, installed packages) until `target_mb`; (files, bytes)."""
    stamp = root / ".stamp"
    if stamp.exists() and json.loads(stamp.read_text())["target_mb"] == target_mb:
        info = json.loads(stamp.read_text())
        return info["files"], info["bytes"]
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    shutil.copytree(corpus_root, root / "corpus")
    sources = [Path(os.__file__).parent, REPO_ROOT / ".venv" / "lib"]
    wanted = (
        ".py",
        ".md",
        ".txt",
        ".json",
        ".yaml",
        ".yml",
        ".cfg",
        ".toml",
        ".rst",
        ".pyi",
        ".js",
    )
    total = sum(f.stat().st_size for f in (root / "corpus").rglob("*") if f.is_file())
    files = 0
    limit = int(target_mb * 1e6)
    for src in sources:
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "site-packages-x"))
            for name in sorted(filenames):
                if total >= limit:
                    break
                full = Path(dirpath) / name
                if not name.endswith(wanted) or full.is_symlink():
                    continue
                size = full.stat().st_size
                if size > 2_000_000:
                    continue
                dest = root / "code" / full.relative_to(src.parent)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(full, dest)
                total += size
                files += 1
    stamp.write_text(json.dumps({"target_mb": target_mb, "files": files, "bytes": total}))
    return files, total


# --- report --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400, help="text files in the detection corpus")
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--speed-mb", type=float, default=105.0)
    parser.add_argument("--speed-timeout", type=float, default=2400.0)
    parser.add_argument("--tools", default="secmlops,detect-secrets,credsweeper")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    tools = args.tools.split(",")
    cores = os.cpu_count() or 1

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    WORK.mkdir(parents=True, exist_ok=True)
    problems = ensure_peers(log)
    corpus = build_corpus(WORK / "corpus", args.files, args.seed)
    log(f"corpus: {corpus.files} files, {len(corpus.secrets)} planted secrets, "
        f"{corpus.benign_lines} look-alike snippets")  # fmt: skip
    versions = {
        "detect-secrets": peer_version("detect-secrets"),
        "credsweeper": peer_version("credsweeper"),
    }
    results: dict[str, Any] = {"corpus": {"files": corpus.files, "secrets": len(corpus.secrets),
                                          "lookalikes": corpus.benign_lines},
                               "versions": versions, "problems": problems, "tools": {}}  # fmt: skip
    runners: dict[str, Callable[[Path, float], Run]] = {
        "secmlops": lambda root, t: run_secmlops(root, cores, t),
        "detect-secrets": run_detect_secrets,
        "credsweeper": lambda root, t: run_credsweeper(root, cores, t),
    }
    print("\n== Detection (labelled corpus) ==")
    print(
        f"{'tool':16} {'version':10} {'recall':>7} {'precision':>9} {'TP':>4} {'FN':>4} {'FP':>4}  missed"
    )
    scores: dict[str, Score] = {}
    for tool in tools:
        if tool in problems:
            print(f"{tool:16} not installed: {problems[tool]}")
            continue
        run = runners[tool](corpus.root, 1800.0)
        if run.problem or run.timed_out:
            print(f"{tool:16} failed: {run.problem or 'timeout'}")
            continue
        s = score(corpus, run)
        scores[tool] = s
        version = versions.get(tool, "dev")
        print(f"{tool:16} {version:10} {s.recall:7.3f} {s.precision:9.3f} {s.tp:4} {s.fn:4} {s.fp:4}  "
              f"{json.dumps(s.missed, sort_keys=True)}")  # fmt: skip
        results["tools"][tool] = {"recall": s.recall, "precision": s.precision, "tp": s.tp,
                                  "fn": s.fn, "fp": s.fp, "missed": s.missed,
                                  "detection_seconds": run.seconds}  # fmt: skip
    if "secmlops" in scores:
        base = scores["secmlops"]
        for tool, s in scores.items():
            if tool != "secmlops":
                print(f"  secmlops vs {tool}: recall {base.recall:.3f} vs {s.recall:.3f}, "
                      f"precision {base.precision:.3f} vs {s.precision:.3f}")  # fmt: skip
    if args.skip_speed:
        _finish(results, args.json)
        return
    print(f"\n== Speed (repository of >= {args.speed_mb:.0f} MB of code text) ==")
    files, size = build_speed_repo(WORK / "speed", args.speed_mb, corpus.root)
    mb = size / 1e6
    print(f"repository: {files} files, {mb:.1f} MB; {cores} cores")
    for path in (WORK / "speed").rglob("*"):  # warm the page cache
        if path.is_file():
            path.read_bytes()
    speeds: dict[str, float] = {}
    speed_runs = [("secmlops", lambda t: run_secmlops(WORK / "speed", cores, t)),
                  ("secmlops --jobs 1", lambda t: run_secmlops(WORK / "speed", 1, t)),
                  ("detect-secrets", lambda t: run_detect_secrets(WORK / "speed", t)),
                  ("credsweeper", lambda t: run_credsweeper(WORK / "speed", cores, t))]  # fmt: skip
    for label, fn in speed_runs:
        if label.split()[0] not in tools or label.split()[0] in problems:
            continue
        log(f"speed: {label} ...")
        run = fn(args.speed_timeout)
        rate = mb / run.seconds
        speeds[label] = rate
        bound = "<" if run.timed_out else " "
        note = "timed out" if run.timed_out else (run.problem[:60] if run.problem else "")
        print(f"{label:20} {run.seconds:9.1f} s  {bound}{rate:7.2f} MB/s  {note}", flush=True)
        results["tools"].setdefault(label, {})["speed"] = {
            "seconds": run.seconds,
            "mb_per_s": rate,
            "timed_out": run.timed_out,
            "mb": mb,
        }
    if "secmlops" in speeds:
        for label, rate in speeds.items():
            if not label.startswith("secmlops"):
                # a peer that timed out has an upper-bound rate: the ratio is a lower bound
                at_least = ">=" if results["tools"][label]["speed"]["timed_out"] else ""
                print(f"  secmlops is {at_least}{speeds['secmlops'] / rate:.1f}x {label}"
                      f" (--jobs 1: {at_least}{speeds.get('secmlops --jobs 1', 0) / rate:.1f}x)")  # fmt: skip
    _finish(results, args.json)


def _finish(results: dict[str, Any], path: Path | None) -> None:
    if path is not None:
        path.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
