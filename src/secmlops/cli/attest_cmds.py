"""`secmlops attest ...`, `secmlops verify-attestation` and `secmlops bom`."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from secmlops.cli.app import app
from secmlops.cli.options import ConfigOpt, FailOnOpt, FormatOpt, QuietOpt
from secmlops.cli.output import emit, gate, progress_bar, report_setup, write_output
from secmlops.errors import UsageError

attest_app = typer.Typer(
    help="Signed in-toto attestations (DSSE): provenance, scan results, metrics.",
    no_args_is_help=True,
)
app.add_typer(attest_app, name="attest")

SubjectOpt = typer.Option(
    ..., "--subject", "-s", help="Artifact the statement is about (file or folder). Repeatable."
)
KeyOpt = typer.Option(..., "--key", "-k", help="Private key (PEM) to sign with.")
PassphraseOpt = typer.Option(
    None, "--passphrase-env", help="Name of the environment variable holding the key passphrase."
)
OutOpt = typer.Option(
    None, "--output", "-o", help="Write the envelope here (default: stdout). Use .intoto.json."
)


def _load_key(key: Path, passphrase_env: str | None) -> Any:
    from secmlops.evidence.keys import load_private_key

    passphrase = None
    if passphrase_env:
        if passphrase_env not in os.environ:
            raise UsageError(
                f"environment variable {passphrase_env} is not set",
                hint="export it, or drop --passphrase-env for an unencrypted key",
            )
        passphrase = os.environ[passphrase_env].encode()
    return load_private_key(key, passphrase)


def _write_text(text: str, output: Path | None) -> None:
    write_output(text, output)


def _sign_and_write(
    subjects: list[Path],
    predicate_type: str,
    predicate: dict[str, Any],
    key: Path,
    passphrase_env: str | None,
    output: Path | None,
    quiet: bool,
) -> None:
    from secmlops.evidence.attest import make_statement, sign_envelope, subjects_for

    private_key = _load_key(key, passphrase_env)
    with progress_bar("hashing", quiet) as progress:
        statement = make_statement(subjects_for(subjects, progress), predicate_type, predicate)
    envelope = sign_envelope(statement, private_key)
    _write_text(json.dumps(envelope, indent=2) + "\n", output)
    if not quiet and output is not None:
        typer.echo(
            f"wrote {output}: {predicate_type} about {len(statement['subject'])} subject(s)",
            err=True,
        )


def _read_json_object(path: Path, expected: str) -> tuple[bytes, dict[str, Any]]:
    """The bytes of a JSON file and the object they hold; EvidenceError for anything else."""
    from secmlops.errors import EvidenceError

    try:
        raw = path.read_bytes()
        doc = json.loads(raw)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise EvidenceError(f"{path} is not JSON", hint=f"it should be {expected}") from None
    if not isinstance(doc, dict):
        raise EvidenceError(f"{path} is not {expected}")
    return raw, doc


def _parse_time(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{flag} {text!r} is not an ISO 8601 time", hint="e.g. 2025-01-31T12:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _key_values(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{flag} {item!r} is not NAME=VALUE")
        out[name.strip()] = value
    return out


def _packages(lockfile: Path | None, env: bool) -> list[Any]:
    from secmlops.evidence.packages import installed_packages, lockfile_packages

    if lockfile is not None and env:
        raise UsageError("use either --lockfile or --env, not both")
    if lockfile is not None:
        return lockfile_packages(lockfile)
    return installed_packages() if env else []


@attest_app.command("provenance")
def attest_provenance(
    subject: list[Path] = SubjectOpt,
    key: Path = KeyOpt,
    passphrase_env: str | None = PassphraseOpt,
    output: Path | None = OutOpt,
    dataset: list[Path] = typer.Option([], "--dataset", help="Training data (file or folder)."),
    base_model: list[Path] = typer.Option(
        [], "--base-model", help="Model the run started from (file or folder)."
    ),
    lockfile: Path | None = typer.Option(
        None, "--lockfile", help="Resolved packages from requirements.txt, poetry.lock or uv.lock."
    ),
    env: bool = typer.Option(
        True, "--env/--no-env", help="Resolved packages from this Python environment (default)."
    ),
    source: Path | None = typer.Option(
        Path("."), "--source", help="Git work tree whose HEAD commit built the model."
    ),
    no_git: bool = typer.Option(False, "--no-git", help="Do not record a source commit."),
    param: list[str] = typer.Option(
        [], "--param", help="External parameter of the run, NAME=VALUE. Repeatable."
    ),
    build_type: str | None = typer.Option(None, "--build-type", help="buildType URI."),
    builder_id: str | None = typer.Option(None, "--builder-id", help="runDetails.builder.id URI."),
    invocation_id: str | None = typer.Option(
        None, "--invocation-id", help="Id of the training run (recorded only when given)."
    ),
    started_on: str | None = typer.Option(None, "--started-on", help="ISO 8601 start time."),
    finished_on: str | None = typer.Option(None, "--finished-on", help="ISO 8601 end time."),
    quiet: bool = QuietOpt,
) -> None:
    """SLSA provenance v1 of a training run: its inputs by digest, signed."""
    from secmlops.evidence.attest import (
        DEFAULT_BUILD_TYPE,
        DEFAULT_BUILDER_ID,
        SLSA_PROVENANCE_V1,
        file_descriptors,
        git_descriptor,
        package_descriptor,
        provenance_predicate,
    )

    dependencies: list[dict[str, Any]] = []
    if not no_git and source is not None:
        commit = git_descriptor(source)
        if commit:
            dependencies.append(commit)
    for path in dataset:
        dependencies += file_descriptors(path, "dataset")
    for path in base_model:
        dependencies += file_descriptors(path, "base-model")
    dependencies += [package_descriptor(p) for p in _packages(lockfile, env and lockfile is None)]
    predicate = provenance_predicate(
        resolved_dependencies=dependencies,
        external_parameters=_key_values(param, "--param"),
        build_type=build_type or DEFAULT_BUILD_TYPE,
        builder_id=builder_id or DEFAULT_BUILDER_ID,
        invocation_id=invocation_id,
        started_on=_parse_time(started_on, "--started-on"),
        finished_on=_parse_time(finished_on, "--finished-on"),
    )
    _sign_and_write(subject, SLSA_PROVENANCE_V1, predicate, key, passphrase_env, output, quiet)


@attest_app.command("scan")
def attest_scan(
    report: Path = typer.Option(
        ..., "--report", "-r", help="A secmlops JSON report (scan ... --format json)."
    ),
    subject: list[Path] = SubjectOpt,
    key: Path = KeyOpt,
    passphrase_env: str | None = PassphraseOpt,
    output: Path | None = OutOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Sign a scan result about the artifacts it scanned."""
    import hashlib

    from secmlops.evidence.attest import SCAN_PREDICATE_V1, scan_predicate

    raw, doc = _read_json_object(report, "a secmlops JSON report (--format json --output FILE)")
    predicate = scan_predicate(doc, hashlib.sha256(raw).hexdigest())
    _sign_and_write(subject, SCAN_PREDICATE_V1, predicate, key, passphrase_env, output, quiet)


@attest_app.command("metrics")
def attest_metrics(
    subject: list[Path] = SubjectOpt,
    key: Path = KeyOpt,
    passphrase_env: str | None = PassphraseOpt,
    output: Path | None = OutOpt,
    metrics: Path | None = typer.Option(
        None, "--metrics", help='JSON object of metric name → number, e.g. {"accuracy": 0.93}.'
    ),
    metric: list[str] = typer.Option([], "--metric", help="NAME=NUMBER. Repeatable."),
    dataset: list[Path] = typer.Option(
        [], "--dataset", help="Evaluation data (file or folder), recorded by digest."
    ),
    evaluated_on: str | None = typer.Option(None, "--evaluated-on", help="ISO 8601 time."),
    quiet: bool = QuietOpt,
) -> None:
    """Sign evaluation metrics about a model and the data they were measured on."""
    from secmlops.evidence.attest import METRICS_PREDICATE_V1, file_descriptors, metrics_predicate

    values: dict[str, Any] = {}
    if metrics is not None:
        values.update(_read_json_object(metrics, "a JSON object of metric name → number")[1])
    for name, text in _key_values(metric, "--metric").items():
        try:
            values[name] = float(text)
        except ValueError:
            raise UsageError(f"--metric {name}={text!r}: not a number") from None
    descriptors = [d for path in dataset for d in file_descriptors(path, "evaluation-dataset")]
    predicate = metrics_predicate(
        values, datasets=descriptors, evaluated_on=_parse_time(evaluated_on, "--evaluated-on")
    )
    _sign_and_write(subject, METRICS_PREDICATE_V1, predicate, key, passphrase_env, output, quiet)


@app.command("verify-attestation")
def verify_attestation(
    attestation: Path = typer.Argument(..., help="A DSSE envelope (.intoto.json)."),
    key: list[Path] = typer.Option(
        ..., "--key", "-k", help="Trusted public key (PEM). Repeatable: any one must have signed."
    ),
    subject: list[Path] = typer.Option(
        [], "--subject", "-s", help="Artifact that must match the statement's subjects."
    ),
    predicate_type: str | None = typer.Option(
        None, "--predicate-type", help="Required predicate type URI."
    ),
    fmt: str | None = FormatOpt,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the report to this file instead of stdout."
    ),
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """Check an attestation's signature, predicate type and subject digests.

    Exit 0: verified; 1: a check failed (the findings say which file, key or type); 2: the
    attestation or a subject could not be read.
    """
    from secmlops.evidence.attest import check_attestation
    from secmlops.evidence.keys import load_public_key

    _, threshold, form = report_setup(config, fail_on, fmt, output)
    keys = [load_public_key(k) for k in key]
    report, statement = check_attestation(attestation, keys, subject, predicate_type)
    emit([report], form, output)
    code = gate([report], threshold)
    if not quiet and statement is not None and code == 0:
        typer.echo(
            f"verified: {statement.predicate_type}, {len(statement.subjects)} subject(s), "
            f"signed by key {statement.keyids[0][:16]}",
            err=True,
        )
    raise typer.Exit(code)


@app.command("bom")
def bom(
    path: Path = typer.Argument(..., help="The model: a file or a folder."),
    output: Path = typer.Option(..., "--output", "-o", help="Write the CycloneDX JSON BOM here."),
    card: Path | None = typer.Option(
        None, "--card", help="Model-card YAML: what the files cannot tell (docs/bom.md)."
    ),
    lockfile: Path | None = typer.Option(
        None, "--lockfile", help="Packages from requirements.txt, poetry.lock or uv.lock."
    ),
    env: bool = typer.Option(
        False, "--env", help="Packages from this Python environment (default without --lockfile)."
    ),
    fmt: str | None = FormatOpt,
    report_path: Path | None = typer.Option(
        None, "--report", help="Write the findings report here instead of stdout."
    ),
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """CycloneDX 1.6 ML-BOM of a model: hashes, model card, datasets, packages, dependencies.

    The BOM goes to --output; findings (BOM-INCOMPLETE with the missing card fields) go to
    stdout or --report in --format text|json|sarif.
    """
    from secmlops.evidence.bom import build_bom
    from secmlops.evidence.bom_card import load_card

    _, threshold, form = report_setup(config, fail_on, fmt, report_path)
    loaded = load_card(card) if card is not None else None
    packages = _packages(lockfile, env or lockfile is None)
    with progress_bar("hashing", quiet) as progress:
        result = build_bom(path, loaded, packages, card_path=card, progress=progress)
    _write_text(result.to_json(), output)
    emit([result.report], form, report_path)
    if not quiet:
        missing = f"; missing: {', '.join(result.missing)}" if result.missing else ""
        typer.echo(
            f"wrote {output}: {len(result.bom['components'])} components, model card "
            f"{result.completeness:.0%} complete{missing}",
            err=True,
        )
    raise typer.Exit(gate([result.report], threshold))
