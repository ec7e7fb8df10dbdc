"""Secrets: API key generation and hashing, and encryption at rest with the server key."""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_PREFIX = "abl_sk-"


def new_api_key_secret() -> str:
    """A fresh secret: `abl_sk-` and 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


PUBLISHABLE_PREFIX = "pk_live_"


def new_publishable_secret() -> str:
    """A fresh publishable key: `pk_live_` and 256 random bits (safe in a browser: it
    reaches only the Chat API, from its allowed origins)."""
    return PUBLISHABLE_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 hex. Secrets are 256-bit random values, so a fast hash is safe here."""
    return hashlib.sha256(secret.encode()).hexdigest()


class SecretBox:
    """Encrypts small secrets (tenant provider keys, JWT client secrets) with the server key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_passphrase_or_file(cls, passphrase: str | None, key_file: Path) -> SecretBox:
        """Use CHATPLANE_SECRET_KEY if given, else a key file created on first start."""
        if passphrase:
            digest = hashlib.sha256(passphrase.encode()).digest()
            return cls(base64.urlsafe_b64encode(digest))
        if key_file.exists():
            return cls(key_file.read_bytes().strip())
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        key_file.touch(mode=0o600)
        key_file.write_bytes(key)
        return cls(key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with this server key") from exc
