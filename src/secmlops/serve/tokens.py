"""Short-lived Ed25519-signed JWTs: who calls (subject), for which tenant, with which scopes.

The algorithm is pinned (EdDSA): `alg: none`, HMAC with the public key as secret (key confusion) and
every other algorithm are refused before any claim is read. Issuer, audience, expiry, not-before and
issued-at are required; lifetimes above the configured maximum are refused even when signed; clock
skew is bounded. Verified tokens are cached (by SHA-256 of the token) until they expire.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519

from secmlops.errors import GatewayError, SignatureError
from secmlops.evidence.keys import load_private_key, load_public_key

ALGORITHM = "EdDSA"
DEFAULT_TTL = 15 * 60
MAX_LEEWAY = 60
_SCOPE = re.compile(r"^(admin|model:[A-Za-z0-9][A-Za-z0-9._-]{0,99}:(predict|chat)|chat)$")


class TokenRejected(GatewayError):
    """The bearer token is not acceptable (the gateway answers 401)."""


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str
    tenant: str
    scopes: frozenset[str]
    token_id: str
    expires_at: float

    def may(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def issue_token(
    private_key: ed25519.Ed25519PrivateKey,
    *,
    issuer: str,
    audience: str,
    subject: str,
    tenant: str,
    scopes: Sequence[str],
    ttl: int = DEFAULT_TTL,
    now: float | None = None,
) -> str:
    for scope in scopes:
        if not _SCOPE.match(scope):
            raise GatewayError(
                f"invalid scope {scope!r}",
                hint="use model:NAME:predict, model:NAME:chat, chat or admin",
            )
    if not tenant or not subject:
        raise GatewayError("a token needs a tenant and a subject")
    if not 0 < ttl <= 24 * 3600:
        raise GatewayError("token lifetime must be between 1 s and 24 h")
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": issuer, "aud": audience, "sub": subject, "tenant": tenant,
        "scope": " ".join(sorted(set(scopes))), "iat": issued, "nbf": issued,
        "exp": issued + ttl, "jti": uuid.uuid4().hex,
    }  # fmt: skip
    return jwt.encode(claims, private_key, algorithm=ALGORITHM)


def load_signing_key(path: Path, passphrase: bytes | None = None) -> ed25519.Ed25519PrivateKey:
    key = load_private_key(path, passphrase)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignatureError(f"{path} is not an Ed25519 key", hint="secmlops keygen --type ed25519")
    return key


def load_verify_key(path: Path) -> ed25519.Ed25519PublicKey:
    key = load_public_key(path)
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SignatureError(f"{path} is not an Ed25519 public key")
    return key


class TokenVerifier:
    """Verifies bearer tokens against one or more trusted public keys (key rotation)."""

    def __init__(
        self,
        keys: Sequence[ed25519.Ed25519PublicKey],
        *,
        issuer: str,
        audience: str,
        max_ttl: int = DEFAULT_TTL,
        leeway: int = 30,
        cache_size: int = 10_000,
    ) -> None:
        if not keys:
            raise GatewayError("no token verification key configured")
        if not 0 <= leeway <= MAX_LEEWAY:
            raise GatewayError(f"clock skew leeway must be 0..{MAX_LEEWAY} s")
        self.keys, self.issuer, self.audience = list(keys), issuer, audience
        self.max_ttl, self.leeway, self.cache_size = max_ttl, leeway, cache_size
        self._cache: dict[bytes, Identity] = {}

    def verify(self, token: str, now: float | None = None) -> Identity:
        clock = time.time() if now is None else now
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        cached = self._cache.get(digest)
        if cached is not None:
            if cached.expires_at + self.leeway > clock:
                return cached
            del self._cache[digest]
        identity = self._verify(token, clock)
        if len(self._cache) >= self.cache_size:
            self._cache.pop(next(iter(self._cache)))  # oldest first: dicts keep insertion order
        self._cache[digest] = identity
        return identity

    def _verify(self, token: str, clock: float) -> Identity:
        if len(token) > 8192:
            raise TokenRejected("token too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            # Checked before verification so that `none` and HS256-with-the-public-key never reach
            # a code path that could accept them.
            raise TokenRejected(f"algorithm {header.get('alg')!r} is not accepted")
        last: Exception | None = None
        for key in self.keys:
            try:
                claims = jwt.decode(
                    token, key, algorithms=[ALGORITHM], audience=self.audience, issuer=self.issuer,
                    leeway=self.leeway,
                    options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"], "verify_iat": True},
                )  # fmt: skip
                break
            except jwt.InvalidSignatureError as exc:
                last = exc
                continue
            except jwt.ExpiredSignatureError as exc:
                raise TokenRejected("token expired") from exc
            except jwt.ImmatureSignatureError as exc:
                raise TokenRejected("token not yet valid") from exc
            except jwt.InvalidAudienceError as exc:
                raise TokenRejected("wrong audience") from exc
            except jwt.InvalidIssuerError as exc:
                raise TokenRejected("wrong issuer") from exc
            except jwt.PyJWTError as exc:
                raise TokenRejected(f"invalid token: {exc}") from exc
        else:
            raise TokenRejected("signature does not verify") from last
        lifetime = int(claims["exp"]) - int(claims["iat"])
        if lifetime > self.max_ttl:
            raise TokenRejected(f"token lifetime {lifetime}s exceeds the maximum {self.max_ttl}s")
        if int(claims["iat"]) > clock + self.leeway:
            raise TokenRejected("token issued in the future")
        tenant, scope = claims.get("tenant"), claims.get("scope", "")
        if not isinstance(tenant, str) or not tenant or not isinstance(scope, str):
            raise TokenRejected("token has no tenant or a malformed scope")
        scopes = frozenset(scope.split())
        if any(not _SCOPE.match(s) for s in scopes):
            raise TokenRejected("token carries an unknown scope")
        return Identity(str(claims["sub"]), tenant, scopes, str(claims.get("jti", "")),
                        float(claims["exp"]))  # fmt: skip
