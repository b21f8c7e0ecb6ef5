"""Encryption at rest: AES-256-GCM with a key kept in a file outside the stores
(ARCHIVIST_AUDIT_KEY_FILE, made by `archivist audit keygen FILE`).

What is sealed: every stored question, answer, passage text and conversation turn, in the audit
log and in the answer records and response cache.  A sealed value is stored as base64 of a fresh
96-bit nonce followed by the ciphertext and its tag, beside the id of the key that sealed it (a
column of its own, so that a plain value can never be mistaken for a sealed one).  The associated
data binds each value to its place (row and column), so a sealed value moved to another row does
not open.

The key file is one line, `archivist-key-v1 aes-256-gcm <base64 of 32 bytes>`; the key's id is a
hash of it, so records name the key without revealing it.  A Keyring holds the key in force and,
during a rotation, the one it replaces.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
from pathlib import Path

from rag.core.errors import ArchivistError

KEY_HEADER = "archivist-key-v1 aes-256-gcm"
_NONCE_BYTES = 12
_KEY_HINT = "Set ARCHIVIST_AUDIT_KEY_FILE to the key file this index was sealed with."


class SealingError(ArchivistError):
    """A key file that cannot be used, or a sealed value that does not open with the keys given."""


def key_id_of(key: bytes) -> str:
    """A public name for the key: hashing it (with a label) reveals nothing of it."""
    return hashlib.sha256(b"archivist-key-id\0" + key).hexdigest()[:16]


def write_key_file(path: Path) -> str:
    """A new random key in `path` (mode 0600; an existing file is never overwritten); its id."""
    key = os.urandom(32)
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SealingError(f"{path} already exists; a key file is never overwritten.",
                           hint="Choose a new file name (losing a key loses what it sealed).")
    except OSError as exc:
        raise SealingError(f"Cannot create {path}: {exc.strerror}.", hint="Check the folder.")
    with os.fdopen(fd, "w") as out:
        out.write(f"{KEY_HEADER} {base64.b64encode(key).decode()}\n")
    return key_id_of(key)


def read_key_file(path: Path) -> bytes:
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii").strip()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SealingError(f"The key file {path} does not exist.",
                           hint="Check ARCHIVIST_AUDIT_KEY_FILE, or make a key with "
                                "`archivist audit keygen FILE`.")
    except (OSError, UnicodeDecodeError) as exc:
        raise SealingError(f"The key file {path} cannot be read ({exc}).",
                           hint="It must be a file made by `archivist audit keygen`.")
    header, _, encoded = text.rpartition(" ")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if header != KEY_HEADER or len(key) != 32:
        raise SealingError(f"{path} is not an Archivist key file (expected one line "
                           f"'{KEY_HEADER} <base64 of 32 bytes>').",
                           hint="Point ARCHIVIST_AUDIT_KEY_FILE at a file made by "
                                "`archivist audit keygen FILE`.")
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and os.name == "posix":
        import logging

        logging.getLogger(__name__).warning("key file %s is readable by other users: chmod 600 it", path)
    return key


class Sealer:
    """One AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)
        self.key_id = key_id_of(key)
        # A key of its own for message authentication (cache keys), derived so that it differs.
        self._mac_key = hmac.new(key, b"archivist-mac-key", hashlib.sha256).digest()

    @classmethod
    def from_file(cls, path: Path) -> Sealer:
        return cls(read_key_file(path))

    def seal(self, data: bytes, aad: bytes) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, data, aad)).decode("ascii")

    def open(self, token: str, aad: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.b64decode(token, validate=True)
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad)
        except (InvalidTag, binascii.Error, ValueError):
            raise SealingError("A sealed value does not open with its key: it was altered, or "
                               "moved from another record.",
                               hint="Restore the store from a backup; `archivist audit verify` "
                                    "shows which audit events are intact.") from None

    def mac(self, data: bytes) -> str:
        return hmac.new(self._mac_key, data, hashlib.sha256).hexdigest()


class Keyring:
    """The key in force (None: values are stored plain) and, while a rotation re-seals, the
    keys it replaces, by id."""

    def __init__(self, current: Sealer | None = None, older: tuple[Sealer, ...] = ()) -> None:
        self.current = current
        self._by_id = {s.key_id: s for s in (*older, *([current] if current else []))}

    @classmethod
    def from_file(cls, path: Path | None) -> Keyring:
        return cls(Sealer.from_file(path) if path else None)

    @property
    def key_id(self) -> str | None:
        return self.current.key_id if self.current else None

    def seal_text(self, text: str, aad: bytes) -> tuple[str, str | None]:
        """(stored value, id of the key that sealed it: None when stored plain)."""
        if self.current is None:
            return text, None
        return self.current.seal(text.encode("utf-8"), aad), self.current.key_id

    def open_text(self, value: str, sealed_with: str | None, aad: bytes) -> str:
        if sealed_with is None:
            return value
        return self.sealer(sealed_with).open(value, aad).decode("utf-8")

    def sealer(self, key_id: str) -> Sealer:
        found = self._by_id.get(key_id)
        if found is None:
            have = f"the configured key is {self.key_id}" if self.current else "no key is configured"
            raise SealingError(f"These records were sealed with key {key_id}; {have}.", hint=_KEY_HINT)
        return found
