"""Pruning old events, and bundles checked on another machine: intact, truncated, tampered."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from rag.audit.bundles import BundleError, export_bundle, verify_bundle
from rag.audit.events import now
from rag.audit.log import AuditKeyError, AuditLog
from rag.audit.reading import verify_log
from rag.audit.upkeep import prune
from rag.core.shapes import Answer
from rag.storage.answer_records import Records
from tests.rag.audit.conftest import ALICE, fill, open_log, public


@pytest.fixture
def log(tmp_path, keys):
    log = open_log(tmp_path / "audit.sqlite3", keys)
    fill(log, 12)
    yield log
    log.close()


def test_prune_leaves_a_signed_checkpoint_and_the_rest_verifies(log, keys, tmp_path):
    cut = now()
    fill(log, 8)
    gone = log.events(newest_first=False)[2].hash  # event 3's
    done = prune(log, cut, ALICE)
    assert done["removed"] == 12 and done["removed_through"] == 12
    assert log.count() == 9  # 8 newer events and the prune itself
    pruned = log.events(action="audit.prune")[0]
    assert pruned.seq == 21 and json.loads(pruned.details)["anchor_hash"] == done["anchor_hash"]
    report = verify_log(log, public(keys))
    assert report.ok and report.first_seq == 13 and report.last_seq == 21, report.problem
    # Nothing of the removed events is left in the file (secure_delete and VACUUM).
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("audit.sqlite3*"))
    assert gone.encode() not in raw
    # Deleting more without a prune is still caught.
    db = sqlite3.connect(tmp_path / "audit.sqlite3")
    db.execute("DELETE FROM audit_events WHERE seq = 13")
    db.commit()
    db.close()
    assert verify_log(log, public(keys)).problem.startswith("deleted")


def test_pruning_everything_keeps_the_chain_going(log, keys):
    done = prune(log, "2999-01-01T00:00:00.000000Z", ALICE)
    assert done["removed"] == 12 and log.count() == 1  # only the prune's own event
    fill(log, 3)
    report = verify_log(log, public(keys))
    assert report.ok and report.first_seq == 13 and report.last_seq == 16, report.problem


def test_prune_removes_the_answers_and_turns_made_before_it_too(log, tmp_path):
    records = Records(tmp_path / "answers.sqlite3")

    def answered(conversation: str | None = None) -> str:
        made = records.save_answer("hr", "When is payday?", "payday", Answer(
            answer="On the 25th.", citations=[], refused=False), {}, f"key-{time.time()}")
        if conversation:
            records.add_turn("hr", conversation, made)
        return made

    old_alone, old_turn = answered(), answered("c-long")
    answered("c-old")
    time.sleep(0.01)
    cut = now()
    fill(log, 2)
    new_turn, new_alone = answered("c-long"), answered()
    done = prune(log, cut, ALICE, records)
    assert done["records_removed"] == {"answers": 3, "turns": 2, "conversations": 1}
    assert records.get_answer(old_alone) is None and records.get_answer(old_turn) is None
    assert records.get_answer(new_alone)["question"] == "When is payday?"
    assert [t["answer_id"] for t in records.turns("c-long")] == [new_turn]  # its later turn stays
    assert records.conversation_collection("c-old") is None
    event = log.events(action="audit.prune")[0]
    assert json.loads(event.details)["records_removed"]["answers"] == 3
    records.close()


def test_prune_needs_a_signing_key_and_something_to_remove(tmp_path, log):
    plain = AuditLog(tmp_path / "plain.sqlite3")
    fill(plain, 2)
    with pytest.raises(AuditKeyError, match="needs a signing key"):
        prune(plain, now(), ALICE)
    plain.close()
    from rag.core.errors import ArchivistError

    with pytest.raises(ArchivistError, match="No event is older"):
        prune(log, "2000-01-01T00:00:00.000000Z", ALICE)


def bundle(log, tmp_path, since=None):
    made = log.checkpoint("export")
    path = tmp_path / "audit.bundle"
    export_bundle(log, path, since, made.seq)
    return path


def test_a_bundle_verifies_on_its_own(log, keys, tmp_path):
    path = bundle(log, tmp_path)
    report = verify_bundle(path, public(keys), expect_head=log.head()[1])
    assert report.ok and report.events == 12 and report.signatures_checked >= 3, report.problem
    text = path.read_text()
    assert "How many days" not in text  # sealed parts stay sealed
    # From a time on: its first link is vouched for only if a checkpoint covers it.
    since = log.events(newest_first=False)[6].at  # event 7
    partial = verify_bundle(bundle(log, tmp_path, since), public(keys))
    assert partial.ok and partial.first_seq == 7 and partial.last_seq == 12


def test_a_truncated_bundle_is_named(log, keys, tmp_path):
    path = bundle(log, tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))  # the end record lost
    assert verify_bundle(path, public(keys)).problem.startswith("truncated")
    path.write_text("".join(lines[:8]) + lines[8][:40])  # cut half-way through a line
    report = verify_bundle(path, public(keys))
    assert report.problem.startswith("truncated") and "half-way" in report.problem


def test_a_tampered_bundle_names_the_event(log, keys, tmp_path):
    path = bundle(log, tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    event = json.loads(lines[5])
    event["event"]["outcome"] = "refused"
    lines[5] = json.dumps(event, separators=(",", ":")) + "\n"
    path.write_text("".join(lines))
    report = verify_bundle(path, public(keys))
    assert report.bad_seq == 5 and report.problem.startswith("edited")
    del lines[5]  # ...or leave the event out
    path.write_text("".join(lines))
    assert verify_bundle(path, public(keys)).problem.startswith("missing")


def test_what_is_not_a_bundle_is_a_clear_error(tmp_path, log, keys):
    (tmp_path / "x.json").write_text('{"hello": 1}\n')
    with pytest.raises(BundleError, match="not an audit bundle"):
        verify_bundle(tmp_path / "x.json")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BundleError, match="not a text file|not JSON|not an audit"):
        verify_bundle(tmp_path / "bin")
    with pytest.raises(BundleError, match="Cannot read"):
        verify_bundle(tmp_path / "missing")
    path = bundle(log, tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace('"seq":3', '"seq":"3"')
    path.write_text("".join(lines))
    with pytest.raises(BundleError, match="wrong type"):
        verify_bundle(path, public(keys))
