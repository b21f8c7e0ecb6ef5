"""An audit log on a temporary SQLite file, with an encryption key and a signing key."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.audit.checkpoints import Signer, Verifier, write_signing_keys
from rag.audit.events import Actor
from rag.audit.log import AuditLog
from rag.storage.sealing import Keyring, write_key_file

ALICE = Actor("1a2b3c4d", "reader", "req-1")


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    paths = {"aes": tmp_path / "keys" / "audit.key", "signing": tmp_path / "keys" / "signing.pem"}
    paths["aes"].parent.mkdir()
    write_key_file(paths["aes"])
    write_signing_keys(paths["signing"])
    paths["public"] = paths["signing"].with_name("signing.pem.pub")
    return paths


def open_log(target, keys: dict[str, Path] | None = None, every: int = 5, key: Path | None = None) -> AuditLog:
    """A log sealing with keys["aes"] (or `key`) and signing with keys["signing"]."""
    keyring = Keyring.from_file(key or keys["aes"]) if keys else Keyring()
    signer = Signer.from_file(keys["signing"]) if keys else None
    return AuditLog(target, keyring, signer, checkpoint_every=every)


def fill(log: AuditLog, n: int, collection: str = "hr") -> None:
    for i in range(n):
        log.append(ALICE, "ask", "answered", collection, {"answer_id": f"a{i}", "n": i},
                   {"question": f"How many days of leave, question {i}?", "answer": "25 days."})


def public(keys: dict[str, Path]) -> Verifier:
    return Verifier.from_file(keys["public"])
