"""One-time codes that only their reader can see: sealed for notify, digested for intake's check.

A verification code must never be readable on a topic, in a stored event or in a log (issue 16,
docs/adr/0025). Intake keeps a keyed digest of it (HMAC with its signing keys: a six-digit code's
plain hash is broken by trying all million codes) and hands notify the code sealed to notify's
X25519 public key: an ephemeral key agreement, HKDF, then AES-GCM with the verification id as
associated data, so that a sealed code cannot be moved to another verification. Only a holder of
notify's private key opens it: not a subscriber of the topic, not intake itself, not a copy of
either store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"complaints one-time code v1"

#: The local stack's key pair (its private key spells "dev-only-code-key-not-a-secret!!"); production
#: refuses both (notify's CODE_OPENING_KEYS, intake's CODE_SEALING_PUBLIC_KEY).
DEV_PRIVATE_KEY = "ZGV2LW9ubHktY29kZS1rZXktbm90LWEtc2VjcmV0ISE="
DEV_PUBLIC_KEY = "4k2zHSuHHR9n-yHi35a2uvQbOrjFy3hSicgOrdM5sEw="
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


class CannotOpen(ValueError):
    """No key of ours opens this sealed code (another key pair, or tampered with)."""


def code_digest(code: str, verification_id: str, secret: str) -> str:
    """What intake keeps of a code: HMAC-SHA256 over the verification and the code."""
    return hmac.new(secret.encode(), f"{verification_id}:{code}".encode(), hashlib.sha256).hexdigest()


def public_key_of(private_key: str) -> str:
    """The base64 public key that seals codes for the holder of ``private_key`` (base64, 32 bytes)."""
    return _b64(_private(private_key).public_key().public_bytes(*_RAW))


def new_private_key() -> str:
    """A fresh base64 X25519 private key (``python -m services.kernel.sealed_codes`` prints a pair)."""
    return _b64(
        X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
    )


def seal(code: str, verification_id: str, public_key: str) -> str:
    """``code`` sealed for the holder of ``public_key``'s private key, as base64 text."""
    ephemeral = X25519PrivateKey.generate()
    recipient = X25519PublicKey.from_public_bytes(_unb64(public_key, "public key"))
    sender = ephemeral.public_key().public_bytes(*_RAW)
    nonce = os.urandom(12)
    box = AESGCM(_box_key(ephemeral.exchange(recipient), sender, recipient.public_bytes(*_RAW)))
    return _b64(sender + nonce + box.encrypt(nonce, code.encode(), verification_id.encode()))


def open_sealed(sealed: str, verification_id: str, private_keys: Iterable[str]) -> str:
    """The code, if one of ``private_keys`` (the current one first, then those being retired) opens it."""
    raw = _unb64(sealed, "sealed code") if sealed else b""
    sender, nonce, ciphertext = raw[:32], raw[32:44], raw[44:]
    for key in private_keys:
        private = _private(key)
        try:
            shared = private.exchange(X25519PublicKey.from_public_bytes(sender))
            box = AESGCM(_box_key(shared, sender, private.public_key().public_bytes(*_RAW)))
            return box.decrypt(nonce, ciphertext, verification_id.encode()).decode()
        except (InvalidTag, ValueError):
            continue
    raise CannotOpen("no key opens this sealed code")


def _box_key(shared: bytes, sender: bytes, recipient: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=sender + recipient, info=_INFO).derive(shared)


def _private(text: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(_unb64(text, "private key"))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text.strip().encode())
    except (ValueError, TypeError):
        raise ValueError(f"{what} is not base64") from None


if __name__ == "__main__":
    key = new_private_key()
    print(f"CODE_OPENING_KEYS={key}        # notify's Secret\nCODE_SEALING_PUBLIC_KEY={public_key_of(key)}  # intake")
