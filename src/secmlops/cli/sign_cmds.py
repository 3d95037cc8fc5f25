"""`secmlops keygen`, `secmlops sign` and `secmlops verify`: OpenSSF model signatures."""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer
from rich.console import Console

from secmlops.cli.app import app
from secmlops.cli.options import ConfigOpt, FailOnOpt, FormatOpt, OutputOpt, QuietOpt
from secmlops.cli.output import emit, gate, progress_bar, report_setup
from secmlops.errors import SignatureError, UsageError
from secmlops.findings import Location, Report, ScanFailure

PassphraseEnvOpt = typer.Option(
    None,
    "--passphrase-env",
    metavar="VAR",
    help="Read the key passphrase from this environment variable (never from the command line).",
)
JobsOpt = typer.Option(0, "--jobs", "-j", min=0, help="Hashing threads (0: cores + 4, at most 32).")
SignatureOpt = typer.Option(
    None,
    "--signature",
    help="Signature file (default: FOLDER/model.sig for a folder, FILE.sig for a file).",
)
ChainOpt = typer.Option(
    [], "--certificate-chain", help="CA or intermediate certificate, PEM. Repeatable."
)
TrustConfigOpt = typer.Option(
    None,
    "--trust-config",
    help="Sigstore trusted root or client trust configuration (JSON) to use instead of the "
    "public-good instance.",
)

_SIZE = re.compile(r"^\s*(\d+)\s*(|b|kb|mb|gb|kib|mib|gib)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9}
_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30})


def _passphrase(var: str | None) -> bytes | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        raise UsageError(f"environment variable {var} is not set or empty")
    return value.encode()


def _size(text: str | None) -> int | None:
    if text is None:
        return None
    match = _SIZE.match(text)
    if not match or int(match.group(1)) <= 0:
        raise UsageError(
            f"shard size {text!r} is not a size", hint="e.g. 1000000000, 1GB or 512MiB"
        )
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


@app.command("keygen")
def keygen(
    out: Path = typer.Option(..., "--out", help="Private key file to create (never overwritten)."),
    key_type: str = typer.Option("p256", "--type", help="Key type: p256 or p384."),
    passphrase_env: str | None = PassphraseEnvOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Create a signing key pair: OUT (private, mode 0600) and OUT.pub."""
    from secmlops.evidence import keys

    if key_type not in ("p256", "p384"):
        raise UsageError(f"unknown key type {key_type!r}", hint="use p256 or p384")
    key = keys.generate_private_key(key_type)
    public = keys.write_key_pair(key, out, _passphrase(passphrase_env))
    if not quiet:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"wrote {out} (private, 0600) and {public}; key id {keys.key_id(key.public_key())}"
        )
    raise typer.Exit(0)


@app.command("sign")
def sign(
    path: Path = typer.Argument(..., help="Model file or folder."),
    key: Path | None = typer.Option(
        None, "--key", help="Private key (also the key of --signing-certificate)."
    ),
    signing_certificate: Path | None = typer.Option(
        None, "--signing-certificate", help="Certificate of --key, PEM (certificate method)."
    ),
    chain: list[Path] = ChainOpt,
    sigstore: bool = typer.Option(
        False, "--sigstore", help="Sigstore keyless signing (needs the network)."
    ),
    identity_token_env: str | None = typer.Option(
        None,
        "--identity-token-env",
        metavar="VAR",
        help="Sigstore: read the OIDC identity token from this environment variable.",
    ),
    trust_config: Path | None = TrustConfigOpt,
    signature: Path | None = SignatureOpt,
    hash_name: str = typer.Option("sha256", "--hash", help="sha256 (default) or blake3."),
    shard_size: str | None = typer.Option(
        None,
        "--shard-size",
        help="Sign shards of this size (e.g. 1GB) instead of whole files: one large file is "
        "then hashed on every core. The model_signing 1.1 CLI verifies only whole-file sha256.",
    ),
    ignore: list[str] = typer.Option(
        [], "--ignore", help="Leave this path (relative to the model) out. Repeatable."
    ),
    passphrase_env: str | None = PassphraseEnvOpt,
    jobs: int = JobsOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Sign a model file or folder: a Sigstore bundle with the digest of every file.

    The bundle is the OpenSSF model-signing format; `model_signing verify` accepts it.
    """
    from secmlops.evidence import signing

    method: signing.SignMethod
    if sigstore:
        if key or signing_certificate or chain:
            raise UsageError("--sigstore takes no key or certificate")
        token = os.environ.get(identity_token_env) if identity_token_env else None
        if identity_token_env and not token:
            raise UsageError(f"environment variable {identity_token_env} is not set or empty")
        method = signing.SigstoreSigner(identity_token=token, trust_config=trust_config)
    elif key is None:
        raise UsageError(
            "choose a signing method",
            hint="--key KEY, or --key KEY --signing-certificate CERT --certificate-chain CA, "
            "or --sigstore",
        )
    elif signing_certificate is not None:
        if passphrase_env:
            raise UsageError("certificate signing needs an unencrypted key; drop --passphrase-env")
        method = signing.CertificateSigner(key, signing_certificate, tuple(chain))
    elif chain:
        raise UsageError("--certificate-chain needs --signing-certificate")
    else:
        method = signing.KeySigner(key, _passphrase(passphrase_env))
    if hash_name not in signing.HASHES:
        raise UsageError(f"unknown hash {hash_name!r}", hint="use sha256 or blake3")
    settings = signing.HashSettings(
        hash="blake3" if hash_name == "blake3" else "sha256",
        shard_size=_size(shard_size),
        workers=jobs,
        ignore=tuple(ignore),
    )
    with progress_bar("hashing", quiet) as progress:
        result = signing.sign_model(
            path, method, signature=signature, settings=settings, progress=progress
        )
    if not quiet:
        gb = result.bytes_hashed / 1e9
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"wrote {result.signature}: {result.files} files, {gb:.3f} GB, "
            f"{result.seconds:.2f}s; model digest sha256:{result.model_digest}"
        )
    raise typer.Exit(0)


@app.command("verify")
def verify(
    path: Path = typer.Argument(..., help="Model file or folder."),
    key: Path | None = typer.Option(None, "--key", help="Trusted public key (KEY.pub)."),
    chain: list[Path] = ChainOpt,
    identity: str | None = typer.Option(
        None,
        "--identity",
        help="Expected signer: Sigstore identity, or a name the signing certificate must carry.",
    ),
    identity_provider: str | None = typer.Option(
        None, "--identity-provider", help="Sigstore: expected OIDC issuer URL."
    ),
    trust_config: Path | None = TrustConfigOpt,
    signature: Path | None = SignatureOpt,
    jobs: int = JobsOpt,
    fmt: str | None = FormatOpt,
    output: Path | None = OutputOpt,
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """Verify a model against its signature, offline; name every file or signer that differs.

    Exit 0 verified, 1 verification failed, 2 the check could not be made.
    """
    from secmlops.evidence import rules, signing

    _, threshold, form = report_setup(config, fail_on, fmt, output)
    method: signing.VerifyMethod
    if sum((key is not None, bool(chain), identity_provider is not None)) != 1:
        raise UsageError(
            "choose one trust method",
            hint="--key KEY.pub, or --certificate-chain CA.pem [--identity NAME], "
            "or --identity ID --identity-provider URL [--trust-config FILE]",
        )
    if key is not None:
        if identity:
            raise UsageError("--identity needs --certificate-chain or --identity-provider")
        method = signing.PublicKeyTrust(key)
    elif chain:
        method = signing.CertificateTrust(tuple(chain), identity)
    else:
        if not identity or not identity_provider:
            raise UsageError("Sigstore verification needs --identity and --identity-provider")
        method = signing.SigstoreTrust(identity, identity_provider, trust_config)
    report = Report(kind="signature", rules=dict(rules.ALL))
    try:
        with progress_bar("hashing", quiet) as progress:
            result = signing.verify_model(
                path, method, signature=signature, workers=jobs, progress=progress
            )
    except SignatureError as exc:
        if form == "text":
            raise  # one line and a hint on stderr, exit 2
        report.errors.append(ScanFailure(Location(path=str(path)), exc.message))
        emit([report], form, output)
        raise typer.Exit(2) from None
    report.extend(signing.verification_findings(result))
    report.files_scanned = result.files_checked
    report.bytes_scanned = result.bytes_hashed
    report.seconds = result.seconds
    emit([report], form, output)
    if not quiet:
        verdict = "verified" if result.verified else "NOT verified"
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"{verdict}: {result.model} against {result.signature} (signer: {result.signer})"
        )
    raise typer.Exit(gate([report], threshold))
