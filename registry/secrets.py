"""Secrets made and checked here, never stored in the clear. No I/O.

API keys are 32 random bytes: far too much entropy to guess, so a fast hash (SHA-256) is
enough at rest and keeps each request's check cheap; a slow password hash is for secrets
people choose. MQTT passwords are hashed in Mosquitto's own format (PBKDF2-SHA512, `$7$`)
so the broker checks them itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "tsk"
_KEY_RE = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})$")
# Mosquitto 2.0's `mosquitto_passwd` uses 101 iterations and a 12-byte salt; it accepts any
# iteration count, so we may raise it.
MOSQUITTO_ITERATIONS = 101


@dataclass(frozen=True, slots=True)
class NewKey:
    id: str
    secret_sha256: str
    token: str  # shown once, to whoever created the key


def new_api_key() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewKey(key_id, _sha256(secret), f"{KEY_PREFIX}_{key_id}_{secret}")


def parse_api_key(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key; None for anything else."""
    match = _KEY_RE.match(token)
    return (match.group(1), match.group(2)) if match else None


def secret_matches(secret: str, secret_sha256: str) -> bool:
    return hmac.compare_digest(_sha256(secret), secret_sha256)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(24)


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """`$7$<iterations>$<salt>$<hash>`, as `mosquitto_passwd` writes it."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, MOSQUITTO_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${MOSQUITTO_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"
