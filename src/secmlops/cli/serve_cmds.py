"""`secmlops serve` and `secmlops token issue`."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from secmlops.cli.app import app

token_app = typer.Typer(
    help="Gateway access tokens (short-lived, Ed25519-signed JWTs).", no_args_is_help=True
)
app.add_typer(token_app, name="token")


@app.command("serve")
def serve(
    config: Path = typer.Option(
        Path("gateway.yaml"), "--config", "-c", help="Gateway configuration (YAML)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535),
    tls_cert: Path | None = typer.Option(
        None, "--tls-cert", help="Server certificate (PEM) for TLS."
    ),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="Server private key (PEM)."),
    client_ca: Path | None = typer.Option(
        None, "--client-ca", help="Require client certificates from this CA (mTLS)."
    ),
) -> None:
    """Serve verified models behind every gateway control (identity still comes from the token)."""
    import ssl

    import uvicorn

    from secmlops.errors import UsageError
    from secmlops.serve.app import create_app
    from secmlops.serve.config import load_gateway_config

    if (tls_cert is None) != (tls_key is None) or (client_ca and not tls_cert):
        raise UsageError("--tls-cert and --tls-key go together; --client-ca needs them")
    application = create_app(load_gateway_config(config))
    settings = uvicorn.Config(
        application, host=host, port=port, log_level="warning", access_log=False,
        ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None,
        ssl_ca_certs=str(client_ca) if client_ca else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
    )  # fmt: skip
    try:
        settings.load()  # builds the TLS context; a bad certificate or key fails here, exit 2
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot use the TLS certificate or key: {exc}") from exc
    if settings.ssl is not None:
        settings.ssl.minimum_version = ssl.TLSVersion.TLSv1_3  # no TLS 1.2 or older
    uvicorn.Server(settings).run()


@token_app.command("issue")
def token_issue(
    key: Path = typer.Option(
        ..., "--key", help="Ed25519 private key (secmlops keygen --type ed25519)."
    ),
    issuer: str = typer.Option(..., "--issuer"),
    audience: str = typer.Option(..., "--audience"),
    tenant: str = typer.Option(..., "--tenant"),
    subject: str = typer.Option(..., "--sub", help="Who the token is for (service or user)."),
    scope: list[str] = typer.Option(
        ..., "--scope", help="model:NAME:predict, chat or admin. Repeatable."
    ),
    ttl: int = typer.Option(
        900, "--ttl", help="Lifetime in seconds (the gateway refuses more than its maximum)."
    ),
    passphrase_env: str | None = typer.Option(
        None, "--passphrase-env", help="Env var with the key passphrase."
    ),
) -> None:
    """Print a signed access token."""
    from secmlops.serve.tokens import issue_token, load_signing_key

    passphrase = os.environ.get(passphrase_env, "").encode() if passphrase_env else None
    typer.echo(issue_token(load_signing_key(key, passphrase), issuer=issuer, audience=audience,
                           subject=subject, tenant=tenant, scopes=scope, ttl=ttl))  # fmt: skip
