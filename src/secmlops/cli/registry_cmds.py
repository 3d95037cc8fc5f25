"""`secmlops registry …`, `secmlops lineage`, `secmlops audit …`."""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from secmlops.cli.app import app, audit_app, registry_app
from secmlops.errors import UsageError

if TYPE_CHECKING:
    from secmlops.store.registry import Registry, VersionInfo

HomeOpt = typer.Option(
    None,
    "--home",
    help="Where the store and database live (default $SECMLOPS_HOME or ./.secmlops).",
)
DbOpt = typer.Option(
    None,
    "--db",
    help="Metadata database URL (default sqlite:///HOME/secmlops.db; or postgresql+psycopg://…).",
)
StoreOpt = typer.Option(
    None, "--store", help="Artifact store folder or fsspec URL (default HOME/store)."
)
ActorOpt = typer.Option(None, "--actor", help="Who acts (default $SECMLOPS_ACTOR or the OS user).")
RolesOpt = typer.Option(None, "--roles", help="Roles file: roles: {push|approve|promote: [user…]}.")
KeyOpt = typer.Option(None, "--key", help="Trusted public key (PEM) for signature verification.")
ChainOpt = typer.Option(
    [], "--certificate-chain", help="Trusted CA certificate(s) (PEM). Repeatable."
)
IdentityOpt = typer.Option(
    None, "--identity", help="With --certificate-chain: the expected signer."
)
JsonOpt = typer.Option(False, "--json", help="Print JSON.")


def _home(home: Path | None) -> Path:
    return home or Path(os.environ.get("SECMLOPS_HOME", ".secmlops"))


def _actor(actor: str | None) -> str:
    return actor or os.environ.get("SECMLOPS_ACTOR") or getpass.getuser()


def _engine(home: Path | None, db: str | None) -> Any:
    from secmlops.store.db import home_database_url, open_database

    root = _home(home)
    if db is None:
        root.mkdir(parents=True, exist_ok=True)
    return open_database(db or home_database_url(root))


def _trust(key: Path | None, chain: list[Path], identity: str | None) -> Any:
    from secmlops.evidence.signing import CertificateTrust, PublicKeyTrust

    if key is not None and chain:
        raise UsageError("give either --key or --certificate-chain, not both")
    if key is not None:
        return PublicKeyTrust(key)
    if chain:
        return CertificateTrust(tuple(chain), identity)
    raise UsageError(
        "no trust anchor for signature verification",
        hint="pass --key KEY.pub or --certificate-chain CA.pem (no signature, no deploy)",
    )


def _registry(
    home: Path | None,
    db: str | None,
    store: str | None,
    roles: Path | None,
    trust: Any,
) -> Registry:
    from secmlops.store.registry import signature_verifier

    return _open(home, db, store, roles, signature_verifier(trust))


def _split(ref: str) -> tuple[str, str]:
    name, _, version = ref.partition("@")
    if not name:
        raise UsageError(f"{ref!r} is not NAME[@VERSION|@ALIAS]")
    return name, version or "latest"


def _print_version(info: VersionInfo, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(info.to_dict(), indent=2) + "\n")
        return
    out = Console(highlight=False)
    aliases = f" [{', '.join(info.aliases)}]" if info.aliases else ""
    out.print(
        f"[bold]{info.name}@{info.version}[/]{aliases}  registered by {info.registrant} at {info.created_at}"
    )
    out.print(f"  manifest sha256:{info.manifest_digest}")
    out.print(f"  signature sha256:{info.signature_digest}")
    for kind, ref, _detail in info.lineage:
        out.print(f"  {kind:12} {ref}")


def _load_facts(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    from secmlops.policy.gate import load_input

    return load_input(path)


def _lineage_from(attestations: list[Path], key: Path | None) -> list[Any]:
    if not attestations:
        return []
    from secmlops.evidence.attest import verify_envelope
    from secmlops.evidence.keys import load_public_key
    from secmlops.store.lineage import edges_from_statement

    if key is None:
        raise UsageError("--attestation needs --key to verify it")
    public = load_public_key(key)
    edges: list[Any] = []
    for path in attestations:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
        edges += edges_from_statement(verify_envelope(raw, public))
    return edges


@registry_app.command("push")
def registry_push(
    path: Path = typer.Argument(..., help="Model file or folder."),
    name: str = typer.Option(..., "--name", help="Model name."),
    signature: Path | None = typer.Option(
        None, "--signature", help="Signature (default: model.sig / FILE.sig)."
    ),
    facts: Path | None = typer.Option(
        None, "--facts", help="Extra gate input (JSON): metrics, model_card, data…"
    ),
    attestation: list[Path] = typer.Option(
        [], "--attestation", help="Signed attestation (lineage). Repeatable."
    ),
    key: Path | None = KeyOpt,
    chain: list[Path] = ChainOpt,
    identity: str | None = IdentityOpt,
    actor: str | None = ActorOpt,
    roles: Path | None = RolesOpt,
    home: Path | None = HomeOpt,
    db: str | None = DbOpt,
    store: str | None = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Register a new immutable version: signature verified, model scanned, register gate passed."""
    from secmlops.evidence.signing import default_signature_path

    reg = _registry(home, db, store, roles, _trust(key, chain, identity))
    edges = _lineage_from(attestation, key)
    info = _gated(lambda: reg.push(
        path, name, signature or default_signature_path(path), _actor(actor),
        facts=_load_facts(facts), lineage=edges,
    ))  # fmt: skip
    _print_version(info, as_json)


@registry_app.command("promote")
def registry_promote(
    ref: str = typer.Argument(..., help="NAME@VERSION"),
    to: str = typer.Option(..., "--to", help="Alias to move, e.g. staging or production."),
    approver: str | None = typer.Option(
        None, "--approver", help="Who approved (not the registrant)."
    ),
    key: Path | None = KeyOpt,
    chain: list[Path] = ChainOpt,
    identity: str | None = IdentityOpt,
    actor: str | None = ActorOpt,
    roles: Path | None = RolesOpt,
    home: Path | None = HomeOpt,
    db: str | None = DbOpt,
    store: str | None = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Move an alias after re-verifying the stored bytes and re-running the gate with today's facts."""
    name, version = _split(ref)
    reg = _registry(home, db, store, roles, _trust(key, chain, identity))
    info = _gated(lambda: reg.promote(name, version, to, _actor(actor), approver=approver))
    _print_version(info, as_json)


@registry_app.command("pull")
def registry_pull(
    ref: str = typer.Argument(..., help="NAME@VERSION or NAME@ALIAS"),
    out: Path = typer.Option(..., "--out", "-o", help="Destination (must not exist)."),
    key: Path | None = KeyOpt,
    chain: list[Path] = ChainOpt,
    identity: str | None = IdentityOpt,
    actor: str | None = ActorOpt,
    home: Path | None = HomeOpt,
    db: str | None = DbOpt,
    store: str | None = StoreOpt,
) -> None:
    """Write a verified copy of a version; nothing is written if any check fails."""
    name, version = _split(ref)
    reg = _registry(home, db, store, None, _trust(key, chain, identity))
    info = reg.pull(name, version, out, _actor(actor))
    Console(stderr=True).print(f"pulled {info.name}@{info.version} to {out}")


@registry_app.command("rollback")
def registry_rollback(
    name: str = typer.Argument(...),
    alias: str = typer.Option("production", "--alias", help="Alias to move back."),
    actor: str | None = ActorOpt,
    roles: Path | None = RolesOpt,
    home: Path | None = HomeOpt,
    db: str | None = DbOpt,
    store: str | None = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Point an alias back to the version it pointed to before its last move."""
    reg = _read_only(home, db, store, roles)
    _print_version(reg.rollback(name, alias, _actor(actor)), as_json)


@registry_app.command("list")
def registry_list(
    name: str | None = typer.Argument(None),
    home: Path | None = HomeOpt,
    db: str | None = DbOpt,
    store: str | None = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List registered versions and their aliases."""
    versions = _read_only(home, db, store, None).list_versions(name)
    if as_json:
        sys.stdout.write(json.dumps([v.to_dict() for v in versions], indent=2) + "\n")
        return
    for v in versions:
        aliases = f" [{', '.join(v.aliases)}]" if v.aliases else ""
        typer.echo(f"{v.name}@{v.version}{aliases}  {v.registrant}  {v.created_at}")


@registry_app.command("show")
def registry_show(
    ref: str = typer.Argument(..., help="NAME@VERSION or NAME@ALIAS"),
    home: Path | None = HomeOpt,
    db: str | None = DbOpt,
    store: str | None = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show one version: digests, aliases, gate decision, lineage."""
    name, version = _split(ref)
    _print_version(_read_only(home, db, store, None).show(name, version), as_json)


@app.command("lineage")
def lineage(
    ref: str | None = typer.Argument(None, help="NAME[@VERSION|@ALIAS]"),
    affected_by: str | None = typer.Option(
        None,
        "--affected-by",
        help="List models whose lineage names this sha256:DIGEST or PACKAGE==VERSION.",
    ),
    home: Path | None = HomeOpt,
    db: str | None = DbOpt,
    store: str | None = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Datasets, code, packages and attestations behind a model, or every model a bad input reached."""
    reg = _read_only(home, db, store, None)
    if affected_by:
        hits = reg.affected_by(affected_by)
        if as_json:
            sys.stdout.write(json.dumps([h.to_dict() for h in hits], indent=2) + "\n")
        else:
            for h in hits:
                typer.echo(
                    f"{h.name}@{h.version}" + (f" [{', '.join(h.aliases)}]" if h.aliases else "")
                )
        raise typer.Exit(1 if hits else 0)
    if not ref:
        raise UsageError("give NAME[@VERSION] or --affected-by REF")
    name, version = _split(ref)
    _print_version(reg.show(name, version), as_json)


@audit_app.command("verify")
def audit_verify(
    key: Path | None = typer.Option(None, "--key", help="Public key that signs checkpoints."),
    home: Path | None = HomeOpt,
    db: str | None = DbOpt,
) -> None:
    """Check the audit chain and its signed checkpoints. Exit 1 when anything was altered."""
    from secmlops.evidence.keys import load_public_key
    from secmlops.store.audit import verify_log

    result = verify_log(_engine(home, db), load_public_key(key) if key else None)
    for problem in result.problems:
        typer.echo(f"ALTERED: {problem}")
    typer.echo(
        f"{result.records} records, {result.checkpoints} checkpoints: {'intact' if result.ok else 'TAMPERED'}"
    )
    raise typer.Exit(0 if result.ok else 1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    key: Path = typer.Option(..., "--key", help="Private key (PEM) that signs the checkpoint."),
    passphrase_env: str | None = typer.Option(
        None, "--passphrase-env", help="Env var holding the key passphrase."
    ),
    home: Path | None = HomeOpt,
    db: str | None = DbOpt,
) -> None:
    """Sign the current head of the audit chain."""
    from secmlops.evidence.keys import load_private_key
    from secmlops.store.audit import checkpoint

    passphrase = os.environ.get(passphrase_env, "").encode() if passphrase_env else None
    cp = checkpoint(_engine(home, db), load_private_key(key, passphrase))
    typer.echo(
        "audit log is empty" if cp is None else f"checkpoint at record {cp.seq}: {cp.head_hash}"
    )


def _read_only(
    home: Path | None, db: str | None, store: str | None, roles: Path | None
) -> Registry:
    """A registry for commands that verify nothing (list/show/rollback move no bytes)."""
    from secmlops.errors import SignatureError

    def refuse(_model: Path, _sig: Path) -> Any:
        raise SignatureError("this command does not verify signatures")

    return _open(home, db, store, roles, refuse)


def _open(
    home: Path | None, db: str | None, store: str | None, roles: Path | None, verifier: Any
) -> Registry:
    from secmlops.store.registry import Roles, open_registry

    return open_registry(
        _home(home), verifier, store=store, engine=_engine(home, db),
        roles=Roles.load(roles) if roles else None,
    )  # fmt: skip


def _gated(action: Any) -> VersionInfo:
    """Run a gated registry action; a denial prints every reason and exits 1 (not 2)."""
    from secmlops.store.registry import GateDenied

    try:
        info: VersionInfo = action()
    except GateDenied as exc:
        err = Console(stderr=True, highlight=False)
        err.print("[bold red]denied by policy[/]")
        for v in exc.decision.deny:
            err.print(f"  {v.severity.label:8} {v.rule_id}: {v.msg}")
        raise typer.Exit(1) from exc
    return info


@app.command("report")
def model_report(
    ref: str = typer.Argument(..., help="NAME[@VERSION|@ALIAS] (default: latest)."),
    output: Path = typer.Option(Path("report.html"), "--output", "-o", help="HTML report."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON."),
    oscal_out: Path | None = typer.Option(
        None, "--oscal", help="Also write OSCAL assessment-results JSON."
    ),
    audit_key: Path | None = typer.Option(
        None, "--audit-key", help="Public key of the audit checkpoints."
    ),
    home: Path | None = HomeOpt,
    db: str | None = DbOpt,
    store: str | None = StoreOpt,
) -> None:
    """Evidence for auditors: model card, metrics and fairness with plots, findings, decisions,
    lineage, audit-log integrity and the NIST AI RMF / ISO/IEC 42001 control mapping."""
    from secmlops.evidence.keys import load_public_key
    from secmlops.report.model_report import build_model_report, render_html, render_oscal
    from secmlops.store.audit import verify_log

    name, version = _split(ref)
    reg = _read_only(home, db, store, None)
    info = reg.show(name, version)
    audit = verify_log(reg.engine, load_public_key(audit_key) if audit_key else None)
    doc = build_model_report(info, audit)
    _write_text(output, render_html(doc))
    if json_out:
        _write_text(json_out, json.dumps(doc, indent=2, default=str) + "\n")
    if oscal_out:
        _write_text(oscal_out, json.dumps(render_oscal(doc), indent=2) + "\n")
    Console(stderr=True).print(f"wrote {output}")


def _write_text(path: Path, text: str) -> None:
    from secmlops.cli.output import write_output

    write_output(text, path)
