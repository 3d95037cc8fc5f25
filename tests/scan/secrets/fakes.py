"""Format-valid FAKE credentials, generated at run time (never committed as literals).

Each generator takes a `random.Random` so a corpus can be reproduced. Prefixes are assembled from
pieces so that no source file contains a token-shaped literal (push protection stays quiet).
The benchmark imports this module too.
"""

from __future__ import annotations

import base64
import json
import random
import string
import zlib
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ALNUM = string.ascii_letters + string.digits
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"


def _pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b62(number: int, width: int) -> str:
    out = ""
    while number:
        number, rest = divmod(number, 62)
        out = B62[rest] + out
    return out.rjust(width, "0")


def crc_token(prefix: str, rng: random.Random) -> str:
    """GitHub classic / npm: prefix + 30 random base62 + base62(CRC32(random)) in 6 digits."""
    body = _pick(rng, ALNUM, 30)
    return prefix + body + _b62(zlib.crc32(body.encode()), 6)


def github_token(rng: random.Random, kind: str = "p") -> str:
    return crc_token("gh" + kind + "_", rng)


def github_fine_grained(rng: random.Random) -> str:
    return "github" + "_pat_" + _pick(rng, ALNUM, 22) + "_" + _pick(rng, ALNUM, 59)


def gitlab_token(rng: random.Random) -> str:
    return "gl" + "pat-" + _pick(rng, ALNUM + "_-", 20)


def npm_token(rng: random.Random) -> str:
    return crc_token("np" + "m_", rng)


def pypi_token(rng: random.Random) -> str:
    ident = json.dumps({"version": 1, "permissions": "user"}).encode()
    caveat = json.dumps([1, [str(rng.randrange(10**9))]]).encode()
    raw = (
        b"\x02\x01\x08pypi.org"
        + b"\x02"
        + bytes([len(ident)])
        + ident
        + b"\x00"
        + b"\x02"
        + bytes([len(caveat)])
        + caveat
        + b"\x00\x00"
        + b"\x06\x20"
        + rng.randbytes(32)
    )
    return "py" + "pi-" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def huggingface_token(rng: random.Random) -> str:
    return "h" + "f_" + _pick(rng, string.ascii_letters, 34)


def openai_key(rng: random.Random) -> str:
    return (
        "s"
        + "k-proj-"
        + _pick(rng, ALNUM + "_-", 74)
        + "T3Blbk"
        + "FJ"
        + _pick(rng, ALNUM + "_-", 74)
    )


def openai_legacy_key(rng: random.Random) -> str:
    return "s" + "k-" + _pick(rng, ALNUM, 20) + "T3Blbk" + "FJ" + _pick(rng, ALNUM, 20)


def anthropic_key(rng: random.Random) -> str:
    return "s" + "k-ant-api03-" + _pick(rng, ALNUM + "_-", 93) + "AA"


def slack_bot_token(rng: random.Random) -> str:
    return (
        "xo" + "xb-" + _pick(rng, string.digits, 11) + "-" + _pick(rng, string.digits, 13)
        + "-" + _pick(rng, ALNUM, 24)
    )  # fmt: skip


def slack_webhook(rng: random.Random) -> str:
    upper = string.ascii_uppercase + string.digits
    return (
        "https://hooks." + "slack.com/services/T" + _pick(rng, upper, 8) + "/B"
        + _pick(rng, upper, 10) + "/" + _pick(rng, ALNUM, 24)
    )  # fmt: skip


def stripe_key(rng: random.Random) -> str:
    return "s" + "k_live_" + _pick(rng, ALNUM, 24)


def sendgrid_key(rng: random.Random) -> str:
    return "S" + "G." + _pick(rng, ALNUM + "_-", 22) + "." + _pick(rng, ALNUM + "_-", 43)


def twilio_api_key(rng: random.Random) -> str:
    return "S" + "K" + _pick(rng, HEX, 32)


def aws_access_key(rng: random.Random) -> str:
    return "AK" + "IA" + _pick(rng, string.ascii_uppercase + "234567", 16)


def aws_secret_key(rng: random.Random) -> str:
    return _pick(rng, B64, 40)


def gcp_api_key(rng: random.Random) -> str:
    return "AI" + "za" + _pick(rng, ALNUM + "_-", 35)


def azure_storage_key(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(64)).decode()


def azure_client_secret(rng: random.Random) -> str:
    return (
        _pick(rng, ALNUM, 3) + rng.choice(string.digits) + "Q" + "~" + _pick(rng, ALNUM + "_-", 34)
    )


def jwt_token(rng: random.Random, exp: int = 4102444800) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    header = part({"alg": "HS256", "typ": "JWT"})
    payload = part({"sub": str(rng.randrange(10**6)), "exp": exp, "scope": "admin"})
    sig = base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")
    return f"{header}.{payload}.{sig}"


def password(rng: random.Random) -> str:
    return _pick(rng, ALNUM, 10) + rng.choice("!#%&*+-") + _pick(rng, ALNUM, 5)


def db_url(rng: random.Random, scheme: str = "postgresql") -> str:
    return f"{scheme}://svc_app:{password(rng)}@db-{rng.randrange(99)}.internal.corp:5432/features"


def private_key_pem(kind: str = "rsa") -> str:
    """A real, freshly generated private key in PEM (rsa, ec, ed25519 as PKCS#8, openssh)."""
    if kind == "rsa":
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
    if kind == "ec":
        ec_key = ec.generate_private_key(ec.SECP256R1())
        return ec_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    ed_key = ed25519.Ed25519PrivateKey.generate()
    fmt = (
        serialization.PrivateFormat.OpenSSH
        if kind == "openssh"
        else serialization.PrivateFormat.PKCS8
    )
    return ed_key.private_bytes(
        serialization.Encoding.PEM, fmt, serialization.NoEncryption()
    ).decode()


def pgp_private_block(rng: random.Random) -> str:
    """An armoured OpenPGP secret-key block (packet tag 0xC5 then random key material)."""
    body = base64.b64encode(b"\xc5\x58\x04" + rng.randbytes(600)).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    begin = "-----BEGIN PGP " + "PRIVATE KEY BLOCK-----"
    end = "-----END PGP " + "PRIVATE KEY BLOCK-----"
    return f"{begin}\n\n{lines}\n=AbCd\n{end}\n"


def gcp_service_account(rng: random.Random) -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "ml-train-123",
            "private_key_id": _pick(rng, HEX, 40),
            "private_key": private_key_pem("ec"),
            "client_email": "trainer@ml-train-123.iam.gserviceaccount.com",
            "client_id": _pick(rng, string.digits, 21),
            "token_uri": "https://oauth2.googleapis.com/token",
        },
        indent=2,
    )


# Every generator of a single-token secret, keyed by the rule that must catch it.
TOKENS: dict[str, Callable[[random.Random], str]] = {
    "SECRET-GITHUB-TOKEN": github_token,
    "SECRET-GITHUB-FINE-GRAINED-TOKEN": github_fine_grained,
    "SECRET-GITLAB-TOKEN": gitlab_token,
    "SECRET-NPM-TOKEN": npm_token,
    "SECRET-PYPI-TOKEN": pypi_token,
    "SECRET-HUGGINGFACE-TOKEN": huggingface_token,
    "SECRET-OPENAI-KEY": openai_key,
    "SECRET-ANTHROPIC-KEY": anthropic_key,
    "SECRET-SLACK-TOKEN": slack_bot_token,
    "SECRET-SLACK-WEBHOOK": slack_webhook,
    "SECRET-STRIPE-KEY": stripe_key,
    "SECRET-SENDGRID-KEY": sendgrid_key,
    "SECRET-AWS-ACCESS-KEY": aws_access_key,
    "SECRET-GCP-API-KEY": gcp_api_key,
    "SECRET-AZURE-CLIENT-SECRET": azure_client_secret,
    "SECRET-JWT": jwt_token,
}
