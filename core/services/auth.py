"""Who is calling: API keys (stored hashed in Redis) and JWT bearer tokens, as a Principal.

An API key reads `<prefix>_<key id>_<secret>`; Redis keeps only the SHA-256 of the secret (the
secret is 256 random bits, so a fast hash is enough), under `apikey:{key id}`. A JWT is verified
with the algorithms and keys the settings name, never the ones a token asks for, and must carry
`exp`, `aud`, `iss` and the user claim.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import jwt
import redis

from core.ground.clock import iso
from core.ground.errors import Unauthenticated
from core.ground.settings import Settings
from core.storage import api_keys

USER_ID = re.compile(r"^[A-Za-z0-9_.@:-]{1,128}$")
KEY_ID_BYTES = 9
SECRET_BYTES = 32


@dataclass(frozen=True)
class Principal:
    """The caller: a user id, how they proved it, and whether object checks apply to them.

    `unrestricted` is true only for the auth-off demo and for trusted in-process callers (the
    engine, schedules); every authenticated caller is checked object by object.
    """

    user_id: str
    method: str  # "api_key", "jwt", "demo" or "system"
    unrestricted: bool = False
    expires_at: float | None = None  # epoch seconds (JWT exp); None for keys
    key_id: str | None = None


DEMO = Principal(user_id="demo", method="demo", unrestricted=True)
SYSTEM = Principal(user_id="system", method="system", unrestricted=True)


# ---------------------------------------------------------------- API keys


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: str
    user_id: str
    name: str
    created_at: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(r: redis.Redis, settings: Settings, user_id: str, name: str = "") -> str:
    """Make a key for `user_id`, store its hash, and return the key (shown once, never stored)."""
    if not USER_ID.match(user_id):
        raise ValueError("user ids are 1-128 of A-Z a-z 0-9 _ . @ : -")
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    api_keys.save(r, key_id, user_id,
                  {"name": name[:200], "hash": _digest(secret), "created_at": iso()})
    return f"{settings.api_key_prefix}_{key_id}_{secret}"


def revoke_api_key(r: redis.Redis, key_id: str) -> bool:
    """Delete a key; False when there was none."""
    return api_keys.delete(r, key_id)


def list_api_keys(r: redis.Redis, user_id: str) -> list[ApiKeyInfo]:
    """A user's keys (never their secrets or hashes)."""
    return [ApiKeyInfo(key_id=key_id, user_id=raw["user_id"], name=raw.get("name", ""),
                       created_at=raw.get("created_at", ""))
            for key_id, raw in api_keys.of_user(r, user_id)]


def looks_like_api_key(token: str, settings: Settings) -> bool:
    return token.startswith(settings.api_key_prefix + "_")


def verify_api_key(r: redis.Redis, settings: Settings, token: str) -> Principal:
    """The key's owner, or Unauthenticated; the secret is compared in constant time."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != settings.api_key_prefix or \
            not re.fullmatch(f"[0-9a-f]{{{KEY_ID_BYTES * 2}}}", parts[1]):
        raise Unauthenticated("malformed API key")
    user_id, digest = api_keys.credentials(r, parts[1])
    if user_id is None or digest is None or not hmac.compare_digest(digest, _digest(parts[2])):
        raise Unauthenticated("invalid API key")
    return Principal(user_id=user_id, method="api_key", key_id=parts[1])


# ---------------------------------------------------------------- JWT


def _public_key(settings: Settings) -> str:
    pem = settings.jwt_public_key.get_secret_value()
    if not pem and settings.jwt_public_key_file:
        pem = Path(settings.jwt_public_key_file).read_text()
    return pem


def jwt_configured(settings: Settings) -> bool:
    return bool(settings.jwt_secret.get_secret_value() or _public_key(settings)
                or settings.jwt_public_key_file)


def verify_jwt(settings: Settings, token: str) -> Principal:
    """Verify a JWT with the configured algorithms, key, audience and issuer."""
    if not jwt_configured(settings):
        raise Unauthenticated("JWT bearer tokens are not accepted by this service")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated("malformed token") from None
    alg = header.get("alg")
    allowed = settings.jwt_algorithm_list
    if alg not in allowed:
        # The token names its algorithm; we only pick which of *our* keys that selects.
        raise Unauthenticated("token algorithm not accepted")
    key = settings.jwt_secret.get_secret_value() if alg.startswith("HS") else _public_key(settings)
    if not key:
        raise Unauthenticated("token algorithm not accepted")
    claim = settings.jwt_user_claim
    required = ["exp", "aud", "iss", claim] if settings.jwt_issuer else ["exp", "aud", claim]
    try:
        claims = jwt.decode(
            token, key, algorithms=[alg], audience=settings.jwt_audience,
            issuer=settings.jwt_issuer or None, leeway=settings.jwt_leeway_s,
            options={"require": required},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("token expired") from None
    except jwt.PyJWTError as exc:
        # The library's message names the failing check (audience, issuer, signature), no secret.
        raise Unauthenticated(f"invalid token: {exc}") from None
    user_id = claims.get(claim)
    if not isinstance(user_id, str) or not USER_ID.match(user_id):
        raise Unauthenticated(f"token claim {claim!r} is not a valid user id")
    return Principal(user_id=user_id, method="jwt", expires_at=float(claims["exp"]))


def authenticate(r: redis.Redis, settings: Settings, token: str) -> Principal:
    """An API key or a JWT, told apart by the key prefix."""
    if not token or len(token) > 8192:
        raise Unauthenticated("missing credentials")
    if looks_like_api_key(token, settings):
        return verify_api_key(r, settings, token)
    return verify_jwt(settings, token)
