"""`secmlops serve` over TLS: TLS 1.3 only, and with --client-ca a client certificate is required."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.serve.conftest import free_port, write_gateway


def _cert(
    path: Path, name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *, ca: bool = False, server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


def _handshake(port: int, ctx: ssl.SSLContext) -> str:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(4096):
            data += chunk
        return data.decode(errors="replace")


@pytest.fixture(scope="module")
def tls_gateway(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("tls")
    config = write_gateway(root)
    ca = _cert(root / "ca", "test CA", None, ca=True)
    _cert(root / "server", "gateway", ca, server=True)
    _cert(root / "client", "service", ca)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "secmlops", "serve", "--config", str(config), "--port", str(port),
         "--tls-cert", str(root / "server.crt"), "--tls-key", str(root / "server.key"),
         "--client-ca", str(root / "ca.crt")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError as exc:
            if proc.poll() is not None:
                message = proc.stderr.read().decode() if proc.stderr else "exited"
                raise RuntimeError(message) from exc
            time.sleep(0.3)
    yield root, port
    proc.terminate()
    proc.wait(timeout=30)


def _client(root: Path, *, cert: bool, max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(root / "ca.crt"))
    if max_version is not None:
        ctx.maximum_version = max_version
    if cert:
        ctx.load_cert_chain(str(root / "client.crt"), str(root / "client.key"))
    return ctx


def test_tls13_with_client_certificate_is_served(tls_gateway) -> None:  # type: ignore[no-untyped-def]
    root, port = tls_gateway
    answer = _handshake(port, _client(root, cert=True))
    assert answer.startswith("HTTP/1.1 200") and '"status"' in answer


def test_tls12_is_refused(tls_gateway) -> None:  # type: ignore[no-untyped-def]
    root, port = tls_gateway
    with pytest.raises(ssl.SSLError):
        _handshake(port, _client(root, cert=True, max_version=ssl.TLSVersion.TLSv1_2))


def test_missing_client_certificate_is_refused(tls_gateway) -> None:  # type: ignore[no-untyped-def]
    root, port = tls_gateway
    # In TLS 1.3 the server checks the client certificate after the handshake: the refusal
    # arrives as an alert on the first read (SSLError) or as a closed connection (no answer).
    try:
        answer = _handshake(port, _client(root, cert=False))
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return
    assert not answer.startswith("HTTP/1.1 200")


def test_bad_certificate_file_is_a_clear_error(tmp_path: Path) -> None:
    config = write_gateway(tmp_path)
    (tmp_path / "bad.crt").write_text("not a certificate")
    done = subprocess.run(
        [sys.executable, "-m", "secmlops", "serve", "--config", str(config), "--port",
         str(free_port()), "--tls-cert", str(tmp_path / "bad.crt"), "--tls-key", str(tmp_path / "bad.crt")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "TLS certificate" in done.stderr and "Traceback" not in done.stderr
