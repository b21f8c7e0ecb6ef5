"""Key files, sealing of the answer records, the key in force, and rotation."""

from __future__ import annotations

import os
import stat

import pytest

from rag.audit.checkpoints import Signer, SigningKeyError, Verifier, write_signing_keys
from rag.audit.log import SEALED_WITH, AuditKeyError, AuditLog
from rag.audit.reading import verify_log
from rag.audit.upkeep import require_key_in_force, rotate_key
from rag.core.shapes import Answer
from rag.storage.answer_records import Records
from rag.storage.sealing import Keyring, Sealer, SealingError, write_key_file
from tests.rag.audit.conftest import ALICE, fill, public

MARKER = "Zanzibar-7731 salary of the harbour master"


def answer(text: str) -> Answer:
    return Answer(answer=text, citations=[], refused=False, mode="extractive")


def test_keygen_writes_a_private_file_and_never_overwrites(tmp_path):
    key_id = write_key_file(tmp_path / "k")
    assert stat.S_IMODE(os.stat(tmp_path / "k").st_mode) == 0o600
    assert Sealer.from_file(tmp_path / "k").key_id == key_id
    with pytest.raises(SealingError, match="never overwritten"):
        write_key_file(tmp_path / "k")
    fingerprint = write_signing_keys(tmp_path / "s.pem")
    assert stat.S_IMODE(os.stat(tmp_path / "s.pem").st_mode) == 0o600
    assert Verifier.from_file(tmp_path / "s.pem.pub").fingerprint == fingerprint
    assert Signer.from_file(tmp_path / "s.pem").fingerprint == fingerprint
    with pytest.raises(SigningKeyError, match="never overwritten"):
        write_signing_keys(tmp_path / "s.pem")


@pytest.mark.parametrize("content", ["", "hello", "archivist-key-v1 aes-256-gcm AAAA",
                                     "archivist-key-v1 aes-256-gcm !!!not base64!!!"])
def test_a_malformed_key_file_is_a_clear_error(tmp_path, content):
    (tmp_path / "bad.key").write_text(content)
    with pytest.raises(SealingError, match="not an Archivist key file") as err:
        Sealer.from_file(tmp_path / "bad.key")
    assert "archivist audit keygen" in err.value.hint
    with pytest.raises(SealingError, match="does not exist"):
        Sealer.from_file(tmp_path / "missing.key")
    (tmp_path / "bad.pem").write_text(content)
    with pytest.raises(SigningKeyError, match="not a PEM"):
        Signer.from_file(tmp_path / "bad.pem")
    with pytest.raises(SigningKeyError, match="not a PEM"):
        Verifier.from_file(tmp_path / "bad.pem")


def test_records_are_sealed_and_the_cache_key_is_a_mac(tmp_path, keys):
    keyring = Keyring.from_file(keys["aes"])
    records = Records(tmp_path / "answers.sqlite3", keyring)
    key = records.cache_key(MARKER, {"index_version": "v1"}, "model")
    answer_id = records.save_answer("hr", MARKER, MARKER, answer(f"About {MARKER}."), {}, key)
    assert records.get_answer(answer_id)["question"] == MARKER
    assert records.cached(key)[1].answer == f"About {MARKER}."
    records.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("answers.sqlite3*"))
    assert MARKER.encode() not in raw
    plain = Records(tmp_path / "plain.sqlite3")
    assert key != plain.cache_key(MARKER, {"index_version": "v1"}, "model")  # not a plain hash
    plain.close()


def test_a_wrong_key_is_a_clear_error(tmp_path, keys):
    records = Records(tmp_path / "answers.sqlite3", Keyring.from_file(keys["aes"]))
    answer_id = records.save_answer("hr", MARKER, MARKER, answer("x"), {}, None)
    records.close()
    write_key_file(tmp_path / "other.key")
    other = Records(tmp_path / "answers.sqlite3", Keyring.from_file(tmp_path / "other.key"))
    with pytest.raises(SealingError, match="sealed with key .*; the configured key is") as err:
        other.get_answer(answer_id)
    assert "ARCHIVIST_AUDIT_KEY_FILE" in err.value.hint
    other.close()


def stores(tmp_path, keys, key=None):
    keyring = Keyring.from_file(key) if key else Keyring()
    log = AuditLog(tmp_path / "audit.sqlite3", keyring, Signer.from_file(keys["signing"]), 5)
    return log, Records(tmp_path / "answers.sqlite3", keyring)


def test_the_key_in_force_is_required(tmp_path, keys):
    log, records = stores(tmp_path, keys, keys["aes"])
    require_key_in_force(log, records.plain_rows)  # a new log: the key is recorded
    fill(log, 2)
    log.close(), records.close()

    log, records = stores(tmp_path, keys)  # started without the key
    with pytest.raises(AuditKeyError, match="no key is configured: refusing") as err:
        require_key_in_force(log, records.plain_rows)
    assert "ARCHIVIST_AUDIT_KEY_FILE" in err.value.hint
    log.close(), records.close()

    write_key_file(tmp_path / "wrong.key")
    log, records = stores(tmp_path, keys, tmp_path / "wrong.key")
    with pytest.raises(AuditKeyError, match="the configured key file holds key"):
        require_key_in_force(log, records.plain_rows)
    log.close(), records.close()


def test_a_key_may_be_added_while_nothing_secret_is_stored_but_not_after(tmp_path, keys):
    log, records = stores(tmp_path, keys)
    require_key_in_force(log, records.plain_rows)
    log.append(ALICE, "ingest", "ok", "hr", {"added": 1})  # no secret part
    log.close(), records.close()
    log, records = stores(tmp_path, keys, keys["aes"])
    require_key_in_force(log, records.plain_rows)  # fine: nothing was stored plain
    log.close(), records.close()

    other = tmp_path / "other"
    other.mkdir()
    log, records = stores(other, keys)
    require_key_in_force(log, records.plain_rows)
    records.save_answer("hr", MARKER, MARKER, answer("x"), {}, None)
    log.close(), records.close()
    log, records = stores(other, keys, keys["aes"])
    with pytest.raises(AuditKeyError, match="stored in plain text") as err:
        require_key_in_force(log, records.plain_rows)
    assert "rotate-key" in err.value.hint
    log.close(), records.close()


def test_rotation_reseals_everything_and_keeps_the_chain(tmp_path, keys):
    log, records = stores(tmp_path, keys)  # plain at first: rotation seals it
    require_key_in_force(log, records.plain_rows)
    fill(log, 7)
    answer_id = records.save_answer("hr", MARKER, MARKER, answer(MARKER), {}, "cache-key")
    head = log.head()[1]
    first = rotate_key(log, records, Sealer.from_file(keys["aes"]), ALICE)
    assert first["events"] == 7 and first["answers"] == 1 and first["from_key"] is None
    write_key_file(tmp_path / "new.key")
    new = Sealer.from_file(tmp_path / "new.key")
    second = rotate_key(log, records, new, ALICE)
    assert second["from_key"] == first["to_key"] and second["to_key"] == new.key_id
    log.close(), records.close()

    raw = b"".join(p.read_bytes() for p in tmp_path.glob("*.sqlite3*"))
    assert MARKER.encode() not in raw and b"How many days of leave" not in raw
    log, records = stores(tmp_path, keys, tmp_path / "new.key")
    require_key_in_force(log, records.plain_rows)
    assert records.get_answer(answer_id)["question"] == MARKER
    assert records.cached("cache-key") is None  # MACs under the old key are gone
    assert log.open_secret(log.events(action="ask", limit=1)[0])["answer"] == "25 days."
    report = verify_log(log, public(keys), expect_head=head)  # the head noted before still holds
    assert report.ok and report.events == 9
    assert [e.action for e in log.events(action="audit.rotate-key")] == ["audit.rotate-key"] * 2
    log.close(), records.close()
    log, records = stores(tmp_path, keys, keys["aes"])  # the old key no longer fits
    with pytest.raises(AuditKeyError):
        require_key_in_force(log, records.plain_rows)
    log.close(), records.close()


def test_an_interrupted_rotation_is_finished_by_running_it_again(tmp_path, keys):
    log, records = stores(tmp_path, keys, keys["aes"])
    require_key_in_force(log, records.plain_rows)
    fill(log, 4)
    write_key_file(tmp_path / "new.key")
    new = Sealer.from_file(tmp_path / "new.key")
    log.set_meta(SEALED_WITH, f"rotating:{log.keyring.key_id}:{new.key_id}")  # died here
    with pytest.raises(AuditKeyError, match="was interrupted"):
        require_key_in_force(log, records.plain_rows)
    with pytest.raises(AuditKeyError, match="sealed with key"):  # writers stop meanwhile
        fill(log, 1)
    rotate_key(log, records, new, ALICE)
    require_key_in_force(log, records.plain_rows)
    assert log.open_secret(log.events(action="ask", limit=1)[0])["question"].startswith("How many")
    log.close(), records.close()
