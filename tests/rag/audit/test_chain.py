"""The hash chain and its checkpoints against each kind of tampering, done as someone with write
access to the SQLite file would (plain sqlite3), and verified without the encryption key."""

from __future__ import annotations

import sqlite3

import pytest

from rag.audit.checkpoints import Verifier, write_signing_keys
from rag.audit.events import COLUMNS, chain_hash
from rag.audit.log import AuditLog
from rag.audit.reading import verify_log
from tests.rag.audit.conftest import fill, open_log, public


@pytest.fixture
def log_path(tmp_path, keys):
    """25 sealed events, checkpoints every 5, closed again: what an auditor is handed."""
    path = tmp_path / "audit.sqlite3"
    log = open_log(path, keys)
    fill(log, 25)
    log.close()
    return path


def verify(path, keys, expect_head=None):
    log = AuditLog(path)  # no keyring, no signer: the auditor's view
    try:
        return verify_log(log, public(keys), expect_head)
    finally:
        log.close()


def sql(path, statement, params=()):
    db = sqlite3.connect(path)
    with db:
        db.execute(statement, params)
    db.close()


def row(path, seq):
    db = sqlite3.connect(path)
    found = db.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE seq = ?", (seq,)).fetchone()
    db.close()
    return dict(zip(COLUMNS, found))


def rehash_from(path, seq):
    """What a careful forger does after a change: recompute every hash from `seq` on."""
    db = sqlite3.connect(path)
    prev = db.execute("SELECT hash FROM audit_events WHERE seq = ?", (seq - 1,)).fetchone()[0]
    for r in db.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE seq >= ? ORDER BY seq",
                        (seq,)).fetchall():
        e = dict(zip(COLUMNS, r))
        own = chain_hash(e["seq"], e["at"], e["actor"], e["role"], e["collection"], e["request_id"],
                         e["action"], e["outcome"], e["details"], e["secret_digest"], prev)
        db.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, own, e["seq"]))
        prev = own
    db.commit()
    db.close()


def test_an_untouched_log_verifies_without_the_encryption_key(log_path, keys):
    report = verify(log_path, keys)
    assert report.ok, report.problem
    assert report.events == 25 and report.last_seq == 25
    assert report.checkpoints == report.signatures_checked == 6  # the first event's, then every 5th
    assert report.head == row(log_path, 25)["hash"]
    # What is stored of a question is ciphertext: verification never needed the key.
    assert "leave" not in row(log_path, 3)["secret"] and row(log_path, 3)["sealed_with"]


def test_an_edited_event_is_named(log_path, keys):
    sql(log_path, "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 7")
    report = verify(log_path, keys)
    assert not report.ok and report.bad_seq == 7 and report.problem.startswith("edited")


def test_an_edited_event_with_its_hash_recomputed_is_named(log_path, keys):
    edited = row(log_path, 7)
    details = edited["details"].replace('"n":6', '"n":66')
    own = chain_hash(7, edited["at"], edited["actor"], edited["role"], edited["collection"],
                     edited["request_id"], edited["action"], edited["outcome"], details,
                     edited["secret_digest"], edited["prev_hash"])
    sql(log_path, "UPDATE audit_events SET details = ?, hash = ? WHERE seq = 7", (details, own))
    report = verify(log_path, keys)
    assert report.bad_seq == 7 and "edited or replaced" in report.problem


def test_a_sealed_payload_swapped_between_events_does_not_open(log_path, keys):
    """The chain holds the payload's digest; the ciphertext is bound to it (AES-GCM associated
    data), so whoever reads with the key sees the swap."""
    other = row(log_path, 9)["secret"]
    sql(log_path, "UPDATE audit_events SET secret = ? WHERE seq = 8", (other,))
    log = open_log(log_path, keys)
    from rag.audit.reading import check_sealed

    checked, bad, why = check_sealed(log)
    log.close()
    assert (checked, bad) == (7, 8) and "does not open" in why


def test_a_deleted_event_is_named(log_path, keys):
    sql(log_path, "DELETE FROM audit_events WHERE seq = 12")
    report = verify(log_path, keys)
    assert report.bad_seq == 12 and report.problem.startswith("missing")


def test_deleting_the_first_events_without_a_prune_is_caught(log_path, keys):
    sql(log_path, "DELETE FROM audit_events WHERE seq <= 3")
    report = verify(log_path, keys)
    assert report.bad_seq == 1 and "no signed prune checkpoint vouches" in report.problem
    # Up to an ordinary (periodic) checkpoint: still no prune.
    sql(log_path, "DELETE FROM audit_events WHERE seq <= 5")
    assert "no signed prune checkpoint" in verify(log_path, keys).problem


def test_reordered_events_are_named(log_path, keys):
    sql(log_path, "UPDATE audit_events SET seq = -1 WHERE seq = 15")
    sql(log_path, "UPDATE audit_events SET seq = 15 WHERE seq = 14")
    sql(log_path, "UPDATE audit_events SET seq = 14 WHERE seq = -1")
    report = verify(log_path, keys)
    assert report.bad_seq == 14 and report.problem.startswith("edited")


def test_an_inserted_event_is_named(log_path, keys):
    forged = row(log_path, 10)
    db = sqlite3.connect(log_path)
    db.execute("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 10")
    db.execute("UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000")  # 10.. -> 11..
    prev = db.execute("SELECT hash FROM audit_events WHERE seq = 9").fetchone()[0]
    own = chain_hash(10, forged["at"], "forger", "admin", "hr", None, "ask", "answered", "{}", None, prev)
    db.execute(f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES (10, ?, 'forger', 'admin', "
               "'hr', NULL, 'ask', 'answered', '{}', NULL, NULL, NULL, ?, ?)", (forged["at"], prev, own))
    db.commit()
    db.close()
    report = verify(log_path, keys)
    assert report.bad_seq == 10 and report.problem.startswith("inserted")


def test_a_rewritten_chain_is_caught_by_the_signed_checkpoint(log_path, keys):
    """Edit event 13 and recompute every hash after it: the chain is consistent again, but
    the checkpoint at event 15 no longer matches, and nobody without the private key can sign
    a new one."""
    sql(log_path, "UPDATE audit_events SET outcome = 'refused' WHERE seq = 13")
    rehash_from(log_path, 13)
    report = verify(log_path, keys)
    assert report.bad_seq == 11 and report.problem.startswith("rewritten")
    assert "events 11 to 15" in report.problem


def test_a_forged_checkpoint_is_caught(log_path, keys, tmp_path):
    """A forger who rewrote the chain and signed checkpoints with a key of their own."""
    sql(log_path, "UPDATE audit_checkpoints SET signature = 'AAAA' || substr(signature, 5) WHERE seq = 20")
    report = verify(log_path, keys)
    assert report.bad_seq == 20 and "bad signature" in report.problem
    write_signing_keys(tmp_path / "other.pem")
    other = Verifier.from_file(tmp_path / "other.pem.pub")
    log = AuditLog(log_path)
    report = verify_log(log, other)
    log.close()
    assert "not by the key given" in report.problem


def test_a_truncated_tail_is_caught_by_the_expected_head(log_path, keys):
    head = row(log_path, 25)["hash"]
    assert verify(log_path, keys, expect_head=head).ok
    sql(log_path, "DELETE FROM audit_events WHERE seq > 21")
    sql(log_path, "DELETE FROM audit_checkpoints WHERE seq > 21")  # the forger removes those too
    assert verify(log_path, keys).ok  # what is left is a valid chain...
    report = verify(log_path, keys, expect_head=head)  # ...but not the one the auditor saw
    assert not report.ok and report.bad_seq == 22 and report.problem.startswith("truncated")


def test_a_truncated_tail_is_caught_by_a_checkpoint_beyond_it(log_path, keys):
    sql(log_path, "DELETE FROM audit_events WHERE seq > 18")
    report = verify(log_path, keys)
    assert report.bad_seq == 19 and "events 19 to 25 were removed" in report.problem


def test_a_plain_question_edited_is_caught(tmp_path):
    """Without a key the payload is stored plain; its digest is in the chain."""
    log = AuditLog(tmp_path / "plain.sqlite3")
    fill(log, 3)
    log.close()
    stored = row(tmp_path / "plain.sqlite3", 2)["secret"]
    sql(tmp_path / "plain.sqlite3", "UPDATE audit_events SET secret = ? WHERE seq = 2",
        (stored.replace("25 days", "30 days"),))
    log = AuditLog(tmp_path / "plain.sqlite3")
    report = verify_log(log)
    log.close()
    assert report.bad_seq == 2 and "question or answer" in report.problem
    assert "no signed checkpoints" in " ".join(report.warnings) or report.warnings == []
