"""The token vault: format-preserving tokens, reversible only with the user's key.

A token keeps the shape of the value (digits stay digits, letters stay letters of the same case,
everything else and the length are kept), so downstream schemas and joins keep working. The
vault file maps each token to the value encrypted with AES-256-GCM (the token is the associated
data, so a ciphertext moved to another token fails authentication). Tokens are derived from the
value with a keyed HMAC, so the same value gets the same token in every run that uses the same
vault and key. The key comes from the user (an environment variable); the file alone reveals
nothing but the tokens.

File format (JSON): ``{"format": "secmlops-vault/1", "kdf": {"name": "scrypt", "salt", "n", "r",
"p"}, "check": <b64 nonce+ciphertext of a known text>, "entries": {token: {"c": <b64 nonce+
ciphertext>, "h": <hex HMAC of the value, to find its token again without decrypting>}}}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from secmlops.errors import DataError, UsageError

VAULT_FORMAT = "secmlops-vault/1"
KEY_ENV = "SECMLOPS_VAULT_KEY"
_CHECK = b"secmlops vault key check"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_MAX_TRIES = 64  # a value whose shape allows few tokens (one digit) runs out of them
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = _UPPER.lower()


def key_from_env(
    name: str = KEY_ENV,
    purpose: str = "tokenisation",
    why: str = "keep it safe: without it the tokens cannot be reversed",
) -> str:
    """A user key (at least 16 characters) from the environment, or a UsageError saying how."""
    value = os.environ.get(name, "")
    if len(value) < 16:
        raise UsageError(
            f"{purpose} needs a key of at least 16 characters in ${name}",
            hint=f"export {name}=$(openssl rand -base64 32) and {why}",
        )
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError:
        raise DataError(f"vault: {what} is not valid base64 (the file is damaged)") from None


class Vault:
    """Tokens and their encrypted values. Open with `Vault.open`, write with `save`."""

    def __init__(self, path: Path, secret: str, salt: bytes, entries: dict[str, dict[str, str]]):
        master = Scrypt(salt=salt, length=32, **_SCRYPT).derive(secret.encode("utf-8"))
        self.path = path
        self._salt = salt
        self._aead = AESGCM(self._derive(master, b"encrypt"))
        self._token_key = self._derive(master, b"token")
        self._index_key = self._derive(master, b"index")
        self._entries = entries
        self._by_hash = {entry["h"]: token for token, entry in entries.items()}
        self._check = ""
        self.added = 0

    @staticmethod
    def _derive(master: bytes, label: bytes) -> bytes:
        return HKDF(hashes.SHA256(), 32, salt=None, info=b"secmlops-vault " + label).derive(master)

    @classmethod
    def open(cls, path: Path, secret: str, *, create: bool = True) -> Vault:
        """Open the vault at `path` (a new one if it does not exist and `create`)."""
        if not path.exists():
            if not create:
                raise DataError(f"{path}: no such vault file")
            vault = cls(path, secret, os.urandom(16), {})
            vault._check = _b64(vault._seal(_CHECK, b"check"))
            return vault
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeError, ValueError) as exc:
            raise DataError(f"{path}: cannot read the vault: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != VAULT_FORMAT:
            raise DataError(f"{path}: not a secmlops vault ({VAULT_FORMAT})")
        kdf = doc.get("kdf")
        entries = doc.get("entries")
        if (
            not isinstance(kdf, dict)
            or kdf.get("name") != "scrypt"
            or any(kdf.get(k) != v for k, v in _SCRYPT.items())
            or not isinstance(entries, dict)
            or not all(isinstance(e, dict) and {"c", "h"} <= set(e) for e in entries.values())
        ):
            raise DataError(f"{path}: the vault's header or entries are malformed (damaged?)")
        vault = cls(path, secret, _unb64(kdf.get("salt"), "the salt"), entries)
        vault._check = str(doc.get("check", ""))
        try:
            vault._open(_unb64(vault._check, "the key check"), b"check")
        except InvalidTag:
            raise DataError(
                f"{path}: wrong vault key",
                hint=f"set ${KEY_ENV} to the key the vault was created with",
            ) from None
        return vault

    def _seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def _open(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < 28:
            raise InvalidTag
        return self._aead.decrypt(blob[:12], blob[12:], aad)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return token in self._entries

    def _shape(self, value: str, attempt: int) -> str:
        """A token with the shape of `value`, drawn from HMAC(token key, attempt, value)."""
        stream = b""
        block = 0
        while len(stream) < len(value):
            msg = attempt.to_bytes(2, "big") + block.to_bytes(4, "big") + value.encode()
            stream += hmac.new(self._token_key, msg, hashlib.sha256).digest()
            block += 1
        out = []
        for ch, byte in zip(value, stream, strict=False):
            if ch.isdigit():
                out.append(str(byte % 10))
            elif ch.isalpha():
                out.append((_UPPER if ch.isupper() else _LOWER)[byte % 26])
            else:
                out.append(ch)
        return "".join(out)

    def tokenize(self, value: str) -> str:
        """The token of `value` (the same one every time for this vault and key)."""
        if not any(ch.isalnum() for ch in value):
            return value  # punctuation only: nothing to hide, no token to make
        digest = hmac.new(self._index_key, value.encode(), hashlib.sha256).hexdigest()[:32]
        known = self._by_hash.get(digest)
        if known is not None:
            return known
        for attempt in range(_MAX_TRIES):
            token = self._shape(value, attempt)
            if token != value and token not in self._entries:
                break
        else:
            raise DataError(
                f"cannot tokenise a {len(value)}-character value: its shape allows too few "
                "distinct tokens",
                hint="use the hash or redact operator for very short values",
            )
        self._entries[token] = {"c": _b64(self._seal(value.encode(), token.encode())), "h": digest}
        self._by_hash[digest] = token
        self.added += 1
        return token

    def detokenize(self, token: str) -> str | None:
        """The value behind `token`, None when it is not a token of this vault."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        try:
            return self._open(_unb64(entry["c"], "an entry"), token.encode()).decode("utf-8")
        except (InvalidTag, UnicodeError):
            raise DataError(
                f"{self.path}: a vault entry failed authentication: the vault was modified or "
                "damaged",
                hint="restore the vault from a backup; a changed entry cannot be trusted",
            ) from None

    def tokens(self) -> list[str]:
        return list(self._entries)

    def save(self) -> None:
        """Write the vault atomically, readable by its owner only."""
        doc = {
            "format": VAULT_FORMAT,
            "kdf": {"name": "scrypt", "salt": _b64(self._salt), **_SCRYPT},
            "check": self._check,
            "entries": self._entries,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".vault-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(doc, out, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise DataError(f"cannot write the vault {self.path}: {exc.strerror or exc}") from None
