"""Signed checkpoints: every so often (and at export, prune and on demand) the chain's head, its
sequence number (how many events the chain has had) and the time are signed with Ed25519.

Why Ed25519 rather than an HMAC: whoever can check an HMAC can also forge one, so an auditor
would need the very key the server signs with.  With a signature the server keeps the private
key (ARCHIVIST_AUDIT_SIGNING_KEY_FILE, outside the database) and the auditor only needs the public
key (the .pub file beside it), which cannot sign.  Someone who can edit the database can rewrite
the chain and recompute every hash, but cannot sign a checkpoint matching the rewritten chain.

Keys are PEM files (PKCS#8 private key, SubjectPublicKeyInfo public key), so `openssl pkey` reads
them too.  What is signed, for a checkpoint, is the ASCII JSON

    ["archivist-audit-checkpoint", 1, seq, head_hash, at, kind, key_fingerprint]

(no spaces); the signature is stored in base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from rag.core.errors import ArchivistError

_HINT = "Make a signing key with `archivist audit keygen --signing FILE` (FILE.pub is the public key)."


class SigningKeyError(ArchivistError):
    """A signing or public key file that cannot be used."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    at: str
    kind: str  # "periodic", "export", "prune", "manual", "rotate-key"
    key_fingerprint: str
    signature: str

    def signed_bytes(self) -> bytes:
        return checkpoint_bytes(self.seq, self.head_hash, self.at, self.kind, self.key_fingerprint)

    def to_dict(self) -> dict:
        return {"seq": self.seq, "head_hash": self.head_hash, "at": self.at, "kind": self.kind,
                "key_fingerprint": self.key_fingerprint, "signature": self.signature}


CHECKPOINT_COLUMNS = ("seq", "head_hash", "at", "kind", "key_fingerprint", "signature")


def checkpoint_bytes(seq: int, head_hash: str, at: str, kind: str, fingerprint: str) -> bytes:
    return json.dumps(["archivist-audit-checkpoint", 1, seq, head_hash, at, kind, fingerprint],
                      separators=(",", ":")).encode("ascii")


def _fingerprint(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


class Verifier:
    """An Ed25519 public key."""

    def __init__(self, public_key) -> None:
        from cryptography.hazmat.primitives import serialization

        self._key = public_key
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.fingerprint = _fingerprint(raw)

    @classmethod
    def from_file(cls, path: Path) -> Verifier:
        """A public key file, or a private one (its public half)."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                                       Ed25519PublicKey)

        data = _read(path)
        key = _load(data, path, public=b"PRIVATE KEY" not in data)
        if isinstance(key, Ed25519PrivateKey):
            key = key.public_key()
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError(f"{path} is not an Ed25519 key.", hint=_HINT)
        return cls(key)

    def verify(self, checkpoint: Checkpoint) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self._key.verify(base64.b64decode(checkpoint.signature, validate=True),
                             checkpoint.signed_bytes())
            return True
        except (InvalidSignature, binascii.Error, ValueError):
            return False


class Signer:
    """An Ed25519 private key."""

    def __init__(self, private_key) -> None:
        self._key = private_key
        self.public = Verifier(private_key.public_key())
        self.fingerprint = self.public.fingerprint

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = _load(_read(path), path, public=False)
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path} is not an Ed25519 private key.", hint=_HINT)
        return cls(key)

    def checkpoint(self, seq: int, head_hash: str, at: str, kind: str) -> Checkpoint:
        signature = self._key.sign(checkpoint_bytes(seq, head_hash, at, kind, self.fingerprint))
        return Checkpoint(seq, head_hash, at, kind, self.fingerprint,
                          base64.b64encode(signature).decode("ascii"))


def write_signing_keys(path: Path) -> str:
    """A new private key in `path` (0600) and its public key in `path`.pub; neither may exist.
    Returns the key's fingerprint."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path)
    public_path = path.with_name(path.name + ".pub")
    for existing in (path, public_path):
        if existing.exists():
            raise SigningKeyError(f"{existing} already exists; a key file is never overwritten.",
                                  hint="Choose a new file name.")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    for target, data, mode in ((path, private, 0o600), (public_path, public, 0o644)):
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except OSError as exc:
            raise SigningKeyError(f"Cannot create {target}: {exc.strerror}.", hint="Check the folder.")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    return Signer(key).fingerprint


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"The key file {path} does not exist.", hint=_HINT) from None
    except OSError as exc:
        raise SigningKeyError(f"The key file {path} cannot be read ({exc.strerror}).", hint=_HINT) from None


def _load(data: bytes, path: Path, public: bool):
    from cryptography.hazmat.primitives import serialization

    try:
        if public:
            return serialization.load_pem_public_key(data)
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, binascii.Error):
        kind = "public" if public else "private"
        raise SigningKeyError(f"{path} is not a PEM {kind} key.", hint=_HINT) from None
    except Exception as exc:  # e.g. UnsupportedAlgorithm: an RSA or encrypted key
        raise SigningKeyError(f"{path} cannot be used as an Ed25519 key ({exc}).", hint=_HINT) from None
