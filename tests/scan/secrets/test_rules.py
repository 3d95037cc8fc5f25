"""Every rule catches a format-valid fake and passes its benign look-alikes."""

from __future__ import annotations

import base64
import json
import random
import string

import pytest

from secmlops.findings import Location, Severity
from secmlops.scan.secrets import rules, scan_text
from tests.scan.secrets import fakes

HERE = Location(path="sample.txt")


def rule_ids(text: str) -> list[str]:
    return [f.rule_id for f in scan_text(text, HERE)]


@pytest.fixture
def rng() -> random.Random:
    return random.Random(7)


@pytest.mark.parametrize("rule_id", sorted(fakes.TOKENS))
def test_each_token_rule_catches_a_valid_fake(rule_id: str, rng: random.Random) -> None:
    token = fakes.TOKENS[rule_id](rng)
    assert rule_ids(f'config = "{token}"\n') == [rule_id]
    assert rule_ids(f"{token}") == [rule_id]  # bare, at the very start and end of the text


def test_openai_legacy_key_with_marker(rng: random.Random) -> None:
    assert rule_ids(f"key: {fakes.openai_legacy_key(rng)}") == ["SECRET-OPENAI-KEY"]


@pytest.mark.parametrize("kind", ["rsa", "ec", "ed25519", "openssh"])
def test_real_private_keys_are_caught(kind: str) -> None:
    pem = fakes.private_key_pem(kind)
    found = scan_text(f"# deploy key\n{pem}", HERE)
    assert [f.rule_id for f in found] == ["SECRET-PRIVATE-KEY"]
    assert found[0].location.line == 2
    assert found[0].evidence["encrypted"] is False


def test_pgp_private_block_is_caught(rng: random.Random) -> None:
    assert rule_ids(fakes.pgp_private_block(rng)) == ["SECRET-PRIVATE-KEY"]


def test_private_key_inside_json_string_with_escaped_newlines() -> None:
    pem = fakes.private_key_pem("ec").replace("\n", "\\n")
    assert rule_ids(json.dumps({"key": "x"})[:-1] + f', "pem": "{pem}"}}') == ["SECRET-PRIVATE-KEY"]


def test_encrypted_private_key_is_still_reported() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
        .decode()
    )
    found = scan_text(pem, HERE)
    assert [f.rule_id for f in found] == ["SECRET-PRIVATE-KEY"]
    assert found[0].evidence["encrypted"] is True


def test_gcp_service_account_file(rng: random.Random) -> None:
    found = scan_text(fakes.gcp_service_account(rng), HERE)
    assert [f.rule_id for f in found] == ["SECRET-GCP-SERVICE-ACCOUNT-KEY"]
    assert found[0].location.line == 5  # the "private_key" line
    assert found[0].evidence["client_email"].endswith("iam.gserviceaccount.com")


def test_aws_key_pair(rng: random.Random) -> None:
    text = (
        "[default]\n"
        f"aws_access_key_id = {fakes.aws_access_key(rng)}\n"
        f"aws_secret_access_key = {fakes.aws_secret_key(rng)}\n"
    )
    assert rule_ids(text) == ["SECRET-AWS-ACCESS-KEY", "SECRET-AWS-SECRET-KEY"]


def test_aws_secret_next_to_key_id_in_csv(rng: random.Random) -> None:
    text = (
        f"User,Access key ID,Secret\nml,{fakes.aws_access_key(rng)},{fakes.aws_secret_key(rng)}\n"
    )
    assert rule_ids(text) == ["SECRET-AWS-ACCESS-KEY", "SECRET-AWS-SECRET-KEY"]


def test_azure_connection_string_and_shared_access_key(rng: random.Random) -> None:
    conn = (
        "DefaultEndpointsProtocol=https;AccountName=mlstore;"
        f"AccountKey={fakes.azure_storage_key(rng)};EndpointSuffix=core.windows.net"
    )
    assert rule_ids(conn) == ["SECRET-AZURE-STORAGE-KEY"]
    sas = base64.b64encode(rng.randbytes(32)).decode()
    bus = f"Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey={sas}"
    assert rule_ids(bus) == ["SECRET-AZURE-STORAGE-KEY"]


def test_azure_client_secret_by_context(rng: random.Random) -> None:
    value = "".join(rng.choice(string.ascii_letters + string.digits + "-_.~") for _ in range(40))
    text = f"AZURE_TENANT_ID=abc\nAZURE_CLIENT_SECRET={value}\n"
    assert rule_ids(text) == ["SECRET-AZURE-CLIENT-SECRET"]


def test_twilio_needs_twilio_context(rng: random.Random) -> None:
    key = fakes.twilio_api_key(rng)
    assert rule_ids(f"# Twilio SMS\nTWILIO_API_KEY={key}\n") == ["SECRET-TWILIO-API-KEY"]
    token = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    assert rule_ids(f"twilio:\n  auth_token: {token}\n") == ["SECRET-TWILIO-API-KEY"]
    assert rule_ids(f"sid = {key}\n") == []  # SK + hex alone is any identifier


@pytest.mark.parametrize("scheme", ["postgresql", "mysql", "mongodb+srv", "redis", "amqp"])
def test_database_urls_with_passwords(scheme: str, rng: random.Random) -> None:
    found = scan_text(f"DATABASE_URL={fakes.db_url(rng, scheme)}", HERE)
    assert [f.rule_id for f in found] == ["SECRET-DATABASE-URL"]
    assert found[0].evidence["scheme"] == scheme


def test_generic_assignments(rng: random.Random) -> None:
    pw = fakes.password(rng)
    assert rule_ids(f'db_password = "{pw}"') == ["SECRET-GENERIC-ASSIGNMENT"]
    assert rule_ids(f"password: {pw}") == ["SECRET-GENERIC-ASSIGNMENT"]
    assert rule_ids(f'self.api_key: str = "{pw}"') == ["SECRET-GENERIC-ASSIGNMENT"]
    assert rule_ids(f"--client-secret={pw}") == ["SECRET-GENERIC-ASSIGNMENT"]


def test_expired_jwt_is_low(rng: random.Random) -> None:
    found = scan_text(fakes.jwt_token(rng, exp=1_000_000_000), HERE)
    assert [(f.rule_id, f.severity) for f in found] == [("SECRET-JWT", Severity.LOW)]


def test_specific_rule_wins_over_generic(rng: random.Random) -> None:
    token = fakes.github_token(rng)
    assert rule_ids(f'GITHUB_TOKEN = "{token}"') == ["SECRET-GITHUB-TOKEN"]


# --- benign look-alikes --------------------------------------------------------------------------


def _bad_checksum(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


@pytest.mark.parametrize(
    "text",
    [
        # vendor documentation examples
        "aws_access_key_id = AKIA" + "IOSFODNN7EXAMPLE",
        # secmlops: allow-secret-next-line
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY",
        "token = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9l"
        "IiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c'",
        # placeholders and references
        'password = "changeme"',
        'api_key = "<your-api-key>"',
        "token: xxxxxxxxxxxxxxxxxxxxxxxx",
        "SECRET_KEY=${SECRET_KEY}",
        'password = os.environ["DB_PASSWORD"]',
        'api_key = os.getenv("OPENAI_API_KEY")',
        "hf_token: ${{ secrets.HF_TOKEN }}",
        'auth_token: "{{ vault_auth_token }}"',
        "api_key = settings.OPENAI_API_KEY",
        "self.secret_key = secret_key",
        "password = get_password(user)",
        "tokens = tokenize.generate_tokens(io.StringIO(text).readline)",
        "token = self._fp.read(1)[0]",
        "access_key = creds[self.ACCESS_KEY]",
        "self._authkey = process.AuthenticationString(authkey)",
        "OPENAI_API_KEY=s" + "k-...your-key-here",
        "hf_token = 'h" + "f_" + "x" * 34 + "'",
        # database URLs without a real password
        "DATABASE_URL=postgresql://user:password@localhost:5432/app",
        "DATABASE_URL=postgresql://${DB_USER}:${DB_PASS}@db:5432/app",
        "redis://localhost:6379/0",
        # hashes, ids, test keys, public material
        'sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
        'commit: "8f14e45fceea167a5a36dedd4bea2543a1b2c3d4"',
        'run_id = "123e4567-e89b-12d3-a456-426614174000"',
        'api_key = "123e4567-e89b-12d3-a456-426614174000"',
        '"integrity": "sha512-' + base64.b64encode(bytes(range(64))).decode() + '"',
        "stripe_key = s" + "k_test_4eC39HqLyjWDarjtT1zdp7dc",
        "publishable = p" + "k_live_51H8abcDEFghiJKLmnoPQRstu",
        "password_hash = '$2b$12$" + "K" * 2 + "abcdefghijABCDEFGHIJ0123456789./abcdefghijABCDEFG'",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0eXBlX2ZvbGRlcl9leGFtcGxlX2tleQ ml@host",
        # vendor placeholders in each token format
        "SLACK_WEBHOOK=https://hooks.slack.com/services/T00000000/B00000000/" + "X" * 24,
        "SENDGRID_API_KEY=S" + "G." + "x" * 22 + "." + "x" * 43,
        "GITLAB_TOKEN=gl" + "pat-" + "x" * 20,
        "GH_PAT=github" + "_pat_" + "X" * 22 + "_" + "X" * 59,
        "ANTHROPIC_API_KEY=s" + "k-ant-api03-" + "x" * 93 + "AA",
        "AZURE_TENANT_ID=t\nAZURE_CLIENT_SECRET=123e4567-e89b-12d3-a456-426614174000",
        '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n...\\n'
        '-----END PRIVATE KEY-----\\n"}',
        "AccountKey=" + "A" * 86 + "==",
        # ML code that mentions tokens
        "max_tokens = 4096",
        'pad_token = "<|endoftext|>"',
        'tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")',
        "eos_token_id = 50256",
        "# the secret is loaded from vault; see docs/secrets.md",
        "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----\n<your key here>\n-----END PRIVATE KEY-----",
    ],
)
def test_benign_lookalikes_are_not_findings(text: str) -> None:
    assert rule_ids(text) == []


@pytest.mark.parametrize("rule_id", ["SECRET-GITHUB-TOKEN", "SECRET-NPM-TOKEN"])
def test_wrong_checksum_is_not_a_token(rule_id: str, rng: random.Random) -> None:
    token = _bad_checksum(fakes.TOKENS[rule_id](rng))
    assert rule_ids(f'token = "{token}"') == []  # not even as a generic assignment


def test_public_key_is_not_a_finding() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pub = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert rule_ids(pub) == []


def test_pypi_token_must_decode_to_a_pypi_macaroon(rng: random.Random) -> None:
    token = fakes.pypi_token(rng)
    assert rule_ids(token) == ["SECRET-PYPI-TOKEN"]
    # same length and prefix, but the body is not a macaroon with a signature
    broken = token[:40] + "A" * (len(token) - 40)
    assert rule_ids(broken) == []


def test_jwt_must_decode(rng: random.Random) -> None:
    token = fakes.jwt_token(rng)
    header, payload, sig = token.split(".")
    assert rule_ids(f"{header}.{payload[:-4]}.{sig}") == []  # payload no longer JSON
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
    assert rule_ids(f"{none_alg}.{payload}.{sig}") == []


def test_azure_key_needs_context_and_64_bytes(rng: random.Random) -> None:
    key = fakes.azure_storage_key(rng)
    assert rule_ids(f"weights_digest = {key}") == []
    short = base64.b64encode(rng.randbytes(63)).decode()
    assert rule_ids(f"AccountKey={short}") == []


def test_catalogue_is_complete() -> None:
    for rule in rules.ALL.values():
        assert rule.rule_id.startswith("SECRET-")
        assert rule.title and rule.rationale and rule.fix and rule.controls


def test_scan_text_counts_lines_from_the_given_location(rng: random.Random) -> None:
    where = Location(path="data.csv", column="notes", rows=(4,), line=10)
    (found,) = scan_text(f"first\n{fakes.stripe_key(rng)}\n", where)
    assert found.location == Location(path="data.csv", column="notes", rows=(4,), line=11)
