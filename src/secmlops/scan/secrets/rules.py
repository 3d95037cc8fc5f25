"""Stable rule ids of the secrets scanner (documented in docs/rules.md; a test keeps them in sync)."""

from __future__ import annotations

from secmlops.findings import Rule, Severity

_CRED = ("NIST-AI-RMF:MANAGE-2.2", "ISO42001:A.7.4", "OWASP-ML:ML06", "CWE-798")
_COVERAGE = ("NIST-AI-RMF:MEASURE-2.7", "ISO42001:A.7.4")

_ROTATE = "Revoke and rotate the credential now (assume it is compromised), then load it from a "
_STORE = "secret manager or environment variable at run time; rewrite git history if it was pushed."


def _rule(rule_id: str, severity: Severity, title: str, rationale: str, fix: str = "") -> Rule:
    return Rule(rule_id, severity, title, rationale, fix or _ROTATE + _STORE, _CRED)


AWS_ACCESS_KEY = _rule(
    "SECRET-AWS-ACCESS-KEY",
    Severity.HIGH,
    "AWS access key id",
    "An AWS access key id (AKIA/ASIA…) identifies a credential pair; where the id is, the secret "
    "key usually is too, and the id alone reveals the account.",
)
AWS_SECRET_KEY = _rule(
    "SECRET-AWS-SECRET-KEY",
    Severity.CRITICAL,
    "AWS secret access key",
    "A 40-character AWS secret access key next to its keyword or key id gives full use of the "
    "IAM identity: training data, model buckets, compute.",
)
GCP_SERVICE_ACCOUNT = _rule(
    "SECRET-GCP-SERVICE-ACCOUNT-KEY",
    Severity.CRITICAL,
    "Google Cloud service-account key file",
    "A service-account JSON key (type service_account with a private key) authenticates as that "
    "account until the key is deleted; it never expires by itself.",
)
GCP_API_KEY = _rule(
    "SECRET-GCP-API-KEY",
    Severity.HIGH,
    "Google API key",
    "A Google API key (AIza…) bills and authorises requests to the APIs it is enabled for.",
)
AZURE_STORAGE_KEY = _rule(
    "SECRET-AZURE-STORAGE-KEY",
    Severity.CRITICAL,
    "Azure storage account key or connection string",
    "An AccountKey (88 base64 characters, 64 bytes) gives full control of the storage account, "
    "including every blob of data and models it holds.",
)
AZURE_CLIENT_SECRET = _rule(
    "SECRET-AZURE-CLIENT-SECRET",
    Severity.HIGH,
    "Azure AD / Entra ID client secret",
    "An application client secret (the …Q~… format, or a client_secret assignment) signs in as "
    "the application with every role granted to it.",
)
GITHUB_TOKEN = _rule(
    "SECRET-GITHUB-TOKEN",
    Severity.CRITICAL,
    "GitHub token (classic, OAuth, user, server or refresh)",
    "A gh*_ token whose CRC32 checksum verifies is a real token format; it can push code, read "
    "private repositories or publish releases (the Ultralytics compromise used a stolen token).",
)
GITHUB_FINE_GRAINED = _rule(
    "SECRET-GITHUB-FINE-GRAINED-TOKEN",
    Severity.CRITICAL,
    "GitHub fine-grained personal access token",
    "A github_pat_ token acts on the repositories and permissions it was granted.",
)
GITLAB_TOKEN = _rule(
    "SECRET-GITLAB-TOKEN",
    Severity.CRITICAL,
    "GitLab access token",
    "A glpat-/glrt-/gldt- token authenticates to GitLab APIs, registries and runners.",
)
HUGGINGFACE_TOKEN = _rule(
    "SECRET-HUGGINGFACE-TOKEN",
    Severity.HIGH,
    "Hugging Face access token",
    "An hf_ token can read private models and data sets and, with write scope, replace a "
    "published model with a poisoned one.",
)
OPENAI_KEY = _rule(
    "SECRET-OPENAI-KEY",
    Severity.HIGH,
    "OpenAI API key",
    "An sk-/sk-proj- key spends the organisation's budget and reads its files and fine-tunes.",
)
ANTHROPIC_KEY = _rule(
    "SECRET-ANTHROPIC-KEY",
    Severity.HIGH,
    "Anthropic API key",
    "An sk-ant- key spends the organisation's budget on the Anthropic API.",
)
SLACK_TOKEN = _rule(
    "SECRET-SLACK-TOKEN",
    Severity.HIGH,
    "Slack token",
    "An xox[bpars]- token reads and posts messages as the bot or user it belongs to.",
)
SLACK_WEBHOOK = _rule(
    "SECRET-SLACK-WEBHOOK",
    Severity.MEDIUM,
    "Slack incoming webhook URL",
    "Anyone with the webhook URL can post into the channel (phishing from a trusted source).",
)
STRIPE_KEY = _rule(
    "SECRET-STRIPE-KEY",
    Severity.CRITICAL,
    "Stripe live secret or restricted key",
    "An sk_live_/rk_live_ key moves real money: charges, refunds, payouts.",
)
TWILIO_API_KEY = _rule(
    "SECRET-TWILIO-API-KEY",
    Severity.HIGH,
    "Twilio API key or auth token",
    "A Twilio API key SID (SK…) or account auth token next to Twilio context sends messages and "
    "calls billed to the account.",
)
SENDGRID_KEY = _rule(
    "SECRET-SENDGRID-KEY",
    Severity.HIGH,
    "SendGrid API key",
    "An SG.x.y key sends mail from the organisation's verified domains.",
)
NPM_TOKEN = _rule(
    "SECRET-NPM-TOKEN",
    Severity.CRITICAL,
    "npm access token",
    "An npm_ token whose CRC32 checksum verifies can publish packages as its owner.",
)
PYPI_TOKEN = _rule(
    "SECRET-PYPI-TOKEN",
    Severity.CRITICAL,
    "PyPI API token",
    "A pypi- macaroon that decodes to a pypi.org token can upload releases of its projects (a "
    "supply-chain compromise of everyone who installs them).",
    _ROTATE + "Trusted Publishing (OIDC) instead of a stored token; rewrite history if pushed.",
)
PRIVATE_KEY = _rule(
    "SECRET-PRIVATE-KEY",
    Severity.CRITICAL,
    "Private key (PEM, PKCS#8, OpenSSH or PGP)",
    "A private key block whose body decodes to a key-sized structure: TLS, SSH, signing or "
    "decryption keys impersonate their owner.",
    "Remove the key, generate a new key pair and revoke the old one (certificate, authorized_keys, "
    "signing trust); keep keys in a secret manager or HSM.",
)
JWT = _rule(
    "SECRET-JWT",
    Severity.MEDIUM,
    "JSON Web Token",
    "A signed JWT whose header and payload decode is a bearer credential until it expires.",
    "Remove the token; if it has not expired, revoke the session or rotate the signing key.",
)
DATABASE_URL = _rule(
    "SECRET-DATABASE-URL",
    Severity.HIGH,
    "Database or broker URL with a password",
    "A postgres/mysql/mongodb/redis/amqp URL with an inline password opens the database to "
    "anyone who reads the file.",
)
GENERIC = _rule(
    "SECRET-GENERIC-ASSIGNMENT",
    Severity.MEDIUM,
    "High-entropy value assigned to a password, secret, token or key",
    "A password=, api_key=, secret: or token assignment whose value looks random (high entropy, "
    "not a placeholder or a variable reference) is probably a hard-coded credential.",
)
FILE_SKIPPED = Rule(
    "SECRET-FILE-NOT-SCANNED",
    Severity.MEDIUM,
    "File too large to scan for secrets",
    "Files above the size limit are not read; a secret in them would go unseen, so the gap is "
    "reported rather than treated as clean.",
    "Raise --max-file-mb, or exclude the file explicitly if it is known data.",
    _COVERAGE,
)

ALL: dict[str, Rule] = {
    r.rule_id: r
    for r in (
        AWS_ACCESS_KEY,
        AWS_SECRET_KEY,
        GCP_SERVICE_ACCOUNT,
        GCP_API_KEY,
        AZURE_STORAGE_KEY,
        AZURE_CLIENT_SECRET,
        GITHUB_TOKEN,
        GITHUB_FINE_GRAINED,
        GITLAB_TOKEN,
        HUGGINGFACE_TOKEN,
        OPENAI_KEY,
        ANTHROPIC_KEY,
        SLACK_TOKEN,
        SLACK_WEBHOOK,
        STRIPE_KEY,
        TWILIO_API_KEY,
        SENDGRID_KEY,
        NPM_TOKEN,
        PYPI_TOKEN,
        PRIVATE_KEY,
        JWT,
        DATABASE_URL,
        GENERIC,
        FILE_SKIPPED,
    )
}
